"""``restrike bench live``: what the master's live match per court costs on its receive path.

Every received event is decoded from the wire (``shared.wire.decode``) and then handed to
``master.live.LiveMatches``; the second must stay small beside the first. Measured in one run,
in-process, on simulated matches (both sender generations, challenges, injuries, results):

* ``decode_us``: the baseline, decoding one event message as the link does;
* ``fold_us``: ``LiveMatches.on_records`` for one live event, with one listener subscribed;
* ``skip_us``: per event of a catch-up page the live state already covers (a master restart);
* ``snapshot_us``: building the :class:`MatchSnapshot` a reader gets after a change;
* ``ratio_fold_vs_decode``, with its target.

Prints one JSON object on stdout; exits 0 whether or not the target is met.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import typer

from master.live import LiveMatches
from shared.match_snapshot import MatchSnapshot
from shared.pss import parse_line
from shared.pss.simulator import simulate_session
from shared.records import EventRecord
from shared.wire import EventMessage, Heartbeat, decode, encode

__all__ = ["register", "run_benchmark"]

#: The live fold may add at most half of what decoding the message already costs (0.16 to 0.37
#: measured on a shared 2-core machine at load 8: about 6 us against 16 to 37 us).
TARGET_RATIO = 0.5
_NODE = "court-bench"


def register(app: typer.Typer) -> None:
    """Add ``live`` to ``app`` (the ``restrike bench`` group)."""
    app.command("live")(live)


def live(
    matches: int = typer.Option(20, min=1, max=500, help="Simulated matches to fold"),
    repeat: int = typer.Option(5, min=1, max=50, help="Runs of each measurement (the best is reported)"),
) -> None:
    """Cost per event of the master's live match fold against decoding the event; JSON on stdout."""
    sys.stdout.write(json.dumps(run_benchmark(matches, repeat), indent=2) + "\n")


def run_benchmark(matches: int = 20, repeat: int = 5) -> dict[str, Any]:
    """Every measurement of ``restrike bench live``, as the JSON-ready result."""
    records = _records(matches)
    frames = [encode(EventMessage(record=r)) for r in records]

    def decode_all() -> None:
        for frame in frames:
            decode(frame)

    def fold_all() -> None:
        live = LiveMatches()
        live.subscribe(lambda court: None)
        for record in records:
            live.on_records(_NODE, (record,))

    covered = LiveMatches()
    covered.on_records(_NODE, records)
    court = covered.get(_NODE)
    assert court is not None
    heartbeat = Heartbeat(node_id=_NODE, court="Bench", hostname="bench", version="0", epoch="e1",
                          last_seq=len(records), sent_ms=0, pub_port=1, router_port=2, match=court.snapshot())

    def skip_all() -> None:
        covered.on_heartbeat(heartbeat)
        for start in range(0, len(records), 2000):
            covered.on_records(_NODE, records[start : start + 2000])

    def snapshots() -> None:
        for _ in range(1000):
            MatchSnapshot.of(court.state, court.seq)

    n = len(records)
    decode_us = _best(decode_all, repeat) / n
    fold_us = _best(fold_all, repeat) / n
    ratio = fold_us / decode_us
    return {
        "events": n,
        "decode_us": round(decode_us, 3),
        "fold_us": round(fold_us, 3),
        "skip_us": round(_best(skip_all, repeat) / n, 3),
        "snapshot_us": round(_best(snapshots, repeat) / 1000, 3),
        "ratio_fold_vs_decode": round(ratio, 3),
        "targets": {"ratio_fold_vs_decode": {"target": f"<= {TARGET_RATIO}", "pass": ratio <= TARGET_RATIO}},
    }


def _records(matches: int) -> list[EventRecord]:
    records = []
    for seq, (_, line) in enumerate(simulate_session(1, matches=matches).lines, start=1):
        event = parse_line(line)
        records.append(EventRecord(
            node_id=_NODE, epoch="e1", seq=seq, received_ms=seq, raw=line, raw_datagram=line.encode(), code=event.code,
            event_category=event.category, parsed=event.fields, valid=event.valid, error=event.error,
        ))
    return records


def _best(run: Callable[[], None], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in microseconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1e6
