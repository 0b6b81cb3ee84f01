"""The master's read services on a real central database (PostgreSQL and SQLite)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess

import pytest
from pydantic import ValidationError

from master.db.repository import CentralRepository
from master.db.store import CentralStore
from master.services.courts import CourtView, merge_courts, stored_courts
from master.services.events import EventQuery, EventService, InvalidCursor
from master.services.matches import MatchQuery, MatchService
from master.services.tournaments import tournaments
from shared.changes import MatchRecord, SessionRecord
from shared.match_snapshot import MatchSnapshot, Tally
from shared.match_state import MatchState, MatchStatus
from shared.pss import Category, parse_line
from shared.pss.kinds import EventKind
from shared.records import EventRecord
from tests.support import restrike_exe

T0 = 1_764_000_000_000  # a fixed UTC instant, ms
T_UUID, DAY1, DAY2 = "t-0001", "d-0001", "d-0002"
LINES = ["pre;FightLoaded", "mch;101;R16;M -68kg;0;;;;;null;Senior;3;120;", "clk;02:00;start", "pt1;3",
         "sc1;3;sc2;0", "wg2;1", "ch1", "ch1;1", "Hl2;50", "pt2;2", "sc1;3;sc2;2", "clk;01:00;stop", "win;BLUE"]


def record(node: str, seq: int, line: str, *, ms: int, day: str | None = DAY1, match: str | None = "101",
           epoch: str = "e1") -> EventRecord:
    event = parse_line(line)
    return EventRecord(node_id=node, epoch=epoch, seq=seq, received_ms=ms, raw=line, raw_datagram=line.encode(),
                       code=event.code, event_category=event.category.value, parsed=event.fields, valid=event.valid,
                       error=event.error, tournament_uuid=T_UUID if day else None, tournament_day_uuid=day,
                       match_number=match)


@pytest.fixture
def venue(store: CentralStore) -> CentralStore:
    """Two courts (one swapped laptop for Court 2), one tournament of two days, events on both days."""
    store.upsert_tournament(T_UUID, "Croatia Open", start_date=dt.date(2025, 11, 24))
    store.upsert_day(DAY1, T_UUID, 1, dt.date(2025, 11, 24))
    store.upsert_day(DAY2, T_UUID, 2, dt.date(2025, 11, 25))
    for node, court in (("court-1", "Court 1"), ("court-2a", "Court 2"), ("court-2b", "Court 2")):
        store.upsert_node(node, court_name=court, status="online", epoch="e1", last_heartbeat_seq=len(LINES) + 2,
                          last_seen=dt.datetime(2025, 11, 24, 10, tzinfo=dt.UTC), cpu_percent=12.5)
    rows = []
    for n, node in enumerate(("court-1", "court-2a")):
        rows += [record(node, seq, line, ms=T0 + seq * 1000 + n) for seq, line in enumerate(LINES, start=1)]
    rows.append(record("court-2b", 1, "pre;FightLoaded", ms=T0 + 86_400_000, day=DAY2, match=None))
    rows.append(record("court-1", len(LINES) + 1, "rdy;FightReady", ms=T0 + 86_400_000, day=DAY2, match=None))
    store.insert_events(rows)
    store.apply_changes("court-1", "e1", [
        match("m-101", 1, "101", T0, status="finished", winner="blue", rounds=(2, 1)),
        match("m-102", 2, "102", T0 + 600_000, status="running"),
        match("m-201", 3, "201", T0 + 86_400_000, day=DAY2, status="loaded"),
    ], through_rev=3)
    store.apply_changes("court-2a", "e1", [match("m-103", 1, "103", T0 + 1, status="finished", winner="red")],
                        through_rev=1)
    store.apply_changes("court-1", "e1", [  # stream 1 covered seq 3-6; stream 2 runs from seq 11 on
        SessionRecord(rev=5, tournament_day_uuid=DAY1, session_type="stream", session_number=1, start_ms=T0 + 3000,
                      end_ms=T0 + 6000, is_active=False),
        SessionRecord(rev=6, tournament_day_uuid=DAY1, session_type="stream", session_number=2, start_ms=T0 + 11_000,
                      is_active=True),
    ], through_rev=6)
    return store


def match(uuid: str, rev: int, number: str, loaded_ms: int, *, day: str = DAY1, status: str,
          winner: str | None = None, rounds: tuple[int, int] | None = None) -> MatchRecord:
    return MatchRecord(rev=rev, uuid=uuid, tournament_uuid=T_UUID, tournament_day_uuid=day, match_number=number,
                       phase="R16", weight_class="M -68kg", division="Senior", blue_name="Ana", blue_noc="CRO",
                       red_name="Bea", red_noc="SRB", status=status, winner=winner,
                       blue_rounds=rounds[0] if rounds else None, red_rounds=rounds[1] if rounds else None,
                       loaded_ms=loaded_ms, ready_ms=loaded_ms + 30_000,
                       finished_ms=loaded_ms + 400_000 if status == "finished" else None)


@pytest.fixture
def events(venue: CentralStore) -> EventService:
    return EventService(CentralRepository(venue.engine))


def seqs(service: EventService, query: EventQuery, limit: int = 1000) -> list[tuple[str, int]]:
    return [(e.record.node_id, e.record.seq) for e in service.page(query, limit=limit).events]


def test_pages_newest_first_cover_everything_once_in_order(events: EventService) -> None:
    total = events.count(EventQuery())
    assert total == 2 * len(LINES) + 2
    seen, cursor = [], None
    while True:
        page = events.page(EventQuery(), limit=5, cursor=cursor)
        seen += page.events
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == total
    keys = [(e.record.received_ms, e.record.node_id, e.record.seq) for e in seen]
    assert len(set(keys)) == total
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    assert seen[0].court in ("Court 1", "Court 2")


def test_oldest_first_and_a_cursor_of_the_other_order_is_refused(events: EventService) -> None:
    oldest = events.page(EventQuery(newest_first=False), limit=3)
    assert [e.record.seq for e in oldest.events] == [1, 1, 2]
    assert oldest.next_cursor is not None
    with pytest.raises(InvalidCursor, match="other order"):
        events.page(EventQuery(), cursor=oldest.next_cursor)
    with pytest.raises(InvalidCursor, match="not a cursor"):
        events.page(EventQuery(), cursor="garbage!")


def test_a_page_does_not_shift_when_events_arrive_meanwhile(venue: CentralStore, events: EventService) -> None:
    first = events.page(EventQuery(court="Court 1"), limit=4)
    venue.insert_events([record("court-1", 100 + i, "clk;00:10", ms=T0 + 2 * 86_400_000 + i) for i in range(5)])
    second = events.page(EventQuery(court="Court 1"), limit=4, cursor=first.next_cursor)
    assert second.events[0].record.received_ms < first.events[-1].record.received_ms
    assert {e.record.seq for e in first.events}.isdisjoint({e.record.seq for e in second.events})
    assert all(e.record.seq < 100 for e in second.events)  # newer rows come only from a fresh first page


def test_filters(events: EventService) -> None:
    assert events.count(EventQuery(court="court-1")) == len(LINES) + 1
    assert events.count(EventQuery(court="court 2")) == len(LINES) + 1  # both laptops of Court 2, any case
    assert events.count(EventQuery(day="2")) == 2
    assert events.count(EventQuery(day="Croatia Open:1")) == 2 * len(LINES)
    assert events.count(EventQuery(day=DAY2, tournament="croatia open")) == 2
    assert events.count(EventQuery(tournament=T_UUID)) == 2 * len(LINES) + 2
    assert events.count(EventQuery(match_number="101", court="Court 1")) == len(LINES)
    assert seqs(events, EventQuery(categories=(Category.REFEREE,), court="Court 1", newest_first=False)) == [
        ("court-1", s) for s in (3, 6, 7, 8, 12, 13)]
    assert seqs(events, EventQuery(kinds=(EventKind.CHALLENGE,), court="court-1", newest_first=False)) == [
        ("court-1", 7), ("court-1", 8)]
    assert events.count(EventQuery(since=dt.datetime.fromtimestamp((T0 + 12_000) / 1000, dt.UTC))) == 6  # 12, 13 x2, day 2
    naive_until = dt.datetime.fromtimestamp((T0 + 2000) / 1000, dt.UTC).replace(tzinfo=None)
    assert events.count(EventQuery(until=naive_until)) == 3  # seq 1 and 2 of court-1, seq 1 of court-2a


def test_events_of_an_obs_session(events: EventService) -> None:
    assert seqs(events, EventQuery(court="Court 1", day="1", session="stream:1", newest_first=False)) == [
        ("court-1", s) for s in (3, 4, 5, 6)]
    assert events.count(EventQuery(court="Court 1", day="1", session="stream:2")) == 3  # open: up to now
    with pytest.raises(LookupError, match="which court and day"):
        events.count(EventQuery(day="1", session="stream:1"))
    with pytest.raises(LookupError, match="no stream session 9"):
        events.count(EventQuery(court="Court 1", day="1", session="stream:9"))
    with pytest.raises(ValidationError):
        EventQuery(session="stream two")


def test_text_search_is_case_insensitive_and_literal(venue: CentralStore, events: EventService) -> None:
    assert events.count(EventQuery(text="hl2;")) == 2  # raw is "Hl2;50"
    assert events.count(EventQuery(text="fightloaded")) == 3
    venue.insert_events([record("court-1", 200, "xx;100%_done", ms=T0 + 5), record("court-1", 201, "xx;1000", ms=T0 + 6)])
    assert [e.record.seq for e in events.page(EventQuery(text="0%_")).events] == [200]
    assert events.count(EventQuery(text="0_")) == 0  # "_" is a character, not a wildcard


def test_unknown_names_say_what_is_known(events: EventService, venue: CentralStore) -> None:
    with pytest.raises(LookupError, match=r"no court 'Court 9' at the master \(known: Court 1, Court 2\)"):
        events.page(EventQuery(court="Court 9"))
    with pytest.raises(LookupError, match=r"no tournament 'Nope'.*'Croatia Open'"):
        events.count(EventQuery(tournament="Nope"))
    with pytest.raises(LookupError, match="has no day 7"):
        events.count(EventQuery(day="7"))
    with pytest.raises(LookupError, match="give a day UUID"):
        events.count(EventQuery(day="yesterday"))
    venue.upsert_tournament("t-0002", "Croatia Open")
    with pytest.raises(LookupError, match="2 tournaments are called 'Croatia Open'"):
        events.count(EventQuery(tournament="Croatia Open"))
    with pytest.raises(LookupError, match="of which tournament"):
        events.count(EventQuery(day="1"))


def test_stored_courts_compare_published_and_stored(venue: CentralStore) -> None:
    courts = {c.node_id: c for c in stored_courts(CentralRepository(venue.engine))}
    one = courts["court-1"]
    assert (one.court, one.status, one.source) == ("Court 1", "online", "database")
    assert (one.published_seq, one.stored_seq, one.lag, one.events) == (len(LINES) + 2, len(LINES) + 1, 1, len(LINES) + 1)
    assert one.health is not None and one.health.cpu_percent == 12.5
    assert one.last_seen == dt.datetime(2025, 11, 24, 10, tzinfo=dt.UTC)
    assert courts["court-2b"].stored_seq == 1
    assert one.model_dump(mode="json")["lag"] == 1  # in --json output too
    venue.mark_offline("court-1")
    assert stored_courts(CentralRepository(venue.engine))[0].status == "offline"


def test_merge_prefers_the_live_view() -> None:
    def view(node: str, source: str) -> CourtView:
        return CourtView(node_id=node, court=None, status="online", last_seen=None, epoch=None, published_seq=0,
                         stored_seq=0, events=None, health=None, obs=None, match=None, source=source, as_of=None)  # type: ignore[arg-type]

    merged = merge_courts([view("a", "database"), view("b", "database")], [view("b", "live"), view("c", "live")])
    assert [(v.node_id, v.source) for v in merged] == [("a", "database"), ("b", "live"), ("c", "live")]


def test_tournaments_list_days_and_the_courts_that_worked_them(venue: CentralStore) -> None:
    (open_,) = tournaments(CentralRepository(venue.engine))
    assert (open_.name, [d.number for d in open_.days]) == ("Croatia Open", [1, 2])
    day1, day2 = open_.days
    assert [(c.node_id, c.court, c.events, c.matches) for c in day1.courts] == [
        ("court-1", "Court 1", len(LINES), 2), ("court-2a", "Court 2", len(LINES), 1)]
    assert (day2.events, day2.matches, day2.date) == (2, 1, dt.date(2025, 11, 25))


def test_matches_across_courts_by_day_court_and_status(venue: CentralStore) -> None:
    matches = MatchService(CentralRepository(venue.engine))
    day1 = matches.page(MatchQuery(day="1", newest_first=False)).matches
    assert [(m.number, m.court) for m in day1] == [("101", "Court 1"), ("103", "Court 2"), ("102", "Court 1")]
    first = day1[0]
    assert (first.blue.noc, first.red.name, first.winner, first.rounds) == ("CRO", "Bea", "blue", Tally(blue=2, red=1))
    assert first.loaded_at == dt.datetime.fromtimestamp(T0 / 1000, dt.UTC) and first.finished_at is not None
    assert day1[2].finished_at is None and day1[2].rounds is None
    finished = matches.page(MatchQuery(statuses=(MatchStatus.FINISHED,), court="Court 2")).matches
    assert [m.number for m in finished] == ["103"]
    page = matches.page(MatchQuery(tournament="Croatia Open"), limit=2)  # newest first
    assert [m.number for m in page.matches] == ["201", "102"] and page.next_cursor is not None
    rest = matches.page(MatchQuery(tournament="Croatia Open"), limit=2, cursor=page.next_cursor)
    assert [m.number for m in rest.matches] == ["103", "101"] and rest.next_cursor is None
    with pytest.raises(InvalidCursor, match="another list"):
        EventService(CentralRepository(venue.engine)).page(EventQuery(), cursor=page.next_cursor)
    # A newer state of a match (the court finished it) replaces the row.
    venue.apply_changes("court-1", "e1", [match("m-102", 4, "102", T0 + 600_000, status="finished", winner="red")],
                        through_rev=4)
    assert matches.page(MatchQuery(match_number="102")).matches[0].winner == "red"


# --- the CLI on top: `restrike master events` and `status` (the installed console script) ---------
# Thin over the services tested above on both backends: run on PostgreSQL only, and marked slow
# (each call starts a Python process).

on_postgresql = pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)


def restrike(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([restrike_exe(), "master", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.slow
@on_postgresql
def test_cli_events_pages_as_json_and_filters_as_csv(venue: CentralStore, central_url: str) -> None:
    first = restrike("events", "--db", central_url, "--format", "json", "--limit", "5")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 5 and lines[0]["court"] and "stored_at" in lines[0] and "event_code" in lines[0]
    cursor = re.search(r"--after (\S+)", first.stderr)
    assert cursor is not None
    second = restrike("events", "--db", central_url, "--format", "json", "--limit", "5", "--after", cursor[1])
    again = [json.loads(line) for line in second.stdout.splitlines()]
    assert len(again) == 5
    assert {(e["node_id"], e["seq"]) for e in lines}.isdisjoint({(e["node_id"], e["seq"]) for e in again})

    out = restrike("events", "--db", central_url, "--format", "csv", "--court", "Court 1", "--category", "R",
                   "--oldest-first")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [int(r["seq"]) for r in rows] == [3, 6, 7, 8, 12, 13]
    assert rows[0]["court"] == "Court 1" and rows[0]["event_category"] == "R"
    counted = restrike("events", "--db", central_url, "--count", "--search", "fightloaded")
    assert counted.stdout.strip() == "3"
    answer = record("court-1", 300, "clk;00:42", ms=T0 + 7).model_copy(update={"resync": True})
    venue.insert_events([answer, record("court-1", 301, "[bold]x", ms=T0 + 8)])
    table = restrike("events", "--db", central_url, "--court", "Court 1", "--since", "2025-11-24T16:00:00.007Z",
                     "--until", "2025-11-24T16:00:00.008Z")
    assert "clk;00:42 (resync)" in table.stdout
    assert "[bold]x" in table.stdout  # a raw line is text, never Rich markup


@pytest.mark.slow
@on_postgresql
def test_cli_events_errors_are_one_line(venue: CentralStore, central_url: str) -> None:
    unknown = restrike("events", "--db", central_url, "--court", "Court 9")
    assert unknown.returncode == 2
    assert "no court 'Court 9' at the master (known: Court 1, Court 2)" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = restrike("events", "--db", central_url, "--category", "W")
    assert bad.returncode == 2 and "--category" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@on_postgresql
def test_cli_status_reads_the_courts_service(venue: CentralStore, central_url: str) -> None:
    state = MatchState()
    for line in LINES[:-1]:
        state.fold(parse_line(line))
    venue.upsert_node("court-1", match=MatchSnapshot.of(state, 12).model_dump(mode="json"),
                      heard_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    out = restrike("status", "--db", central_url, "--json")
    assert out.returncode == 0, out.stderr
    courts = {c["node_id"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert courts["court-1"]["lag"] == 1 and courts["court-1"]["events"] == len(LINES) + 1
    assert courts["court-2a"]["court"] == "Court 2" and courts["court-2a"]["source"] == "database"
    assert MatchSnapshot.model_validate(courts["court-1"]["match"]).to_state() == state
    table = restrike("status", "--db", central_url)
    assert "court-2b" in table.stdout and "online" in table.stdout
    assert "101 R1 3:2 challenge" in table.stdout
    assert re.search(r"The master last wrote this state 3\d\d s ago", table.stderr)  # court-1's row: 5 minutes


@pytest.mark.slow
@on_postgresql
def test_cli_matches_by_day_as_json_and_csv(venue: CentralStore, central_url: str) -> None:
    out = restrike("matches", "--db", central_url, "--day", "Croatia Open:1", "--oldest-first", "--format", "json")
    assert out.returncode == 0, out.stderr
    found = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(m["number"], m["court"], m["status"]) for m in found] == [
        ("101", "Court 1", "finished"), ("103", "Court 2", "finished"), ("102", "Court 1", "running")]
    assert found[0]["rounds"] == {"blue": 2, "red": 1} and found[0]["blue"] == {"name": "Ana", "noc": "CRO"}
    table = restrike("matches", "--db", central_url, "--court", "Court 1", "--status", "finished", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [(r["number"], r["winner"], r["blue_rounds"], r["red_noc"]) for r in rows] == [("101", "blue", "2", "SRB")]
