"""``restrike bench``: how much PSS traffic one court agent takes, measured on loopback.

``restrike bench ingest`` drives the real receiving path (``UdpIngest`` + ``EventStore``,
default configuration, ``synchronous=FULL``) from a paced sender in a separate process and
prints ONE JSON object on stdout; progress goes to stderr. It is a benchmark, not a test:
it reports numbers and whether they meet the targets, and exits 0 either way.

What it measures, in one run:

* the highest paced rate held for ``--duration`` seconds with zero loss (every datagram sent
  is a committed row), by a step-up search then a bisection, within a time budget;
* the same search against a bare asyncio receiver that only counts (the ceiling Python's
  event loop and this machine allow), and the ratio of the two;
* send-to-commit latency at 1,000 datagrams/s: the sender stamps ``avt;<time.time_ns()>``
  datagrams and a post-commit listener subtracts that from its own ``time.time_ns()``
  (one clock for both processes), so it bounds receive-to-commit from above;
* the receiver's peak RSS during the sustained steps;
* the batch writer (parse + rows + records + insert) against plain ``executemany`` of the
  very same rows into the same schema, pragmas and batch size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from restrike.bench.toolkit import (
    CYCLE,
    STREAM_START,
    Child,
    RssWatch,
    SendResult,
    check_traffic,
    latency_summary,
    percentile,
    realistic,
    sender_main,
    stamp_of,
    udp_rcvbuf_errors,
)
from shared.records import EventRecord
from slave_agent.config import StoreConfig, UdpConfig
from slave_agent.db.schema import migrate
from slave_agent.db.store import DB_FILENAME, EVENT_COLUMNS, INSERT_EVENT, Datagram, EventStore, connect
from slave_agent.ingest import UdpIngest

__all__ = ["FULL_PLAN", "QUICK_PLAN", "BenchPlan", "async_run_benchmark", "ingest", "register"]

logger = logging.getLogger(__name__)


#: A step whose sender reached less than this share of its rate says so (the sender was the limit).
_SENDER_SHORTFALL = 0.98

#: A passing ingest step "kept up" if committing what was queued when sending stopped took at most this.
_KEPT_UP_DRAIN_S = 0.5

@dataclass(frozen=True, slots=True)
class BenchPlan:
    """How long and how hard to push; :data:`FULL_PLAN` is the default, :data:`QUICK_PLAN` a smoke run."""

    duration_s: float = 10.0
    rates: tuple[int, ...] = (5_000, 10_000, 20_000, 30_000, 40_000, 60_000, 80_000, 120_000, 160_000)
    bisect_steps: int = 3
    search_budget_s: float = 180.0
    latency_rate: int = 1_000
    latency_duration_s: float = 10.0
    latency_stamp_every: int = 2
    load_stamp_every: int = 100
    writer_datagrams: int = 100_000
    batch_size: int = 1_000
    drain_timeout_s: float = 30.0


FULL_PLAN = BenchPlan()
QUICK_PLAN = BenchPlan(
    duration_s=2.0,
    rates=(5_000, 20_000, 40_000, 80_000),
    bisect_steps=1,
    search_budget_s=45.0,
    latency_duration_s=2.0,
    writer_datagrams=20_000,
    drain_timeout_s=15.0,
)

TARGETS = {
    "zero_loss_rate_dps": (">=", 20_000),
    "ratio_ingest_vs_bare_receiver": (">=", 0.5),
    "ratio_writer_vs_executemany": (">=", 0.5),
    "latency_p99_ms_at_1000dps": ("<=", 10.0),
    "peak_rss_mb": ("<=", 100.0),
}


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to ``app`` (the ``restrike bench`` group)."""
    app.command("ingest")(ingest)


def ingest(
    duration: float | None = typer.Option(
        None, min=0.2, max=600, help="Seconds per sustained step and for the latency run (default 10, quick 2)"
    ),
    quick: bool = typer.Option(False, "--quick", help="Short smoke run: 2 s steps, fewer rates, smaller writer run"),
    budget: float | None = typer.Option(None, min=1, help="Seconds each rate search may take (default 180, quick 45)"),
) -> None:
    """Zero-loss rate, latency, RSS and writer cost of UDP → SQLite ingest; JSON on stdout."""
    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True
    )
    logging.getLogger("slave_agent").setLevel(logging.WARNING)  # not a line per step's migrations
    plan = QUICK_PLAN if quick else FULL_PLAN
    if duration is not None:
        plan = replace(plan, duration_s=duration, latency_duration_s=duration)
    if budget is not None:
        plan = replace(plan, search_budget_s=budget)
    result = asyncio.run(async_run_benchmark(plan, console))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


async def async_run_benchmark(plan: BenchPlan, console: Console | None = None) -> dict[str, Any]:
    """Every measurement of ``restrike bench ingest``, as the JSON-ready result; runs on the event loop."""
    console = console or Console(stderr=True, quiet=True)
    check_traffic()
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    rss = RssWatch()
    with Child("restrike-bench-sender", sender_main) as sender:
        await asyncio.to_thread(sender.wait_ready)
        console.log(f"[bold]Ingest search[/] ({plan.duration_s:g} s steps, budget {plan.search_budget_s:g} s)")
        ingest_search = await _async_search(
            lambda rate: _async_ingest_step(sender, rate, plan.duration_s, plan, plan.load_stamp_every, rss),
            plan,
            console,
        )
        console.log("[bold]Bare receiver search[/] (same sender, same steps)")
        bare_search = await _async_search(lambda rate: _async_bare_step(sender, rate, plan), plan, console)
        console.log(f"[bold]Latency[/] at {plan.latency_rate}/s for {plan.latency_duration_s:g} s")
        latency_step = await _async_ingest_step(
            sender, plan.latency_rate, plan.latency_duration_s, plan, plan.latency_stamp_every, None
        )
        console.log(f"  {latency_step.summary()}")
    console.log(f"[bold]Writer vs executemany[/] ({plan.writer_datagrams} datagrams, batches of {plan.batch_size})")
    writer = await asyncio.to_thread(_writer_vs_executemany, plan)
    console.log(
        f"  writer {writer['writer_rows_per_s']:.0f} rows/s, executemany {writer['executemany_rows_per_s']:.0f} rows/s"
    )
    return _report(
        plan, ingest_search, bare_search, latency_step, writer, rss, time.perf_counter() - started, load_at_start
    )


# --- one step ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Step:
    """One paced run at one rate into one receiver."""

    kind: str
    rate: int
    duration_s: float
    sent: int = 0
    send_errors: int = 0
    sender_elapsed_s: float = 0.0
    sender_max_late_ms: float = 0.0
    received: int = 0
    stored: int = 0
    dropped_queue_full: int = 0
    unstored_after_drain: int = 0
    kernel_rcvbuf_errors: int | None = None
    queue_peak: int = 0
    drain_s: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)

    def record_send(self, result: SendResult) -> None:
        self.sent, self.send_errors = result.sent_per_target, result.errors
        self.sender_elapsed_s, self.sender_max_late_ms = result.elapsed_s, result.max_late_ms

    @property
    def achieved_dps(self) -> float:
        return self.sent / self.sender_elapsed_s if self.sender_elapsed_s > 0 else 0.0

    @property
    def lost(self) -> int:
        kept = self.stored if self.kind == "ingest" else self.received
        return self.sent - kept

    @property
    def passed(self) -> bool:
        return self.sent > 0 and self.lost == 0 and self.dropped_queue_full == 0 and self.send_errors == 0

    @property
    def kept_up(self) -> bool:
        """Zero loss without leaning on the queue: the backlog left when sending stopped was small."""
        return self.passed and self.drain_s <= _KEPT_UP_DRAIN_S

    @property
    def sender_limited(self) -> bool:
        return self.achieved_dps < self.rate * _SENDER_SHORTFALL

    def summary(self) -> str:
        verdict = "[green]pass[/]" if self.passed else "[red]FAIL[/]"
        text = (
            f"{self.kind} {self.rate:>7}/s: {verdict} sent {self.sent} (at {self.achieved_dps:.0f}/s) "
            f"lost {self.lost} (kernel {self.sent - self.received}, queue {self.dropped_queue_full})"
        )
        if self.kind == "ingest":
            text += f", queue peak {self.queue_peak}, drain {self.drain_s:.2f} s"
        if self.latencies_ns:
            text += f", send→commit p99 {percentile(sorted(self.latencies_ns), 99) / 1e6:.1f} ms"
        return text + (" [yellow](sender could not keep the pace)[/]" if self.sender_limited else "")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rate_dps": self.rate,
            "passed": self.passed,
            "sent": self.sent,
            "achieved_send_dps": round(self.achieved_dps),
            "sender_limited": self.sender_limited,
            "sender_max_late_ms": round(self.sender_max_late_ms, 2),
            "received": self.received,
            "lost": self.lost,
            "lost_in_kernel": self.sent - self.received,
            "kernel_rcvbuf_errors": self.kernel_rcvbuf_errors,
        }
        if self.kind == "ingest":
            out |= {
                "stored": self.stored,
                "dropped_queue_full": self.dropped_queue_full,
                "unstored_after_drain": self.unstored_after_drain,
                "queue_peak": self.queue_peak,
                "drain_s": round(self.drain_s, 3),
                "kept_up": self.kept_up,
                "send_to_commit_ms": latency_summary(self.latencies_ns),
            }
        return out


async def _async_ingest_step(
    sender: Child, rate: int, duration_s: float, plan: BenchPlan, stamp_every: int, rss: RssWatch | None
) -> _Step:
    """The real path with its default configuration, into a fresh data directory."""
    udp, store_cfg = UdpConfig(), StoreConfig()
    step = _Step("ingest", rate, duration_s)
    with tempfile.TemporaryDirectory(prefix="restrike-bench-") as tmp:
        store = EventStore(Path(tmp), node_id="court-bench", synchronous=store_cfg.synchronous)
        ingest = UdpIngest(
            store, queue_size=udp.queue_size, max_batch=store_cfg.max_batch, retry_seconds=store_cfg.retry_seconds
        )
        ingest.listeners.append(_stamp_listener(step.latencies_ns))
        try:
            await ingest.async_start("127.0.0.1", 0, udp.receive_buffer_bytes)
            assert ingest.address is not None
            watch = asyncio.create_task(_async_watch(ingest, step, rss))
            try:
                errors_before = udp_rcvbuf_errors()
                step.record_send(await sender.async_call("send", [ingest.address], rate, duration_s, stamp_every, timeout=duration_s * 3 + 30))
                drain_started = time.perf_counter()
                await _async_until_quiet(
                    lambda: ingest.stats.received,
                    lambda: ingest.stats.stored_events + ingest.stats.dropped_queue_full >= ingest.stats.received,
                    plan.drain_timeout_s,
                )
                step.drain_s = time.perf_counter() - drain_started
                step.kernel_rcvbuf_errors = _delta(errors_before, udp_rcvbuf_errors())
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        finally:
            await ingest.async_stop()
            store.close()
    stats = ingest.stats
    step.received, step.stored, step.dropped_queue_full = stats.received, stats.stored_events, stats.dropped_queue_full
    step.unstored_after_drain = max(0, stats.received - stats.dropped_queue_full - stats.stored_events)
    return step


def _stamp_listener(out: list[int]) -> Callable[[list[EventRecord]], None]:
    def listener(records: list[EventRecord]) -> None:
        now = time.time_ns()
        out.extend(now - sent for sent in map(stamp_of, records) if sent is not None)

    return listener


async def _async_watch(ingest: UdpIngest, step: _Step, rss: RssWatch | None) -> None:
    while True:
        step.queue_peak = max(step.queue_peak, ingest.queue.qsize())
        if rss is not None:
            rss.sample()
        await asyncio.sleep(0.02)


class _CountingProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.count += 1


async def _async_bare_step(sender: Child, rate: int, plan: BenchPlan) -> _Step:
    """The ceiling: an asyncio endpoint with the agent's socket options that only counts."""
    step = _Step("bare", rate, plan.duration_s)
    sock = _udp_socket(UdpConfig().receive_buffer_bytes)
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(_CountingProtocol, sock=sock)
    try:
        errors_before = udp_rcvbuf_errors()
        address = transport.get_extra_info("sockname")[:2]
        step.record_send(await sender.async_call("send", [address], rate, plan.duration_s, 0, timeout=plan.duration_s * 3 + 30))
        await _async_until_quiet(lambda: protocol.count, lambda: True, plan.drain_timeout_s)
        step.kernel_rcvbuf_errors = _delta(errors_before, udp_rcvbuf_errors())
    finally:
        transport.close()
    step.received = step.stored = protocol.count
    return step


def _udp_socket(receive_buffer: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _async_until_quiet(counter: Callable[[], int], done: Callable[[], bool], timeout: float) -> None:
    """Wait until ``counter`` stopped moving for 150 ms and ``done()`` holds, or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, still_since = counter(), loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.01)
        now, value = loop.time(), counter()
        if value != last:
            last, still_since = value, now
        elif now - still_since >= 0.15 and done():
            return
    logger.warning("Step did not drain within %.0f s; what is left counts as lost", timeout)


# --- the search ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Search:
    steps: list[_Step] = field(default_factory=list)
    best: _Step | None = None
    first_fail: _Step | None = None
    truncated: bool = False
    elapsed_s: float = 0.0

    @property
    def kept_up_rate(self) -> int:
        return max((s.rate for s in self.steps if s.kind == "ingest" and s.kept_up), default=0)

    def as_json(self) -> dict[str, Any]:
        return {
            "zero_loss_rate_dps": self.best.rate if self.best else 0,
            "first_failing_rate_dps": self.first_fail.rate if self.first_fail else None,
            "sender_limited": bool(self.best and self.best.sender_limited),
            "truncated_by_budget": self.truncated,
            "elapsed_s": round(self.elapsed_s, 1),
            "steps": [s.as_json() for s in self.steps],
        }


async def _async_search(run: Callable[[int], Awaitable[_Step]], plan: BenchPlan, console: Console) -> _Search:
    """Step up the rates until one fails, then bisect between the last pass and that fail."""
    search = _Search()
    started = time.perf_counter()
    step_cost = plan.duration_s + 2.0  # set-up, drain and teardown of a passing step

    async def attempt(rate: int) -> _Step | None:
        if time.perf_counter() - started + step_cost > plan.search_budget_s:
            search.truncated = True
            console.log(f"  [yellow]budget of {plan.search_budget_s:g} s reached before {rate}/s[/]")
            return None
        step = await run(rate)
        search.steps.append(step)
        console.log(f"  {step.summary()}")
        return step

    for rate in plan.rates:
        step = await attempt(rate)
        if step is None:
            break
        if not step.passed:
            search.first_fail = step
            break
        search.best = step
        if step.sender_limited:  # the sender is the limit; higher rates would not be what they say
            break
    if search.best is not None and search.first_fail is not None:
        for _ in range(plan.bisect_steps):
            low, high = search.best.rate, search.first_fail.rate
            if high - low <= max(1_000, low // 20):
                break
            step = await attempt(_round_rate((low + high) / 2))
            if step is None:
                break
            if step.passed:
                search.best = step
            else:
                search.first_fail = step
    search.elapsed_s = time.perf_counter() - started
    return search


def _round_rate(rate: float) -> int:
    return int(round(rate / 500) * 500)


# --- writer vs executemany ------------------------------------------------------------------------


def _writer_vs_executemany(plan: BenchPlan) -> dict[str, Any]:
    """``EventStore.write_batch`` (parsing included) against ``executemany`` of the same rows.

    Both write into a fresh file with the project's schema (indexes, triggers), ``connect``'s
    pragmas, batches of ``plan.batch_size`` and one ``BEGIN IMMEDIATE``…``COMMIT`` per batch.
    The two alternate batch by batch, so a busy machine slows both alike: after each timed
    writer batch, its committed rows are read back (untimed) and inserted, timed, as they are.
    """
    now_ms = time.time_ns() // 1_000_000
    datagrams = [Datagram(now_ms + k // 20, realistic(k), "127.0.0.1:40000") for k in range(plan.writer_datagrams)]
    synchronous = StoreConfig().synchronous
    writer_s = plain_s = 0.0
    writer_rows = 0
    with tempfile.TemporaryDirectory(prefix="restrike-bench-writer-") as tmp:
        store = EventStore(Path(tmp) / "writer", node_id="court-bench", synchronous=synchronous)
        plain_dir = Path(tmp) / "plain"
        plain_dir.mkdir()
        conn = connect(plain_dir / DB_FILENAME, synchronous=synchronous)
        try:
            migrate(conn)
            for i in range(0, len(datagrams), plan.batch_size):
                started = time.perf_counter()
                records = store.write_batch(datagrams[i : i + plan.batch_size])
                writer_s += time.perf_counter() - started
                writer_rows += len(records)
                rows = store.conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM pss_events_v2 WHERE epoch = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                    (store.epoch, records[0].seq, records[-1].seq),
                ).fetchall()
                matches = store.conn.execute("SELECT * FROM matches").fetchall()
                if matches:  # the rows' match_id must resolve (foreign keys are on)
                    marks = ", ".join("?" * len(matches[0]))
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(f"INSERT OR IGNORE INTO matches VALUES ({marks})", matches)
                    conn.execute("COMMIT")
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(INSERT_EVENT, rows)
                conn.execute("COMMIT")
                plain_s += time.perf_counter() - started
            plain_rows = conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0]
        finally:
            conn.close()
            store.close()
    if plain_rows != writer_rows:
        raise RuntimeError(f"executemany stored {plain_rows} rows, the writer {writer_rows}")
    writer_rps, plain_rps = writer_rows / writer_s, plain_rows / plain_s
    return {
        "rows": writer_rows,
        "writer_rows_per_s": writer_rps,
        "executemany_rows_per_s": plain_rps,
        "ratio_writer_vs_executemany": writer_rps / plain_rps,
    }


# --- measurements and the report ---------------------------------------------------------------------


def _delta(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def _report(
    plan: BenchPlan,
    ingest: _Search,
    bare: _Search,
    latency: _Step,
    writer: dict[str, Any],
    rss: RssWatch,
    elapsed_s: float,
    load_at_start: float,
) -> dict[str, Any]:
    zero_loss = ingest.best.rate if ingest.best else 0
    bare_rate = bare.best.rate if bare.best else 0
    lat = latency_summary(latency.latencies_ns) or {"p50": None, "p99": None, "max": None, "samples": 0}
    values: dict[str, float | None] = {
        "zero_loss_rate_dps": zero_loss,
        "ratio_ingest_vs_bare_receiver": zero_loss / bare_rate if bare_rate else None,
        "ratio_writer_vs_executemany": writer["ratio_writer_vs_executemany"],
        "latency_p99_ms_at_1000dps": lat["p99"],
        "peak_rss_mb": rss.peak / 2**20,
    }
    targets = {}
    for key, (op, limit) in TARGETS.items():
        value = values[key]
        ok = value is not None and (value >= limit if op == ">=" else value <= limit)
        targets[key] = {"target": f"{op} {limit}", "value": _round(value), "pass": ok}
    probe = _udp_socket(UdpConfig().receive_buffer_bytes)
    try:
        rcvbuf = probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        probe.close()
    return {
        "zero_loss_rate_dps": zero_loss,
        "bare_receiver_zero_loss_rate_dps": bare_rate,
        "ratio_ingest_vs_bare_receiver": _round(values["ratio_ingest_vs_bare_receiver"]),
        "lost_at_zero_loss_rate": ingest.best.lost if ingest.best else None,
        "zero_loss_kept_up_rate_dps": ingest.kept_up_rate,
        "zero_loss_kept_up_note": (
            f"highest step rate with zero loss whose backlog committed within {_KEPT_UP_DRAIN_S} s after sending "
            "stopped; zero_loss_rate_dps may lean on the in-memory queue for the step's duration"
        ),
        "first_failing_rate_dps": ingest.first_fail.rate if ingest.first_fail else None,
        "lost_at_first_failing_rate": ingest.first_fail.lost if ingest.first_fail else None,
        "latency_ms_at_1000dps": {k: lat[k] for k in ("p50", "p99", "max")},
        "latency_samples": lat["samples"],
        "latency_note": (
            "send-to-commit: sender's time.time_ns() embedded as avt;<ns>, minus time.time_ns() in a "
            "post-commit listener; an upper bound on receive-to-commit"
        ),
        "lost_at_latency_run": latency.lost,
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "baseline_rss_mb": round(rss.baseline / 2**20, 1),
        "max_rss_mb_getrusage": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "writer_rows_per_s": round(writer["writer_rows_per_s"]),
        "executemany_rows_per_s": round(writer["executemany_rows_per_s"]),
        "ratio_writer_vs_executemany": _round(writer["ratio_writer_vs_executemany"]),
        "writer_rows": writer["rows"],
        "targets": targets,
        "all_targets_met": all(t["pass"] for t in targets.values()),
        "searches": {"ingest": ingest.as_json(), "bare_receiver": bare.as_json()},
        "plan": {
            "duration_s": plan.duration_s,
            "rates_dps": list(plan.rates),
            "bisect_steps": plan.bisect_steps,
            "search_budget_s": plan.search_budget_s,
            "batch_size": plan.batch_size,
            "synchronous": StoreConfig().synchronous,
            "queue_size": UdpConfig().queue_size,
            "receive_buffer_bytes_requested": UdpConfig().receive_buffer_bytes,
            "receive_buffer_bytes_effective": rcvbuf,
            "traffic": f"{len(STREAM_START)} match-start lines once, then a cycle of {len(CYCLE)} real PSS lines",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "loadavg_1m_at_start": round(load_at_start, 2),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "elapsed_s": round(elapsed_s, 1),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
