"""Real processes for end-to-end tests: court agents, the master, a paced PSS sender."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from master.db.errors import CentralStoreError
from master.db.migrate import upgrade
from master.db.store import CentralStore
from restrike.ports import free_port
from runtime.curve import KeyPair, new_key_pair
from runtime.keyfiles import key_pair_paths, write_key_pair, write_public_key
from shared.changes import IvrEventRecord, MatchRecord, SessionRecord
from shared.records import EventRecord
from slave_agent.db.changes import read_changes
from slave_agent.db.store import RECORD_SELECT, row_to_record
from tests.support import restrike_exe, wait_until

#: One key pair per node id (and one for the master) for the whole test run: a court started
#: again in another folder keeps its identity, and the master approves it without asking.
_KEYS: dict[str, KeyPair] = {}


def keys_for(name: str) -> KeyPair:
    """The test run's key pair of a node id, or of ``"master"``."""
    if name not in _KEYS:
        _KEYS[name] = new_key_pair()
    return _KEYS[name]


def install_keys(folder: Path, name: str, pair: KeyPair) -> None:
    """Write ``pair`` as ``folder/name.key[_secret]`` unless a pair is already there."""
    if not key_pair_paths(folder, name)[1].exists():
        write_key_pair(folder, name, pair)


def node_id_of(court_name: str) -> str:
    return court_name.lower().replace(" ", "-")


#: Where a field sits in the rows of :meth:`Court.rows` (``EventRecord``'s field order).
FIELD = {name: index for index, name in enumerate(EventRecord.model_fields)}


@dataclass(frozen=True)
class DbState:
    """What the master must reproduce of courts, every field: events, matches, OBS sessions, trigger logs (sorted)."""

    events: list[tuple]
    matches: list[tuple]
    sessions: list[tuple]
    ivr_events: list[tuple] = field(default_factory=list)

    def differences(self, other: DbState) -> str:
        return "; ".join(
            f"{name}: {len(mine)} here, {len(theirs)} there, first difference "
            f"{next(((a, b) for a, b in zip(mine, theirs, strict=False) if a != b), 'in length')}"
            for name, mine, theirs in (("events", self.events, other.events), ("matches", self.matches, other.matches),
                                       ("sessions", self.sessions, other.sessions),
                                       ("ivr_events", self.ivr_events, other.ivr_events))
            if mine != theirs
        )


class Proc:
    """A ``restrike`` sub-command in its own process, its output in a log file."""

    def __init__(self, args: Sequence[str], log: Path, prefix: Sequence[str] = (), env: dict[str, str] | None = None):
        self.args = [*prefix, restrike_exe(), *args]
        self.log = log
        self.env = env or {}
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, ready_text: str, timeout: float = 30.0) -> Proc:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200", **self.env})
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
    #: More ``slave run`` options (e.g. ``--resync-port``).
    options: tuple[str, ...] = ()
    proc: Proc | None = None

    @property
    def node_id(self) -> str:
        return node_id_of(self.name)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.pub_port}:{self.router_port}"

    @property
    def endpoint(self) -> str:
        """As the master's config takes it: the node id names the key approved for it."""
        return f"{self.node_id}@{self.address}"

    def start(self) -> Court:
        """Start the agent, with its key pair and the test master's public key in place."""
        keys = self.data_dir / "keys"
        install_keys(keys, "court", keys_for(self.node_id))
        write_public_key(keys / "masters", "master", keys_for("master").public)
        args = ["slave", "run", "--data-dir", str(self.data_dir), "--udp-port", str(self.udp_port),
                "--pub-port", str(self.pub_port), "--router-port", str(self.router_port), "--court", self.name,
                "--node-id", self.node_id]
        if not self.mdns:
            args.append("--no-mdns")
        args += self.options
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
        return self.state().events

    def state(self) -> DbState:
        """Events, matches and sessions as the court's database holds them now."""
        db = self.data_dir / "restrike-slave.sqlite3"
        if not db.exists():
            return DbState([], [], [])
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            events = [
                tuple(r.model_dump().values())
                for r in (row_to_record(row) for row in conn.execute(RECORD_SELECT + " ORDER BY e.epoch, e.seq"))
            ]
            rows = read_changes(conn, 0, 1_000_000_000).changes  # every match and session has a revision
        finally:
            conn.close()
        return DbState(
            events,
            sorted(tuple(r.model_dump().values()) for r in rows if isinstance(r, MatchRecord)),
            sorted(tuple(r.model_dump().values()) for r in rows if isinstance(r, SessionRecord)),
            sorted(_comparable(r) for r in rows if isinstance(r, IvrEventRecord)),
        )


class Master:
    """``restrike master run`` with the test master's keys; the courts of ``approve`` (default: those
    named in ``endpoints``) are approved with their test keys before it starts."""

    def __init__(self, url: str, data_dir: Path, endpoints: Sequence[str] = (), prefix: Sequence[str] = (),
                 mdns: bool = False, mdns_interface: str | None = None, http_port: int = 0,
                 approve: Sequence[str] | None = None, admin_url: str | None = None):
        """``http_port`` 0: no web console (the default here: 8080 may be anyone's)."""
        args = ["master", "run", "--db", url, "--data-dir", str(data_dir), "--http-port", str(http_port)]
        for endpoint in endpoints:
            args += ["--endpoint", endpoint]
        if not mdns:
            args.append("--no-mdns")
        self.proc = Proc(args, data_dir.parent / f"{data_dir.name}.log", prefix)
        self.mdns_interface = mdns_interface
        self.http_port = http_port
        self.data_dir = data_dir
        self.admin_url = admin_url or url  # the same database as seen from the test process
        self.approve = list(approve) if approve is not None else [e.partition("@")[0] for e in endpoints if "@" in e]

    def start(self) -> Master:
        install_keys(self.data_dir / "keys", "master", keys_for("master"))
        upgrade(self.admin_url)
        with CentralStore(self.admin_url) as store:
            for node_id in self.approve:
                store.approve_court(node_id, keys_for(node_id).public, by="tests", replace=True)
        self.proc.start("Console at" if self.http_port else "Master storing into")
        return self

    @property
    def url(self) -> str:
        """The web console's address."""
        return f"http://127.0.0.1:{self.http_port}"


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
    return central_state(url, courts).events


def _comparable(record: IvrEventRecord) -> tuple:
    """A trigger log row as a sortable tuple (its steps as JSON text)."""
    return tuple(json.dumps(v, sort_keys=True) if isinstance(v, list) else v for v in record.model_dump().values())


def central_state(url: str, courts: Sequence[Court]) -> DbState:
    """What the master holds of these courts, in the shapes of :meth:`Court.state`."""
    store = CentralStore(url)
    try:
        events, matches, sessions, ivr_events = [], [], [], []
        for court in courts:
            for epoch in sorted(store.last_stored(court.node_id)):
                events += [tuple(r.model_dump().values()) for r in store.fetch_events(court.node_id, epoch)]
            matches += [tuple(r.model_dump().values()) for r in store.fetch_matches(court.node_id)]
            sessions += [tuple(r.model_dump().values()) for r in store.fetch_sessions(court.node_id)]
            ivr_events += [_comparable(r) for r in store.fetch_ivr_events(court.node_id)]
        return DbState(events, sorted(matches), sorted(sessions), sorted(ivr_events))
    except (CentralStoreError, SQLAlchemyError):  # the schema may not exist yet while the master starts
        return DbState([], [], [])
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
    """Wait until the master holds what every court holds, field for field: events (with
    their later changes), matches, OBS sessions. Returns the number of events."""
    for court in courts:
        court.settled_rows(timeout)
    expected = DbState([], [], [], [])

    def same() -> bool:
        nonlocal expected
        states = [court.state() for court in courts]
        expected = DbState(sorted(e for s in states for e in s.events), sorted(m for s in states for m in s.matches),
                           sorted(x for s in states for x in s.sessions), sorted(i for s in states for i in s.ivr_events))
        got = central_state(url, courts)
        return DbState(sorted(got.events), got.matches, got.sessions, got.ivr_events) == expected

    try:
        wait_until(same, timeout, "the master to hold what the courts hold", interval=0.25)
    except AssertionError:
        got = central_state(url, courts)
        raise AssertionError(
            "master differs from the courts: " + DbState(sorted(got.events), got.matches, got.sessions, got.ivr_events).differences(expected)
        ) from None
    return len(expected.events)
