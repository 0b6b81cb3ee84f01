"""Resynchronisation cases shared by the unit and the process tests: a simulated court cut mid-match.

The ground truth is the live fold of every line sent up to the cut; a receiver that missed
all of them must rebuild, from the sender's answers alone, the part of it that pull requests
can carry (:data:`RESYNCED_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.match_snapshot import MatchSnapshot
from shared.match_state import MatchState
from shared.pss.parser import parse_line
from shared.pss.pull import LastPackets
from shared.pss.simulator import SimulatedSession, simulate_session

#: What the answers (mch, at1, rnd, sc, brk, clk, wrd, wmh) restore; not the per-round scores,
#: the leader, statistics, challenges or injuries, which no pull request asks for.
RESYNCED_KEYS = (
    "status", "number", "phase", "weight_class", "division", "total_rounds", "round_duration", "blue", "red",
    "round", "score", "clock_seconds", "clock_running", "break_active", "winner", "winner_name",
    "result_rounds", "decision", "loaded", "ready", "started",
)


@dataclass
class Cut:
    """A session sent up to (and including) line ``index``."""

    session: SimulatedSession
    index: int

    @property
    def sent(self) -> list[str]:
        return [line for _, line in self.session.lines[: self.index + 1]]

    @property
    def rest(self) -> list[str]:
        return [line for _, line in self.session.lines[self.index + 1 :]]

    def truth(self) -> MatchState:
        state = MatchState()
        for line in self.sent:
            state.fold(parse_line(line))
        return state

    def memory(self, suffix: bytes = b"") -> LastPackets:
        """The sender's memory at the cut: its last packet of each kind."""
        memory = LastPackets()
        for line in self.sent:
            memory.sent(line.encode() + suffix)
        return memory

    def match_index(self) -> int:
        """Which match of the session the cut falls in (0-based)."""
        end = 1  # the session opens with its "Udp Port ... connected;" line
        for number, match in enumerate(self.session.matches):
            end += len(match.lines)
            if self.index < end:
                return number
        raise IndexError(f"line {self.index} is after the last match")


def resynced_view(match: MatchState | MatchSnapshot) -> dict[str, Any]:
    """The part of a match that the answers restore (with the round winners)."""
    snapshot = MatchSnapshot.of(match) if isinstance(match, MatchState) else match
    view = {key: getattr(snapshot, key) for key in RESYNCED_KEYS}
    view["round_winners"] = {r.number: r.winner for r in snapshot.rounds if r.winner is not None}
    view["break_seconds"] = snapshot.break_seconds if snapshot.break_active else None  # shown only then
    return view


def cuts_after_points(seed: int, sender: str, every: int = 2, matches: int = 2) -> list[Cut]:
    """Cut right after every ``every``-th point: the last ``sc`` is then the current round's score.

    Cuts where the previous match's winner is one of the current athletes are left out: a
    ``wmh`` answer cannot tell those two matches apart (see ``MatchState.fold_answer``).
    """
    session = simulate_session(seed, matches, sender=sender, round_seconds=20, break_seconds=5)  # type: ignore[arg-type]
    points = [i for i, (_, line) in enumerate(session.lines) if line.startswith(("pt1;", "pt2;"))]
    cuts = []
    for index in points[every - 1 :: every]:
        cut = Cut(session, index)
        number = cut.match_index()
        if number > 0:
            previous, current = session.matches[number - 1], session.matches[number]
            if previous.winner_name in (current.blue.name, current.red.name):
                continue
        cuts.append(cut)
    return cuts
