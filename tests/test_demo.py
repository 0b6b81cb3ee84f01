"""The README's first command runs the demo: it must come up, move events end to end, and stop cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import restrike_exe


def test_demo_runs_a_venue_and_loses_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [restrike_exe(), "demo", "--duration", "6", "--speed", "60", "--courts", "2", "--plain", "-d", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "stored at the court" in line]
    assert len(lines) == 2
    for line in lines:
        court_count = int(line.split(":")[1].split()[0])
        master_count = int(line.split(",")[1].split()[0])
        assert court_count > 50 and court_count == master_count
    assert "Nothing lost" in result.stderr
    assert (tmp_path / "demo" / "court1" / "restrike-slave.sqlite3").exists()
    assert (tmp_path / "demo" / "master" / "central.sqlite3").exists()
