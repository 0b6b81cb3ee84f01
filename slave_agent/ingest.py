"""From the UDP socket to committed rows: a thin receiving edge, a bounded queue, a batch writer.

The socket callback only stamps and queues (nothing blocking on the event loop); the writer
parses and commits whole batches in one worker thread, so a burst costs one transaction.
Subscribers (publisher, match state, OBS triggers) hear about events only after commit.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from runtime.lifecycle import log_task_failure
from runtime.ports import bind_failure
from shared.records import EventRecord
from slave_agent.db.store import Datagram, EventStore, StoreBusy

__all__ = ["IngestStats", "UdpIngest"]

logger = logging.getLogger(__name__)

CommitListener = Callable[[list[EventRecord]], None]
#: Under a steady stream (a commit less than BUSY_SECONDS ago) the writer lingers this long
#: before committing, so a burst pays one fsync instead of one per datagram. A court's usual
#: 5 datagrams/s never lingers; the worst added latency is LINGER_SECONDS.
LINGER_SECONDS = 0.002
BUSY_SECONDS = 0.005
#: Not exported by Python's socket module; 33 on Linux.
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else 0)


@dataclass(slots=True)
class IngestStats:
    """Counters an operator (and the heartbeat) can read; nothing is lost without a count."""

    received: int = 0
    stored_events: int = 0
    committed_batches: int = 0
    dropped_queue_full: int = 0
    unstorable: int = 0
    store_retries: int = 0
    last_error: str | None = None
    started_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, ingest: UdpIngest):
        self.ingest = ingest

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.ingest.accept(data, f"{addr[0]}:{addr[1]}")
        if self.ingest.on_sender is not None:
            self.ingest.on_sender(addr[0], data)

    def error_received(self, exc: Exception) -> None:
        logger.warning("UDP socket error (ingest continues): %s", exc)


class UdpIngest:
    """Owns the UDP endpoint, the queue and the writer task of one court."""

    def __init__(
        self,
        store: EventStore,
        *,
        queue_size: int = 100_000,
        max_batch: int = 1000,
        retry_seconds: float = 0.5,
    ):
        self.store = store
        self.stats = IngestStats()
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self.queue: asyncio.Queue[Datagram] = asyncio.Queue(maxsize=queue_size)
        self.listeners: list[CommitListener] = []
        #: Told the host and bytes of every datagram the socket receives (resync follows new senders).
        self.on_sender: Callable[[str, bytes], None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._transport: asyncio.DatagramTransport | None = None
        self._writer: asyncio.Task[None] | None = None
        self._full_warned = False
        self.address: tuple[str, int] | None = None

    def accept(self, data: bytes, source: str | None, *, resync: bool = False) -> None:
        """Stamp a datagram at receipt and queue it; counted, never silently dropped.

        ``resync`` marks an answer to a pull request (:mod:`slave_agent.resync`).
        """
        self.stats.received += 1
        try:
            self.queue.put_nowait(Datagram(time.time_ns() // 1_000_000, data, source, resync))
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            if not self._full_warned:
                self._full_warned = True
                logger.error(
                    "Ingest queue full (%d datagrams waiting): the database is not keeping up; "
                    "datagrams are being dropped and counted. Check the disk and the log above.",
                    self.queue.maxsize,
                )

    async def async_start(self, host: str, port: int, receive_buffer: int, *, shared_port: bool = False) -> None:
        """Bind the socket and start the writer; must run on the event loop.

        The port is bound exclusively: a second listener would silently take the court's
        datagrams. ``shared_port`` lets other programs listen too, for venues that need it.
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if shared_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: no one may bind over us, even with SO_REUSEADDR
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:  # beyond net.core.rmem_max when the agent may (root or CAP_NET_ADMIN on Linux)
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE or socket.SO_RCVBUF, receive_buffer)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports double
        if granted < receive_buffer:
            logger.warning(
                "UDP receive buffer is %d KiB, not the %d KiB asked for (the system caps it); bursts may be "
                "dropped by the kernel. Raise the cap: sysctl -w net.core.rmem_max=%d",
                granted // 1024, receive_buffer // 1024, receive_buffer,
            )
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise bind_failure(exc.errno, exc.strerror or str(exc), "UDP", host, port, "PSS from the scoring software") from exc
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]
        self._writer = asyncio.create_task(self._async_write_loop(), name="sqlite-batch-writer")
        self._writer.add_done_callback(log_task_failure(logger))
        logger.info("Listening for PSS datagrams on UDP %s:%d", *self.address)
        if shared_port:
            logger.warning(
                "UDP port %d is shared with other programs (udp.shared_port): broadcast datagrams reach every "
                "listener, but a datagram sent to this laptop's own address reaches only one of them; have the "
                "scoring software send to the broadcast address", self.address[1],
            )

    async def async_stop(self, timeout: float = 5.0) -> None:
        """Stop receiving, commit what is queued (bounded by ``timeout``), then stop the writer."""
        if self._transport is not None:
            self._transport.close()
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._drained(), timeout)
            except TimeoutError:
                logger.error(
                    "Shutdown: %d queued datagrams could not be committed within %.0f s",
                    self.queue.qsize(), timeout,
                )
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        self._executor.shutdown(wait=True)

    def _store_each(self, batch: list[Datagram]) -> list[EventRecord]:
        """Writer thread: each datagram alone; one that still fails is stored verbatim and flagged."""
        records: list[EventRecord] = []
        for dgram in batch:
            error: str | None = None
            while True:
                try:
                    if error is None:
                        records += self.store.write_batch([dgram])
                    else:
                        records += self.store.write_unstorable(dgram, error)
                    break
                except StoreBusy:
                    time.sleep(self.retry_seconds)
                except Exception as exc:
                    if error is not None:  # even the flagged row is refused: count it, say so
                        self.stats.unstorable += 1
                        logger.exception("Could not store datagram %r at all", dgram.data[:80])
                        break
                    error = f"stored unparsed: the normal path failed with {type(exc).__name__}: {exc}"
        return records

    async def async_in_writer(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the writer thread, the only thread that touches the store's connection."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _drained(self) -> None:
        await self.queue.join()

    async def _async_write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_commit = -1.0
        while True:
            batch = [await self.queue.get()]
            if loop.time() - last_commit < BUSY_SECONDS:
                # Datagrams are streaming in: wait a moment so one commit (one fsync) takes several.
                await asyncio.sleep(LINGER_SECONDS)
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            records = await self._async_commit(loop, batch)
            last_commit = loop.time()
            for _ in batch:
                self.queue.task_done()
            self.stats.stored_events += len(records)
            self.stats.committed_batches += 1
            for listener in self.listeners:
                try:
                    listener(records)
                except Exception:  # a listener's bug must never stop ingest
                    logger.exception("Post-commit listener %r failed; ingest continues", listener)

    async def _async_commit(self, loop: asyncio.AbstractEventLoop, batch: list[Datagram]) -> list[EventRecord]:
        failures = 0
        while True:
            try:
                records = await loop.run_in_executor(self._executor, self.store.write_batch, batch)
            except StoreBusy as exc:
                failures += 1
                self.stats.store_retries += 1
                self.stats.last_error = str(exc)
                log = logger.error if failures == 1 else logger.debug
                log(
                    "Cannot write to %s (%s); %d events wait in memory and will be retried every "
                    "%.1f s. Free disk space or close the program holding the database.",
                    self.store.path, exc, len(batch) + self.queue.qsize(), self.retry_seconds,
                )
                await asyncio.sleep(self.retry_seconds)
                continue
            except Exception:  # a datagram the normal path cannot store: isolate it, keep the rest
                logger.exception("Storing a batch of %d datagrams failed; storing them one at a time", len(batch))
                records = await loop.run_in_executor(self._executor, self._store_each, batch)
            if failures:
                logger.warning("Database writable again after %d retries; nothing was lost", failures)
                self.stats.last_error = None
            if self._full_warned and self.queue.qsize() < self.queue.maxsize // 2:
                logger.warning(
                    "Ingest queue below half again; %d datagrams were dropped in all (see the error above)",
                    self.stats.dropped_queue_full,
                )
                self._full_warned = False
            return records
