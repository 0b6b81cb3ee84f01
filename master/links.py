"""One link per court: SUB for live events and heartbeats, DEALER for catch-up; nothing lost.

The rules (design, "Never lose an event"):

* subscribe first, then ask for everything after what is stored; live events that
  arrive meanwhile are buffered and replayed once the catch-up is done;
* an event is accepted only if it is the next ``seq`` of the known epoch; a jump, a new
  epoch, a heartbeat ahead of what is accepted, or a silent reconnect starts a catch-up;
* accepted events go to the database in ``seq`` order through one pipeline per court,
  so the highest stored ``seq`` of an epoch always means "everything up to here";
* three missed heartbeats mark the court offline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from shared.records import EventRecord
from shared.wire import (
    TOPIC_EVENT,
    TOPIC_HEARTBEAT,
    Ack,
    CatchupPage,
    CatchupRequest,
    EventMessage,
    Heartbeat,
    WireError,
    decode,
    encode,
)
from master.db.errors import CentralStoreError, CentralStoreUnavailable
from master.db.store import CentralStore
from master.endpoints import Endpoint
from restrike.lifecycle import log_task_failure, spawn
from restrike.logs import level_for_repeat

__all__ = ["DbWorker", "LinkStats", "SlaveLink"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

LIVE_BUFFER_LIMIT = 100_000
PIPELINE_PAGES = 4


class DbWorker:
    """The central store behind one thread: every write is serialised, and retried while the database is away.

    Event batches of all courts that arrive while a commit runs are stored together in the
    next one ("group commit"): a commit's fixed cost is paid once per round, not per court.
    """

    def __init__(self, store: CentralStore, retry_seconds: float = 1.0):
        self.store = store
        self.retry_seconds = retry_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-db")
        self._down_since: float | None = None
        self._pending: list[tuple[list[EventRecord], asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a store method on the DB thread; wait and retry while the database is unavailable."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                result = await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
            except CentralStoreUnavailable as exc:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    logger.error(
                        "Central database unavailable (%s); events are held in memory and retried "
                        "every %.0f s. Check that the database server is running.", exc, self.retry_seconds,
                    )
                await asyncio.sleep(self.retry_seconds)
                continue
            if self._down_since is not None:
                logger.warning(
                    "Central database back after %.1f s; storing held events", time.monotonic() - self._down_since
                )
                self._down_since = None
            return result

    async def insert(self, records: list[EventRecord]) -> None:
        """Store a batch in the next group commit; raises ``CentralStoreError`` if the group is refused."""
        if self._committer is None or self._committer.done():
            self._wake = asyncio.Event()
            self._committer = asyncio.create_task(self._async_commit_groups(), name="central-group-commit")
            self._committer.add_done_callback(log_task_failure(logger))  # the next insert restarts it
        assert self._wake is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        self._wake.set()
        await future

    async def _async_commit_groups(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            group, self._pending = self._pending, []
            group = [(records, future) for records, future in group if not future.done()]  # cancelled waiters
            if not group:
                continue
            try:
                await self.call(self.store.insert_events, [r for records, _ in group for r in records])
            except Exception as exc:  # each court then retries its own batch alone
                _settle(group, exc)
                continue
            _settle(group, None)

    async def async_close(self, timeout: float = 5.0) -> None:
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
        for _, future in self._pending:
            future.cancel()
        try:  # a database call may be stuck on a dead server: do not hang the shutdown on it
            await asyncio.wait_for(asyncio.to_thread(self._executor.shutdown, True), timeout)
        except TimeoutError:
            logger.warning("A central database call did not finish within %.0f s of shutdown", timeout)


def _settle(group: list[tuple[list[EventRecord], asyncio.Future[None]]], error: Exception | None) -> None:
    for _, future in group:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass(slots=True)
class LinkStats:
    live_events: int = 0
    duplicates: int = 0
    catchups: int = 0
    catchup_events: int = 0
    stored: int = 0  # handed to the database (duplicates included; refused rows are counted in rejected)
    bad_messages: int = 0
    gaps: int = 0
    rejected: int = 0


@dataclass(slots=True)
class _Cursor:
    """How far this court's events are accepted (queued in order for storage)."""

    epoch: str | None = None
    accepted: int = 0
    #: epoch -> highest stored seq: loaded from the database, then kept up to date after each insert.
    known: dict[str, int] = field(default_factory=dict)


class SlaveLink:
    """Keeps one court's events flowing into the central store, exactly once."""

    def __init__(
        self,
        endpoint: Endpoint,
        ctx: zmq.asyncio.Context,
        db: DbWorker,
        *,
        heartbeat_seconds: float = 1.0,
        page_size: int = 2000,
        request_timeout: float = 10.0,
        on_change: Callable[[SlaveLink], None] | None = None,
    ):
        self.endpoint = endpoint
        self.ctx = ctx
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.page_size = page_size
        self.request_timeout = request_timeout
        self.on_change = on_change or (lambda link: None)
        self.node_id: str | None = endpoint.node_id
        self.court: str | None = None
        self.online = False
        self.last_heartbeat: Heartbeat | None = None
        self.stats = LinkStats()
        self.cursor = _Cursor()
        self._last_seen = 0.0
        self._catching_up = False
        self._request_id = 0
        self._request_sent = 0.0
        self._buffer: list[EventRecord] = []
        self._ready = False  # the database's positions for this court are loaded
        self._page_wanted = False
        self._behind_warned = False
        self._pipeline: asyncio.Queue[list[EventRecord]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.sub = ctx.socket(zmq.SUB)
        self.dealer = ctx.socket(zmq.DEALER)
        # A cut cable leaves TCP silently retransmitting with exponential back-off, so once the
        # network is back the old connection can stay mute for a minute or more. ZMTP pings drop
        # a silent connection after as long as the heartbeat rule allows, and a bounded connect
        # timeout keeps reconnect attempts short: a restored network is used within seconds.
        silent_ms = int((3 * heartbeat_seconds + 0.5) * 1000)
        for sock in (self.sub, self.dealer):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.HEARTBEAT_IVL, max(100, int(heartbeat_seconds * 1000)))
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, silent_ms)
            sock.setsockopt(zmq.CONNECT_TIMEOUT, silent_ms)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        # Plain views of the same sockets: reading a ready socket needs no future per message.
        self._sub_now = zmq.Socket.shadow(self.sub.underlying)
        self._dealer_now = zmq.Socket.shadow(self.dealer.underlying)

    @property
    def name(self) -> str:
        return self.court or self.node_id or self.endpoint.key

    async def async_start(self) -> None:
        self.sub.subscribe(b"")
        self.sub.connect(f"tcp://{self.endpoint.host}:{self.endpoint.pub_port}")
        self.dealer.connect(f"tcp://{self.endpoint.host}:{self.endpoint.router_port}")
        self._spawn(self._async_receive(), "recv")
        self._spawn(self._async_store_pipeline(), "store")
        self._spawn(self._async_watch(), "watch")
        if self.node_id is not None:
            self._spawn(self._async_load_cursor(), "cursor")
        logger.info("Connecting to court at %s (%s)", self.endpoint.key, self.endpoint.source)

    async def async_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sub.close(linger=0)
        self.dealer.close(linger=0)

    def _spawn(self, coro: Coroutine[Any, Any, None], role: str) -> None:
        spawn(self._tasks, coro, f"link-{self.endpoint.key}-{role}", logger)

    def _rebind(self) -> None:
        """Forget the previous node: its cursor, held events and any catch-up in flight."""
        self.node_id = None
        self.cursor = _Cursor()
        self._ready = False
        self._catching_up = False
        self._page_wanted = False
        self._buffer = []
        self._behind_warned = False

    async def _async_load_cursor(self) -> None:
        """What the database already holds of this court; live events wait meanwhile (held)."""
        assert self.node_id is not None
        self.cursor.known = await self.db.call(self.db.store.last_stored, self.node_id)
        self._ready = True
        if self.last_heartbeat is not None or self._buffer:
            await self._async_request_catchup()

    # --- receiving ----------------------------------------------------------------------

    async def _async_receive(self) -> None:
        """Reads both sockets; never waits on the database, so heartbeats are always seen."""
        poller = zmq.asyncio.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.dealer, zmq.POLLIN)
        while True:
            ready = dict(await poller.poll())
            if self.sub in ready:
                for _ in range(1000):  # drain a burst before looking at the dealer again
                    try:
                        frames = self._sub_now.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    await self._async_on_pub(frames)
            if self.dealer in ready:
                while True:
                    try:
                        frames = self._dealer_now.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    await self._async_on_reply(frames)

    async def _async_send(self, payload: bytes) -> None:
        """Never wait on the DEALER: an absent slave must not stall this link."""
        try:
            self._dealer_now.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            logger.debug("Send queue to %s full; the request timeout retries", self.name)

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        logger.log(level_for_repeat(self.stats.bad_messages), "Ignored a bad message from %s: %s", self.name, reason)

    async def _async_on_pub(self, frames: list[bytes]) -> None:
        if len(frames) != 2 or frames[0] not in (TOPIC_EVENT, TOPIC_HEARTBEAT):
            self._bad(f"unexpected frames {[f[:16] for f in frames][:3]}")
            return
        try:
            message = decode(frames[1])
        except WireError as exc:
            self._bad(str(exc))
            return
        if isinstance(message, Heartbeat):
            await self._async_on_heartbeat(message)
        elif isinstance(message, EventMessage):
            self.stats.live_events += 1
            await self._async_on_live(message.record)
        else:
            self._bad(f"unexpected {message.type!r} on PUB")

    async def _async_on_heartbeat(self, hb: Heartbeat) -> None:
        if self.node_id is not None and hb.node_id != self.node_id:
            if self.endpoint.node_id is not None or self.online:
                self._bad(f"heartbeat from node {hb.node_id!r} on the link of {self.node_id!r}")
                return
            # A configured address whose court went silent now answers as another node: the
            # laptop was swapped. Follow the new one; the old one's rows stay stored as they are.
            logger.warning(
                "Another court (node %s) now answers at %s instead of %s: following it",
                hb.node_id, self.endpoint.key, self.node_id,
            )
            self._rebind()
        self._last_seen = time.monotonic()
        first = self.node_id is None
        self.node_id, self.court, self.last_heartbeat = hb.node_id, hb.court, hb
        if not self.online:
            self.online = True
            logger.info("Court %s (%s) online", hb.court, hb.node_id)
        self.on_change(self)
        if first:
            self._spawn(self._async_load_cursor(), "cursor")
            return
        cur = self.cursor
        if hb.epoch == cur.epoch and hb.last_seq < cur.accepted and not self._behind_warned:
            self._behind_warned = True
            logger.error(
                "Court %s announces seq %d but the master already holds %d of the same database "
                "(epoch %s): was it restored from a backup? Its new events would be ignored; give the "
                "court a fresh database (a new epoch).", self.name, hb.last_seq, cur.accepted, hb.epoch[:8],
            )
        if self._ready and not self._catching_up and (hb.epoch != cur.epoch or hb.last_seq > cur.accepted):
            if cur.epoch is not None:
                self.stats.gaps += 1
            await self._async_request_catchup()

    async def _async_on_live(self, record: EventRecord) -> None:
        if self.node_id is None or record.node_id != self.node_id:
            if self.node_id is not None:
                self._bad(f"event from node {record.node_id!r} on the link of {self.node_id!r}")
            return  # identity unknown yet: the first heartbeat's catch-up brings it
        if self._catching_up or not self._ready:
            self._hold(record)
        elif self._accept_live(record):
            await self._async_request_catchup()

    def _hold(self, record: EventRecord) -> None:
        """Keep a live event until the catch-up is done; past the limit the next heartbeat fetches it."""
        if len(self._buffer) < LIVE_BUFFER_LIMIT:
            self._buffer.append(record)

    def _accept_live(self, record: EventRecord) -> bool:
        """Queue the next event in order; True if it was a gap (which starts a catch-up)."""
        cur = self.cursor
        if record.epoch == cur.epoch and record.seq <= cur.accepted:
            self.stats.duplicates += 1
            return False
        if record.epoch == cur.epoch and record.seq == cur.accepted + 1:
            cur.accepted = record.seq
            self._pipeline.put_nowait([record])
            return False
        self.stats.gaps += 1
        self._hold(record)
        return True

    # --- catch-up -----------------------------------------------------------------------

    async def _async_request_catchup(self) -> None:
        if self._catching_up:
            return
        self._catching_up = True
        self.stats.catchups += 1
        await self._async_send_request()

    async def _async_send_request(self) -> None:
        self._request_id += 1
        self._request_sent = time.monotonic()
        self._page_wanted = False
        cur = self.cursor
        if cur.epoch is None:
            # First contact: start after what the DB holds of the epoch the slave announced.
            epoch = self.last_heartbeat.epoch if self.last_heartbeat else (self._buffer[0].epoch if self._buffer else None)
            after = cur.known.get(epoch, 0) if epoch else 0
        else:
            epoch, after = cur.epoch, cur.accepted
        request = CatchupRequest(request_id=self._request_id, epoch=epoch, after_seq=after, limit=self.page_size)
        await self._async_send(encode(request))

    async def _async_on_reply(self, frames: list[bytes]) -> None:
        if len(frames) != 1:
            self._bad(f"expected 1 frame on the DEALER, got {len(frames)}")
            return
        try:
            page = decode(frames[0])
        except WireError as exc:
            self._bad(str(exc))
            return
        if not isinstance(page, CatchupPage):
            self._bad(f"unexpected {page.type!r} on the DEALER")
            return
        if page.request_id != self._request_id or not self._catching_up:
            return  # a late answer to a request that timed out
        if any(r.node_id != self.node_id or r.epoch != page.epoch for r in page.records):
            self._bad(f"catch-up page with events of another node or epoch than {self.node_id}/{page.epoch[:8]}")
            return  # the request timeout asks again
        self._last_seen = time.monotonic()
        cur = self.cursor
        if page.epoch != cur.epoch:
            if cur.epoch is not None:
                logger.warning("Court %s has a new database (epoch %s): fetching it", self.name, page.epoch[:8])
            cur.epoch = page.epoch
            cur.accepted = cur.known.get(page.epoch, 0)
            self._behind_warned = False
        fresh = [r for r in page.records if r.seq > cur.accepted]
        if fresh:
            if fresh[0].seq != cur.accepted + 1 or any(b.seq != a.seq + 1 for a, b in zip(fresh, fresh[1:])):
                self._bad(f"catch-up page out of order after seq {cur.accepted}")
                return  # the request timeout asks again
            cur.accepted = fresh[-1].seq
            self.stats.catchup_events += len(fresh)
            self._pipeline.put_nowait(fresh)
        if not page.done and page.records:
            if self._pipeline.qsize() > PIPELINE_PAGES:
                self._page_wanted = True  # the store pipeline asks once the database has caught up
            else:
                await self._async_send_request()
            return
        self._catching_up = False
        held, self._buffer = self._buffer, []
        for index, record in enumerate(held):
            if record.epoch != cur.epoch or record.seq <= cur.accepted:
                self.stats.duplicates += 1  # stored already, or from a database the court replaced
                continue
            if self._accept_live(record):  # a gap again: hold the rest and catch up once more
                self._buffer.extend(held[index + 1 :])
                await self._async_request_catchup()
                return
        self.on_change(self)

    # --- storing ------------------------------------------------------------------------

    async def _async_store_pipeline(self) -> None:
        """Accepted events into the database in ``seq`` order, one batch at a time; never gives up."""
        while True:
            batch = list(await self._pipeline.get())
            while not self._pipeline.empty() and len(batch) < 5000:
                batch.extend(self._pipeline.get_nowait())
            await self._async_store(batch)
            last = batch[-1]
            self.cursor.known[last.epoch] = max(self.cursor.known.get(last.epoch, 0), last.seq)
            if self._page_wanted and self._catching_up and self._pipeline.qsize() <= PIPELINE_PAGES:
                await self._async_send_request()
            await self._async_send(encode(Ack(epoch=last.epoch, seq=last.seq)))

    async def _async_store(self, batch: list[EventRecord]) -> None:
        while True:
            try:
                await self.db.insert(batch)
            except CentralStoreError:  # refused for good, maybe because of another court's rows
                await self._async_store_alone(batch)
            except Exception:  # a bug must not stop this court's storage: say so, retry
                logger.exception("Storing %d events of %s failed; retrying in 1 s", len(batch), self.name)
                await asyncio.sleep(1.0)
                continue
            self.stats.stored += len(batch)
            return

    async def _async_store_alone(self, batch: list[EventRecord]) -> None:
        """This court's batch on its own, then row by row: keep every row the database accepts."""
        try:
            await self.db.call(self.db.store.insert_events, batch)
            return
        except CentralStoreError:
            pass
        for record in batch:
            try:
                await self.db.call(self.db.store.insert_events, [record])
            except CentralStoreError:
                self.stats.rejected += 1
                logger.exception(
                    "The central database refuses event %s/%s/%d of %s; it stays in the court's database. "
                    "Report this with the log.", record.node_id, record.epoch[:8], record.seq, self.name,
                )

    # --- liveness -----------------------------------------------------------------------

    async def _async_watch(self) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat_seconds, 1.0) / 2)
            interval = self.last_heartbeat.interval_seconds if self.last_heartbeat else self.heartbeat_seconds
            now = time.monotonic()
            if self.online and now - self._last_seen > 3 * interval + 0.5:
                self.online = False
                logger.warning(
                    "Court %s offline: no heartbeat for %.1f s (laptop off, agent stopped or network cut)",
                    self.name, now - self._last_seen,
                )
                self._catching_up = False  # the outstanding request may never be answered
                self.on_change(self)
            elif self._catching_up and not self._page_wanted and now - self._request_sent > self.request_timeout:
                logger.debug("Catch-up request to %s timed out; asking again", self.name)
                await self._async_send_request()
