"""Replay clips fetched from the courts on demand, cached, and made playable in a browser.

Clips live on the court laptops. The master fetches one over the link it already holds to the
court (DEALER -> ROUTER) with the zguide's file-transfer pattern (ch. 7, "Transferring Files"):
it asks for chunks at offsets and keeps a few requests in flight, its credit. The court reads
only what is asked for, a slow master slows the transfer instead of filling memory, and a
transfer can start at any offset. Chunks are appended in order to a partial file of the cache
(:mod:`master.clip_cache`), so a transfer cut by a court outage or a master restart resumes
from the bytes already here; the complete clip is renamed into place once its size is right.
:meth:`ClipFetcher.playable` remuxes a clip with ffmpeg (``-c copy``: never re-encoded) into an
MP4 with its index up front, which Chromium plays in a ``<video>`` element.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar

import zmq
import zmq.asyncio

from master.clip_cache import ClipCache, ClipFiles, ClipMeta
from runtime.curve import KeyPair, secure_client
from runtime.lifecycle import spawn
from runtime.logs import level_for_repeat
from shared.wire import FileChunk, FileRequest, Message, WireError, decode, encode

__all__ = [
    "Channel",
    "ClipError",
    "ClipFetcher",
    "ClipNotFound",
    "ClipRefused",
    "ClipStats",
    "ClipTransferFailed",
    "CourtChannel",
    "CourtOffline",
    "Progress",
    "RemuxFailed",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK_BYTES = 256 * 1024
#: Chunks in flight per transfer (the credit): enough to keep a LAN busy, 2 MB of memory at most.
WINDOW = 8
#: A chunk request unanswered this long is sent again.
CHUNK_TIMEOUT_S = 3.0
#: Nothing received for this long: the court is taken as offline and the fetch fails (resumable).
STALL_TIMEOUT_S = 15.0
BUSY_RETRY_S = 0.2
REMUX_TIMEOUT_S = 120.0
#: Longest wait for another process (``restrike master clip fetch``) fetching the same clip.
LOCK_WAIT_S = 300.0
DEFAULT_CACHE_BYTES = 5 * 2**30

#: ``progress(bytes_here, total_bytes)`` after each chunk written.
Progress = Callable[[int, int], None]


class ClipError(Exception):
    """A clip could not be fetched or made playable; the message says why, in an operator's words."""


class CourtOffline(ClipError):
    """The court is not linked, offline, or stopped answering (the bytes received so far are kept)."""


class ClipNotFound(ClipError):
    """The court has no such clip (any partial copy here is dropped)."""


class ClipRefused(ClipError):
    """The court refuses the path: not a file of its replay clip folders."""


class ClipTransferFailed(ClipError):
    """The court cannot read the clip, or it keeps changing while read."""


class RemuxFailed(ClipError):
    """ffmpeg is missing or could not remux the clip to MP4."""


class Channel(Protocol):
    """Where a court's requests go and its chunks come from: a :class:`~master.links.SlaveLink`
    (the running master) or a :class:`CourtChannel` (a process of its own)."""

    @property
    def name(self) -> str: ...

    @property
    def online(self) -> bool: ...

    def send(self, payload: bytes) -> bool: ...


@dataclass(slots=True)
class ClipStats:
    fetched: int = 0
    cache_hits: int = 0
    resumed: int = 0
    bytes_received: int = 0
    resent: int = 0
    stray_chunks: int = 0
    bad_chunks: int = 0
    remuxed: int = 0


class _Changed(Exception):
    """The clip at the court is not the one the partial file holds (another size or time)."""


@dataclass(slots=True)
class _Fetch:
    task: asyncio.Task[Path]
    listeners: list[Progress] = field(default_factory=list)


class ClipFetcher:
    """Fetches clips from courts into the cache; one transfer per clip, however many ask for it.

    ``channels(node_id)`` gives the court's channel, or ``None`` when the court is unknown.
    Every method runs on the event loop; file I/O goes to one thread of its own.
    """

    def __init__(
        self,
        cache_dir: Path,
        channels: Callable[[str], Channel | None],
        *,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
        window: int = WINDOW,
        chunk_timeout: float = CHUNK_TIMEOUT_S,
        stall_timeout: float = STALL_TIMEOUT_S,
        ffmpeg: str = "ffmpeg",
        remux_timeout: float = REMUX_TIMEOUT_S,
    ):
        self.cache = ClipCache(cache_dir, max_bytes)
        self.channels = channels
        self.chunk_bytes = chunk_bytes
        self.window = window
        self.chunk_timeout = chunk_timeout
        self.stall_timeout = stall_timeout
        self.ffmpeg = ffmpeg
        self.remux_timeout = remux_timeout
        self.stats = ClipStats()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-cache")
        self._fetches: dict[str, _Fetch] = {}
        self._remuxes: dict[str, asyncio.Task[Path]] = {}
        self._inboxes: dict[int, tuple[Channel, asyncio.Queue[FileChunk]]] = {}
        self._ids = itertools.count(1)

    # --- the API ------------------------------------------------------------------------------

    async def fetch_clip(self, node_id: str, path: str, progress: Progress | None = None) -> Path:
        """The clip ``path`` of court ``node_id``, complete in the cache, fetched now if need be.

        Concurrent calls for one clip share one transfer; cancelling a call does not stop it.
        Raises :class:`CourtOffline`, :class:`ClipNotFound`, :class:`ClipRefused` or
        :class:`ClipTransferFailed`; after ``CourtOffline`` the next call resumes the transfer.
        """
        files = self.cache.files(node_id, path)
        fetch = self._fetches.get(files.key)
        if fetch is None:
            task = asyncio.create_task(self._async_fetch(node_id, path, files), name=f"clip-{files.key[:8]}")
            fetch = self._fetches[files.key] = _Fetch(task)
            task.add_done_callback(lambda done: self._fetch_done(files.key, done))
        if progress is not None:
            fetch.listeners.append(progress)
        try:
            return await asyncio.shield(fetch.task)
        finally:
            if progress is not None:
                fetch.listeners.remove(progress)

    async def playable(self, clip: Path) -> Path:
        """An MP4 of a clip returned by :meth:`fetch_clip` that Chromium plays in a ``<video>``.

        Remuxed once (``ffmpeg -c copy -movflags +faststart``: the streams are copied, never
        re-encoded, and the index comes first so playback starts at once), then reused. Raises
        :class:`RemuxFailed`, or ``ValueError`` for a path that is not a clip of this cache.
        """
        files = self.cache.files_of(clip)
        task = self._remuxes.get(files.key)
        if task is None:
            task = asyncio.create_task(self._async_remux(files), name=f"remux-{files.key[:8]}")
            self._remuxes[files.key] = task
            task.add_done_callback(lambda done: self._remux_done(files.key, done))
        return await asyncio.shield(task)

    async def fetch_playable(self, node_id: str, path: str, progress: Progress | None = None) -> Path:
        """:meth:`fetch_clip`, then :meth:`playable`: what the IVR desk's video element needs."""
        return await self.playable(await self.fetch_clip(node_id, path, progress))

    def on_reply(self, channel: Channel, message: Message) -> None:
        """A ``file_chunk`` received from ``channel``: to its transfer (a link's reply handler)."""
        assert isinstance(message, FileChunk)
        inbox = self._inboxes.get(message.request_id)
        if inbox is None or inbox[0] is not channel:
            self.stats.stray_chunks += 1  # a late answer to a transfer that ended
            return
        try:
            inbox[1].put_nowait(message)
        except asyncio.QueueFull:
            self.stats.stray_chunks += 1

    async def async_close(self) -> None:
        """Stop every transfer and remux (partial files stay for the next start)."""
        tasks = [fetch.task for fetch in self._fetches.values()] + list(self._remuxes.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self._io.shutdown, True)

    # --- fetching -----------------------------------------------------------------------------

    def _fetch_done(self, key: str, task: asyncio.Task[Path]) -> None:
        self._fetches.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have gone

    async def _io_call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def _async_fetch(self, node_id: str, path: str, files: ClipFiles) -> Path:
        await self._async_lock(files, path)
        try:
            if await self._io_call(files.complete.exists):
                await self._io_call(self.cache.touch, files)
                self.stats.cache_hits += 1
                return files.complete
            for attempt in range(2):
                try:
                    await self._async_transfer(node_id, path, files)
                    break
                except ClipNotFound:
                    await self._io_call(self.cache.discard, files)
                    raise
                except _Changed:
                    await self._io_call(self.cache.discard_part, files)
                    if attempt:
                        raise ClipTransferFailed(f"{path} keeps changing at the court while it is read") from None
                    logger.info("Clip %s changed at the court since its partial copy was made: fetching it anew", path)
            await self._io_call(self.cache.evict, set(self._fetches) | set(self._remuxes))
            return files.complete
        finally:
            await self._io_call(self.cache.unlock, files)

    async def _async_lock(self, files: ClipFiles, path: str) -> None:
        """One fetching process per clip: another (the CLI, or the master) may be at it already."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while (holder := await self._io_call(self.cache.try_lock, files)) is not None:
            if time.monotonic() > deadline:
                raise ClipTransferFailed(f"process {holder} has been fetching {path} for over {LOCK_WAIT_S:.0f} s")
            logger.debug("Clip %s is being fetched by process %d; waiting", path, holder)
            await asyncio.sleep(0.25)

    def _channel(self, node_id: str) -> Channel:
        channel = self.channels(node_id)
        if channel is None:
            raise CourtOffline(f"court {node_id} is not linked to this master")
        if not channel.online:
            raise CourtOffline(f"court {channel.name} is offline")
        return channel

    async def _async_transfer(self, node_id: str, path: str, files: ClipFiles) -> None:
        channel = self._channel(node_id)
        meta, start = await self._io_call(self.cache.resume_offset, files)
        request_id = next(self._ids)
        inbox: asyncio.Queue[FileChunk] = asyncio.Queue(maxsize=2 * self.window + 2)
        self._inboxes[request_id] = (channel, inbox)
        began = time.monotonic()
        transfer = _Transfer(self, channel, inbox, request_id, node_id, path, files, start)
        try:
            total = await transfer.async_run(meta)
        finally:
            self._inboxes.pop(request_id, None)
            if transfer.out is not None:
                await self._io_call(transfer.out.close)
        await self._io_call(_finish, files, total)
        await self._io_call(self.cache.touch, files)  # just used: last in line for eviction
        elapsed = time.monotonic() - began
        self.stats.fetched += 1
        self.stats.resumed += start > 0
        logger.info(
            "Fetched clip %s from %s: %d bytes in %.2f s (%.1f MB/s)%s", path, channel.name, total, elapsed,
            (total - start) / 2**20 / max(elapsed, 1e-6), f", resumed at byte {start}" if start else "",
        )

    def _report(self, key: str, here: int, total: int) -> None:
        fetch = self._fetches.get(key)
        for listener in list(fetch.listeners) if fetch else ():
            try:
                listener(here, total)
            except Exception:  # a progress display must not break the transfer
                logger.exception("A clip progress listener failed")

    # --- remuxing -----------------------------------------------------------------------------

    def _remux_done(self, key: str, task: asyncio.Task[Path]) -> None:
        self._remuxes.pop(key, None)
        if not task.cancelled():
            task.exception()

    async def _async_remux(self, files: ClipFiles) -> Path:
        if await self._io_call(files.playable.exists):
            await self._io_call(self.cache.touch, files)
            return files.playable
        if not await self._io_call(files.complete.exists):
            raise ValueError(f"{files.complete} is not in the clip cache (fetch it first)")
        tmp = files.folder / f"{files.key}.play.{os.getpid()}.tmp.mp4"
        command = [
            self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(files.complete),
            "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(tmp),
        ]
        began = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise RemuxFailed(f"cannot run {self.ffmpeg!r} ({exc.strerror or exc}): install ffmpeg or set `ffmpeg` in the master's config") from None
        try:
            async with asyncio.timeout(self.remux_timeout):
                _, stderr = await proc.communicate()
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await self._io_call(tmp.unlink, True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise RemuxFailed(f"ffmpeg took over {self.remux_timeout:.0f} s to remux {files.complete.name}") from None
        if proc.returncode != 0:
            await self._io_call(tmp.unlink, True)
            lines = stderr.decode(errors="replace").strip().splitlines()
            raise RemuxFailed(f"ffmpeg could not remux {files.complete.name} to MP4: {lines[-1] if lines else f'exit code {proc.returncode}'}")
        await self._io_call(os.replace, tmp, files.playable)
        await self._io_call(self.cache.touch, files)
        self.stats.remuxed += 1
        logger.info("Remuxed clip %s to MP4 in %.2f s", files.complete.name, time.monotonic() - began)
        await self._io_call(self.cache.evict, set(self._fetches) | set(self._remuxes))
        return files.playable


class _Transfer:
    """One clip's chunks: a probe for the size, then up to ``window`` requests in flight, in-order writes."""

    def __init__(
        self, fetcher: ClipFetcher, channel: Channel, inbox: asyncio.Queue[FileChunk], request_id: int,
        node_id: str, path: str, files: ClipFiles, start: int,
    ):
        self.fetcher = fetcher
        self.channel = channel
        self.inbox = inbox
        self.request_id = request_id
        self.node_id = node_id
        self.path = path
        self.files = files
        self.out: IO[bytes] | None = None  # the partial file, opened when the first chunk is good
        self.here = start  # bytes in the partial file: always a prefix of the clip
        self.next_offset = start
        self.pending: dict[int, float] = {}  # offset -> when asked
        self.held: dict[int, bytes] = {}  # arrived ahead of a missing chunk
        self.last_heard = time.monotonic()

    async def async_run(self, meta: ClipMeta | None) -> int:
        """Fetch from ``here`` to the end of the clip; returns its size.

        The first chunk says the clip's size and time: they must match the partial file's
        metadata (else :class:`_Changed`), or become it before any byte is written.
        """
        f = self.fetcher
        self._ask(self.next_offset)  # alone: learn the size, and whether the court serves this clip at all
        self.next_offset += f.chunk_bytes
        known: tuple[int, int] | None = None
        while known is None or self.here < known[0]:
            chunk = await self._async_next()
            if chunk is None:
                continue
            if chunk.error is not None:
                self._on_error(chunk)
                continue
            if known is None:
                known = chunk.total_size, chunk.mtime_ns
                if meta is None:
                    meta = ClipMeta(node_id=self.node_id, path=self.path, total_size=known[0], mtime_ns=known[1])
                    await f._io_call(f.cache.write_meta, self.files, meta)
                elif (meta.total_size, meta.mtime_ns) != known:
                    raise _Changed
            elif (chunk.total_size, chunk.mtime_ns) != known:
                raise _Changed
            if chunk.offset not in self.pending:
                continue  # a duplicate of a chunk asked for twice
            total = known[0]
            expected = min(f.chunk_bytes, total - chunk.offset)
            if len(chunk.data) != expected:
                f.stats.bad_chunks += 1
                logger.log(level_for_repeat(f.stats.bad_chunks), "Chunk at %d of clip %s has %d bytes, not %d: asking again",
                           chunk.offset, self.path, len(chunk.data), expected)
                continue
            del self.pending[chunk.offset]
            self.held[chunk.offset] = chunk.data
            while len(self.pending) < f.window and self.next_offset < total:  # the credit back first: the
                self._ask(self.next_offset)  # court reads the next chunks while this one is written
                self.next_offset += f.chunk_bytes
            ready: list[bytes] = []
            written = 0
            while self.here + written in self.held:  # every chunk now contiguous, in one write
                ready.append(self.held.pop(self.here + written))
                written += len(ready[-1])
            if not ready:
                continue
            out = self.out
            if out is None:
                out = self.out = await f._io_call(_open_append, self.files.part)
            await f._io_call(out.writelines, ready)
            self.here += written
            f.stats.bytes_received += written
            f._report(self.files.key, self.here, total)
        if self.out is not None:
            await f._io_call(self.out.flush)
        return known[0]

    def _ask(self, offset: int) -> None:
        f = self.fetcher
        self.pending[offset] = time.monotonic()
        self.channel.send(encode(FileRequest(request_id=self.request_id, path=self.path, offset=offset, size=f.chunk_bytes)))

    async def _async_next(self) -> FileChunk | None:
        """The next chunk; meanwhile requests unanswered too long go again. None: look again."""
        f = self.fetcher
        now = time.monotonic()
        due = min(self.pending.values(), default=now) + f.chunk_timeout
        try:
            async with asyncio.timeout(max(0.0, min(due - now, 0.5))):  # unlike wait_for, never loses a cancel
                chunk: FileChunk | None = await self.inbox.get()
        except TimeoutError:
            chunk = None
        now = time.monotonic()
        if chunk is not None:
            self.last_heard = now
        elif not self.channel.online:
            raise CourtOffline(f"court {self.channel.name} went offline during the transfer of {self.path}")
        elif now - self.last_heard > f.stall_timeout:
            raise CourtOffline(f"court {self.channel.name} stopped answering for {f.stall_timeout:.0f} s during the transfer of {self.path}")
        for offset, asked in list(self.pending.items()):
            if now - asked > f.chunk_timeout:
                f.stats.resent += 1
                self._ask(offset)
        return chunk

    def _on_error(self, chunk: FileChunk) -> None:
        detail = chunk.detail or chunk.error
        if chunk.error == "busy":
            if chunk.offset in self.pending:  # ask again shortly, not after the full timeout
                self.pending[chunk.offset] = time.monotonic() - self.fetcher.chunk_timeout + BUSY_RETRY_S
            return
        if chunk.error == "not_found":
            raise ClipNotFound(f"court {self.channel.name}: {detail}")
        if chunk.error == "refused":
            raise ClipRefused(f"court {self.channel.name} refused: {detail}")
        raise ClipTransferFailed(f"court {self.channel.name}: {detail}")


def _open_append(path: Path) -> IO[bytes]:
    return open(path, "ab")


def _finish(files: ClipFiles, total: int) -> None:
    """The I/O thread: the part becomes the clip once its size is right (atomic rename)."""
    size = files.part.stat().st_size
    if size != total:
        files.part.unlink(missing_ok=True)
        raise ClipTransferFailed(f"received {size} bytes of a {total}-byte clip; it will be fetched anew")
    with open(files.part, "rb+") as part:
        os.fsync(part.fileno())
    os.replace(files.part, files.complete)


class CourtChannel:
    """A DEALER of its own to one court's ROUTER, for a process that has no master links (the CLI)."""

    def __init__(
        self, ctx: zmq.asyncio.Context, host: str, router_port: int, name: str,
        client_keys: KeyPair | None = None, server_key: str | None = None,
    ):
        self.name = name
        self.online = True  # not known without heartbeats: the stall timeout decides
        self.dealer = ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        if client_keys is not None and server_key is not None:
            secure_client(self.dealer, client_keys, server_key)
        self.dealer.connect(f"tcp://{host}:{router_port}")
        self._tasks: set[asyncio.Task[None]] = set()
        self.bad_messages = 0

    def send(self, payload: bytes) -> bool:
        """Now or never (False), as :meth:`~master.links.SlaveLink.send`."""
        sent = asyncio.ensure_future(self.dealer.send(payload, zmq.NOBLOCK))
        return not (sent.done() and not sent.cancelled() and sent.exception() is not None)

    def start(self, fetcher: ClipFetcher) -> None:
        spawn(self._tasks, self._async_receive(fetcher), f"clip-channel-{self.name}", logger)

    async def _async_receive(self, fetcher: ClipFetcher) -> None:
        while True:
            frames = await self.dealer.recv_multipart()
            try:
                message = decode(frames[-1])
            except WireError as exc:
                self._bad(str(exc))
                continue
            if isinstance(message, FileChunk):
                fetcher.on_reply(self, message)
            else:
                self._bad(f"unexpected {message.type!r}")

    def _bad(self, reason: str) -> None:
        self.bad_messages += 1
        logger.log(level_for_repeat(self.bad_messages), "Ignored a message from court %s: %s", self.name, reason)

    async def async_close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.dealer.close(linger=0)
