"""The current match on one court, folded from PSS events.

Both ends fold the same events through the same code, so the slave's overlay, the
master's console and the tests agree on what "the match" is; :mod:`shared.match_snapshot`
is its typed, serialisable view. Every message in the load block only *sets* values
(``pre;FightLoaded`` alone resets), so Gen2's and Gen3's different load orders give the
same state. The status is derived from flags rather
than stored, which keeps it consistent whatever order the flags arrive in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from dataclasses import fields as fields_of
from enum import StrEnum
from typing import Any

from shared.pss.parser import PssEvent
from shared.pss.pull import ANSWER_CODES

__all__ = ["Athlete", "Challenge", "MatchInfo", "MatchResult", "MatchState", "MatchStatus"]


class MatchStatus(StrEnum):
    """What the court is doing, as an operator or a viewer would name it."""

    IDLE = "idle"  # nothing loaded since the receiver started
    LOADED = "loaded"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    INJURY = "injury"
    CHALLENGE = "challenge"
    BREAK = "break"
    FINISHED = "finished"


@dataclass(slots=True)
class Athlete:
    """One corner as the scoreboard shows it (``at1``/``at2``)."""

    name: str = ""
    short: str = ""
    noc: str = ""


@dataclass(slots=True)
class MatchInfo:
    """The ``mch`` configuration of the loaded match."""

    number: str | None = None
    phase: str | None = None
    weight_class: str | None = None
    division: str | None = None
    total_rounds: int | None = None
    round_duration: int | None = None
    match_id: str | None = None


@dataclass(slots=True)
class Challenge:
    """The latest video-review request and how far it got."""

    by: str  # "blue", "red" or "referee"
    state: str = "requested"  # requested / accepted / denied / closed
    won: bool | None = None
    round: int | None = None


@dataclass(slots=True)
class MatchResult:
    """``win`` and ``wmh``: the colour, the name shown, the tally and the decision."""

    winner: str | None = None  # "blue", "red" or "tie"
    winner_name: str | None = None
    blue_rounds: int | None = None
    red_rounds: int | None = None
    decision: str | None = None


@dataclass
class MatchState:
    """The match being fought, updated one event at a time by :meth:`apply`."""

    info: MatchInfo = field(default_factory=MatchInfo)
    blue: Athlete = field(default_factory=Athlete)
    red: Athlete = field(default_factory=Athlete)
    round: int = 1
    #: ``sc1``/``sc2``: the current round's score (it restarts every round in best-of-3).
    score: tuple[int, int] = (0, 0)
    #: ``s1x``/``s2x`` by round number.
    round_scores: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: ``wg`` gam-jeom counts by the round they were given in.
    warnings: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: ``wrd``: "blue" / "red" by round number, only for decided rounds.
    round_winners: dict[int, str] = field(default_factory=dict)
    leader: str | None = None
    clock_seconds: int | None = None
    clock_running: bool = False
    injury_seconds: int | None = None
    break_seconds: int | None = None
    challenge: Challenge | None = None
    last_point: dict[str, Any] | None = None
    round_stats: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)
    result: MatchResult = field(default_factory=MatchResult)
    loaded: bool = False
    ready: bool = False
    started: bool = False
    injury_active: bool = False
    break_active: bool = False
    challenge_active: bool = False

    # --- public API ---------------------------------------------------------------------

    def apply(self, event: PssEvent) -> bool:
        """Fold one event in; True when the state changed. Invalid events are ignored."""
        before = self.clone()
        return self.fold(event) and self != before

    def fold(self, event: PssEvent) -> bool:
        """Fold one event in without comparing states (the ingest hot path); True if it was handled."""
        return event.valid and self.fold_fields(event.code, event.fields)

    def fold_fields(self, code: str, fields: dict[str, Any]) -> bool:
        """Fold a valid event given by its code and parsed fields (a stored record's ``code`` and
        ``parsed``, as the master receives them); True if the code is one the match state uses."""
        handler = _HANDLERS.get(code)
        if handler is None:
            return False
        handler(self, fields)
        return True

    def fold_answer(self, event: PssEvent) -> bool:
        """Fold the sender's answer to a pull request (:mod:`shared.pss.pull`); True if it was used."""
        return event.valid and self.fold_answer_fields(event.code, event.fields)

    def fold_answer_fields(self, code: str, fields: dict[str, Any]) -> bool:
        """Fold a valid answer given by its code and parsed fields (a stored record flagged ``resync``).

        An answer is the sender's *last* packet of a kind, not something that just happened, so:

        * ``mch`` names the loaded match: a number other than the one folded so far means the
          sender loaded a match this receiver never saw, so the state starts afresh (as at ``pre``);
          either way a match is loaded and ready.
        * ``clk``: a plain tick is the last clock packet only while the clock runs (every stop
          sends ``;stop``), and a clock below the round length means the round has started.
        * ``brk`` that ended a break says nothing about now (it may be the previous match's).
        * ``wrd`` and ``wmh`` may be the *previous* match's (a sender that does not send ``wrd``
          at load keeps the last one, and ``wmh`` is kept until the next match ends): round
          winners count only for rounds that are over (before the current round, or the current
          one once its clock has run out), a result only when its winner is a current athlete.
        * Every other answer sets its values as the live packet would. Any other code is not an
          answer and is not folded; True when the answer was used.
        """
        if code not in ANSWER_CODES:
            return False
        if code == "mch":
            if self.info.number is not None and self.info.number != fields["match_number"]:
                self._on_loaded(fields)
            self._on_config(fields)
            self.loaded = self.ready = True
        elif code == "brk":
            if fields["action"] == "stopEnd" and not self.break_active:
                return False  # the last break is over (perhaps the previous match's): nothing to show
            self._on_break(fields)
        elif code == "wrd":
            over = self.round if self.clock_seconds == 0 and not self.clock_running else self.round - 1
            if any(int(r) > over for r, winner in fields["round_winners"].items() if winner is not None):
                return False
            self._on_round_winners(fields)
        elif code == "wmh":
            named = {self.blue.name, self.blue.short, self.red.name, self.red.short} - {""}
            if fields["winner_name"] not in named:
                return False
            self._on_result(fields)
        elif code == "clk":
            self._on_clock(fields)
            duration, seconds = self.info.round_duration, fields["seconds"]
            if duration is not None and seconds < duration:
                self.started = True
                if fields["action"] is None and seconds > 0:
                    self.clock_running = True
        else:
            self.fold_fields(code, fields)
        if self.round > 1:
            self.started = True
        return True

    def clone(self) -> MatchState:
        """An independent copy (a store folds a batch into a clone and keeps it only if it commits).

        Ten times cheaper than ``copy.deepcopy``: handlers replace the tuples and dict values they
        change, so copying each container one level deep is enough, except for the mutable parts
        handlers change in place (challenge, result) and the nested round statistics.
        """
        return replace(
            self,
            info=replace(self.info),
            blue=replace(self.blue),
            red=replace(self.red),
            round_scores=dict(self.round_scores),
            warnings=dict(self.warnings),
            round_winners=dict(self.round_winners),
            challenge=None if self.challenge is None else replace(self.challenge),
            last_point=None if self.last_point is None else dict(self.last_point),
            round_stats={r: {side: dict(v) for side, v in s.items()} for r, s in self.round_stats.items()},
            result=replace(self.result),
        )

    @property
    def match_number(self) -> str | None:
        """The ``mch`` match number (a string: ``245.A`` exists)."""
        return self.info.number

    @property
    def is_finished(self) -> bool:
        """A result (``win`` or ``wmh``) has arrived for the loaded match."""
        return self.result.winner is not None or self.result.decision is not None

    @property
    def rounds_won(self) -> tuple[int, int]:
        """Rounds won by blue and red according to ``wrd``."""
        winners = list(self.round_winners.values())
        return winners.count("blue"), winners.count("red")

    @property
    def rounds_played(self) -> int:
        """Rounds that have a winner in ``wrd``."""
        return len(self.round_winners)

    @property
    def status(self) -> MatchStatus:
        """Derived from the flags, most specific first."""
        if self.is_finished:
            return MatchStatus.FINISHED
        if self.challenge_active:
            return MatchStatus.CHALLENGE
        if self.injury_active:
            return MatchStatus.INJURY
        if self.clock_running:
            return MatchStatus.RUNNING
        if self.break_active:
            return MatchStatus.BREAK
        if self.started:
            return MatchStatus.PAUSED
        if self.ready:
            return MatchStatus.READY
        if self.loaded:
            return MatchStatus.LOADED
        return MatchStatus.IDLE

    # --- handlers -----------------------------------------------------------------------

    def _on_loaded(self, fields: dict[str, Any]) -> None:
        fresh = MatchState()
        for item in fields_of(self):
            setattr(self, item.name, getattr(fresh, item.name))
        self.loaded = True

    def _on_ready(self, fields: dict[str, Any]) -> None:
        self.loaded = True
        self.ready = True

    def _on_config(self, fields: dict[str, Any]) -> None:
        self.info = MatchInfo(
            number=fields.get("match_number"),
            phase=fields.get("phase"),
            weight_class=fields.get("weight_class"),
            division=fields.get("division"),
            total_rounds=fields.get("total_rounds"),
            round_duration=fields.get("round_duration"),
            match_id=fields.get("match_id"),
        )

    def _on_athletes(self, fields: dict[str, Any]) -> None:
        self.blue = Athlete(fields["blue_name"], fields["blue_short"], fields["blue_noc"])
        self.red = Athlete(fields["red_name"], fields["red_short"], fields["red_noc"])

    def _on_round(self, fields: dict[str, Any]) -> None:
        number = fields["round"]
        if number == self.round:
            return
        # A new round: the current score and gam-jeoms restart, the break is over.
        self.round = number
        self.score = (0, 0)
        self.break_active = False

    def _on_score(self, fields: dict[str, Any]) -> None:
        self.score = (fields.get("blue_score", self.score[0]), fields.get("red_score", self.score[1]))

    def _on_round_scores(self, fields: dict[str, Any]) -> None:
        blue, red = fields["blue_round_scores"], fields["red_round_scores"]
        for key in sorted(set(blue) | set(red), key=int):
            number = int(key)
            old_blue, old_red = self.round_scores.get(number, (0, 0))
            self.round_scores[number] = (blue.get(key, old_blue), red.get(key, old_red))

    def _on_warnings(self, fields: dict[str, Any]) -> None:
        blue, red = self.warnings.get(self.round, (0, 0))
        self.warnings[self.round] = (fields.get("blue_warnings", blue), fields.get("red_warnings", red))

    def _on_round_winners(self, fields: dict[str, Any]) -> None:
        self.round_winners = {
            int(r): w for r, w in fields["round_winners"].items() if w is not None
        }

    def _on_leader(self, fields: dict[str, Any]) -> None:
        self.leader = fields["leader"]

    def _on_point(self, fields: dict[str, Any]) -> None:
        self.last_point = {
            "athlete": fields["athlete"],
            "points": fields["points"],
            "technique": fields["technique"],
            "round": self.round,
        }

    def _on_clock(self, fields: dict[str, Any]) -> None:
        self.clock_seconds = fields["seconds"]
        action = fields["action"]
        if action == "start":
            # The round clock running again also closes whatever interrupted it.
            self.clock_running = True
            self.started = True
            self.injury_active = False
            self.break_active = False
            self.challenge_active = False
        elif action in ("stop", "stopEnd"):
            self.clock_running = False

    def _on_injury(self, fields: dict[str, Any]) -> None:
        self.injury_seconds = fields["seconds"]
        action = fields["action"]
        if action == "show":
            self.injury_active = True
        elif action in ("hide", "reset"):
            self.injury_active = False
        elif fields["seconds"] == 0:
            self.injury_active = False  # Gen2 ends Kye-shi with a bare ij0;0:00
        else:
            self.injury_active = True

    def _on_break(self, fields: dict[str, Any]) -> None:
        self.break_seconds = fields["seconds"]
        self.break_active = fields["action"] != "stopEnd"
        if self.break_active:
            self.clock_running = False

    def _on_challenge(self, fields: dict[str, Any]) -> None:
        state, by = fields["state"], fields["by"]
        if state == "requested" or self.challenge is None or self.challenge.by != by:
            self.challenge = Challenge(by=by, round=self.round)
        if state == "closed":
            # ``-1`` closes the review; it keeps accepted/denied, or means "cancelled".
            if self.challenge.state == "requested":
                self.challenge.state = "closed"
        else:
            self.challenge.state = state
        if fields["won"] is not None:
            self.challenge.won = fields["won"]
        self.challenge_active = state != "closed"

    def _on_stats(self, fields: dict[str, Any]) -> None:
        self.round_stats[fields["round"]] = {
            "blue": dict(fields["blue_stats"]),
            "red": dict(fields["red_stats"]),
        }

    def _on_winner(self, fields: dict[str, Any]) -> None:
        self.result.winner = fields["winner"]
        self._end_match()

    def _on_result(self, fields: dict[str, Any]) -> None:
        self.result.winner_name = fields["winner_name"]
        self.result.blue_rounds = fields["blue_rounds"]
        self.result.red_rounds = fields["red_rounds"]
        self.result.decision = fields["decision"]
        if self.result.winner is None and fields["winner_name"]:
            if fields["winner_name"] == self.blue.name:
                self.result.winner = "blue"
            elif fields["winner_name"] == self.red.name:
                self.result.winner = "red"
        self._end_match()

    def _end_match(self) -> None:
        self.clock_running = False
        self.injury_active = False
        self.break_active = False
        self.challenge_active = False


_Handler = Callable[[MatchState, dict[str, Any]], None]

_HANDLERS: dict[str, _Handler] = {
    "pre": MatchState._on_loaded,
    "rdy": MatchState._on_ready,
    "mch": MatchState._on_config,
    "at1": MatchState._on_athletes,
    "rnd": MatchState._on_round,
    "sc1": MatchState._on_score,
    "sc2": MatchState._on_score,
    **{f"s{a}{r}": MatchState._on_round_scores for a in "12" for r in "1234"},
    "wg1": MatchState._on_warnings,
    "wg2": MatchState._on_warnings,
    "wrd": MatchState._on_round_winners,
    "sup": MatchState._on_leader,
    "pt1": MatchState._on_point,
    "pt2": MatchState._on_point,
    "clk": MatchState._on_clock,
    "ij0": MatchState._on_injury,
    "ij1": MatchState._on_injury,
    "ij2": MatchState._on_injury,
    "brk": MatchState._on_break,
    "ch0": MatchState._on_challenge,
    "ch1": MatchState._on_challenge,
    "ch2": MatchState._on_challenge,
    "rst": MatchState._on_stats,
    "win": MatchState._on_winner,
    "wmh": MatchState._on_result,
}
