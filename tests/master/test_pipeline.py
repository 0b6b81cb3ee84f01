"""Every court's events at the master exactly once, through real processes and sockets.

Each scenario ends by comparing the master's rows with each slave's SQLite, row for row.
Runs on PostgreSQL and on the embedded SQLite (the ``central_url`` fixture).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.pipeline import FIELD, Court, Master, Traffic, assert_master_has_everything
from tests.support import wait_until

pytestmark = pytest.mark.slow


def test_master_started_after_courts_catches_up(central_url: str, tmp_path: Path) -> None:
    courts = [Court(tmp_path / f"court{i}", f"Court {i}").start() for i in (1, 2)]
    traffic = [Traffic(c.udp_port, rate=500) for c in courts]
    try:
        for t in traffic:
            t.start()
        time.sleep(2)
        for t in traffic:
            t.stop()
        master = Master(central_url, tmp_path / "master", [c.endpoint for c in courts]).start()
        try:
            n = assert_master_has_everything(central_url, courts)
            assert n >= 1500
        finally:
            master.proc.stop()
    finally:
        for c in courts:
            assert c.proc is not None
            c.proc.close()


def test_master_killed_and_restarted_mid_stream(central_url: str, tmp_path: Path) -> None:
    court = Court(tmp_path / "court", "Court 1").start()
    master = Master(central_url, tmp_path / "master", [court.endpoint]).start()
    traffic = Traffic(court.udp_port, rate=400)
    try:
        traffic.start()
        time.sleep(2)
        master.proc.kill()
        time.sleep(2)  # events keep coming while the master is dead
        master.proc.start("Master storing into")
        time.sleep(2)
        traffic.stop()
        assert_master_has_everything(central_url, [court])
    finally:
        traffic.stop()
        master.proc.close()
        assert court.proc is not None
        court.proc.close()


def test_court_killed_restarted_and_replaced_by_a_new_database(central_url: str, tmp_path: Path) -> None:
    court = Court(tmp_path / "court", "Court 1").start()
    master = Master(central_url, tmp_path / "master", [court.endpoint]).start()
    try:
        traffic = Traffic(court.udp_port, rate=300)
        traffic.start()
        time.sleep(1.5)
        assert court.proc is not None
        court.proc.kill()  # mid-stream: whatever reached SQLite must reach the master
        traffic.stop()
        wait_until(lambda: "Court 1 offline" in master.proc.text(), 10, "3 missed heartbeats to mark the court offline")
        court.start()
        traffic = Traffic(court.udp_port, rate=300)
        traffic.start()
        time.sleep(1.5)
        traffic.stop()
        assert_master_has_everything(central_url, [court])
        wait_until(lambda: master.proc.text().count("(court-1) online") >= 2, 10, "the court to come back online")

        # The laptop's database is lost: a fresh file is a new epoch; the old rows stay at the master.
        old_rows = court.settled_rows()
        court.proc.stop()
        for f in court.data_dir.glob("restrike-slave.sqlite3*"):  # the database files; its keys stay
            f.unlink()
        court.start()
        traffic = Traffic(court.udp_port, rate=300)
        traffic.start()
        time.sleep(1.5)
        traffic.stop()
        new_rows = court.settled_rows()
        assert {r[1] for r in new_rows}.isdisjoint({r[1] for r in old_rows})
        from tests.pipeline import central_rows

        wait_until(lambda: len(central_rows(central_url, [court])) >= len(old_rows) + len(new_rows), 30, "both epochs")
        assert sorted(central_rows(central_url, [court])) == sorted(old_rows + new_rows)
        assert "new database" in master.proc.text()
    finally:
        master.proc.close()
        assert court.proc is not None
        court.proc.close()


def test_rows_published_before_their_match_is_named_get_its_number(central_url: str, tmp_path: Path) -> None:
    """``pre`` and ``at1`` leave the court before ``mch`` names the match; both databases must agree."""
    from shared.pss.simulator import simulate_match

    lines = [line for _, line in simulate_match(13, round_seconds=10, break_seconds=5).lines]  # loaded once: one match row
    court = Court(tmp_path / "court", "Court 1").start()
    master = Master(central_url, tmp_path / "master", [court.endpoint]).start()
    traffic = Traffic(court.udp_port, rate=100, lines=lines, once=True)  # each line its own batch
    try:
        traffic.start()
        traffic.join(30)
        assert traffic.sent == len(lines)
        assert_master_has_everything(central_url, [court])
        numbers = {(row[FIELD["match_uuid"]], row[FIELD["match_number"]]) for row in court.rows()}
        assert len(numbers) == 1 and None not in numbers.pop()  # every row linked to the one match, numbered
    finally:
        traffic.stop()
        master.proc.close()
        assert court.proc is not None
        court.proc.close()
