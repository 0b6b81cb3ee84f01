"""Carries out the replay triggers, one at a time, step by step, and logs each outcome in ``ivr_events``.

It hears committed events (a post-commit listener: ingest never waits for it), the
operator's REPLAY and the player being closed. A step that cannot run is skipped with the
reason (OBS down, no clip), a step that fails says why, and neither stops the steps that
can still run: the live scene always comes back at the end of a review.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from runtime.lifecycle import log_task_failure
from shared.match_state import Athlete
from shared.records import EventRecord
from shared.wire import IvrNotice
from slave_agent.db.ivr import link_clip, save_log, set_challenge_result
from slave_agent.db.sessions import now_ms
from slave_agent.db.store import EventStore
from slave_agent.obs.court import CourtObs
from slave_agent.obs.player import Player, PlayerError
from slave_agent.obs.settings import IvrConfig
from slave_agent.obs.supervisor import ObsError, ObsSnapshot, ObsSupervisor, ObsUnavailable
from slave_agent.obs.triggers import (
    IVR_FOLDER,
    ClipSpan,
    Step,
    StepOutcome,
    Trigger,
    TriggerKind,
    TriggerLog,
    clip_name,
    clip_span,
    decide,
    record_folder,
    recording_name,
)

__all__ = ["ReplayDirector"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: How long a save waits for OBS's ReplayBufferSaved before asking OBS for its last clip instead.
SAVED_EVENT_SECONDS = 3.0
_STEP_ERRORS = (ObsError, PlayerError, OSError, ValueError)


class _Run:
    """The steps of one trigger as they happen."""

    def __init__(self, trigger: Trigger):
        self.trigger = trigger
        self.steps: list[Step] = []

    async def step(self, name: str, action: Callable[[], Awaitable[T]], skip: str | None = None) -> T | None:
        """Run one step (or skip it with ``skip`` as the reason); never raises."""
        began = time.monotonic()
        if skip is not None:
            self._add(name, StepOutcome.SKIPPED, began, skip)
            return None
        try:
            result = await action()
        except _STEP_ERRORS as exc:
            self._add(name, StepOutcome.FAILED, began, str(exc) or type(exc).__name__)
            return None
        except Exception as exc:  # a bug in a step must not stop the others
            logger.exception("Replay step %s failed unexpectedly", name)
            self._add(name, StepOutcome.FAILED, began, f"{type(exc).__name__}: {exc}")
            return None
        self._add(name, StepOutcome.DONE, began, result if isinstance(result, str) else None)
        return result

    def _add(self, name: str, outcome: StepOutcome, began: float, detail: str | None) -> None:
        took = int((time.monotonic() - began) * 1000)
        self.steps.append(Step(name, outcome, now_ms() - self.trigger.at_ms, took, detail))


def _corner(athlete: Athlete) -> str | None:
    name = athlete.name or athlete.short
    if not name:
        return None
    return f"{name} ({athlete.noc})" if athlete.noc else name


def _down(sup: ObsSupervisor | None, label: str) -> str | None:
    """Why a step on this connection cannot run, or None when it can."""
    if sup is None:
        return f"{label} is not configured"
    if not sup.snapshot.up:
        return f"{label} is {sup.snapshot.state.value}: {sup.snapshot.reason}"
    return None


class ReplayDirector:
    """The court's three triggers: match ready, replay, review over."""

    def __init__(
        self,
        obs: CourtObs,
        store: EventStore,
        config: IvrConfig,
        *,
        court: str,
        publish: Callable[[IvrNotice], None] | None = None,
    ):
        self.obs = obs
        self.store = store
        self.config = config
        self.court = court
        self.publish = publish
        self.player = Player(config.player, config.player_arguments)
        self.player.on_closed(lambda: self._enqueue(self._now_trigger(TriggerKind.REVIEW_OVER, "player_closed")))
        self.on_air = False
        self.folder: Path | None = None
        self.last_logs: list[TriggerLog] = []
        self._log_listeners: list[Callable[[TriggerLog], None]] = []
        self._review_expected = False
        self._buffer_started_ms: int | None = None
        self._queue: asyncio.Queue[tuple[Trigger, asyncio.Future[TriggerLog] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._prepare: asyncio.Task[None] | None = None
        if obs.rec is not None:
            obs.rec.on_state(self._follow_buffer)

    def on_log(self, listener: Callable[[TriggerLog], None]) -> None:
        """Hear each trigger's outcome once it is stored."""
        self._log_listeners.append(listener)

    async def async_start(self) -> None:
        self._task = asyncio.create_task(self._async_run_queue(), name="replay-director")
        self._task.add_done_callback(log_task_failure(logger))
        self._prepare = asyncio.create_task(self._async_prepare_player(), name="replay-player-start")
        self._prepare.add_done_callback(log_task_failure(logger))

    async def _async_prepare_player(self) -> None:
        """Start the player ahead of the first challenge (a failure now is retried at the challenge)."""
        try:
            await self.player.async_prepare(self.config.step_timeout_seconds)
        except PlayerError as exc:
            logger.warning("The replay player cannot start yet (%s); clips will not be shown until it can", exc)

    async def async_stop(self) -> None:
        for task in (self._task, self._prepare):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.player.async_shutdown()

    # --- what starts a trigger ---------------------------------------------------------------

    def on_commit(self, records: list[EventRecord]) -> None:
        """Post-commit listener: decide on each event, queue what it starts; returns at once."""
        for record in records:
            trigger = decide(record, review_on_air=self._review_expected)
            if trigger is not None:
                self._enqueue(trigger)

    async def async_replay(self, source: str = "operator") -> TriggerLog:
        """The REPLAY button (or a command): the same steps as a challenge; returns the outcome."""
        return await self._async_submit(self._now_trigger(TriggerKind.REPLAY, source))

    async def async_review_over(self, source: str = "operator") -> TriggerLog:
        """End the review by hand: live scene back, player closed."""
        return await self._async_submit(self._now_trigger(TriggerKind.REVIEW_OVER, source))

    def _now_trigger(self, kind: TriggerKind, source: str) -> Trigger:
        state = self.store.match_state
        match = self.store.current_match_uuid
        return Trigger(kind, source, now_ms(), match, state.info.number)

    async def _async_submit(self, trigger: Trigger) -> TriggerLog:
        future: asyncio.Future[TriggerLog] = asyncio.get_running_loop().create_future()
        self._enqueue(trigger, future)
        return await future

    def _enqueue(self, trigger: Trigger, future: asyncio.Future[TriggerLog] | None = None) -> None:
        if trigger.kind is TriggerKind.REPLAY:
            self._review_expected = True
        elif trigger.kind is TriggerKind.REVIEW_OVER:
            self._review_expected = False
        self._queue.put_nowait((trigger, future))

    def _follow_buffer(self, before: ObsSnapshot, after: ObsSnapshot) -> None:
        if after.replay_buffer and not before.replay_buffer:
            self._buffer_started_ms = now_ms()
        elif not after.replay_buffer:
            self._buffer_started_ms = None

    # --- carrying them out -------------------------------------------------------------------

    async def _async_run_queue(self) -> None:
        handlers = {
            TriggerKind.MATCH_READY: self._async_match_ready,
            TriggerKind.REPLAY: self._async_replay,
            TriggerKind.REVIEW_OVER: self._async_review_over,
        }
        while True:
            trigger, future = await self._queue.get()
            run = _Run(trigger)
            log = TriggerLog(uuid.uuid4().hex, trigger, 0, run.steps)
            await handlers[trigger.kind](run, log)
            log.finished_ms = now_ms()
            day = self.store.day
            try:
                await self.obs.run_db(partial(save_log, self.store.conn, log, day.day_id if day else None))
            except Exception:
                logger.exception("Could not store the outcome of the %s trigger", trigger.kind.value)
            self._report(log)
            if future is not None and not future.done():
                future.set_result(log)

    def _report(self, log: TriggerLog) -> None:
        self.last_logs = [*self.last_logs[-49:], log]
        took = log.finished_ms - log.trigger.at_ms
        what = f"{log.trigger.kind.value} (match {log.trigger.match_number or '?'}, {log.trigger.source})"
        if log.outcome == "done":
            logger.info("%s done in %d ms", what, took)
        else:
            logger.warning("%s %s in %d ms: %s", what, log.outcome, took, log.reason)
        for listener in self._log_listeners:
            try:
                listener(log)
            except Exception:
                logger.exception("A trigger-log listener failed")

    async def _async_match_ready(self, run: _Run, log: TriggerLog) -> None:
        state = self.store.match_state
        log.blue, log.red = _corner(state.blue), _corner(state.red)
        day = self.store.day
        folder = (record_folder(self.config.videos_root, day.tournament_name, day.day_number) if day
                  else self.config.videos_root / "No tournament day")
        rec = self.obs.rec
        down = _down(rec, "OBS_REC")
        cfg_seconds = self.config.replay_buffer_seconds

        async def make_folder() -> str:
            (folder / IVR_FOLDER).mkdir(parents=True, exist_ok=True)
            self.folder = folder
            return str(folder)

        async def stop_previous() -> str:
            assert rec is not None
            stopped = []
            if rec.snapshot.recording:
                stopped.append(await rec.async_stop_record())
            if rec.snapshot.replay_buffer:  # its length and folder are taken when it starts
                await rec.async_stop_replay_buffer()
                stopped.append("replay buffer")
            return f"stopped {', '.join(stopped)}" if stopped else "nothing was running"

        def on_rec(action: Callable[[ObsSupervisor], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
            async def call() -> T:
                assert rec is not None  # the step is skipped when OBS_REC is missing
                return await action(rec)
            return call

        name = recording_name(state, run.trigger.match_number)
        await run.step("folder", make_folder)
        await run.step("stop_previous", stop_previous, down)
        await run.step("record_folder", on_rec(lambda r: r.async_set_record_folder(str(folder.resolve()))), down)
        await run.step("file_name", on_rec(lambda r: r.async_set_profile_parameter("Output", "FilenameFormatting", name)),
                       down)
        await run.step("replay_length", on_rec(lambda r: r.async_set_replay_buffer_seconds(cfg_seconds)), down)
        async def start(action: Callable[[], Awaitable[T]]) -> T:
            try:
                return await action()
            except ObsError:
                full = self.obs.check_disk(folder)
                if full is not None:
                    raise ObsError(full) from None
                raise

        wait = self.config.step_timeout_seconds
        log.recording_path = await run.step(
            "start_recording", on_rec(lambda r: start(partial(r.async_start_record, wait))), down)
        await run.step("start_replay_buffer", on_rec(lambda r: start(partial(r.async_start_replay_buffer, wait))), down)

    async def _async_replay(self, run: _Run, log: TriggerLog) -> None:
        state = self.store.match_state
        log.blue, log.red = _corner(state.blue), _corner(state.red)
        rec, streamer = self.obs.rec, self.obs.str
        cfg = self.config
        saved_at: list[int] = []

        async def save() -> str:
            assert rec is not None
            if not rec.snapshot.replay_buffer:
                raise ObsError("the replay buffer is not running (no match started since OBS came up?)")
            started = self._buffer_started_ms
            asked = time.time()
            try:
                path = await rec.async_save_replay_buffer(min(SAVED_EVENT_SECONDS, cfg.step_timeout_seconds))
            except ObsUnavailable:
                raise
            except ObsError as exc:
                # OBS 29 was seen writing a clip without saying so (no ReplayBufferSaved): ask it.
                found = await _async_saved_clip(rec, asked, cfg.step_timeout_seconds - SAVED_EVENT_SECONDS)
                if found is None:
                    # ... and then saving nothing more: a restart of the buffer brings it back.
                    with contextlib.suppress(ObsError):
                        await rec.async_stop_replay_buffer()
                        await rec.async_start_replay_buffer()
                    raise ObsError(f"{exc}; the replay buffer was restarted for the next challenge") from None
                logger.warning("OBS rec wrote the clip without saying so (no ReplayBufferSaved); found it by asking")
                path = found
            saved_at.append(now_ms())
            log.clip_span = clip_span(saved_at[0], cfg.replay_buffer_seconds, started)
            return path

        saved = await run.step("save_clip", save, _down(rec, "OBS_REC"))
        no_clip = None if saved else "no clip was saved"

        async def move() -> str:
            assert saved is not None
            folder = (self.folder or cfg.videos_root / "No tournament day") / IVR_FOLDER
            folder.mkdir(parents=True, exist_ok=True)
            source = Path(saved)
            target = folder / clip_name(run.trigger.match_number, saved_at[0], source.suffix or ".mkv")
            try:
                os.replace(source, target)
            except OSError:  # another file system
                await asyncio.to_thread(shutil.move, source, target)
            log.clip_path, log.clip_bytes = str(target), target.stat().st_size
            return str(target)

        clip = await run.step("move_clip", move, no_clip)
        no_clip = None if clip else no_clip or "the clip could not be moved"

        async def play() -> str:
            assert clip is not None
            position = await self.player.async_open(Path(clip), cfg.start_before_end_seconds, cfg.step_timeout_seconds)
            return f"playing at {position:.1f} s"

        await run.step("open_player", play, no_clip)
        await run.step("ivr_scene", partial(self._async_scene, streamer, "ivr"), _down(streamer, "OBS_STR"))
        self.on_air = self.obs.ivr_active = True
        await run.step("announce", partial(self._async_announce, "started", log), self._no_publisher())
        if clip is not None and log.clip_span is not None:
            span: ClipSpan = log.clip_span
            log.linked_events = await run.step(
                "link_events", lambda: self.obs.run_db(partial(link_clip, self.store.conn, span, clip))
            )
        else:
            await run.step("link_events", _nothing, no_clip)

    async def _async_review_over(self, run: _Run, log: TriggerLog) -> None:
        rec, streamer = self.obs.rec, self.obs.str
        self.on_air = self.obs.ivr_active = False
        await run.step("announce", partial(self._async_announce, "ended", log), self._no_publisher())
        await run.step("live_scene", partial(self._async_scene, streamer, "live"), _down(streamer, "OBS_STR"))

        async def buffer_running() -> str:
            assert rec is not None
            if rec.snapshot.replay_buffer:
                return "already running"
            await rec.async_start_replay_buffer()
            return "started again"

        await run.step("replay_buffer", buffer_running, _down(rec, "OBS_REC"))

        async def close_player() -> str:
            on_air = self.player.is_open
            await self.player.async_close()
            await self.player.async_prepare(self.config.step_timeout_seconds)  # ready for the next review
            return "closed" if on_air else "no clip was on air"

        await run.step("close_player", close_player)
        result = run.trigger.challenge_result
        if result is not None:
            match = run.trigger.match_uuid
            await run.step("challenge_result", lambda: self.obs.run_db(
                partial(set_challenge_result, self.store.conn, match, result)))

    async def _async_scene(self, sup: ObsSupervisor | None, which: str) -> str:
        assert sup is not None
        cfg = self.obs.config.str
        scene = cfg.ivr_scene if which == "ivr" else cfg.live_scene
        if sup.snapshot.current_scene == scene:
            return f"{scene} already on air"
        await sup.async_call_until(
            "SetCurrentProgramScene", {"sceneName": scene}, "CurrentProgramSceneChanged",
            lambda data: data.get("sceneName") == scene, self.config.step_timeout_seconds,
        )
        return scene

    def _no_publisher(self) -> str | None:
        return None if self.publish is not None else "no publisher (the master is not told)"

    async def _async_announce(self, state: Literal["started", "ended"], log: TriggerLog) -> None:
        assert self.publish is not None
        t = log.trigger
        self.publish(IvrNotice(
            node_id=self.store.node_id, court=self.court, state=state,
            at_ms=now_ms(), match_uuid=t.match_uuid, match_number=t.match_number, challenge_by=t.challenge_by,
            challenge_result=t.challenge_result, clip=Path(log.clip_path).name if log.clip_path else None,
        ))


async def _nothing() -> Any:
    return None


async def _async_saved_clip(rec: ObsSupervisor, asked: float, timeout: float) -> str | None:
    """The clip OBS wrote after ``asked`` (``GetLastReplayBufferReplay``, a file on this machine
    whose size has stopped growing), or None when none appears within ``timeout``."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while time.monotonic() < deadline:
        try:
            path = Path(str((await rec.async_request("GetLastReplayBufferReplay")).get("savedReplayPath") or ""))
            first = path.stat()
            if path.name and first.st_mtime >= asked - 0.5:
                await asyncio.sleep(0.2)
                if path.stat().st_size == first.st_size:
                    return str(path)
        except (ObsError, OSError):
            pass
        await asyncio.sleep(0.25)
    return None
