"""``restrike bench ingest`` end to end, shrunk: real sender process, real sockets, real SQLite.

Checks the shape of the JSON, not the targets: a loaded CI machine may miss them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from restrike.bench.ingest import QUICK_PLAN, async_run_benchmark

TINY_PLAN = replace(
    QUICK_PLAN,
    duration_s=0.4,
    rates=(1_000, 2_000),
    bisect_steps=0,
    search_budget_s=10.0,
    latency_duration_s=0.4,
    writer_datagrams=2_000,
    drain_timeout_s=5.0,
)

NUMBER = (int, float)


@pytest.mark.slow
@pytest.mark.timeout(180)  # about 15 s on an idle machine
def test_tiny_run_reports_every_key_with_sane_types() -> None:
    result = json.loads(json.dumps(asyncio.run(async_run_benchmark(TINY_PLAN))))

    for key in ("zero_loss_rate_dps", "bare_receiver_zero_loss_rate_dps", "zero_loss_kept_up_rate_dps"):
        assert isinstance(result[key], int) and result[key] >= 0, key
    assert result["zero_loss_rate_dps"] in (0, *TINY_PLAN.rates)
    assert result["lost_at_zero_loss_rate"] in (0, None)
    assert result["first_failing_rate_dps"] is None or result["first_failing_rate_dps"] in TINY_PLAN.rates
    assert result["lost_at_first_failing_rate"] is None or result["lost_at_first_failing_rate"] > 0
    for key in ("ratio_ingest_vs_bare_receiver", "ratio_writer_vs_executemany"):
        assert result[key] is None or (isinstance(result[key], NUMBER) and result[key] >= 0), key
    latency = result["latency_ms_at_1000dps"]
    assert set(latency) == {"p50", "p99", "max"}
    assert all(isinstance(v, NUMBER) and v >= 0 for v in latency.values()), latency
    assert latency["p50"] <= latency["p99"] <= latency["max"]
    assert result["latency_samples"] > 0
    assert isinstance(result["peak_rss_mb"], NUMBER) and result["peak_rss_mb"] > 0
    for key in ("writer_rows_per_s", "executemany_rows_per_s"):
        assert isinstance(result[key], int) and result[key] > 0, key
    assert result["writer_rows"] == TINY_PLAN.writer_datagrams

    assert set(result["targets"]) == {
        "zero_loss_rate_dps",
        "ratio_ingest_vs_bare_receiver",
        "ratio_writer_vs_executemany",
        "latency_p99_ms_at_1000dps",
        "peak_rss_mb",
    }
    assert all(isinstance(t["pass"], bool) and isinstance(t["target"], str) for t in result["targets"].values())
    assert isinstance(result["all_targets_met"], bool)

    for name in ("ingest", "bare_receiver"):
        search = result["searches"][name]
        assert search["steps"], name
        for step in search["steps"]:
            assert step["sent"] > 0 and step["lost"] == step["sent"] - (step.get("stored", step["received"]))
    machine = result["machine"]
    assert isinstance(machine["cpu_count"], int) and machine["python"] and machine["sqlite"]


def test_percentiles_are_nearest_rank() -> None:
    from restrike.bench.toolkit import latency_summary, percentile

    assert [percentile([1, 2, 3, 4, 5], p) for p in (0, 20, 21, 50, 99, 100)] == [1, 1, 2, 3, 5, 5]
    assert percentile(list(range(1, 151)), 99) == 149  # rank ceil(148.5)
    assert percentile(list(range(1, 101)), 7) == 7  # 7% of 100 is rank 7 exactly, whatever floats do
    assert latency_summary([3_000_000, 1_000_000, 2_000_000]) == {"p50": 2.0, "p99": 3.0, "max": 3.0, "samples": 3}
    assert latency_summary([]) is None
