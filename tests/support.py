"""Helpers the tests share: the real tournament capture, the installed console script, waiting."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restrike.ports import free_port

if TYPE_CHECKING:
    from slave_agent.config import SlaveConfig

DATA = Path(__file__).parent / "data"
SAMPLE_TSV = DATA / "reconstructed_pss_stream_20250720-20250809.tsv"


def sample_lines() -> list[tuple[str, str]]:
    """``(log timestamp, protocol line)`` for every row of the real tournament capture."""
    rows = []
    for line in SAMPLE_TSV.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        stamp, _kind, text = line.split("\t", 2)
        rows.append((stamp, text))
    return rows


def restrike_exe() -> str:
    """The installed console script, next to the interpreter running the tests."""
    exe = Path(sys.executable).parent / "restrike"
    return str(exe) if exe.exists() else shutil.which("restrike") or "restrike"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "the condition", interval: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], bool], timeout: float, what: str = "the condition", interval: float = 0.01
) -> None:
    """:func:`wait_until` on the event loop: the loop keeps running while it waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def court_keys(data_dir: Path) -> None:
    """A court key pair where an agent with ``data_dir`` looks for it (CURVE is on by default)."""
    from restrike.venue_keys import ensure_key_pair

    ensure_key_pair(data_dir / "keys", "court")


def send_pss(port: int, *lines: str) -> None:
    """Datagrams to a court's PSS port on this machine, one line each, as the scoring software sends them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line.encode(), ("127.0.0.1", port))


def court_config(tmp: Path, number: int, **more: Any) -> SlaveConfig:
    """Court ``number`` in-process on loopback, without OBS, heartbeats every 0.3 s (the control tests' court)."""
    from slave_agent.config import SlaveConfig

    return SlaveConfig(
        data_dir=tmp / f"court{number}",
        node={"node_id": f"court-{number}", "court": f"Court {number}"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False,
                   "heartbeat_seconds": 0.3},
        obs={"rec": {"enabled": False}, "str": {"enabled": False}},
        ivr={"videos_root": str(tmp / f"videos{number}")},
        **more,
    )
