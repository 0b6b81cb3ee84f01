"""Ask the scoring software for its state: at start, and whenever a new sender appears.

An agent restarted mid-match would otherwise show an empty match until the next load.
TkStrike Gen2 answers pull requests (:mod:`shared.pss.pull`) on its "listen port" by
unicast to the requester with its last packet of each kind. The requests go out from a
socket of their own, so whatever arrives on it is an answer: it is stored like any datagram
(it is real traffic) but flagged ``resync``, so the match state and the match rows read it as
"the sender's last packet of this kind", not as something that just happened.

Cheap by design: one request datagram per sender (a configured sender silent at start gets
one more when its first live datagram proves it is up; a sender first heard announcing its
start has nothing to give and is not asked), never a retry loop, nothing waits for an
answer, and one log line per sender (a warning if it never answered).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from shared.pss.pull import PULL_ANSWERS, RESYNC_REQUEST, announces_start
from slave_agent.ingest import UdpIngest

__all__ = ["Resync", "ResyncStats"]

logger = logging.getLogger(__name__)

#: Senders asked since start, at most; beyond, new ones are not asked (and it is said once).
MAX_SENDERS = 32


@dataclass(slots=True)
class ResyncStats:
    """What resynchronisation did since start."""

    requests: int = 0
    answers: int = 0


@dataclass(slots=True)
class _Request:
    host: str
    at_start: bool
    answers: int = 0
    timer: asyncio.TimerHandle | None = None


class _AnswerProtocol(asyncio.DatagramProtocol):
    def __init__(self, resync: Resync):
        self.resync = resync

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.resync.answer_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.resync.last_error = str(exc)  # reported in the request's one log line


class Resync:
    """Sends pull requests to senders' listen port and hands the answers to ingest, flagged."""

    def __init__(
        self,
        ingest: UdpIngest,
        *,
        sender_port: int,
        sender_host: str | None = None,
        answer_seconds: float = 2.0,
        max_senders: int = MAX_SENDERS,
    ):
        self.ingest = ingest
        self.sender_port = sender_port
        self.sender_host = sender_host
        self.answer_seconds = answer_seconds
        self.max_senders = max_senders
        self.stats = ResyncStats()
        self.last_error: str | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[str, _Request] = {}
        self._done: set[str] = set()
        self._full_said = False

    async def async_start(self, bind_host: str) -> None:
        """Open the request socket, follow new senders, ask the configured one now; on the event loop."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((bind_host, 0))
        transport, _ = await loop.create_datagram_endpoint(lambda: _AnswerProtocol(self), sock=sock)
        self._transport = transport
        self.ingest.on_sender = self.sender_seen
        if self.sender_host is not None:
            self._ask(self.sender_host, at_start=True)
        else:
            logger.info(
                "Will ask the scoring software for its state (UDP port %d) when its first datagram arrives",
                self.sender_port,
            )

    async def async_stop(self) -> None:
        """Stop asking and close the socket; answers still in flight are not waited for."""
        self.ingest.on_sender = None
        for request in self._pending.values():
            if request.timer is not None:
                request.timer.cancel()
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def sender_seen(self, host: str, data: bytes) -> None:
        """A live datagram came from ``host``: ask it for its state unless it was asked already.

        A sender whose first datagram announces its start has no state to give: it is not asked.
        """
        if host in self._done or host in self._pending:
            return
        if announces_start(data) and len(self._done) < self.max_senders:
            self._done.add(host)
            logger.debug("%s is starting (%r): nothing to ask it for", host, data[:40])
            return
        if len(self._done) + len(self._pending) >= self.max_senders:
            if not self._full_said:
                self._full_said = True
                logger.warning(
                    "%d different senders seen since start; not asking new ones (%s) for their state",
                    self.max_senders, host,
                )
            return
        self._ask(host, at_start=False)

    def answer_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Store an answer flagged ``resync``; counted for the request it answers while that is open."""
        self.stats.answers += 1
        self.ingest.accept(data, f"{addr[0]}:{addr[1]}", resync=True)
        request = self._pending.get(addr[0])
        if request is not None:
            request.answers += 1

    def _ask(self, host: str, *, at_start: bool) -> None:
        assert self._transport is not None
        request = _Request(host, at_start)
        self._pending[host] = request
        self.last_error = None
        self.stats.requests += 1
        self._transport.sendto(RESYNC_REQUEST, (host, self.sender_port))
        request.timer = asyncio.get_running_loop().call_later(self.answer_seconds, self._report, request)

    def _report(self, request: _Request) -> None:
        """The one log line of a request; a sender silent at start is asked again when it sends."""
        del self._pending[request.host]
        if request.answers:
            self._done.add(request.host)
            logger.info(
                "Resynchronised with the scoring software at %s: %d answer(s) to %d pull requests stored",
                request.host, request.answers, len(PULL_ANSWERS),
            )
            return
        if request.at_start:  # perhaps not running yet: its first datagram will trigger one more request
            logger.debug("No answer from %s at start; asking again when it sends", request.host)
            return
        self._done.add(request.host)
        logger.warning(
            "The scoring software at %s did not answer pull requests on UDP port %d within %g s%s; "
            "the match fills in from live traffic. Check its listen port against [resync] sender_port.",
            request.host, self.sender_port, self.answer_seconds,
            f" ({self.last_error})" if self.last_error else "",
        )
