"""A court agent owns its ports: a second agent (or any program) on them stops at start with one clear line.

Real processes on real sockets. The one exception is the explicit ``udp.shared_port`` setting,
whose start-up line warns that unicast datagrams then reach only one listener.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from restrike.ports import free_port
from runtime.ports import PortUnavailable
from slave_agent.app import SlaveAgent
from slave_agent.db.store import DB_FILENAME
from tests.pipeline import Proc
from tests.support import court_config, court_keys, restrike_exe, wait_until

pytestmark = pytest.mark.slow


def _agent_args(data_dir: Path, udp: int, pub: int, router: int) -> list[str]:
    court_keys(data_dir)
    return ["slave", "run", "-d", str(data_dir), "--udp-host", "127.0.0.1", "--udp-port", str(udp),
            "--pub-port", str(pub), "--router-port", str(router), "--no-mdns"]


def _refused(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run an agent that must not start; its one error line."""
    result = subprocess.run([restrike_exe(), *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Cannot start:")]
    assert len(errors) == 1, result.stderr
    assert "Stopped:" not in result.stderr  # it never ran: no counters to report
    return errors[0]


@pytest.mark.parametrize("taken", ["udp", "pub", "router"])
def test_a_second_agent_on_a_taken_port_stops_with_one_line(tmp_path: Path, taken: str) -> None:
    first = {"udp": free_port(), "pub": free_port(), "router": free_port()}
    second = {"udp": free_port(), "pub": free_port(), "router": free_port(), taken: first[taken]}
    agent = Proc(_agent_args(tmp_path / "a", **first), tmp_path / "a.log").start("ready;")
    try:
        line = _refused(_agent_args(tmp_path / "b", **second))
    finally:
        assert agent.stop() == 0
    protocol = "UDP" if taken == "udp" else "TCP"
    role = {"udp": "PSS", "pub": "PUB", "router": "ROUTER"}[taken]
    assert f"{protocol} port {first[taken]} ({role}" in line or f"{protocol} port {first[taken]} (ZeroMQ {role}" in line
    assert "already in use" in line
    assert f"ss -{protocol[0].lower()}lpn 'sport = :{first[taken]}'" in line


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "reuseaddr"])
def test_any_other_program_on_the_pss_port_is_refused_too(tmp_path: Path, reuse: bool) -> None:
    """Even a program that set SO_REUSEADDR itself (as agents used to) cannot share the port unasked."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuse:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        line = _refused(_agent_args(tmp_path / "a", port, free_port(), free_port()))
    finally:
        holder.close()
    assert f"UDP port {port}" in line and "already in use" in line


def test_a_start_refused_part_way_lets_go_of_what_it_had_opened(tmp_path: Path) -> None:
    """The PUB and ROUTER sockets (and CURVE's authenticator) are opened before the PSS port is bound:
    an agent refused there must not keep them, nor leave them for the garbage collector."""
    config = court_config(tmp_path, 1)
    court_keys(config.data_dir)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", config.udp.port))
    agent = SlaveAgent(config)
    try:
        with pytest.raises(PortUnavailable, match=f"UDP port {config.udp.port}"):
            asyncio.run(agent.async_startup())
    finally:
        holder.close()
    for port in (config.publisher.pub_port, config.publisher.router_port):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", port))  # free again at once, while the agent object still exists
    assert agent.publisher is not None and agent.publisher.ctx.closed


def _stored(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        return conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0]


def _received(log: Path) -> int:
    stopped = [line for line in log.read_text().splitlines() if "Stopped:" in line]
    assert len(stopped) == 1, log.read_text()
    return int(stopped[0].split("Stopped:")[1].split()[0])


def test_shared_port_is_explicit_and_says_unicast_reaches_one_listener(tmp_path: Path) -> None:
    port = free_port()
    env = {"RESTRIKE_SLAVE_UDP__SHARED_PORT": "true"}
    agents: list[Proc] = []
    try:
        for name in ("a", "b"):
            agents.append(Proc(_agent_args(tmp_path / name, port, free_port(), free_port()), tmp_path / f"{name}.log", env=env))
            agents[-1].start("ready;")
        for proc in agents:
            assert f"UDP port {port} is shared with other programs" in proc.text()
            assert "reaches only one of them" in proc.text()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(20):
                sender.sendto(b"clk;02:00;start", ("127.0.0.1", port))
        wait_until(lambda: sum(_stored(tmp_path / name) for name in ("a", "b")) == 20, 20, "20 events stored in all")
    finally:
        codes = [proc.stop() for proc in agents]
    assert codes == [0, 0]
    received = sorted(_received(proc.log) for proc in agents)
    assert received == [0, 20]  # each unicast datagram went to one listener only
