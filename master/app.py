"""The master's lifecycle: migrate, open the store, find courts, keep a link to each, shut down.

A court is reached either through mDNS or through an endpoint given in the config; both
lead to the same :class:`~master.links.SlaveLink`. One link per node id: a court that
reappears at a new address replaces its old link. Under CURVE (the default) every court
passes the :class:`~master.gate.CourtGate` first: only courts whose key the director
approved are linked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import zmq.asyncio
from sqlalchemy.engine import make_url

from master.audit import DbAudit
from master.clips import ClipFetcher
from master.config import MasterConfig
from master.control import Controller
from master.db.errors import CentralStoreError
from master.db.migrate import upgrade
from master.db.store import CentralStore
from master.discovery import Browser
from master.endpoints import Endpoint
from master.gate import CourtGate, master_keys
from master.links import DbWorker, SlaveLink
from master.live import LiveMatches
from master.services.courts import CourtView, live_courts
from runtime.curve import KeyPair, fingerprint
from runtime.lifecycle import serve_until_signalled, spawn
from shared.match_snapshot import MatchSnapshot
from shared.wire import Heartbeat

__all__ = ["Master", "run_master"]

logger = logging.getLogger(__name__)

NODE_WRITE_SECONDS = 2.0


class Master:
    """Every court's link, the central store and discovery, on one event loop."""

    def __init__(self, config: MasterConfig):
        self.config = config
        self.url = config.url()
        self.store: CentralStore | None = None
        self.db: DbWorker | None = None
        self.ctx: zmq.asyncio.Context | None = None
        self.links: dict[str, SlaveLink] = {}  # by endpoint key
        self.browser: Browser | None = None
        #: Replay clips fetched from the courts over their links, cached in ``data_dir/clips``.
        self.clips: ClipFetcher | None = None
        #: Every court's current match, folded from what the links receive (no database involved).
        self.matches = LiveMatches()
        self.keys: KeyPair | None = None
        self.control: Controller | None = None
        self.gate: CourtGate | None = None
        self._links_lock = asyncio.Lock()
        self._node_wanted: dict[str, _NodeState] = {}  # the latest state to write, per node id
        self._node_dirty = asyncio.Event()
        self._tournaments_seen: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def async_startup(self) -> None:
        """The database, then the keys (a bad key file stops the start), then the courts."""
        await asyncio.to_thread(upgrade, self.url)
        self.store = CentralStore(self.url)
        self.db = DbWorker(self.store)
        if self.config.curve:
            self.keys = master_keys(self.config.keys_folder)
            logger.info("CURVE on: master key %s", fingerprint(self.keys.public))
        else:
            logger.warning(
                "CURVE is off (curve = false): the links to the courts are neither encrypted nor authenticated, "
                "and any court that answers is trusted. Turn it on for a tournament."
            )
        self.ctx = zmq.asyncio.Context()
        self.clips = ClipFetcher(
            self.config.data_dir / "clips", self.link_for,
            max_bytes=self.config.clip_cache_mb * 2**20, ffmpeg=self.config.ffmpeg,
        )
        #: The director's commands to the linked (so, under CURVE, approved) courts, audited.
        self.control = Controller(lambda: list(self.links.values()), audit=DbAudit(self.store.engine))
        self._spawn(self._async_write_nodes(), "node-writer")
        if self.keys is not None:
            self.gate = CourtGate(
                self.db, link=self.async_add_endpoint, unlink=self.async_remove_link, links=lambda: list(self.links.values())
            )
            self._spawn(self.gate.async_run(), "court-gate")
        for text in self.config.endpoints:
            await self.async_offer(Endpoint.parse(text))
        if self.config.mdns:
            self.browser = Browser(self._on_found, self.config.mdns_interface)
            await self.browser.async_start()
        logger.info("Master storing into %s", make_url(self.url).render_as_string(hide_password=True))

    async def async_shutdown(self, timeout: float = 5.0) -> None:
        if self.browser is not None:
            await self.browser.async_stop()
        if self.clips is not None:
            await self.clips.async_close()
        if self.control is not None:
            await self.control.async_flush()
        for link in list(self.links.values()):
            await link.async_stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.store is not None:
            offline = [link.node_id for link in self.links.values() if link.node_id is not None]
            try:  # nobody watches these courts any more; one attempt, the database may be down
                await asyncio.wait_for(asyncio.to_thread(self._mark_offline, offline), timeout)
            except (TimeoutError, CentralStoreError) as exc:
                logger.warning("Could not mark the courts offline at shutdown: %s", exc)
        if self.db is not None:
            await self.db.async_close()
        if self.store is not None:
            self.store.close()
        if self.ctx is not None:
            self.ctx.destroy(linger=0)

    def courts(self) -> list[CourtView]:
        """Every linked court as this process knows it now: no database query (on the loop, any rate)."""
        return live_courts(self.links.values(), self.matches)

    def court(self, node_id: str) -> CourtView | None:
        """One linked court as :meth:`courts` shows it (None: not linked or never heard), for a page
        that redraws only the court that changed."""
        views = live_courts((link for link in self.links.values() if link.node_id == node_id), self.matches)
        return views[0] if views else None

    def _mark_offline(self, node_ids: list[str]) -> None:
        assert self.store is not None
        for node_id in node_ids:
            self.store.mark_offline(node_id)

    def link_for(self, node_id: str) -> SlaveLink | None:
        """The link to a court by node id (the online one if the court was seen at two addresses)."""
        found = [link for link in self.links.values() if link.node_id == node_id]
        return max(found, key=lambda link: link.online, default=None)

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        spawn(self._tasks, coro, name, logger)

    def _on_found(self, endpoint: Endpoint) -> None:
        self._spawn(self.async_offer(endpoint), f"add-{endpoint.key}")

    async def async_offer(self, endpoint: Endpoint) -> None:
        """A court found or configured: through the approval gate under CURVE, straight to a link without."""
        if self.gate is not None:
            await self.gate.async_offer(endpoint)
        else:
            await self.async_add_endpoint(endpoint)

    async def async_remove_link(self, link: SlaveLink) -> None:
        async with self._links_lock:
            await link.async_stop()
            self.links.pop(link.endpoint.key, None)
            if link.node_id is not None:
                self._node_wanted.pop(link.node_id, None)

    async def async_add_endpoint(self, endpoint: Endpoint, server_key: str | None = None) -> SlaveLink:
        """Connect to a court unless it is already linked at that address (one link per court);
        with ``server_key`` over CURVE, reaching only the holder of that key."""
        assert self.db is not None and self.ctx is not None
        async with self._links_lock:  # mDNS reports Added and Updated within milliseconds
            existing = self.links.get(endpoint.key)
            if existing is not None:
                return existing
            if endpoint.node_id is not None:
                for key, link in list(self.links.items()):
                    if link.node_id == endpoint.node_id:  # same court, new address: replace the link
                        logger.info("Court %s moved from %s to %s", link.name, key, endpoint.key)
                        await link.async_stop()
                        self.links.pop(key, None)
            link = SlaveLink(
                endpoint,
                self.ctx,
                self.db,
                heartbeat_seconds=self.config.heartbeat_seconds,
                page_size=self.config.page_size,
                held_events=self.config.held_events_per_court,
                on_change=self._on_link_change,
                live=self.matches,
                client_keys=self.keys if server_key is not None else None,
                server_key=server_key,
            )
            if self.clips is not None:
                link.reply_handlers["file_chunk"] = self.clips.on_reply
            self.links[endpoint.key] = link
            await link.async_start()
            return link

    def _on_link_change(self, link: SlaveLink) -> None:
        """A heartbeat or a status change: remember the node's latest state for the node writer."""
        hb = link.last_heartbeat
        if hb is None:
            return
        self._node_wanted[hb.node_id] = _NodeState(hb, link.endpoint.host, "online" if link.online else "offline")
        self._node_dirty.set()

    async def _async_write_nodes(self) -> None:
        """One writer for node rows: only each node's latest state is written, in order, never piling up."""
        assert self.db is not None
        while True:
            await self._node_dirty.wait()
            self._node_dirty.clear()
            wanted, self._node_wanted = self._node_wanted, {}
            for node_id, state in wanted.items():
                live = self.matches.get(node_id)  # newer than the heartbeat's: events fold in between
                match = live.snapshot() if live is not None else state.heartbeat.match
                try:
                    await self.db.call(self._write_node, node_id, state, match)
                except Exception:  # a refused row or odd heartbeat data must not stop the writer
                    logger.exception("Could not record the state of court %s", node_id)
            await asyncio.sleep(NODE_WRITE_SECONDS)  # heartbeats arrive every second: write less often

    def _write_node(self, node_id: str, state: _NodeState, match: MatchSnapshot | None) -> None:
        """Runs on the database thread."""
        assert self.store is not None
        hb = state.heartbeat
        self.store.upsert_node(
            node_id,
            court_name=hb.court,
            hostname=hb.hostname,
            version=hb.version,
            address=state.address,
            pub_port=hb.pub_port,
            router_port=hb.router_port,
            status=state.status,
            last_seen=dt.datetime.fromtimestamp(hb.sent_ms / 1000, dt.UTC),
            last_heartbeat_seq=hb.last_seq,
            epoch=hb.epoch,
            cpu_percent=hb.health.cpu_percent,
            memory_percent=hb.health.memory_percent,
            disk_free_bytes=hb.health.disk_free_bytes,
            obs_rec_connected=hb.obs.rec_connected,
            obs_str_connected=hb.obs.str_connected,
            recording=hb.obs.recording,
            streaming=hb.obs.streaming,
            replay_buffer=hb.obs.replay_buffer,
            current_scene=hb.obs.current_scene,
            obs=hb.obs.model_dump(mode="json"),
            match=None if match is None else match.model_dump(mode="json"),
            heard_at=dt.datetime.now(dt.UTC),
        )
        if hb.tournament_uuid and hb.tournament_day_uuid and (hb.tournament_uuid, hb.tournament_day_uuid) not in self._tournaments_seen:
            date = dt.date.fromisoformat(hb.day_date) if hb.day_date else None
            self.store.note_day(hb.tournament_uuid, hb.tournament_name or "", hb.tournament_day_uuid,
                                hb.day_number or 1, date)
            self._tournaments_seen.add((hb.tournament_uuid, hb.tournament_day_uuid))


@dataclass(frozen=True, slots=True)
class _NodeState:
    """What the node writer writes of a court: its last heartbeat, where it is, whether it is online."""

    heartbeat: Heartbeat
    address: str
    status: str


async def run_master(config: MasterConfig) -> None:
    """Run until SIGTERM/SIGINT (the second signal forces the exit), with the web console unless ``http_port`` is 0."""
    master = Master(config)
    console = None
    if config.http_port:
        from master.console.server import ConsoleServer  # NiceGUI is heavy: only when serving it

        console = ConsoleServer(master, config.http_host, config.http_port, config.session_hours)

    async def startup() -> None:
        await master.async_startup()
        if console is not None:
            await console.async_start()

    async def shutdown() -> None:
        if console is not None:
            await console.async_stop()
        await master.async_shutdown()

    await serve_until_signalled(startup, shutdown)
