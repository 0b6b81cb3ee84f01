"""``restrike bench control``: the director's command round trip, and what CURVE costs.

Everything runs for real on loopback: court agents (``SlaveAgent``, each in its own spawned
process, default store settings, no OBS: an OBS action's cost is OBS's own, which ``restrike
bench ivr`` measures) and, in this process, the master's command path
(:class:`master.control.Controller` over :class:`master.commands.CourtLine`, the DEALER the
CLI uses; the running master's links send the same way). In one run:

1. **Raw floor**: a pyzmq DEALER here and a ROUTER in a child process that echoes, with a
   payload the size of a command; plain and CURVE. Nothing of ours on either side.
2. **One court**: ``Controller.async_send(logs, lines=1)`` to one court, one after the other;
   the round trip covers building and checking the command, CURVE, the court's dispatcher
   recording the id and the outcome in its SQLite (two commits on the command book's own
   connection, ``synchronous=NORMAL``), the action, and the answer. With and without CURVE.
3. **Bulk to 8 courts**: the same action to 8 court agents at once; the time until the last
   answer. With and without CURVE.
4. **Pipeline throughput**: a court whose SQLite holds N events and a master (real
   ``Master``, PostgreSQL) that starts and fetches them all (``restrike bench pipeline``'s
   catch-up measurement), with CURVE and without, on two courts filled alike.

Prints one JSON object on stdout (progress on stderr) and exits 0 whether or not the targets
are met. Needs PostgreSQL for part 4 only (``--no-pipeline`` skips it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any

import typer
import zmq
import zmq.asyncio
from rich.console import Console
from rich.logging import RichHandler

from master.commands import CourtLine
from master.control import Controller
from restrike.bench.toolkit import BenchError, Child, async_serve_commands, bench_database, child_setup, court_config, latency_summary, run_child
from restrike.venue_keys import exchange_keys
from runtime.curve import KeyPair, new_key_pair
from shared.commands import Action
from shared.wire import Command, encode

__all__ = ["FULL_PLAN", "QUICK_PLAN", "TARGETS", "ControlPlan", "register", "run_control_benchmark"]

logger = logging.getLogger(__name__)

#: The issue's targets.
TARGETS = {"single_court_p99_ms": 5.0, "bulk_8_p99_ms": 20.0, "curve_pipeline_cost_max": 0.20}
ACTION = Action.LOGS
ARGS = {"lines": 1}


@dataclass(frozen=True)
class ControlPlan:
    raw_samples: int = 2_000
    single_samples: int = 1_000
    bulk_samples: int = 300
    courts: int = 8
    warmup: int = 50
    catchup_events: int = 50_000
    #: Catch-ups per mode, alternating plain and CURVE (the best of each counts: a loaded machine is noisy).
    pipeline_rounds: int = 2
    pipeline: bool = True


FULL_PLAN = ControlPlan()
QUICK_PLAN = ControlPlan(raw_samples=200, single_samples=100, bulk_samples=30, warmup=10, catchup_events=5_000,
                         pipeline_rounds=1)


def register(app: typer.Typer) -> None:
    """Add ``control`` to ``app`` (the ``restrike bench`` group)."""
    app.command("control")(control)


def control(
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: few samples, a small catch-up")] = False,
    db: Annotated[str | None, typer.Option("--db", help="PostgreSQL database to use (kept) instead of a fresh one")] = None,
    no_pipeline: Annotated[bool, typer.Option("--no-pipeline", help="Skip the pipeline throughput (needs no PostgreSQL)")] = False,
) -> None:
    """Command round trip p50/p99 (one court, bulk to 8), CURVE vs plain, raw DEALER/ROUTER floor; JSON on stdout."""
    console = Console(stderr=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)],
                        force=True)
    for noisy in ("slave_agent", "master", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    plan = replace(QUICK_PLAN if quick else FULL_PLAN, pipeline=not no_pipeline)
    try:
        result = run_control_benchmark(plan, db_url=db, console=console)
    except BenchError as exc:
        console.print(f"[red]Benchmark could not run:[/] {exc}")
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


def run_control_benchmark(plan: ControlPlan, *, db_url: str | None = None, console: Console | None = None) -> dict[str, Any]:
    """Every measurement of ``restrike bench control``, as the JSON-ready result (blocking)."""
    console = console or Console(stderr=True, quiet=True)
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="restrike-bench-control-") as tmp_name:
        tmp = Path(tmp_name)
        raw = {mode: _raw_floor(mode == "curve", plan, console) for mode in ("plain", "curve")}
        commands = {mode: asyncio.run(_async_commands(tmp / mode, mode == "curve", plan, console)) for mode in ("plain", "curve")}
        pipeline = _pipeline(tmp, plan, db_url, console) if plan.pipeline else None
    return _report(plan, raw, commands, pipeline, time.perf_counter() - started, load_at_start)


# --- 1. the raw floor -------------------------------------------------------------------------------


def _raw_router_main(conn: Connection, secret: str | None, public: str | None) -> None:
    """A ROUTER that sends every message straight back (CURVE server when given a pair)."""
    child_setup("raw-router")
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    if secret is not None and public is not None:
        router.curve_secretkey, router.curve_publickey, router.curve_server = secret.encode(), public.encode(), True
    port = router.bind_to_random_port("tcp://127.0.0.1")
    conn.send({"port": port})
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    try:
        while not conn.poll(0):
            if poller.poll(50):
                router.send_multipart(router.recv_multipart())
    finally:
        router.close()
        ctx.term()
        conn.close()


def _raw_floor(curve: bool, plan: ControlPlan, console: Console) -> dict[str, Any]:
    server, client = new_key_pair(), new_key_pair()
    payload = encode(_command("court-1", 5.0))  # a command's size on the wire
    with Child(f"raw router ({'curve' if curve else 'plain'})", _raw_router_main,
               server.secret if curve else None, server.public if curve else None) as router:
        port = router.wait_ready()["port"]

        async def measure() -> list[int]:
            ctx = zmq.asyncio.Context()
            dealer = ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            if curve:
                dealer.curve_secretkey, dealer.curve_publickey = client.secret.encode(), client.public.encode()
                dealer.curve_serverkey = server.public.encode()
            dealer.connect(f"tcp://127.0.0.1:{port}")
            samples = []
            try:
                for i in range(plan.warmup + plan.raw_samples):
                    began = time.perf_counter_ns()
                    await dealer.send(payload)
                    await dealer.recv()
                    if i >= plan.warmup:
                        samples.append(time.perf_counter_ns() - began)
            finally:
                dealer.close(linger=0)
                ctx.destroy(linger=0)
            return samples

        samples = asyncio.run(measure())
    summary = latency_summary(samples)
    console.log(f"[bold]Raw DEALER/ROUTER ({'CURVE' if curve else 'plain'})[/]: {summary}")
    return {"round_trip_ms": summary}


# --- 2 and 3. the command path -------------------------------------------------------------------------


def _court_main(conn: Connection, data_dir: str, node_id: str, curve: bool) -> None:
    """A court agent in its own process (no OBS: nothing but the command path runs beside it)."""
    run_child(conn, node_id, _async_court(conn, Path(data_dir), node_id, curve))


async def _async_court(conn: Connection, data_dir: Path, node_id: str, curve: bool) -> None:
    from slave_agent.app import SlaveAgent

    agent = SlaveAgent(court_config(data_dir, node_id, security={"curve": curve}))
    try:
        await agent.async_startup()
        assert agent.publisher is not None
        conn.send({"node_id": node_id, "endpoint": f"{node_id}@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}"})
        await async_serve_commands(conn, lambda command: ("error", f"unknown command {command[0]!r}"))
    finally:
        await agent.async_shutdown()


async def _async_commands(tmp: Path, curve: bool, plan: ControlPlan, console: Console) -> dict[str, Any]:
    label = "CURVE" if curve else "plain"
    node_ids = [f"bench-control-{i}" for i in range(1, plan.courts + 1)]
    master, pairs = exchange_keys(tmp / "master-keys", {n: tmp / n / "keys" for n in node_ids})
    with contextlib.ExitStack() as stack:
        courts = [Child(f"court {n} ({label})", _court_main, str(tmp / n), n, curve) for n in node_ids]
        for child in courts:
            stack.callback(child.close)
        infos = [await asyncio.to_thread(child.wait_ready) for child in courts]
        ctx = zmq.asyncio.Context()
        lines = [_line(ctx, info, master if curve else None, pairs[info["node_id"]] if curve else None) for info in infos]
        try:
            for line in lines:
                line.start()
            control = Controller(lambda: lines)
            one = node_ids[:1]
            single, court_ms = await _async_series(control, one, plan.warmup, plan.single_samples)
            console.log(f"[bold]One court ({label})[/]: round trip {latency_summary(single)}, at the court {latency_summary(court_ms)}")
            bulk, bulk_court_ms = await _async_series(control, None, plan.warmup // 5 or 1, plan.bulk_samples)
            console.log(f"[bold]Bulk to {plan.courts} courts ({label})[/]: until the last answer {latency_summary(bulk)}")
        finally:
            for line in lines:
                await line.async_stop()
            ctx.destroy(linger=0)
    return {
        "one_court_round_trip_ms": latency_summary(single),
        "one_court_at_the_court_ms": latency_summary(court_ms),
        f"bulk_{plan.courts}_until_last_answer_ms": latency_summary(bulk),
        f"bulk_{plan.courts}_at_the_court_ms": latency_summary(bulk_court_ms),
    }


def _line(ctx: zmq.asyncio.Context, info: dict[str, Any], master: KeyPair | None, court: KeyPair | None) -> CourtLine:
    node_id, _, address = info["endpoint"].partition("@")
    host, _pub, router = address.rsplit(":", 2)
    return CourtLine(ctx, node_id, node_id, host, int(router), client_keys=master, server_key=court.public if court else None)


async def _async_series(control: Controller, courts: list[str] | None, warmup: int, samples: int) -> tuple[list[int], list[int]]:
    """Round trips (ns) of ``samples`` commands after ``warmup``, and the courts' own durations (ns)."""
    totals: list[int] = []
    at_court: list[int] = []
    for i in range(warmup + samples):
        began = time.perf_counter_ns()
        result = await control.async_send(ACTION, ARGS, courts=courts, timeout=5.0)
        took = time.perf_counter_ns() - began
        if any(r.outcome != "done" for r in result.results):
            raise BenchError(f"a court did not answer done: {[(r.court, r.outcome, r.reason) for r in result.results]}")
        if i >= warmup:
            totals.append(took)
            at_court += [int((r.court_ms or 0) * 1e6) for r in result.results]
    return totals, at_court


def _command(node_id: str, seconds: float) -> Command:
    now = time.time_ns() // 1_000_000
    return Command(command_id=uuid.uuid4().hex, node_id=node_id, action=ACTION.value, args=ARGS,
                   sent_ms=now, deadline_ms=now + int(seconds * 1000))


# --- 4. pipeline throughput, CURVE vs plain ---------------------------------------------------------


def _pipeline(tmp: Path, plan: ControlPlan, db_url: str | None, console: Console) -> dict[str, Any]:
    from master.db.migrate import upgrade
    from restrike.bench.pipeline import FULL_PLAN as PIPELINE
    from restrike.bench.pipeline import _catchup, _prefill

    run_id = uuid.uuid4().hex[:8]
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "curve": []}
    with bench_database(db_url) as url:
        upgrade(url)
        for number in range(plan.pipeline_rounds):
            for mode in ("plain", "curve") if number % 2 == 0 else ("curve", "plain"):
                name = f"{mode}-{number}"
                fill = _prefill(tmp / f"catchup-{name}", f"bench-{run_id}-{name}", plan.catchup_events)
                fill.pop("payloads")
                console.log(f"[bold]Pipeline catch-up ({mode}, round {number + 1})[/]: {plan.catchup_events} events, "
                            "court -> master -> PostgreSQL")
                runs[mode].append(_catchup(url, tmp / name, fill, replace(PIPELINE, curve=mode == "curve"), console))
    return {mode: {**max(found, key=lambda r: r["catchup_dps"]), "rounds_dps": [r["catchup_dps"] for r in found]}
            for mode, found in runs.items()}


# --- the report -------------------------------------------------------------------------------------


def _report(
    plan: ControlPlan, raw: dict[str, Any], commands: dict[str, Any], pipeline: dict[str, Any] | None,
    elapsed: float, load_at_start: float,
) -> dict[str, Any]:
    bulk_key = f"bulk_{plan.courts}_until_last_answer_ms"

    def p(section: dict[str, Any], key: str, pct: str = "p99") -> float | None:
        value = (section.get(key) or {}).get(pct)
        return float(value) if value is not None else None

    single_p99 = p(commands["curve"], "one_court_round_trip_ms")
    bulk_p99 = p(commands["curve"], bulk_key)
    raw_p50 = p(raw["curve"], "round_trip_ms", "p50")
    single_p50 = p(commands["curve"], "one_court_round_trip_ms", "p50")
    plain_p50 = p(commands["plain"], "one_court_round_trip_ms", "p50")
    cost = None
    if pipeline is not None and pipeline["plain"]["catchup_dps"] and pipeline["curve"]["complete"]:
        cost = round(1 - pipeline["curve"]["catchup_dps"] / pipeline["plain"]["catchup_dps"], 3)
    return {
        "benchmark": "restrike bench control",
        "action": f"{ACTION.value} {ARGS}",
        "summary": {
            "one_court_p99_ms_curve": single_p99,
            f"bulk_{plan.courts}_p99_ms_curve": bulk_p99,
            "one_court_p50_ms_curve": single_p50,
            "raw_dealer_router_p50_ms_curve": raw_p50,
            "ratio_one_court_p50_vs_raw_p50": round(single_p50 / raw_p50, 2) if single_p50 and raw_p50 else None,
            "curve_cost_one_court_p50_ms": (
                round(single_p50 - plain_p50, 3) if single_p50 is not None and plain_p50 is not None else None
            ),
            "pipeline_catchup_dps_plain": pipeline["plain"]["catchup_dps"] if pipeline else None,
            "pipeline_catchup_dps_curve": pipeline["curve"]["catchup_dps"] if pipeline else None,
            "curve_pipeline_throughput_cost": cost,
            "targets": TARGETS,
            "targets_met": {
                "one_court_p99": single_p99 is not None and single_p99 <= TARGETS["single_court_p99_ms"],
                f"bulk_{plan.courts}_p99": bulk_p99 is not None and bulk_p99 <= TARGETS["bulk_8_p99_ms"],
                "curve_pipeline_cost": None if cost is None else cost <= TARGETS["curve_pipeline_cost_max"],
            },
        },
        "raw_dealer_router": raw,
        "commands": commands,
        "pipeline_catchup": pipeline,
        "plan": asdict(plan),
        "machine": {
            "cpus": os.cpu_count(), "load_at_start": round(load_at_start, 2), "load_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "pyzmq": zmq.pyzmq_version(), "libzmq": zmq.zmq_version(),
            "elapsed_s": round(elapsed, 1),
        },
    }
