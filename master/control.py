"""The director's control of every court: one action to one court, a chosen set or all of them.

:class:`Controller` is what the console and ``restrike master send`` call. Every court of a
command gets the same command id and its own result; the courts are asked in parallel, so a
dead court costs nothing beyond the command's deadline (its result is ``expired``). Each
command and each court's outcome goes to the audit log when one is given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import getpass
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from master.commands import CommandChannel
from shared.commands import (
    DEFAULT_TIMEOUTS,
    Action,
    CommandData,
    DayReport,
    HealthReport,
    LogLines,
    MessageArgs,
    ObsReport,
    Priority,
    parse_args,
    parse_data,
)
from shared.wire import Command

__all__ = [
    "Audit",
    "CommandTarget",
    "ControlResult",
    "Controller",
    "CourtResult",
    "IssuedCommand",
    "UnknownCourt",
]

logger = logging.getLogger(__name__)

#: The audit log is written beside the command, never in its way: at most this long at the end.
AUDIT_WAIT_SECONDS = 5.0


class CommandTarget(Protocol):
    """A court a command can go to: a master link, or a command-only line of the CLI."""

    @property
    def node_id(self) -> str | None: ...

    @property
    def name(self) -> str: ...

    @property
    def commands(self) -> CommandChannel: ...


class CourtResult(BaseModel):
    """One court's answer to a command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str
    court: str
    outcome: Literal["done", "failed", "expired"]
    reason: str | None = None
    court_ms: float | None = None
    """How long the action took at the court (None: no answer)."""
    round_trip_ms: float
    replayed: bool = False
    """The court had run this command id already and answered from its record."""
    data: CommandData | None = None

    def detail(self) -> str:
        """One line for the director: the reason it did not work, or what the court reported."""
        if self.reason:
            return self.reason
        data = self.data
        if isinstance(data, HealthReport):
            h = data.health
            return (f"cpu {h.cpu_percent:.0f}% · memory {h.memory_percent:.0f}% · disk free {h.disk_free_bytes / 1e9:.1f} GB · "
                    f"seq {data.last_seq} · OBS rec {data.obs.rec_state}, str {data.obs.str_state}")
        if isinstance(data, LogLines):
            return f"{len(data.lines)} log line(s)"
        if isinstance(data, ObsReport):
            return data.detail
        if isinstance(data, DayReport):
            return data.folder or (f"day {data.day_number} active" if data.day_uuid else "no day active")
        return ""


class _Command(BaseModel):
    """What every record of a command carries: which one, what, with what, by whom, when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str
    action: Action
    args: dict[str, Any]
    issued_by: str
    issued_at: dt.datetime


class ControlResult(_Command):
    """A command and every court's result, in the order the courts were asked."""

    timeout_seconds: float
    results: list[CourtResult]
    announcement_id: int | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


class UnknownCourt(LookupError):
    """A court name or node id the master does not control; the message lists those it does."""


class IssuedCommand(_Command):
    """A command as the director gave it, before any court answers."""

    deadline_at: dt.datetime
    courts: list[tuple[str, str]]
    """``(node_id, court name)`` of every court asked."""
    announcement_id: int | None = None


class Audit(Protocol):
    """Where commands and their outcomes are recorded (the central database)."""

    async def async_issued(self, command: IssuedCommand) -> None: ...

    async def async_finished(self, result: ControlResult) -> None: ...

    async def async_announcement(self, text: str, kind: str, priority: Priority, node_ids: Sequence[str],
                                 issued_by: str) -> int: ...

    async def async_announcement_done(self, announcement_id: int, result: ControlResult) -> None: ...


class Controller:
    """Sends commands to the courts ``targets()`` returns (the master's approved links, or the CLI's lines)."""

    def __init__(self, targets: Callable[[], Iterable[CommandTarget]], *, audit: Audit | None = None):
        self._targets = targets
        self.audit = audit
        self._audit_tasks: set[asyncio.Task[Any]] = set()

    def courts(self) -> list[CommandTarget]:
        """Every court a command can go to now, by name."""
        return sorted((t for t in self._targets() if t.node_id is not None), key=lambda t: t.name)

    def select(self, courts: Sequence[str] | None) -> list[CommandTarget]:
        """The courts named (court name or node id, any case); every court for None."""
        known = self.courts()
        if courts is None:
            return known
        chosen: list[CommandTarget] = []
        for wanted in courts:
            match = [t for t in known if wanted.casefold() in (t.name.casefold(), (t.node_id or "").casefold())]
            if not match:
                names = ", ".join(f"{t.name} ({t.node_id})" for t in known) or "none"
                raise UnknownCourt(f"no court {wanted!r} to command; courts: {names}")
            chosen += [t for t in match if t not in chosen]
        return chosen

    async def async_send(
        self,
        action: Action,
        args: Mapping[str, Any] | BaseModel | None = None,
        *,
        courts: Sequence[str] | None = None,
        timeout: float | None = None,
        issued_by: str | None = None,
        announcement_id: int | None = None,
        on_result: Callable[[CourtResult], object] | None = None,
    ) -> ControlResult:
        """Run ``action`` on the courts named (all for None), in parallel; every court's result.

        ``on_result`` is called with each court's result as it arrives (the console shows them one
        by one; the whole result still comes back at the end). Raises
        :class:`~shared.commands.BadArguments` for arguments the action does not take and
        :class:`UnknownCourt` for a name no court has, before anything is sent.
        """
        plain = args.model_dump(mode="json") if isinstance(args, BaseModel) else dict(args or {})
        parse_args(action, plain)  # the court checks again; a mistake here is the caller's
        targets = self.select(courts)
        seconds = timeout if timeout is not None else DEFAULT_TIMEOUTS.get(action, 5.0)
        who = issued_by or _local_user()
        now_ms = time.time_ns() // 1_000_000
        command_id = uuid.uuid4().hex
        issued_at = dt.datetime.now(dt.UTC)
        issued: asyncio.Task[Any] | None = None
        if self.audit is not None:
            issued = self._in_background(self.audit.async_issued(IssuedCommand(
                command_id=command_id, action=action, args=plain, issued_by=who, issued_at=issued_at,
                deadline_at=issued_at + dt.timedelta(seconds=seconds), courts=[(t.node_id or "", t.name) for t in targets],
                announcement_id=announcement_id,
            )))
        asks = [self._async_one(target, command_id, action, plain, now_ms, seconds, on_result) for target in targets]
        # One court is asked in this task: gather's extra task would cost the round trip two loop turns.
        results = [await asks[0]] if len(asks) == 1 else await asyncio.gather(*asks)
        result = ControlResult(
            command_id=command_id, action=action, args=plain, issued_by=who, issued_at=issued_at,
            timeout_seconds=seconds, results=list(results), announcement_id=announcement_id,
        )
        logger.info(
            "Command %s (%s) by %s: %d done, %d failed, %d expired", action.value, command_id[:8], who,
            result.count("done"), result.count("failed"), result.count("expired"),
        )
        if self.audit is not None:
            self._in_background(_after(issued, self.audit.async_finished(result)))  # the rows exist before they are completed
        return result

    async def async_announce(
        self,
        text: str,
        *,
        courts: Sequence[str] | None = None,
        priority: Priority = Priority.NORMAL,
        kind: str = "info",
        timeout: float | None = None,
        issued_by: str | None = None,
        on_result: Callable[[CourtResult], object] | None = None,
    ) -> ControlResult:
        """A message on the courts' local pages, recorded as an announcement with its delivery
        (``on_result`` as for :meth:`async_send`)."""
        who = issued_by or _local_user()
        args = MessageArgs(text=text, priority=priority, kind=kind)
        targets = self.select(courts)
        announcement_id = None
        if self.audit is not None:
            try:
                announcement_id = await asyncio.wait_for(self.audit.async_announcement(
                    text, kind, priority, [t.node_id or "" for t in targets], who), AUDIT_WAIT_SECONDS)
            except Exception:  # the message matters more than its record
                logger.exception("Could not record the announcement; sending it anyway")
        if announcement_id is not None:
            args = args.model_copy(update={"announcement_id": announcement_id})
        result = await self.async_send(Action.MESSAGE, args, courts=[t.node_id or "" for t in targets],
                                       timeout=timeout, issued_by=who, announcement_id=announcement_id,
                                       on_result=on_result)
        if self.audit is not None and announcement_id is not None:
            self._in_background(self.audit.async_announcement_done(announcement_id, result))
        return result

    async def async_flush(self, timeout: float = AUDIT_WAIT_SECONDS) -> None:
        """Wait (bounded) for the audit writes still under way; the CLI calls it before exiting."""
        pending = list(self._audit_tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            logger.warning("The audit log could not be written within %.0f s; the commands ran regardless", timeout)

    async def _async_one(
        self, target: CommandTarget, command_id: str, action: Action, args: dict[str, Any], sent_ms: int, seconds: float,
        on_result: Callable[[CourtResult], object] | None,
    ) -> CourtResult:
        result = await self._async_ask(target, command_id, action, args, sent_ms, seconds)
        if on_result is not None:
            try:
                on_result(result)
            except Exception:  # a page that went away must not lose the other courts' results
                logger.exception("Showing %s's result of %s failed", target.name, action.value)
        return result

    async def _async_ask(
        self, target: CommandTarget, command_id: str, action: Action, args: dict[str, Any], sent_ms: int, seconds: float
    ) -> CourtResult:
        node_id = target.node_id or ""
        command = Command(command_id=command_id, node_id=node_id, action=action.value, args=args,
                          sent_ms=sent_ms, deadline_ms=sent_ms + int(seconds * 1000))
        began = time.monotonic()
        answer = await target.commands.async_call(command)
        round_trip = round((time.monotonic() - began) * 1000, 3)
        if answer is None:
            return CourtResult(node_id=node_id, court=target.name, outcome="expired",
                               reason=f"no answer within {seconds:g} s (court offline or unreachable?)",
                               round_trip_ms=round_trip)
        data = None
        if answer.data is not None:
            try:
                data = parse_data(answer.data)
            except ValueError:
                logger.warning("Court %s answered %s with data this master cannot read", target.name, action.value)
        return CourtResult(node_id=node_id, court=target.name, outcome=answer.outcome, reason=answer.reason,
                           court_ms=answer.duration_ms, round_trip_ms=round_trip, replayed=answer.replayed, data=data)

    def _in_background(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._audit_tasks.add(task)
        task.add_done_callback(self._audit_done)
        return task

    def _audit_done(self, task: asyncio.Task[Any]) -> None:
        self._audit_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("Could not write the audit log: %s", task.exception())


@functools.cache
def _local_user() -> str:
    """Who runs this process, for commands given without a signed-in user (the CLI); asked once."""
    return getpass.getuser()


async def _after(first: asyncio.Task[Any] | None, then: Any) -> None:
    if first is not None:
        await asyncio.gather(first, return_exceptions=True)
    await then
