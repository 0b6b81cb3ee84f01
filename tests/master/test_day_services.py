"""Tournament days at the master: planning, activation arguments, chapters and the IVR report (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from master.db.migrate import upgrade
from master.db.repository import CentralRepository, TriggerRow
from master.db.store import CentralStore
from master.services.day_report import Review, build_report, court_chapters, day_report
from master.services.days import NewDay, NewTournament, activation, add_day, courts_on_days, create_tournament, next_day
from shared.chapters import render
from shared.commands import ActivateDayArgs
from shared.wire import Heartbeat
from tests.master import day_seed
from tests.support import restrike_exe

TODAY = dt.date(2026, 12, 3)


@pytest.fixture
def central(pg_url: str) -> Iterator[tuple[CentralStore, CentralRepository]]:
    upgrade(pg_url)
    with CentralStore(pg_url) as store, CentralRepository.open(pg_url) as repository:
        yield store, repository


def test_a_tournament_and_its_days_get_the_uuids_every_court_derives(central: tuple[CentralStore, CentralRepository]) -> None:
    store, repository = central
    t_uuid = create_tournament(store, repository, NewTournament(name="  Zagreb Open ", location="Dom sportova",
                                                                start_date=dt.date(2026, 12, 3)))
    expected_t = ActivateDayArgs(tournament_name="Zagreb Open", day_number=1, date=TODAY).tournament
    assert t_uuid == expected_t  # a court activating "Zagreb Open" by name lands on the same tournament
    [row] = repository.tournaments()
    assert (row.name, row.location) == ("Zagreb Open", "Dom sportova")
    assert next_day(row.start_date, [], TODAY) == (1, dt.date(2026, 12, 3))

    day1 = add_day(store, repository, NewDay(tournament_uuid=t_uuid, day_number=1, date=dt.date(2026, 12, 3)))
    assert next_day(row.start_date, [(d.day_number, d.date) for d in repository.days(t_uuid)], TODAY) == (
        2, dt.date(2026, 12, 4))
    assert next_day(None, [(1, None)], TODAY) == (2, TODAY)
    with pytest.raises(ValueError, match="has a day 1 already"):
        add_day(store, repository, NewDay(tournament_uuid=t_uuid, day_number=1, date=TODAY))
    with pytest.raises(ValueError, match="exists already"):
        create_tournament(store, repository, NewTournament(name="zagreb open"))
    with pytest.raises(LookupError, match="no tournament"):
        add_day(store, repository, NewDay(tournament_uuid=str(uuid.uuid4()), day_number=1, date=TODAY))
    with pytest.raises(ValidationError, match="ends"):
        NewTournament(name="Backwards", start_date=TODAY, end_date=TODAY - dt.timedelta(days=1))

    args = activation(repository, day1, TODAY)
    assert (args.tournament_name, args.day_number, args.date) == ("Zagreb Open", 1, dt.date(2026, 12, 3))
    assert (str(args.tournament_uuid), str(args.day_uuid)) == (t_uuid, day1)
    with pytest.raises(LookupError, match="no day"):
        activation(repository, "no-such-day", TODAY)

    # A court's heartbeat naming the day later must not wipe what the director entered.
    store.note_day(t_uuid, "Zagreb Open", day1, 1, None)
    assert repository.tournaments()[0].location == "Dom sportova"
    assert repository.days(t_uuid)[0].date == dt.date(2026, 12, 3)
    # A day only a court knew (activated there by name) appears as the court names it.
    court_t, court_day = str(uuid.uuid4()), str(uuid.uuid4())
    store.note_day(court_t, "Court-made Cup", court_day, 2, dt.date(2026, 12, 5))
    assert ("Court-made Cup", court_t) in {(t.name, t.uuid) for t in repository.tournaments()}
    assert [(d.uuid, d.day_number, d.date) for d in repository.days(court_t)] == [(court_day, 2, dt.date(2026, 12, 5))]


def test_courts_on_days_come_from_their_heartbeats() -> None:
    def hb(node: str, court: str, day: str | None) -> Heartbeat:
        return Heartbeat(node_id=node, court=court, hostname="h", version="v", epoch="e", last_seq=0, sent_ms=0,
                         pub_port=1, router_port=2, tournament_day_uuid=day)

    on = courts_on_days([hb("c2", "Court 2", "d1"), hb("c1", "Court 1", "d1"), hb("c3", "Court 3", None)])
    assert on == {"d1": [("Court 1", "c1"), ("Court 2", "c2")]}


def test_chapters_of_a_court_as_the_master_holds_them(central: tuple[CentralStore, CentralRepository]) -> None:
    store, repository = central
    day_seed.seed(store)
    plan = court_chapters(repository, day_seed.DAY, "court-1", dt.datetime.now(dt.UTC))
    assert plan.valid, plan.problem
    assert render(plan) == day_seed.CHAPTERS
    off_air = court_chapters(repository, day_seed.DAY, "court-2", dt.datetime.now(dt.UTC))
    assert not off_air.valid and "at least 3" in (off_air.problem or "")


def test_the_day_report_counts_categories_and_reviews_per_court(central: tuple[CentralStore, CentralRepository]) -> None:
    store, repository = central
    day_seed.seed(store)
    reviewed_at = dt.datetime.fromtimestamp(day_seed.T0 / 1000 + 100 + 240, dt.UTC)  # 4 minutes after the replay
    assert repository.set_reviews([day_seed.FIRST_REPLAY], "resolved", "judge", reviewed_at) == [day_seed.FIRST_REPLAY]
    report = day_report(repository, day_seed.DAY)
    assert [c.court for c in report.courts] == ["Court 1", "Court 2"]
    assert {c.court: c.categories for c in report.courts} == day_seed.COUNTS
    assert {c.court: c.review_seconds for c in report.courts} == day_seed.REVIEWS
    one, two = report.courts
    assert (one.replays, one.challenges, one.results, one.failed) == (2, {"blue": 1, "red": 1},
                                                                      {"accepted": 1, "denied": 1}, 0)
    assert (one.reviews.median_s, one.reviews.longest_s, one.reviews.total_s) == (37.5, 45.0, 75.0)
    assert (one.desk, one.desk_times.count, one.desk_times.longest_s, one.reviewers) == (
        {"resolved": 1, "pending": 1}, 1, 240.0, ["judge"])
    assert (two.replays, two.challenges, two.results, two.failed, two.reviews.count) == (1, {"referee": 1},
                                                                                       {"pending": 1}, 1, 0)
    assert report.categories["K"] == 4 and report.reviews.count == 2
    assert day_report(repository, "another-day").courts == []


def test_a_review_is_the_time_from_its_replay_to_the_next_review_end() -> None:
    def row(trigger: str, at_s: int) -> TriggerRow:
        return TriggerRow("n", trigger, "done", "1", None, None, at_s * 1000, at_s * 1000 + 500, "pending", None, None)

    rows = [row("match_ready", 0), row("review_over", 5), row("replay", 10), row("replay", 20), row("review_over", 52),
            row("review_over", 60), row("replay", 70)]
    report = build_report("d", [], rows, {})
    [court] = report.courts
    # A review end without a replay before it counts nothing; a second replay restarts the clock;
    # the last replay's review has not ended.
    assert court.review_list == [Review(at_ms=20_000, seconds=32.0)] and court.replays == 3 and court.court == "n"
    assert court.desk == {"pending": 3} and court.desk_times.count == 0 and court.desk_times.median_s is None
    assert court.categories == dict.fromkeys(["K", "P", "H", "TH", "TB", "R", "O"], 0)


def test_the_cli_plans_a_tournament_with_its_days(pg_url: str) -> None:
    args = [restrike_exe(), "master", "tournament", "add", "Split Cup", "--start", "2026-12-03", "--days", "2",
            "--location", "Split", "--db", pg_url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ActivateDayArgs(tournament_name="Split Cup", day_number=1, date=TODAY).tournament
    with CentralRepository.open(pg_url) as repository:
        assert [(d.day_number, d.date) for d in repository.days()] == [(1, dt.date(2026, 12, 3)), (2, dt.date(2026, 12, 4))]
        assert repository.tournaments()[0].end_date == dt.date(2026, 12, 4)
    again = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_the_cli_prints_a_courts_chapters(pg_url: str) -> None:
    upgrade(pg_url)
    with CentralStore(pg_url) as store:
        day_seed.seed(store)
    base = [restrike_exe(), "master", "chapters", "--db", pg_url, "--day", "Croatia Open:1"]
    done = subprocess.run([*base, "--court", "Court 1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == day_seed.CHAPTERS and "note: moved 'Match 101" in done.stderr
    none = subprocess.run([*base, "--court", "court-2"], capture_output=True, text=True, timeout=60)
    assert none.returncode == 1 and "at least 3" in none.stderr
