"""A court and the master on two "laptops" (network namespaces joined by a veth cable).

* The cable is pulled for a minute while the court keeps scoring: the master shows the court
  offline, and once the cable is back it has every event, row for row with the court's SQLite.
* The master finds the court by mDNS alone, sees it go offline when the agent is SIGKILLed
  (heartbeats; the mDNS record lingers), and gets everything again once it is restarted.

Needs root (``ip netns``); everything made here is deleted in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.netns import VethPair, netns_unavailable, veth_pair
from tests.pipeline import Court, Master, assert_master_has_everything, central_count
from tests.support import restrike_exe, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.netns, pytest.mark.timeout(240)]

CUT_SECONDS = 60.0
SEND_INTERVAL_MS = 10  # 100 datagrams a second
PG_SOCKET_DIR = os.environ.get("TEST_PG_SOCKET_DIR", "/var/run/postgresql")


@pytest.fixture
def veth() -> Iterator[VethPair]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with veth_pair() as pair:
        yield pair


def _url_inside_namespace(url: str) -> str:
    """The master's namespace cannot reach the host's 127.0.0.1: use PostgreSQL's unix socket instead."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url  # SQLite: a file, shared by every namespace
    socket = Path(PG_SOCKET_DIR) / f".s.PGSQL.{parsed.port or 5432}"
    if not socket.exists():
        pytest.skip(f"PostgreSQL's unix socket {socket} is absent (set TEST_PG_SOCKET_DIR)")
    return f"{parsed.drivername}://{parsed.username}@/{parsed.database}?host={PG_SOCKET_DIR}"


class Sender:
    """``restrike pss send --loop`` inside the court's namespace, at a steady 100 datagrams a second."""

    def __init__(self, ns: str, port: int, workdir: Path):
        lines = workdir / "lines.txt"
        if not lines.exists():
            lines.write_text("".join(f"hl1;{i}\n" for i in range(100)), encoding="utf-8")
        self.log = workdir / "sender.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [*VethPair.prefix(ns), restrike_exe(), "pss", "send", str(lines), "--to", f"127.0.0.1:{port}",
                 "--interval", str(SEND_INTERVAL_MS), "--loop", "--quiet"],
                stdout=out, stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def _status(url: str) -> dict[str, dict]:
    """``restrike master status --json``, by node id."""
    out = subprocess.run([restrike_exe(), "master", "status", "--db", url, "--json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {row["node_id"]: row for row in map(json.loads, out.splitlines()) if row}


def _wait_for_log(master: Master, text: str, count: int, timeout: float, what: str) -> float:
    """Seconds until ``text`` appears ``count`` times in the master's log."""
    start = time.monotonic()
    wait_until(lambda: master.proc.text().count(text) >= count, timeout, what, interval=0.05)
    return time.monotonic() - start


def test_cable_cut_for_a_minute_loses_nothing(pg_url: str, veth: VethPair, tmp_path: Path) -> None:
    """Once, on PostgreSQL: the cut is between the court and the master, the same for either database."""
    court = Court(tmp_path / "court", "Court 1", host=veth.slave_ip, prefix=veth.prefix(veth.slave_ns))
    master = Master(_url_inside_namespace(pg_url), tmp_path / "master", [court.endpoint],
                    prefix=veth.prefix(veth.master_ns), admin_url=pg_url)
    sender: Sender | None = None
    try:
        court.start()
        master.start()
        sender = Sender(veth.slave_ns, court.udp_port, tmp_path)
        wait_until(lambda: central_count(pg_url) >= 200, 30, "events flowing to the master")
        assert "Court 1 (court-1) online" in master.proc.text()

        veth.set_link(veth.slave_ns, up=False)  # the court laptop's cable is pulled
        cut_at = time.monotonic()
        offline_after = _wait_for_log(master, "Court 1 offline", 1, 10, "the master to mark the court offline")
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        at_master, at_court = central_count(pg_url), len(court.rows())
        assert sender.running(), sender.log.read_text(errors="replace")
        assert at_court - at_master >= CUT_SECONDS * 1000 / SEND_INTERVAL_MS * 0.8, (at_master, at_court)

        veth.set_link(veth.slave_ns, up=True)
        restored_at = time.monotonic()
        online_after = _wait_for_log(master, "Court 1 (court-1) online", 2, 30, "the court back online")
        time.sleep(2)  # live events and the catch-up overlap for a while
        sender.stop()
        n = assert_master_has_everything(pg_url, [court], timeout=30)
        complete_after = time.monotonic() - restored_at
        print(f"\n[{make_url(pg_url).get_backend_name()}] offline {offline_after:.1f} s after the cut; "
              f"online {online_after:.1f} s after the link came back; all {n} rows "
              f"({at_court - at_master} missed during the cut) {complete_after:.1f} s after it")
        assert offline_after < 6
        assert online_after < 10, "a restored network must be used within seconds, not after TCP back-off"
        assert central_count(pg_url) == n  # nothing twice
    finally:
        if sender is not None:
            sender.stop()
        master.proc.close()
        if court.proc is not None:
            court.proc.close()


def test_mdns_discovery_across_namespaces_and_a_killed_agent(veth: VethPair, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    court = Court(tmp_path / "court", "Court 1", host=veth.slave_ip, mdns=True,
                  prefix=veth.prefix(veth.slave_ns, {"RESTRIKE_SLAVE_PUBLISHER__MDNS_INTERFACE": veth.slave_ip}))
    master = Master(url, tmp_path / "master", endpoints=(), mdns=True, approve=[court.node_id],
                    prefix=veth.prefix(veth.master_ns, {"RESTRIKE_MASTER_MDNS_INTERFACE": veth.master_ip}))
    sender: Sender | None = None
    try:
        court.start()
        assert f"Advertised over mDNS as Court-1-court-1._restrike-slave._tcp.local. at {veth.slave_ip}" in court.proc.text()
        master.start()
        found_after = _wait_for_log(master, "Court 1 (court-1) online", 1, 20, "the court found by mDNS")
        assert f"Connecting to court at {court.address} (mdns)" in master.proc.text()
        sender = Sender(veth.slave_ns, court.udp_port, tmp_path)
        wait_until(lambda: _status(url).get("court-1", {}).get("events", 0) >= 100, 30, "events stored")
        assert _status(url)["court-1"]["status"] == "online"

        assert court.proc is not None
        court.proc.kill()  # SIGKILL: no goodbye over mDNS, the record lingers
        killed_at = time.monotonic()
        wait_until(lambda: "Court 1 offline" in master.proc.text(), 10, "heartbeats to time out", interval=0.05)
        offline_after = time.monotonic() - killed_at
        wait_until(lambda: _status(url)["court-1"]["status"] == "offline", 10, "status offline")
        sender.stop()
        assert "withdrew its announcement" not in master.proc.text()

        restarted_at = time.monotonic()
        court.start()  # same data folder, same ports, advertised again
        _wait_for_log(master, "Court 1 (court-1) online", 2, 30, "the restarted court online")
        back_after = time.monotonic() - restarted_at
        sender = Sender(veth.slave_ns, court.udp_port, tmp_path)
        time.sleep(2)
        sender.stop()
        n = assert_master_has_everything(url, [court], timeout=30)
        complete_after = time.monotonic() - restarted_at
        wait_until(lambda: _status(url)["court-1"]["status"] == "online", 10, "status online again")
        status = _status(url)["court-1"]
        assert status["events"] == n and status["stored_seq"] == len(court.rows()) and status["court"] == "Court 1"
        print(f"\n[mDNS] online {found_after:.1f} s after the master started; offline {offline_after:.1f} s after "
              f"SIGKILL; online {back_after:.1f} s after the restart; all {n} rows {complete_after:.1f} s after it")
        assert offline_after < 5.0, "3 missed heartbeats (3.5 s) plus one check"
    finally:
        if sender is not None:
            sender.stop()
        master.proc.close()
        if court.proc is not None:
            court.proc.close()
