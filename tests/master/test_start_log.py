"""What the master says at each start: one line about its database, none of Alembic's internals."""

from __future__ import annotations

from pathlib import Path

import pytest

from restrike.venue_keys import ensure_key_pair
from tests.pipeline import Proc

pytestmark = pytest.mark.slow


def test_start_log_names_the_revision_once(tmp_path: Path) -> None:
    from master.db.migrate import head_revision

    head = head_revision()
    ensure_key_pair(tmp_path / "master" / "keys", "master")
    for start, expected in enumerate((f"Central database created at revision {head}", f"Central database at revision {head} (up to date)")):
        log = tmp_path / f"master{start}.log"
        master = Proc(["master", "run", "--no-mdns", "-d", str(tmp_path / "master")], log).start("Master storing into")
        assert master.stop() == 0
        text = log.read_text()
        assert "alembic" not in text and "None" not in text, text
        said = [line for line in text.splitlines() if "Central database" in line]
        assert len(said) == 1 and said[0].endswith(expected), text
