"""The master's lifecycle: migrate, open the store, find courts, keep a link to each, shut down.

A court is reached either through mDNS or through an endpoint given in the config; both
lead to the same :class:`~master.links.SlaveLink`. One link per node id: a court that
reappears at a new address replaces its old link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import zmq.asyncio

from master.config import MasterConfig
from master.db.migrate import upgrade
from master.db.store import CentralStore
from master.discovery import Browser
from master.endpoints import Endpoint
from master.links import DbWorker, SlaveLink
from restrike.lifecycle import serve_until_signalled
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
        self.ctx = zmq.asyncio.Context()
        self.links: dict[str, SlaveLink] = {}  # by endpoint key
        self.browser: Browser | None = None
        self._node_written: dict[str, float] = {}
        self._tournaments_seen: set[tuple[str | None, str | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def async_startup(self) -> None:
        await asyncio.to_thread(upgrade, self.url)
        self.store = CentralStore(self.url)
        self.db = DbWorker(self.store)
        for text in self.config.endpoints:
            await self.async_add_endpoint(Endpoint.parse(text))
        if self.config.mdns:
            self.browser = Browser(self._on_found, self.config.mdns_interface)
            await self.browser.async_start()
        logger.info("Master storing into %s", _safe_url(self.url))

    async def async_shutdown(self) -> None:
        if self.browser is not None:
            await self.browser.async_stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in list(self.links.values()):
            await link.async_stop()
            if link.node_id is not None and self.db is not None:  # nobody watches them any more
                await self.db.call(self.db.store.mark_offline, link.node_id)
        if self.db is not None:
            await self.db.async_close()
        if self.store is not None:
            self.store.close()
        self.ctx.destroy(linger=0)

    def _on_found(self, endpoint: Endpoint) -> None:
        task = asyncio.get_running_loop().create_task(self.async_add_endpoint(endpoint))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def async_add_endpoint(self, endpoint: Endpoint) -> SlaveLink:
        """Connect to a court unless it is already linked at that address."""
        assert self.db is not None
        existing = self.links.get(endpoint.key)
        if existing is not None:
            return existing
        if endpoint.node_id is not None:
            for key, link in list(self.links.items()):
                if link.node_id == endpoint.node_id:  # same court, new address: replace the link
                    logger.info("Court %s moved from %s to %s", link.name, key, endpoint.key)
                    await link.async_stop()
                    del self.links[key]
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
        """Heartbeat or status change: write the node row (at most every few seconds unless status changed)."""
        hb = link.last_heartbeat
        if hb is None or self.db is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        status = "online" if link.online else "offline"
        previous = self._node_written.get(hb.node_id)
        if previous is not None and now - previous < NODE_WRITE_SECONDS and status == "online":
            return
        self._node_written[hb.node_id] = now
        task = loop.create_task(self._async_write_node(link, hb, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _async_write_node(self, link: SlaveLink, hb: Heartbeat, status: str) -> None:
        assert self.db is not None and self.store is not None
        seen = dt.datetime.fromtimestamp(hb.sent_ms / 1000, dt.UTC)
        await self.db.call(
            self.store.upsert_node,
            hb.node_id,
            court_name=hb.court,
            hostname=hb.hostname,
            version=hb.version,
            address=link.endpoint.host,
            pub_port=hb.pub_port,
            router_port=hb.router_port,
            status=status,
            last_seen=seen,
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
        key = (hb.tournament_uuid, hb.tournament_day_uuid)
        if hb.tournament_uuid and hb.tournament_day_uuid and key not in self._tournaments_seen:
            self._tournaments_seen.add(key)
            await self.db.call(self.store.upsert_tournament, hb.tournament_uuid, hb.tournament_name or "")
            date = dt.date.fromisoformat(hb.day_date) if hb.day_date else None
            await self.db.call(
                self.store.upsert_day, hb.tournament_day_uuid, hb.tournament_uuid, hb.day_number or 1, date
            )


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else url


async def run_master(config: MasterConfig) -> None:
    """Run until SIGTERM/SIGINT; the second signal forces the exit."""
    master = Master(config)
    await serve_until_signalled(master.async_startup, master.async_shutdown)
