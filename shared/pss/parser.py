"""PSS (WT UDP) datagrams to typed events.

The parser is pure and total: every datagram becomes at least one :class:`PssEvent`, and
anything it cannot understand comes back with ``valid=False``, an error text and the raw
line, so the caller can store it flagged. Nothing here raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.pss.times import parse_clock

__all__ = [
    "MAX_DATAGRAM_BYTES",
    "Category",
    "PssEvent",
    "parse_datagram",
    "parse_line",
]

#: Real PSS messages are under 300 bytes; anything far larger is stored verbatim, unparsed.
MAX_DATAGRAM_BYTES = 8192


class Category(StrEnum):
    """The plan's seven event categories, exactly what ``event_category`` may hold everywhere.

    Points by their type, hit level ``K``, every referee matter (warnings, challenges, injury,
    break, clock, round, winner, round winners) ``R``, everything else ``O``. A finer grouping
    is derived from the code (:mod:`shared.pss.kinds`), never stored here.
    """

    HIT_LEVEL = "K"
    PUNCH = "P"
    HEAD = "H"
    TURNING_HEAD = "TH"
    BODY = "TB"
    REFEREE = "R"
    OTHER = "O"

    @classmethod
    def legend(cls) -> str:
        """Every category with its name, for help texts: ``K hit level, P punch, ...``."""
        return ", ".join(f"{category.value} {category.name.lower().replace('_', ' ')}" for category in cls)


@dataclass(frozen=True, slots=True)
class PssEvent:
    """One protocol message. ``fields`` holds JSON-ready parsed values."""

    raw: str
    code: str
    category: Category
    fields: dict[str, Any] = field(default_factory=dict)
    valid: bool = True
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of ``restrike pss parse``."""
        return {
            "raw": self.raw,
            "code": self.code,
            "category": self.category.value,
            "valid": self.valid,
            "error": self.error,
            "fields": self.fields,
        }


class _FieldError(Exception):
    """A message with the right code but fields that do not fit it."""


_SIDES = {"1": "blue", "2": "red"}
_POINT_TYPES = {
    1: ("punch", Category.PUNCH),
    2: ("body", Category.BODY),
    3: ("head", Category.HEAD),
    4: ("turning_body", Category.BODY),
    5: ("turning_head", Category.TURNING_HEAD),
}
_ROUND_WINNER = {0: None, 1: "blue", 2: "red"}
_CLOCK_ACTIONS = frozenset({"start", "stop", "corr", "stopEnd"})
_INJURY_ACTIONS = frozenset({"show", "hide", "reset"})
_CHALLENGE_STATES = {1: "accepted", 0: "denied", -1: "closed"}
_MATCH_WINNERS = {"BLUE": "blue", "RED": "red", "TIE": "tie"}
_HARDWARE_TESTS = {
    0: "close",
    1: "open",
    2: "blue_body",
    3: "blue_head",
    4: "red_body",
    5: "red_head",
}
_DECISIONS = frozenset(
    ["RSC", "PTF", "PTG", "GDP", "SUP", "WDR", "DSQ", "PUN", "DQB", "PTS", "IRM", "CSC", "BKO", "HKO"]
)
_UDP_PORT = re.compile(r"^Udp Port (\d+) (connected|disconnected);?$", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_QUOTES = "'\""
_BLANK = " \t" + _QUOTES


def parse_datagram(data: bytes) -> list[PssEvent]:
    """Every message in one UDP datagram; never empty, never raises."""
    if len(data) > MAX_DATAGRAM_BYTES:
        return [
            _invalid(
                data.decode("utf-8", "backslashreplace"),
                "",
                f"oversized datagram ({len(data)} bytes, limit {MAX_DATAGRAM_BYTES}); stored verbatim, not parsed",
            )
        ]
    if data.endswith(b"\x00"):  # some senders pad datagrams with NULs
        data = data.rstrip(b"\x00")
    try:
        text = data.decode("utf-8")
        decode_error = None
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", "backslashreplace")
        decode_error = f"invalid UTF-8 at byte {exc.start}"
    # NUL inside a message cannot live in a text column (PostgreSQL); raw_datagram keeps the bytes.
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if "\n" in text or "\r" in text:
        lines = [ln for ln in _LINE_BREAKS.split(text) if ln.strip(_BLANK)]
    else:  # the usual case: one message per datagram
        lines = [text] if text.strip(_BLANK) else []
    if not lines:
        return [_invalid(text, "", "empty datagram")]
    events = [parse_line(ln) for ln in lines]
    if decode_error is None:
        return events
    return [
        PssEvent(ev.raw, ev.code, ev.category, ev.fields, False, _join(decode_error, ev.error))
        for ev in events
    ]


def parse_line(line: str) -> PssEvent:
    """One protocol line (without its line break) to an event; never raises."""
    raw = line
    text = line.strip().strip(_QUOTES).strip()
    port = _UDP_PORT.match(text) if text[:1] in ("U", "u") else None
    if port:
        return PssEvent(
            raw,
            "udp",
            Category.OTHER,
            {"port": int(port.group(1)), "connected": port.group(2).lower() == "connected"},
        )
    tokens = _tokens(text)
    code = tokens[0]
    handler = _HANDLERS.get(code) or _HANDLERS.get(code.lower())
    if handler is None:
        return _invalid(raw, code, f"unknown message code {code!r}")
    try:
        category, fields = handler(code.lower(), tokens[1:])
    except (_FieldError, ValueError, IndexError) as exc:
        return _invalid(raw, code.lower(), f"{code.lower()}: {exc}")
    return PssEvent(raw, code.lower(), category, fields)


def _invalid(raw: str, code: str, error: str) -> PssEvent:
    return PssEvent(raw, code, Category.OTHER, {}, False, error)


def _join(first: str, second: str | None) -> str:
    return first if second is None else f"{first}; {second}"


def _tokens(text: str) -> list[str]:
    """Split on ``;`` keeping empty fields in place; one trailing ``;`` is not a field."""
    parts = text.split(";")
    if " " in text or "\t" in text:  # KP&P writes "s12; 8"
        parts = [p.strip() for p in parts]
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


# --- field helpers -------------------------------------------------------------------


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _FieldError(f"{name} must be an integer, got {value!r}") from None


def _need(args: list[str], count: int, form: str) -> None:
    if len(args) < count:
        raise _FieldError(f"expected {form}, got {len(args)} field(s)")


def _clock(value: str, name: str = "time") -> int:
    seconds = parse_clock(value)
    if seconds is None:
        raise _FieldError(f"{name} is not a clock value: {value!r}")
    return seconds


def _keyed(args: list[str], keys: set[str], width: int) -> dict[str, list[str]]:
    """Inline sub-keys: ``[key, v1..vN, key, v1..vN ...]``, in any order."""
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        key = args[i].lower()
        if key not in keys:
            raise _FieldError(f"unexpected sub-key {args[i]!r}")
        if key in out:
            raise _FieldError(f"{key} given twice")
        values = args[i + 1 : i + 1 + width]
        if len(values) < width:
            raise _FieldError(f"{key} needs {width} value(s)")
        out[key] = values
        i += 1 + width
    return out


# --- handlers: (code, fields after the code) -> (category, parsed fields) -------------

_Handler = Callable[[str, list[str]], tuple[Category, dict[str, Any]]]


def _points(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, f"{code};<points>")
    value = _int(args[0], "points")
    if value not in _POINT_TYPES:
        raise _FieldError(f"point type must be 1-5, got {value}")
    technique, category = _POINT_TYPES[value]
    return category, {"athlete": _SIDES[code[2]], "points": value, "technique": technique}


def _hit_level(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, f"{code};<level>")
    level = _int(args[0], "level")
    if not 0 <= level <= 100:
        raise _FieldError(f"hit level must be 0-100, got {level}")
    return Category.HIT_LEVEL, {"athlete": _SIDES[code[2]], "level": level}


def _pair_counts(code: str, args: list[str], field: str) -> dict[str, int]:
    """``wg1;a;wg2;b`` / ``sc1;a;sc2;b`` in one datagram, or either side alone as the spec lists them."""
    prefix = code[:2]
    values = _keyed([code, *args], {prefix + "1", prefix + "2"}, 1)
    return {
        f"{side}_{field}": _int(values[f"{prefix}{n}"][0], f"{prefix}{n}")
        for n, side in (("1", "blue"), ("2", "red"))
        if f"{prefix}{n}" in values
    }


def _warnings(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    return Category.REFEREE, _pair_counts(code, args, "warnings")


def _score(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    return Category.OTHER, _pair_counts(code, args, "score")


def _timed(args: list[str], actions: frozenset[str], code: str) -> dict[str, Any]:
    _need(args, 1, f"{code};<time>[;action]")
    action = args[1] if len(args) > 1 and args[1] else None
    if action is not None and action not in actions:
        raise _FieldError(f"unknown action {action!r}")
    return {"time": args[0], "seconds": _clock(args[0]), "action": action}


def _clock_msg(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    return Category.REFEREE, _timed(args, _CLOCK_ACTIONS, code)


def _break(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    return Category.REFEREE, _timed(args, _CLOCK_ACTIONS, code)


def _injury(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    fields = _timed(args, _INJURY_ACTIONS, code)
    fields["athlete"] = _SIDES.get(code[2])
    return Category.REFEREE, fields


def _timeout(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    fields: dict[str, Any] = _timed(args, _CLOCK_ACTIONS, code) if args else {"time": None, "seconds": None, "action": None}
    fields["athlete"] = _SIDES[code[2]]
    return Category.OTHER, fields


def _challenge(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    side = {"0": "referee", "1": "blue", "2": "red"}[code[2]]
    if not args or args[0] == "":
        return Category.REFEREE, {"by": side, "state": "requested", "result": None, "won": None}
    result = _int(args[0], "result")
    if result not in _CHALLENGE_STATES:
        raise _FieldError(f"result must be 1, 0 or -1, got {result}")
    won = None
    if len(args) > 1 and args[1] != "":
        won_value = _int(args[1], "won")
        if won_value not in (0, 1):
            raise _FieldError(f"won must be 0 or 1, got {won_value}")
        won = bool(won_value)
    return Category.REFEREE, {
        "by": side,
        "state": _CHALLENGE_STATES[result],
        "result": result,
        "won": won,
    }


def _round_winners(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    if len(args) % 2:
        raise _FieldError("expected rd<N>;<winner> pairs")
    winners: dict[str, str | None] = {}
    for key, value in zip(args[::2], args[1::2], strict=False):
        match = re.fullmatch(r"rd(\d)", key.lower())
        if not match:
            raise _FieldError(f"unexpected sub-key {key!r}")
        number = _int(value, key)
        if number not in _ROUND_WINNER:
            raise _FieldError(f"{key} winner must be 0, 1 or 2, got {number}")
        winners[match.group(1)] = _ROUND_WINNER[number]
    if not winners:
        raise _FieldError("no rounds")
    values = list(winners.values())
    return Category.REFEREE, {
        "round_winners": winners,
        "blue_rounds": values.count("blue"),
        "red_rounds": values.count("red"),
    }


def _match_result(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    fields: dict[str, Any] = {
        "winner_name": args[0] if args else "",
        "blue_rounds": None,
        "red_rounds": None,
        "decision": None,
    }
    if len(args) > 1 and args[1]:
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)\s*([A-Za-z]*)", args[1])
        if not match:
            raise _FieldError(f"result must look like '2-1 PTF', got {args[1]!r}")
        decision = match.group(3).upper() or None
        if decision is not None and decision not in _DECISIONS:
            raise _FieldError(f"unknown decision {decision!r}")
        fields.update(
            blue_rounds=int(match.group(1)), red_rounds=int(match.group(2)), decision=decision
        )
    return Category.REFEREE, fields


def _winner(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, "win;<BLUE|RED|TIE>")
    winner = _MATCH_WINNERS.get(args[0].upper())
    if winner is None:
        raise _FieldError(f"winner must be BLUE, RED or TIE, got {args[0]!r}")
    return Category.REFEREE, {"winner": winner}


def _athletes(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    groups = _keyed(["at1", *args], {"at1", "at2"}, 3)
    fields: dict[str, Any] = {}
    for key, side in (("at1", "blue"), ("at2", "red")):
        short, long, noc = groups.get(key, ["", "", ""])
        fields[f"{side}_short"] = short
        fields[f"{side}_name"] = long or short
        fields[f"{side}_noc"] = noc
    if "at2" not in groups:
        raise _FieldError("at2 (red athlete) missing")
    return Category.OTHER, fields


_MCH_NAMES = (
    "match_number",
    "phase",
    "weight_class",
    "rounds_field",
    "blue_bg",
    "blue_fg",
    "red_bg",
    "red_fg",
    "match_id",
    "division",
    "total_rounds",
    "round_duration",
    "countdown_type",
    "body_hit_level",
    "head_hit_level",
)
_MCH_INTS = frozenset({"total_rounds", "round_duration", "body_hit_level", "head_hit_level"})


def _match_config(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 3, "mch;<number>;<phase>;<weight>;...")
    fields: dict[str, Any] = {}
    for name, value in zip(_MCH_NAMES, args, strict=False):
        if name in _MCH_INTS:
            fields[name] = _int(value, name) if value else None
        elif name == "match_id":
            fields[name] = None if value in ("", "null") else value
        else:
            fields[name] = value
    for name in _MCH_NAMES[len(args) :]:
        fields[name] = None
    if not fields["match_number"]:
        raise _FieldError("match number is empty")
    return Category.OTHER, fields


def _round_scores(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    keys = {f"s{a}{r}" for a in "12" for r in "1234"}
    values = _keyed([code, *args], keys, 1)
    blue: dict[str, int] = {}
    red: dict[str, int] = {}
    for key, (value,) in values.items():
        target = blue if key[1] == "1" else red
        target[key[2]] = _int(value, key)
    return Category.OTHER, {"blue_round_scores": blue, "red_round_scores": red}


def _number(name: str, category: Category) -> _Handler:
    def handler(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
        _need(args, 1, f"{code};<{name}>")
        return category, {name: _int(args[0], name)}

    return handler


def _literal(expected: str) -> _Handler:
    def handler(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
        if not args or args[0] != expected:
            raise _FieldError(f"expected {code};{expected}")
        return Category.OTHER, {}

    return handler


def _bare(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    if any(args):
        raise _FieldError(f"{code} takes no fields")
    return Category.OTHER, {}


def _round(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, "rnd;<n>")
    number = _int(args[0], "round")
    if not 1 <= number <= 9:
        raise _FieldError(f"round must be 1-9, got {number}")
    return Category.REFEREE, {"round": number}


def _superiority(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, "sup;<0|1|2>")
    value = _int(args[0], "leader")
    if value not in _ROUND_WINNER:
        raise _FieldError(f"leader must be 0, 1 or 2, got {value}")
    return Category.OTHER, {"leader": _ROUND_WINNER[value]}


def _referees(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    """``ref;<name>;<NOC>;ju1;<name>;<NOC>;...``; Gen2 omits empty sub-fields."""
    slots: dict[str, list[str]] = {"referee": []}
    current = "referee"
    for token in args:
        if re.fullmatch(r"ju\d|ta", token.lower()):
            current = token.lower()
            slots[current] = []
        else:
            slots[current].append(token)
    officials = {
        slot: {"name": ([*values, "", ""])[0], "noc": ([*values, "", ""])[1]}
        for slot, values in slots.items()
    }
    return Category.OTHER, {"officials": officials}


def _round_stats(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, "rst;<round>;st1;...;st2;...")
    stats = _keyed(args[1:], {"st1", "st2"}, 6)
    names = ("body", "head", "punch", "turning_body", "turning_head", "gam_jeom")
    fields: dict[str, Any] = {"round": _int(args[0], "round")}
    for key, side in (("st1", "blue"), ("st2", "red")):
        values = stats.get(key)
        if values is None:
            raise _FieldError(f"{key} missing")
        fields[f"{side}_stats"] = {n: _int(v, n) for n, v in zip(names, values, strict=False)}
    return Category.OTHER, fields


def _led_init(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, f"{code};<value>:")
    value = args[0].rstrip(":").strip()
    if code == "insl":
        if value.lower() not in ("true", "false"):
            raise _FieldError(f"expected true or false, got {value!r}")
        return Category.OTHER, {"value": value.lower() == "true"}
    return Category.OTHER, {"value": _int(value, "value")}


def _hardware_test(code: str, args: list[str]) -> tuple[Category, dict[str, Any]]:
    _need(args, 1, "hwt;<n>")
    value = _int(args[0], "test")
    if value not in _HARDWARE_TESTS:
        raise _FieldError(f"hardware test must be 0-5, got {value}")
    return Category.OTHER, {"test": _HARDWARE_TESTS[value]}


_HANDLERS: dict[str, _Handler] = {
    "pt1": _points,
    "pt2": _points,
    "hl1": _hit_level,
    "hl2": _hit_level,
    "wg1": _warnings,
    "wg2": _warnings,
    "sc1": _score,
    "sc2": _score,
    "ij0": _injury,
    "ij1": _injury,
    "ij2": _injury,
    "ch0": _challenge,
    "ch1": _challenge,
    "ch2": _challenge,
    "brk": _break,
    "clk": _clock_msg,
    "wrd": _round_winners,
    "wmh": _match_result,
    "win": _winner,
    "at1": _athletes,
    "mch": _match_config,
    **{f"s{a}{r}": _round_scores for a in "12" for r in "1234"},
    "avt": _number("value", Category.OTHER),
    "rnd": _round,
    "rdy": _literal("FightReady"),
    "pre": _literal("FightLoaded"),
    "ref": _referees,
    "sup": _superiority,
    "rst": _round_stats,
    "rsr": _bare,
    "hel": _bare,
    "bye": _bare,
    "inlb": _led_init,
    "insl": _led_init,
    "inth": _led_init,
    "to1": _timeout,
    "to2": _timeout,
    "hwt": _hardware_test,
}
