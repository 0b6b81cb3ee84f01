"""Stream time: HH:MM:SS stamps and continuity across restarts (pure data, no OBS)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.stream_time import (
    InterruptionReason,
    Session,
    SessionType,
    active_session_at,
    format_hms,
    parse_hms,
    recompute_offsets,
    stream_seconds,
)

DAY_START_MS = 1_752_998_400_000  # 2025-07-20 08:00:00 UTC
MINUTE_MS = 60_000


def at(hours: int, minutes: int, seconds: float = 0) -> int:
    """UTC ms on the test day, from a wall-clock time after 08:00."""
    return DAY_START_MS + round(((hours - 8) * 3600 + minutes * 60 + seconds) * 1000)


def stamp(sessions: list[Session], event_ms: int) -> str | None:
    """What the slave stores as ``str_timestamp`` for an event."""
    session = active_session_at(sessions, event_ms)
    if session is None:
        return None
    return format_hms(stream_seconds(event_ms, session.start_ms, session.cumulative_offset_seconds))


# --- format_hms / parse_hms -------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "00:00:00"),
        (0.999, "00:00:00"),
        (59.9, "00:00:59"),
        (60, "00:01:00"),
        (3599.999, "00:59:59"),
        (3600, "01:00:00"),
        (45296.7, "12:34:56"),
        (99 * 3600 + 3599, "99:59:59"),
        (100 * 3600, "100:00:00"),
    ],
)
def test_format_hms_floors_and_keeps_two_hour_digits(seconds: float, expected: str) -> None:
    assert format_hms(seconds) == expected


@pytest.mark.parametrize("bad", [-0.001, -5, math.nan, math.inf, -math.inf])
def test_format_hms_refuses_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="HH:MM:SS"):
        format_hms(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:00", 0),
        ("9:05", 545),
        ("12:03", 723),
        ("59:59", 3599),
        ("1:02:03", 3723),
        ("01:02:03", 3723),
        ("00:00:00", 0),
        ("100:00:00", 360_000),
        ("  1:00:00\n", 3600),
    ],
)
def test_parse_hms_accepts_the_forms_operators_type(text: str, expected: int) -> None:
    assert parse_hms(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "12", "1:2", "1:2:03", "1:60", "60:00", "90:00", "1:60:00", "1:00:60", "-1:00",
     "1:00:00.5", "a:bc", "1::00", "１:00", "1:00:00:00", "1 :00"],
)
def test_parse_hms_rejects_anything_else_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected H:MM:SS, HH:MM:SS or M:SS") as info:
        parse_hms(text)
    assert repr(text) in str(info.value)


@given(st.floats(min_value=0, max_value=10 * 24 * 3600, allow_nan=False))
def test_parse_hms_reads_back_what_format_hms_wrote(seconds: float) -> None:
    assert parse_hms(format_hms(seconds)) == math.floor(seconds)


def test_stream_seconds_is_event_minus_start_plus_offset() -> None:
    assert stream_seconds(at(9, 1, 30), at(9, 0), 100.0) == 190.0
    assert stream_seconds(at(9, 0), at(9, 0), 0.0) == 0.0


def test_stream_seconds_absorbs_float_noise_at_second_boundaries() -> None:
    # 2.999 s into the session plus 0.001 s of offset is exactly 3 s, not 2.9999999999999996.
    seconds = stream_seconds(DAY_START_MS + 2999, DAY_START_MS, 0.001)
    assert seconds == 3.0
    assert format_hms(seconds) == "00:00:03"


# --- restart scenarios ------------------------------------------------------------------

# Each scenario: session 1 runs 09:00:00 -> 10:15:30 and is interrupted; session 2 starts
# after the gap the interruption took. 75.5 min of stream were published by session 1.
SCENARIOS = {
    "A laptop restart": (InterruptionReason.LAPTOP_RESTART, 4 * MINUTE_MS + 10_000),
    "B OBS crash": (InterruptionReason.OBS_CRASH, 25_000),
    "C manual stop/start": (InterruptionReason.MANUAL_STOP, 90_000),
    "D network loss": (InterruptionReason.NETWORK_LOSS, 2 * MINUTE_MS + 3_500),
}


def interrupted_day(reason: InterruptionReason, gap_ms: int) -> list[Session]:
    end_1 = at(10, 15, 30)
    return recompute_offsets(
        [
            Session(SessionType.STREAM, 1, at(9, 0), end_1, interruption_reason=reason),
            Session(SessionType.STREAM, 2, end_1 + gap_ms),
        ]
    )


@pytest.mark.parametrize(("reason", "gap_ms"), SCENARIOS.values(), ids=SCENARIOS.keys())
def test_stream_time_runs_on_across_an_interruption(reason: InterruptionReason, gap_ms: int) -> None:
    sessions = interrupted_day(reason, gap_ms)
    first, second = sessions
    end_1 = at(10, 15, 30)
    start_2 = end_1 + gap_ms

    assert first.cumulative_offset_seconds == 0
    assert first.interruption_reason is reason
    assert second.cumulative_offset_seconds == 75 * 60 + 30  # what session 1 published

    assert stamp(sessions, at(9, 0)) == "00:00:00"
    assert stamp(sessions, at(9, 42, 7.8)) == "00:42:07"
    assert stamp(sessions, end_1 - 1) == "01:15:29"
    # The gap was never on the stream: no stamp rather than a wrong one.
    assert stamp(sessions, end_1) is None
    assert stamp(sessions, start_2 - 1) is None
    # Session 2 starts exactly where session 1 stopped, and runs on from there.
    assert stamp(sessions, start_2) == "01:15:30"
    assert stamp(sessions, start_2 + 10 * MINUTE_MS + 5_000) == "01:25:35"


@pytest.mark.parametrize(("reason", "gap_ms"), SCENARIOS.values(), ids=SCENARIOS.keys())
def test_a_correction_of_session_two_shifts_session_two_and_later_only(
    reason: InterruptionReason, gap_ms: int
) -> None:
    base = interrupted_day(reason, gap_ms)
    start_3 = at(13, 0)
    day = recompute_offsets(
        [
            replace(base[1], end_ms=at(12, 0), interruption_reason=InterruptionReason.AGENT_RESTART),
            base[0],
            Session(SessionType.STREAM, 3, start_3),
        ]
    )
    corrected = recompute_offsets([day[0], replace(day[1], time_offset_seconds=12.5), day[2]])

    assert [s.number for s in corrected] == [1, 2, 3]
    assert corrected[0] == day[0]
    assert corrected[1].cumulative_offset_seconds == day[1].cumulative_offset_seconds + 12.5
    assert corrected[2].cumulative_offset_seconds == day[2].cumulative_offset_seconds + 12.5
    assert stamp(corrected, at(9, 30)) == stamp(day, at(9, 30)) == "00:30:00"
    published_by_1_and_2 = 75 * 60 + 30 + (at(12, 0) - (at(10, 15, 30) + gap_ms)) / 1000
    assert stamp(day, start_3) == format_hms(published_by_1_and_2)
    assert stamp(corrected, start_3) == format_hms(published_by_1_and_2 + 12.5)


def test_a_correction_of_session_one_shifts_the_whole_day() -> None:
    day = recompute_offsets(
        [
            Session(SessionType.RECORDING, 1, at(9, 0), at(10, 0), time_offset_seconds=-5),
            Session(SessionType.RECORDING, 2, at(10, 5)),
        ]
    )
    assert [s.cumulative_offset_seconds for s in day] == [-5, 3595]


def test_a_negative_correction_can_restart_the_count_at_zero() -> None:
    # YouTube split the broadcast into a new video: the operator sets session 2 back to 0.
    day = recompute_offsets(
        [
            Session(SessionType.STREAM, 1, at(9, 0), at(10, 0)),
            Session(SessionType.STREAM, 2, at(10, 30), time_offset_seconds=-3600),
        ]
    )
    assert stamp(day, at(10, 30, 7)) == "00:00:07"


def test_recompute_offsets_sorts_by_start_and_leaves_its_input_alone() -> None:
    one = Session(SessionType.STREAM, 1, at(9, 0), at(9, 30), cumulative_offset_seconds=999)
    two = Session(SessionType.STREAM, 2, at(9, 40), at(10, 0))
    result = recompute_offsets([two, one])
    assert [s.number for s in result] == [1, 2]
    assert [s.cumulative_offset_seconds for s in result] == [0, 1800]
    assert one.cumulative_offset_seconds == 999  # frozen; a new list of new sessions


def test_recompute_offsets_of_nothing_is_nothing() -> None:
    assert recompute_offsets([]) == []


@pytest.mark.parametrize(
    ("sessions", "message"),
    [
        (
            [Session(SessionType.STREAM, 1, at(9, 0)), Session(SessionType.STREAM, 2, at(10, 0))],
            "session 1 is still open",
        ),
        (
            [
                Session(SessionType.STREAM, 1, at(9, 0), at(10, 0)),
                Session(SessionType.STREAM, 2, at(9, 59)),
            ],
            "overlap",
        ),
        ([Session(SessionType.STREAM, 1, at(9, 0), at(8, 59))], "ends before it starts"),
        (
            [
                Session(SessionType.STREAM, 1, at(9, 0), at(10, 0)),
                Session(SessionType.RECORDING, 1, at(10, 5)),
            ],
            "single type",
        ),
    ],
    ids=["open-then-another", "overlap", "negative-length", "mixed-types"],
)
def test_recompute_offsets_refuses_inconsistent_sessions(sessions: list[Session], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        recompute_offsets(sessions)


def test_back_to_back_sessions_are_not_an_overlap() -> None:
    day = recompute_offsets(
        [
            Session(SessionType.REPLAY_BUFFER, 1, at(9, 0), at(9, 10)),
            Session(SessionType.REPLAY_BUFFER, 2, at(9, 10)),
        ]
    )
    assert active_session_at(day, at(9, 10)) == day[1]
    assert stamp(day, at(9, 10)) == "00:10:00"


def test_active_session_at_boundaries_and_gaps() -> None:
    day = recompute_offsets(
        [
            Session(SessionType.STREAM, 1, at(9, 0), at(9, 30)),
            Session(SessionType.STREAM, 2, at(9, 35)),
        ]
    )
    assert active_session_at(day, at(8, 59, 59)) is None
    assert active_session_at(day, at(9, 0)) == day[0]
    assert active_session_at(day, at(9, 30) - 1) == day[0]
    assert active_session_at(day, at(9, 30)) is None
    assert active_session_at(day, at(9, 35)) == day[1]
    assert active_session_at(day, at(23, 59)) == day[1]  # open: runs until closed
    assert active_session_at([], at(9, 0)) is None


def test_active_session_at_prefers_the_later_start_when_bad_data_overlaps() -> None:
    stale = Session(SessionType.STREAM, 1, at(9, 0))  # never closed by a crash
    fresh = Session(SessionType.STREAM, 2, at(9, 20))
    assert active_session_at([fresh, stale], at(9, 25)) == fresh


@given(
    st.lists(
        st.tuples(st.integers(1, 6 * 3600 * 1000), st.integers(0, 3600 * 1000)),
        min_size=1,
        max_size=8,
    )
)
def test_stream_time_is_continuous_for_any_run_of_sessions(spans: list[tuple[int, int]]) -> None:
    sessions = []
    start = DAY_START_MS
    for number, (length, gap) in enumerate(spans, start=1):
        sessions.append(Session(SessionType.STREAM, number, start, start + length))
        start += length + gap
    day = recompute_offsets(sessions)
    published = 0.0
    for previous, following in itertools.pairwise(day):
        assert previous.end_ms is not None
        end_time = stream_seconds(previous.end_ms, previous.start_ms, previous.cumulative_offset_seconds)
        assert following.cumulative_offset_seconds == pytest.approx(end_time, abs=1e-6)
        published += (previous.end_ms - previous.start_ms) / 1000
        assert following.cumulative_offset_seconds == pytest.approx(published, abs=1e-6)
