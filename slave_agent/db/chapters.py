"""A tournament day's YouTube chapters from the ``youtube_chapters`` view."""

from __future__ import annotations

import sqlite3

from shared.chapters import ChapterPlan, MatchStart, day_plan
from shared.stream_time import SessionType
from slave_agent.db.sessions import SessionBook, now_ms

__all__ = ["day_chapters"]


def day_chapters(conn: sqlite3.Connection, day_id: int, intro_title: str = "Start") -> ChapterPlan:
    """Each match's ready moment in stream time, made into a list YouTube accepts."""
    rows = conn.execute(
        """SELECT str_timestamp, match_number, phase, weight_class, blue_name, blue_noc, red_name, red_noc
           FROM youtube_chapters WHERE tournament_day_id = ?""",
        (day_id,),
    ).fetchall()
    starts = [MatchStart(*row) for row in rows]
    return day_plan(starts, SessionBook(conn).sessions(day_id, SessionType.STREAM), now_ms(), intro_title=intro_title)
