"""``restrike bench outage``: the master's memory through a central-database outage.

Real processes: N court agents (``restrike slave run``), one master (``restrike master run``),
a paced UDP sender feeding every court, and PostgreSQL behind a :class:`TcpProxy`. After
``before_s`` of steady traffic the proxy is cut (for the master the database is gone: open
connections reset, new ones refused; the shared server itself keeps running for everyone
else), and restored after ``outage_s``; traffic goes on for ``after_s`` more. The master's
resident memory is sampled every second throughout.

What it prints (one JSON object on stdout, progress on stderr; exit 0 whether or not the
targets are met):

* ``rss_mb``: before the outage (the baseline), at its start, middle and end, the peak, and
  once everything is stored after it; ``late_outage_growth_mb`` = end - middle of the outage,
  and ``peak_vs_before``, the ratio to the baseline measured in the same run;
* ``bound_mb``: what the held events may take at most (courts x held_events_per_court x ~4 KB);
* ``events``: sent, stored by the courts, stored centrally, lost; ``not_held``: live events the
  master left in the courts' databases and fetched later (from its log, per court);
* ``drain_s``: from the database's return until the master held every court's events;
* ``courts_at_limit_before_outage``: courts whose limit was reached while the database was up
  (the machine could not keep up with the traffic: the "before" baseline is then not steady);
* ``log``: how often the master said the database was unavailable / back, and courts offline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Annotated, Any

import psutil
import typer
from rich.console import Console
from rich.logging import RichHandler

from restrike.bench.tcp_proxy import TcpProxy
from restrike.bench.toolkit import BenchError, Child, bench_database, check_traffic, sender_main
from restrike.ports import free_port
from restrike.venue_keys import set_up_venue

__all__ = ["FULL_PLAN", "QUICK_PLAN", "TARGETS", "OutagePlan", "register", "run_outage_benchmark"]

logger = logging.getLogger(__name__)

#: Memory is flat when it grows by at most this much over the second half of the outage.
TARGETS: dict[str, tuple[str, float]] = {
    "late_outage_growth_mb": ("<=", 16.0),
    "lost_events": ("==", 0),
}
#: Roughly what one event held in the master's memory costs (a decoded EventRecord).
EVENT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class OutagePlan:
    """How many courts, how fast, how long; :data:`FULL_PLAN` is the 5-minute outage."""

    courts: int = 8
    rate: int = 100
    before_s: float = 60.0
    outage_s: float = 300.0
    after_s: float = 30.0
    held_events: int = 5000
    page_size: int = 2000
    drain_timeout_s: float = 300.0


FULL_PLAN = OutagePlan()
QUICK_PLAN = OutagePlan(before_s=8.0, outage_s=40.0, after_s=5.0, held_events=1000, page_size=500, drain_timeout_s=120.0)


def register(app: typer.Typer) -> None:
    """Add ``outage`` to ``app`` (the ``restrike bench`` group)."""
    app.command("outage")(outage)


def outage(
    quick: Annotated[bool, typer.Option("--quick", help="40 s outage, 1000 events held per court")] = False,
    courts: Annotated[int | None, typer.Option(min=1, max=16, help="Court agents [default: 8]")] = None,
    rate: Annotated[int | None, typer.Option(min=1, max=2000, help="Events/s per court [default: 100]")] = None,
    seconds: Annotated[float | None, typer.Option(min=5, max=3600, help="Outage length [default: 300, quick: 40]")] = None,
    held: Annotated[
        int | None, typer.Option(min=10, help="The master's held_events_per_court [default: 5000, quick: 1000]")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Use this PostgreSQL database (kept) instead of a fresh restrike_bench_<hex>"),
    ] = None,
    keep_logs: Annotated[
        Path | None, typer.Option("--keep-logs", help="Copy the master's and the courts' logs into this folder")
    ] = None,
) -> None:
    """Master RSS before / during / after a central-database outage at N courts x R events/s; JSON on stdout."""
    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    plan = QUICK_PLAN if quick else FULL_PLAN
    overrides: dict[str, Any] = {"courts": courts, "rate": rate, "outage_s": seconds, "held_events": held}
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    if plan.held_events < plan.page_size:
        plan = replace(plan, page_size=plan.held_events)
    try:
        result = run_outage_benchmark(plan, db_url=db, console=console, keep_logs=keep_logs)
    except BenchError as exc:
        console.print(f"[red]Benchmark could not run:[/] {exc}")
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


def run_outage_benchmark(
    plan: OutagePlan, *, db_url: str | None = None, console: Console | None = None, keep_logs: Path | None = None
) -> dict[str, Any]:
    """Every measurement of ``restrike bench outage``, as the JSON-ready result (blocking)."""
    console = console or Console(stderr=True, quiet=True)
    check_traffic()
    with bench_database(db_url) as url, tempfile.TemporaryDirectory(prefix="restrike-bench-outage-") as tmp_name:
        tmp = Path(tmp_name)
        from sqlalchemy.engine import make_url

        target = make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy, contextlib.ExitStack() as stack:
            proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            courts = [_Court(tmp, i) for i in range(1, plan.courts + 1)]
            set_up_venue(tmp / "master" / "keys", {c.node_id: c.data_dir / "keys" for c in courts}, url)
            for court in courts:
                stack.callback(court.close)
                court.start()
            console.log(f"[bold]{plan.courts} courts[/] running; master behind a TCP proxy to {target.host}:{target.port}")
            master = _Master(tmp, proxied, [c.endpoint for c in courts], plan)
            stack.callback(master.close)
            master.start()
            if keep_logs is not None:
                stack.callback(_copy_logs, [master, *courts], keep_logs)  # runs after every process stopped
            sender = stack.enter_context(Child("sender", sender_main))
            sender.wait_ready()
            return _run(plan, url, proxy, courts, master, sender, console)


def _run(
    plan: OutagePlan, url: str, proxy: TcpProxy, courts: list[_Court], master: _Master, sender: Child, console: Console
) -> dict[str, Any]:
    rss = psutil.Process(master.pid)
    samples: list[tuple[float, float, str]] = []
    total_s = plan.before_s + plan.outage_s + plan.after_s
    targets = [("127.0.0.1", c.udp_port) for c in courts]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(sender.call, "send", targets, plan.rate, total_s, 0, timeout=total_s + 120)
        started = back_at = time.monotonic()
        cut_at = 0
        phase = "before"
        console.log(f"Traffic: {plan.courts} x {plan.rate}/s for {total_s:.0f} s; outage after {plan.before_s:.0f} s")
        while not sending.done():
            now = time.monotonic() - started
            if phase == "before" and now >= plan.before_s:
                phase = "outage"
                cut_at = len(master.log_text())
                console.log(f"[red]Database cut[/] ({proxy.cut()} connections reset) for {plan.outage_s:.0f} s")
            elif phase == "outage" and now >= plan.before_s + plan.outage_s:
                phase = "after"
                proxy.restore()
                back_at = time.monotonic()
                console.log("[green]Database back[/]")
            samples.append((round(now, 1), rss.memory_info().rss / 2**20, phase))
            time.sleep(1.0)
        sent = sending.result()
    counts = _wait_stored(url, courts, plan.drain_timeout_s)
    drain_s = time.monotonic() - back_at
    after_mb = rss.memory_info().rss / 2**20
    console.log(f"Everything stored {drain_s:.0f} s after the database came back" if counts["lost"] == 0
                else f"[red]{counts['lost']} events missing at the master[/]")
    master_log = master.log_text()
    return _report(plan, samples, after_mb, sent.sent_per_target * len(courts), counts, drain_s, master_log, cut_at)


def _wait_stored(url: str, courts: list[_Court], timeout: float) -> dict[str, int]:
    """Wait until the master holds every event the courts stored (or time out); the counts."""
    from master.db.store import CentralStore

    for court in courts:
        court.settle()
    expected = {c.node_id: c.count() for c in courts}
    store = CentralStore(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            central = {node: store.count_events(node) for node in expected}
            if central == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        store.close()
    stored = sum(expected.values())
    at_master = sum(central.values())
    return {"stored_by_courts": stored, "stored_centrally": at_master, "lost": stored - at_master}


def _report(
    plan: OutagePlan, samples: list[tuple[float, float, str]], after_mb: float, sent: int, counts: dict[str, int],
    drain_s: float, master_log: str, cut_at: int,
) -> dict[str, Any]:
    before = [mb for _, mb, phase in samples if phase == "before"]
    during = [mb for _, mb, phase in samples if phase == "outage"]
    if not before or len(during) < 4:
        raise BenchError("too few memory samples: the phases are too short")
    baseline = before[-1]
    middle, end = during[len(during) // 2], during[-1]
    peak = max(mb for _, mb, _ in samples)
    fetched = [int(n) for n in re.findall(r"the (\d+) live events not held in memory were fetched", master_log)]
    growth = round(end - middle, 1)
    measured = {"late_outage_growth_mb": growth, "lost_events": counts["lost"]}
    return {
        "plan": asdict(plan),
        "rss_mb": {
            "before": round(baseline, 1),
            "outage_start": round(during[0], 1),
            "outage_middle": round(middle, 1),
            "outage_end": round(end, 1),
            "peak": round(peak, 1),
            "after": round(after_mb, 1),
        },
        "late_outage_growth_mb": growth,
        "peak_vs_before": round(peak / baseline, 2),
        "bound_mb": round(plan.courts * plan.held_events * EVENT_BYTES / 2**20, 1),
        "events": {"sent": sent, **counts},
        "not_held": {"courts": len(fetched), "events": sum(fetched)},
        "drain_s": round(drain_s, 1),
        # Whether the master kept up before the outage: a court at its limit then means a machine
        # too slow for the traffic (the limit bounds memory in that case too), not the outage.
        "courts_at_limit_before_outage": master_log[:cut_at].count("events wait for the central database"),
        "log": {
            "database_unavailable": master_log.count("Central database unavailable"),
            "database_back": master_log.count("Central database back"),
            "courts_offline": len(re.findall(r"Court .* offline", master_log)),
        },
        "targets": {
            name: {"target": f"{op} {value:g}", "measured": measured[name], "met": _met(measured[name], op, value)}
            for name, (op, value) in TARGETS.items()
        },
        "samples_mb": [[t, round(mb, 1), phase] for t, mb, phase in samples[::10]],
    }


def _copy_logs(processes: list[_Process], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for process in processes:
        if process.log.exists():
            shutil.copy2(process.log, folder / process.log.name)


def _met(measured: float, op: str, value: float) -> bool:
    return {"<=": measured <= value, ">=": measured >= value, "==": measured == value}[op]


# --- the processes -------------------------------------------------------------------------------------


def _restrike() -> list[str]:
    """The ``restrike`` command of this installation."""
    script = Path(sys.executable).parent / "restrike"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from restrike.cli import main; main()"]


class _Process:
    """A ``restrike`` command in its own process, its output in a log file; ready when a line appears."""

    def __init__(self, args: list[str], log: Path, ready: str):
        self.args = [*_restrike(), *args]
        self.log = log
        self.ready = ready
        self._out: IO[bytes] | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, timeout: float = 60.0) -> None:
        self._out = self.log.open("ab")
        self.popen = subprocess.Popen(self.args, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.ready not in self.log_text():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{' '.join(self.args[1:3])} did not start:\n{self.log_text()[-2000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        if self._out is not None:
            self._out.close()


class _Court(_Process):
    def __init__(self, tmp: Path, number: int):
        self.node_id = f"bench-outage-{number}"
        self.data_dir = tmp / self.node_id
        self.udp_port, pub, router = free_port(), free_port(), free_port()
        self.endpoint = f"{self.node_id}@127.0.0.1:{pub}:{router}"
        super().__init__(
            ["slave", "run", "--data-dir", str(self.data_dir), "--udp-host", "127.0.0.1", "--udp-port", str(self.udp_port),
             "--pub-port", str(pub), "--router-port", str(router), "--court", f"Court {number}",
             "--node-id", self.node_id, "--no-mdns", "--no-obs"],
            tmp / f"{self.node_id}.log",
            "ready;",
        )

    def count(self) -> int:
        conn = sqlite3.connect(f"file:{self.data_dir / 'restrike-slave.sqlite3'}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0])
        finally:
            conn.close()

    def settle(self) -> None:
        """Until the court's count stops moving: the last datagrams are committed."""
        before = -1
        while (now := self.count()) != before:
            before = now
            time.sleep(0.5)


class _Master(_Process):
    def __init__(self, tmp: Path, url: str, endpoints: list[str], plan: OutagePlan):
        config = tmp / "master.toml"
        config.write_text(f"held_events_per_court = {plan.held_events}\npage_size = {plan.page_size}\n")
        args = ["master", "run", "--config", str(config), "--db", url, "--data-dir", str(tmp / "master"), "--no-mdns"]
        for endpoint in endpoints:
            args += ["--endpoint", endpoint]
        super().__init__(args, tmp / "master.log", "Master storing into")
