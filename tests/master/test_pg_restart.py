"""PostgreSQL restarted under a running master: events wait in memory and are stored exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.pipeline import Court, Master, Traffic, assert_master_has_everything

pytestmark = pytest.mark.slow


def _restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True, capture_output=True, timeout=60,
    )


@pytest.mark.skipif(
    "TEST_DATABASE_URL" in os.environ or shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"),
    reason="needs the local PostgreSQL cluster (pg_ctlcluster), not a remote TEST_DATABASE_URL",
)
def test_postgresql_restart_mid_stream(pg_url: str, tmp_path: Path) -> None:
    court = Court(tmp_path / "court", "Court 1").start()
    master = Master(pg_url, tmp_path / "master", [court.endpoint]).start()
    traffic = Traffic(court.udp_port, rate=300)
    try:
        traffic.start()
        time.sleep(2)
        _restart_postgresql()
        time.sleep(2)
        traffic.stop()
        assert_master_has_everything(pg_url, [court], timeout=90)
        log = master.proc.text()
        assert "Central database unavailable" in log  # 300 events/s: the restart cannot go unnoticed
        assert "Central database back" in log
        assert "offline" not in log  # a database outage is not a court outage
    finally:
        traffic.stop()
        master.proc.close()
        assert court.proc is not None
        court.proc.close()
