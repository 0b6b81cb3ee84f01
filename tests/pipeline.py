"""Real processes for end-to-end tests: court agents, the master, a paced PSS sender."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from master.db.errors import CentralStoreError
from master.db.store import CentralStore
from slave_agent.db.store import RECORD_SELECT, row_to_record
from tests.support import free_port, restrike_exe


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A ``restrike`` sub-command in its own process, its output in a log file."""

    def __init__(self, args: Sequence[str], log: Path, prefix: Sequence[str] = ()):
        self.args = [*prefix, restrike_exe(), *args]
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, ready_text: str, timeout: float = 30.0) -> Proc:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        wait_until(lambda: ready_text in self.log.read_text(errors="replace")[offset:] or self.popen.poll() is not None,
                   timeout, f"{ready_text!r} in {self.log.name}")
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.args} exited with {self.popen.returncode}:\n{self.log.read_text()[-3000:]}")
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)

    def close(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@dataclass
class Court:
    """A court laptop: its data folder and ports (kept across restarts)."""

    data_dir: Path
    name: str
    host: str = "127.0.0.1"
    udp_port: int = field(default_factory=free_port)
    pub_port: int = field(default_factory=free_port)
    router_port: int = field(default_factory=free_port)
    prefix: tuple[str, ...] = ()
    mdns: bool = False
    proc: Proc | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.pub_port}:{self.router_port}"

    def start(self) -> Court:
        args = ["slave", "run", "--data-dir", str(self.data_dir), "--udp-port", str(self.udp_port),
                "--pub-port", str(self.pub_port), "--router-port", str(self.router_port), "--court", self.name,
                "--node-id", self.name.lower().replace(" ", "-")]
        if not self.mdns:
            args.append("--no-mdns")
        self.proc = Proc(args, self.data_dir.parent / f"{self.data_dir.name}.log", self.prefix).start("ready;")
        return self

    def settled_rows(self, timeout: float = 30.0) -> list[tuple]:
        """The rows once the court has committed the last datagrams sent (no change for 0.5 s)."""
        deadline = time.monotonic() + timeout
        rows = self.rows()
        while True:
            time.sleep(0.5)
            again = self.rows()
            if again and len(again) == len(rows):
                return again
            assert time.monotonic() < deadline, f"{self.name}'s database never settled ({len(again)} rows)"
            rows = again

    def rows(self) -> list[tuple]:
        """Every stored event, by epoch and seq, read as the master must reproduce it."""
        db = self.data_dir / "restrike-slave.sqlite3"
        if not db.exists():
            return []
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [
                tuple(r.model_dump().values())
                for r in (row_to_record(row) for row in conn.execute(RECORD_SELECT + " ORDER BY e.epoch, e.seq"))
            ]
        finally:
            conn.close()


class Master:
    def __init__(self, url: str, data_dir: Path, endpoints: Sequence[str] = (), prefix: Sequence[str] = (),
                 mdns: bool = False, mdns_interface: str | None = None):
        args = ["master", "run", "--db", url, "--data-dir", str(data_dir)]
        for endpoint in endpoints:
            args += ["--endpoint", endpoint]
        if not mdns:
            args.append("--no-mdns")
        self.proc = Proc(args, data_dir.parent / f"{data_dir.name}.log", prefix)
        self.mdns_interface = mdns_interface

    def start(self) -> Master:
        env_ready = "Master storing into"
        self.proc.start(env_ready)
        return self


class Traffic(threading.Thread):
    """Sends numbered, valid PSS datagrams at a steady rate until stopped (from this process)."""

    def __init__(
        self, port: int, rate: float, host: str = "127.0.0.1", lines: Sequence[str] | None = None, once: bool = False
    ):
        super().__init__(daemon=True)
        self.target = (host, port)
        self.interval = 1.0 / rate
        self.lines = lines
        self.once = once
        self.sent = 0
        self._halt = threading.Event()

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        next_at = time.monotonic()
        try:
            while not self._halt.is_set() and not (self.lines and self.once and self.sent >= len(self.lines)):
                line = self.lines[self.sent % len(self.lines)] if self.lines else f"hl1;{self.sent % 100}"
                sock.sendto(line.encode(), self.target)
                self.sent += 1
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        finally:
            sock.close()

    def stop(self) -> int:
        self._halt.set()
        self.join(10)
        return self.sent


def central_rows(url: str, courts: Sequence[Court]) -> list[tuple]:
    store = CentralStore(url)
    try:
        rows = []
        for court in courts:
            node_id = court.name.lower().replace(" ", "-")
            for epoch in sorted(store.last_stored(node_id)):
                rows += [tuple(r.model_dump().values()) for r in store.fetch_events(node_id, epoch)]
        return rows
    finally:
        store.close()


def central_count(url: str) -> int:
    store = CentralStore(url)
    try:
        return store.count_events()
    except (CentralStoreError, SQLAlchemyError):  # the schema may not exist yet while the master starts
        return -1
    finally:
        store.close()


def assert_master_has_everything(url: str, courts: Sequence[Court], timeout: float = 60.0) -> int:
    """Wait for the master to hold every court's rows, then compare them row for row."""
    expected = sorted(row for court in courts for row in court.settled_rows(timeout))
    wait_until(lambda: central_count(url) >= len(expected), timeout, f"{len(expected)} events at the master")
    got = sorted(central_rows(url, courts))
    assert len(got) == len(expected), f"master has {len(got)} rows, slaves {len(expected)}"
    assert got == expected  # every field of every event, as the court stored it
    return len(expected)
