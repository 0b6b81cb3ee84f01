"""One link per court: SUB for live events, row changes and heartbeats, DEALER for catch-up; nothing lost.

The rules (design, "Never lose an event"):

* subscribe first, then ask for everything after what is stored; live events that
  arrive meanwhile are buffered and replayed once the catch-up is done;
* an event is accepted only if it is the next ``seq`` of the known epoch; a jump, a new
  epoch, a heartbeat ahead of what is accepted, or a silent reconnect starts a catch-up;
* accepted events go to the database in ``seq`` order through one pipeline per court,
  so the highest stored ``seq`` of an epoch always means "everything up to here";
* row changes (``shared.changes``) follow the same rules with their own counter, the
  revision: taken live when they continue the last one, fetched when a heartbeat is ahead
  or a message skips some; a change waits until the event it refers to is accepted, and
  goes through the same pipeline after it, so it always finds its row;
* the events one court holds in memory (held during a catch-up, or waiting for the
  database) are bounded: past ``held_events`` live events are not held but left in the
  court's database, which is the source of truth, and fetched once the database catches up;
* three missed heartbeats mark the court offline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from master.commands import CommandChannel
from master.db.errors import CentralStoreError, CentralStoreUnavailable
from master.db.store import CentralStore, ChangeSet
from master.endpoints import Endpoint
from master.handshake import async_watch_handshakes
from master.live import LiveMatches
from runtime.curve import KeyPair, secure_client
from runtime.lifecycle import log_task_failure, spawn
from runtime.logs import level_for_repeat
from shared.changes import EventChange, RowChange
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
    CommandResult,
    EventMessage,
    Heartbeat,
    IvrNotice,
    Message,
    WireError,
    decode,
    encode,
)

__all__ = ["DbWorker", "LinkStats", "SlaveLink"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Events one court may hold in memory by default (``[master] held_events_per_court``).
HELD_EVENTS = 5000
#: Events per database batch of one court.
STORE_BATCH = 5000


class DbWorker:
    """The central store behind one thread: every write is serialised, and retried while the database is away.

    The one place that says the database is unavailable and back (the store only raises).

    Event batches and row changes of all courts that arrive while a commit runs are stored
    together in the next one ("group commit"): a commit's fixed cost is paid once per round,
    not per court and not per kind.
    """

    def __init__(self, store: CentralStore, retry_seconds: float = 1.0):
        self.store = store
        self.retry_seconds = retry_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-db")
        self._down_since: float | None = None
        self._pending: list[tuple[_Work, asyncio.Future[None]]] = []
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
                        "Central database unavailable (%s); retrying every %.0f s. Each court's events wait in "
                        "memory up to its limit, then in the court's own database: nothing is lost. Check that "
                        "the database server is running and reachable.", _reason(exc), self.retry_seconds,
                    )
                await asyncio.sleep(self.retry_seconds)
                continue
            if self._down_since is not None:
                logger.warning(
                    "Central database back after %.1f s; storing what waited", time.monotonic() - self._down_since
                )
                self._down_since = None
            return result

    async def write(self, records: list[EventRecord], changes: ChangeSet | None = None) -> None:
        """A court's events, then its row changes, in the next group commit; raises
        ``CentralStoreError`` if the group is refused (each court then retries its own work alone)."""
        work = _Work(records, changes)
        if self._committer is None or self._committer.done():
            self._wake = asyncio.Event()
            self._committer = asyncio.create_task(self._async_commit_groups(), name="central-group-commit")
            self._committer.add_done_callback(log_task_failure(logger))  # the next insert restarts it
        assert self._wake is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        self._wake.set()
        await future

    async def _async_commit_groups(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            group, self._pending = self._pending, []
            group = [(work, future) for work, future in group if not future.done()]  # cancelled waiters
            if not group:
                continue
            records = [r for work, _ in group for r in work.events]
            change_sets = [work.changes for work, _ in group if work.changes is not None]
            try:
                await self.call(self.store.write, records, change_sets)
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


def _reason(exc: CentralStoreUnavailable) -> str:
    """The driver's own first line (the exception's text repeats what the log line says)."""
    cause = getattr(exc.__cause__, "orig", None) or exc.__cause__ or exc
    return str(cause).strip().splitlines()[0]


def _settle(group: list[tuple[_Work, asyncio.Future[None]]], error: Exception | None) -> None:
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
    shed: int = 0  # live events not held (over the limit): fetched from the court later
    live_changes: int = 0  # row changes received on PUB
    change_catchups: int = 0
    changes: int = 0  # row changes handed to the database


@dataclass(slots=True)
class _Cursor:
    """How far this court's events and row changes are accepted (queued in order for storage)."""

    epoch: str | None = None
    accepted: int = 0
    #: epoch -> highest stored seq: loaded from the database, then kept up to date after each insert.
    known: dict[str, int] = field(default_factory=dict)
    #: Every row change up to this revision of ``epoch``'s database is accepted.
    rev: int = 0
    #: epoch -> revision up to which changes are applied (the database's change cursors).
    known_revs: dict[str, int] = field(default_factory=dict)

    def follow(self, epoch: str) -> None:
        """The court's database is ``epoch`` now: resume after what is stored of it."""
        self.epoch = epoch
        self.accepted = self.known.get(epoch, 0)
        self.rev = self.known_revs.get(epoch, 0)


@dataclass(frozen=True, slots=True)
class _Work:
    """What one court hands the database in one round: events, then row changes, in that order."""

    events: list[EventRecord]
    changes: ChangeSet | None

    @property
    def size(self) -> int:
        return len(self.events) + (len(self.changes.changes) if self.changes else 0)


class _Pipeline:
    """One court's accepted events and row changes, stored in the order they were accepted.

    A round takes everything queued (up to a batch of events) as one :class:`_Work`: events
    first, then the changes. A change is queued only after the event it changes, and events
    queued after a change are new rows it cannot be about, so this order is the queue's.
    """

    def __init__(self) -> None:
        self._items: deque[list[EventRecord] | ChangeSet] = deque()
        self._wake = asyncio.Event()
        #: Events and row changes queued or being stored: what this court holds in memory.
        self.held = 0

    def put(self, item: list[EventRecord] | ChangeSet) -> None:
        self._items.append(item)
        self.held += len(item) if isinstance(item, list) else len(item.changes)
        self._wake.set()

    async def take(self) -> _Work:
        """The next round's work; call :meth:`done` once it is stored."""
        while not self._items:
            self._wake.clear()
            await self._wake.wait()
        events: list[EventRecord] = []
        changes: ChangeSet | None = None
        while self._items and len(events) < STORE_BATCH:
            item = self._items[0]
            if isinstance(item, list):
                events.extend(item)
            elif changes is None:
                changes = ChangeSet(item.node_id, item.epoch, list(item.changes), item.through_rev)
            elif item.epoch == changes.epoch and item.node_id == changes.node_id:
                changes = replace(changes, changes=[*changes.changes, *item.changes], through_rev=item.through_rev)
            else:
                break  # another database's changes: its own round, its own cursor
            self._items.popleft()
        return _Work(events, changes)

    def done(self, work: _Work) -> None:
        self.held -= work.size


class SlaveLink:
    """Keeps one court's events and row changes flowing into the central store, exactly once."""

    def __init__(
        self,
        endpoint: Endpoint,
        ctx: zmq.asyncio.Context,
        db: DbWorker,
        *,
        heartbeat_seconds: float = 1.0,
        page_size: int = 2000,
        held_events: int = HELD_EVENTS,
        request_timeout: float = 10.0,
        on_change: Callable[[SlaveLink], None] | None = None,
        live: LiveMatches | None = None,
        client_keys: KeyPair | None = None,
        server_key: str | None = None,
    ):
        """With ``client_keys`` and ``server_key`` both sockets speak CURVE and only reach the holder of
        ``server_key`` (the court's approved key); without them, plain TCP."""
        self.endpoint = endpoint
        self.server_key = server_key
        self.ctx = ctx
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.page_size = page_size
        self.held_events = max(held_events, page_size)
        self.request_timeout = request_timeout
        self.on_change = on_change or (lambda link: None)
        self.live = live  # the court's match in memory, fed everything received
        self.node_id: str | None = endpoint.node_id
        self.court: str | None = None
        self.online = False
        self.last_heartbeat: Heartbeat | None = None
        #: The court's latest video-review notice (for the console and overlays).
        self.last_ivr: IvrNotice | None = None
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
        self._shed_from: int | None = None  # stats.shed when this court's events stopped being held
        self._fetching_changes = False
        self._changes_request_id = 0
        self._changes_sent = 0.0
        self._changes_page_wanted = False
        self._pipeline = _Pipeline()
        self._tasks: set[asyncio.Task[None]] = set()
        #: More DEALER reply types, by ``type`` (e.g. ``file_chunk`` for :mod:`master.clips`):
        #: ``handler(link, message)`` runs on the receive path and must return at once.
        self.reply_handlers: dict[str, Callable[[SlaveLink, Message], None]] = {}
        #: The director's commands to this court, on the same DEALER (``master.control``).
        self.commands = CommandChannel(self.send, lambda: self.name)
        self.reply_handlers["command_result"] = self._on_command_result
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
        if client_keys is not None and server_key is not None:
            secure_client(self.sub, client_keys, server_key)
            secure_client(self.dealer, client_keys, server_key)
        # Plain views of the same sockets: reading a ready socket needs no future per message.
        self._sub_now: zmq.Socket[bytes] = zmq.Socket.shadow(self.sub.underlying)
        self._dealer_now: zmq.Socket[bytes] = zmq.Socket.shadow(self.dealer.underlying)

    @property
    def held(self) -> int:
        """Events and row changes of this court in memory now: held during a catch-up, queued or being stored."""
        return len(self._buffer) + self._pipeline.held

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
        if self.server_key is not None:
            self._spawn(async_watch_handshakes(self.dealer, lambda: f"Court {self.name} at {self.endpoint.key}"), "handshakes")
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
        self._fetching_changes = False
        self._changes_page_wanted = False

    async def _async_load_cursor(self) -> None:
        """What the database already holds of this court; live events wait meanwhile (held)."""
        assert self.node_id is not None
        self.cursor.known = await self.db.call(self.db.store.last_stored, self.node_id)
        self.cursor.known_revs = await self.db.call(self.db.store.change_cursor, self.node_id)
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
        self.send(payload)

    def send(self, payload: bytes) -> bool:
        """Send on the DEALER now, or not at all (False): an absent slave must not stall this link;
        every request has a timeout that sends it again.

        Through the asyncio socket, not a plain view of it: its send re-arms the receive loop's
        wake-up, which a send made beside it can swallow (ZeroMQ's descriptor is edge-triggered).
        """
        sent = asyncio.ensure_future(self.dealer.send(payload, zmq.NOBLOCK))
        if sent.done() and not sent.cancelled() and sent.exception() is not None:
            logger.debug("Send queue to %s full; the request timeout retries", self.name)
            return False
        return True

    def _on_command_result(self, _: SlaveLink, message: Message) -> None:
        if isinstance(message, CommandResult):
            self.commands.on_result(message)

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        logger.log(level_for_repeat(self.stats.bad_messages), "Ignored a bad message from %s: %s", self.name, reason)

    async def _async_on_pub(self, frames: list[bytes]) -> None:
        if len(frames) != 2 or frames[0] not in (TOPIC_EVENT, TOPIC_CHANGES, TOPIC_HEARTBEAT, TOPIC_IVR):
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
        elif isinstance(message, IvrNotice):
            self.last_ivr = message
            logger.info("%s: video review %s (match %s)", message.court, message.state, message.match_number or "?")
        elif isinstance(message, ChangesMessage):
            self.stats.live_changes += len(message.changes)
            await self._async_on_live_changes(message)
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
        if self.live is not None:
            self.live.on_heartbeat(hb)
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
        else:
            await self._async_changes_if_behind()

    async def _async_on_live(self, record: EventRecord) -> None:
        if self.node_id is None or record.node_id != self.node_id:
            if self.node_id is not None:
                self._bad(f"event from node {record.node_id!r} on the link of {self.node_id!r}")
            return  # identity unknown yet: the first heartbeat's catch-up brings it
        self._last_seen = time.monotonic()  # a sign of life too: a busy master reads heartbeats late
        if self.live is not None:
            self.live.on_records(self.node_id, (record,))
        if self._catching_up or not self._ready:
            self._hold(record)
        elif self._accept_live(record):
            await self._async_request_catchup()

    def _hold(self, record: EventRecord) -> None:
        """Keep a live event until the catch-up is done; past the limit the catch-up fetches it too."""
        if self._room_for_live():
            self._buffer.append(record)

    def _accept_live(self, record: EventRecord) -> bool:
        """Queue the next event in order; True if it needs a catch-up (a gap, or no room to hold it)."""
        cur = self.cursor
        if record.epoch == cur.epoch and record.seq <= cur.accepted:
            self.stats.duplicates += 1
            return False
        if record.epoch == cur.epoch and record.seq == cur.accepted + 1:
            if not self._room_for_live():
                return True  # left in the court's database: the catch-up fetches it once there is room
            cur.accepted = record.seq
            self._pipeline.put([record])
            return False
        self.stats.gaps += 1
        self._hold(record)
        return True

    def _room_for_live(self) -> bool:
        """Whether one more live event may be held in memory; counts (and says once) when not."""
        held = self.held
        if held < self.held_events:
            return True
        self.stats.shed += 1
        if self._shed_from is None:
            self._shed_from = self.stats.shed - 1
            logger.warning(
                "Court %s: %d events wait for the central database; newer ones are left in the court's "
                "database and fetched from it once the central database catches up", self.name, held,
            )
        return False

    # --- catch-up -----------------------------------------------------------------------

    async def _async_request_catchup(self) -> None:
        if self._catching_up:
            return
        self._catching_up = True
        self.stats.catchups += 1
        if self._page_fits():
            await self._async_send_request()
        else:
            self._page_wanted = True  # the store pipeline asks once a page fits

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
            reply = decode(frames[0])
        except WireError as exc:
            self._bad(str(exc))
            return
        if isinstance(reply, CatchupPage):
            await self._async_on_page(reply)
        elif isinstance(reply, ChangesPage):
            await self._async_on_changes_page(reply)
        elif (handler := self.reply_handlers.get(reply.type)) is not None:
            handler(self, reply)
        else:
            self._bad(f"unexpected {reply.type!r} on the DEALER")

    async def _async_on_page(self, page: CatchupPage) -> None:
        if page.request_id != self._request_id or not self._catching_up:
            return  # a late answer to a request that timed out
        if any(r.node_id != self.node_id or r.epoch != page.epoch for r in page.records):
            self._bad(f"catch-up page with events of another node or epoch than {self.node_id}/{page.epoch[:8]}")
            return  # the request timeout asks again
        self._last_seen = time.monotonic()
        if self.live is not None and self.node_id is not None and page.records:
            self.live.on_records(self.node_id, page.records)
        cur = self.cursor
        if page.epoch != cur.epoch:
            if cur.epoch is not None:
                logger.warning("Court %s has a new database (epoch %s): fetching it", self.name, page.epoch[:8])
            cur.follow(page.epoch)
            self._behind_warned = False
        fresh = [r for r in page.records if r.seq > cur.accepted]
        if fresh:
            if fresh[0].seq != cur.accepted + 1 or any(b.seq != a.seq + 1 for a, b in itertools.pairwise(fresh)):
                self._bad(f"catch-up page out of order after seq {cur.accepted}")
                return  # the request timeout asks again
            cur.accepted = fresh[-1].seq
            self.stats.catchup_events += len(fresh)
            self._pipeline.put(fresh)
        if not page.done and page.records:
            if self._page_fits():
                await self._async_send_request()
            else:
                self._page_wanted = True  # the store pipeline asks once the database has caught up
            return
        self._catching_up = False
        if self._shed_from is not None:
            logger.info(
                "Court %s caught up: the %d live events not held in memory were fetched from its database",
                self.name, self.stats.shed - self._shed_from,
            )
            self._shed_from = None
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
        await self._async_changes_if_behind()

    # --- row changes --------------------------------------------------------------------

    async def _async_on_live_changes(self, message: ChangesMessage) -> None:
        """Take published row changes that continue the last accepted revision; a skip is a gap."""
        if self.node_id is None or message.node_id != self.node_id:
            if self.node_id is not None:
                self._bad(f"row changes from node {message.node_id!r} on the link of {self.node_id!r}")
            return
        self._last_seen = time.monotonic()
        cur = self.cursor
        if not self._ready or self._catching_up or self._fetching_changes or message.epoch != cur.epoch:
            return  # events first; then the heartbeat's last_rev says what to fetch
        if message.after_rev > cur.rev:
            self.stats.gaps += 1
            await self._async_request_changes()
        elif self._pipeline.held + len(message.changes) > self.held_events:
            await self._async_request_changes()  # no room: fetched from the court once a page fits
        elif self._accept_changes(message.epoch, message.changes):
            await self._async_request_catchup()  # a change of an event not here yet: events first

    def _accept_changes(self, epoch: str, changes: Sequence[RowChange]) -> bool:
        """Queue the changes after the cursor, in order, up to the first about an event not yet
        accepted (it must find its row when it is stored). True if it stopped there: the rest
        is fetched again once the events are in.
        """
        assert self.node_id is not None
        cur = self.cursor
        ready: list[RowChange] = []
        blocked = False
        for change in changes:
            if change.rev <= cur.rev:
                continue
            if isinstance(change, EventChange) and change.epoch == cur.epoch and change.seq > cur.accepted:
                blocked = True
                break
            ready.append(change)
        if ready:
            cur.rev = ready[-1].rev
            self._pipeline.put(ChangeSet(self.node_id, epoch, ready, ready[-1].rev))
        return blocked

    async def _async_changes_if_behind(self) -> None:
        """The last heartbeat announces revisions this link has not accepted: fetch them."""
        hb, cur = self.last_heartbeat, self.cursor
        if (
            self._ready and not self._catching_up and not self._fetching_changes and hb is not None
            and hb.epoch == cur.epoch and hb.last_rev > cur.rev
        ):
            await self._async_request_changes()

    async def _async_request_changes(self) -> None:
        if self._fetching_changes or self._catching_up:
            return
        self._fetching_changes = True
        self.stats.change_catchups += 1
        if self._page_fits():
            await self._async_send_changes_request()
        else:
            self._changes_page_wanted = True

    async def _async_send_changes_request(self) -> None:
        self._request_id += 1
        self._changes_request_id = self._request_id
        self._changes_sent = time.monotonic()
        self._changes_page_wanted = False
        request = ChangesRequest(
            request_id=self._request_id, epoch=self.cursor.epoch, after_rev=self.cursor.rev, limit=self.page_size
        )
        await self._async_send(encode(request))

    async def _async_on_changes_page(self, page: ChangesPage) -> None:
        if page.request_id != self._changes_request_id or not self._fetching_changes:
            return  # a late answer to a request that timed out
        self._last_seen = time.monotonic()
        if page.epoch != self.cursor.epoch:  # the event catch-up follows a new database first
            self._fetching_changes = False
            return
        blocked = self._accept_changes(page.epoch, page.changes)
        if blocked or page.done or not page.changes:
            self._fetching_changes = False
            if blocked:
                await self._async_request_catchup()
        elif self._page_fits():
            await self._async_send_changes_request()
        else:
            self._changes_page_wanted = True  # the store pipeline asks once the database has caught up

    # --- storing ------------------------------------------------------------------------

    def _page_fits(self) -> bool:
        """A page more stays within the events this court may hold (held live events aside)."""
        return self._pipeline.held + self.page_size <= self.held_events

    async def _async_store_pipeline(self) -> None:
        """Accepted events and changes into the database in order, a round at a time; never gives up."""
        while True:
            work = await self._pipeline.take()
            await self._async_store(work)
            if work.events:
                last = work.events[-1]
                self.cursor.known[last.epoch] = max(self.cursor.known.get(last.epoch, 0), last.seq)
            if work.changes is not None:
                epoch = work.changes.epoch
                self.cursor.known_revs[epoch] = max(self.cursor.known_revs.get(epoch, 0), work.changes.through_rev)
            self._pipeline.done(work)
            if self._page_fits():
                if self._page_wanted and self._catching_up:
                    await self._async_send_request()
                elif self._changes_page_wanted and self._fetching_changes:
                    await self._async_send_changes_request()
            if work.events:
                await self._async_send(encode(Ack(epoch=last.epoch, seq=last.seq)))

    async def _async_store(self, work: _Work) -> None:
        while True:
            try:
                await self.db.write(work.events, work.changes)
            except CentralStoreError:  # refused for good, maybe because of another court's rows
                await self._async_store_alone(work.events)
                if work.changes is not None:
                    await self._async_apply_alone(work.changes)
            except Exception:  # a bug must not stop this court's storage: say so, retry
                logger.exception("Storing %d events and changes of %s failed; retrying in 1 s", work.size, self.name)
                await asyncio.sleep(1.0)
                continue
            self.stats.stored += len(work.events)
            self.stats.changes += len(work.changes.changes) if work.changes else 0
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

    async def _async_apply_alone(self, change_set: ChangeSet) -> None:
        """This court's changes on their own, then one by one: keep every change the database accepts."""
        try:
            await self.db.call(self.db.store.write, (), [change_set])
            return
        except CentralStoreError:
            pass
        for change in change_set.changes:
            try:
                await self.db.call(self.db.store.write, (), [replace(change_set, changes=[change], through_rev=change.rev)])
            except CentralStoreError:
                self.stats.rejected += 1
                logger.exception("The central database refuses a row change of %s: %r. Report this with the log.",
                                 self.name, change)
        await self.db.call(self.db.store.write, (), [replace(change_set, changes=[])])  # the cursor moves past them

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
                self._catching_up = self._fetching_changes = False  # requests out may never be answered
                self.on_change(self)
            elif self._catching_up and not self._page_wanted and now - self._request_sent > self.request_timeout:
                logger.debug("Catch-up request to %s timed out; asking again", self.name)
                await self._async_send_request()
            elif (self._fetching_changes and not self._changes_page_wanted
                  and now - self._changes_sent > self.request_timeout):
                logger.debug("Row-change request to %s timed out; asking again", self.name)
                await self._async_send_changes_request()
