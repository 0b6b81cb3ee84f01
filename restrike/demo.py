"""``restrike demo``: a whole venue on one machine, nothing to install or configure.

Simulated courts send realistic PSS traffic to real slave agents (each with its own
SQLite); a master (embedded SQLite) subscribes to them over ZeroMQ. A live terminal view
shows, per court, the current match and how many events the court and the master hold.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from master.app import Master
from master.config import MasterConfig
from shared.pss.simulator import simulate_session
from shared.records import EventRecord
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What each side holds when the demo stops (the numbers must agree)."""

    stored_by_courts: dict[str, int]
    stored_by_master: dict[str, int]

    @property
    def nothing_lost(self) -> bool:
        return self.stored_by_courts == self.stored_by_master


class _Recent:
    """The last few committed events of one court, for the live view."""

    def __init__(self, court: str, size: int = 4):
        self.court = court
        self.records: deque[EventRecord] = deque(maxlen=size)

    def __call__(self, records: list[EventRecord]) -> None:
        self.records.extend(records[-self.records.maxlen :])  # type: ignore[misc]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _async_play(port: int, seed: int, speed: float, round_seconds: int, matches: int) -> None:
    """Send a simulated session to a court's UDP port with its timing divided by ``speed``."""
    session = simulate_session(seed, matches=matches, round_seconds=round_seconds, break_seconds=max(10, round_seconds // 2),
                               gap_seconds=(5.0, 15.0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    try:
        for offset, line in session.lines:
            delay = start + offset / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sock.sendto(line.encode("utf-8"), ("127.0.0.1", port))
    finally:
        sock.close()


def _view(agents: list[SlaveAgent], recents: list[_Recent], master: Master, started: float) -> Group:
    courts = Table(title="Courts", expand=True)
    for column in ("court", "match", "blue", "red", "round (won)", "clock", "score", "status", "stored at court", "at master", "link"):
        courts.add_column(column)
    links = {link.node_id: link for link in master.links.values()}
    for agent in agents:
        snap = agent.store.match_state.snapshot()
        link = links.get(agent.store.node_id)
        clock = snap["break_seconds"] if snap["break_seconds"] is not None else snap["clock_seconds"]
        won = snap["rounds_won"]
        courts.add_row(
            agent.config.node.court,
            snap["match_number"] or "-",
            f"{snap['blue']['name']} {snap['blue']['noc']}".strip() or "-",
            f"{snap['red']['name']} {snap['red']['noc']}".strip() or "-",
            f"{snap['round']} ({won['blue']}-{won['red']})",
            f"{clock // 60}:{clock % 60:02d}" if clock is not None else "-",
            f"{snap['score']['blue']} : {snap['score']['red']}",
            snap["status"],
            str(agent.store.last_seq),
            str(link.cursor.known.get(agent.store.epoch, 0)) if link else "0",
            "[green]online[/green]" if link and link.online else "[red]offline[/red]",
        )
    recent = Table(title="Latest events stored (all courts)", expand=True)
    for column in ("court", "seq", "code", "cat", "raw"):
        recent.add_column(column)
    for court in recents:
        for record in court.records:
            recent.add_row(court.court, str(record.seq), record.code, record.event_category, record.raw[:70])
    elapsed = time.monotonic() - started
    return Group(
        Panel(f"reStrike VTA demo · {len(agents)} simulated courts → slave agents → master · {elapsed:.0f} s · Ctrl-C to stop"),
        courts,
        recent,
    )


async def run_demo(
    data_dir: Path,
    *,
    courts: int = 2,
    speed: float = 10.0,
    duration: float = 0.0,
    seed: int = 1,
    round_seconds: int = 120,
    live: bool = True,
) -> DemoResult:
    """Run the venue until ``duration`` seconds pass (0 = until cancelled), then stop it cleanly."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    agents: list[SlaveAgent] = []
    recents: list[_Recent] = []
    for number in range(1, courts + 1):
        cfg = SlaveConfig(
            data_dir=data_dir / f"court{number}",
            node={"node_id": f"demo-court-{number}", "court": f"Court {number}"},
            udp={"host": "127.0.0.1", "port": _free_port()},
            publisher={"host": "127.0.0.1", "pub_port": _free_port(), "router_port": _free_port(), "mdns": False},
        )
        agent = SlaveAgent(cfg)
        recents.append(_Recent(cfg.node.court))
        agent.on_commit(recents[-1])
        await agent.async_startup()
        agents.append(agent)
    master = Master(MasterConfig(
        data_dir=data_dir / "master",
        mdns=False,
        endpoints=[f"127.0.0.1:{a.publisher.pub_port}:{a.publisher.router_port}" for a in agents if a.publisher],
    ))
    await master.async_startup()
    players = [
        asyncio.create_task(_async_play(a.config.udp.port, seed + i, speed, round_seconds, matches=20))
        for i, a in enumerate(agents)
    ]
    started = time.monotonic()
    try:
        if live:
            with Live(_view(agents, recents, master, started), refresh_per_second=4, screen=False) as view:
                while duration == 0 or time.monotonic() - started < duration:
                    await asyncio.sleep(0.25)
                    view.update(_view(agents, recents, master, started))
        else:
            await asyncio.sleep(duration)
    finally:
        for task in players:
            task.cancel()
        await asyncio.gather(*players, return_exceptions=True)
        await _async_settle(agents, master)
        result = DemoResult(
            stored_by_courts={a.config.node.court: a.store.last_seq for a in agents},
            stored_by_master={
                a.config.node.court: next(
                    (link.cursor.known.get(a.store.epoch, 0) for link in master.links.values() if link.node_id == a.store.node_id), 0
                )
                for a in agents
            },
        )
        await master.async_shutdown()
        for agent in agents:
            await agent.async_shutdown()
    return result


async def _async_settle(agents: list[SlaveAgent], master: Master, timeout: float = 10.0) -> None:
    """Give the master a moment to store the last events before comparing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        links = {link.node_id: link for link in master.links.values()}
        if all(
            (link := links.get(a.store.node_id)) is not None and link.cursor.known.get(a.store.epoch, 0) >= a.store.last_seq
            for a in agents
        ):
            return
        await asyncio.sleep(0.1)
