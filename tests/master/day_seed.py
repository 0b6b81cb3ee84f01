"""A known tournament day in the central database, as two courts' agents would have delivered it:
matches with their ready moments in stream time, a stream session, scoring events, replays.

The expected chapters and counts are written out by hand here, not computed by the code under test.
"""

from __future__ import annotations

import datetime as dt

from master.db.store import CentralStore
from shared.changes import IvrEventRecord, MatchRecord, SessionRecord
from shared.commands import day_uuid_of, tournament_uuid_of
from shared.pss import parse_line
from shared.records import EventRecord

T0 = 1_764_000_000_000  # a fixed UTC instant, ms
S = 1000
NAME = "Croatia Open"
T_UUID = tournament_uuid_of(NAME)
DAY = day_uuid_of(T_UUID, 1)
DATE = dt.date(2025, 11, 24)

#: Court 1's chapters: 101 is ready 5 s into the stream (so it moves to 0:00), then 102 and 103;
#: the stream ran 25 minutes.
CHAPTERS = (
    "0:00 Match 101 · Final M -68kg · Ana Ivić (CRO) vs Bea Kos (SRB)\n"
    "6:40 Match 102 · Final M -68kg · Cvita Ban (CRO) vs Dora Nagy (HUN)\n"
    "15:00 Match 103 · Final M -68kg · Ema Lee (KOR) vs Fia Berg (SWE)\n"
)
#: Each match's scoring lines (one P, one TB, one H, one K, one R, plus the O lines around them).
SCORING = ["pt1;1", "pt2;2", "pt1;3", "hl1;30", "wg2;1"]
#: Per court: the seven categories over the day (O: pre, rdy and sc1 per match, besides the scoring).
COUNTS = {
    "Court 1": {"K": 3, "P": 3, "H": 3, "TH": 0, "TB": 3, "R": 3, "O": 9},
    "Court 2": {"K": 1, "P": 1, "H": 1, "TH": 0, "TB": 1, "R": 1, "O": 3},
}
#: Court 1: blue's replay accepted after 45 s, red's denied after 30 s; Court 2: the referee's replay
#: failed and its review never ended.
REVIEWS = {"Court 1": [45.0, 30.0], "Court 2": []}
#: Court 1's first replay, which the desk reviews in the tests.
FIRST_REPLAY = f"ivr-11-{T0 + 100 * S}"

_ATHLETES = {"101": ("Ana Ivić", "CRO", "Bea Kos", "SRB"), "102": ("Cvita Ban", "CRO", "Dora Nagy", "HUN"),
             "103": ("Ema Lee", "KOR", "Fia Berg", "SWE")}


def seed(store: CentralStore) -> None:
    """The tournament, its day 1, the two courts and what they sent that day."""
    store.upsert_tournament(T_UUID, NAME, location="Zagreb", start_date=DATE, end_date=DATE + dt.timedelta(days=1))
    store.upsert_day(DAY, T_UUID, 1, DATE)
    store.upsert_node("court-1", court_name="Court 1", status="offline", epoch="e1")
    store.upsert_node("court-2", court_name="Court 2", status="offline", epoch="e1")
    _court(store, "court-1", [("101", 5), ("102", 400), ("103", 900)])
    _court(store, "court-2", [("201", None)])
    store.apply_changes("court-1", "e1", [
        SessionRecord(rev=10, tournament_day_uuid=DAY, session_type="stream", session_number=1, start_ms=T0,
                      end_ms=T0 + 1500 * S, is_active=False),
        _ivr(11, "replay", T0 + 100 * S, by="blue", result="accepted"),
        _ivr(12, "review_over", T0 + 145 * S),
        _ivr(13, "replay", T0 + 500 * S, by="red", result="denied"),
        _ivr(14, "review_over", T0 + 530 * S),
    ], through_rev=14)
    store.apply_changes("court-2", "e1", [_ivr(10, "replay", T0 + 200 * S, by="referee", outcome="failed")],
                        through_rev=10)


def _court(store: CentralStore, node_id: str, matches: list[tuple[str, int | None]]) -> None:
    """Each match loaded, named, ready at ``stream seconds`` (None: no stream), scored."""
    events: list[EventRecord] = []
    records: list[MatchRecord] = []
    for n, (number, ready_s) in enumerate(matches, start=1):
        at = T0 + (ready_s or n * 60) * S
        blue, blue_noc, red, red_noc = _ATHLETES.get(number, ("Gabi Novak", "SLO", "Hana Kim", "KOR"))
        records.append(MatchRecord(rev=n, uuid=f"{node_id}-m{number}", tournament_uuid=T_UUID, tournament_day_uuid=DAY,
                                   match_number=number, phase="Final", weight_class="M -68kg", blue_name=blue,
                                   blue_noc=blue_noc, red_name=red, red_noc=red_noc, status="finished",
                                   loaded_ms=at - 30 * S, ready_ms=at))
        lines = ["pre;FightLoaded", "rdy;FightReady", *SCORING, "sc1;3;sc2;2"]
        for i, line in enumerate(lines):
            parsed = parse_line(line)
            second = (ready_s or 0) + i - 1  # the ready line (i = 1) at ready_s
            stamp = None if ready_s is None else f"00:{second // 60:02d}:{second % 60:02d}"
            events.append(EventRecord(
                node_id=node_id, epoch="e1", seq=len(events) + 1, received_ms=at + (i - 1) * S, raw=line,
                raw_datagram=line.encode(), code=parsed.code, event_category=parsed.category.value,
                parsed=parsed.fields, tournament_uuid=T_UUID, tournament_day_uuid=DAY,
                match_uuid=f"{node_id}-m{number}", match_number=number, str_timestamp=stamp,
            ))
    store.insert_events(events)
    store.apply_changes(node_id, "e1", records, through_rev=len(records))


def _ivr(rev: int, trigger: str, at: int, *, by: str | None = None, result: str | None = None,
         outcome: str = "done") -> IvrEventRecord:
    return IvrEventRecord(rev=rev, uuid=f"ivr-{rev}-{at}", tournament_day_uuid=DAY, trigger=trigger, source="pss",
                          outcome=outcome, challenge_by=by, challenge_result=result, requested_ms=at,
                          finished_ms=at + 2 * S)
