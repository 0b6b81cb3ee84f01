"""Stream/recording time in SQLite across the four restart scenarios of the design.

Each scenario: session 1 runs, is interrupted, session 2 starts later; events of session 2
must carry stream times that continue where session 1 stopped (the gap is not in the video).
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from shared.stream_time import InterruptionReason, SessionType
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import Datagram, DayContext, EventStore

T0 = 1_753_700_000_000
S = 1000  # one second in ms


def open_day(store: EventStore) -> DayContext:
    t = store.create_tournament("Open")
    store.add_day(t, 1, "2025-07-28")
    return store.activate_day(t, 1)


def stamp(store: EventStore, at: int, line: str = "clk;01:00") -> tuple[str | None, str | None]:
    (record,) = store.write_batch([Datagram(at, line.encode())])
    return record.str_timestamp, record.rec_timestamp


@pytest.mark.parametrize(
    "reason",
    [InterruptionReason.OBS_CRASH, InterruptionReason.MANUAL_STOP, InterruptionReason.NETWORK_LOSS],
)
def test_interrupted_stream_continues_its_time(store: EventStore, reason: InterruptionReason) -> None:
    """Scenarios B (OBS crash), C (manual stop/start), D (network loss)."""
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    assert stamp(store, T0 + 10 * S) == ("00:00:10", None)
    ended = book.end(day.day_id, SessionType.STREAM, T0 + 100 * S, reason)
    assert ended is not None and ended.interruption_reason is reason
    assert stamp(store, T0 + 150 * S) == (None, None)  # off air: no stream time
    second = book.start(day.day_id, SessionType.STREAM, T0 + 200 * S)
    assert second.number == 2 and second.cumulative_offset_seconds == 100
    assert stamp(store, T0 + 210 * S)[0] == "00:01:50"


def test_laptop_restart_is_repaired_at_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenario A: power cut while streaming; the next start closes the session at its last sign of life."""
    store = EventStore(tmp_path)
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    book.start(day.day_id, SessionType.RECORDING, T0 + 5 * S)
    book.keep_alive(T0 + 60 * S)
    assert stamp(store, T0 + 90 * S) == ("00:01:30", "00:01:25")  # last event before the cut
    store.close()

    monkeypatch.setattr(psutil, "boot_time", lambda: (T0 + 120 * S) / 1000)  # booted after the cut
    store = EventStore(tmp_path)
    repaired = SessionBook(store.conn).repair_after_restart()
    assert {(s.session_type, s.end_ms, s.interruption_reason) for s in repaired} == {
        (SessionType.STREAM, T0 + 90 * S, InterruptionReason.LAPTOP_RESTART),
        (SessionType.RECORDING, T0 + 90 * S, InterruptionReason.LAPTOP_RESTART),
    }
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0 + 300 * S)
    assert stamp(store, T0 + 301 * S) == ("00:01:31", None)
    store.close()


def test_agent_restart_without_reboot_is_named_so(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    monkeypatch.setattr(psutil, "boot_time", lambda: (T0 - 3600 * S) / 1000)
    (repaired,) = book.repair_after_restart()
    assert repaired.interruption_reason is InterruptionReason.AGENT_RESTART
    assert book.repair_after_restart() == []


def test_starting_over_an_open_session_closes_it_with_the_given_reason(store: EventStore) -> None:
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    book.start(day.day_id, SessionType.STREAM, T0 + 30 * S, previous_ended_because=InterruptionReason.NETWORK_LOSS)
    first, second = book.sessions(day.day_id, SessionType.STREAM)
    assert first.end_ms == T0 + 30 * S and first.interruption_reason is InterruptionReason.NETWORK_LOSS
    assert second.cumulative_offset_seconds == 30 and second.end_ms is None


def test_manual_correction_restamps_later_sessions_only(store: EventStore) -> None:
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    stamp(store, T0 + 10 * S)
    book.end(day.day_id, SessionType.STREAM, T0 + 100 * S, InterruptionReason.OBS_CRASH)
    book.start(day.day_id, SessionType.STREAM, T0 + 200 * S)
    stamp(store, T0 + 210 * S)
    restamped = book.correct_offset(day.day_id, SessionType.STREAM, 2, 7.0)
    assert restamped == 2
    assert [r.str_timestamp for r in store.events()] == ["00:00:10", "00:01:57"]
    with pytest.raises(LookupError):
        book.correct_offset(day.day_id, SessionType.STREAM, 9, 1.0)


def test_recalculate_day_stamps_events_stored_before_the_session_was_known(store: EventStore) -> None:
    day = open_day(store)
    stamp(store, T0 + 20 * S)  # stored while no session was recorded yet
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    assert store.events()[0].str_timestamp is None
    assert book.recalculate_day(day.day_id) == 1
    assert store.events()[0].str_timestamp == "00:00:20"
