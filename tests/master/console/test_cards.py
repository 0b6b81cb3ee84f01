"""The match card's rules without a browser: order, staleness, which court a URL means, the review badge."""

from __future__ import annotations

import datetime as dt

from master.console.cards import STALE_SECONDS, MatchCard, card_of, cards_by_node, in_order
from master.services.courts import CourtView
from shared.match_snapshot import ChallengeSnapshot, Corner, MatchSnapshot, Tally
from shared.match_state import MatchStatus

NOW = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)


def court(name: str, status: MatchStatus, seconds_ago: float = 1.0, **match: object) -> CourtView:
    snapshot = MatchSnapshot(status=status, number=f"{name[-1]}01", blue=Corner(name="Blue", noc="KOR"),
                             red=Corner(name="Red", noc="CRO"), **match)  # type: ignore[arg-type]
    return CourtView(
        node_id=f"node-{name[-1]}", court=name, status="online", last_seen=NOW - dt.timedelta(seconds=seconds_ago),
        epoch="e", published_seq=1, stored_seq=1, events=None, health=None, obs=None, match=snapshot,
        address="10.0.0.1", source="live", as_of=NOW,
    )


def cards_for(views: list[CourtView], now: dt.datetime, wanted: str | None = None) -> list[MatchCard]:
    """What an overlay shows: the cards of the courts asked for, in order."""
    return in_order(cards_by_node(views, now, wanted).values())


def test_cards_are_ordered_active_then_break_then_finished_then_by_court_number() -> None:
    views = [
        court("Court 10", MatchStatus.RUNNING),
        court("Court 2", MatchStatus.FINISHED),
        court("Court 3", MatchStatus.BREAK),
        court("Court 9", MatchStatus.PAUSED),
        court("Court 4", MatchStatus.IDLE),  # nothing loaded: no card
    ]
    cards = cards_for(views, NOW)
    assert [(c.court, c.phase) for c in cards] == [
        ("Court 9", "active"), ("Court 10", "active"), ("Court 3", "break"), ("Court 2", "finished"),
    ]


def test_a_card_goes_stale_after_thirty_seconds_without_news() -> None:
    assert not cards_for([court("Court 1", MatchStatus.RUNNING, STALE_SECONDS - 1)], NOW)[0].stale
    assert cards_for([court("Court 1", MatchStatus.RUNNING, STALE_SECONDS + 1)], NOW)[0].stale


def test_an_overlay_url_names_a_court_by_number_name_or_node() -> None:
    views = [court("Court 1", MatchStatus.RUNNING), court("Court 12", MatchStatus.RUNNING)]
    assert [c.court for c in cards_for(views, NOW, "1")] == ["Court 1"]
    assert [c.court for c in cards_for(views, NOW, "court 12")] == ["Court 12"]
    assert [c.court for c in cards_for(views, NOW, "node-1")] == ["Court 1"]
    assert cards_for(views, NOW, "7") == []


def test_card_text_clock_rounds_and_review() -> None:
    running = court("Court 1", MatchStatus.CHALLENGE, score=Tally(blue=5, red=3), clock_seconds=75, round=2,
                    challenge=ChallengeSnapshot(by="blue", state="requested", active=True))
    card = card_of("Court 1", running.match, running.last_seen, NOW)  # type: ignore[arg-type]
    assert (card.blue_score, card.red_score, card.clock, card.round) == (5, 3, "1:15", 2)
    assert (card.status, card.review, card.review_active) == ("VIDEO REVIEW", "BLUE CHALLENGE", True)

    resting = court("Court 1", MatchStatus.BREAK, break_seconds=42, break_active=True, clock_seconds=0)
    assert card_of("Court 1", resting.match, resting.last_seen, NOW).clock == "0:42"  # type: ignore[arg-type]

    done = court("Court 1", MatchStatus.FINISHED, winner="red", result_rounds=Tally(blue=0, red=2))
    card = card_of("Court 1", done.match, done.last_seen, NOW)  # type: ignore[arg-type]
    assert (card.winner, card.blue_rounds, card.red_rounds, card.status) == ("red", 0, 2, "FINAL")


def test_a_replay_on_air_shows_as_a_video_review() -> None:
    view = court("Court 1", MatchStatus.PAUSED)
    assert card_of("Court 1", view.match, view.last_seen, NOW, replay_on_air=True).review == "VIDEO REVIEW"  # type: ignore[arg-type]
    assert card_of("Court 1", view.match, view.last_seen, NOW).review == ""  # type: ignore[arg-type]
