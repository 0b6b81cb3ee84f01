"""The director's commands, end to end: real court agents, a real master, real sockets, CURVE on.

Courts and master share one event loop here (so the test can look into both); the commands
travel the real DEALER -> ROUTER path. OBS actions against a real OBS are in
tests/slave_agent/obs/test_obs_commands.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from master.app import Master
from master.audit import read_commands
from master.config import MasterConfig
from master.control import UnknownCourt
from restrike.venue_keys import set_up_venue
from shared.commands import Action, BadArguments, DayReport, HealthReport, LogLines, Priority
from shared.wire import Command
from slave_agent.app import SlaveAgent
from slave_agent.operator.server import OperatorServer
from tests.support import async_wait_until, court_config, restrike_exe, send_pss

pytestmark = pytest.mark.slow


class Venue:
    def __init__(self, tmp: Path, courts: int):
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'central.sqlite3'}"
        self.configs = [court_config(tmp, n) for n in range(1, courts + 1)]
        set_up_venue(tmp / "master" / "keys", {c.node.node_id or "": c.data_dir / "keys" for c in self.configs}, self.url)
        self.agents: list[SlaveAgent] = []
        self.master = Master(MasterConfig(
            data_dir=tmp / "master", database_url=self.url, mdns=False, http_port=0, heartbeat_seconds=0.3,
            endpoints=[f"{c.node.node_id}@127.0.0.1:{c.publisher.pub_port}:{c.publisher.router_port}" for c in self.configs],
        ))

    async def async_start_court(self, index: int) -> SlaveAgent:
        agent = SlaveAgent(self.configs[index])
        await agent.async_startup()
        if index < len(self.agents):
            self.agents[index] = agent
        else:
            self.agents.append(agent)
        return agent

    async def async_online(self) -> None:
        await async_wait_until(lambda: len(self.master.links) == len(self.configs)
                               and all(link.online for link in self.master.links.values()), 15, "every court online")


@asynccontextmanager
async def venue(tmp: Path, courts: int) -> AsyncIterator[Venue]:
    v = Venue(tmp, courts)
    try:
        for i in range(courts):
            await v.async_start_court(i)
        await v.master.async_startup()
        await v.async_online()
        yield v
    finally:
        await v.master.async_shutdown()
        for agent in v.agents:
            await agent.async_shutdown()


def test_court_actions_reach_every_court_and_have_their_effect(tmp_path: Path) -> None:
    async def main() -> None:
        async with venue(tmp_path, 2) as v:
            control = v.master.control
            assert control is not None
            heard: list[str] = []
            assert v.agents[0].command_handlers is not None
            v.agents[0].command_handlers.message_listeners.append(lambda m: heard.append(m.text))
            page = OperatorServer(v.agents[0], "127.0.0.1", 0)  # the court's local page (its state; no web server here)
            await page.async_follow_messages()

            health = await control.async_send(Action.HEALTH)
            assert [r.outcome for r in health.results] == ["done", "done"]
            report = health.results[0].data
            assert isinstance(report, HealthReport) and report.epoch == v.agents[0].store.epoch and report.uptime_seconds >= 0

            day = await control.async_send(Action.ACTIVATE_DAY, {"tournament_name": "Croatia Open", "day_number": 2,
                                                                 "date": "2026-12-03"})
            assert [r.outcome for r in day.results] == ["done", "done"]
            reports = [r.data for r in day.results]
            assert all(isinstance(r, DayReport) for r in reports)
            assert len({r.day_uuid for r in reports}) == 1  # every court tags the same day  # type: ignore[union-attr]
            for agent, r in zip(v.agents, reports, strict=True):
                assert agent.store.day is not None and agent.store.day.day_uuid == r.day_uuid  # type: ignore[union-attr]
                assert (Path(r.folder) / "IVR recordings").is_dir()  # type: ignore[union-attr]
            send_pss(v.configs[0].udp.port, "clk;02:00")
            await async_wait_until(lambda: v.agents[0].store.last_seq >= 1, 10, "the event stored")
            assert v.agents[0].store.events()[-1].tournament_day_uuid == reports[0].day_uuid  # type: ignore[union-attr]

            message = await control.async_announce("Break: 10 minutes", courts=["Court 1"], priority=Priority.HIGH)
            assert [r.outcome for r in message.results] == ["done"] and heard == ["Break: 10 minutes"]
            stored = sqlite3.connect(v.configs[0].data_dir / "restrike-slave.sqlite3").execute(
                "SELECT text, priority, announcement_id FROM director_messages").fetchall()
            assert stored == [("Break: 10 minutes", "high", message.announcement_id)]
            assert [(m["text"], m["priority"]) for m in page.status()["messages"]] == [("Break: 10 minutes", "high")]

            logs = await control.async_send(Action.LOGS, {"lines": 500}, courts=["court-1"])
            lines = logs.results[0].data
            assert isinstance(lines, LogLines)
            assert any("Message from the director (high): Break: 10 minutes" in line for line in lines.lines)

            finished = await control.async_send(Action.FINISH_DAY)
            assert [r.outcome for r in finished.results] == ["done", "done"]
            assert all(agent.store.day is None for agent in v.agents)
            again = await control.async_send(Action.FINISH_DAY, courts=["court-2"])
            assert again.results[0].outcome == "failed" and "no tournament day" in (again.results[0].reason or "")

            obs = await control.async_send(Action.START_RECORDING, courts=["court-2"])
            assert obs.results[0].outcome == "failed" and "not configured" in (obs.results[0].reason or "")
            with pytest.raises(BadArguments):
                await control.async_send(Action.SET_SCENE, {})
            with pytest.raises(UnknownCourt, match="Court 1 \\(court-1\\), Court 2 \\(court-2\\)"):
                await control.async_send(Action.HEALTH, courts=["Court 9"])
            await control.async_flush()

            audit = read_commands(v.master.store.engine, limit=100)  # type: ignore[union-attr]
            assert {(row.action, row.node_id, row.outcome) for row in audit} >= {
                ("health", "court-1", "done"), ("health", "court-2", "done"), ("message", "court-1", "done"),
                ("finish_day", "court-2", "failed"), ("start_recording", "court-2", "failed"),
            }
            assert all(row.issued_by and row.round_trip_ms is not None for row in audit)

    asyncio.run(main())


def test_bulk_with_a_court_unplugged_answers_the_others_and_expires_it_within_the_deadline(tmp_path: Path) -> None:
    async def main() -> None:
        async with venue(tmp_path, 3) as v:
            control = v.master.control
            assert control is not None
            await v.agents[2].async_shutdown()  # court 3's laptop is gone
            began = time.monotonic()
            result = await control.async_send(Action.HEALTH, timeout=2.0)
            took = time.monotonic() - began
            assert [(r.node_id, r.outcome) for r in result.results] == [
                ("court-1", "done"), ("court-2", "done"), ("court-3", "expired")]
            assert max(r.round_trip_ms for r in result.results[:2]) < 1000  # the live courts never waited for it
            assert 2.0 <= took < 2.5, took  # the dead court costs the deadline, no more
            await v.async_start_court(2)  # back (its handlers, keys and database as before)

    asyncio.run(main())


def test_a_command_retried_after_the_court_restarted_ran_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with venue(tmp_path, 1) as v:
            (link,) = v.master.links.values()
            now = time.time_ns() // 1_000_000
            command = Command(command_id=uuid.uuid4().hex, node_id="court-1", action="message",
                              args={"text": "once only"}, sent_ms=now, deadline_ms=now + 20_000)
            first = await link.commands.async_call(command)
            assert first is not None and (first.outcome, first.replayed) == ("done", False)
            await v.agents[0].async_shutdown()
            await v.async_start_court(0)  # the agent restarts on its database
            await async_wait_until(lambda: link.online, 15, "the court back")
            again = await link.commands.async_call(command)  # the master retries the same id
            assert again is not None and (again.outcome, again.replayed) == ("done", True)
            rows = sqlite3.connect(v.configs[0].data_dir / "restrike-slave.sqlite3").execute(
                "SELECT COUNT(*) FROM director_messages WHERE text = 'once only'").fetchone()
            assert rows == (1,)  # shown once, although the court got the command twice

    asyncio.run(main())


def test_send_announce_and_audit_from_the_terminal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the courts keep their INFO lines, as under `restrike slave run`
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([restrike_exe(), "master", *args, "--db", f"sqlite:///{tmp_path / 'central.sqlite3'}",
                               "-d", str(tmp_path / "master")], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})

    async def main() -> None:
        async with venue(tmp_path, 2) as v:
            await async_wait_until(lambda: len(v.master.store.list_nodes()) == 2  # type: ignore[union-attr]
                                   and all(n["address"] for n in v.master.store.list_nodes()), 10, "node rows")  # type: ignore[union-attr]
            health, scene, nobody, logs, announce = await asyncio.gather(
                asyncio.to_thread(cli, "send", "health", "--all"),
                asyncio.to_thread(cli, "send", "set_scene", "--court", "Court 1"),
                asyncio.to_thread(cli, "send", "health", "--court", "Court 9"),
                asyncio.to_thread(cli, "send", "logs", "lines=5", "--court", "court-2", "--json"),
                asyncio.to_thread(cli, "announce", "Lunch break", "--all", "--priority", "urgent"),
            )
            assert health.returncode == 0, health.stderr
            assert "Court 1" in health.stdout and "Court 2" in health.stdout and health.stdout.count("done") == 2
            assert scene.returncode == 2 and "scene" in scene.stderr and "Traceback" not in scene.stderr
            assert nobody.returncode == 2 and "Court 9" in nobody.stderr and "court-1" in nobody.stderr
            result = json.loads(logs.stdout)
            assert result["results"][0]["outcome"] == "done" and len(result["results"][0]["data"]["lines"]) == 5
            assert announce.returncode == 0, announce.stderr
            audit = await asyncio.to_thread(cli, "audit", "--json")
            rows = [json.loads(line) for line in audit.stdout.splitlines()]
            assert {(r["action"], r["node_id"]) for r in rows} >= {
                ("health", "court-1"), ("health", "court-2"), ("logs", "court-2"), ("message", "court-1")}
            assert all(r["outcome"] == "done" for r in rows)
            table = await asyncio.to_thread(cli, "audit")
            assert "message" in table.stdout and "health" in table.stdout

    asyncio.run(main())
