"""The replay player: mpv (or a player speaking its JSON IPC) showing a clip from a set position.

mpv is kept started and idle (no window, no file) so that a challenge only has to load the
clip: starting the program costs more than half a second, loading a file a few tens of
milliseconds. A clip is on air when mpv reports a playback position for it, asked over its
IPC socket. Ending a review unloads the clip (the window goes, the player stays ready). The
operator ends a review by closing the player's window: mpv exits, ``on_closed`` says so, and a
fresh idle player is started for the next review. POSIX only for now (mpv's IPC on Windows is
a named pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.lifecycle import log_task_failure

__all__ = ["Player", "PlayerError"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.005


class PlayerError(Exception):
    """The player could not be started or did not answer."""


class Player:
    """One player process, started ahead of need; load a clip, ask where it is, unload it."""

    def __init__(self, executable: str, arguments: list[str]):
        self.executable = executable
        self.arguments = arguments
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._quitting = False
        self._folder: Path | None = None
        self._closed_listeners: list[Callable[[], None]] = []
        self._starting: asyncio.Lock | None = None
        #: The clip on air, if any.
        self.clip: Path | None = None

    def on_closed(self, listener: Callable[[], None]) -> None:
        """Hear when the operator closes the player while a clip is on air (not when we unload it)."""
        self._closed_listeners.append(listener)

    @property
    def is_open(self) -> bool:
        """A clip is on air."""
        return self.clip is not None and self._running

    @property
    def _running(self) -> bool:
        return self._process is not None and self._process.returncode is None and self._writer is not None

    async def async_prepare(self, timeout: float = 10.0) -> None:
        """Start the idle player now (if it is not running), so the next clip only needs loading."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._running:
                return
            await self._async_spawn(timeout)

    async def async_open(self, clip: Path, seconds_before_end: float, timeout: float) -> float:
        """Show ``clip`` from that many seconds before its end; returns the position once it plays."""
        try:
            async with asyncio.timeout(timeout):
                await self.async_prepare(timeout)
                # An option set now applies to the next file; as a property it works on every mpv version.
                await self._async_command(["set_property", "start", f"-{seconds_before_end:g}"])
                await self._async_command(["loadfile", str(clip), "replace"])
                self.clip = clip
                while True:
                    if not self._running:
                        raise PlayerError(f"{self.executable} exited while opening {clip.name}")
                    if await self.async_get("path") == str(clip):
                        position = await self.async_get("time-pos")
                        if position is not None:
                            return float(position)
                    await asyncio.sleep(POLL_SECONDS)
        except TimeoutError:
            self.clip = None
            raise PlayerError(f"{self.executable} did not start playing {clip.name} within {timeout:.0f} s") from None
        except PlayerError:
            self.clip = None
            raise

    async def async_get(self, prop: str) -> Any:
        """A player property (``time-pos``, ``duration``, ``path``...), or None while it has none."""
        reply = await self._async_command(["get_property", prop])
        return reply.get("data") if reply.get("error") == "success" else None

    async def async_close(self) -> None:
        """Take the clip off air: unloaded, the player idle and ready again; no ``on_closed`` for this."""
        clip, self.clip = self.clip, None
        if clip is not None and self._running:
            with contextlib.suppress(PlayerError):
                await self._async_command(["stop"])

    async def async_shutdown(self, timeout: float = 3.0) -> None:
        """Quit the player for good (killed if it does not quit in time)."""
        self.clip = None
        self._quitting = True
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            if self._writer is not None:
                with contextlib.suppress(OSError):
                    self._writer.write(b'{"command": ["quit"]}\n')
                    await self._writer.drain()
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        await self._async_release()

    # --- the process and its IPC --------------------------------------------------------------

    async def _async_spawn(self, timeout: float) -> None:
        await self._async_release()
        if shutil.which(self.executable) is None:
            raise PlayerError(f"player {self.executable!r} is not installed or not on PATH")
        self._folder = Path(tempfile.mkdtemp(prefix="restrike-player-"))
        socket_path = self._folder / "ipc.sock"
        self._quitting = False
        process = self._process = await asyncio.create_subprocess_exec(
            self.executable, *self.arguments, "--idle=yes", f"--input-ipc-server={socket_path}",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if process.returncode is not None:
                        raise PlayerError(f"{self.executable} exited with {process.returncode} at start")
                    with contextlib.suppress(FileNotFoundError, ConnectionRefusedError):
                        reader, self._writer = await asyncio.open_unix_connection(str(socket_path))
                        break
                    await asyncio.sleep(POLL_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise PlayerError(f"{self.executable} did not open its IPC socket within {timeout:.0f} s") from None
        self._reader_task = asyncio.create_task(self._async_read(reader, process), name="player-ipc")
        self._reader_task.add_done_callback(log_task_failure(logger))

    async def _async_release(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    async def _async_command(self, command: list[Any], timeout: float = 2.0) -> dict[str, Any]:
        if self._writer is None:
            raise PlayerError("the player is not running")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(json.dumps({"command": command, "request_id": request_id}).encode() + b"\n")
            await self._writer.drain()
            async with asyncio.timeout(timeout):
                reply: dict[str, Any] = await future
        except (OSError, TimeoutError) as exc:
            raise PlayerError(f"the player did not answer {command[0]}: {exc or 'timeout'}") from None
        finally:
            self._pending.pop(request_id, None)
        if command[0] not in ("get_property",) and reply.get("error") != "success":
            raise PlayerError(f"the player refused {command[0]}: {reply.get('error')}")
        return reply

    async def _async_read(self, reader: asyncio.StreamReader, process: asyncio.subprocess.Process) -> None:
        """Answers to our requests; the end of the stream (or a reset) is the player going away."""
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                future = self._pending.get(message.get("request_id", 0))
                if future is not None and not future.done():
                    future.set_result(message)
        except (OSError, ValueError) as exc:  # reset by a player that died, or an endless line
            logger.debug("Player IPC ended: %s", exc)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PlayerError("the player closed"))
        with contextlib.suppress(ProcessLookupError):
            await process.wait()
        if self._quitting or process is not self._process:
            return
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        on_air, self.clip = self.clip, None
        if on_air is None:
            logger.warning("The idle replay player exited (code %s); it is started again for the next review",
                           process.returncode)
            return
        logger.info("The replay player was closed")
        for listener in self._closed_listeners:
            try:
                listener()
            except Exception:
                logger.exception("A player-closed listener failed")
