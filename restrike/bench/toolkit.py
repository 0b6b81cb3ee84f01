"""What every benchmark needs: realistic traffic, a paced sender process, helper processes
driven over a pipe, a throw-away PostgreSQL database, percentiles, RSS and CPU meters.

One copy for ``restrike bench ingest``, ``pipeline`` and those that follow; a benchmark module
keeps only what it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from restrike.ports import free_port
from shared.pss import parse_datagram
from shared.records import EventRecord

if TYPE_CHECKING:
    from slave_agent.config import SlaveConfig

__all__ = [
    "ADMIN_URL",
    "CYCLE",
    "STAMP_CODE",
    "STREAM_START",
    "BenchError",
    "Child",
    "CpuMeter",
    "RssWatch",
    "SendResult",
    "async_serve_commands",
    "bench_database",
    "check_traffic",
    "child_setup",
    "latency_summary",
    "paced_send",
    "percentile",
    "realistic",
    "sender_main",
    "stamp_of",
    "udp_rcvbuf_errors",
]

logger = logging.getLogger(__name__)


class BenchError(Exception):
    """The benchmark cannot run (no database server, a part that does not start)."""


# --- traffic ---------------------------------------------------------------------------------------

#: Sent once at the start of a run: a match is loaded and named, as on a real court.
STREAM_START: tuple[str, ...] = (
    "pre;FightLoaded",
    "ref;;;ju1;;;ju2;;;ta;;;",
    "at1;Perica;Perica;CRO;at2;Stevica;Stevica;GER",
    "mch;101;Semifinals;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
)

#: Then repeated: real lines of the 2025 capture, in the proportions of a round in play.
CYCLE: tuple[str, ...] = (
    "clk;02:00;start",
    "clk;01:59",
    "clk;01:58",
    "pt1;1",
    "sc1;1;sc2;0",
    "s11;1;s21;0;s12;0;s22;0;s13;0;s23;0",
    "clk;01:57",
    "hl2;99",
    "pt2;3",
    "sc1;1;sc2;3",
    "s11;1;s21;3;s12;0;s22;0;s13;0;s23;0",
    "clk;01:56",
    "wg1;0;wg2;1",
    "sc1;2;sc2;3",
    "clk;01:55",
    "ch1",
    "ch1;1",
    "clk;01:54;stop",
    "ij0;01:00;show",
    "ij0;00:59",
    "ij0;00:58;hide",
    "clk;01:54;start",
    "clk;01:53",
    "hl1;99",
    "sup;0",
    "rnd;1",
    "wrd;rd1;0;rd2;0;rd3;0",
    "brk;00:59",
    "rst;1;st1;0;1;0;0;0;1;st2;2;0;0;0;0;1;",
    "rsr;",
    "at1;Perica;Perica;CRO;at2;Stevica;Stevica;GER",
    "mch;101;Semifinals;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
)

#: Latency probes: ``avt`` carries an integer, here the sender's ``time.time_ns()`` (one clock for
#: every process on the machine, so the receiver subtracts it from its own).
STAMP_CODE = "avt"
_STAMP = STAMP_CODE.encode() + b";%d"
_PAYLOADS = tuple(line.encode() for line in STREAM_START + CYCLE)


def realistic(k: int) -> bytes:
    """Datagram ``k`` of a run: the match load first, then the cycle over and over."""
    start_n = len(STREAM_START)
    return _PAYLOADS[k] if k < start_n else _PAYLOADS[start_n + (k - start_n) % len(CYCLE)]


def stamp_of(record: EventRecord) -> int | None:
    """The send time a latency probe carries, or ``None`` for any other row."""
    if record.code != STAMP_CODE or not record.valid:
        return None
    value = record.parsed.get("value")
    return value if isinstance(value, int) else None


def check_traffic() -> None:
    """Loss is counted in rows, so every line sent must be exactly one valid event."""
    for data in (*_PAYLOADS, _STAMP % time.time_ns()):
        events = parse_datagram(data)
        if len(events) != 1 or not events[0].valid:
            raise BenchError(f"benchmark line {data!r} is not exactly one valid event: {events}")


# --- pacing ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a paced run managed: per target, errors, wall time and the worst lateness of a tick."""

    sent_per_target: int
    errors: int
    elapsed_s: float
    max_late_ms: float


def paced_send(
    sock: socket.socket, targets: Sequence[tuple[str, int]], rate: int, duration_s: float, stamp_every: int
) -> SendResult:
    """``rate`` datagrams/s to each target for ``duration_s``; every ``stamp_every``-th is a probe.

    Datagram k is due at ``k / rate`` s; whatever is due is sent at once, then the sender sleeps
    until the next one is due (so a late wake-up sends a small burst, never fewer datagrams).
    """
    total = max(1, round(rate * duration_s))
    send, now_ns, clock, sleep = sock.sendto, time.time_ns, time.perf_counter, time.sleep
    sent = errors = 0
    max_late = 0.0
    start = clock()
    while sent < total:
        now = clock()
        due = min(total, int((now - start) * rate) + 1)
        max_late = max(max_late, now - (start + sent / rate))
        for k in range(sent, due):
            for target in targets:
                data = _STAMP % now_ns() if stamp_every and k % stamp_every == stamp_every - 1 else realistic(k)
                try:
                    send(data, target)
                except OSError:
                    errors += 1
        sent = due
        if sent < total:
            delay = start + sent / rate - clock()
            if delay > 0:
                sleep(delay)
    return SendResult(sent, errors, clock() - start, max_late * 1000)


def sender_main(conn: Connection) -> None:
    """A :class:`Child` target: answers ``("send", targets, rate, duration_s, stamp_every)`` with a
    :class:`SendResult`, until ``stop``."""
    child_setup("sender")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        conn.send("ready")
        while True:
            command = conn.recv()
            if command[0] == "stop":
                conn.send("stopped")
                return
            _, targets, rate, duration_s, stamp_every = command
            conn.send(paced_send(sock, [tuple(t) for t in targets], rate, duration_s, stamp_every))
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the benchmark went away
    finally:
        sock.close()
        conn.close()


# --- helper processes ------------------------------------------------------------------------------


class Child:
    """A spawned helper process answering commands over a pipe, one reply per command.

    The target is called as ``target(conn, *args)``; it sends one "ready" message first, then
    one reply per command tuple, and returns on ``("stop",)``. A reply ``("error", text)``
    raises :class:`BenchError` here.
    """

    def __init__(self, name: str, target: Callable[..., None], *args: object):
        ctx = multiprocessing.get_context("spawn")
        self.name = name
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=target, args=(child, *args), name=name, daemon=True)
        self._proc.start()
        child.close()
        self.pid: int = self._proc.pid or 0
        self.info: Any = None

    def wait_ready(self, timeout: float = 60.0) -> Any:
        self.info = self.reply(timeout)
        return self.info

    def call(self, command: str, *args: object, timeout: float = 30.0) -> Any:
        self._conn.send((command, *args))
        return self.reply(timeout)

    async def async_call(self, command: str, *args: object, timeout: float = 30.0) -> Any:
        """:meth:`call` without blocking the event loop it runs on."""
        return await asyncio.to_thread(self.call, command, *args, timeout=timeout)

    def send(self, command: str, *args: object) -> None:
        self._conn.send((command, *args))

    def poll(self, timeout: float) -> bool:
        return self._conn.poll(timeout)

    def reply(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.2):
            if not self._proc.is_alive():
                raise BenchError(f"{self.name} exited with code {self._proc.exitcode}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} gave no answer within {timeout:.0f} s")
        try:
            answer = self._conn.recv()
        except EOFError:
            raise BenchError(f"{self.name} exited with code {self._proc.exitcode}") from None
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            raise BenchError(f"{self.name} failed: {answer[1]}")
        return answer

    def close(self, timeout: float = 20.0) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError, BenchError):
                self.call("stop", timeout=timeout)
            self._proc.join(5)
        if self._proc.is_alive():
            logger.warning("%s did not stop; terminating it", self.name)
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()
        self._proc.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_child(conn: Connection, label: str, main: Coroutine[Any, Any, None]) -> None:
    """A helper process's body: ``main`` on its own loop; a failure goes back over the pipe, never lost."""
    child_setup(label)
    try:
        asyncio.run(main)
    except Exception as exc:
        logger.exception("%s failed", label)
        with contextlib.suppress(OSError):
            conn.send(("error", repr(exc)))
    finally:
        conn.close()


def court_config(data_dir: Path, node_id: str, court: str | None = None, **more: Any) -> SlaveConfig:
    """A court agent on loopback with free ports, without mDNS or OBS: what the benchmarks measure
    beside OBS (a court without it would spend their CPU retrying its connections)."""
    from slave_agent.config import SlaveConfig

    return SlaveConfig(
        data_dir=data_dir, node={"node_id": node_id, "court": court or node_id},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        obs={"rec": {"enabled": False}, "str": {"enabled": False}}, **more,
    )


def child_setup(label: str) -> None:
    """In a helper process: leave Ctrl-C to the orchestrator (it stops us over the pipe); quiet logs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format=f"[{label}] %(levelname)s %(name)s: %(message)s", force=True)


async def async_serve_commands(conn: Connection, handle: Callable[[tuple[Any, ...]], Any]) -> None:
    """Serve the orchestrator's commands on the event loop until ``stop`` (or the pipe closes)."""
    while True:
        try:
            command = await asyncio.to_thread(conn.recv)
        except (EOFError, OSError):
            return
        if command[0] == "stop":
            return
        conn.send(handle(command))


# --- the database ---------------------------------------------------------------------------------------

#: Maintenance database used to create and drop a run's database.
ADMIN_URL = os.environ.get("RESTRIKE_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def bench_database(db_url: str | None) -> Iterator[str]:
    """The given URL, or a fresh ``restrike_bench_<hex>`` database dropped (WITH FORCE) afterwards.

    SQLAlchemy is imported here, not with the toolkit: the ingest benchmark's figures must not carry it.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    if db_url is not None:
        yield db_url
        return
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"restrike_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any driver error: the server is not there or refuses us
        admin.dispose()
        raise BenchError(f"cannot create a database on {make_url(ADMIN_URL)!r}: {exc}") from None
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


# --- measurements -----------------------------------------------------------------------------------


def percentile(ordered: Sequence[int], pct: float) -> int:
    """The nearest-rank percentile of already sorted values: the smallest value with at least ``pct``
    percent of them at or below it (rank ceil(pct/100 * n); ``round`` would halve to even: p50 of 5 the 2nd)."""
    index = min(len(ordered) - 1, max(0, math.ceil(pct * len(ordered) / 100) - 1))
    return ordered[index]


def latency_summary(values_ns: Sequence[int], percentiles: Sequence[int] = (50, 99)) -> dict[str, Any] | None:
    """``{"p50": ms, "p99": ms, "max": ms, "samples": n}`` of nanosecond latencies, or ``None``."""
    if not values_ns:
        return None
    ordered = sorted(values_ns)
    out: dict[str, Any] = {f"p{p}": round(percentile(ordered, p) / 1e6, 3) for p in percentiles}
    out["max"] = round(ordered[-1] / 1e6, 3)
    out["samples"] = len(ordered)
    return out


class RssWatch:
    """Peak resident memory of a process (this one by default), sampled by the caller."""

    def __init__(self, pid: int | None = None) -> None:
        self._process = psutil.Process(pid)
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline

    def sample(self) -> int:
        rss = int(self._process.memory_info().rss)
        self.peak = max(self.peak, rss)
        return rss


class CpuMeter:
    """CPU time used per group of processes (and PostgreSQL's), as a share of one core."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.started = time.perf_counter()
        self._before = {name: self._times(pids) for name, pids in self._all().items()}
        self.used_s: dict[str, float] = {}

    def _all(self) -> dict[str, list[int]]:
        postgres = [p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]
        return {**self.groups, "postgresql": postgres}

    @staticmethod
    def _times(pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
        return out

    def shares(self) -> dict[str, float]:
        """CPU seconds per wall second since creation, per group (1.0 = one core busy)."""
        wall = time.perf_counter() - self.started
        self.used_s = {}
        for name, pids in self._all().items():
            before = self._before.get(name, {})
            now = self._times(pids)
            self.used_s[name] = sum(t - before.get(pid, 0.0) for pid, t in now.items())
        self.used_s["total"] = sum(self.used_s.values())
        return {name: round(used / wall, 2) if wall > 0 else 0.0 for name, used in self.used_s.items()}

    def us_per_event(self, events: int) -> dict[str, float] | None:
        """CPU microseconds per event stored, per group (after :meth:`shares`)."""
        if events <= 0:
            return None
        return {name: round(used / events * 1e6, 1) for name, used in self.used_s.items()}


def udp_rcvbuf_errors() -> int | None:
    """The kernel's own count of UDP datagrams dropped for a full receive buffer (Linux)."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return None
    udp = [line.split()[1:] for line in lines if line.startswith("Udp:")]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return None
    return int(udp[1][udp[0].index("RcvbufErrors")])
