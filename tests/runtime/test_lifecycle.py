"""A process served until signalled: start-up's objects are taken out of the garbage collector's passes."""

from __future__ import annotations

import subprocess
import sys

_SERVE = """
import asyncio, gc, os, signal
from runtime.lifecycle import serve_until_signalled

async def startup():
    print("frozen before", gc.get_freeze_count(), flush=True)
    asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGTERM)

async def shutdown():
    print("frozen after", gc.get_freeze_count(), flush=True)

asyncio.run(serve_until_signalled(startup, shutdown))
"""


def test_what_start_up_built_is_frozen_once_started() -> None:
    result = subprocess.run([sys.executable, "-c", _SERVE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    counts = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    assert int(counts["frozen before"]) == 0
    assert int(counts["frozen after"]) > 10_000  # the modules and what start-up made: no full pass scans them again
