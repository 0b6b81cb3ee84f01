"""The master's live match per court, through a real court agent and real sockets.

The agent and the master run on one event loop (so the test can read both memories);
everything between them is the real UDP -> SQLite -> PUB/ROUTER -> SUB/DEALER path.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from master.app import Master
from master.config import MasterConfig
from master.db.repository import CentralRepository
from master.live import CourtMatch
from master.services.courts import CourtView, stored_courts
from restrike.ports import free_port
from restrike.venue_keys import exchange_keys, set_up_venue
from shared.match_state import MatchStatus
from shared.pss.simulator import simulate_match
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from slave_agent.publisher import CourtStatus
from tests.support import async_wait_until

LINES = [line for _, line in simulate_match(11).lines]


async def play(agent: SlaveAgent, lines: list[str]) -> None:
    """Send lines to the court in small bursts, each taken in before the next (loopback UDP drops a flood),
    and wait until the court has stored them all."""
    before = agent.ingest.stats.received
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for start in range(0, len(lines), 20):
            for line in lines[start : start + 20]:
                sock.sendto(line.encode(), ("127.0.0.1", agent.config.udp.port))
            sent = before + start + len(lines[start : start + 20])
            await async_wait_until(lambda n=sent: agent.ingest.stats.received >= n, 20, f"{sent} datagrams at the court")
    await agent.ingest.queue.join()  # all committed (and published)


def court_agent(tmp_path: Path, heartbeat_seconds: float) -> SlaveAgent:
    exchange_keys(tmp_path / "master" / "keys", {"court-live": tmp_path / "court" / "keys"})
    return SlaveAgent(SlaveConfig(
        data_dir=tmp_path / "court",
        node={"node_id": "court-live", "court": "Court L"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False,
                   "heartbeat_seconds": heartbeat_seconds},
    ))


def master_for(agent: SlaveAgent, url: str, tmp_path: Path) -> Master:
    assert agent.publisher is not None
    set_up_venue(tmp_path / "master" / "keys", {"court-live": tmp_path / "court" / "keys"}, url)
    return Master(MasterConfig(
        data_dir=tmp_path / "master", database_url=url, mdns=False,
        endpoints=[f"court-live@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}"],
    ))


async def in_step(master: Master, agent: SlaveAgent) -> CourtMatch:
    """The master's match of the court once it has folded every event the court stored."""
    await async_wait_until(
        lambda: (c := master.matches.get("court-live")) is not None and c.seq == agent.store.last_seq,
        20, f"the master's live match at seq {agent.store.last_seq}",
    )
    court = master.matches.get("court-live")
    assert court is not None
    return court


def test_the_master_folds_the_match_from_live_events(tmp_path: Path) -> None:
    """Heartbeats without a snapshot: the score the master shows comes from the events themselves."""

    async def main() -> None:
        agent = court_agent(tmp_path, heartbeat_seconds=0.2)
        await agent.async_startup()
        assert agent.publisher is not None
        agent.publisher.status = CourtStatus  # every heartbeat says "no match"
        master = master_for(agent, f"sqlite:///{tmp_path / 'central.sqlite3'}", tmp_path)
        await master.async_startup()
        try:
            assert agent.publisher is not None
            await async_wait_until(lambda: master.matches.get("court-live") is not None, 20, "the court's first heartbeat")
            court = master.matches.get("court-live")
            assert court is not None
            scores: list[tuple[int, int]] = []
            master.matches.subscribe(lambda c: scores.append((c.snapshot().score.blue, c.snapshot().score.red)),
                                     node_id="court-live")
            woken = asyncio.create_task(court.async_changed(court.version))

            await play(agent, LINES[: len(LINES) // 2])
            court = await in_step(master, agent)
            assert court.snapshot() == agent.store.match_snapshot()
            assert court.snapshot().status in (MatchStatus.RUNNING, MatchStatus.PAUSED, MatchStatus.BREAK)
            assert woken.done()

            await play(agent, LINES[len(LINES) // 2 :])
            court = await in_step(master, agent)
            assert court.snapshot() == agent.store.match_snapshot()
            assert court.snapshot().status is MatchStatus.FINISHED
            assert len(set(scores)) > 5  # the listener saw the score move, not just the end

            # The courts service in the master's process: the same match, from memory, no database.
            await async_wait_until(  # the match row's change may still be on its way to the database after the events
                lambda: master.courts()[0].stored_seq == master.courts()[0].published_seq == agent.store.last_seq
                and master.courts()[0].held == 0,
                20, "a heartbeat after the last event, and every event and row change stored",
            )
            (view,) = master.courts()
            assert (view.node_id, view.court, view.status, view.source) == ("court-live", "Court L", "online", "live")
            assert view.match == agent.store.match_snapshot()
            assert view.lag == 0 and view.health is not None
            assert (view.held, view.not_held) == (0, 0)  # everything stored; nothing left on the court
        finally:
            await master.async_shutdown()
            await agent.async_shutdown()

    asyncio.run(main())


def test_a_master_restarted_mid_match_takes_the_court_state_and_follows(central_url: str, tmp_path: Path) -> None:
    """The restarted master adopts the heartbeat's snapshot, then folds the events after it."""

    async def main() -> None:
        agent = court_agent(tmp_path, heartbeat_seconds=0.2)
        await agent.async_startup()
        first = master_for(agent, central_url, tmp_path)
        await first.async_startup()
        try:
            third = len(LINES) // 3
            await play(agent, LINES[:third])
            assert (await in_step(first, agent)).snapshot() == agent.store.match_snapshot()
        finally:
            await first.async_shutdown()
        await play(agent, LINES[third : 2 * third])  # scored while the master is down
        second = master_for(agent, central_url, tmp_path)
        await second.async_startup()
        try:
            assert (await in_step(second, agent)).snapshot() == agent.store.match_snapshot()
            await play(agent, LINES[2 * third :])
            court = await in_step(second, agent)
            assert court.snapshot() == agent.store.match_snapshot()
            assert court.snapshot().status is MatchStatus.FINISHED

            # What `restrike master status` reads in another process: the node row the master wrote.
            assert second.store is not None
            repository = CentralRepository(second.store.engine)
            stored: list[CourtView] = []

            def written() -> bool:
                stored[:] = stored_courts(repository)
                return bool(stored) and stored[0].match == court.snapshot()

            await async_wait_until(written, 20, "the node row with the finished match")
            (view,) = stored
            assert (view.status, view.source, view.lag, view.events) == ("online", "database", 0, agent.store.last_seq)
            assert view.obs is not None and view.as_of is not None
        finally:
            await second.async_shutdown()
            await agent.async_shutdown()

    asyncio.run(main())
