"""OBS started by the agent (``[obs.<name>.process]``): started, watched, restarted after a crash or on command.

One :class:`ObsProcess` per OBS program the agent owns. A single task starts it, notices when
it exits, and restarts it: after a crash with back-off (the crash is logged and shown in the
heartbeat), on command gracefully (SIGINT lets OBS finish its files; SIGTERM would skip that;
killed after ``stop_timeout_seconds``). OBS counts as started once it listens on its WebSocket
port; the connection's supervisor then reconnects at once instead of waiting out its back-off.

Nothing here blocks the event loop: the program is started on a worker thread and watched by
polling, so ingest never waits for OBS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from runtime.logs import LOUD_REPEATS
from slave_agent.obs.settings import ObsProcessConfig
from slave_agent.obs.supervisor import ObsError

__all__ = ["ObsProcess"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: OBS that ran this long counts as healthy again: the next crash restarts it after BACKOFF_FIRST.
STABLE_SECONDS = 60.0
#: A log of OBS's output that grows beyond this is moved aside (``.1``) at the next start.
LOG_ROTATE_BYTES = 20_000_000


class _NotListening(ObsError):
    """OBS runs but its WebSocket server does not listen (yet): it is watched all the same."""


class _ExitedWhileStarting(ObsError):
    """OBS ended before it listened (no display yet at boot, a broken profile): a crash, restarted with back-off."""


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ObsProcess:
    """One OBS program owned by the agent; connections on its port hear when it (re)started."""

    def __init__(self, name: str, config: ObsProcessConfig, *, port: int, log_path: Path):
        self.name = name
        self.config = config
        self.port = port
        self.log_path = log_path
        #: What is wrong now (cannot start, crashed and waiting to restart), for the heartbeat; None when fine.
        self.problem: str | None = None
        #: A commanded stop is under way: the sessions it ends are not crashes.
        self.stopping_on_purpose = False
        self.crashes = 0
        self.last_crash: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._failed = False
        self._listened = False
        self._listeners: list[Callable[[], None]] = []
        self._requests: asyncio.Queue[asyncio.Future[str]] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def on_started(self, listener: Callable[[], None]) -> None:
        """Hear (on the loop) each time OBS listens on its port after a start."""
        self._listeners.append(listener)

    def describe(self) -> str:
        """One line for the heartbeat: who runs OBS and how it has been."""
        if self.problem is not None:
            return self.problem
        pid = self.pid
        text = f"started by the agent, pid {pid}" if pid else "not running"
        if self.crashes:
            text += f"; {self.crashes} crash{'es' if self.crashes > 1 else ''}, last {self.last_crash}"
        return text

    # --- lifecycle -----------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Start OBS in the background; returns at once (a start that fails is logged and shown)."""
        self._requests = asyncio.Queue()
        self._task = asyncio.create_task(self._async_run(), name=f"obs-{self.name}-process")

    async def async_stop(self) -> None:
        """Close OBS (gracefully, then killed) with the agent: the agent owns it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._requests is not None:
            while not self._requests.empty():
                self._requests.get_nowait().cancel()
        await self._async_close("the agent stops")

    async def async_restart(self) -> str:
        """Close OBS and start it again; returns what happened once it listens, raises :class:`ObsError`."""
        if self._requests is None or self._task is None or self._task.done():
            raise ObsError(f"OBS {self.name} is not run by this agent (it is stopping)")
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait(done)
        return await done

    # --- the task that owns the program --------------------------------------------------------

    async def _async_run(self) -> None:
        assert self._requests is not None
        backoff = BACKOFF_FIRST
        await self._async_try_launch()
        while True:
            if self._failed:  # a start failed in a way a retry cannot fix: a restart command tries again
                await self._async_serve(await self._requests.get())
                continue
            outcome = await self._async_wait_exit_or_request()
            if isinstance(outcome, asyncio.Future):
                await self._async_serve(outcome)
                backoff = BACKOFF_FIRST
                continue
            if time.monotonic() - self._started_at >= STABLE_SECONDS:
                backoff = BACKOFF_FIRST
            self.crashes += 1
            self.last_crash = f"{_exit_text(outcome)} at {_clock()}"
            if not self.config.restart_on_crash:
                self.problem = (f"OBS {self.name} exited by itself ({self.last_crash}); restart_on_crash is off: "
                                "start it with the director's restart OBS command or restart the agent")
                logger.error("%s", self.problem)
                await self._async_serve(await self._requests.get())
                continue
            self.problem = (f"OBS {self.name} exited by itself ({self.last_crash}); the agent starts it again "
                            f"in {backoff:.0f} s (crash {self.crashes}); its output is in {self.log_path}")
            if not self._listened:
                self.problem += f"; it never listened on port {self.port}; its last output: {self._log_tail()}"
            logger.log(logging.ERROR if self.crashes <= LOUD_REPEATS else logging.WARNING, "%s", self.problem)
            request: asyncio.Future[str] | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    request = await self._requests.get()
            backoff = min(backoff * 2, BACKOFF_MAX)
            if request is not None:
                await self._async_serve(request)
            else:
                await self._async_try_launch()

    async def _async_try_launch(self) -> ObsError | None:
        """Start OBS; a failure is logged, shown, and returned. OBS that runs but does not listen is still watched."""
        try:
            await self._async_launch()
        except _ExitedWhileStarting as exc:  # the watch sees the exit: logged there as a crash
            return exc
        except _NotListening as exc:
            self.problem = str(exc)
            logger.error("%s", exc)
            return exc
        except ObsError as exc:
            self._failed = True
            self.problem = str(exc)
            logger.error("%s", exc)
            return exc
        self._failed = False
        return None

    async def _async_wait_exit_or_request(self) -> int | asyncio.Future[str]:
        """OBS's exit code when it ends by itself, or a restart request that came first."""
        assert self._requests is not None and self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                return code
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    return await self._requests.get()

    async def _async_serve(self, request: asyncio.Future[str]) -> None:
        """A restart command: close OBS if it runs, start it, answer with what happened."""
        began = time.monotonic()
        old = self.pid
        await self._async_close("restart asked for")
        failure = await self._async_try_launch()
        if request.done():  # the command gave up waiting
            return
        if failure is not None:
            request.set_exception(ObsError(str(failure)))
            return
        was = f"pid {old} -> {self.pid}" if old else f"it was not running; now pid {self.pid}"
        detail = f"OBS {self.name} restarted ({was}) in {time.monotonic() - began:.1f} s"
        logger.warning("%s on command", detail)
        request.set_result(detail)

    async def _async_close(self, why: str) -> None:
        """SIGINT (OBS finishes its recordings), SIGKILL after ``stop_timeout_seconds``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.stopping_on_purpose = True
        try:
            logger.info("Closing OBS %s (pid %d): %s", self.name, proc.pid, why)
            if os.name == "posix":
                proc.send_signal(signal.SIGINT)
            else:  # no SIGINT for another process on Windows
                proc.terminate()
            deadline = time.monotonic() + self.config.stop_timeout_seconds
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS / 5)
            if proc.poll() is None:
                logger.warning("OBS %s (pid %d) did not close within %.0f s; killed", self.name, proc.pid,
                               self.config.stop_timeout_seconds)
                proc.kill()
                while proc.poll() is None:
                    await asyncio.sleep(POLL_SECONDS / 5)
        finally:
            self.stopping_on_purpose = False

    async def _async_launch(self) -> None:
        """Start OBS and return once it listens on its port; raises :class:`ObsError` saying what to fix."""
        taken = await asyncio.to_thread(self._listener_on_port)
        while taken is not None:  # an OBS not started by this agent: it is used, and ours waits for the port
            self.problem = (f"port {self.port} is taken by {taken} (an OBS left running or started by hand?): "
                            f"the agent connects to it and starts its own OBS {self.name} once it is closed")
            logger.warning("%s", self.problem)
            while taken is not None:
                await asyncio.sleep(2.0)
                taken = await asyncio.to_thread(self._listener_on_port)
        self._listened = False
        await asyncio.to_thread(self._popen)
        assert self._proc is not None
        self._started_at = time.monotonic()
        deadline = self._started_at + self.config.start_timeout_seconds
        while not await asyncio.to_thread(self._listening):
            code = self._proc.poll()
            if code is not None:
                raise _ExitedWhileStarting(f"OBS {self.name} exited while starting ({_exit_text(code)}); the end of its output "
                               f"({self.log_path}): {self._log_tail()}")
            if time.monotonic() > deadline:
                raise _NotListening(
                    f"OBS {self.name} started (pid {self._proc.pid}) but does not listen on port {self.port} after "
                    f"{self.config.start_timeout_seconds:.0f} s: enable its WebSocket server on that port (Tools > "
                    f"WebSocket Server Settings) or add --websocket_port={self.port} to [obs.{self.name}.process] "
                    "arguments"
                )
            await asyncio.sleep(POLL_SECONDS / 2)
        self.problem = None
        self._listened = True
        logger.info("OBS %s started by the agent (pid %d), listening on port %d in %.1f s", self.name,
                    self._proc.pid, self.port, time.monotonic() - self._started_at)
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                logger.exception("OBS %s start listener failed", self.name)

    def _popen(self) -> None:
        """Worker thread: the program is kept at once, so an agent stopping meanwhile still closes it."""
        cfg = self.config
        assert cfg.executable is not None  # CourtObs makes an ObsProcess only for a connection that runs OBS
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        where = f"[obs.{self.name}.process]"
        if cfg.working_dir is not None and not cfg.working_dir.is_dir():
            raise ObsError(f"cannot start OBS {self.name}: working_dir {cfg.working_dir} is not a folder; fix {where}")
        try:
            with self.log_path.open("ab") as log:
                log.write(f"\n==== started by the reStrike agent at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    [cfg.executable, *cfg.arguments], cwd=cfg.working_dir, env={**os.environ, **cfg.environment},
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C in the agent's terminal is the agent's to handle
                )
        except FileNotFoundError:
            raise ObsError(f"cannot start OBS {self.name}: program {cfg.executable!r} not found; set {where} "
                           "executable to OBS's full path (or install OBS)") from None
        except PermissionError:
            raise ObsError(f"cannot start OBS {self.name}: {cfg.executable!r} may not be run by the agent's user; "
                           f"check {where} executable and its permissions") from None
        except OSError as exc:
            raise ObsError(f"cannot start OBS {self.name} ({cfg.executable!r}): {exc.strerror or exc}; "
                           f"check {where}") from None

    def _processes(self) -> list[psutil.Process]:
        """Worker thread: OBS and its children (a launcher script may run the real program)."""
        assert self._proc is not None
        try:
            main = psutil.Process(self._proc.pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def _listening(self) -> bool:
        """Worker thread: our OBS (not another program) listens on the port."""
        for proc in self._processes():
            with contextlib.suppress(psutil.Error):
                if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in proc.net_connections("tcp")):
                    return True
        return False

    def _listener_on_port(self) -> str | None:
        """Worker thread: which other program listens on the port, if one does."""
        try:
            connections = psutil.net_connections("tcp")
        except psutil.Error:
            return None
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == self.port:
                try:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})" if conn.pid else "another program"
                except psutil.Error:
                    return f"pid {conn.pid}"
        return None

    def _log_tail(self, chars: int = 300) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - chars))
                return log.read().decode(errors="replace").strip() or "(nothing)"
        except OSError:
            return "(no output)"
