"""The master's lifecycle: migrate, open the store, find courts, keep a link to each, shut down.

A court is reached either through mDNS or through an endpoint given in the config; both
lead to the same :class:`~master.links.SlaveLink`. One link per node id: a court that
reappears at a new address replaces its old link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any

import zmq.asyncio
from sqlalchemy.engine import make_url

from master.config import MasterConfig
from master.db.errors import CentralStoreError
from master.db.migrate import upgrade
from master.db.store import CentralStore
from master.discovery import Browser
from master.endpoints import Endpoint
from master.links import DbWorker, SlaveLink
from restrike.lifecycle import serve_until_signalled, spawn
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
        self._links_lock = asyncio.Lock()
        self._node_wanted: dict[str, dict[str, Any]] = {}  # the latest state to write, per node
        self._node_dirty = asyncio.Event()
        self._tournaments_seen: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def async_startup(self) -> None:
        await asyncio.to_thread(upgrade, self.url)
        self.store = CentralStore(self.url)
        self.db = DbWorker(self.store)
        self.ctx = zmq.asyncio.Context()
        self._spawn(self._async_write_nodes(), "node-writer")
        for text in self.config.endpoints:
            await self.async_add_endpoint(Endpoint.parse(text))
        if self.config.mdns:
            self.browser = Browser(self._on_found, self.config.mdns_interface)
            await self.browser.async_start()
        logger.info("Master storing into %s", make_url(self.url).render_as_string(hide_password=True))

    async def async_shutdown(self, timeout: float = 5.0) -> None:
        if self.browser is not None:
            await self.browser.async_stop()
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

    def _mark_offline(self, node_ids: list[str]) -> None:
        assert self.store is not None
        for node_id in node_ids:
            self.store.mark_offline(node_id)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        spawn(self._tasks, coro, name, logger)

    def _on_found(self, endpoint: Endpoint) -> None:
        self._spawn(self.async_add_endpoint(endpoint), f"add-{endpoint.key}")

    async def async_add_endpoint(self, endpoint: Endpoint) -> SlaveLink:
        """Connect to a court unless it is already linked at that address (one link per court)."""
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
                on_change=self._on_link_change,
            )
            self.links[endpoint.key] = link
            await link.async_start()
            return link

    def _on_link_change(self, link: SlaveLink) -> None:
        """A heartbeat or a status change: remember the node's latest state for the node writer."""
        hb = link.last_heartbeat
        if hb is None:
            return
        self._node_wanted[hb.node_id] = {
            "heartbeat": hb,
            "address": link.endpoint.host,
            "status": "online" if link.online else "offline",
        }
        self._node_dirty.set()

    async def _async_write_nodes(self) -> None:
        """One writer for node rows: only each node's latest state is written, in order, never piling up."""
        assert self.db is not None
        while True:
            await self._node_dirty.wait()
            self._node_dirty.clear()
            wanted, self._node_wanted = self._node_wanted, {}
            for node_id, state in wanted.items():
                try:
                    await self.db.call(self._write_node, node_id, state)
                except Exception:  # a refused row or odd heartbeat data must not stop the writer
                    logger.exception("Could not record the state of court %s", node_id)
            await asyncio.sleep(NODE_WRITE_SECONDS)  # heartbeats arrive every second: write less often

    def _write_node(self, node_id: str, state: dict[str, Any]) -> None:
        """Runs on the database thread."""
        assert self.store is not None
        hb: Heartbeat = state["heartbeat"]
        self.store.upsert_node(
            node_id,
            court_name=hb.court,
            hostname=hb.hostname,
            version=hb.version,
            address=state["address"],
            pub_port=hb.pub_port,
            router_port=hb.router_port,
            status=state["status"],
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
        )
        if hb.tournament_uuid and hb.tournament_day_uuid and (hb.tournament_uuid, hb.tournament_day_uuid) not in self._tournaments_seen:
            self.store.upsert_tournament(hb.tournament_uuid, hb.tournament_name or "")
            date = dt.date.fromisoformat(hb.day_date) if hb.day_date else None
            self.store.upsert_day(hb.tournament_day_uuid, hb.tournament_uuid, hb.day_number or 1, date)
            self._tournaments_seen.add((hb.tournament_uuid, hb.tournament_day_uuid))


async def run_master(config: MasterConfig) -> None:
    """Run until SIGTERM/SIGINT; the second signal forces the exit."""
    master = Master(config)
    await serve_until_signalled(master.async_startup, master.async_shutdown)
