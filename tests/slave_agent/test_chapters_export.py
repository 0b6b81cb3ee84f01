"""A day's YouTube chapters from stored events, through the ``youtube_chapters`` view and the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shared.chapters import render
from shared.stream_time import InterruptionReason, SessionType
from slave_agent.db.chapters import day_chapters
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import Datagram, EventStore
from tests.support import restrike_exe

T0 = 1_753_700_000_000
S = 1000


def load(store: EventStore, at: int, number: str, blue: str, red: str) -> None:
    lines = [
        "pre;FightLoaded",
        f"at1;{blue};{blue};CRO;at2;{red};{red};GER",
        f"mch;{number};Final;M -87kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;22;5;",
        "rdy;FightReady",
    ]
    store.write_batch([Datagram(at + i, line.encode()) for i, line in enumerate(lines)])


def test_day_chapters_follow_the_stream_across_a_restart(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    t = store.create_tournament("Open")
    store.add_day(t, 1, "2025-07-28")
    day = store.activate_day(t, 1)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)
    load(store, T0 + 5 * S, "101", "Perica", "Stevica")  # within 10 s of the start: becomes 0:00
    load(store, T0 + 400 * S, "102", "Marko Drakulić", "Damjan Mitrić")
    book.end(day.day_id, SessionType.STREAM, T0 + 600 * S, InterruptionReason.OBS_CRASH)
    load(store, T0 + 650 * S, "103", "Off", "Air")  # no stream: not a chapter
    book.start(day.day_id, SessionType.STREAM, T0 + 700 * S)
    load(store, T0 + 900 * S, "104", "Krava", "Godzilla")
    load(store, T0 + 904 * S, "105", "Mikhail Kalashnikov", "Dicke Berta")  # re-load 4 s later wins
    book.end(day.day_id, SessionType.STREAM, T0 + 1500 * S)

    plan = day_chapters(store.conn, day.day_id)
    assert plan.valid, plan.problem
    text = render(plan)
    lines = text.splitlines()
    assert lines[0].startswith("0:00 Match 101")
    assert lines[1].startswith("6:40 Match 102") and "Drakulić (CRO)" in lines[1]
    assert lines[2].startswith("13:24 Match 105")  # 600 s of session 1 + 204 s into session 2
    assert len(lines) == 3
    assert any("Match 104" in note for note in plan.notes)
    store.close()

    out = tmp_path / "chapters.txt"
    result = subprocess.run(
        [restrike_exe(), "slave", "chapters", "--day", "Open:1", "--out", str(out), "-d", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == text
    assert "Match 104" in result.stderr  # the operator is told what was dropped
