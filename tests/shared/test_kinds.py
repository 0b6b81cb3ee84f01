"""Kinds are derived from the code and agree with the seven categories; every parser code has one."""

from __future__ import annotations

from shared.pss import Category, parse_line
from shared.pss.kinds import EventKind, codes_of, kind_of
from shared.pss.parser import _HANDLERS
from tests.support import sample_lines

_REFEREE_KINDS = {
    EventKind.WARNING, EventKind.CHALLENGE, EventKind.INJURY, EventKind.BREAK, EventKind.CLOCK,
    EventKind.ROUND, EventKind.WINNER, EventKind.ROUND_WINNERS,
}
_EXPECTED_CATEGORY = {
    **{kind: {Category.REFEREE} for kind in _REFEREE_KINDS},
    EventKind.POINT: {Category.PUNCH, Category.BODY, Category.HEAD, Category.TURNING_HEAD},
    EventKind.HIT_LEVEL: {Category.HIT_LEVEL},
}


def test_only_the_odd_gen2_extras_have_no_kind() -> None:
    unlisted = {code for code in _HANDLERS if kind_of(code) is EventKind.OTHER}
    assert unlisted == {"avt", "to1", "to2", "inlb", "insl", "inth", "hwt"}
    assert kind_of("udp") is EventKind.LINK and kind_of("") is EventKind.OTHER


def test_every_valid_event_of_the_real_capture_has_the_category_its_kind_implies() -> None:
    seen: set[EventKind] = set()
    for _, line in sample_lines():
        event = parse_line(line)
        if not event.valid:
            assert event.category is Category.OTHER
            continue
        kind = kind_of(event.code)
        seen.add(kind)
        assert event.category in _EXPECTED_CATEGORY.get(kind, {Category.OTHER}), line
    assert {EventKind.POINT, EventKind.CHALLENGE, EventKind.CLOCK, EventKind.WINNER} <= seen


def test_codes_of_inverts_kind_of() -> None:
    assert codes_of([EventKind.CHALLENGE]) == {"ch0", "ch1", "ch2"}
    assert codes_of([EventKind.WINNER, EventKind.ROUND]) == {"win", "wmh", "rnd"}
    assert codes_of([EventKind.OTHER]) == frozenset()
    assert all(kind_of(code) is kind for kind in EventKind for code in codes_of([kind]))
