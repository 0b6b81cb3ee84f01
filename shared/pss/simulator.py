"""Seeded, realistic PSS traffic for tests, demos and load runs.

A court is rarely available, and the sample capture holds only ten matches, so the
simulator plays whole best-of-3 matches the way the real senders do: the load block in
Gen3 or Gen2 order, a clock tick per second, the real scoring order
``[hlN] → [sup] → sc → s1x → ptN``, gam-jeoms, challenges, Kye-shi, breaks, round
results and the final ``win``/``wmh``. Each match comes back with its ground truth, so a
test can fold the lines through the parser and :class:`~shared.match_state.MatchState`
and compare. Pure: the output depends only on the seed and the options.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_PORT",
    "SENDERS",
    "Corner",
    "Sender",
    "SimulatedMatch",
    "SimulatedSession",
    "simulate_match",
    "simulate_session",
    "simulate_venue",
]

Sender = Literal["gen2", "gen3"]
SENDERS: tuple[Sender, ...] = ("gen2", "gen3")
#: The port of the TkStrike test set-up behind the sample capture.
DEFAULT_PORT = 8888

_ROUNDS = 3
_ROUNDS_TO_WIN = 2
_STEP = 0.013  # spacing of the lines a sender emits for one action
_POINT_RATE = 1 / 7  # scoring actions per clock second
_GAM_JEOM_RATE = 1 / 45
_MAX_GAM_JEOMS = 4  # per athlete and round; the fifth would lose the round (PUN)
# (points = technique code, weight): punch, body, head, turning body, turning head
_TECHNIQUES = ((1, 30), (2, 35), (3, 20), (4, 10), (5, 5))
_STAT_ORDER = (2, 3, 1, 4, 5)  # rst columns: body, head, punch, turning body, turning head
_GAM_JEOM = 0  # the stats key for gam-jeoms received, the sixth rst column


@dataclass(frozen=True, slots=True)
class Corner:
    """An athlete as the scoreboard names them."""

    name: str
    noc: str


@dataclass(frozen=True)
class SimulatedMatch:
    """One played match: its protocol lines and what folding them must give."""

    match_number: str
    sender: Sender
    phase: str
    weight_class: str
    division: str
    blue: Corner
    red: Corner
    round_seconds: int
    #: ``(offset seconds, protocol line)``, offsets from the start of the session.
    lines: list[tuple[float, str]]
    #: Per played round: (blue, red) score, winner colour, (blue, red) gam-jeoms.
    round_scores: list[tuple[int, int]]
    round_winners: list[str]
    warnings: list[tuple[int, int]]
    winner: str
    decision: str
    challenges: int
    injuries: int

    @property
    def rounds_won(self) -> tuple[int, int]:
        """Rounds won by blue and red (the ``wmh`` tally)."""
        return self.round_winners.count("blue"), self.round_winners.count("red")

    @property
    def winner_name(self) -> str:
        """The name ``wmh`` carries."""
        return (self.blue if self.winner == "blue" else self.red).name


@dataclass(frozen=True)
class SimulatedSession:
    """A court's afternoon: the link line, then matches with idle gaps between them."""

    seed: int
    sender: Sender
    lines: list[tuple[float, str]]
    matches: list[SimulatedMatch] = field(default_factory=list)


def simulate_match(
    seed: int,
    *,
    sender: Sender = "gen3",
    round_seconds: int = 120,
    break_seconds: int = 60,
    start: float = 0.0,
    challenge_chance: float = 0.5,
    injury_chance: float = 0.4,
    busy: frozenset[Corner] = frozenset(),
) -> SimulatedMatch:
    """Play one best-of-3 match from ``pre;FightLoaded`` to ``wmh``, starting at ``start``.

    ``busy`` athletes are fighting elsewhere at that time and are not drawn.
    """
    if sender not in SENDERS:
        raise ValueError(f"sender must be one of {SENDERS}, got {sender!r}")
    if round_seconds < 5 or break_seconds < 1:
        raise ValueError("round_seconds must be at least 5 and break_seconds at least 1")
    return _Match(
        random.Random(seed),
        sender,
        round_seconds,
        break_seconds,
        start,
        challenge_chance,
        injury_chance,
        busy,
    ).play()


def simulate_session(
    seed: int,
    matches: int = 3,
    *,
    sender: Sender = "gen3",
    round_seconds: int = 120,
    break_seconds: int = 60,
    gap_seconds: tuple[float, float] = (20.0, 90.0),
    port: int = DEFAULT_PORT,
    challenge_chance: float = 0.5,
    injury_chance: float = 0.4,
) -> SimulatedSession:
    """``Udp Port N connected;`` then ``matches`` matches separated by idle gaps."""
    if matches < 0:
        raise ValueError("matches must not be negative")
    rng = random.Random(seed)
    lines: list[tuple[float, str]] = [(0.0, f"Udp Port {port} connected;")]
    played: list[SimulatedMatch] = []
    t = rng.uniform(*gap_seconds)
    for _ in range(matches):
        match = simulate_match(
            rng.getrandbits(32),
            sender=sender,
            round_seconds=round_seconds,
            break_seconds=break_seconds,
            start=t,
            challenge_chance=challenge_chance,
            injury_chance=injury_chance,
        )
        played.append(match)
        lines.extend(match.lines)
        t = match.lines[-1][0] + rng.uniform(*gap_seconds)
    return SimulatedSession(seed, sender, lines, played)


def simulate_venue(
    seed: int,
    courts: int,
    matches: int = 3,
    *,
    gap_seconds: tuple[float, float] = (20.0, 90.0),
    port: int = DEFAULT_PORT,
    **options: Any,
) -> list[SimulatedSession]:
    """One session per court, played at the same time: an athlete fights on one court at a time.

    Matches are drawn in the order they start across the venue, each without the athletes
    still fighting on another court then. ``options`` are :func:`simulate_match`'s.
    """
    if courts < 1 or matches < 0:
        raise ValueError("courts must be at least 1 and matches not negative")
    rngs = [random.Random(seed * 1_000 + court) for court in range(courts)]
    sessions = [SimulatedSession(seed * 1_000 + court, options.get("sender", "gen3"), [(0.0, f"Udp Port {port} connected;")])
                for court in range(courts)]
    starts = [rng.uniform(*gap_seconds) for rng in rngs]
    while True:
        waiting = [court for court in range(courts) if len(sessions[court].matches) < matches]
        if not waiting:
            return sessions
        court = min(waiting, key=lambda c: starts[c])
        busy = frozenset(
            athlete
            for other, session in enumerate(sessions) if other != court and session.matches
            for athlete in (session.matches[-1].blue, session.matches[-1].red)
            if session.matches[-1].lines[-1][0] > starts[court]
        )
        match = simulate_match(rngs[court].getrandbits(32), start=starts[court], busy=busy, **options)
        sessions[court].matches.append(match)
        sessions[court].lines.extend(match.lines)
        starts[court] = match.lines[-1][0] + rngs[court].uniform(*gap_seconds)


# --- the match engine ----------------------------------------------------------------

_MEN = (
    Corner("Marko Drakulić", "CRO"),
    Corner("Luka Šimunović", "CRO"),
    Corner("Nikola Jovanović", "SRB"),
    Corner("Mehmet Yıldırım", "TUR"),
    Corner("Tomáš Dvořák", "CZE"),
    Corner("Jakub Wójcik", "POL"),
    Corner("José Muñoz", "ESP"),
    Corner("Søren Østergaard", "DEN"),
    Corner("Björn Ångström", "SWE"),
    Corner("Minho Park", "KOR"),
    Corner("Ahmed El-Sayed", "EGY"),
    Corner("Dario Dell'Orto", "ITA"),
    Corner("Reza Karimi", "IRI"),
    Corner("Mikhail Volkov", "AIN"),
    Corner("Lucas Ferreira", "BRA"),
    Corner("Hamza Benali", "MAR"),
    Corner("Seung-woo Han", "KOR"),
    Corner("Vito Bianchi", "ITA"),
    Corner("Arman Seitkali", "KAZ"),
    Corner("Carlos Navarro", "MEX"),
    Corner("Oskar Lindqvist", "SWE"),
    Corner("Pierre Garnaud", "FRA"),
)
_WOMEN = (
    Corner("Ana Kovačević", "CRO"),
    Corner("Milica Petrović", "SRB"),
    Corner("Zoë Müller", "GER"),
    Corner("Élodie Lefèvre", "FRA"),
    Corner("Ayşe Demir", "TUR"),
    Corner("Jiwon Kim", "KOR"),
    Corner("Li Wei", "CHN"),
    Corner("Nguyễn Thị Hoa", "VIE"),
    Corner("Aigerim Nurlanqyzy", "KAZ"),
    Corner("Chloé Dubois", "BEL"),
    Corner("Sofía Hernández", "MEX"),
    Corner("Ingrid Håkansson", "NOR"),
    Corner("Fatima Zahra Alaoui", "MAR"),
    Corner("Lena Schröder", "GER"),
    Corner("Emily Carter", "GBR"),
    Corner("Petra Novak", "CRO"),
    Corner("Sara Rahimi", "IRI"),
    Corner("Nok Srisuk", "THA"),
    Corner("Hannah Lee", "CAN"),
    Corner("Elif Aydın", "TUR"),
    Corner("Julia Ruiz", "ESP"),
    Corner("Dana Haidar", "JOR"),
)
# (weight class, body hit level): the level rises with the weight class.
_MEN_CLASSES = (
    ("-54kg", 18), ("-58kg", 18), ("-68kg", 20), ("-74kg", 21), ("-80kg", 22), ("-87kg", 22), ("+87kg", 23),
)
_WOMEN_CLASSES = (
    ("-46kg", 16), ("-49kg", 16), ("-57kg", 18), ("-62kg", 19), ("-67kg", 18), ("-73kg", 20), ("+73kg", 20),
)
_PHASES = (
    "Round of 32", "Round of 16", "Quarterfinals", "Semifinals", "Final", "Bronze medal contest", "Repechage",
)
_DIVISIONS = ("Seniors", "Under 21", "Juniors", "Cadets")


def _mmss(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class _Match:
    """Mutable state of one simulated match; :meth:`play` runs it once."""

    def __init__(
        self,
        rng: random.Random,
        sender: Sender,
        round_seconds: int,
        break_seconds: int,
        start: float,
        challenge_chance: float,
        injury_chance: float,
        busy: frozenset[Corner] = frozenset(),
    ) -> None:
        self.rng = rng
        self.sender = sender
        self.round_seconds = round_seconds
        self.break_seconds = break_seconds
        self.t = start
        self.lines: list[tuple[float, str]] = []
        self.round = 1
        self.scores: list[list[int]] = [[0, 0] for _ in range(_ROUNDS)]
        self.warnings: list[list[int]] = [[0, 0] for _ in range(_ROUNDS)]
        self.stats: list[list[dict[int, int]]] = [[{}, {}] for _ in range(_ROUNDS)]
        self.winners: list[str] = []
        self.leader = 0
        self.challenges = 0
        self.injuries = 0
        # At most one challenge and one injury per match, in a random round.
        self.challenge_round = rng.randint(1, 2) if rng.random() < challenge_chance else 0
        self.injury_round = rng.randint(1, 2) if rng.random() < injury_chance else 0
        self._draw_card(busy)

    # --- output helpers ---------------------------------------------------------------

    @property
    def gen3(self) -> bool:
        return self.sender == "gen3"

    def emit(self, line: str, after: float = _STEP) -> None:
        """Append ``line`` ``after`` seconds after the previous one."""
        self.t += after
        self.lines.append((round(self.t, 3), line))

    def wait(self, low: float, high: float) -> None:
        self.t += self.rng.uniform(low, high)

    # --- the match --------------------------------------------------------------------

    def _draw_card(self, busy: frozenset[Corner]) -> None:
        rng = self.rng
        women = rng.random() < 0.5
        pool, classes = (_WOMEN, _WOMEN_CLASSES) if women else (_MEN, _MEN_CLASSES)
        free = [athlete for athlete in pool if athlete not in busy]
        if len(free) < 2:
            raise ValueError(f"only {len(free)} athletes free: too many courts at once for the simulator's {len(pool)}")
        self.blue, self.red = rng.sample(free, 2)
        weight, self.body_level = rng.choice(classes)
        prefix = ("WOMEN " if women else "MEN ") if self.sender == "gen2" else ("W " if women else "M ")
        self.weight_class = prefix + weight
        self.phase = rng.choice(_PHASES)
        self.division = rng.choice(_DIVISIONS)
        kind = rng.random()
        if kind < 0.15:
            self.number = f"{rng.randint(100, 999)}.{rng.choice('AB')}"
        elif kind < 0.3:
            self.number = str(rng.randint(1000, 9999))
        else:
            self.number = str(rng.randint(101, 999))

    def play(self) -> SimulatedMatch:
        self.load()
        if self.rng.random() < 0.25:  # operators often load the same fight twice
            self.wait(2, 10)
            self.load()
        self.wait(5, 20)
        while True:
            self.play_round()
            blue, red = self.winners.count("blue"), self.winners.count("red")
            if max(blue, red) >= _ROUNDS_TO_WIN:
                break
            self.rest()
            self.round += 1
        winner = "blue" if blue > red else "red"
        self.wait(2, 8)
        self.emit(f"win;{winner.upper()}", 0.0)
        name = (self.blue if winner == "blue" else self.red).name
        self.emit(f"wmh;{name};{blue}-{red} PTF")
        played = len(self.winners)
        return SimulatedMatch(
            match_number=self.number,
            sender=self.sender,
            phase=self.phase,
            weight_class=self.weight_class,
            division=self.division,
            blue=self.blue,
            red=self.red,
            round_seconds=self.round_seconds,
            lines=self.lines,
            round_scores=[(b, r) for b, r in self.scores[:played]],
            round_winners=list(self.winners),
            warnings=[(b, r) for b, r in self.warnings[:played]],
            winner=winner,
            decision="PTF",
            challenges=self.challenges,
            injuries=self.injuries,
        )

    def load(self) -> None:
        """The load block, in the order the chosen sender uses."""
        clock = _mmss(self.round_seconds)
        athletes = (
            f"at1;{self.blue.name};{self.blue.name};{self.blue.noc};"
            f"at2;{self.red.name};{self.red.name};{self.red.noc}"
        )
        colours = "#0000ff;#FFFFFF;#ff0000;#FFFFFF"
        if self.gen3:
            block = [
                "pre;FightLoaded",
                "ref;;;ju1;;;ju2;;;ta;;;",
                athletes,
                f"mch;{self.number};{self.phase};{self.weight_class};0;{colours};null;"
                f"{self.division};{_ROUNDS};{self.round_seconds};cntDown;{self.body_level};5;",
                "wg1;0;wg2;0",
                self.wrd_line(),
                self.s_line(),
                "sc1;0;sc2;0",
                f"clk;{clock}",
                "rnd;1",
                "sup;0",
                "rdy;FightReady",
            ]
        else:
            internal_id = f"{self.rng.getrandbits(32):08x}"
            block = [
                "pre;FightLoaded",
                "rnd;1",
                f"clk;{clock}",
                "sc1;0;sc2;0",
                self.s_line(),
                "wg1;0;wg2;0",
                f"mch;{self.number};{self.phase};{self.weight_class};;{colours};{internal_id};"
                f"{self.division};{_ROUNDS};{self.round_seconds};cntDown;{self.body_level};5",
                athletes,
                "ref;Ivana Horvat;CRO;ju1;Peter Novak;SLO;ju2;Anna Schmidt;GER;ju3;Kenji Sato;JPN",
                "rdy;FightReady",
            ]
        self.emit(block[0], 0.0)
        for line in block[1:]:
            self.emit(line)

    def play_round(self) -> None:
        rng = self.rng
        remaining = self.round_seconds
        # Incidents need a few seconds of clock on either side.
        span = range(2, max(3, remaining - 2))
        injury_at = rng.choice(span) if self.round == self.injury_round else -1
        challenge_at = rng.choice(span) if self.round == self.challenge_round else -1
        self.emit(f"clk;{_mmss(remaining)};start", 0.0)
        second_start = self.t
        while remaining > 0:
            if remaining == injury_at:
                second_start = self.injury(remaining)
            if remaining == challenge_at:
                second_start = self.challenge(remaining)
            roll = rng.random()
            tied = self.scores[self.round - 1][0] == self.scores[self.round - 1][1]
            if remaining == 1 and tied:
                self.t = second_start + rng.uniform(0.1, 0.8)
                self.score_point(rng.randrange(2), after=0.0)
            elif roll < _POINT_RATE:
                self.t = second_start + rng.uniform(0.05, 0.9)
                self.score_point(rng.randrange(2), after=0.0)
            elif roll < _POINT_RATE + _GAM_JEOM_RATE:
                self.t = second_start + rng.uniform(0.05, 0.9)
                self.gam_jeom(rng.randrange(2))
            remaining -= 1
            second_start += 1.0
            self.t = second_start
            self.lines.append((round(self.t, 3), f"clk;{_mmss(remaining)}"))
        self.emit("clk;0:00;stopEnd", rng.uniform(0.5, 1.0))
        if self.gen3:
            self.emit("clk;00:00;stop")
        blue, red = self.scores[self.round - 1]
        self.winners.append("blue" if blue > red else "red")
        self.wait(2, 7)
        self.emit(self.wrd_line(), 0.0)
        self.emit(self.s_line())
        if self.gen3:
            self.emit(self.rst_line())
            self.emit("rsr;")

    def rest(self) -> None:
        """The break between rounds, then the next round number."""
        seconds = self.break_seconds
        if self.gen3:
            self.emit(f"brk;{_mmss(seconds - 1)}")
            first = seconds - 2
        else:
            self.emit(f"brk;{_mmss(seconds)};start")
            first = seconds - 1
        for value in range(first, -1, -1):
            self.emit(f"brk;{_mmss(value)}", 1.0)
        self.emit("brk;0:00;stopEnd", self.rng.uniform(0.9, 1.0))
        if self.gen3:
            self.emit("sup;0")
        self.leader = 0
        self.emit(f"rnd;{self.round + 1}")
        self.wait(1, 4)

    # --- actions ------------------------------------------------------------------------

    def score_point(self, side: int, after: float = _STEP) -> None:
        """``[hlN] → [sup] → sc → s1x → ptN`` as Gen3 sends it."""
        rng = self.rng
        points = rng.choices([p for p, _ in _TECHNIQUES], [w for _, w in _TECHNIQUES])[0]
        self.scores[self.round - 1][side] += points
        stats = self.stats[self.round - 1][side]
        stats[points] = stats.get(points, 0) + 1
        head: list[str] = []
        if points in (2, 4) and rng.random() < 0.9:  # body sensor impact
            head.append(f"hl{side + 1};99")
        leader_line = self.leader_line()
        if leader_line:
            head.insert(rng.randrange(len(head) + 1), leader_line)
        for i, line in enumerate([*head, self.sc_line(), self.s_line(), f"pt{side + 1};{points}"]):
            self.emit(line, after if i == 0 else _STEP)

    def gam_jeom(self, offender: int) -> None:
        """A penalty: the offender's ``wg`` count rises and the opponent gets a point."""
        warnings = self.warnings[self.round - 1]
        if warnings[offender] >= _MAX_GAM_JEOMS:
            return
        warnings[offender] += 1
        self.scores[self.round - 1][1 - offender] += 1
        stats = self.stats[self.round - 1][offender]
        stats[_GAM_JEOM] = stats.get(_GAM_JEOM, 0) + 1
        lines = [self.sc_line(), self.s_line(), f"wg1;{warnings[0]};wg2;{warnings[1]}"]
        leader_line = self.leader_line()
        if leader_line:
            lines.insert(0, leader_line)
        self.emit(lines[0], 0.0)
        for line in lines[1:]:
            self.emit(line)

    def injury(self, remaining: int) -> float:
        """Kye-shi: the clock stops while the injury clock counts down; returns the restart."""
        rng = self.rng
        self.injuries += 1
        self.t += rng.uniform(0.1, 0.8)
        self.emit("ij0;01:00;show", 0.0)
        self.emit(f"clk;{_mmss(remaining)};stop", 0.027)
        used = rng.randint(5, 20)
        for value in range(59, 60 - used, -1):
            self.emit(f"ij0;{_mmss(value)}", 1.0)
        self.emit(f"ij0;{_mmss(60 - used)};hide", rng.uniform(0.3, 1.0))
        self.emit(f"clk;{_mmss(remaining)};start", rng.uniform(0.5, 2.0))
        return self.t

    def challenge(self, remaining: int) -> float:
        """A coach's video review with the clock stopped; returns the restart time."""
        rng = self.rng
        self.challenges += 1
        side = rng.randrange(2)
        code = f"ch{side + 1}"
        self.t += rng.uniform(0.1, 0.8)
        self.emit(f"clk;{_mmss(remaining)};stop", 0.0)
        self.emit(code, rng.uniform(1.0, 3.0))
        accepted = rng.random() < 0.5
        self.emit(f"{code};{1 if accepted else 0}", rng.uniform(2.0, 5.0))
        self.emit(f"{code};-1")
        if accepted:  # the review awards the technique the judges missed
            self.score_point(side, after=rng.uniform(0.5, 1.5))
        self.emit(f"clk;{_mmss(remaining)};start", rng.uniform(2.0, 4.0))
        return self.t

    # --- lines ------------------------------------------------------------------------

    def leader_line(self) -> str | None:
        """``sup`` when the leader changed (Gen3 only)."""
        blue, red = self.scores[self.round - 1]
        leader = 1 if blue > red else 2 if red > blue else 0
        if leader == self.leader:
            return None
        self.leader = leader
        return f"sup;{leader}" if self.gen3 else None

    def sc_line(self) -> str:
        blue, red = self.scores[self.round - 1]
        return f"sc1;{blue};sc2;{red}"

    def s_line(self) -> str:
        return ";".join(
            f"s1{r + 1};{self.scores[r][0]};s2{r + 1};{self.scores[r][1]}" for r in range(_ROUNDS)
        )

    def wrd_line(self) -> str:
        codes = [{"blue": 1, "red": 2}[w] for w in self.winners]
        codes += [0] * (_ROUNDS - len(codes))
        return "wrd;" + ";".join(f"rd{r + 1};{c}" for r, c in enumerate(codes))

    def rst_line(self) -> str:
        parts = [f"rst;{self.round}"]
        for side in range(2):
            stats = self.stats[self.round - 1][side]
            values = [stats.get(t, 0) for t in _STAT_ORDER] + [stats.get(_GAM_JEOM, 0)]
            parts.append(f"st{side + 1};" + ";".join(map(str, values)))
        return ";".join(parts) + ";"
