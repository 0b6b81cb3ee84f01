"""The simulator is deterministic, speaks valid protocol and its ground truth folds back."""

from __future__ import annotations

import pytest

from shared.match_state import MatchState, MatchStatus
from shared.pss.parser import parse_line
from shared.pss.simulator import SENDERS, SimulatedMatch, simulate_match, simulate_session, simulate_venue

SHORT = {"round_seconds": 20, "break_seconds": 5}


def fold(match: SimulatedMatch) -> MatchState:
    state = MatchState()
    for _, line in match.lines:
        event = parse_line(line)
        assert event.valid, (line, event.error)
        state.apply(event)
    return state


def test_same_seed_same_traffic() -> None:
    assert simulate_session(7, 3, **SHORT).lines == simulate_session(7, 3, **SHORT).lines
    assert simulate_session(7, 3, **SHORT).lines != simulate_session(8, 3, **SHORT).lines


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("seed", range(25))
def test_folding_reproduces_ground_truth(sender: str, seed: int) -> None:
    match = simulate_match(seed, sender=sender, challenge_chance=1.0, injury_chance=1.0, **SHORT)
    state = fold(match)
    assert state.status is MatchStatus.FINISHED
    assert state.match_number == match.match_number
    assert state.result.winner == match.winner
    assert state.result.winner_name == match.winner_name
    assert (state.result.blue_rounds, state.result.red_rounds) == match.rounds_won
    assert state.result.decision == "PTF"
    assert [state.round_winners[r] for r in sorted(state.round_winners)] == match.round_winners
    assert state.rounds_won == match.rounds_won
    assert state.rounds_played == len(match.round_winners) in (2, 3)
    assert max(match.rounds_won) == 2
    for number, scores in enumerate(match.round_scores, 1):
        assert state.round_scores[number] == scores
        assert scores[0] != scores[1]  # a round always has a winner on points
        assert state.warnings.get(number, (0, 0)) == match.warnings[number - 1]
    assert (state.blue.name, state.blue.noc) == (match.blue.name, match.blue.noc)
    assert state.info.weight_class == match.weight_class
    assert match.challenges == 1 and match.injuries == 1


def test_full_length_match() -> None:
    match = simulate_match(1945)
    ticks = [line for _, line in match.lines if line.startswith("clk;") and line.count(";") == 1]
    assert ticks.count("clk;02:00") == 1  # the load block's
    assert ticks.count("clk;00:00") == len(match.round_winners)
    duration = match.lines[-1][0] - match.lines[0][0]
    assert duration > 120 * len(match.round_winners) + 60
    assert fold(match).result.winner == match.winner


@pytest.mark.parametrize("sender", SENDERS)
def test_load_block_order(sender: str) -> None:
    match = simulate_match(3, sender=sender, **SHORT)
    codes = [line.split(";")[0] for _, line in match.lines]
    block = codes[: codes.index("rdy") + 1]
    if sender == "gen3":
        assert block == ["pre", "ref", "at1", "mch", "wg1", "wrd", "s11", "sc1", "clk", "rnd", "sup", "rdy"]
    else:
        assert block == ["pre", "rnd", "clk", "sc1", "s11", "wg1", "mch", "at1", "ref", "rdy"]
        assert "sup" not in codes and "rst" not in codes


def test_scoring_order_and_clock_is_stopped_during_incidents() -> None:
    match = simulate_match(11, challenge_chance=1.0, injury_chance=1.0, **SHORT)
    lines = [line for _, line in match.lines]
    for i, line in enumerate(lines):
        if line.startswith(("pt1;", "pt2;")):
            assert lines[i - 1].startswith("s11;") and lines[i - 2].startswith("sc1;")
        if line.startswith("wg1;") and i > 20:
            assert lines[i - 1].startswith("s11;") and lines[i - 2].startswith("sc1;")
    running = False
    for line in lines:
        if line.startswith("clk;"):
            if line.endswith(";start"):
                running = True
            elif line.endswith(("stop", "stopEnd")):
                running = False
        elif line.startswith(("ch1", "ch2", "ij0;00:")):  # Gen3 sends ij0;01:00;show just before the stop
            assert not running, line
    challenge = [line for line in lines if line.startswith(("ch1", "ch2"))]
    assert len(challenge) == 3
    assert challenge[1].endswith((";1", ";0")) and challenge[2].endswith(";-1")
    assert any(line.startswith("ij0;") and line.endswith(";hide") for line in lines)


def test_offsets_increase_and_names_are_unicode() -> None:
    session = simulate_session(5, 6, **SHORT)
    offsets = [at for at, _ in session.lines]
    assert offsets == sorted(offsets)
    assert session.lines[0] == (0.0, "Udp Port 8888 connected;")
    assert len(session.matches) == 6
    assert len({m.match_number for m in session.matches}) > 1
    names = [m.blue.name + m.red.name for m in simulate_session(1, 30, **SHORT).matches]
    assert any(not name.isascii() for name in names)
    numbers = [m.match_number for m in simulate_session(2, 40, **SHORT).matches]
    assert any("." in n for n in numbers) and any(n.isdigit() for n in numbers)


def test_session_fold_gives_every_result_in_turn() -> None:
    session = simulate_session(9, 4, sender="gen2", **SHORT)
    state = MatchState()
    winners = []
    for _, line in session.lines:
        event = parse_line(line)
        state.apply(event)
        if event.code == "wmh":
            winners.append((state.match_number, state.result.winner))
    assert winners == [(m.match_number, m.winner) for m in session.matches]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="sender"):
        simulate_match(1, sender="gen9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="round_seconds"):
        simulate_match(1, round_seconds=2)


@pytest.mark.parametrize("seed", range(5))
def test_venue_never_puts_an_athlete_on_two_courts_at_once(seed: int) -> None:
    sessions = simulate_venue(seed, courts=8, matches=6, gap_seconds=(2.0, 8.0), **SHORT)
    bouts = [
        (match.lines[0][0], match.lines[-1][0], athlete, court)
        for court, session in enumerate(sessions)
        for match in session.matches
        for athlete in (match.blue, match.red)
    ]
    assert all(len(session.matches) == 6 for session in sessions)
    for start, end, athlete, court in bouts:
        for other_start, other_end, other, other_court in bouts:
            if other == athlete and other_court != court:
                assert other_end <= start or end <= other_start, f"{athlete.name} on courts {court + 1} and {other_court + 1} at once"
    assert simulate_venue(seed, courts=8, matches=6, gap_seconds=(2.0, 8.0), **SHORT)[3].lines == sessions[3].lines
