"""The current match as a typed value: what heartbeats carry and what the console and overlay read.

:class:`MatchSnapshot` is the whole :class:`~shared.match_state.MatchState` (nothing left out),
so a master can take over a court's state from a heartbeat and keep folding the events
after it: the Clone pattern's "snapshot at seq N, then the updates after N".

Values that come from the scoring software (sides, challenge states, decisions) stay plain
strings: a heartbeat must never be refused because a sender wrote something unexpected.
Everything keyed by round is a list of :class:`RoundSnapshot` (msgpack maps take string keys only).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.match_state import (
    Athlete,
    Challenge,
    MatchInfo,
    MatchResult,
    MatchState,
    MatchStatus,
)

__all__ = [
    "ChallengeSnapshot",
    "Corner",
    "MatchSnapshot",
    "PointSnapshot",
    "RoundSnapshot",
    "RoundStats",
    "Tally",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tally(_Frozen):
    """A blue / red pair: a score, warnings, rounds won."""

    blue: int = 0
    red: int = 0


class Corner(_Frozen):
    """One athlete as the scoreboard shows them."""

    name: str = ""
    short: str = ""
    noc: str = ""


class RoundStats(_Frozen):
    """``rst``: counts by technique (body, head, punch, ...) per side."""

    blue: dict[str, int] = Field(default_factory=dict)
    red: dict[str, int] = Field(default_factory=dict)


class RoundSnapshot(_Frozen):
    """What is known of one round; a part the sender has not reported yet is ``None``."""

    number: int
    score: Tally | None = Field(None, description="s1x/s2x: the round's final or running score")
    warnings: Tally | None = Field(None, description="gam-jeom counts given in this round")
    winner: str | None = Field(None, description="wrd: blue or red")
    stats: RoundStats | None = None


class ChallengeSnapshot(_Frozen):
    """The latest video-review request."""

    by: str = Field(description="blue, red or referee")
    state: str = Field(description="requested, accepted, denied or closed")
    won: bool | None = None
    round: int | None = None
    active: bool = Field(False, description="The review is still open")


class PointSnapshot(_Frozen):
    """The latest point (``pt1``/``pt2``)."""

    athlete: str | None
    points: int
    technique: str | None
    round: int


class MatchSnapshot(_Frozen):
    """One court's match at one moment, complete enough to rebuild its :class:`MatchState`."""

    seq: int = Field(0, ge=0, description="Every event of the court's epoch up to this seq is folded in")
    status: MatchStatus = MatchStatus.IDLE
    number: str | None = Field(None, description="The match number (a string: 245.A exists)")
    phase: str | None = None
    weight_class: str | None = None
    division: str | None = None
    total_rounds: int | None = None
    round_duration: int | None = None
    match_id: str | None = None
    blue: Corner = Corner()
    red: Corner = Corner()
    round: int = 1
    score: Tally = Field(Tally(), description="The current round's score")
    rounds: list[RoundSnapshot] = Field(default_factory=list, description="By round number, only rounds with data")
    leader: str | None = None
    clock_seconds: int | None = None
    clock_running: bool = False
    injury_seconds: int | None = None
    injury_active: bool = False
    break_seconds: int | None = None
    break_active: bool = False
    challenge: ChallengeSnapshot | None = None
    last_point: PointSnapshot | None = None
    winner: str | None = Field(None, description="blue, red or tie once the match is decided")
    winner_name: str | None = None
    result_rounds: Tally | None = Field(None, description="Rounds won as the result (wmh) states them")
    decision: str | None = None
    loaded: bool = False
    ready: bool = False
    started: bool = False

    @property
    def rounds_won(self) -> Tally:
        """Rounds won so far according to ``wrd``."""
        winners = [r.winner for r in self.rounds]
        return Tally(blue=winners.count("blue"), red=winners.count("red"))

    @property
    def is_finished(self) -> bool:
        return self.status is MatchStatus.FINISHED

    @classmethod
    def of(cls, state: MatchState, seq: int = 0) -> MatchSnapshot:
        """The snapshot of ``state`` after the event numbered ``seq``."""
        numbers = sorted(set(state.round_scores) | set(state.warnings) | set(state.round_winners) | set(state.round_stats))
        rounds = []
        for number in numbers:
            score, warnings = state.round_scores.get(number), state.warnings.get(number)
            stats = state.round_stats.get(number)
            rounds.append(RoundSnapshot(
                number=number,
                score=None if score is None else Tally(blue=score[0], red=score[1]),
                warnings=None if warnings is None else Tally(blue=warnings[0], red=warnings[1]),
                winner=state.round_winners.get(number),
                stats=None if stats is None else RoundStats(blue=stats.get("blue", {}), red=stats.get("red", {})),
            ))
        challenge, point, result = state.challenge, state.last_point, state.result
        return cls(
            seq=seq,
            status=state.status,
            number=state.info.number,
            phase=state.info.phase,
            weight_class=state.info.weight_class,
            division=state.info.division,
            total_rounds=state.info.total_rounds,
            round_duration=state.info.round_duration,
            match_id=state.info.match_id,
            blue=Corner(name=state.blue.name, short=state.blue.short, noc=state.blue.noc),
            red=Corner(name=state.red.name, short=state.red.short, noc=state.red.noc),
            round=state.round,
            score=Tally(blue=state.score[0], red=state.score[1]),
            rounds=rounds,
            leader=state.leader,
            clock_seconds=state.clock_seconds,
            clock_running=state.clock_running,
            injury_seconds=state.injury_seconds,
            injury_active=state.injury_active,
            break_seconds=state.break_seconds,
            break_active=state.break_active,
            challenge=None if challenge is None else ChallengeSnapshot(
                by=challenge.by, state=challenge.state, won=challenge.won, round=challenge.round,
                active=state.challenge_active,
            ),
            last_point=None if point is None else PointSnapshot(**point),
            winner=result.winner,
            winner_name=result.winner_name,
            result_rounds=None if result.blue_rounds is None or result.red_rounds is None
            else Tally(blue=result.blue_rounds, red=result.red_rounds),
            decision=result.decision,
            loaded=state.loaded,
            ready=state.ready,
            started=state.started,
        )

    def to_state(self) -> MatchState:
        """The :class:`MatchState` this snapshot was taken of, ready to fold the events after :attr:`seq`."""
        challenge = self.challenge
        return MatchState(
            info=MatchInfo(
                number=self.number, phase=self.phase, weight_class=self.weight_class, division=self.division,
                total_rounds=self.total_rounds, round_duration=self.round_duration, match_id=self.match_id,
            ),
            blue=Athlete(self.blue.name, self.blue.short, self.blue.noc),
            red=Athlete(self.red.name, self.red.short, self.red.noc),
            round=self.round,
            score=(self.score.blue, self.score.red),
            round_scores={r.number: (r.score.blue, r.score.red) for r in self.rounds if r.score is not None},
            warnings={r.number: (r.warnings.blue, r.warnings.red) for r in self.rounds if r.warnings is not None},
            round_winners={r.number: r.winner for r in self.rounds if r.winner is not None},
            leader=self.leader,
            clock_seconds=self.clock_seconds,
            clock_running=self.clock_running,
            injury_seconds=self.injury_seconds,
            break_seconds=self.break_seconds,
            challenge=None if challenge is None else Challenge(
                by=challenge.by, state=challenge.state, won=challenge.won, round=challenge.round
            ),
            last_point=None if self.last_point is None else self.last_point.model_dump(),
            round_stats={
                r.number: {"blue": dict(r.stats.blue), "red": dict(r.stats.red)} for r in self.rounds if r.stats is not None
            },
            result=MatchResult(
                winner=self.winner,
                winner_name=self.winner_name,
                blue_rounds=None if self.result_rounds is None else self.result_rounds.blue,
                red_rounds=None if self.result_rounds is None else self.result_rounds.red,
                decision=self.decision,
            ),
            loaded=self.loaded,
            ready=self.ready,
            started=self.started,
            injury_active=self.injury_active,
            break_active=self.break_active,
            challenge_active=challenge is not None and challenge.active,
        )
