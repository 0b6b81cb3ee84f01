"""A finer grouping of events than the seven categories, derived from the message code.

``event_category`` holds only the plan's seven values (``R`` covers every referee matter);
a page or a report that needs "the challenges" or "the clock" asks for a kind instead. It is
computed from ``code`` whenever it is needed and never stored, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["EventKind", "codes_of", "kind_of"]


class EventKind(StrEnum):
    """What a message is about, one step finer than its category."""

    POINT = "point"
    HIT_LEVEL = "hit_level"
    WARNING = "warning"
    CHALLENGE = "challenge"
    INJURY = "injury"
    BREAK = "break"
    CLOCK = "clock"
    ROUND = "round"
    WINNER = "winner"
    ROUND_WINNERS = "round_winners"
    SCORE = "score"
    MATCH_SETUP = "match_setup"
    LINK = "link"
    OTHER = "other"


_KINDS: dict[str, EventKind] = {
    **dict.fromkeys(("pt1", "pt2"), EventKind.POINT),
    **dict.fromkeys(("hl1", "hl2"), EventKind.HIT_LEVEL),
    **dict.fromkeys(("wg1", "wg2"), EventKind.WARNING),
    **dict.fromkeys(("ch0", "ch1", "ch2"), EventKind.CHALLENGE),
    **dict.fromkeys(("ij0", "ij1", "ij2"), EventKind.INJURY),
    "brk": EventKind.BREAK,
    "clk": EventKind.CLOCK,
    "rnd": EventKind.ROUND,
    **dict.fromkeys(("win", "wmh"), EventKind.WINNER),
    "wrd": EventKind.ROUND_WINNERS,
    **dict.fromkeys(("sc1", "sc2", *(f"s{a}{r}" for a in "12" for r in "1234"), "sup", "rst", "rsr"), EventKind.SCORE),
    **dict.fromkeys(("pre", "rdy", "mch", "at1", "ref"), EventKind.MATCH_SETUP),
    **dict.fromkeys(("udp", "hel", "bye"), EventKind.LINK),
}


def kind_of(code: str) -> EventKind:
    """The kind of a stored event's ``code`` (``other`` for anything not listed, an empty code too)."""
    return _KINDS.get(code, EventKind.OTHER)


def codes_of(kinds: Iterable[EventKind]) -> frozenset[str]:
    """Every code of the given kinds (``other`` has no fixed codes: it is whatever is not listed)."""
    wanted = set(kinds)
    return frozenset(code for code, kind in _KINDS.items() if kind in wanted)
