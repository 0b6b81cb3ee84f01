"""ZeroMQ on the slave: PUB for live events, row changes and heartbeats; ROUTER for catch-up, acks and handlers (clips).

Publishing never slows ingest: PUB drops when a subscriber is away or slow, and the
master recovers whatever it missed from the ROUTER (the Clone pattern, zguide ch. 5).
Catch-up reads run on their own SQLite connection and thread, never the writer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import zmq
import zmq.asyncio

from runtime import __version__
from runtime.lifecycle import log_task_failure
from runtime.logs import level_for_repeat
from runtime.ports import bind_failure
from shared.match_snapshot import MatchSnapshot
from shared.records import EventRecord
from shared.wire import (
    TOPIC_CHANGES,
    TOPIC_EVENT,
    TOPIC_HEARTBEAT,
    TOPIC_IVR,
    Ack,
    CatchupPage,
    CatchupRequest,
    ChangesMessage,
    ChangesPage,
    ChangesRequest,
    EventMessage,
    Health,
    Heartbeat,
    IvrNotice,
    Message,
    ObsStatus,
    WireError,
    decode,
    encode,
)
from slave_agent.db.changes import last_rev, read_changes
from slave_agent.db.store import EventStore, connect, read_page
from slave_agent.security import CourtGuard

__all__ = ["CourtStatus", "Publisher", "PublisherStats"]

logger = logging.getLogger(__name__)

PUB_HWM = 100_000
#: Catch-up pages stay far below the wire's message limit, whatever the datagrams' size.
PAGE_BYTES = 8 * 1024 * 1024
#: How often committed row changes are looked for: they are also written by other processes
#: (``restrike slave session correct``), so the publisher cannot wait to be told.
CHANGE_POLL_SECONDS = 0.2
#: Row changes per PUB message, and messages per look (a day's correction goes out over a few looks).
CHANGES_PER_MESSAGE = 500
CHANGE_MESSAGES_PER_POLL = 20


@dataclass(frozen=True, slots=True)
class CourtStatus:
    """What the rest of the agent tells each heartbeat: ingest counters, the match, OBS."""

    received: int = 0
    dropped: int = 0
    match: MatchSnapshot | None = None
    obs: ObsStatus = field(default_factory=ObsStatus)


@dataclass(slots=True)
class PublisherStats:
    published: int = 0
    changes_published: int = 0
    heartbeats: int = 0
    catchup_requests: int = 0
    catchup_events: int = 0
    changes_requests: int = 0
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
        guard: CourtGuard | None = None,
    ):
        """``guard``: CURVE on both sockets, only its masters let in (None: plain, anyone may connect)."""
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
        self.guard = guard
        if guard is not None:
            guard.start(self.ctx)
            guard.secure(self.pub)
            guard.secure(self.router)
        self.pub_port = self._bind(self.pub, pub_port, "PUB")
        self.router_port = self._bind(self.router, router_port, "ROUTER")
        # A plain view of the PUB socket: a send either happens now or raises, nothing to await.
        self._pub_now: zmq.Socket[bytes] = zmq.Socket.shadow(self.pub.underlying)
        #: More ROUTER message types, by ``type``: ``handler(identity, message)`` must return at once
        #: (hand slow work to a thread) and answer with :meth:`reply`.
        self.handlers: dict[str, Callable[[bytes, Message], None]] = {}
        self._reader: sqlite3.Connection | None = None
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catchup-reader")
        self._tasks: list[asyncio.Task[None]] = []
        self._hostname = socket.gethostname()
        #: Heartbeats announce this, not the store's last seq: every event up to it went out on
        #: the same PUB socket before the heartbeat, so a master that lacks one really lost it.
        self.last_published_seq = store.last_seq
        #: Likewise for row changes: every revision up to it went out (or was dropped by PUB) in order.
        self.last_published_rev = last_rev(store.conn)
        psutil.cpu_percent(interval=None)  # prime: the first call has nothing to compare with

    def _bind(self, sock: zmq.asyncio.Socket, port: int, name: str) -> int:
        try:
            if port == 0:
                return sock.bind_to_random_port(f"tcp://{self.host}")
            sock.bind(f"tcp://{self.host}:{port}")
        except zmq.ZMQError as exc:
            if self.guard is not None:
                self.guard.stop()
            self.ctx.destroy(linger=0)
            raise bind_failure(exc.errno, exc.strerror, "TCP", self.host, port, f"ZeroMQ {name} to the master") from exc
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

    def publish_ivr(self, notice: IvrNotice) -> None:
        """A video review went on or off air; never blocks (best effort, like every PUB message)."""
        with contextlib.suppress(zmq.Again):
            self._pub_now.send_multipart([TOPIC_IVR, encode(notice)], zmq.NOBLOCK)

    def reply(self, identity: bytes, payload: bytes) -> None:
        """Send to one ROUTER peer now; never blocks (a peer that is gone or full loses it and asks again).

        Through the asyncio socket, not a plain view of it: its send re-arms the receive loop's
        wake-up, which a send made beside it can swallow (ZeroMQ's descriptor is edge-triggered).
        """
        asyncio.ensure_future(self.router.send_multipart([identity, payload], zmq.NOBLOCK)).add_done_callback(_retrieved)

    async def async_start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._async_heartbeats(), name="heartbeat"),
            asyncio.create_task(self._async_serve_router(), name="router"),
            asyncio.create_task(self._async_publish_changes(), name="changes"),
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
        if self.guard is not None:
            await self.guard.async_stop()
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
            last_rev=self.last_published_rev,
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

    def send_heartbeat(self) -> Heartbeat:
        """Build and publish a heartbeat now (besides the timer's); PUB drops it when nobody listens."""
        hb = self.heartbeat()
        with contextlib.suppress(zmq.Again):
            self._pub_now.send_multipart([TOPIC_HEARTBEAT, encode(hb)], zmq.NOBLOCK)
            self.stats.heartbeats += 1
        return hb

    async def _async_heartbeats(self) -> None:
        while True:
            try:
                self.send_heartbeat()
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
            elif isinstance(message, ChangesRequest):
                try:
                    changes = await loop.run_in_executor(self._read_executor, self._changes_page, message)
                except sqlite3.Error:  # the master's request timeout asks again
                    logger.exception("Could not read row changes after revision %d", message.after_rev)
                    continue
                self.stats.changes_requests += 1
                await self.router.send_multipart([identity, encode(changes)])
            elif isinstance(message, Ack):
                self.stats.acked_epoch, self.stats.acked_seq = message.epoch, message.seq
            elif (handler := self.handlers.get(message.type)) is not None:
                handler(identity, message)
            else:
                self._bad(f"unexpected {message.type!r} on the ROUTER")

    def _page(self, request: CatchupRequest) -> CatchupPage:
        """Runs on the reader thread with its own connection (WAL: reads never block the writer)."""
        epoch = self.store.epoch
        last_seq = self.store.last_seq
        after = request.after_seq if request.epoch == epoch else 0
        records = read_page(self._reader_conn(), epoch, after, request.limit, max_bytes=PAGE_BYTES)
        done = not records or records[-1].seq >= last_seq
        return CatchupPage(request_id=request.request_id, epoch=epoch, last_seq=last_seq, records=records, done=done)

    def _changes_page(self, request: ChangesRequest) -> ChangesPage:
        """Reader thread. Revisions count per database file: another epoch than ours starts at 0."""
        after = request.after_rev if request.epoch == self.store.epoch else 0
        found = read_changes(self._reader_conn(), after, request.limit)
        return ChangesPage(
            request_id=request.request_id, epoch=self.store.epoch, last_rev=found.last_rev,
            changes=found.changes, done=found.complete,
        )

    async def _async_publish_changes(self) -> None:
        """Publish every committed row change, in revision order, a little after its commit."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHANGE_POLL_SECONDS)
            try:
                messages = await loop.run_in_executor(self._read_executor, self._new_changes)
            except sqlite3.Error:
                logger.exception("Could not read row changes; trying again in %.1f s", CHANGE_POLL_SECONDS)
                continue
            for message in messages:
                try:
                    self._pub_now.send_multipart([TOPIC_CHANGES, encode(message)], zmq.NOBLOCK)
                    self.stats.changes_published += len(message.changes)
                except zmq.Again:  # dropped like an event: the heartbeat's last_rev makes the master ask
                    pass
                self.last_published_rev = message.changes[-1].rev

    def _new_changes(self) -> list[ChangesMessage]:
        """Reader thread: the changes committed since the last published revision, as PUB messages."""
        conn = self._reader_conn()
        after = self.last_published_rev
        if last_rev(conn) <= after:
            return []
        messages: list[ChangesMessage] = []
        while len(messages) < CHANGE_MESSAGES_PER_POLL:
            found = read_changes(conn, after, CHANGES_PER_MESSAGE)
            if found.changes:
                messages.append(ChangesMessage(
                    node_id=self.store.node_id, epoch=self.store.epoch, after_rev=after, changes=found.changes,
                ))
                after = found.changes[-1].rev
            if found.complete:
                break
        return messages

    def _reader_conn(self) -> sqlite3.Connection:
        """The reader thread's own connection (WAL: reads never block the writer)."""
        if self._reader is None:
            self._reader = connect(self.store.path)
        return self._reader

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        logger.log(level_for_repeat(self.stats.bad_messages), "Ignored a message on the ROUTER: %s", reason)


def _retrieved(sent: asyncio.Future[Any]) -> None:
    """Nothing to do about a dropped reply (the peer asks again); only keep asyncio from warning."""
    if not sent.cancelled():
        sent.exception()
