"""OBS sessions in SQLite: start, end, interrupt, repair after a crash, correct and recalculate.

The offset rule itself lives in :mod:`shared.stream_time`; this module only loads the
rows, applies the rule and writes the result back (and the stamps of the day's events).
"""

from __future__ import annotations

import logging
import sqlite3
import time

import psutil

from shared.stream_time import InterruptionReason, Session, SessionType, recompute_offsets
from slave_agent.db.schema import SESSION_TIME_SQL
from slave_agent.db.store import transaction

__all__ = ["SessionBook", "now_ms"]

logger = logging.getLogger(__name__)

_COLUMNS = (
    "session_type, session_number, start_ms, end_ms, time_offset_seconds, "
    "cumulative_offset_seconds, interruption_reason"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _session(row: tuple[object, ...]) -> Session:
    kind, number, start, end, offset, cumulative, reason = row
    return Session(
        session_type=SessionType(str(kind)),
        number=int(number),  # type: ignore[call-overload]
        start_ms=int(start),  # type: ignore[call-overload]
        end_ms=None if end is None else int(end),  # type: ignore[call-overload]
        time_offset_seconds=float(offset),  # type: ignore[arg-type]
        cumulative_offset_seconds=float(cumulative),  # type: ignore[arg-type]
        interruption_reason=None if reason is None else InterruptionReason(str(reason)),
    )


class SessionBook:
    """``obs_sessions`` of one SQLite database; every method is one transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def sessions(self, day_id: int, session_type: SessionType) -> list[Session]:
        """Sessions of one type on one day, in start order."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM obs_sessions WHERE tournament_day_id = ? AND session_type = ? "
            "ORDER BY start_ms, session_number",
            (day_id, session_type.value),
        ).fetchall()
        return [_session(r) for r in rows]

    def active(self, day_id: int, session_type: SessionType) -> Session | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM obs_sessions WHERE tournament_day_id = ? AND session_type = ? "
            "AND is_active = 1",
            (day_id, session_type.value),
        ).fetchone()
        return _session(row) if row else None

    def start(
        self,
        day_id: int,
        session_type: SessionType,
        at_ms: int | None = None,
        *,
        output_path: str | None = None,
        previous_ended_because: InterruptionReason = InterruptionReason.MANUAL_STOP,
    ) -> Session:
        """Open the next session; a still-open one is first ended with the given reason.

        The new session's cumulative offset continues the stream time of the earlier ones.
        """
        at = now_ms() if at_ms is None else at_ms
        with transaction(self.conn):
            self._end_active(day_id, session_type, at, previous_ended_because)
            earlier = self.sessions(day_id, session_type)
            number = max((s.number for s in earlier), default=0) + 1
            planned = recompute_offsets([*earlier, Session(session_type, number, at)])
            self.conn.execute(
                "INSERT INTO obs_sessions (tournament_day_id, session_type, session_number, start_ms, "
                "cumulative_offset_seconds, output_path, last_alive_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (day_id, session_type.value, number, at, planned[-1].cumulative_offset_seconds, output_path, at),
            )
        logger.info(
            "%s session %d started (stream time continues at %.0f s)",
            session_type.value, number, planned[-1].cumulative_offset_seconds,
        )
        return planned[-1]

    def end(
        self, day_id: int, session_type: SessionType, at_ms: int | None = None,
        reason: InterruptionReason | None = None,
    ) -> Session | None:
        """Close the running session of a type (``reason`` None = a normal, planned end)."""
        at = now_ms() if at_ms is None else at_ms
        with transaction(self.conn):
            ended = self._end_active(day_id, session_type, at, reason)
        return ended

    def _end_active(
        self, day_id: int, session_type: SessionType, at: int, reason: InterruptionReason | None
    ) -> Session | None:
        current = self.active(day_id, session_type)
        if current is None:
            return None
        end = max(at, current.start_ms)
        self.conn.execute(
            "UPDATE obs_sessions SET end_ms = ?, is_active = 0, interruption_reason = ? "
            "WHERE tournament_day_id = ? AND session_type = ? AND session_number = ?",
            (end, reason.value if reason else None, day_id, session_type.value, current.number),
        )
        return Session(
            current.session_type, current.number, current.start_ms, end,
            current.time_offset_seconds, current.cumulative_offset_seconds, reason,
        )

    def keep_alive(self, at_ms: int | None = None) -> None:
        """Record that open sessions are still running, so a crash can be dated later."""
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE obs_sessions SET last_alive_ms = ? WHERE is_active = 1",
                (now_ms() if at_ms is None else at_ms,),
            )

    def repair_after_restart(self) -> list[Session]:
        """Close sessions a crash or power cut left open, dated at the last sign of life.

        A laptop that booted after that moment was restarted; otherwise the agent was.
        """
        boot_ms = int(psutil.boot_time() * 1000)
        repaired: list[Session] = []
        with transaction(self.conn):
            rows = self.conn.execute(
                "SELECT tournament_day_id, session_type, COALESCE(last_alive_ms, start_ms) "
                "FROM obs_sessions WHERE is_active = 1"
            ).fetchall()
            for day_id, kind, alive_ms in rows:
                last_event = self.conn.execute(
                    "SELECT MAX(received_ms) FROM pss_events_v2 WHERE tournament_day_id = ?", (day_id,)
                ).fetchone()[0]
                end = max(alive_ms, last_event or 0)
                reason = (
                    InterruptionReason.LAPTOP_RESTART if boot_ms > end else InterruptionReason.AGENT_RESTART
                )
                ended = self._end_active(day_id, SessionType(kind), end, reason)
                if ended is not None:
                    repaired.append(ended)
        return repaired

    def correct_offset(self, day_id: int, session_type: SessionType, number: int, seconds: float) -> int:
        """Set a session's manual correction, then recalculate the day; returns events restamped."""
        with transaction(self.conn):
            cur = self.conn.execute(
                "UPDATE obs_sessions SET time_offset_seconds = ? "
                "WHERE tournament_day_id = ? AND session_type = ? AND session_number = ?",
                (seconds, day_id, session_type.value, number),
            )
            if cur.rowcount == 0:
                raise LookupError(f"no {session_type.value} session {number} on that day")
            return self._recalculate(day_id)

    def recalculate_day(self, day_id: int) -> int:
        """Re-derive every offset of a day and restamp its events; returns events restamped."""
        with transaction(self.conn):
            return self._recalculate(day_id)

    def _recalculate(self, day_id: int) -> int:
        for session_type in SessionType:
            for session in recompute_offsets(self.sessions(day_id, session_type)):
                self.conn.execute(
                    "UPDATE obs_sessions SET cumulative_offset_seconds = ? "
                    "WHERE tournament_day_id = ? AND session_type = ? AND session_number = ?",
                    (session.cumulative_offset_seconds, day_id, session_type.value, session.number),
                )
        cur = self.conn.execute(
            f"""UPDATE pss_events_v2 SET
                    str_timestamp = {SESSION_TIME_SQL.format(session_type="stream")},
                    rec_timestamp = {SESSION_TIME_SQL.format(session_type="recording")}
                WHERE tournament_day_id = ?""",
            (day_id,),
        )
        return cur.rowcount
