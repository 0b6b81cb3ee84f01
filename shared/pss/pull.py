"""Pull requests: asking the scoring software for its state after a restart.

TkStrike Gen2 listens on a "listen port" of its own for request words (``clock``,
``scores``, ...). It answers each by unicast to the requester with the **last packet it
sent** of the matching kind, so a receiver that restarts mid-match can rebuild the score,
the clock and the names without waiting for the next load. Several requests may share one
datagram, separated by CRLF. A packet kind the sender has not sent yet gets no answer.

This module is the pure side of both ends: the request a receiver sends
(:data:`RESYNC_REQUEST`), which packet answers which request (:data:`PULL_ANSWERS`), and the
sender's memory that answers them (:class:`LastPackets`, used by the simulated sender).
What an answer means for the match is :meth:`shared.match_state.MatchState.fold_answer`.
"""

from __future__ import annotations

import re

__all__ = [
    "ANSWER_CODES",
    "PULL_ANSWERS",
    "RESYNC_REQUEST",
    "LastPackets",
    "announces_start",
    "answer_kind",
    "requests_in",
]

#: Request word -> code of the packet that answers it, in the order a receiver asks (the
#: sender answers in the same order): the match (config, names) before the values that depend
#: on it, the round before its score and gam-jeoms, the break before the clock, and the round
#: winners and the result last, since whether they belong to this match is judged from the
#: round, the clock and the names. ``winperiods;`` carries its ``;``: that is how Gen2 spells it.
PULL_ANSWERS: dict[str, str] = {
    "informations": "mch",
    "athletes": "at1",
    "referees": "ref",
    "period": "rnd",
    "scores": "sc1",
    "gam-jeom": "wg1",
    "break": "brk",
    "clock": "clk",
    "winperiods;": "wrd",
    "winmatch": "wmh",
}
#: Codes of the packets that can be answers.
ANSWER_CODES = frozenset(PULL_ANSWERS.values())
_KIND_OF_CODE = {code: request for request, code in PULL_ANSWERS.items()}

#: Every request in one datagram, CRLF-separated, in :data:`PULL_ANSWERS` order.
RESYNC_REQUEST: bytes = "\r\n".join(PULL_ANSWERS).encode("ascii")

_LINE_BREAKS = re.compile(rb"\r\n|\r|\n")
#: What a sender says when its link comes up (or goes), before it has any match state: Gen2's
#: ``hel;`` and its LED-board init values, the ``Udp Port N (dis)connected;`` line of the spec and Gen3.
_START_LINES = (b"hel;", b"inlb;", b"insl;", b"inth;", b"Udp Port ")


def requests_in(datagram: bytes) -> list[str]:
    """The request words of a datagram, in order; a line that is not one is ignored (as Gen2 does)."""
    words = (line.strip().decode("ascii", "replace") for line in _LINE_BREAKS.split(datagram))
    return [word for word in words if word in PULL_ANSWERS]


def answer_kind(packet: bytes) -> str | None:
    """The request a sent packet would answer (``b"sc1;3;sc2;1"`` -> ``"scores"``); None for others."""
    code = packet.lstrip()[:4].split(b";", 1)[0]
    return _KIND_OF_CODE.get(code.decode("ascii", "replace").lower()) if code else None


def announces_start(datagram: bytes) -> bool:
    """True when a datagram is a sender's link-status line: it has just started and nothing to answer yet."""
    return datagram.lstrip(b"'\" \t").startswith(_START_LINES)


class LastPackets:
    """A Gen2 sender's memory for pull requests: the last packet it sent of each kind.

    Bounded by construction: one packet per request word.
    """

    def __init__(self) -> None:
        self._last: dict[str, bytes] = {}

    def sent(self, packet: bytes) -> None:
        """Remember ``packet`` (exactly as it went out) if a pull request can ask for its kind."""
        kind = answer_kind(packet)
        if kind is not None:
            self._last[kind] = packet

    def answers(self, datagram: bytes) -> list[bytes]:
        """The packets that answer the requests in ``datagram``, one per request it knows an answer to."""
        return [self._last[word] for word in requests_in(datagram) if word in self._last]
