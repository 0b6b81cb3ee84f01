"""MatchState folded from the real capture and from hand-written sequences."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from shared.match_snapshot import ChallengeSnapshot, MatchSnapshot, Tally
from shared.match_state import MatchState, MatchStatus
from shared.pss.parser import parse_line
from shared.pss.simulator import simulate_match

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "reconstructed_pss_stream_20250720-20250809.tsv"

GEN3_LOAD = [
    "ref;;;ju1;;;ju2;;;ta;;;",
    "at1;Mikhail Kalashnikov;Mikhail Kalashnikov;RUS;at2;Dicke Berta;Dicke Berta;GER",
    "mch;1945;Final;M -87kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Under 21;3;120;cntDown;22;5;",
    "wg1;0;wg2;0",
    "wrd;rd1;0;rd2;0;rd3;0",
    "s11;0;s21;0;s12;0;s22;0;s13;0;s23;0",
    "sc1;0;sc2;0",
    "clk;02:00",
    "rnd;1",
    "sup;0",
]


def fold(lines: list[str], state: MatchState | None = None) -> MatchState:
    state = state or MatchState()
    for line in lines:
        state.apply(parse_line(line))
    return state


def sample_rows() -> list[tuple[datetime, str]]:
    rows = []
    for row in SAMPLE.read_text(encoding="utf-8").splitlines():
        if row and not row.startswith("#"):
            stamp, _, line = row.split("\t", 2)
            rows.append((datetime.fromisoformat(stamp), line))
    return rows


def test_sample_match_1945() -> None:
    state = MatchState()
    finished: list[MatchSnapshot] = []
    for stamp, line in sample_rows():
        state.apply(parse_line(line))
        if line.startswith("wmh;") and state.match_number == "1945" and stamp.date().isoformat() == "2025-07-28":
            finished.append(MatchSnapshot.of(state))
            if stamp.strftime("%H:%M") == "15:50":
                final = MatchSnapshot.of(state)
                assert state.is_finished
                assert state.status is MatchStatus.FINISHED
    assert len(finished) == 1
    assert final.status is MatchStatus.FINISHED and final.is_finished
    assert final.number == "1945"
    assert final.phase == "Final"
    assert final.weight_class == "M -87kg"
    assert final.division == "Under 21"
    assert final.blue.model_dump() == {"name": "Mikhail Kalashnikov", "short": "Mikhail Kalashnikov", "noc": "RUS"}
    assert final.red.name == "Dicke Berta" and final.red.noc == "GER"
    assert final.round == 3
    assert [(r.number, r.winner) for r in final.rounds] == [(1, "red"), (2, "blue"), (3, "blue")]
    assert final.rounds_won == Tally(blue=2, red=1)
    assert final.winner == "blue"
    assert final.winner_name == "Mikhail Kalashnikov"
    assert final.result_rounds == Tally(blue=2, red=1)
    assert final.decision == "PTF"
    assert [r.score for r in final.rounds] == [Tally(blue=4, red=5), Tally(blue=19, red=12), Tally(blue=12, red=0)]
    assert final.score == Tally(blue=12, red=0)
    # wg counts are per round: round 1 ended 1-1, red got one in round 2, none in round 3.
    assert [r.warnings for r in final.rounds] == [Tally(blue=1, red=1), Tally(blue=0, red=1), None]
    assert final.rounds[1].stats is not None and final.rounds[1].stats.blue["head"] == 6
    assert final.clock_running is False


def test_sample_replay_finishes_every_played_match() -> None:
    state = MatchState()
    results = []
    for _, line in sample_rows():
        event = parse_line(line)
        state.apply(event)
        if event.code == "wmh":
            results.append((state.match_number, state.result.winner, state.status))
    assert len(results) == 9
    assert all(status is MatchStatus.FINISHED for _, _, status in results)
    assert ("7894", "red", MatchStatus.FINISHED) in results  # wmh;Damjan Mitrić;0-1 SUP
    assert ("1945", "blue", MatchStatus.FINISHED) in results


@pytest.mark.parametrize("seed", range(20))
def test_load_order_does_not_matter(seed: int) -> None:
    reference = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady"])
    shuffled = GEN3_LOAD[:]
    random.Random(seed).shuffle(shuffled)
    assert fold(["pre;FightLoaded", *shuffled, "rdy;FightReady"]) == reference
    assert reference.status is MatchStatus.READY
    assert reference.match_number == "1945"
    assert reference.clock_seconds == 120


def test_gen2_load_order_matches_gen3() -> None:
    gen2 = [
        "pre;FightLoaded", "rnd;1", "clk;02:00", "sc1;0;sc2;0", "s11;0;s21;0;s12;0;s22;0;s13;0;s23;0",
        "wg1;0;wg2;0", GEN3_LOAD[2], GEN3_LOAD[1], GEN3_LOAD[0], "rdy;FightReady",
    ]
    gen3 = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady"])
    gen3.leader = None  # Gen2 sends no sup
    assert fold(gen2) == gen3


def test_fight_loaded_starts_a_fresh_match() -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady", "clk;02:00;start", "sc1;3;sc2;0",
                  "wrd;rd1;1;rd2;0;rd3;0", "win;BLUE", "wmh;Mikhail Kalashnikov;1-0 PTF"])
    assert state.is_finished
    assert state.apply(parse_line("pre;FightLoaded"))
    assert state.status is MatchStatus.LOADED
    assert state.match_number is None
    assert state.score == (0, 0)
    assert state.round_winners == {}
    assert not state.is_finished


def test_status_through_a_round() -> None:
    state = MatchState()
    assert state.status is MatchStatus.IDLE
    fold(["pre;FightLoaded"], state)
    assert state.status is MatchStatus.LOADED
    fold([*GEN3_LOAD, "rdy;FightReady"], state)
    assert state.status is MatchStatus.READY
    fold(["clk;02:00;start", "clk;01:59"], state)
    assert state.status is MatchStatus.RUNNING
    assert state.clock_seconds == 119
    fold(["clk;01:50;stop"], state)
    assert state.status is MatchStatus.PAUSED


def test_injury_then_restart() -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady", "clk;02:00;start"])
    fold(["ij0;01:00;show", "clk;01:32;stop", "ij0;00:59"], state)
    assert state.status is MatchStatus.INJURY
    assert state.injury_seconds == 59 and MatchSnapshot.of(state).injury_active
    fold(["ij0;00:44;hide"], state)
    assert state.status is MatchStatus.PAUSED
    fold(["clk;01:32;start"], state)
    assert state.status is MatchStatus.RUNNING


def test_gen2_injury_ends_at_zero() -> None:
    state = fold(["pre;FightLoaded", "rdy;FightReady", "ij0;00:01"])
    assert state.status is MatchStatus.INJURY
    fold(["ij0;0:00"], state)
    assert state.status is MatchStatus.READY


@pytest.mark.parametrize(("resolution", "state_name"), [("ch1;1", "accepted"), ("ch1;0", "denied")])
def test_challenge_lifecycle(resolution: str, state_name: str) -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady", "clk;02:00;start", "clk;01:45;stop"])
    assert state.apply(parse_line("ch1"))
    assert state.status is MatchStatus.CHALLENGE
    assert MatchSnapshot.of(state).challenge == ChallengeSnapshot(by="blue", state="requested", round=1, active=True)
    fold([resolution], state)
    assert state.status is MatchStatus.CHALLENGE
    assert state.challenge is not None and state.challenge.state == state_name
    fold(["ch1;-1"], state)
    assert state.status is MatchStatus.PAUSED
    challenge = MatchSnapshot.of(state).challenge
    assert challenge is not None and challenge.state == state_name and challenge.active is False


def test_challenge_cancelled_and_clock_restart_fallback() -> None:
    state = fold(["pre;FightLoaded", "rdy;FightReady", "clk;02:00;start", "clk;01:00;stop", "ch2", "ch2;-1"])
    assert state.challenge is not None and state.challenge.state == "closed"
    assert state.status is MatchStatus.PAUSED
    fold(["ch0", "ch0;1;1"], state)
    assert state.challenge.by == "referee"
    assert state.challenge.won is True
    fold(["clk;01:00;start"], state)  # sender never closed the review
    assert state.status is MatchStatus.RUNNING


def test_break_and_next_round() -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady", "clk;02:00;start", "sc1;4;sc2;5",
                  "wg1;1;wg2;1", "clk;0:00;stopEnd", "clk;00:00;stop", "wrd;rd1;2;rd2;0;rd3;0",
                  "brk;00:59", "brk;00:58"])
    assert state.status is MatchStatus.BREAK
    assert state.break_seconds == 58
    assert state.rounds_won == (0, 1)
    fold(["brk;0:00;stopEnd"], state)
    assert state.status is MatchStatus.PAUSED
    fold(["sup;0", "rnd;2"], state)
    assert state.round == 2
    assert state.score == (0, 0)
    fold(["brk;00:30", "rnd;3"], state)  # an operator skipping the break also ends it
    assert state.status is MatchStatus.PAUSED
    fold(["wg1;0;wg2;2"], state)
    assert state.warnings == {1: (1, 1), 3: (0, 2)}


def test_invalid_and_uninteresting_events_change_nothing() -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady"])
    before = state.clone()
    assert not state.apply(parse_line("sc1;x;sc2;1"))
    assert not state.apply(parse_line("zzz;1"))
    assert not state.apply(parse_line("hl1;99"))
    assert not state.apply(parse_line("Udp Port 8888 connected;"))
    assert not state.apply(parse_line("clk;02:00"))  # same value again
    assert state == before
    assert state.apply(parse_line("sc1;1;sc2;0"))


def test_wmh_without_win_names_the_colour() -> None:
    state = fold(["pre;FightLoaded", *GEN3_LOAD, "rdy;FightReady", "wmh;Dicke Berta;0-2 PTF"])
    assert state.result.winner == "red"
    assert state.is_finished
    tie = fold(["pre;FightLoaded", "rdy;FightReady", "win;TIE", "wmh;;0-0 WDR"])
    assert tie.result.winner == "tie"
    assert tie.result.decision == "WDR"


def test_clone_is_independent_of_the_original() -> None:
    state = MatchState()
    for _, line in simulate_match(3).lines:
        state.fold(parse_line(line))
    clone = state.clone()
    assert clone == state
    before = MatchSnapshot.of(state)
    for _, line in simulate_match(4).lines:  # another whole match, challenge and result included
        clone.fold(parse_line(line))
    assert MatchSnapshot.of(state) == before
    assert MatchSnapshot.of(clone) != before
