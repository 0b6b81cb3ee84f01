"""Replay clips served to the master in chunks, from the court's clip folders only.

The master asks for a clip chunk by chunk over the ROUTER (``file_request`` -> ``file_chunk``,
the zguide's file-transfer pattern): it holds the credit, the court only answers. Each chunk is
read on this module's own thread, so a slow disk never holds up ingest, heartbeats or catch-up
pages. A path outside ``<videos root>/.../IVR recordings/`` (after resolving ``..`` and
symlinks) is refused, counted and logged, whoever asks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from runtime.logs import level_for_repeat
from shared.wire import FileChunk, FileError, FileRequest, Message, encode
from slave_agent.obs.triggers import IVR_FOLDER

__all__ = ["ClipServer", "ClipServerStats", "NotAClip", "resolve_clip"]

logger = logging.getLogger(__name__)

#: Chunk reads queued at once, all masters together; beyond that a request is answered ``busy``.
MAX_PENDING = 32
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class NotAClip(Exception):
    """The path is not a file of this court's clip folders (the message says why)."""


def resolve_clip(videos_root: Path, requested: str) -> Path:
    """The real path of a clip, ``..`` and symlinks resolved; raises :class:`NotAClip` otherwise.

    A clip lies below ``videos_root`` and directly in a folder named ``IVR recordings``. A
    relative path is taken as the agent stored it (from its working folder, like a relative
    ``videos_root``), else from ``videos_root``. The check is made on the resolved path before
    the file is looked at, so a refused request learns nothing about what exists elsewhere.
    """
    root = videos_root.resolve()
    reason = ""
    for candidate in [requested] if Path(requested).is_absolute() else [Path.cwd() / requested, root / requested]:
        try:
            real = Path(candidate).resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
            raise NotAClip(f"not a usable path ({exc})") from None
        if not real.is_relative_to(root):
            reason = f"outside the videos folder {root}"
        elif real.parent.name != IVR_FOLDER:
            reason = f"not in an {IVR_FOLDER!r} folder"
        else:
            return real
    raise NotAClip(reason)


@dataclass(slots=True)
class ClipServerStats:
    chunks: int = 0
    bytes_sent: int = 0
    refused: int = 0
    not_found: int = 0
    busy: int = 0
    unreadable: int = 0


class ClipServer:
    """Answers ``file_request`` messages with chunks of the court's clips; never blocks the loop.

    ``reply(identity, payload)`` sends on the ROUTER at once (the publisher's
    :meth:`~slave_agent.publisher.Publisher.reply`); a chunk whose master has gone is dropped
    there and asked for again by the master.
    """

    def __init__(self, videos_root: Path, reply: Callable[[bytes, bytes], None], *, max_pending: int = MAX_PENDING):
        self.videos_root = videos_root
        self.reply = reply
        self.max_pending = max_pending
        self.stats = ClipServerStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-reader")
        self._pending: set[asyncio.Future[FileChunk]] = set()
        self._last_logged: tuple[str, str] | None = None
        self._stopped = False

    def handle(self, identity: bytes, message: Message) -> None:
        """A ROUTER handler: queue the read and return; the chunk is sent when it has been read."""
        assert isinstance(message, FileRequest)
        if self._stopped:
            return
        if len(self._pending) >= self.max_pending:
            self.stats.busy += 1
            self._send(identity, _failed(message, "busy", f"{self.max_pending} chunk reads already queued"))
            return
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._read, message)
        self._pending.add(future)
        future.add_done_callback(lambda done: self._on_read(identity, message, done))

    async def async_stop(self) -> None:
        """Answer no more requests; reads under way finish unsent (the master asks again)."""
        self._stopped = True
        for future in self._pending:
            future.cancel()
        await asyncio.to_thread(self._executor.shutdown, True)

    def _on_read(self, identity: bytes, request: FileRequest, done: asyncio.Future[FileChunk]) -> None:
        self._pending.discard(done)
        if done.cancelled() or self._stopped:
            return
        error = done.exception()
        if error is not None:  # a bug, not the disk: say so, and tell the master this chunk is unreadable
            logger.error("Reading clip %r failed", request.path, exc_info=error)
            self._send(identity, _failed(request, "unreadable", f"internal error: {error}"))
            return
        self._send(identity, done.result())

    def _send(self, identity: bytes, chunk: FileChunk) -> None:
        if chunk.error is None:
            self.stats.chunks += 1
            self.stats.bytes_sent += len(chunk.data)
        self.reply(identity, encode(chunk))

    def _read(self, request: FileRequest) -> FileChunk:
        """Runs on the reader thread: check the path, then read one chunk."""
        try:
            path = resolve_clip(self.videos_root, request.path)
        except NotAClip as exc:
            return self._refuse(request, str(exc))
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
        except FileNotFoundError:
            self.stats.not_found += 1
            self._log_once("not_found", request.path, "The master asked for clip %r, which does not exist")
            return _failed(request, "not_found", f"no clip {request.path} on this court")
        except OSError as exc:
            return self._unreadable(request, exc)
        with open(fd, "rb", closefd=True) as file:
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    return self._refuse(request, "not a regular file")
                file.seek(request.offset)
                data = file.read(request.size) if request.offset < info.st_size else b""
            except OSError as exc:
                return self._unreadable(request, exc)
        total = max(info.st_size, request.offset + len(data))  # the file grew while read: never claim less
        return FileChunk(
            request_id=request.request_id, offset=request.offset, data=data, total_size=total,
            mtime_ns=info.st_mtime_ns, eof=request.offset + len(data) >= total,
        )

    def _refuse(self, request: FileRequest, reason: str) -> FileChunk:
        self.stats.refused += 1
        logger.log(
            level_for_repeat(self.stats.refused), "Refused a request for %r: %s (%d refused so far)",
            request.path, reason, self.stats.refused,
        )
        return _failed(request, "refused", f"{request.path} is not a replay clip of this court: {reason}")

    def _unreadable(self, request: FileRequest, exc: OSError) -> FileChunk:
        self.stats.unreadable += 1
        self._log_once("unreadable", request.path, f"Cannot read clip %r: {exc.strerror or exc}")
        return _failed(request, "unreadable", f"cannot read {request.path} on the court: {exc.strerror or exc}")

    def _log_once(self, kind: str, path: str, message: str) -> None:
        """One line per clip and problem, not one per chunk of the master's window."""
        if self._last_logged != (kind, path):
            self._last_logged = (kind, path)
            logger.warning(message, path)


def _failed(request: FileRequest, error: FileError, detail: str) -> FileChunk:
    return FileChunk(request_id=request.request_id, offset=request.offset, error=error, detail=detail[:500])
