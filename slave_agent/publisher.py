"""ZeroMQ on the slave: PUB for live events and heartbeats, ROUTER for catch-up and acks.

Publishing never slows ingest: PUB drops when a subscriber is away or slow, and the
master recovers whatever it missed from the ROUTER (the Clone pattern, zguide ch. 5).
Catch-up reads run on their own SQLite connection and thread, never the writer's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import zmq
import zmq.asyncio

from restrike import __version__
from restrike.lifecycle import log_task_failure
from restrike.logs import level_for_repeat
from shared.records import EventRecord
from shared.wire import (
    TOPIC_EVENT,
    TOPIC_HEARTBEAT,
    Ack,
    CatchupPage,
    CatchupRequest,
    EventMessage,
    Health,
    Heartbeat,
    ObsStatus,
    WireError,
    decode,
    encode,
)
from slave_agent.db.store import EventStore, connect, read_page

__all__ = ["CourtStatus", "Publisher", "PublisherStats"]

logger = logging.getLogger(__name__)

PUB_HWM = 100_000
#: Catch-up pages stay far below the wire's message limit, whatever the datagrams' size.
PAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CourtStatus:
    """What the rest of the agent tells each heartbeat: ingest counters, the match, OBS."""

    received: int = 0
    dropped: int = 0
    match: dict[str, object] | None = None
    obs: ObsStatus = field(default_factory=ObsStatus)


@dataclass(slots=True)
class PublisherStats:
    published: int = 0
    heartbeats: int = 0
    catchup_requests: int = 0
    catchup_events: int = 0
    bad_messages: int = 0
    acked_epoch: str | None = None
    acked_seq: int = 0


class Publisher:
    """Binds PUB and ROUTER for one court and serves them until stopped."""

    def __init__(
        self,
        store: EventStore,
        *,
        court: str,
        host: str = "0.0.0.0",
        pub_port: int = 5570,
        router_port: int = 5571,
        heartbeat_seconds: float = 1.0,
        status: Callable[[], CourtStatus] | None = None,
    ):
        self.store = store
        self.court = court
        self.host = host
        self.heartbeat_seconds = heartbeat_seconds
        self.status = status or CourtStatus
        self.stats = PublisherStats()
        self.ctx = zmq.asyncio.Context()
        self.pub = self.ctx.socket(zmq.PUB)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.pub.setsockopt(zmq.SNDHWM, PUB_HWM)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.LINGER, 0)
        self.pub_port = self._bind(self.pub, pub_port, "PUB")
        self.router_port = self._bind(self.router, router_port, "ROUTER")
        # A plain view of the PUB socket: a send either happens now or raises, nothing to await.
        self._pub_now = zmq.Socket.shadow(self.pub.underlying)
        self._reader: sqlite3.Connection | None = None
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catchup-reader")
        self._tasks: list[asyncio.Task[None]] = []
        self._hostname = socket.gethostname()
        #: Heartbeats announce this, not the store's last seq: every event up to it went out on
        #: the same PUB socket before the heartbeat, so a master that lacks one really lost it.
        self.last_published_seq = store.last_seq
        psutil.cpu_percent(interval=None)  # prime: the first call has nothing to compare with

    def _bind(self, sock: zmq.asyncio.Socket, port: int, name: str) -> int:
        try:
            if port == 0:
                return sock.bind_to_random_port(f"tcp://{self.host}")
            sock.bind(f"tcp://{self.host}:{port}")
        except zmq.ZMQError as exc:
            self.ctx.destroy(linger=0)
            raise OSError(f"cannot bind the ZeroMQ {name} socket on {self.host}:{port}: {exc}") from None
        return port

    def publish(self, records: list[EventRecord]) -> None:
        """Post-commit listener: one PUB message per event; never blocks."""
        for record in records:
            try:
                self._pub_now.send_multipart([TOPIC_EVENT, encode(EventMessage(record=record))], zmq.NOBLOCK)
            except zmq.Again:  # PUB drops rather than blocks; the master's catch-up repairs it
                continue
            self.stats.published += 1
        if records:
            self.last_published_seq = records[-1].seq

    async def async_start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._async_heartbeats(), name="heartbeat"),
            asyncio.create_task(self._async_serve_router(), name="router"),
        ]
        for task in self._tasks:
            task.add_done_callback(log_task_failure(logger))
        logger.info("Publishing on tcp://%s:%d (PUB) and :%d (ROUTER)", self.host, self.pub_port, self.router_port)

    async def async_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._read_executor.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()
        self.ctx.destroy(linger=0)

    def heartbeat(self) -> Heartbeat:
        """The heartbeat as it would be sent now."""
        day = self.store.day
        try:
            disk = psutil.disk_usage(str(Path(self.store.path).parent)).free
        except OSError:
            disk = 0
        status = self.status()
        return Heartbeat(
            node_id=self.store.node_id,
            court=self.court,
            hostname=self._hostname,
            version=__version__,
            epoch=self.store.epoch,
            last_seq=self.last_published_seq,
            sent_ms=time.time_ns() // 1_000_000,
            pub_port=self.pub_port,
            router_port=self.router_port,
            interval_seconds=self.heartbeat_seconds,
            health=Health(
                cpu_percent=psutil.cpu_percent(interval=None),
                memory_percent=psutil.virtual_memory().percent,
                disk_free_bytes=disk,
            ),
            obs=status.obs,
            match=status.match,
            received=status.received,
            dropped=status.dropped,
            tournament_uuid=day.tournament_uuid if day else None,
            tournament_name=day.tournament_name if day else None,
            tournament_day_uuid=day.day_uuid if day else None,
            day_number=day.day_number if day else None,
            day_date=day.date if day else None,
        )

    async def _async_heartbeats(self) -> None:
        while True:
            try:
                self._pub_now.send_multipart([TOPIC_HEARTBEAT, encode(self.heartbeat())], zmq.NOBLOCK)
                self.stats.heartbeats += 1
            except zmq.Again:
                pass
            except Exception:  # health probes and extras are best effort; the heartbeat must go on
                logger.exception("Could not build a heartbeat; trying again in %.1f s", self.heartbeat_seconds)
            await asyncio.sleep(self.heartbeat_seconds)

    async def _async_serve_router(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frames = await self.router.recv_multipart()
            if len(frames) != 2:
                self._bad(f"expected 2 frames, got {len(frames)}")
                continue
            identity, payload = frames
            try:
                message = decode(payload)
            except WireError as exc:
                self._bad(str(exc))
                continue
            if isinstance(message, CatchupRequest):
                try:
                    page = await loop.run_in_executor(self._read_executor, self._page, message)
                except sqlite3.Error:  # the master's request timeout asks again
                    logger.exception("Could not read catch-up page after seq %d", message.after_seq)
                    continue
                self.stats.catchup_requests += 1
                self.stats.catchup_events += len(page.records)
                await self.router.send_multipart([identity, encode(page)])
            elif isinstance(message, Ack):
                self.stats.acked_epoch, self.stats.acked_seq = message.epoch, message.seq
            else:
                self._bad(f"unexpected {message.type!r} on the ROUTER")

    def _page(self, request: CatchupRequest) -> CatchupPage:
        """Runs on the reader thread with its own connection (WAL: reads never block the writer)."""
        if self._reader is None:
            self._reader = connect(self.store.path)
        epoch = self.store.epoch
        last_seq = self.store.last_seq
        after = request.after_seq if request.epoch == epoch else 0
        records = read_page(self._reader, epoch, after, request.limit, max_bytes=PAGE_BYTES)
        done = not records or records[-1].seq >= last_seq
        return CatchupPage(request_id=request.request_id, epoch=epoch, last_seq=last_seq, records=records, done=done)

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        logger.log(level_for_repeat(self.stats.bad_messages), "Ignored a message on the ROUTER: %s", reason)
