"""``restrike demo``: a whole venue on one machine, nothing to install or configure.

Simulated courts send realistic PSS traffic to real slave agents (each with its own
SQLite); a master (embedded SQLite) subscribes to them over ZeroMQ. A live terminal view
shows, per court, the current match and how many events the court and the master hold.
Each simulated scoring software answers pull requests as TkStrike Gen2 does, and court 1's
agent is restarted once mid-session, as after a crash (its sender holds back meanwhile, so
nothing is lost): it asks for the match and shows it at once instead of at the next load.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.live import Live

from master.app import Master
from master.config import MasterConfig
from restrike.demo_view import VERSUS, CourtRow, EventRow, render
from restrike.ports import free_port
from restrike.sender import PullResponder
from restrike.venue_keys import set_up_venue
from runtime.lifecycle import stop_on_signals
from shared.pss.simulator import SimulatedSession, simulate_venue
from shared.records import EventRecord
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig

if TYPE_CHECKING:
    from master.console.server import ConsoleServer

__all__ = ["CourtCount", "DemoResult", "Venue", "run_demo"]

logger = logging.getLogger(__name__)


#: How often ``--plain`` prints its progress line.
PROGRESS_SECONDS = 5.0
#: The longest the stop waits for the master to store the courts' last events.
DRAIN_SECONDS = 10.0
#: Court 1's agent is restarted this long after the start (at half a shorter ``--duration``).
RESTART_AFTER_SECONDS = 60.0


@dataclass
class CourtCount:
    """One court's numbers when the demo stops: every one must reach the next stage."""

    sent: int
    received: int
    stored: int
    at_master: int

    @property
    def nothing_lost(self) -> bool:
        return self.sent == self.received and self.stored == self.at_master


@dataclass
class DemoResult:
    """What each side holds when the demo stops (the numbers must agree)."""

    courts: dict[str, CourtCount]
    interrupted: bool = False
    #: Answers to pull requests court 1 stored after its restart (None: stopped before it).
    resync_answers: int | None = None
    #: Why court 1's agent could not be restarted (None: it was, or the demo stopped before).
    restart_error: str | None = None

    @property
    def nothing_lost(self) -> bool:
        return all(count.nothing_lost for count in self.courts.values())


class _Player:
    """Sends one court's simulated session to its UDP port, its timing divided by ``speed``;
    its responder answers pull requests with what was sent, and ``gate`` holds it back."""

    def __init__(self, port: int, session: SimulatedSession, speed: float, responder: PullResponder):
        self.port = port
        self.session = session
        self.speed = speed
        self.responder = responder
        self.gate = asyncio.Event()
        self.gate.set()
        self.sent = 0

    async def async_play(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start = time.monotonic()
        try:
            for offset, line in self.session.lines:
                delay = start + offset / self.speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.gate.wait()
                payload = line.encode("utf-8")
                self.responder.sent(payload)  # its state first, as scoring software's: an answer is never older
                sock.sendto(payload, ("127.0.0.1", self.port))
                self.sent += 1
        finally:
            sock.close()


class Venue:
    """Simulated courts -> slave agents -> master, all on this event loop."""

    def __init__(self, data_dir: Path, courts: int, speed: float, seed: int, round_seconds: int, http_port: int = 0):
        self.data_dir = data_dir
        self.http_port = http_port
        self.console: ConsoleServer | None = None
        #: How to reach the web console (empty without one).
        self.sign_in = ""
        self.count = courts
        self.speed = speed
        self.seed = seed
        self.round_seconds = round_seconds
        self.agents: list[SlaveAgent] = []
        self.players: list[_Player] = []
        self.master: Master | None = None
        self.recent: deque[EventRow] = deque(maxlen=64)
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self.responders: list[PullResponder] = []
        #: Datagrams each court's earlier agents received (court 1's before its restart).
        self.received_before = [0] * courts
        self.restarted = False
        self._restart: asyncio.Task[None] | None = None

    async def async_start(self) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.responders = [PullResponder("127.0.0.1", 0).start() for _ in range(self.count)]
        master_config = MasterConfig(data_dir=self.data_dir / "master", mdns=False)
        # What a venue does by hand once: key pairs, every court trusting the master, every court approved.
        set_up_venue(
            master_config.keys_folder,
            {f"demo-court-{n}": self.data_dir / f"court{n}" / "keys" for n in range(1, self.count + 1)},
            master_config.url(),
        )
        for number in range(1, self.count + 1):
            cfg = SlaveConfig(
                data_dir=self.data_dir / f"court{number}",
                node={"node_id": f"demo-court-{number}", "court": f"Court {number}"},
                udp={"host": "127.0.0.1", "port": free_port()},
                publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
                # Simulated matches must never start recordings in an OBS that happens to run here.
                obs={"rec": {"enabled": False}, "str": {"enabled": False}},
                resync={"sender_port": self.responders[number - 1].port, "answer_seconds": 0.5},
            )
            agent = SlaveAgent(cfg)
            agent.on_commit(self._recorder(cfg.node.court))
            self.agents.append(agent)  # before starting: a half-started agent is still shut down
            await agent.async_startup()
        self.master = Master(master_config.model_copy(update={"endpoints": [
            f"{a.store.node_id}@127.0.0.1:{a.publisher.pub_port}:{a.publisher.router_port}" for a in self.agents if a.publisher
        ]}))
        await self.master.async_startup()
        if self.http_port:
            self.console, self.sign_in = await _async_start_console(self.master, self.http_port)
        sessions = simulate_venue(self.seed, self.count, matches=20, round_seconds=self.round_seconds,
                                  break_seconds=max(10, self.round_seconds // 2), gap_seconds=(5.0, 15.0))
        self.players = [
            _Player(a.config.udp.port, session, self.speed, r)
            for a, session, r in zip(self.agents, sessions, self.responders, strict=True)
        ]
        self._tasks = [asyncio.create_task(p.async_play(), name=f"player-{i + 1}") for i, p in enumerate(self.players)]
        self.started = time.monotonic()

    def _recorder(self, court: str) -> Callable[[list[EventRecord]], None]:
        def record(records: list[EventRecord]) -> None:
            self.recent.extend(EventRow(court, r.seq, r.code, r.event_category, r.raw) for r in records[-8:])
        return record

    def restart_later(self, delay: float) -> None:
        """Restart court 1's agent after ``delay`` seconds (see :meth:`_async_restart`)."""
        self._restart = asyncio.create_task(self._async_restart(delay), name="restart-court-1")

    async def _async_restart(self, delay: float) -> None:
        """Court 1's agent stops and starts again on its database, as after a crash. Its sender holds
        back meanwhile (so the counts still add up); the new agent asks it for the match."""
        await asyncio.sleep(delay)
        self.restarted = True  # from here on the restart is seen through (async_stop waits for it)
        player, agent = self.players[0], self.agents[0]
        player.gate.clear()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.received(0) < player.sent and time.monotonic() < deadline:  # taken in before the stop
            await asyncio.sleep(0.05)
        await agent.async_shutdown()
        self.received_before[0] = self.received(0)
        fresh = SlaveAgent(agent.config)
        fresh.on_commit(self._recorder(agent.config.node.court))
        self.agents[0] = fresh
        await fresh.async_startup()
        player.gate.set()

    def received(self, index: int) -> int:
        """Datagrams a court's agents received from its sender's write port (answers to pull requests aside)."""
        agent = self.agents[index]
        answers = agent.resync.stats.answers if agent.resync is not None else 0
        return self.received_before[index] + agent.ingest.stats.received - answers

    def at_master(self, agent: SlaveAgent) -> int:
        """How many of the court's current-epoch events the master holds (in order)."""
        links = [] if self.master is None else [link for link in self.master.links.values() if link.node_id == agent.store.node_id]
        return links[0].cursor.known.get(agent.store.epoch, 0) if links else 0

    def online(self, agent: SlaveAgent) -> bool:
        return self.master is not None and any(
            link.online for link in self.master.links.values() if link.node_id == agent.store.node_id
        )

    def progress(self) -> str:
        """One line for ``--plain``: how far the venue is, in 80 columns."""
        online = sum(self.online(a) for a in self.agents)
        return (f"{time.monotonic() - self.started:4.0f} s  sent {sum(p.sent for p in self.players)}  "
                f"stored at courts {sum(a.store.last_seq for a in self.agents)}  "
                f"at master {sum(self.at_master(a) for a in self.agents)}  online {online}/{len(self.agents)}")

    def view(self, width: int, height: int) -> RenderableType:
        rows = []
        for agent in self.agents:
            snap = agent.store.match_snapshot()
            clock = snap.break_seconds if snap.break_active else snap.clock_seconds
            won = snap.rounds_won
            blue = f"{snap.blue.noc} {snap.blue.name}".strip() or "-"
            red = f"{snap.red.noc} {snap.red.name}".strip() or "-"
            rows.append(CourtRow((
                agent.config.node.court,
                snap.number or "-",
                f"{blue}{VERSUS}{red}",
                f"{snap.round} ({won.blue}-{won.red})",
                f"{clock // 60}:{clock % 60:02d}" if clock is not None else "-",
                f"{snap.score.blue}:{snap.score.red}",
                snap.status.value,
                str(agent.store.last_seq),
                str(self.at_master(agent)),
                "online" if self.online(agent) else "offline",
            ), self.online(agent)))
        title = (f"reStrike VTA demo · {len(self.agents)} simulated courts → agents → master · "
                 f"{time.monotonic() - self.started:.0f} s · Ctrl-C to stop")
        return render(title, rows, list(self.recent), width, height)

    async def _async_drained(self) -> None:
        """Every datagram sent is received and committed at its court, and the master holds every event."""
        for index, (agent, player) in enumerate(zip(self.agents, self.players, strict=False)):
            while self.received(index) < player.sent:  # still in the socket's buffer
                await asyncio.sleep(0.05)
            await agent.ingest.queue.join()
        while not all(self.at_master(agent) >= agent.store.last_seq for agent in self.agents):
            await asyncio.sleep(0.1)

    async def async_stop(self, drain_seconds: float = DRAIN_SECONDS) -> DemoResult:
        """Stop the senders, let the courts and the master store what is under way (bounded), count, shut down."""
        restart_error = None
        if self._restart is not None:
            if not self.restarted:
                self._restart.cancel()  # still waiting for its moment
            (outcome,) = await asyncio.gather(self._restart, return_exceptions=True)
            if isinstance(outcome, Exception):
                restart_error = str(outcome) or type(outcome).__name__
                logger.error("Court 1's agent could not be restarted: %s", restart_error)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._async_drained(), drain_seconds)
        except TimeoutError:
            pass  # the numbers below show what did not arrive
        result = DemoResult({
            a.config.node.court: CourtCount(p.sent, self.received(i), a.store.last_seq, self.at_master(a))
            for i, (a, p) in enumerate(zip(self.agents, self.players, strict=False))
        })
        result.restart_error = restart_error
        if self.restarted and restart_error is None and self.agents[0].resync is not None:
            result.resync_answers = self.agents[0].resync.stats.answers
        if self.console is not None:
            await self.console.async_stop()
        if self.master is not None:
            await self.master.async_shutdown()
        for agent in self.agents:
            await agent.async_shutdown()
        for responder in self.responders:
            responder.close()
        return result


async def run_demo(
    data_dir: Path,
    *,
    courts: int = 2,
    speed: float = 10.0,
    duration: float = 0.0,
    seed: int = 1,
    round_seconds: int = 120,
    console: Console | None = None,
    live: bool = True,
    http_port: int = 8080,
) -> DemoResult:
    """Run the venue until ``duration`` seconds pass (0 = until Ctrl-C or SIGTERM), then stop it cleanly.

    With ``live`` the view follows the terminal's size; otherwise a progress line every few seconds.
    """
    console = console or Console()
    venue = Venue(data_dir, courts, speed, seed, round_seconds, http_port)
    interrupted = False
    try:
        with stop_on_signals() as stopped:
            await venue.async_start()
            if venue.sign_in:  # on stderr, above the view: stdout keeps the view or the progress lines
                print(venue.sign_in, file=sys.stderr, flush=True)
            venue.restart_later(min(RESTART_AFTER_SECONDS, duration / 2) if duration else RESTART_AFTER_SECONDS)
            if duration:
                asyncio.get_running_loop().call_later(duration, stopped.set)
            if live:
                with Live(console=console, refresh_per_second=4, get_renderable=lambda: venue.view(*console.size)):
                    await stopped.wait()
            else:
                while not stopped.is_set():
                    try:
                        await asyncio.wait_for(stopped.wait(), PROGRESS_SECONDS)
                    except TimeoutError:
                        console.print(venue.progress(), highlight=False, soft_wrap=True)
            interrupted = not duration or time.monotonic() - venue.started < duration
    finally:
        result = await venue.async_stop()
    result.interrupted = interrupted
    return result


async def _async_start_console(master: Master, port: int) -> tuple[ConsoleServer, str]:
    """The web console on this machine, with a user ``director`` whose password is new at every run."""
    from master.accounts import AccountStore
    from master.console.errors import ConsoleUnavailable
    from master.console.server import ConsoleServer

    password = secrets.token_urlsafe(9)
    store = AccountStore(master.url)
    try:
        store.add_user("director", password)
    finally:
        store.close()
    console = ConsoleServer(master, "127.0.0.1", port, session_hours=12)
    try:
        await console.async_start()
    except ConsoleUnavailable as exc:
        logger.warning("%s: using any free port instead", exc)
        console = ConsoleServer(master, "127.0.0.1", 0, session_hours=12)
        await console.async_start()
    return console, f"Console: {console.url}/ · sign in as director, password {password} · overlay: {console.url}/overlay"
