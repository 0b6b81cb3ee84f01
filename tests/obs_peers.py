"""Real OBS Studio and mpv for the tests: headless, each OBS with its own home, port and display."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from master.app import Master
from master.config import MasterConfig
from restrike.headless_obs import HeadlessObs, available
from restrike.ports import free_port
from restrike.venue_keys import exchange_keys, set_up_venue
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from slave_agent.obs.triggers import TriggerKind, TriggerLog

_names = itertools.count(1)


@contextmanager
def running_obs(root: Path, *, password: str | None = None) -> Iterator[HeadlessObs]:
    """A started OBS, stopped with SIGINT (and its Xvfb ended) whatever happens in the block."""
    problem = available()
    if problem is not None:
        pytest.fail(f"OBS tests need a real OBS: {problem}; scripts/services installs it")
    instance = HeadlessObs(root / f"obs{next(_names)}", password=password)
    try:
        yield instance.start()
    finally:
        instance.close()


MATCH_101 = [
    "pre;FightLoaded",
    "at1;T. KIM;KIM Tae-hun;KOR;at2;J. SMITH;John Smith/Jr.;USA",
    "mch;101;Final;M -58kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
    "clk;02:00",
    "rdy;FightReady",
]
MATCH_102 = [
    "pre;FightLoaded",
    "at1;Perica;Perica;CRO;at2;Stevica;Stevica;GER",
    "mch;102;Final;F -49kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
    "rdy;FightReady",
]


class Court:
    """The agent under test with what the test drives and watches."""

    def __init__(self, tmp: Path, rec: HeadlessObs, streamer: HeadlessObs, *, videos: Path | None = None,
                 rec_overrides: dict[str, Any] | None = None, str_overrides: dict[str, Any] | None = None,
                 ivr_overrides: dict[str, Any] | None = None):
        self.videos = videos or tmp / "videos"
        exchange_keys(tmp / "master" / "keys", {"court-7": tmp / "court" / "keys"})  # trusts the test's master
        self.config = SlaveConfig(
            data_dir=tmp / "court",
            node={"node_id": "court-7", "court": "Court 7"},
            udp={"host": "127.0.0.1", "port": free_port()},
            publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
            obs={"rec": {"port": rec.port, "keepalive_seconds": 0.5, **(rec_overrides or {})},
                 "str": {"port": streamer.port, "keepalive_seconds": 0.5, **(str_overrides or {})}},
            ivr={"videos_root": str(self.videos), "replay_buffer_seconds": 5, "start_before_end_seconds": 2.0,
                 "player_arguments": ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"], **(ivr_overrides or {})},
        )
        self.agent = SlaveAgent(self.config)
        tournament = self.agent.store.create_tournament("Croatia Open: 2026")
        for day in (1, 2):
            self.agent.store.add_day(tournament, day, f"2026-12-0{day + 1}")
        self.agent.store.activate_day(tournament, 2)
        self.logs: list[TriggerLog] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @property
    def db(self) -> sqlite3.Connection:
        return self.agent.store.conn

    def send(self, *lines: str) -> None:
        for line in lines:
            self.sock.sendto(line.encode(), ("127.0.0.1", self.config.udp.port))

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; trigger log: {self.logs}") from None

    async def next_log(self, kind: TriggerKind) -> TriggerLog:
        count = len([log for log in self.logs if log.trigger.kind is kind])
        await self.until(lambda: len([log for log in self.logs if log.trigger.kind is kind]) > count, kind.value)
        return [log for log in self.logs if log.trigger.kind is kind][-1]


@asynccontextmanager
async def running_court(
    tmp: Path, rec: HeadlessObs, streamer: HeadlessObs, *, wait_up: bool = True, **options: Any
) -> AsyncIterator[Court]:
    """A court agent on both OBS, started (and both connections up, unless ``wait_up`` is false)."""
    court = Court(tmp, rec, streamer, **options)
    await court.agent.async_startup()
    try:
        assert court.agent.director is not None and court.agent.obs is not None
        court.agent.director.on_log(court.logs.append)
        for sup in court.agent.obs.supervisors if wait_up else ():
            await sup.async_wait_up(20)
        yield court
    finally:
        court.sock.close()
        await court.agent.async_shutdown()


def central_url(tmp: Path) -> str:
    """The embedded SQLite central database of a test's master."""
    return f"sqlite:///{tmp / 'central.sqlite3'}"


async def async_listening_master(court: Court, tmp: Path) -> Master:
    """A master on the test's loop that follows the court over CURVE (keys exchanged, court approved)."""
    publisher = court.agent.publisher
    assert publisher is not None
    node_id = court.agent.store.node_id
    set_up_venue(tmp / "master" / "keys", {node_id: court.config.data_dir / "keys"}, central_url(tmp))
    master = Master(MasterConfig(
        data_dir=tmp / "master", database_url=central_url(tmp), mdns=False,
        endpoints=[f"{node_id}@127.0.0.1:{publisher.pub_port}:{publisher.router_port}"],
    ))
    await master.async_startup()
    return master
