"""The replay triggers in SQLite: the ``ivr_events`` log, and clip links and recording times on events.

Every change to stored event rows goes through :func:`update_events`; each reaches the master
by itself (the schema's triggers give the changed rows a revision, see ``docs/architecture.md``,
"Row changes").
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from slave_agent.db.schema import SESSION_TIME_SQL
from slave_agent.db.store import transaction
from slave_agent.obs.triggers import ClipSpan, Step, StepOutcome, Trigger, TriggerKind, TriggerLog

__all__ = ["link_clip", "recent_logs", "save_log", "set_challenge_result", "update_events"]

_COLUMNS = (
    "uuid, kind, source, outcome, reason, tournament_day_id, match_id, match_number, blue, red, challenge_by, "
    "challenge_result, recording_path, clip_path, clip_bytes, clip_start_ms, clip_end_ms, linked_events, "
    "requested_ms, finished_ms, steps"
)


def update_events(conn: sqlite3.Connection, assignments: str, where: str, args: tuple[Any, ...]) -> int:
    """``UPDATE pss_events_v2 SET <assignments> WHERE <where>``; returns the rows changed (caller's transaction)."""
    return conn.execute(f"UPDATE pss_events_v2 SET {assignments} WHERE {where}", args).rowcount


def link_clip(conn: sqlite3.Connection, span: ClipSpan, clip_path: str) -> int:
    """Give the events inside a clip its path, and a recording time where they have none; returns events linked."""
    with transaction(conn):
        update_events(
            conn, f"rec_timestamp = {SESSION_TIME_SQL.format(session_type='recording')}",
            "received_ms BETWEEN ? AND ? AND rec_timestamp IS NULL AND tournament_day_id IS NOT NULL",
            (span.start_ms, span.end_ms),
        )
        return update_events(
            conn, "ivr_link = ?", "received_ms BETWEEN ? AND ? AND ivr_link IS NULL",
            (clip_path, span.start_ms, span.end_ms),
        )


def save_log(conn: sqlite3.Connection, log: TriggerLog, day_id: int | None) -> None:
    """Store one trigger's outcome."""
    t = log.trigger
    match_id = None
    if t.match_uuid is not None:
        row = conn.execute("SELECT id FROM matches WHERE uuid = ?", (t.match_uuid,)).fetchone()
        match_id = row[0] if row else None
    steps = json.dumps([
        {"step": s.name, "outcome": s.outcome.value, "at_ms": s.at_ms, "took_ms": s.took_ms, "detail": s.detail}
        for s in log.steps
    ], ensure_ascii=False)
    span = log.clip_span
    with transaction(conn):
        conn.execute(
            f"INSERT INTO ivr_events ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))})",
            (log.uuid, t.kind.value, t.source, log.outcome, log.reason, day_id, match_id, t.match_number,
             log.blue, log.red, t.challenge_by, t.challenge_result, log.recording_path, log.clip_path,
             log.clip_bytes, span.start_ms if span else None, span.end_ms if span else None, log.linked_events,
             t.at_ms, log.finished_ms, steps),
        )


def set_challenge_result(conn: sqlite3.Connection, match_uuid: str | None, result: str) -> None:
    """The review's result on the latest replay of the match that has none yet."""
    with transaction(conn):
        conn.execute(
            """UPDATE ivr_events SET challenge_result = ? WHERE id = (
                   SELECT e.id FROM ivr_events e LEFT JOIN matches m ON m.id = e.match_id
                   WHERE e.kind = 'replay' AND e.challenge_result IS NULL AND m.uuid IS ?
                   ORDER BY e.id DESC LIMIT 1)""",
            (result, match_uuid),
        )


def recent_logs(conn: sqlite3.Connection, limit: int = 50, match_number: str | None = None) -> list[TriggerLog]:
    """The latest trigger outcomes, newest last."""
    where, args = ("WHERE e.match_number = ?", (match_number,)) if match_number is not None else ("", ())
    rows = conn.execute(
        f"""SELECT e.uuid, e.kind, e.source, m.uuid, e.match_number, e.challenge_by, e.challenge_result,
                   e.requested_ms, e.finished_ms, e.steps, e.blue, e.red, e.recording_path, e.clip_path,
                   e.clip_bytes, e.clip_start_ms, e.clip_end_ms, e.linked_events
            FROM ivr_events e LEFT JOIN matches m ON m.id = e.match_id {where}
            ORDER BY e.id DESC LIMIT ?""",
        (*args, limit),
    ).fetchall()
    logs = []
    for (uuid, kind, source, match_uuid, number, by, result, requested, finished, steps, blue, red, recording,
         clip, size, clip_start, clip_end, linked) in reversed(rows):
        logs.append(TriggerLog(
            uuid=uuid,
            trigger=Trigger(TriggerKind(kind), source, requested, match_uuid, number, by, result),
            finished_ms=finished,
            steps=[Step(s["step"], StepOutcome(s["outcome"]), s["at_ms"], s["took_ms"], s.get("detail"))
                   for s in json.loads(steps)],
            blue=blue, red=red, recording_path=recording, clip_path=clip, clip_bytes=size,
            clip_span=ClipSpan(clip_start, clip_end) if clip_start is not None else None, linked_events=linked,
        ))
    return logs
