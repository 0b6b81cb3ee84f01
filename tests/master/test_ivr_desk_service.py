"""The IVR desk's service on PostgreSQL: replays with their matches, reviews kept apart from the courts' rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from master.db.migrate import upgrade
from master.db.repository import CentralRepository
from master.db.store import CentralStore
from master.services.ivr import InvalidCursor, IvrDeskService, IvrQuery, ReviewState
from shared.changes import IvrEventRecord, MatchRecord

T0 = 1_764_000_000_000
T_UUID, DAY1, DAY2 = "t-1", "d-1", "d-2"


def replay(uuid: str, rev: int, ms: int, *, day: str = DAY1, match: str | None = "m-101", by: str | None = "red",
           result: str | None = None, trigger: str = "replay") -> IvrEventRecord:
    return IvrEventRecord(
        rev=rev, uuid=uuid, tournament_day_uuid=day, match_uuid=match, match_number="101" if match else None,
        trigger=trigger, source="pss", outcome="done", blue="A. KIM (KOR)", red="B. LEE (USA)", challenge_by=by,
        challenge_result=result, clip_path=f"/videos/IVR recordings/{uuid}.mkv", clip_bytes=1000,
        requested_ms=ms, finished_ms=ms + 900,
    )


@pytest.fixture
def desk(pg_url: str) -> Iterator[tuple[IvrDeskService, CentralStore]]:
    """Court 1 with three replays (one on day 2) and a match-ready log; Court 2 with one replay."""
    upgrade(pg_url)
    with CentralStore(pg_url) as store, CentralRepository.open(pg_url) as repository:
        store.upsert_tournament(T_UUID, "Croatia Open")
        store.upsert_day(DAY1, T_UUID, 1, dt.date(2026, 12, 2))
        store.upsert_day(DAY2, T_UUID, 2, dt.date(2026, 12, 3))
        store.upsert_node("court-1", court_name="Court 1", status="online")
        store.upsert_node("court-2", court_name="Court 2", status="online")
        store.apply_changes("court-1", "e1", [
            MatchRecord(rev=1, uuid="m-101", tournament_uuid=T_UUID, tournament_day_uuid=DAY1, match_number="101",
                        blue_name="KIM Tae-hun", blue_noc="KOR", red_name="John Smith", red_noc="USA",
                        status="running", loaded_ms=T0),
            replay("r-1", 2, T0 + 1000, by="blue", result="accepted"),
            replay("r-2", 3, T0 + 2000),
            replay("ready", 4, T0 + 3000, trigger="match_ready"),
            replay("r-3", 5, T0 + 86_400_000, day=DAY2, match=None, by=None),
        ], through_rev=5)
        store.apply_changes("court-2", "e1", [replay("r-4", 1, T0 + 1500, match="m-x")], through_rev=1)
        yield IvrDeskService(repository), store


def test_every_replay_with_match_athletes_and_pending_review(desk: tuple[IvrDeskService, CentralStore]) -> None:
    service, _ = desk
    page = service.page(IvrQuery())
    assert [r.uuid for r in page.replays] == ["r-3", "r-2", "r-4", "r-1"]  # newest first, match_ready left out
    first = page.replays[-1]
    assert (first.court, first.match_number, first.blue, first.red, first.challenge_by, first.challenge_result) == (
        "Court 1", "101", "KIM Tae-hun (KOR)", "John Smith (USA)", "blue", "accepted")
    assert first.requested_at == dt.datetime.fromtimestamp((T0 + 1000) / 1000, dt.UTC)
    assert first.review.state is ReviewState.PENDING and first.review.reviewer is None
    # An unknown match: the court's trigger log still names the athletes.
    assert (page.replays[2].blue, page.replays[2].red) == ("A. KIM (KOR)", "B. LEE (USA)")


def test_filters_and_pages(desk: tuple[IvrDeskService, CentralStore]) -> None:
    service, _ = desk
    assert [r.uuid for r in service.page(IvrQuery(court="court 2")).replays] == ["r-4"]
    assert [r.uuid for r in service.page(IvrQuery(day="2")).replays] == ["r-3"]
    assert [r.uuid for r in service.page(IvrQuery(day="Croatia Open:1", court="Court 1", newest_first=False)).replays] \
        == ["r-1", "r-2"]
    first = service.page(IvrQuery(), limit=3)
    rest = service.page(IvrQuery(), limit=3, cursor=first.next_cursor)
    assert [r.uuid for r in first.replays + rest.replays] == ["r-3", "r-2", "r-4", "r-1"] and rest.next_cursor is None
    with pytest.raises(InvalidCursor):
        service.page(IvrQuery(newest_first=False), cursor=first.next_cursor)
    with pytest.raises(LookupError, match=r"no court 'Court 9'.*Court 1, Court 2"):
        service.page(IvrQuery(court="Court 9"))


def test_bulk_review_then_notes_keep_who_and_when(desk: tuple[IvrDeskService, CentralStore]) -> None:
    service, _ = desk
    t1 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    assert service.review(["r-1", "r-2", "ready", "nope"], ReviewState.REVIEWED, "ana", at=t1) == ["r-1", "r-2"]
    assert [r.uuid for r in service.page(IvrQuery(states=(ReviewState.PENDING,))).replays] == ["r-3", "r-4"]
    # New notes by someone else, state unchanged: who set the state, and when, stay.
    service.review(["r-1"], ReviewState.REVIEWED, "bob", notes="head kick seen", at=t1 + dt.timedelta(minutes=5))
    one = service.replay("r-1")
    assert one is not None and one.review.model_dump() == {
        "state": ReviewState.REVIEWED, "notes": "head kick seen", "reviewer": "ana", "reviewed_at": t1}
    # A state change takes the new reviewer and time; notes not given are kept.
    t2 = t1 + dt.timedelta(minutes=9)
    service.review(["r-1"], ReviewState.RESOLVED, "bob", at=t2)
    one = service.replay("r-1")
    assert one is not None and (one.review.state, one.review.notes, one.review.reviewer, one.review.reviewed_at) == (
        ReviewState.RESOLVED, "head kick seen", "bob", t2)
    assert [r.uuid for r in service.page(IvrQuery(states=(ReviewState.REVIEWED, ReviewState.RESOLVED))).replays] \
        == ["r-2", "r-1"]
    with pytest.raises(LookupError, match="no replay ready"):
        service.review(["ready"], ReviewState.REVIEWED, "ana")
    with pytest.raises(ValueError, match="reviewer"):
        service.review(["r-1"], ReviewState.REVIEWED, "")


def test_a_courts_later_change_never_overwrites_a_review(desk: tuple[IvrDeskService, CentralStore]) -> None:
    service, store = desk
    service.review(["r-2"], ReviewState.RESOLVED, "ana", notes="upheld")
    store.apply_changes("court-1", "e1", [replay("r-2", 9, T0 + 2000, result="denied")], through_rev=9)
    one = service.replay("r-2")
    assert one is not None and one.challenge_result == "denied"
    assert (one.review.state, one.review.notes, one.review.reviewer) == (ReviewState.RESOLVED, "upheld", "ana")


def test_an_events_clip_link_finds_its_replay(desk: tuple[IvrDeskService, CentralStore]) -> None:
    service, _ = desk
    links = [("court-1", "/videos/IVR recordings/r-2.mkv"), ("court-2", "/videos/IVR recordings/r-2.mkv"),
             ("court-1", "/videos/IVR recordings/ready.mkv")]
    assert service.replays_of_clips(links) == {("court-1", "/videos/IVR recordings/r-2.mkv"): "r-2"}
    assert service.replay("ready") is None
