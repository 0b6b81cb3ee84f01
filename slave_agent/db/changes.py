"""Reading row changes: every row whose revision is above a given one, in revision order.

The revisions are given by the schema's triggers (``slave_agent/db/schema.py``, migration 7),
whoever writes: the ingest writer, ``restrike slave session correct`` in another process, the
OBS triggers. The publisher reads them here after they are committed, for PUB and for the
master's catch-up alike.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.changes import EventChange, IvrEventRecord, MatchRecord, RowChange, SessionRecord

__all__ = ["ChangeSlice", "last_rev", "read_changes"]

_EVENTS = """
    SELECT rev, node_id, epoch, seq, match_number, rec_timestamp, str_timestamp, ivr_link
    FROM pss_events_v2 WHERE rev > 0 AND rev > ? ORDER BY rev LIMIT ?
"""
_MATCHES = """
    SELECT m.rev, m.uuid, t.uuid, d.uuid, m.match_number, m.phase, m.weight_class, m.division,
           m.blue_name, m.blue_noc, m.red_name, m.red_noc, m.status, m.winner, m.decision,
           m.blue_rounds, m.red_rounds, m.loaded_ms, m.ready_ms, m.finished_ms
    FROM matches m
    LEFT JOIN tournaments t ON t.id = m.tournament_id
    LEFT JOIN tournament_days d ON d.id = m.tournament_day_id
    WHERE m.rev > ? ORDER BY m.rev LIMIT ?
"""
_SESSIONS = """
    SELECT s.rev, d.uuid, s.session_type, s.session_number, s.start_ms, s.end_ms, s.is_active,
           s.interruption_reason, s.time_offset_seconds, s.cumulative_offset_seconds, s.output_path
    FROM obs_sessions s JOIN tournament_days d ON d.id = s.tournament_day_id
    WHERE s.rev > ? ORDER BY s.rev LIMIT ?
"""

_IVR_EVENTS = """
    SELECT e.rev, e.uuid, d.uuid, m.uuid, e.match_number, e.kind, e.source, e.outcome, e.reason, e.blue, e.red,
           e.challenge_by, e.challenge_result, e.recording_path, e.clip_path, e.clip_bytes, e.clip_start_ms,
           e.clip_end_ms, e.linked_events, e.requested_ms, e.finished_ms, e.steps
    FROM ivr_events e
    LEFT JOIN tournament_days d ON d.id = e.tournament_day_id
    LEFT JOIN matches m ON m.id = e.match_id
    WHERE e.rev > ? ORDER BY e.rev LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class ChangeSlice:
    """One consistent read: the changes after a revision, and the newest revision at that moment."""

    changes: list[RowChange]
    last_rev: int

    @property
    def complete(self) -> bool:
        """True when nothing newer than these changes existed when they were read."""
        return not self.changes or self.changes[-1].rev >= self.last_rev


def last_rev(conn: sqlite3.Connection) -> int:
    """The newest revision of the database (0 before any change)."""
    row = conn.execute("SELECT rev FROM change_clock WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def read_changes(conn: sqlite3.Connection, after_rev: int, limit: int) -> ChangeSlice:
    """The rows of the four tables whose revision is above ``after_rev``, oldest first, at most ``limit``.

    One read transaction, so the four tables are seen at the same moment: a row changed while
    reading can never be skipped (a page ends at a revision, and everything up to it is in it).
    """
    with _snapshot(conn):
        rows: list[RowChange] = [
            *(_event(r) for r in conn.execute(_EVENTS, (after_rev, limit))),
            *(_match(r) for r in conn.execute(_MATCHES, (after_rev, limit))),
            *(_session(r) for r in conn.execute(_SESSIONS, (after_rev, limit))),
            *(_ivr_event(r) for r in conn.execute(_IVR_EVENTS, (after_rev, limit))),
        ]
        newest = last_rev(conn)
    return ChangeSlice(heapq.nsmallest(limit, rows, key=lambda change: change.rev), newest)


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction on an autocommit connection (WAL: it never blocks the writer)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _event(row: tuple[Any, ...]) -> EventChange:
    rev, node_id, epoch, seq, match_number, rec_ts, str_ts, ivr = row
    return EventChange(
        rev=rev, node_id=node_id, epoch=epoch, seq=seq, match_number=match_number,
        rec_timestamp=rec_ts, str_timestamp=str_ts, ivr_link=ivr,
    )


def _match(row: tuple[Any, ...]) -> MatchRecord:
    (rev, match_uuid, t_uuid, d_uuid, number, phase, weight, division, blue_name, blue_noc, red_name,
     red_noc, status, winner, decision, blue_rounds, red_rounds, loaded, ready, finished) = row
    return MatchRecord(
        rev=rev, uuid=match_uuid, tournament_uuid=t_uuid, tournament_day_uuid=d_uuid, match_number=number,
        phase=phase, weight_class=weight, division=division, blue_name=blue_name, blue_noc=blue_noc,
        red_name=red_name, red_noc=red_noc, status=status, winner=winner, decision=decision,
        blue_rounds=blue_rounds, red_rounds=red_rounds, loaded_ms=loaded, ready_ms=ready, finished_ms=finished,
    )


def _session(row: tuple[Any, ...]) -> SessionRecord:
    (rev, d_uuid, kind, number, start, end, active, reason, offset, cumulative, output) = row
    return SessionRecord(
        rev=rev, tournament_day_uuid=d_uuid, session_type=kind, session_number=number, start_ms=start,
        end_ms=end, is_active=bool(active), interruption_reason=reason, time_offset_seconds=offset,
        cumulative_offset_seconds=cumulative, output_path=output,
    )


def _ivr_event(row: tuple[Any, ...]) -> IvrEventRecord:
    (rev, uuid, d_uuid, m_uuid, number, trigger, source, outcome, reason, blue, red, by, result, recording, clip,
     size, clip_start, clip_end, linked, requested, finished, steps) = row
    return IvrEventRecord(
        rev=rev, uuid=uuid, tournament_day_uuid=d_uuid, match_uuid=m_uuid, match_number=number, trigger=trigger,
        source=source, outcome=outcome, reason=reason, blue=blue, red=red, challenge_by=by, challenge_result=result,
        recording_path=recording, clip_path=clip, clip_bytes=size, clip_start_ms=clip_start, clip_end_ms=clip_end,
        linked_events=linked, requested_ms=requested, finished_ms=finished, steps=json.loads(steps),
    )
