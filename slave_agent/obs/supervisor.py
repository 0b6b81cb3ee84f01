"""One supervisor per OBS connection: serialised requests with timeouts, loss detection, rebuild with back-off.

obsws-python is synchronous and not thread-safe, so every request and every (re)connection
of one OBS runs on that connection's single worker thread; coroutines await them with a
timeout. Events arrive on a reader thread and are handed to the event loop. Loss is seen
three ways (the event reader ends, a keep-alive request fails, OBS announces ``ExitStarted``)
and the pair is rebuilt with back-off. A refused password is said once and not retried
until :meth:`ObsSupervisor.async_reconnect` is called: a retry cannot fix it.

Nothing here ever blocks the event loop or ingest: while OBS is down, requests fail at once
with :class:`ObsUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from runtime.logs import LOUD_REPEATS, level_for_repeat
from slave_agent.obs._connection import (
    AuthenticationFailed,
    Connection,
    ConnectionLost,
    ObsError,
    RequestFailed,
    RequestTimeout,
)

__all__ = [
    "AuthenticationFailed",
    "ConnectionState",
    "ObsError",
    "ObsSnapshot",
    "ObsSupervisor",
    "ObsUnavailable",
    "RequestFailed",
    "RequestTimeout",
]

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 15.0
#: After OBS announced its exit: let it finish before knocking again (a client connecting while
#: OBS tears itself down can crash it, and the next OBS takes a moment to start anyway).
EXIT_GRACE = 3.0
EXIT_REASON = "OBS is shutting down"

#: Output state events and the snapshot field each one drives.
_OUTPUT_EVENTS = {
    "RecordStateChanged": "recording",
    "StreamStateChanged": "streaming",
    "ReplayBufferStateChanged": "replay_buffer",
}


#: Whether an output runs after a state event; the transitions (STARTING, STOPPING, RECONNECTING) change
#: nothing. OBS 29 sends a replay buffer's STARTING *after* its STARTED when the encoder already runs
#: for a recording, with ``outputActive`` false: following ``outputActive`` read a running buffer as off.
_OUTPUT_RUNNING = {
    "OBS_WEBSOCKET_OUTPUT_STARTED": True,
    "OBS_WEBSOCKET_OUTPUT_RESUMED": True,
    "OBS_WEBSOCKET_OUTPUT_PAUSED": True,  # a paused recording is still the same recording
    "OBS_WEBSOCKET_OUTPUT_STOPPED": False,
}


class ObsUnavailable(ObsError):
    """The connection is not up; nothing was sent."""


class ConnectionState(StrEnum):
    DOWN = "down"
    CONNECTING = "connecting"
    UP = "up"


@dataclass(frozen=True, slots=True)
class ObsSnapshot:
    """What one connection knows now: its state with the reason, versions, outputs and scene."""

    name: str
    state: ConnectionState = ConnectionState.DOWN
    reason: str | None = "not started"
    obs_version: str | None = None
    websocket_version: str | None = None
    recording: bool = False
    streaming: bool = False
    replay_buffer: bool = False
    current_scene: str | None = None
    record_path: str | None = None
    since_ms: int = 0
    available_requests: frozenset[str] = frozenset()

    @property
    def up(self) -> bool:
        return self.state is ConnectionState.UP

    @property
    def version(self) -> str | None:
        if self.obs_version is None:
            return None
        return f"OBS {self.obs_version} / websocket {self.websocket_version}"


EventListener = Callable[[str, dict[str, Any]], None]
StateListener = Callable[[ObsSnapshot, ObsSnapshot], None]


class ObsSupervisor:
    """Keeps one OBS connection alive and offers its requests as coroutines (run them on the agent's loop)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        password: Callable[[], str],
        *,
        request_timeout: float = 3.0,
        keepalive_seconds: float = 2.0,
    ):
        self.name = name
        self.host = host
        self.port = port
        self._password = password
        self.request_timeout = request_timeout
        self.keepalive_seconds = keepalive_seconds
        self.snapshot = ObsSnapshot(name)
        self._event_listeners: list[EventListener] = []
        self._state_listeners: list[StateListener] = []
        self._waiters: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"obs-{name}")
        self._conn: Connection | None = None
        self._lost: asyncio.Event | None = None
        self._retry_now: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures = 0
        self._listener_failures = 0
        self._last_request = 0.0

    # --- listeners ---------------------------------------------------------------------

    def on_event(self, listener: EventListener) -> None:
        """Hear every OBS event (type, data) on the event loop; a failing listener is logged, never fatal."""
        self._event_listeners.append(listener)

    def on_state(self, listener: StateListener) -> None:
        """Hear every change of the snapshot as ``(before, after)`` on the event loop."""
        self._state_listeners.append(listener)

    # --- lifecycle ---------------------------------------------------------------------

    async def async_start(self) -> None:
        """Start connecting in the background; returns at once (OBS may be absent)."""
        self._loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._task = asyncio.create_task(self._async_run(), name=f"obs-{self.name}-supervisor")

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            self._conn.abort()  # wakes a request or a connection attempt still on the worker
        await asyncio.to_thread(self._executor.shutdown, True)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._fail_waiters(ObsUnavailable(f"OBS {self.name} supervisor stopped"))
        self._set(state=ConnectionState.DOWN, reason="agent stopping")

    async def async_reconnect(self) -> None:
        """Drop the connection (if any) and try again now, also after a refused password."""
        if self._conn is not None:
            self._mark_lost("reconnect asked for")
        if self._retry_now is not None:
            self._retry_now.set()

    def retry_now(self) -> None:
        """Skip the back-off wait (OBS was just started here); a connection that is up is left alone."""
        if self._retry_now is not None and not self.snapshot.up:
            self._retry_now.set()

    async def async_wait_up(self, timeout: float) -> ObsSnapshot:
        """The snapshot once the connection is up; raises ``TimeoutError``."""
        async with asyncio.timeout(timeout):
            while not self.snapshot.up:
                await asyncio.sleep(0.02)
        return self.snapshot

    # --- requests ----------------------------------------------------------------------

    async def async_request(
        self, request_type: str, data: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """One request, serialised with every other of this connection, answered within ``timeout``.

        Raises :class:`ObsUnavailable` (not connected), :class:`RequestFailed` (OBS refused),
        :class:`RequestTimeout` or :class:`ConnectionLost` (the connection is then rebuilt).
        """
        conn = self._conn
        if conn is None or not self.snapshot.up:
            raise ObsUnavailable(f"OBS {self.name} is {self.snapshot.state.value}: {self.snapshot.reason}")
        loop = asyncio.get_running_loop()
        self._last_request = loop.time()
        try:
            async with asyncio.timeout(timeout or self.request_timeout + 0.5):
                return await loop.run_in_executor(self._executor, conn.request, request_type, data)
        except TimeoutError:
            self._mark_lost(f"no answer to {request_type}")
            raise RequestTimeout(f"OBS {self.name} did not answer {request_type} in time") from None
        except ConnectionLost as exc:
            self._mark_lost(str(exc))
            raise

    def expect(
        self, event_type: str, predicate: Callable[[dict[str, Any]], bool] = lambda _d: True
    ) -> asyncio.Future[dict[str, Any]]:
        """A future for the next ``event_type`` event matching ``predicate``; create it before the request.

        It fails with :class:`ObsUnavailable` if the connection is lost first; cancel it when given up.
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((event_type, predicate, future))
        return future

    async def async_call_until(
        self, request_type: str, data: dict[str, Any] | None, event_type: str,
        predicate: Callable[[dict[str, Any]], bool], timeout: float,
    ) -> dict[str, Any]:
        """Send a request and wait for the event that says it took effect (registered before sending)."""
        waiter = self.expect(event_type, predicate)
        try:
            await self.async_request(request_type, data)
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            raise ObsError(f"OBS {self.name} accepted {request_type} but no {event_type} followed within "
                           f"{timeout:.0f} s") from None
        finally:
            waiter.cancel()

    def has_request(self, request_type: str) -> bool:
        """Whether the connected OBS offers a request (``GetVersion``'s available requests)."""
        return request_type in self.snapshot.available_requests

    # --- typed operations (the court's and the master's commands) -----------------------

    async def async_set_scene(self, scene: str) -> None:
        await self.async_request("SetCurrentProgramScene", {"sceneName": scene})

    async def async_set_input_mute(self, input_name: str, muted: bool) -> None:
        await self.async_request("SetInputMute", {"inputName": input_name, "inputMuted": muted})

    async def async_start_record(self, timeout: float = 10.0) -> str:
        """Start recording; returns the file OBS writes (from ``RecordStateChanged``)."""
        data = await self._async_start_output("StartRecord", "RecordStateChanged", "recording", timeout)
        return str(data.get("outputPath") or "")

    async def async_stop_record(self, timeout: float = 15.0) -> str:
        """Stop recording and wait until the file is complete; returns its path."""
        data = await self.async_call_until(
            "StopRecord", None, "RecordStateChanged", _output_is("OBS_WEBSOCKET_OUTPUT_STOPPED"), timeout
        )
        return str(data.get("outputPath") or "")

    async def async_start_replay_buffer(self, timeout: float = 10.0) -> None:
        await self._async_start_output("StartReplayBuffer", "ReplayBufferStateChanged", "the replay buffer", timeout)

    async def async_stop_replay_buffer(self, timeout: float = 15.0) -> None:
        await self.async_call_until(
            "StopReplayBuffer", None, "ReplayBufferStateChanged", _output_is("OBS_WEBSOCKET_OUTPUT_STOPPED"), timeout
        )

    async def async_save_replay_buffer(self, timeout: float = 10.0) -> str:
        """Save the replay buffer; returns the clip's path once OBS has written it (``ReplayBufferSaved``)."""
        data = await self.async_call_until("SaveReplayBuffer", None, "ReplayBufferSaved", lambda _d: True, timeout)
        return str(data["savedReplayPath"])

    async def async_start_stream(self, timeout: float = 15.0) -> None:
        await self._async_start_output("StartStream", "StreamStateChanged", "streaming", timeout)

    async def _async_start_output(self, request: str, event: str, what: str, timeout: float) -> dict[str, Any]:
        """Start an output and wait until OBS says it runs; an output that stops at once failed to start."""
        data = await self.async_call_until(
            request, None, event, _output_is("OBS_WEBSOCKET_OUTPUT_STARTED", "OBS_WEBSOCKET_OUTPUT_STOPPED"), timeout
        )
        if data.get("outputState") != "OBS_WEBSOCKET_OUTPUT_STARTED":
            hint = ("is the stream server reachable?" if request == "StartStream"
                    else "is the disk full or the folder not writable?")
            raise ObsError(f"OBS {self.name} could not start {what} ({hint} OBS's log says why)")
        return data

    async def async_stop_stream(self, timeout: float = 15.0) -> None:
        await self.async_call_until(
            "StopStream", None, "StreamStateChanged", _output_is("OBS_WEBSOCKET_OUTPUT_STOPPED"), timeout
        )

    async def async_set_record_folder(self, folder: str) -> None:
        """Where the next recording (and replay clip) goes: ``SetRecordDirectory`` where offered, else the profile."""
        if self.has_request("SetRecordDirectory"):
            await self.async_request("SetRecordDirectory", {"recordDirectory": folder})
            return
        mode = await self.async_request("GetProfileParameter", {"parameterCategory": "Output", "parameterName": "Mode"})
        category, name = ("AdvOut", "RecFilePath") if mode.get("parameterValue") == "Advanced" else ("SimpleOutput", "FilePath")
        await self.async_set_profile_parameter(category, name, folder)

    async def async_set_replay_buffer_seconds(self, seconds: int) -> None:
        """The replay buffer's length, taken by OBS when the buffer next starts."""
        mode = await self.async_request("GetProfileParameter", {"parameterCategory": "Output", "parameterName": "Mode"})
        category = "AdvOut" if mode.get("parameterValue") == "Advanced" else "SimpleOutput"
        await self.async_set_profile_parameter(category, "RecRBTime", str(seconds))

    async def async_set_profile_parameter(self, category: str, name: str, value: str) -> None:
        await self.async_request(
            "SetProfileParameter", {"parameterCategory": category, "parameterName": name, "parameterValue": value}
        )

    # --- the connection loop -------------------------------------------------------------

    async def _async_run(self) -> None:
        assert self._lost is not None and self._retry_now is not None
        backoff = BACKOFF_FIRST
        while True:
            self._set(state=ConnectionState.CONNECTING, reason=f"connecting to {self.host}:{self.port}")
            self._lost.clear()
            try:
                await self._async_connect()
            except AuthenticationFailed as exc:
                logger.error(
                    "OBS %s: %s. Not retrying: set the right password in [obs.%s] (or OBS's WebSocket "
                    "settings) and reconnect from the operator page or restart the agent.", self.name, exc, self.name,
                )
                self._set(state=ConnectionState.DOWN, reason=f"authentication failed: {exc}")
                self._retry_now.clear()
                await self._retry_now.wait()
                backoff = BACKOFF_FIRST
                continue
            except ObsError as exc:
                self._failures += 1
                logger.log(
                    level_for_repeat(self._failures), "OBS %s is down (%s); retrying within %.1f s",
                    self.name, exc, backoff,
                )
                self._set(state=ConnectionState.DOWN, reason=str(exc))
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._retry_now.wait()
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            if self._failures:
                logger.warning("OBS %s is back (%s) after %d failed attempts", self.name, self.snapshot.version,
                               self._failures)
            else:
                logger.info("OBS %s connected: %s at %s:%d", self.name, self.snapshot.version, self.host, self.port)
            self._failures = 0
            reason = await self._async_watch()
            logger.warning("OBS %s lost: %s; reconnecting", self.name, reason)
            conn, self._conn = self._conn, None
            self._set(state=ConnectionState.DOWN, reason=reason, recording=False, streaming=False,
                      replay_buffer=False)
            self._fail_waiters(ObsUnavailable(f"OBS {self.name} lost: {reason}"))
            if conn is not None:
                conn.abort()
                await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            if reason == EXIT_REASON:
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(EXIT_GRACE):
                        await self._retry_now.wait()

    async def _async_connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            password = self._password()
        except (OSError, ValueError) as exc:
            raise ObsError(f"cannot read the password: {exc}") from None
        conn = await loop.run_in_executor(self._executor, self._open, password)
        conn.start_events(self._from_reader, self._lost_from_reader)
        try:
            version = await loop.run_in_executor(self._executor, conn.request, "GetVersion", None)
            record = await loop.run_in_executor(self._executor, conn.request, "GetRecordStatus", None)
            stream = await loop.run_in_executor(self._executor, conn.request, "GetStreamStatus", None)
            scene = await loop.run_in_executor(self._executor, conn.request, "GetCurrentProgramScene", None)
            try:
                replay = await loop.run_in_executor(self._executor, conn.request, "GetReplayBufferStatus", None)
            except RequestFailed:  # replay buffer not enabled in this OBS's output settings
                replay = {"outputActive": False}
        except ObsError:
            self._conn = None
            conn.abort()
            await loop.run_in_executor(self._executor, conn.close)
            raise
        self._last_request = loop.time()
        self._set(
            state=ConnectionState.UP, reason=None,
            obs_version=version.get("obsVersion"), websocket_version=version.get("obsWebSocketVersion"),
            available_requests=frozenset(version.get("availableRequests") or ()),
            recording=bool(record.get("outputActive")), streaming=bool(stream.get("outputActive")),
            replay_buffer=bool(replay.get("outputActive")),
            current_scene=scene.get("currentProgramSceneName") or scene.get("sceneName"),
        )

    def _open(self, password: str) -> Connection:
        """Worker thread: the new pair is kept at once, so a stop during the attempt still closes it."""
        conn = Connection(self.host, self.port, password, timeout=self.request_timeout, name=self.name)
        self._conn = conn
        return conn

    async def _async_watch(self) -> str:
        """Until the connection is lost: keep-alive requests when idle; returns the reason of the loss."""
        assert self._lost is not None
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.keepalive_seconds):
                    await self._lost.wait()
            if self._lost.is_set() or self._conn is None:
                return self.snapshot.reason or "connection lost"
            if not self._conn.events_alive():
                self._mark_lost("event reader stopped")
                continue
            if loop.time() - self._last_request >= self.keepalive_seconds:
                with contextlib.suppress(ObsError):  # a failure marks the loss itself
                    await self.async_request("GetVersion")

    def _mark_lost(self, reason: str) -> None:
        if self._lost is None or self._lost.is_set():
            return
        self.snapshot = replace(self.snapshot, reason=reason)
        if self._conn is not None:
            self._conn.abort()  # wakes a request blocked in the worker at once
        self._lost.set()

    # --- events from the reader thread --------------------------------------------------

    def _from_reader(self, kind: str, data: dict[str, Any]) -> None:
        """Reader thread: hand over to the loop, nothing else."""
        self._to_loop(self._dispatch, kind, data)

    def _lost_from_reader(self, reason: str) -> None:
        self._to_loop(self._mark_lost, reason)

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the agent stopped
                self._loop.call_soon_threadsafe(fn, *args)

    def _dispatch(self, kind: str, data: dict[str, Any]) -> None:
        field = _OUTPUT_EVENTS.get(kind)
        running = _OUTPUT_RUNNING.get(data.get("outputState", "")) if field is not None else None
        if field is not None and running is not None:
            changes: dict[str, Any] = {field: running}
            if kind == "RecordStateChanged" and data.get("outputPath"):
                changes["record_path"] = data["outputPath"]
            self._set(**changes)
        elif kind == "CurrentProgramSceneChanged":
            self._set(current_scene=data.get("sceneName"))
        for event_type, predicate, future in list(self._waiters):
            if future.done():
                self._waiters.remove((event_type, predicate, future))
            elif event_type == kind:
                try:
                    matched = predicate(data)
                except Exception:
                    logger.exception("An OBS %s event predicate failed", self.name)
                    matched = False
                if matched:
                    future.set_result(data)
                    self._waiters.remove((event_type, predicate, future))
        for listener in self._event_listeners:
            try:
                listener(kind, data)
            except Exception:
                self._listener_failures += 1
                level = logging.ERROR if self._listener_failures <= LOUD_REPEATS else logging.DEBUG
                logger.log(level, "OBS %s event listener %r failed on %s; events keep flowing", self.name, listener,
                           kind, exc_info=True)
        if kind == "ExitStarted":
            self._mark_lost(EXIT_REASON)

    def _fail_waiters(self, exc: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for _type, _predicate, future in waiters:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here: a waiter nobody awaits any more must not warn

    def _set(self, **changes: Any) -> None:
        before = self.snapshot
        if "state" in changes and changes["state"] is not before.state:
            changes["since_ms"] = time.time_ns() // 1_000_000
        after = replace(before, **changes)
        if after == before:
            return
        self.snapshot = after
        for listener in self._state_listeners:
            try:
                listener(before, after)
            except Exception:
                logger.exception("OBS %s state listener %r failed", self.name, listener)


def _output_is(*states: str) -> Callable[[dict[str, Any]], bool]:
    return lambda data: data.get("outputState") in states
