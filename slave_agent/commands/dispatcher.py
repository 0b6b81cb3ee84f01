"""The court's side of a command: check it, run it at most once, answer with its outcome.

Handlers are registered per action (:meth:`CommandDispatcher.register`): the court's own
actions (tournament day, health, logs, messages) and the OBS actions, each an async
function of the action's arguments model. An action without a handler fails with the reason
it was given (``unavailable``), so the director learns why, never waits for nothing.

Rules, in order: a command for another node is refused; one whose id is running joins it;
one whose id is recorded gets the recorded outcome (``replayed``); one recorded but never
finished (the agent stopped while it ran) is not run again; then the command is recorded,
its deadline checked, its arguments validated, and it runs within what is left of its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from runtime import __version__
from runtime.lifecycle import log_task_failure
from runtime.logs import level_for_repeat
from shared.commands import Action, BadArguments, CommandData, parse_args
from shared.wire import Command, CommandResult, Message, Outcome, encode
from slave_agent.commands.book import CommandBook, StoredCommand

__all__ = ["CommandDispatcher", "CommandFailed", "CommandStats", "Handler"]

logger = logging.getLogger(__name__)

#: A command ends this long before its deadline, so its answer still reaches the master in time.
REPLY_MARGIN_SECONDS = 0.05

Handler = Callable[[Any], Awaitable[CommandData | None]]


class CommandFailed(Exception):
    """A handler's failure the director should read as it is (OBS down, no such scene ...)."""


@dataclass(slots=True)
class CommandStats:
    received: int = 0
    done: int = 0
    failed: int = 0
    expired: int = 0
    replayed: int = 0  # answered from the record, not run again
    rejected: int = 0  # another node's, an unknown action, arguments it does not take
    ran: int = 0  # handlers actually called


class CommandDispatcher:
    """Runs the director's commands for one court, recording each in ``book``."""

    def __init__(self, node_id: str, book: CommandBook, reply: Callable[[bytes, bytes], None]):
        """``reply(identity, payload)`` answers one ROUTER peer (``Publisher.reply``)."""
        self.node_id = node_id
        self.book = book
        self.reply = reply
        self.handlers: dict[Action, Handler] = {}
        self.unavailable: dict[Action, str] = {}
        self.stats = CommandStats()
        self._running: dict[str, asyncio.Task[CommandResult]] = {}
        self._recording: dict[str, asyncio.Future[None]] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._problems = 0

    def register(self, action: Action, handler: Handler) -> None:
        self.handlers[action] = handler
        self.unavailable.pop(action, None)

    def mark_unavailable(self, action: Action, reason: str) -> None:
        """Say why an action cannot run here (e.g. OBS_REC disabled); the reason goes to the director."""
        self.handlers.pop(action, None)
        self.unavailable[action] = reason

    def on_router(self, identity: bytes, message: Message) -> None:
        """The ROUTER's handler for ``command``: returns at once, answers when the command has run."""
        assert isinstance(message, Command)
        task = asyncio.get_running_loop().create_task(self._async_answer(identity, message), name="command-answer")
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        task.add_done_callback(log_task_failure(logger))

    async def _async_answer(self, identity: bytes, command: Command) -> None:
        result = await self.async_handle(command)
        self.reply(identity, encode(result))

    async def async_handle(self, command: Command) -> CommandResult:
        """The command's result; never raises for anything the command or its handler does."""
        self.stats.received += 1
        received = time.monotonic()
        if command.node_id != self.node_id:
            return self._refuse(command, f"this court is node {self.node_id}, not {command.node_id}")
        running = self._running.get(command.command_id)
        if running is not None:  # the master resent while it is under way: the same outcome, once
            self.stats.replayed += 1
            return (await asyncio.shield(running)).model_copy(update={"replayed": True})
        try:
            action = Action(command.action)
        except ValueError:
            return self._refuse(command, f"unknown action {command.action!r} (this court runs reStrike VTA {__version__})")
        # Known as running before the first await, so a copy arriving meanwhile joins it.
        task = asyncio.create_task(self._async_claim_and_run(command, action, received), name=f"command-{action.value}")
        self._running[command.command_id] = task
        task.add_done_callback(partial(self._forget_when_recorded, command.command_id))
        return await asyncio.shield(task)

    async def async_stop(self) -> None:
        """Cancel what still runs (their records stay unfinished: never run again)."""
        tasks = [*self._running.values(), *self._answering]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _async_claim_and_run(self, command: Command, action: Action, received: float) -> CommandResult:
        earlier = await self.book.async_claim(command.command_id, action.value, command.args, _now_ms())
        if earlier is not None:
            self.stats.replayed += 1
            return _from_record(command, earlier)
        return await self._async_run(command, action, received)

    async def _async_run(self, command: Command, action: Action, received: float) -> CommandResult:
        budget = (command.deadline_ms - command.sent_ms) / 1000 - (time.monotonic() - received) - REPLY_MARGIN_SECONDS
        data: CommandData | None = None
        reason: str | None = None
        began = time.monotonic()
        if budget <= 0:
            outcome: Outcome = "expired"
            reason = "arrived after its deadline"
        else:
            try:
                args = parse_args(action, command.args)
            except BadArguments as exc:
                self.stats.rejected += 1
                outcome, reason = "failed", str(exc)
            else:
                handler = self.handlers.get(action)
                if handler is None:
                    outcome, reason = "failed", self.unavailable.get(action, f"{action.value} is not available on this court")
                else:
                    outcome, reason, data = await self._async_call(action, handler, args, budget)
        duration_ms = (time.monotonic() - began) * 1000
        result = CommandResult(
            command_id=command.command_id, node_id=self.node_id, action=command.action, outcome=outcome,
            reason=reason, duration_ms=round(duration_ms, 3),
            data=None if data is None else data.model_dump(mode="json"),
        )
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        # Written behind the answer; until it is in, a repeat joins this task (_forget_when_recorded).
        self._recording[command.command_id] = self.book.finish_soon(
            command.command_id, outcome, reason, result.duration_ms, _now_ms(), result.data)
        logger.log(
            logging.INFO if outcome == "done" else logging.WARNING,
            "Command %s from the director: %s%s in %.1f ms", action.value, outcome,
            f" ({reason})" if reason else "", duration_ms,
        )
        return result

    def _forget_when_recorded(self, command_id: str, _task: asyncio.Task[CommandResult]) -> None:
        """A repeat is answered from the running task until the outcome is committed, then from the book."""
        recording = self._recording.pop(command_id, None)
        if recording is None:
            self._running.pop(command_id, None)
            return

        def recorded(future: asyncio.Future[None]) -> None:
            self._running.pop(command_id, None)
            if not future.cancelled() and future.exception() is not None:
                # The director has the outcome; a repeat after a restart is answered "interrupted".
                logger.error("Could not record the outcome of command %s: %s", command_id, future.exception())

        recording.add_done_callback(recorded)

    async def _async_call(
        self, action: Action, handler: Handler, args: Any, budget: float
    ) -> tuple[Outcome, str | None, CommandData | None]:
        self.stats.ran += 1
        try:
            async with asyncio.timeout(budget):
                data = await handler(args)
        except TimeoutError:
            return "expired", f"did not finish within its deadline ({budget:.1f} s left when it arrived)", None
        except CommandFailed as exc:
            return "failed", str(exc), None
        except Exception as exc:
            logger.exception("Command %s failed unexpectedly", action.value)
            return "failed", f"internal error: {type(exc).__name__}: {exc}", None
        return "done", None, data

    def _refuse(self, command: Command, reason: str) -> CommandResult:
        self.stats.rejected += 1
        self._problems += 1
        logger.log(level_for_repeat(self._problems), "Refused command %s: %s", command.command_id, reason)
        return CommandResult(command_id=command.command_id, node_id=self.node_id, action=command.action,
                             outcome="failed", reason=reason, duration_ms=0.0)


def _from_record(command: Command, earlier: StoredCommand) -> CommandResult:
    if earlier.outcome is None:
        return CommandResult(
            command_id=command.command_id, node_id=command.node_id, action=command.action, outcome="failed",
            reason="interrupted: the agent stopped while it ran; not run again", duration_ms=0.0, replayed=True,
        )
    return CommandResult(
        command_id=command.command_id, node_id=command.node_id, action=command.action,
        outcome=earlier.outcome,  # the book's CHECK allows only the three outcomes
        reason=earlier.reason, duration_ms=earlier.duration_ms or 0.0, data=earlier.data, replayed=True,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

