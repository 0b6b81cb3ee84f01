"""What a match card shows, as plain values: pure functions from the courts service's views.

The overlay (and the courts page) render these; nothing here touches NiceGUI, so the
ordering, the staleness rule and the text are tested without a browser.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from master.services.courts import CourtView
from shared.match_snapshot import MatchSnapshot
from shared.match_state import MatchStatus

__all__ = ["STALE_SECONDS", "MatchCard", "card_of", "cards_by_node", "court_matches", "in_order"]

#: A card without news from its court for this long is marked stale.
STALE_SECONDS = 30.0

_PHASE = {MatchStatus.BREAK: "break", MatchStatus.FINISHED: "finished"}
_ORDER = {"active": 0, "break": 1, "finished": 2}
_STATUS_TEXT = {
    MatchStatus.LOADED: "LOADED",
    MatchStatus.READY: "READY",
    MatchStatus.RUNNING: "LIVE",
    MatchStatus.PAUSED: "PAUSED",
    MatchStatus.INJURY: "INJURY",
    MatchStatus.CHALLENGE: "VIDEO REVIEW",
    MatchStatus.BREAK: "BREAK",
    MatchStatus.FINISHED: "FINAL",
}


@dataclass(frozen=True)
class MatchCard:
    """One court's match as viewers see it: nothing else (no address, no health, no ids)."""

    court: str
    number: str
    blue: str
    blue_noc: str
    red: str
    red_noc: str
    blue_score: int
    red_score: int
    round: int
    clock: str
    blue_rounds: int
    red_rounds: int
    status: str
    phase: str  # active, break or finished
    review: str  # "" or what the video review is: "BLUE CHALLENGE", "REFEREE REVIEW", "CHALLENGE UPHELD"...
    review_active: bool
    winner: str  # "", "blue", "red" or "tie"
    stale: bool


def card_of(
    court: str, match: MatchSnapshot, last_seen: dt.datetime | None, now: dt.datetime, replay_on_air: bool = False
) -> MatchCard:
    """The card of one court's current match; ``replay_on_air``: the court's IVR scene is live."""
    clock_seconds = match.break_seconds if match.break_active else match.clock_seconds
    won = match.result_rounds if match.is_finished and match.result_rounds is not None else match.rounds_won
    review, active = "", False
    if match.challenge is not None:
        by = match.challenge.by.upper()
        active = match.challenge.active
        if active:
            review = "REFEREE REVIEW" if by == "REFEREE" else f"{by} CHALLENGE"
        elif match.challenge.won is not None and match.status is not MatchStatus.FINISHED:
            review = f"{by} CHALLENGE {'UPHELD' if match.challenge.won else 'REJECTED'}"
    if replay_on_air and not active:
        review, active = "VIDEO REVIEW", True
    return MatchCard(
        court=court,
        number=match.number or "",
        blue=match.blue.name or match.blue.short,
        blue_noc=match.blue.noc,
        red=match.red.name or match.red.short,
        red_noc=match.red.noc,
        blue_score=match.score.blue,
        red_score=match.score.red,
        round=match.round,
        clock="" if clock_seconds is None else f"{clock_seconds // 60}:{clock_seconds % 60:02d}",
        blue_rounds=won.blue,
        red_rounds=won.red,
        status=_STATUS_TEXT.get(match.status, match.status.value.upper()),
        phase=_PHASE.get(match.status, "active"),
        review=review,
        review_active=active,
        winner=(match.winner or "") if match.is_finished else "",
        stale=last_seen is None or (now - last_seen).total_seconds() > STALE_SECONDS,
    )


def cards_by_node(courts: Iterable[CourtView], now: dt.datetime, court: str | None = None) -> dict[str, MatchCard]:
    """The card of every court with a match (or of the one an overlay URL asks for), by node id: a page
    keeps them so and recomputes only the courts that changed; :func:`in_order` orders them."""
    return {
        view.node_id: card_of(view.court or view.node_id, view.match, view.last_seen, now,
                              view.obs is not None and view.obs.ivr_active)
        for view in court_matches(courts, court)
        if view.match is not None and view.match.status is not MatchStatus.IDLE
    }


def in_order(cards: Iterable[MatchCard]) -> list[MatchCard]:
    """Active > break > finished, then by court (Court 2 before Court 10)."""
    return sorted(cards, key=lambda c: (_ORDER[c.phase], _natural(c.court)))


def court_matches(courts: Iterable[CourtView], wanted: str | None) -> list[CourtView]:
    """The courts an overlay URL asks for: all, or one by number ("3"), name ("Court 3") or node id."""
    if not wanted:
        return list(courts)
    key = wanted.strip().lower()
    return [
        view for view in courts
        if key in ((view.court or "").lower(), view.node_id.lower()) or (key.isdigit() and _number(view.court) == int(key))
    ]


def _number(name: str | None) -> int | None:
    found = re.findall(r"\d+", name or "")
    return int(found[-1]) if found else None


def _natural(name: str) -> tuple[str, int]:
    return (re.sub(r"\d+", "", name), _number(name) or 0)
