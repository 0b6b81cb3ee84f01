"""A tournament day's YouTube chapters from the ``youtube_chapters`` view."""

from __future__ import annotations

import sqlite3

from shared.chapters import ChapterPlan, match_title, plan_chapters
from shared.stream_time import SessionType, parse_hms
from slave_agent.db.sessions import SessionBook, now_ms

__all__ = ["day_chapters"]


def day_chapters(conn: sqlite3.Connection, day_id: int, intro_title: str = "Start") -> ChapterPlan:
    """Each match's ready moment in stream time, made into a list YouTube accepts."""
    rows = conn.execute(
        """SELECT str_timestamp, match_number, phase, weight_class, blue_name, blue_noc, red_name, red_noc
           FROM youtube_chapters WHERE tournament_day_id = ?""",
        (day_id,),
    ).fetchall()
    candidates = [(float(parse_hms(stamp)), match_title(*rest)) for stamp, *rest in rows]
    return plan_chapters(candidates, stream_duration_seconds=_stream_duration(conn, day_id), intro_title=intro_title)


def _stream_duration(conn: sqlite3.Connection, day_id: int) -> float | None:
    """Published stream time of the day so far (the end of the last session, or now if live)."""
    sessions = SessionBook(conn).sessions(day_id, SessionType.STREAM)
    if not sessions:
        return None
    last = sessions[-1]
    end = last.end_ms if last.end_ms is not None else now_ms()
    return last.cumulative_offset_seconds + (end - last.start_ms) / 1000
