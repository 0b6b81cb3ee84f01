"""``restrike bench console``: a datagram at a court -> the new score in the overlay's DOM, in a real browser.

One venue as the demo builds it: court agents with SQLite and CURVE, each in a process of its
own as on its own laptop at a venue, the master with its web console in a process of its own as
``restrike master run`` runs it, and here, Debian's Chromium showing ``/overlay``. Each court receives ``sc1;N;sc2;0`` at ``rate`` per
second, ``N`` counting up, so every score is one datagram. Timestamps (one machine, one wall
clock, so they compare across processes):

* ``sent``: just before ``sendto``;
* ``court_commit``: the court agent's post-commit listener;
* ``master_receive``: the master's live match state changed (the listener the overlay uses);
* ``page``: the websocket message with the score reached the page (a socket.io listener beside NiceGUI's);
* ``dom``: a MutationObserver in the page saw the score's text change.

It reports p50/p99 of the whole chain, the share of each hop (court commit, master receive,
push to the page, browser), the target (p99 <= 100 ms) and the courts page's first paint,
loaded while the traffic runs (target < 1 s): a signed-in director opening ``/``, with the
master's share of it (request to first byte). The paint
of the redirect that follows signing in is reported beside it; it also holds the password
check (argon2, slow on purpose). JSON on stdout; exit 0 either way.

The director's browser is a second Chromium at the lowest CPU priority (``SCHED_IDLE``) on the
machine's last CPU: at a venue it runs on the director's laptop, not on the machine that carries
the courts' scores, and a cold load of the console costs Chromium seconds of CPU. The chain is
also reported apart for the datagrams sent while a page was loading (``during_page_loads``) and
for the rest (``steady``), with the CPU each load cost and the master's event-loop stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import typer

from restrike.bench.toolkit import Child, async_serve_commands, child_setup, court_config, latency_summary, run_child

__all__ = ["register", "run_benchmark"]

TARGET_P99_MS = 100.0
PASSWORD = "bench-password"
TARGET_FIRST_PAINT_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_SETUP = [
    "pre;FightLoaded",
    "at1;Blue Athlete {n};Blue Athlete {n};KOR;at2;Red Athlete {n};Red Athlete {n};CRO",
    "mch;{n}01;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;16;5;",
    "rdy;FightReady",
    "clk;02:00;start",
]
_OBSERVER = """
window.__scores = [];
window.__pushed = [];
window.socket.on('update', msg => {
  const t = performance.timeOrigin + performance.now();
  for (const [id, element] of Object.entries(msg)) {
    const el = element && document.getElementById('c' + id);
    if (el && el.classList.contains('ov-score') && el.closest('.ov-row.blue'))
      window.__pushed.push([el.closest('.ov-card').querySelector('.ov-court').textContent, String(element.text ?? ''), t]);
  }
});
new MutationObserver(records => {
  const t = performance.timeOrigin + performance.now();
  for (const r of records) {
    const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    const row = el && el.closest('.ov-row.blue');
    const card = el && el.closest('.ov-card');
    if (row && el.closest('.ov-score')) window.__scores.push([card.querySelector('.ov-court').textContent, el.textContent, t]);
  }
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


def register(app: typer.Typer) -> None:
    """Add ``console`` to ``app`` (the ``restrike bench`` group)."""
    app.command("console")(console)


def console(
    courts: int = typer.Option(8, min=1, max=12, help="Courts"),
    rate: float = typer.Option(10.0, min=0.5, max=100, help="Score datagrams per second per court"),
    seconds: float = typer.Option(20.0, min=2, max=600, help="How long the traffic runs"),
) -> None:
    """Datagram -> score in the overlay's DOM (p50/p99, per-hop shares) and the courts page's first paint; JSON."""
    result = asyncio.run(run_benchmark(courts, rate, seconds))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


async def run_benchmark(courts: int = 8, rate: float = 10.0, seconds: float = 20.0) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from restrike.venue_keys import set_up_venue

    director_cpus = _director_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        master_config = _master_config(root)
        set_up_venue(master_config.keys_folder, {f"bench-court-{n}": root / f"court{n}" / "keys" for n in range(1, courts + 1)},
                     master_config.url())
        committed: dict[tuple[str, int], int] = {}
        children: list[Child] = []  # the courts
        helpers: list[Child] = []  # the master, the courts' scoring software
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for n in range(1, courts + 1):
                children.append(Child(f"Court {n}", _court_main, str(root / f"court{n}"), f"bench-court-{n}", f"Court {n}"))
            infos = [await asyncio.to_thread(child.wait_ready) for child in children]
            master = Child("master", _master_main, str(root), [info["endpoint"] for info in infos])
            helpers.append(master)
            url = (await asyncio.to_thread(master.wait_ready))["url"]
            ports = [info["udp_port"] for info in infos]
            for n, port in enumerate(ports, 1):
                for line in _SETUP:
                    sock.sendto(line.format(n=n).encode(), ("127.0.0.1", port))
            await _until(lambda: master.call("loaded", courts), 30)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                overlay = await (await browser.new_context(viewport={"width": 1920, "height": 1080})).new_page()
                await overlay.goto(url + "/overlay")
                await overlay.locator(".ov-card").nth(courts - 1).wait_for()
                await overlay.evaluate(_OBSERVER)
                async with _director_browser(director_cpus) as director:
                    sender = Child("traffic", _traffic_main, ports, rate, seconds)
                    helpers.append(sender)
                    await asyncio.to_thread(sender.wait_ready)
                    traffic = asyncio.create_task(sender.async_call("go", timeout=seconds + 60))
                    await asyncio.sleep(min(seconds / 2, 5))
                    paints: list[tuple[float | None, float | None, float | None]] = []
                    loads: list[dict[str, Any]] = []
                    for _ in range(3):
                        began, cpu = time.time_ns(), _chromium_cpu_seconds()
                        paints.append(await _first_paint(director, url, PASSWORD))
                        loads.append({"from_ns": began, "to_ns": time.time_ns(),
                                      "chromium_cpu_s": round(_chromium_cpu_seconds() - cpu, 2)})
                    sent = await traffic
                    await asyncio.sleep(1.0)  # the last scores on their way
                    seen = await overlay.evaluate("window.__scores")
                    pushed = await overlay.evaluate("window.__pushed")
                await browser.close()
            received = await master.async_call("received")
            stalls = await master.async_call("stalls")
            for child in children:
                committed.update(await child.async_call("commits"))
        finally:
            sock.close()
            for child in [*helpers, *children]:
                await asyncio.to_thread(child.close)
    dom, page = _first_seen(seen), _first_seen(pushed)
    keys = [key for key in sent if key in dom]
    total = [dom[k] - sent[k] for k in keys]

    def loaded_at(ns: int) -> bool:
        return any(load["from_ns"] <= ns <= load["to_ns"] for load in loads)

    def loading(key: tuple[str, int]) -> bool:
        return loaded_at(sent[key])

    def hops_of(chosen: list[tuple[str, int]]) -> dict[str, list[int]]:
        return {
            "court_commit": [committed[k] - sent[k] for k in chosen if k in committed],
            "master_receive": [received[k] - committed[k] for k in chosen if k in committed and k in received],
            "push_to_page": [page[k] - received[k] for k in chosen if k in received and k in page],
            "browser": [dom[k] - page[k] for k in chosen if k in page],
        }
    hops = hops_of(keys)
    summary = latency_summary(total)
    p50 = (summary or {}).get("p50") or 0
    return {
        "courts": courts,
        "rate_per_court": rate,
        "seconds": seconds,
        "datagrams": len(sent),
        "seen_in_dom": len(keys),
        "datagram_to_dom_ms": summary,
        "datagram_to_dom_ms_steady": latency_summary([dom[k] - sent[k] for k in keys if not loading(k)]),
        "datagram_to_dom_ms_during_page_loads": latency_summary([dom[k] - sent[k] for k in keys if loading(k)]),
        "page_loads": [{"seconds": round((load["to_ns"] - load["from_ns"]) / 1e9, 2),
                        "chromium_cpu_s": load["chromium_cpu_s"]} for load in loads],
        "hops_ms": {name: latency_summary(values) for name, values in hops.items()},
        "master_loop_stalls_over_10ms": {
            "steady": latency_summary([late for at, late in stalls if not loaded_at(at)]),
            "during_page_loads": latency_summary([late for at, late in stalls if loaded_at(at)]),
        },
        "hops_p99_ms_during_page_loads": {name: (latency_summary(values) or {}).get("p99")
                                          for name, values in hops_of([k for k in keys if loading(k)]).items()},
        "hop_share_of_p50": {
            name: round((latency_summary(values) or {}).get("p50", 0) / p50, 3) if p50 else None for name, values in hops.items()
        },
        "target_p99_ms": TARGET_P99_MS,
        "p99_vs_target": round((summary or {}).get("p99", 0) / TARGET_P99_MS, 3) if summary else None,
        "courts_page_first_paint_ms": [paint for _, paint, _ in paints],
        "courts_page_response_ms": [response for _, _, response in paints],
        "sign_in_to_first_paint_ms": [paint for paint, _, _ in paints],
        "target_first_paint_ms": TARGET_FIRST_PAINT_MS,
    }


def _first_seen(seen: list[list[Any]]) -> dict[tuple[str, int], int]:
    """(court, score) -> when the page first saw it, ns (from the page's ``[court, text, ms]`` records)."""
    first: dict[tuple[str, int], int] = {}
    for court, text, t_ms in seen:
        if text.isdigit():
            first.setdefault((court, int(text)), int(t_ms * 1e6))
    return first


def _master_config(root: Path) -> Any:
    from master.config import MasterConfig

    return MasterConfig(data_dir=root / "master", mdns=False, http_port=0)


def _master_main(conn: Any, root: str, endpoints: list[str]) -> None:
    """The master with its web console in its own process, as ``restrike master run`` runs it; answers
    ``("loaded", courts)`` (every court linked, its match loaded) and ``("received",)`` (when the master's
    live match state took each score)."""
    run_child(conn, "master", _async_master(conn, Path(root), endpoints))


async def _async_master(conn: Any, root: Path, endpoints: list[str]) -> None:
    from master.accounts import AccountStore
    from master.app import Master
    from master.console.server import ConsoleServer
    from runtime.lifecycle import freeze_startup_objects

    master = Master(_master_config(root).model_copy(update={"endpoints": endpoints}))
    console_server = None
    received: dict[tuple[str, int], int] = {}
    try:
        await master.async_startup()
        store = AccountStore(master.url)
        store.add_user("bench", PASSWORD)
        store.close()
        console_server = ConsoleServer(master, "127.0.0.1", 0, session_hours=1)
        await console_server.async_start()
        master.matches.subscribe(_receive_probe(received))
        freeze_startup_objects()  # as `restrike master run` does once started
        stalls: list[tuple[int, int]] = []
        watch = asyncio.create_task(_watch_loop(stalls))
        conn.send({"url": console_server.url})

        def answer(command: tuple[Any, ...]) -> Any:
            if command[0] == "loaded":
                views = master.courts()
                return len(views) == command[1] and all(v.match and v.match.number for v in views)
            if command[0] == "stalls":
                return stalls
            return received if command[0] == "received" else ("error", command[0])
        await async_serve_commands(conn, answer)
        watch.cancel()
    finally:
        if console_server is not None:
            await console_server.async_stop()
        await master.async_shutdown()


async def _watch_loop(stalls: list[tuple[int, int]], every: float = 0.002) -> None:
    """(when, how long) of every stretch over 10 ms in which the master's event loop ran something else:
    a score that arrived then waited that long."""
    while True:
        before = time.perf_counter_ns()
        await asyncio.sleep(every)
        late = time.perf_counter_ns() - before - int(every * 1e9)
        if late > 10_000_000:
            stalls.append((time.time_ns(), late))


def _court_main(conn: Any, data_dir: str, node_id: str, court: str) -> None:
    """One court agent in its own process; ``("commits",)`` answers when each score was committed."""
    run_child(conn, court, _async_court(conn, Path(data_dir), node_id, court))


async def _async_court(conn: Any, data_dir: Path, node_id: str, court: str) -> None:
    from slave_agent.app import SlaveAgent

    logging.getLogger("slave_agent.obs").setLevel(logging.ERROR)  # the bench's courts have no OBS, on purpose
    committed: dict[tuple[str, int], int] = {}
    agent = SlaveAgent(court_config(data_dir, node_id, court))
    agent.on_commit(_commit_probe(court, committed))
    try:
        await agent.async_startup()
        assert agent.publisher is not None
        conn.send({"endpoint": f"{node_id}@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}",
                   "udp_port": agent.config.udp.port})
        await async_serve_commands(conn, lambda command: committed if command[0] == "commits" else ("error", command[0]))
    finally:
        await agent.async_shutdown()


def _commit_probe(court: str, out: dict[tuple[str, int], int]) -> Any:
    def probe(records: list[Any]) -> None:
        now = time.time_ns()
        for record in records:
            if record.code == "sc1":
                out.setdefault((court, int(record.raw.split(";")[1])), now)
    return probe


def _receive_probe(out: dict[tuple[str, int], int]) -> Any:
    def probe(court: Any) -> None:
        out.setdefault((court.court or court.node_id, court.state.score[0]), time.time_ns())
    return probe


def _traffic_main(conn: Any, ports: list[int], rate: float, seconds: float) -> None:
    """The courts' scoring software, in a process of its own: ``("go",)`` sends, then answers when each score went."""
    child_setup("traffic")
    conn.send({"ready": True})
    while conn.recv()[0] == "go":
        sent: dict[tuple[str, int], int] = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            asyncio.run(_traffic(sock, ports, rate, seconds, sent))
        conn.send(sent)
    conn.close()


async def _traffic(sock: socket.socket, ports: list[int], rate: float, seconds: float, sent: dict[tuple[str, int], int]) -> None:
    """Every court one score datagram per 1/rate s, spread evenly across the courts."""
    interval = 1.0 / rate
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        tick += 1
        for n, port in enumerate(ports, 1):
            sent[(f"Court {n}", tick)] = time.time_ns()
            sock.sendto(f"sc1;{tick};sc2;0".encode(), ("127.0.0.1", port))
            await asyncio.sleep(interval / len(ports) * 0.5)
        delay = start + tick * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _director_cpus() -> set[int]:
    """The last CPU, for the director's browser, when there are two or more: the stand-in for a laptop of
    its own. On every CPU, a cold Chromium page load stalled every process of this machine for up to
    200 ms, whatever its priority (measured with an idle probe beside the benchmark: 176 ms; with the
    browser on one CPU: 32 ms). The venue's processes keep every CPU: one is too few for them."""
    cpus = os.sched_getaffinity(0)
    return {max(cpus)} if len(cpus) > 1 else cpus


@contextlib.asynccontextmanager
async def _director_browser(cpus: set[int]) -> AsyncIterator[Any]:
    """A second Chromium for the director's pages, the stand-in for a laptop of its own, running on
    what the venue's processes leave (SCHED_IDLE). Its own Playwright driver is put under that policy
    before it starts the browser, so every process the browser forks inherits it. Not nice 19:
    Chromium sets its renderers' nice value itself (to -8 as root)."""
    from playwright.async_api import async_playwright

    before = {process.pid for process in psutil.Process().children()}
    async with async_playwright() as playwright:
        for process in psutil.Process().children():
            if process.pid not in before:  # the new driver: every thread of it
                for task in os.listdir(f"/proc/{process.pid}/task"):
                    with contextlib.suppress(OSError):
                        os.sched_setscheduler(int(task), os.SCHED_IDLE, os.sched_param(0))
                        os.sched_setaffinity(int(task), cpus)
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # A director's browser is open before the console is: its first tab, not the console, pays for starting it.
        warm_up = await browser.new_context()
        await (await warm_up.new_page()).goto("about:blank")
        await warm_up.close()
        try:
            yield browser
        finally:
            await browser.close()


def _chromium_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if "chrom" in (process.info["name"] or ""):
            found.append(process)
    return found


def _chromium_cpu_seconds() -> float:
    """CPU time of every Chromium process running now (both browsers)."""
    total = 0.0
    for process in _chromium_processes():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def _first_paint(browser: Any, url: str, password: str) -> tuple[float | None, float | None, float | None]:
    """Sign in on a fresh page (its redirect to the courts page: first paint), then open the courts page:
    its first paint, and how long the master took to answer it (request sent to first byte)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = await context.new_page()
        await page.goto(url + "/sign-in")
        await page.get_by_label("User name").fill("bench")
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(url + "/")
        await page.locator(".q-card").first.wait_for()
        after_sign_in = await _paint(page)
        await page.goto(url + "/")
        await page.locator(".q-card").first.wait_for()
        response = await page.evaluate(
            "(n => n.responseStart - n.requestStart)(performance.getEntriesByType('navigation')[0])"
        )
        return after_sign_in, await _paint(page), round(float(response), 1)
    finally:
        await context.close()


_FIRST_CONTENTFUL_PAINT = """() => new Promise(resolve => {
  // A card can be laid out, so visible to Playwright, a frame before it is painted: wait for the entry.
  new PerformanceObserver(list => {
    for (const entry of list.getEntries())
      if (entry.name === 'first-contentful-paint') resolve(entry.startTime);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve(null), 10000);
})"""


async def _paint(page: Any) -> float | None:
    """The page's first contentful paint, ms after its navigation started (None: none within 10 s)."""
    paint = await page.evaluate(_FIRST_CONTENTFUL_PAINT)
    return None if paint is None else round(float(paint), 1)


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise SystemExit("the venue did not come up (courts linked with a loaded match)")
        await asyncio.sleep(0.05)
