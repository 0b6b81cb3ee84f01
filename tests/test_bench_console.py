"""`restrike bench console` runs end to end on a small venue and reports every figure it promises.

In its own process: NiceGUI's app is one per process, and other tests in this one install theirs.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import restrike_exe


@pytest.mark.slow
def test_bench_console_smoke() -> None:
    run = subprocess.run(
        [restrike_exe(), "bench", "console", "--courts", "2", "--rate", "5", "--seconds", "3"],
        capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    # A score overwritten within one pushed update is never in the DOM (by design: the latest wins); on a
    # loaded machine updates carry more changes each, so not every score is seen.
    assert result["datagrams"] > 0 and result["seen_in_dom"] > 0.5 * result["datagrams"]
    assert result["datagram_to_dom_ms"]["p99"] >= result["datagram_to_dom_ms"]["p50"] > 0
    assert set(result["hops_ms"]) == {"court_commit", "master_receive", "push_to_page", "browser"}
    assert all(hop is not None and hop["samples"] > 0 for hop in result["hops_ms"].values())
    steady, loading = result["datagram_to_dom_ms_steady"], result["datagram_to_dom_ms_during_page_loads"]
    assert (steady or {"samples": 0})["samples"] + (loading or {"samples": 0})["samples"] == result["seen_in_dom"]
    assert len(result["page_loads"]) == 3 and all(load["seconds"] > 0 for load in result["page_loads"])
    paints = result["courts_page_first_paint_ms"] + result["sign_in_to_first_paint_ms"]
    assert len(paints) == 6 and all(paint is not None and paint > 0 for paint in paints)
    assert len(result["courts_page_response_ms"]) == 3 and all(ms > 0 for ms in result["courts_page_response_ms"])
    stalls = result["master_loop_stalls_over_10ms"]
    assert set(stalls) == {"steady", "during_page_loads"}
