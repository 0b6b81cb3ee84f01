"""What each of the director's actions does at the court.

The court's own actions (tournament day, health report, recent log lines, a message for the
local page) are here in full; the OBS actions call the court's OBS commands
(:class:`~slave_agent.obs.actions.CourtActions`) and turn an OBS problem into a ``failed``
outcome with OBS's own reason. :func:`register_handlers` plugs them into a dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared.commands import (
    Action,
    ActivateDayArgs,
    DayReport,
    HealthReport,
    LogLines,
    LogsArgs,
    MessageArgs,
    MuteArgs,
    NoArgs,
    ObsReport,
    Priority,
    SceneArgs,
)
from shared.stream_time import InterruptionReason, SessionType
from slave_agent.commands.book import CommandBook, DirectorMessage
from slave_agent.commands.dispatcher import CommandDispatcher, CommandFailed
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import DayContext, EventStore
from slave_agent.obs.actions import CourtActions
from slave_agent.obs.supervisor import ObsError
from slave_agent.obs.triggers import IVR_FOLDER, record_folder
from slave_agent.publisher import Publisher

__all__ = ["CourtHandlers", "RecentLogs", "register_handlers"]

logger = logging.getLogger(__name__)

#: Runs a function on the store's writer thread (``UdpIngest.async_in_writer``).
DbRunner = Callable[[Callable[[], Any]], Awaitable[Any]]

#: How many log lines the court keeps for the director's "recent log lines".
LOG_LINES_KEPT = 2000


class RecentLogs(logging.Handler):
    """The agent's latest log lines in memory, formatted as on the console (secrets are never logged)."""

    def __init__(self, capacity: int = LOG_LINES_KEPT):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append((record.levelno, self.format(record)))
        except Exception:  # a record that cannot be formatted must not break the caller's logging
            self.handleError(record)

    def lines(self, count: int, level: str = "INFO") -> list[str]:
        """The last ``count`` lines at ``level`` or above, oldest first."""
        floor = logging.getLevelName(level)
        return [line for levelno, line in self._lines if levelno >= floor][-count:]


class CourtHandlers:
    """The actions of one court agent; each takes the action's arguments model."""

    def __init__(
        self,
        *,
        store: EventStore,
        run_db: DbRunner,
        book: CommandBook,
        publisher: Publisher,
        logs: RecentLogs,
        videos_root: Path,
        actions: CourtActions | None,
    ):
        self.store = store
        self.run_db = run_db
        self.book = book
        self.publisher = publisher
        self.logs = logs
        self.videos_root = videos_root
        self.actions = actions
        self.started = time.monotonic()
        #: Called with each message of the director (the operator page shows them).
        self.message_listeners: list[Callable[[DirectorMessage], None]] = []

    # --- the court's own actions ---------------------------------------------------------------

    async def async_health(self, _: NoArgs) -> HealthReport:
        """A fresh report, and a heartbeat sent now so the master's view is fresh too."""
        hb = self.publisher.send_heartbeat()
        return HealthReport(
            health=hb.health, obs=hb.obs, epoch=hb.epoch, last_seq=hb.last_seq, received=hb.received,
            dropped=hb.dropped, uptime_seconds=round(time.monotonic() - self.started, 1),
            tournament_day_uuid=hb.tournament_day_uuid,
        )

    async def async_logs(self, args: LogsArgs) -> LogLines:
        return LogLines(lines=self.logs.lines(args.lines, args.level))

    async def async_message(self, args: MessageArgs) -> None:
        message = await self.book.async_add_message(
            kind=args.kind, priority=args.priority.value, text=args.text, received_ms=time.time_ns() // 1_000_000,
            announcement_id=args.announcement_id,
        )
        loud = args.priority in (Priority.HIGH, Priority.URGENT)
        logger.log(logging.WARNING if loud else logging.INFO, "Message from the director (%s): %s", args.priority.value, args.text)
        for listener in self.message_listeners:
            try:
                listener(message)
            except Exception:
                logger.exception("A listener of the director's messages failed")

    async def async_activate_day(self, args: ActivateDayArgs) -> DayReport:
        """The master's tournament and day, created here if new, made the context of every event."""
        day: DayContext = await self.run_db(lambda: self._activate(args))
        folder = record_folder(self.videos_root, day.tournament_name, day.day_number)
        try:
            await asyncio.to_thread((folder / IVR_FOLDER).mkdir, parents=True, exist_ok=True)
        except OSError as exc:  # the day is active all the same; the recordings will say it again
            raise CommandFailed(f"{day.tournament_name} day {day.day_number} is active, but its folder "
                                f"{folder} cannot be made: {exc.strerror or exc}") from None
        logger.info("Tournament day set by the director: %s day %d (%s)", day.tournament_name, day.day_number, folder)
        return DayReport(tournament_uuid=day.tournament_uuid, day_uuid=day.day_uuid, day_number=day.day_number,
                         folder=str(folder))

    def _activate(self, args: ActivateDayArgs) -> DayContext:
        """Writer thread."""
        tournament_uuid = args.tournament
        known = {t["uuid"]: t for t in self.store.tournaments()}
        tournament = known.get(tournament_uuid)
        if tournament is None:
            self.store.create_tournament(args.tournament_name, tournament_uuid=tournament_uuid)
            days: list[dict[str, Any]] = []
        else:
            days = [d for d in tournament["days"] if d["day_number"] is not None]
        if all(d["day_number"] != args.day_number for d in days):
            self.store.add_day(tournament_uuid, args.day_number, args.date.isoformat(),
                               day_uuid=str(args.day_uuid) if args.day_uuid else None)
        return self.store.activate_day(tournament_uuid, args.day_number)

    async def async_finish_day(self, _: NoArgs) -> DayReport:
        """No day in force any more; the day's running OBS sessions end with the reason ``day_end``."""
        day: DayContext | None = await self.run_db(self._finish)
        if day is None:
            raise CommandFailed("no tournament day is active on this court")
        logger.info("Tournament day finished by the director: %s day %d", day.tournament_name, day.day_number)
        return DayReport(tournament_uuid=day.tournament_uuid, day_uuid=day.day_uuid, day_number=day.day_number)

    def _finish(self) -> DayContext | None:
        """Writer thread."""
        day = self.store.day
        if day is None:
            return None
        book = SessionBook(self.store.conn)
        for kind in SessionType:
            book.end(day.day_id, kind, reason=InterruptionReason.DAY_END)
        self.store.finish_day()
        return day

    # --- OBS --------------------------------------------------------------------------------------

    def _obs(self) -> CourtActions:
        if self.actions is None:
            raise CommandFailed("OBS is not set up on this court (the agent runs without OBS)")
        return self.actions

    async def _async_obs(self, call: Callable[[CourtActions], Awaitable[Any]], done: str) -> ObsReport:
        try:
            value = await call(self._obs())
        except ObsError as exc:
            raise CommandFailed(str(exc)) from None
        return ObsReport(detail=done if value in (None, []) else f"{done}: {value}")

    async def async_mute(self, args: MuteArgs) -> ObsReport:
        return await self._async_mute(args, True)

    async def async_unmute(self, args: MuteArgs) -> ObsReport:
        return await self._async_mute(args, False)

    async def _async_mute(self, args: MuteArgs, muted: bool) -> ObsReport:
        word = "muted" if muted else "unmuted"
        if args.inputs:
            async def each(obs: CourtActions) -> list[str]:
                sup = obs.obs.str if obs.obs.str is not None else obs.obs.rec
                if sup is None:
                    raise CommandFailed("no OBS connection is configured on this court")
                for name in args.inputs or ():
                    await sup.async_set_input_mute(name, muted)
                return list(args.inputs or ())
            return await self._async_obs(each, word)
        report = await self._async_obs(lambda obs: obs.async_mute(muted), word)
        if report.detail == word:
            raise CommandFailed("no audio input to mute is configured ([obs.str] / [obs.rec] mute_inputs)")
        return report

    async def async_recording(self, on: bool) -> ObsReport:
        return await self._async_obs(lambda obs: obs.async_recording(on), "recording" if on else "recording stopped")

    async def async_replay_buffer(self, on: bool) -> ObsReport:
        return await self._async_obs(lambda obs: obs.async_replay_buffer(on), "replay buffer " + ("on" if on else "off"))

    async def async_scene(self, args: SceneArgs) -> ObsReport:
        return await self._async_obs(lambda obs: obs.async_scene(args.scene), f"scene {args.scene} on air")

    async def async_replay(self, _: NoArgs) -> ObsReport:
        log = await self._obs().async_replay("master")
        if log.outcome != "done":
            raise CommandFailed(f"replay {log.outcome}: {log.reason or 'see the court log'}")
        return ObsReport(detail=f"clip {log.clip_path}" if log.clip_path else "replay done")

    async def async_restart_obs(self, _: NoArgs) -> ObsReport:
        """Restart the OBS programs the agent runs (``[obs.<name>.process]``); only reconnect the others."""
        try:
            details = await self._obs().async_restart_obs()
        except ObsError as exc:
            raise CommandFailed(str(exc)) from None
        return ObsReport(detail="; ".join(details))


def register_handlers(dispatcher: CommandDispatcher, handlers: CourtHandlers) -> None:
    """Every action of :class:`~shared.commands.Action` gets its handler."""
    table: dict[Action, Callable[[Any], Awaitable[Any]]] = {
        Action.HEALTH: handlers.async_health,
        Action.LOGS: handlers.async_logs,
        Action.MESSAGE: handlers.async_message,
        Action.ACTIVATE_DAY: handlers.async_activate_day,
        Action.FINISH_DAY: handlers.async_finish_day,
        Action.MUTE: handlers.async_mute,
        Action.UNMUTE: handlers.async_unmute,
        Action.START_RECORDING: lambda _: handlers.async_recording(True),
        Action.STOP_RECORDING: lambda _: handlers.async_recording(False),
        Action.SET_SCENE: handlers.async_scene,
        Action.START_REPLAY_BUFFER: lambda _: handlers.async_replay_buffer(True),
        Action.STOP_REPLAY_BUFFER: lambda _: handlers.async_replay_buffer(False),
        Action.REPLAY: handlers.async_replay,
        Action.RESTART_OBS: handlers.async_restart_obs,
    }
    for action, handler in table.items():
        dispatcher.register(action, handler)
