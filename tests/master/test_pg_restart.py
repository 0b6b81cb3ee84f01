"""The central database lost under a running master mid-stream: events wait and are stored exactly once.

PostgreSQL is reached through a TCP proxy that is cut for a few seconds (open connections
reset, new ones refused), as a restart or a network cut looks to the master; the machine's
shared server itself is never stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from restrike.bench.tcp_proxy import TcpProxy
from tests.pipeline import Court, Master, Traffic, assert_master_has_everything
from tests.support import wait_until

pytestmark = pytest.mark.slow


def test_database_lost_and_back_mid_stream(pg_url: str, tmp_path: Path) -> None:
    target = make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        court = Court(tmp_path / "court", "Court 1").start()
        master = Master(proxied, tmp_path / "master", [court.endpoint]).start()
        traffic = Traffic(court.udp_port, rate=300)
        try:
            traffic.start()
            time.sleep(2)
            assert proxy.cut() >= 1
            wait_until(lambda: "Central database unavailable" in master.proc.text(), 15, "the master to notice")
            time.sleep(3)
            proxy.restore()
            time.sleep(2)
            traffic.stop()
            assert_master_has_everything(pg_url, [court], timeout=90)
            log = master.proc.text()
            # Said once, by one layer (the store only raises; the master's DbWorker speaks).
            assert log.lower().count("database unavailable") == 1 and log.count("Central database back") == 1
            assert "offline" not in log  # a database outage is not a court outage
        finally:
            traffic.stop()
            master.proc.close()
            assert court.proc is not None
            court.proc.close()
