"""``restrike bench control`` end to end, shrunk: real court agents, the master's command path, raw pyzmq,
the pipeline's catch-up on PostgreSQL. Checks the shape of the JSON and that every figure is a
measurement, not the targets (a loaded machine may miss them)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from restrike.bench.control import QUICK_PLAN, TARGETS, run_control_benchmark

TINY_PLAN = replace(QUICK_PLAN, raw_samples=50, single_samples=30, bulk_samples=10, courts=3, warmup=5, catchup_events=2_000)


def _latency(summary: object) -> None:
    assert isinstance(summary, dict) and set(summary) == {"p50", "p99", "max", "samples"}, summary
    assert 0 < summary["p50"] <= summary["p99"] <= summary["max"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_run_reports_every_figure() -> None:
    result = json.loads(json.dumps(run_control_benchmark(TINY_PLAN)))

    for mode in ("plain", "curve"):
        _latency(result["raw_dealer_router"][mode]["round_trip_ms"])
        commands = result["commands"][mode]
        assert set(commands) == {"one_court_round_trip_ms", "one_court_at_the_court_ms",
                                 "bulk_3_until_last_answer_ms", "bulk_3_at_the_court_ms"}
        for summary in commands.values():
            _latency(summary)
        assert commands["one_court_round_trip_ms"]["samples"] == 30
        assert commands["bulk_3_at_the_court_ms"]["samples"] == 30  # 10 bulk commands x 3 courts, each answered
        catchup = result["pipeline_catchup"][mode]
        assert catchup["complete"] is True and catchup["stored_centrally"] == 2_000 and catchup["catchup_dps"] > 0
    summary = result["summary"]
    assert summary["targets"] == TARGETS
    assert summary["one_court_p50_ms_curve"] > summary["raw_dealer_router_p50_ms_curve"] > 0
    assert isinstance(summary["curve_pipeline_throughput_cost"], float)
    assert all(isinstance(v, bool) for v in summary["targets_met"].values())
