"""The slave agent's lifecycle: repair what a crash left, start, run until told to stop, shut down.

Everything a court laptop runs lives on one asyncio loop; the SQLite writer is the one
worker thread. A second Ctrl-C forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from runtime.curve import fingerprint
from runtime.lifecycle import serve_until_signalled, spawn
from shared.records import EventRecord
from shared.wire import ObsStatus
from slave_agent.clips import ClipServer
from slave_agent.commands.book import CommandBook
from slave_agent.commands.dispatcher import CommandDispatcher
from slave_agent.commands.handlers import CourtHandlers, RecentLogs, register_handlers
from slave_agent.config import SlaveConfig
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import EventStore
from slave_agent.ingest import UdpIngest
from slave_agent.mdns import Advertiser
from slave_agent.obs.actions import CourtActions
from slave_agent.obs.court import CourtObs
from slave_agent.obs.director import ReplayDirector
from slave_agent.publisher import CourtStatus, Publisher
from slave_agent.resync import Resync
from slave_agent.security import CourtGuard

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
        self.clips: ClipServer | None = None
        self.obs: CourtObs | None = None
        self.resync: Resync | None = None
        self.director: ReplayDirector | None = None
        #: The court's OBS commands (mute, record, scene, replay buffer, replay, reconnect).
        self.actions: CourtActions | None = None
        #: The director's commands: at most once per id, answered on the ROUTER.
        self.commands: CommandDispatcher | None = None
        self.command_handlers: CourtHandlers | None = None
        self.recent_logs = RecentLogs()
        self._shut_down = False

    def on_commit(self, listener: Callable[[list[EventRecord]], None]) -> None:
        """Hear about every batch of events right after it is committed."""
        self.ingest.listeners.append(listener)

    async def async_startup(self) -> None:
        """Keys first (a bad key file stops the start), repair (sessions left open by a crash), then bind and serve.

        A start that fails part way (a port taken, OBS settings refused) lets go of what it had
        opened before it raises: sockets, threads and the database.
        """
        try:
            await self._async_start_parts()
        except BaseException:
            await self.async_shutdown()
            raise

    async def _async_start_parts(self) -> None:
        guard = self._guard()
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
            guard=guard,
        )
        self.on_commit(self.publisher.publish)
        self.clips = ClipServer(self.config.ivr.videos_root, self.publisher.reply)
        self.publisher.handlers["file_request"] = self.clips.handle
        logging.getLogger().addHandler(self.recent_logs)
        book = CommandBook(self.store.path)
        self.commands = CommandDispatcher(self.store.node_id, book, self.publisher.reply)
        self.command_handlers = CourtHandlers(
            store=self.store, run_db=self.ingest.async_in_writer, book=book, publisher=self.publisher,
            logs=self.recent_logs, videos_root=self.config.ivr.videos_root, actions=None,
        )
        register_handlers(self.commands, self.command_handlers)  # OBS actions fail "not set up" until OBS starts
        self.publisher.handlers["command"] = self.commands.on_router
        udp = self.config.udp
        await self.ingest.async_start(udp.host, udp.port, udp.receive_buffer_bytes, shared_port=udp.shared_port)
        await self.publisher.async_start()
        resync = self.config.resync
        if resync.sender_port is not None:
            self.resync = Resync(
                self.ingest,
                sender_port=resync.sender_port,
                sender_host=None if resync.sender_host is None else str(resync.sender_host),
                answer_seconds=resync.answer_seconds,
            )
            await self.resync.async_start(self.config.udp.host)
        if pub.mdns:
            self.advertiser = Advertiser(
                node_id=self.store.node_id,
                court=self.config.node.court,
                pub_port=self.publisher.pub_port,
                router_port=self.publisher.router_port,
                interface=pub.mdns_interface,
                public_key=guard.pair.public if guard else None,
            )
            await self.advertiser.async_start()
        self.obs = CourtObs(self.config.obs, self.store, self.ingest.async_in_writer)
        await self.obs.async_start()
        self.director = ReplayDirector(
            self.obs, self.store, self.config.ivr, court=self.config.node.court, publish=self.publisher.publish_ivr
        )
        await self.director.async_start()
        self.on_commit(self.director.on_commit)
        self.actions = CourtActions(self.obs, self.director)
        self.command_handlers.actions = self.actions
        self._spawn(self._async_reload_context(), "context-reload")
        self._spawn(self._async_keep_sessions_alive(), "session-keep-alive")
        day = self.store.day
        logger.info(
            "Court %r (node %s, epoch %s) ready; %s",
            self.config.node.court, self.store.node_id, self.store.epoch[:8],
            f"tagging events with {day.tournament_name} day {day.day_number}"
            if day else "no active tournament day (set one with `restrike slave tournament`)",
        )

    def _guard(self) -> CourtGuard | None:
        """The court's CURVE keys; raises ``KeyFileError``. Plain mode is allowed, but said at every start."""
        security = self.config.security
        if not security.curve:
            logger.warning(
                "CURVE is off ([security] curve = false): anyone on this network can read this court's events, "
                "fetch its history and command it. Turn it on for a tournament."
            )
            return None
        guard = CourtGuard.load(self.config.keys_folder, security.master_keys)
        logger.info("CURVE on: court key %s, %d trusted master key(s)", fingerprint(guard.pair.public), len(guard.masters))
        return guard

    def _court_status(self) -> CourtStatus:
        stats = self.ingest.stats
        return CourtStatus(
            received=stats.received, dropped=stats.dropped_queue_full, match=self.store.match_snapshot(),
            obs=self.obs.status() if self.obs is not None else ObsStatus(),
        )

    async def async_shutdown(self) -> None:
        """Stop everything started; safe to call again (a failed start has already shut down)."""
        if self._shut_down:
            return
        self._shut_down = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.commands is not None:
            await self.commands.async_stop()
            await self.commands.book.async_close()
        if self.director is not None:
            await self.director.async_stop()
        if self.obs is not None:
            await self.obs.async_stop()
        if self.advertiser is not None:
            await self.advertiser.async_stop()
        if self.resync is not None:
            await self.resync.async_stop()
        await self.ingest.async_stop()
        if self.clips is not None:
            await self.clips.async_stop()
        if self.publisher is not None:
            await self.publisher.async_stop()
        self.store.close()
        logging.getLogger().removeHandler(self.recent_logs)
        if self.ingest.address is None:  # never started: there is nothing to report
            return
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
    page = None
    if config.operator.enabled:
        from slave_agent.operator.server import OperatorServer  # NiceGUI is heavy: only the daemon loads it

        page = OperatorServer(agent, config.operator.host, config.operator.port)

    async def startup() -> None:
        await agent.async_startup()
        if page is not None:
            await page.async_start()

    async def shutdown() -> None:
        if page is not None:
            await page.async_stop()
        await agent.async_shutdown()

    await serve_until_signalled(startup, shutdown)
