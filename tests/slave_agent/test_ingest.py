"""The real path: UDP datagrams on loopback through the listener and writer into SQLite."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.records import EventRecord
from slave_agent.db.store import EventStore
from slave_agent.ingest import UdpIngest
from tests.support import async_wait_until, sample_lines


def run_with_ingest(store: EventStore, body: Callable[[UdpIngest, socket.socket], Awaitable[None]], **options: int | float) -> UdpIngest:
    async def main() -> UdpIngest:
        ingest = UdpIngest(store, **options)  # type: ignore[arg-type]
        await ingest.async_start("127.0.0.1", 0, 4 * 1024 * 1024)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await body(ingest, sender)
        finally:
            sender.close()
            await ingest.async_stop()
        return ingest

    return asyncio.run(main())


def test_whole_sample_capture_is_stored_row_for_row(store: EventStore) -> None:
    lines = [text for _stamp, text in sample_lines()]

    async def body(ingest: UdpIngest, sender: socket.socket) -> None:
        assert ingest.address is not None
        for i, line in enumerate(lines):
            sender.sendto(line.encode("utf-8"), ingest.address)
            if i % 200 == 0:
                await asyncio.sleep(0)  # a real court never sends 2,800 datagrams in one go
        await async_wait_until(lambda: ingest.stats.stored_events >= len(lines), 10.0)

    ingest = run_with_ingest(store, body)
    assert ingest.stats.dropped_queue_full == 0
    rows = store.events()
    assert [r.raw for r in rows] == lines
    assert all(r.valid for r in rows), [r.error for r in rows if not r.valid][:3]
    assert [r.seq for r in rows] == list(range(1, len(lines) + 1))

    (result,) = [r for r in rows if r.match_number == "1945" and r.code == "wmh"]
    assert result.parsed == {"winner_name": "Mikhail Kalashnikov", "blue_rounds": 2, "red_rounds": 1, "decision": "PTF"}
    played = [r for r in rows if r.match_uuid == result.match_uuid]  # the load that was played
    assert [r.parsed for r in played if r.code == "win"] == [{"winner": "blue"}]
    assert [r.parsed["round"] for r in played if r.code == "rst"] == [1, 2, 3]
    last_wrd = [r for r in played if r.code == "wrd"][-1]
    assert last_wrd.parsed["round_winners"] == {"1": "red", "2": "blue", "3": "blue"}
    match_row = store.conn.execute(
        "SELECT match_number, phase, blue_name, red_noc, status, winner, decision, blue_rounds, red_rounds "
        "FROM matches WHERE uuid = ?", (result.match_uuid,)
    ).fetchone()
    assert match_row == ("1945", "Final", "Mikhail Kalashnikov", "GER", "finished", "blue", "PTF", 2, 1)
    assert store.conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0] == 98  # every load


@pytest.mark.expect_error_logs
def test_listeners_hear_each_event_once_after_commit(store: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    heard: list[EventRecord] = []

    def listener(records: list[EventRecord]) -> None:
        # the rows are committed: another connection sees them already
        other = sqlite3.connect(store.path)
        try:
            n = other.execute("SELECT COUNT(*) FROM pss_events_v2 WHERE seq <= ?", (records[-1].seq,)).fetchone()[0]
        finally:
            other.close()
        assert n == records[-1].seq
        heard.extend(records)

    def broken(records: list[EventRecord]) -> None:
        raise RuntimeError("a buggy subscriber")

    async def body(ingest: UdpIngest, sender: socket.socket) -> None:
        ingest.listeners.extend([broken, listener])
        for i in range(300):
            sender.sendto(f"clk;{i // 60:02d}:{i % 60:02d}".encode(), ingest.address)
        await async_wait_until(lambda: len(heard) >= 300, 10.0)

    run_with_ingest(store, body)
    assert [r.seq for r in heard] == list(range(1, 301))
    assert "failed; ingest continues" in caplog.text  # the broken listener is named, not hidden


@pytest.mark.expect_error_logs
def test_locked_database_holds_events_and_retries(store: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    async def body(ingest: UdpIngest, sender: socket.socket) -> None:
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        for i in range(50):
            sender.sendto(f"hl1;{i}".encode(), ingest.address)
        await async_wait_until(lambda: ingest.stats.store_retries >= 2, 10.0)
        assert ingest.stats.stored_events == 0
        other.execute("ROLLBACK")
        other.close()
        await async_wait_until(lambda: ingest.stats.stored_events == 50, 10.0)

    with caplog.at_level(logging.INFO, logger="slave_agent.ingest"):
        ingest = run_with_ingest(store, body, retry_seconds=0.05)
    assert [r.parsed["level"] for r in store.events()] == list(range(50))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "will be retried" in errors[0].getMessage()  # loud once, then quiet
    assert "nothing was lost" in caplog.text
    assert ingest.stats.last_error is None


@pytest.mark.expect_error_logs
def test_full_queue_is_counted_and_reported(store: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    async def body(ingest: UdpIngest, sender: socket.socket) -> None:
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        for _ in range(40):
            sender.sendto(b"rnd;1", ingest.address)
        await async_wait_until(lambda: ingest.stats.received == 40, 10.0)
        other.execute("ROLLBACK")
        other.close()
        await async_wait_until(lambda: ingest.stats.received == ingest.stats.stored_events + ingest.stats.dropped_queue_full, 10.0)

    ingest = run_with_ingest(store, body, queue_size=10, max_batch=5, retry_seconds=0.05)
    assert ingest.stats.dropped_queue_full > 0
    assert store.count() == ingest.stats.stored_events == 40 - ingest.stats.dropped_queue_full
    assert "queue full" in caplog.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=0, max_size=2000), min_size=1, max_size=20))
def test_any_bytes_become_rows(tmp_path: Path, datagrams: list[bytes]) -> None:
    store = EventStore(tmp_path / f"h{abs(hash(tuple(datagrams)))}")
    try:
        async def body(ingest: UdpIngest, sender: socket.socket) -> None:
            for data in datagrams:
                sender.sendto(data, ingest.address)
            await async_wait_until(lambda: ingest.stats.received == len(datagrams) and ingest.queue.empty(), 10.0)

        run_with_ingest(store, body)
        stored = {bytes(r[0]) for r in store.conn.execute("SELECT raw_datagram FROM pss_events_v2")}
        assert stored == set(datagrams)
        assert store.count() >= len(datagrams)
    finally:
        store.close()


@pytest.mark.expect_error_logs
def test_a_datagram_that_breaks_the_writer_is_stored_flagged_and_the_rest_goes_on(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import slave_agent.db.store as store_module

    real_parse = store_module.parse_datagram

    def parse(data: bytes):  # type: ignore[no-untyped-def]
        if data == b"boom":
            raise RuntimeError("a parser bug")
        return real_parse(data)

    monkeypatch.setattr(store_module, "parse_datagram", parse)

    async def body(ingest: UdpIngest, sender: socket.socket) -> None:
        for line in (b"pt1;1", b"boom", b"pt2;2"):
            sender.sendto(line, ingest.address)
        await async_wait_until(lambda: ingest.stats.stored_events == 3, 10.0)

    run_with_ingest(store, body)
    rows = store.events()
    assert [r.raw_datagram for r in rows] == [b"pt1;1", b"boom", b"pt2;2"]
    assert [r.valid for r in rows] == [True, False, True]
    assert "RuntimeError: a parser bug" in (rows[1].error or "")
    assert not store.conn.in_transaction
    assert "storing them one at a time" in caplog.text
