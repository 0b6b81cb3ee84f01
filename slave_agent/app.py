"""The slave agent's lifecycle: repair what a crash left, start, run until told to stop, shut down.

Everything a court laptop runs lives on one asyncio loop; the SQLite writer is the one
worker thread. A second Ctrl-C forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from restrike.lifecycle import serve_until_signalled, spawn
from shared.records import EventRecord
from slave_agent.config import SlaveConfig
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import EventStore
from slave_agent.ingest import UdpIngest
from slave_agent.mdns import Advertiser
from slave_agent.publisher import CourtStatus, Publisher

__all__ = ["SlaveAgent", "run_agent"]

logger = logging.getLogger(__name__)

CONTEXT_RELOAD_SECONDS = 2.0
KEEP_ALIVE_SECONDS = 5.0


class SlaveAgent:
    """One court: ingest, store and (when present) the publisher, wired together."""

    def __init__(self, config: SlaveConfig):
        self.config = config
        self.store = EventStore(
            config.data_dir, node_id=config.node.node_id, synchronous=config.store.synchronous
        )
        self.ingest = UdpIngest(
            self.store,
            queue_size=config.udp.queue_size,
            max_batch=config.store.max_batch,
            retry_seconds=config.store.retry_seconds,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.publisher: Publisher | None = None
        self.advertiser: Advertiser | None = None

    def on_commit(self, listener: Callable[[list[EventRecord]], None]) -> None:
        """Hear about every batch of events right after it is committed."""
        self.ingest.listeners.append(listener)

    async def async_startup(self) -> None:
        """Repair first (sessions left open by a crash), then bind and serve."""
        repaired = SessionBook(self.store.conn).repair_after_restart()
        for session in repaired:
            logger.warning(
                "Closed %s session %d left open by an unclean stop (reason: %s)",
                session.session_type, session.number, session.interruption_reason,
            )
        pub = self.config.publisher
        self.publisher = Publisher(
            self.store,
            court=self.config.node.court,
            host=pub.host,
            pub_port=pub.pub_port,
            router_port=pub.router_port,
            heartbeat_seconds=pub.heartbeat_seconds,
            status=self._court_status,
        )
        self.on_commit(self.publisher.publish)
        await self.ingest.async_start(
            self.config.udp.host, self.config.udp.port, self.config.udp.receive_buffer_bytes
        )
        await self.publisher.async_start()
        if pub.mdns:
            self.advertiser = Advertiser(
                node_id=self.store.node_id,
                court=self.config.node.court,
                pub_port=self.publisher.pub_port,
                router_port=self.publisher.router_port,
                interface=pub.mdns_interface,
            )
            await self.advertiser.async_start()
        self._spawn(self._async_reload_context(), "context-reload")
        self._spawn(self._async_keep_sessions_alive(), "session-keep-alive")
        day = self.store.day
        logger.info(
            "Court %r (node %s, epoch %s) ready; %s",
            self.config.node.court, self.store.node_id, self.store.epoch[:8],
            f"tagging events with {day.tournament_name} day {day.day_number}"
            if day else "no active tournament day (set one with `restrike slave tournament`)",
        )

    def _court_status(self) -> CourtStatus:
        stats = self.ingest.stats
        return CourtStatus(
            received=stats.received, dropped=stats.dropped_queue_full, match=self.store.match_state.snapshot()
        )

    async def async_shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.advertiser is not None:
            await self.advertiser.async_stop()
        await self.ingest.async_stop()
        if self.publisher is not None:
            await self.publisher.async_stop()
        self.store.close()
        logger.info(
            "Stopped: %d datagrams received, %d events stored, %d dropped (queue full)",
            self.ingest.stats.received, self.ingest.stats.stored_events,
            self.ingest.stats.dropped_queue_full,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        spawn(self._tasks, coro, name, logger)

    async def _async_keep_sessions_alive(self) -> None:
        """Date open OBS sessions' last sign of life, so the repair after a power cut ends them there."""
        book = SessionBook(self.store.conn)
        while True:
            await asyncio.sleep(KEEP_ALIVE_SECONDS)
            await self.ingest.async_in_writer(book.keep_alive)

    async def _async_reload_context(self) -> None:
        """Follow a tournament day activated from the CLI while the agent runs."""
        while True:
            await asyncio.sleep(CONTEXT_RELOAD_SECONDS)
            before = self.store.day
            await self.ingest.async_in_writer(self.store.reload_context)
            if self.store.day != before:
                day = self.store.day
                logger.info(
                    "Tournament context is now %s",
                    f"{day.tournament_name} day {day.day_number}" if day else "none",
                )


async def run_agent(config: SlaveConfig) -> None:
    """Run until SIGTERM/SIGINT; the second signal forces the exit."""
    agent = SlaveAgent(config)
    await serve_until_signalled(agent.async_startup, agent.async_shutdown)
