"""The layers hold at run time too: importing a daemon pulls in nothing above it, and nothing
starts at import (no sockets, threads or files)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, sys, threading
before = set(sys.modules)
import {module}
loaded = sorted({{name.split('.')[0] for name in set(sys.modules) - before}})
print(json.dumps({{"loaded": loaded, "threads": threading.active_count()}}))
"""


def _import_alone(module: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("shared.pss", {"runtime", "slave_agent", "master", "restrike", "zmq", "sqlalchemy"}),
        ("shared.wire", {"runtime", "slave_agent", "master", "restrike", "zmq", "sqlalchemy"}),
        ("runtime.lifecycle", {"slave_agent", "master", "restrike"}),
        ("slave_agent.app", {"master", "restrike", "sqlalchemy", "alembic"}),
        ("master.app", {"slave_agent", "restrike"}),
    ],
)
def test_importing_a_layer_loads_nothing_above_it_and_starts_nothing(module: str, forbidden: set[str]) -> None:
    probe = _import_alone(module)
    assert forbidden.isdisjoint(probe["loaded"]), f"{module} pulled in {forbidden & set(probe['loaded'])}"  # type: ignore[arg-type]
    assert probe["threads"] == 1, f"importing {module} started a thread"
