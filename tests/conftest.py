"""Fixtures shared by every test: real loopback resources, closed in ``finally``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slave_agent.db.store import EventStore

@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = EventStore(tmp_path / "slave", node_id="court-test")
    try:
        yield s
    finally:
        s.close()
