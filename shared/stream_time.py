"""Stream and recording time: ``HH:MM:SS`` stamps and the offsets that keep them continuous.

Both the slave's SQLite layer and the master use these helpers, so an event gets the
same ``str_timestamp`` / ``rec_timestamp`` on both ends.

Continuity rule (design, "Stream and recording time"): when a stream, recording or
replay buffer restarts, the interrupted session ends with its reason and the new one
starts where the earlier sessions left off. Its cumulative offset is the time the earlier
sessions already covered, plus the manual corrections of every session up to and
including itself. The gap between the sessions (the reboot, the reconnect) is not in
the published video, so it is not counted. See :func:`recompute_offsets`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "InterruptionReason",
    "Session",
    "SessionType",
    "active_session_at",
    "format_hms",
    "parse_hms",
    "recompute_offsets",
    "stream_seconds",
]


class SessionType(StrEnum):
    """What OBS was producing; each type has its own numbering and timeline per day."""

    STREAM = "stream"
    RECORDING = "recording"
    REPLAY_BUFFER = "replay_buffer"


class InterruptionReason(StrEnum):
    """Why a session ended; informational only, the offset rule is the same for all."""

    LAPTOP_RESTART = "laptop_restart"
    OBS_CRASH = "obs_crash"
    MANUAL_STOP = "manual_stop"
    NETWORK_LOSS = "network_loss"
    AGENT_RESTART = "agent_restart"
    DAY_END = "day_end"


@dataclass(frozen=True, slots=True)
class Session:
    """One ``obs_sessions`` row: a stretch of continuous stream, recording or replay buffer.

    ``time_offset_seconds`` is the operator's manual correction for this session (it may be
    negative, for example when the published video lost a few seconds); it shifts this
    session and every later one. ``cumulative_offset_seconds`` is derived by
    :func:`recompute_offsets`; never set it by hand.
    """

    session_type: SessionType
    number: int
    start_ms: int
    end_ms: int | None = None
    time_offset_seconds: float = 0.0
    cumulative_offset_seconds: float = 0.0
    interruption_reason: InterruptionReason | None = None


_HMS = re.compile(r"([0-9]+):([0-5][0-9]):([0-5][0-9])")
_MS = re.compile(r"([0-5]?[0-9]):([0-5][0-9])")


def format_hms(seconds: float) -> str:
    """``HH:MM:SS`` (hours grow past 99 as needed), floored to the whole second.

    Raises ``ValueError`` for negative or non-finite input: such an event is not in the
    published video, and the caller should store no stamp rather than a wrong one.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as HH:MM:SS: need a finite time >= 0")
    whole = math.floor(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_hms(text: str) -> int:
    """Whole seconds for ``H:MM:SS``, ``HH:MM:SS`` or ``M:SS``, as operators type corrections."""
    stripped = text.strip()
    if match := _HMS.fullmatch(stripped):
        hours, minutes, secs = (int(part) for part in match.groups())
        return hours * 3600 + minutes * 60 + secs
    if match := _MS.fullmatch(stripped):
        minutes, secs = (int(part) for part in match.groups())
        return minutes * 60 + secs
    raise ValueError(
        f"not a time: {text!r}; expected H:MM:SS, HH:MM:SS or M:SS "
        "with minutes and seconds between 00 and 59 (write 1:30:00, not 90:00)"
    )


def stream_seconds(event_ms: int, session_start_ms: int, cumulative_offset_seconds: float) -> float:
    """Stream-relative time of an event, rounded to the millisecond its inputs carry.

    The rounding keeps float noise from flooring 2.999 s + 0.001 s down to 2 s.
    """
    return round((event_ms - session_start_ms) / 1000 + cumulative_offset_seconds, 3)


def recompute_offsets(sessions: list[Session]) -> list[Session]:
    """Sessions of one type on one day, in start order, with their cumulative offsets derived.

    Session 1 starts at its own correction. Each later session starts at the stream time
    where the one before it ended::

        cumulative[1] = correction[1]
        cumulative[k] = cumulative[k-1] + duration[k-1] + correction[k]

    so a correction of session k shifts sessions k, k+1, ... and leaves earlier ones alone.
    Only the last session may still be running. Raises ``ValueError`` for mixed types,
    a running session followed by another one (repair it at start-up first), a session
    that ends before it starts, or sessions that overlap.
    """
    ordered = sorted(sessions, key=lambda s: (s.start_ms, s.number))
    if len({s.session_type for s in ordered}) > 1:
        raise ValueError("recompute_offsets needs sessions of a single type")
    result: list[Session] = []
    cumulative = 0.0
    previous: Session | None = None
    for session in ordered:
        if session.end_ms is not None and session.end_ms < session.start_ms:
            raise ValueError(f"{session.session_type} session {session.number} ends before it starts")
        if previous is not None:
            if previous.end_ms is None:
                raise ValueError(
                    f"{previous.session_type} session {previous.number} is still open but session "
                    f"{session.number} started after it; close it with a reason first"
                )
            if session.start_ms < previous.end_ms:
                raise ValueError(
                    f"{session.session_type} sessions {previous.number} and {session.number} overlap"
                )
            cumulative += (previous.end_ms - previous.start_ms) / 1000
        cumulative += session.time_offset_seconds
        previous = replace(session, cumulative_offset_seconds=round(cumulative, 3))
        result.append(previous)
    return result


def active_session_at(sessions: list[Session], event_ms: int) -> Session | None:
    """The session of one type that was running when the event arrived, if any.

    A session covers ``start_ms <= event_ms < end_ms`` (an open session has no end), so an
    event at the very moment of a restart belongs to the new session. Should bad data make
    two sessions cover the moment, the later-started one wins, as it is the one on air.
    """
    covering = [
        s for s in sessions if s.start_ms <= event_ms and (s.end_ms is None or event_ms < s.end_ms)
    ]
    return max(covering, key=lambda s: (s.start_ms, s.number), default=None)
