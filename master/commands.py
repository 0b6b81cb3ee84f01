"""Commands over one DEALER: sent, sent again until answered or out of time, matched to results by id.

The court runs an id at most once and answers a repeat with the same outcome, so resending
is always safe: it covers a command queued on a connection that then dropped, and a court
that restarted. :class:`CourtLine` is a DEALER of its own for processes that are not the
running master (the CLI); inside the master each :class:`~master.links.SlaveLink` carries a
:class:`CommandChannel` on the DEALER it already holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from runtime.curve import KeyPair, secure_client
from runtime.logs import level_for_repeat
from shared.wire import Command, CommandResult, WireError, decode, encode

__all__ = ["RESEND_SECONDS", "ChannelStats", "CommandChannel", "CourtLine"]

logger = logging.getLogger(__name__)

RESEND_SECONDS = 1.0


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0  # commands (each counted once, however often resent)
    resent: int = 0
    results: int = 0
    unexpected_results: int = 0  # a late or repeated answer, or an id this side never sent


class CommandChannel:
    """Pending commands of one court and the futures their results complete."""

    def __init__(self, send: Callable[[bytes], object], name: Callable[[], str]):
        self._send = send
        self._name = name
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self.stats = ChannelStats()

    async def async_call(self, command: Command, resend_seconds: float = RESEND_SECONDS) -> CommandResult | None:
        """The court's result, or None when none came before the command's deadline (master's clock)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommandResult] = loop.create_future()
        self._waiting[command.command_id] = future
        payload = encode(command)
        deadline = loop.time() + (command.deadline_ms - time.time_ns() // 1_000_000) / 1000
        self.stats.sent += 1
        try:
            while True:
                self._send(payload)
                left = deadline - loop.time()
                if left <= 0:
                    return None
                # asyncio.wait leaves the future alone on a timeout (no shield, no extra task): the
                # fewest hops of the event loop between the answer arriving and the caller resuming.
                await asyncio.wait((future,), timeout=min(resend_seconds, left))
                if future.done():
                    return future.result()
                if loop.time() >= deadline:
                    return None
                self.stats.resent += 1
        finally:
            self._waiting.pop(command.command_id, None)

    def on_result(self, result: CommandResult) -> None:
        """A ``command_result`` arrived on the DEALER."""
        future = self._waiting.get(result.command_id)
        if future is None or future.done():
            self.stats.unexpected_results += 1
            logger.debug("Result of command %s from %s came late or twice", result.command_id, self._name())
            return
        self.stats.results += 1
        future.set_result(result)


class CourtLine:
    """A DEALER to one court's ROUTER for commands only, with CURVE when keys are given."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        node_id: str,
        court: str | None,
        host: str,
        router_port: int,
        *,
        client_keys: KeyPair | None = None,
        server_key: str | None = None,
    ):
        self.node_id = node_id
        self.court = court
        self.endpoint = f"tcp://{host}:{router_port}"
        self.dealer = ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        if client_keys is not None and server_key is not None:
            secure_client(self.dealer, client_keys, server_key)
        self.commands = CommandChannel(self._send, lambda: self.name)
        self.bad_messages = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.court or self.node_id

    def start(self) -> None:
        self.dealer.connect(self.endpoint)
        self._reader = asyncio.get_running_loop().create_task(self._async_read(), name=f"line-{self.node_id}")

    async def async_stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self.dealer.close(linger=0)

    def _send(self, payload: bytes) -> bool:
        """Now or never (a resend follows); through the asyncio socket, as ``SlaveLink.send`` explains."""
        sent = asyncio.ensure_future(self.dealer.send(payload, zmq.NOBLOCK))
        sent.add_done_callback(_retrieved)
        return not (sent.done() and not sent.cancelled() and sent.exception() is not None)

    async def _async_read(self) -> None:
        while True:
            frames = await self.dealer.recv_multipart()
            try:
                message = decode(frames[-1])
            except WireError as exc:
                self.bad_messages += 1
                logger.log(level_for_repeat(self.bad_messages), "Ignored a bad message from %s: %s", self.name, exc)
                continue
            if isinstance(message, CommandResult):
                self.commands.on_result(message)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A send that failed (queue full, not connected) is resent by the channel: its error is expected."""
    if not future.cancelled():
        future.exception()
