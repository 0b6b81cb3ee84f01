"""The court's two OBS connections as one thing: their status for the heartbeat, and the sessions they run.

Sessions follow OBS's real output state: a recording, replay buffer or stream that starts
opens a session, one that stops ends it, and one lost with its connection ends with the
reason (``obs_crash`` when OBS runs on this laptop, ``network_loss`` when it is remote).
An output found running after a (re)connection opens a new session. Database work goes
through ``run_db`` (the store's writer thread), one job at a time, in order.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from runtime.lifecycle import log_task_failure, spawn
from shared.stream_time import InterruptionReason, SessionType
from shared.wire import ObsStatus
from slave_agent.db.sessions import SessionBook, now_ms
from slave_agent.db.store import EventStore
from slave_agent.obs.process import ObsProcess
from slave_agent.obs.settings import LOCAL_HOSTS, ObsConfig, ObsConnectionConfig, read_password
from slave_agent.obs.supervisor import ConnectionState, ObsError, ObsSnapshot, ObsSupervisor

__all__ = ["CourtObs", "DbRunner"]

logger = logging.getLogger(__name__)

DbRunner = Callable[[Callable[[], Any]], Awaitable[Any]]

#: Below this much free space, a recording that stops is taken to have stopped because the disk is full.
LOW_DISK_BYTES = 256 * 1024 * 1024


def _supervisor(name: str, cfg: ObsConnectionConfig) -> ObsSupervisor | None:
    if not cfg.enabled:
        return None
    return ObsSupervisor(
        name, cfg.host, cfg.port, lambda: read_password(cfg),
        request_timeout=cfg.request_timeout_seconds, keepalive_seconds=cfg.keepalive_seconds,
    )


class CourtObs:
    """OBS_REC (recording, replay buffer) and OBS_STR (stream, scenes); either may be disabled."""

    def __init__(self, config: ObsConfig, store: EventStore, run_db: DbRunner):
        self.config = config
        self.store = store
        self.run_db = run_db
        self.rec = _supervisor("rec", config.rec)
        self.str = _supervisor("str", config.str)
        #: The OBS programs the agent runs itself (``[obs.<name>.process]``), by connection name.
        self.processes: dict[str, ObsProcess] = {}
        for name, cfg in (("rec", config.rec), ("str", config.str)):
            if cfg.runs_obs:
                self.processes[name] = ObsProcess(
                    name, cfg.process, port=cfg.port, log_path=store.path.parent / f"obs-{name}.log"
                )
        for process in self.processes.values():
            process.on_started(partial(self._obs_started, process))
        #: Set by the replay triggers while a review is on air.
        self.ivr_active = False
        self._jobs: asyncio.Queue[tuple[Callable[[], Any], str]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._no_day_warned = False
        #: What is wrong although the connection is up (a missing scene, a full disk), by connection.
        self.problems: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        if self.rec is not None:
            self.rec.on_state(self._session_follower({"recording": SessionType.RECORDING,
                                                      "replay_buffer": SessionType.REPLAY_BUFFER}))
            self.rec.on_state(self._watch_recording)
        if self.str is not None:
            self.str.on_state(self._session_follower({"streaming": SessionType.STREAM}))
            self.str.on_state(self._watch_scenes)

    @property
    def supervisors(self) -> list[ObsSupervisor]:
        return [s for s in (self.rec, self.str) if s is not None]

    def process_of(self, name: str) -> ObsProcess | None:
        """The OBS program the agent runs for a connection: its own, or OBS_REC's when both reach one OBS."""
        own = self.processes.get(name)
        if own is not None or name != "str":
            return own
        rec = self.processes.get("rec")
        same = (self.config.rec.host, self.config.rec.port) == (self.config.str.host, self.config.str.port)
        return rec if same else None

    def _served_by(self, process: ObsProcess) -> list[ObsSupervisor]:
        return [sup for sup in self.supervisors if self.process_of(sup.name) is process]

    def _obs_started(self, process: ObsProcess) -> None:
        for sup in self._served_by(process):
            sup.retry_now()

    async def async_restart(self) -> list[str]:
        """Restart the OBS programs the agent runs (each once), reconnect the other connections; what happened.

        Returns once each restarted OBS answers on its connections again; raises
        :class:`ObsError` when one could not be restarted (the others still are).
        """
        details: list[str] = []
        reconnect = [sup for sup in self.supervisors if self.process_of(sup.name) is None]
        for sup in reconnect:
            await sup.async_reconnect()
            details.append(f"OBS_{sup.name.upper()} reconnecting (the agent does not run that OBS: no "
                           f"[obs.{sup.name}.process], so only the connection is rebuilt)")
        outcomes = await asyncio.gather(*(self._async_restart_one(p) for p in self.processes.values()),
                                        return_exceptions=True)
        failed = [str(o) for o in outcomes if isinstance(o, BaseException)]
        details += [o for o in outcomes if isinstance(o, str)]
        if failed:
            raise ObsError("; ".join(failed + details))
        return details

    async def _async_restart_one(self, process: ObsProcess) -> str:
        detail = await process.async_restart()
        sups = self._served_by(process)
        try:
            for sup in sups:
                await sup.async_wait_up(process.config.start_timeout_seconds)
        except TimeoutError:
            names = " and ".join(f"OBS_{s.name.upper()}" for s in sups if not s.snapshot.up)
            raise ObsError(f"{detail}, but {names} did not connect within "
                           f"{process.config.start_timeout_seconds:.0f} s") from None
        return f"{detail}; {' and '.join(f'OBS_{s.name.upper()}' for s in sups)} connected again"

    async def async_start(self) -> None:
        self._worker = asyncio.create_task(self._async_db_jobs(), name="obs-session-writer")
        self._worker.add_done_callback(log_task_failure(logger))
        for process in self.processes.values():
            await process.async_start()
        for sup in self.supervisors:
            await sup.async_start()

    async def async_stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sup in self.supervisors:
            await sup.async_stop()
        await asyncio.gather(*(process.async_stop() for process in self.processes.values()))
        await self._jobs.join()  # the sessions the stop just ended are written before the store closes
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    def status(self) -> ObsStatus:
        """The heartbeat's view of both connections."""
        rec = self.rec.snapshot if self.rec else None
        streamer = self.str.snapshot if self.str else None
        return ObsStatus(
            rec_connected=bool(rec and rec.up),
            str_connected=bool(streamer and streamer.up),
            recording=bool(rec and rec.recording),
            streaming=bool(streamer and streamer.streaming),
            replay_buffer=bool(rec and rec.replay_buffer),
            current_scene=streamer.current_scene if streamer else None,
            rec_state=rec.state.value if rec else "disabled",
            str_state=streamer.state.value if streamer else "disabled",
            rec_reason=_short(self._reason(rec)) if rec else None,
            str_reason=_short(self._reason(streamer)) if streamer else None,
            rec_version=rec.version if rec else None,
            str_version=streamer.version if streamer else None,
            ivr_active=self.ivr_active,
            rec_process=_short(self._process_text("rec")),
            str_process=_short(self._process_text("str")),
        )

    def _reason(self, snapshot: ObsSnapshot) -> str | None:
        """Why a connection is not up (OBS's own program trouble first: it says what to do), or its problem."""
        process = self.process_of(snapshot.name)
        if not snapshot.up and process is not None and process.problem is not None:
            return process.problem
        return snapshot.reason or self.problems.get(snapshot.name)

    def _process_text(self, name: str) -> str | None:
        process = self.process_of(name)
        return None if process is None else process.describe()

    # --- problems while connected ----------------------------------------------------------------

    def _problem(self, name: str, text: str | None) -> None:
        """Set (logged once) or clear what is wrong with a connection that is up."""
        if text is None:
            if self.problems.pop(name, None) is not None:
                logger.info("OBS %s: the problem is gone", name)
        elif self.problems.get(name) != text:
            self.problems[name] = text
            logger.error("OBS %s: %s", name, text)

    def _watch_scenes(self, before: ObsSnapshot, after: ObsSnapshot) -> None:
        if after.up and not before.up and self.str is not None:
            spawn(self._tasks, self._async_check_scenes(self.str), "obs-str-scenes", logger)

    async def _async_check_scenes(self, sup: ObsSupervisor) -> None:
        try:
            scenes = {s.get("sceneName") for s in (await sup.async_request("GetSceneList")).get("scenes", [])}
        except ObsError:
            return  # the connection went again; checked at the next one
        wanted = [self.config.str.live_scene, self.config.str.ivr_scene]
        missing = [name for name in wanted if name not in scenes]
        self._problem("str", f"scene {' and '.join(repr(m) for m in missing)} missing (OBS has "
                             f"{', '.join(sorted(str(s) for s in scenes)) or 'none'}): create it in OBS or fix "
                             "[obs.str] live_scene / ivr_scene" if missing else None)

    def _watch_recording(self, before: ObsSnapshot, after: ObsSnapshot) -> None:
        """A recording that stops while the disk is (nearly) full: say so once, show it in the heartbeat."""
        if after.recording and not before.recording:
            self._problem("rec", None)
        elif before.recording and not after.recording and after.up and before.record_path:
            folder = Path(before.record_path).parent
            try:
                free = shutil.disk_usage(folder).free
            except OSError:
                return
            if free < LOW_DISK_BYTES:
                self._problem("rec", f"recording stopped with only {free // 1_000_000} MB free on the disk of "
                                     f"{folder}: free space or set [ivr] videos_root to another disk")

    def check_disk(self, folder: Path) -> str | None:
        """Why OBS_REC cannot record into ``folder`` for lack of space (said once, shown in the heartbeat), if so.

        OBS refuses to start a recording on a nearly full disk with a dialog nobody sees, and
        the request seems to succeed: this is the only way the crew hears of it.
        """
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return None
        if free >= LOW_DISK_BYTES:
            return None
        text = (f"only {free // 1_000_000} MB free on the disk of {folder}: OBS will not record; "
                "free space or set [ivr] videos_root to another disk")
        self._problem("rec", text)
        return text

    # --- sessions from OBS's real output state ------------------------------------------------

    def _session_follower(self, outputs: dict[str, SessionType]) -> Callable[[ObsSnapshot, ObsSnapshot], None]:
        def follow(before: ObsSnapshot, after: ObsSnapshot) -> None:
            for field, kind in outputs.items():
                was, now = getattr(before, field), getattr(after, field)
                if was == now:
                    continue
                at = now_ms()
                if now:
                    path = after.record_path if kind is SessionType.RECORDING else None
                    self.submit(partial(self._start_session, kind, at, path), f"start {kind.value} session")
                else:
                    reason = None if after.state is ConnectionState.UP else self._loss_reason(after)
                    self.submit(partial(self._end_session, kind, at, reason), f"end {kind.value} session")

        return follow

    def _loss_reason(self, snapshot: ObsSnapshot) -> InterruptionReason:
        process = self.process_of(snapshot.name)
        if process is not None and process.stopping_on_purpose:
            return InterruptionReason.MANUAL_STOP
        sup = self.rec if snapshot.name == "rec" else self.str
        host = sup.host if sup is not None else ""
        return InterruptionReason.OBS_CRASH if host in LOCAL_HOSTS else InterruptionReason.NETWORK_LOSS

    def _start_session(self, kind: SessionType, at: int, output_path: str | None) -> None:
        """Writer thread."""
        day = self.store.day
        if day is None:
            if not self._no_day_warned:
                self._no_day_warned = True
                logger.warning("OBS %s started but no tournament day is active: no session is recorded "
                               "(activate one with `restrike slave tournament activate`)", kind.value)
            return
        SessionBook(self.store.conn).start(
            day.day_id, kind, at, output_path=output_path, previous_ended_because=InterruptionReason.MANUAL_STOP
        )

    def _end_session(self, kind: SessionType, at: int, reason: InterruptionReason | None) -> None:
        """Writer thread."""
        day = self.store.day
        if day is None:
            return
        ended = SessionBook(self.store.conn).end(day.day_id, kind, at, reason)
        if ended is not None:
            logger.log(logging.WARNING if reason else logging.INFO, "%s session %d ended%s", kind.value,
                       ended.number, f" ({reason.value})" if reason else "")

    # --- database jobs, in order, on the store's writer -----------------------------------------

    def submit(self, job: Callable[[], Any], what: str) -> None:
        """Queue a database job; it runs after those queued before it (never on the event loop)."""
        self._jobs.put_nowait((job, what))

    async def _async_db_jobs(self) -> None:
        while True:
            job, what = await self._jobs.get()
            try:
                await self.run_db(job)
            except Exception:
                logger.exception("Could not %s in the court database", what)
            finally:
                self._jobs.task_done()


def _short(text: str | None) -> str | None:
    return None if text is None else text[:500]
