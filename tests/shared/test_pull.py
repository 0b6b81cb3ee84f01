"""Pull requests: what a receiver asks, what a Gen2 sender answers, and what the answers mean."""

from __future__ import annotations

import pytest

from shared.match_state import MatchState, MatchStatus
from shared.pss.parser import parse_datagram, parse_line
from shared.pss.pull import (
    ANSWER_CODES,
    PULL_ANSWERS,
    RESYNC_REQUEST,
    LastPackets,
    announces_start,
    answer_kind,
    requests_in,
)
from shared.pss.simulator import SENDERS
from tests.resync_cases import cuts_after_points, resynced_view

MCH_101 = "mch;101;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;"
AT_101 = "at1;Perica;Perica;CRO;at2;Stevica;Stevica;GER"


def answered(lines: list[str], state: MatchState | None = None) -> MatchState:
    """Fold ``lines`` as answers, in the order a receiver asks for them."""
    state = state or MatchState()
    for line in lines:
        state.fold_answer(parse_line(line))
    return state


# --- the request and the sender's memory ----------------------------------------------


def test_the_request_asks_for_every_kind_in_one_datagram_in_order() -> None:
    assert RESYNC_REQUEST.split(b"\r\n") == [word.encode() for word in PULL_ANSWERS]
    assert requests_in(RESYNC_REQUEST) == list(PULL_ANSWERS)
    assert set(PULL_ANSWERS) == {
        "clock", "break", "period", "scores", "gam-jeom", "informations", "athletes", "winmatch", "referees",
        "winperiods;",
    }
    assert {"clk", "brk", "rnd", "sc1", "wg1", "mch", "at1", "wmh", "ref", "wrd"} == ANSWER_CODES
    # The match is asked for before what depends on it, the result last.
    order = list(PULL_ANSWERS.values())
    assert order.index("mch") < order.index("rnd") < order.index("sc1") < order.index("wmh")
    assert order.index("brk") < order.index("clk")


def test_requests_are_read_line_by_line_and_anything_else_is_ignored() -> None:
    assert requests_in(b"clock\r\nscores\n  period \rnonsense\r\n\r\nwinperiods;") == [
        "clock", "scores", "period", "winperiods;",
    ]
    assert requests_in(b"winperiods") == []  # Gen2 spells it with its ';'
    assert requests_in(b"CLOCK") == []
    assert requests_in(b"\xff\xfe") == []
    assert requests_in(b"") == []


@pytest.mark.parametrize(
    ("packet", "kind"),
    [
        (b"clk;01:23", "clock"), (b"brk;00:30;start", "break"), (b"rnd;2", "period"),
        (b"sc1;3;sc2;1\r\n", "scores"), (b"wg1;0;wg2;1", "gam-jeom"), (MCH_101.encode(), "informations"),
        (AT_101.encode(), "athletes"), (b"wmh;Perica;2-1 PTF", "winmatch"), (b"ref;;;ju1;;;", "referees"),
        (b"wrd;rd1;1;rd2;0;rd3;0", "winperiods;"),
        (b"pt1;3", None), (b"s11;0;s21;0", None), (b"sc2;1", None), (b"Udp Port 8888 connected;", None),
        (b"", None), (b"\xff\xff", None),
    ],
)
def test_each_packet_answers_one_kind(packet: bytes, kind: str | None) -> None:
    assert answer_kind(packet) == kind


def test_the_sender_answers_with_its_last_packet_of_each_kind_requested() -> None:
    memory = LastPackets()
    assert memory.answers(RESYNC_REQUEST) == []  # nothing sent yet: nothing to answer
    for packet in (b"sc1;0;sc2;0\r\n", b"clk;02:00\r\n", b"pt1;3\r\n", b"sc1;3;sc2;0\r\n", b"clk;01:59\r\n"):
        memory.sent(packet)
    assert memory.answers(b"scores") == [b"sc1;3;sc2;0\r\n"]
    assert memory.answers(b"clock\r\nscores\r\nathletes") == [b"clk;01:59\r\n", b"sc1;3;sc2;0\r\n"]
    assert memory.answers(RESYNC_REQUEST) == [b"sc1;3;sc2;0\r\n", b"clk;01:59\r\n"]  # in request order


@pytest.mark.parametrize(
    ("datagram", "starting"),
    [
        (b"Udp Port 8888 connected;", True), (b"Udp Port 6000 disconnected;\r\n", True), (b"hel;\r\n", True),
        (b"inlb;80:", True), (b"'Udp Port 8056 connected;'", True),
        (b"clk;01:23", False), (b"pre;FightLoaded", False), (b"bye;", False), (b"", False), (b"\xff", False),
    ],
)
def test_a_sender_announcing_its_start_has_nothing_to_answer(datagram: bytes, starting: bool) -> None:
    assert announces_start(datagram) is starting


# --- what the answers mean ------------------------------------------------------------


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("seed", range(6))
def test_answers_alone_rebuild_the_match_a_receiver_missed(sender: str, seed: int) -> None:
    cuts = cuts_after_points(seed, sender)
    assert len(cuts) >= 4
    for cut in cuts:
        truth = cut.truth()
        rebuilt = MatchState()
        for answer in cut.memory(b"\r\n").answers(RESYNC_REQUEST):
            (event,) = parse_datagram(answer)
            assert event.valid, answer
            rebuilt.fold_answer(event)
        assert resynced_view(rebuilt) == resynced_view(truth), cut.sent[-3:]
        if truth.round in truth.warnings:  # a gam-jeom count was sent in this round
            assert rebuilt.warnings[truth.round] == truth.warnings[truth.round]
        assert truth.status in (MatchStatus.RUNNING, MatchStatus.PAUSED)


@pytest.mark.parametrize("sender", SENDERS)
def test_answers_after_live_events_agree_with_them(sender: str) -> None:
    """A receiver that was listening all along (a sender that changed address) keeps its state."""
    for cut in cuts_after_points(11, sender):
        truth = cut.truth()
        both = cut.truth()
        for answer in cut.memory().answers(RESYNC_REQUEST):
            both.fold_answer(parse_line(answer.decode()))
        # The one known gap: a gam-jeom count sent in an earlier round is answered for this one.
        if truth.round not in truth.warnings:
            assert both.warnings.pop(both.round) == list(truth.warnings.values())[-1]
        assert both == truth


def test_round_winners_of_rounds_not_over_are_the_previous_match_s() -> None:
    # A sender that sends no wrd at load still answers with the previous match's.
    assert answered([MCH_101, "rnd;1", "clk;01:10", "wrd;rd1;1;rd2;1;rd3;0"]).round_winners == {}
    assert answered([MCH_101, "rnd;2", "clk;01:10", "wrd;rd1;2;rd2;2;rd3;0"]).round_winners == {}
    assert answered([MCH_101, "rnd;2", "clk;01:10", "wrd;rd1;2;rd2;0;rd3;0"]).round_winners == {1: "red"}
    # The current round, once its clock has run out (the break, or the match's end).
    assert answered([MCH_101, "rnd;2", "clk;0:00;stopEnd", "wrd;rd1;2;rd2;1;rd3;0"]).round_winners == {
        1: "red", 2: "blue",
    }


def test_a_result_of_the_previous_match_does_not_end_the_current_one() -> None:
    state = answered([MCH_101, AT_101, "sc1;2;sc2;1", "clk;01:10", "wmh;Marko Drakulić;2-0 PTF"])
    assert not state.is_finished
    assert state.status is MatchStatus.RUNNING
    assert state.result.winner_name is None
    assert not answered([MCH_101, AT_101, "wmh;;0-0 WDR"]).is_finished  # no name: cannot be told apart
    assert not answered(["wmh;Perica;2-1 PTF"]).is_finished  # names not known (yet)


def test_a_result_of_the_current_match_ends_it() -> None:
    state = answered([MCH_101, AT_101, "rnd;3", "clk;0:00;stopEnd", "wrd;rd1;1;rd2;2;rd3;1", "wmh;Perica;2-1 PTF"])
    assert state.status is MatchStatus.FINISHED
    assert (state.result.winner, state.result.decision) == ("blue", "PTF")
    assert state.rounds_won == (2, 1)


def test_another_match_number_starts_afresh_the_same_one_keeps_what_live_traffic_gave() -> None:
    live = MatchState()
    for line in ["pre;FightLoaded", MCH_101, AT_101, "rdy;FightReady", "clk;02:00;start", "s11;4;s21;2;s12;0;s22;0",
                 "sc1;4;sc2;2", "sup;1"]:
        live.fold(parse_line(line))
    same = answered([MCH_101, "sc1;5;sc2;2"], live.clone())
    assert same.round_scores == live.round_scores and same.leader == "blue"  # kept: no answer carries them
    assert same.score == (5, 2)

    other = answered([MCH_101.replace("101", "102"), "at1;A;A;KOR;at2;B;B;JPN", "sc1;1;sc2;0"], live.clone())
    assert other.match_number == "102"
    assert (other.blue.name, other.score, other.round_scores, other.leader) == ("A", (1, 0), {}, None)
    assert other.status is MatchStatus.READY


@pytest.mark.parametrize(
    ("clock", "status", "running"),
    [
        ("clk;02:00", MatchStatus.READY, False),  # loaded, round not started
        ("clk;01:23", MatchStatus.RUNNING, True),  # a plain tick is last only while the clock runs
        ("clk;01:23;start", MatchStatus.RUNNING, True),
        ("clk;01:23;stop", MatchStatus.PAUSED, False),
        ("clk;0:00;stopEnd", MatchStatus.PAUSED, False),
        ("clk;0:00", MatchStatus.PAUSED, False),  # a plain tick at zero: the round's time is up, not running
    ],
)
def test_the_clock_answer_tells_whether_the_round_runs(clock: str, status: MatchStatus, running: bool) -> None:
    state = answered([MCH_101, clock])
    assert (state.status, state.clock_running) == (status, running)


def test_without_the_round_length_a_plain_tick_is_not_taken_for_a_running_clock() -> None:
    assert answered(["clk;01:23"]).status is MatchStatus.IDLE


def test_a_break_answer_shows_the_break_and_a_later_round_has_started() -> None:
    state = answered([MCH_101, "rnd;2", "brk;00:30", "clk;0:00;stopEnd"])
    assert state.status is MatchStatus.BREAK and state.break_seconds == 30
    assert answered([MCH_101, "rnd;2", "brk;0:00;stopEnd", "clk;02:00"]).status is MatchStatus.PAUSED


@pytest.mark.parametrize("line", ["sc1;x;sc2;1", "clk;99:99:99", "mch;", "wrd;rd1;7", "pt1;3", "s11;1;s21;0", "zz9"])
def test_malformed_or_unexpected_answers_change_nothing(line: str) -> None:
    state = answered([MCH_101, AT_101, "sc1;2;sc2;1"])
    before = state.clone()
    assert state.fold_answer(parse_line(line)) is False
    assert state == before
