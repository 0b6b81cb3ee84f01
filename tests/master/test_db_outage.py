"""The master through a central-database outage: memory stays flat, nothing is lost.

Real processes (8 court agents at 100 events/s, the master, a paced sender) and real
PostgreSQL behind a TCP proxy that is cut: for the master the database is gone, while the
shared server keeps serving everyone else's tests. This is ``restrike bench outage`` with a
short outage and a small per-court limit; the 5-minute figures come from the benchmark.
"""

from __future__ import annotations

import json

import pytest

from restrike.bench.outage import OutagePlan, run_outage_benchmark

pytestmark = pytest.mark.slow

PLAN = OutagePlan(courts=8, rate=100, before_s=6.0, outage_s=30.0, after_s=3.0, held_events=500, page_size=250,
                  drain_timeout_s=120.0)


@pytest.mark.timeout(420)
def test_memory_stays_flat_and_nothing_is_lost_through_a_database_outage() -> None:
    result = run_outage_benchmark(PLAN)
    print(json.dumps({k: result[k] for k in ("rss_mb", "late_outage_growth_mb", "bound_mb", "events", "not_held",
                                              "drain_s", "log")}))
    rss = result["rss_mb"]
    assert result["events"]["lost"] == 0 and result["events"]["stored_by_courts"] == result["events"]["sent"]
    assert result["not_held"]["courts"] == PLAN.courts and result["not_held"]["events"] > 0  # the limit was reached
    assert result["late_outage_growth_mb"] <= 16  # flat once every court holds its limit
    assert rss["outage_end"] - rss["before"] <= 2 * result["bound_mb"] + 20
    assert result["log"] == {"database_unavailable": 1, "database_back": 1, "courts_offline": 0}
