"""``restrike bench pipeline --quick`` end to end: real processes, real ZeroMQ, real PostgreSQL.

Checks the command's registration and the shape of its JSON, not the targets: a loaded
machine may miss them.
"""

from __future__ import annotations

import json
import os

import pytest
import typer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from restrike.bench.pipeline import TARGETS, register
from restrike.bench.toolkit import ADMIN_URL
from tests.support import wait_until

NUMBER = (int, float)
LATENCY_KEYS = {"p50", "p99", "max"}


def _postgresql_reachable() -> bool:
    engine = create_engine(ADMIN_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def _bench_databases() -> set[str]:
    engine = create_engine(ADMIN_URL, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'restrike_bench_%'"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _latency(summary: object) -> None:
    assert isinstance(summary, dict) and set(summary) == LATENCY_KEYS, summary
    assert all(isinstance(v, NUMBER) and v >= 0 for v in summary.values()), summary
    assert summary["p50"] <= summary["p99"] <= summary["max"]


@pytest.mark.slow
@pytest.mark.timeout(240)  # a smoke run of about 40 s; a loaded machine may take several times that
def test_quick_run_prints_one_json_object_with_every_key() -> None:
    assert _postgresql_reachable(), f"PostgreSQL not reachable at {ADMIN_URL}: start it (scripts/services)"
    before = _bench_databases()
    app = typer.Typer()

    @app.callback()
    def _bench() -> None:
        """The ``bench`` group, as the project's CLI builds it."""

    register(app)
    result = CliRunner().invoke(
        app, ["pipeline", "--quick", "--duration", "1"], env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    )

    assert result.exit_code == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # the whole of stdout is the one object
    assert isinstance(report, dict)

    _latency(report["latency_send_to_master_commit_ms_at_100dps"])
    _latency(report["latency_send_to_master_commit_ms_at_1000dps"])
    for key in ("sustained_total_dps_8_courts", "sustained_rate_per_court_dps", "catchup_dps", "catchup_events",
                "raw_pubsub_messages_per_s"):
        assert isinstance(report[key], int) and report[key] >= 0, key
    assert isinstance(report["eight_courts_at_1000dps_sustained"], bool)
    for key in ("ratio_catchup_vs_raw_pubsub", "ratio_sustained_vs_raw_pubsub"):
        assert isinstance(report[key], NUMBER) and report[key] >= 0, key

    assert set(report["targets"]) == set(TARGETS)
    for target in report["targets"].values():
        assert isinstance(target["pass"], bool) and isinstance(target["target"], str)
        assert target["value"] is None or isinstance(target["value"], NUMBER)
    assert isinstance(report["all_targets_met"], bool)

    steps = report["latency"]["steps"]
    assert [s["rate_per_court_dps"] for s in steps] == [100, 1_000]
    for step in steps:
        assert step["lost"] == 0 and step["sent"] > 0, step
        _latency({k: step["send_to_master_commit_ms"][k] for k in LATENCY_KEYS})
        assert step["send_to_master_commit_ms"]["samples"] == step["sent"]
    load = report["load"]
    assert load["courts"] == 8 and load["steps"]
    for step in load["steps"]:
        assert len(step["per_court"]) == 8
        assert isinstance(step["sustained"], bool) and isinstance(step["drain_s"], NUMBER)
        assert isinstance(step["lag_at_end_events"], int)
        assert step["sent"] == sum(c["sent"] for c in step["per_court"])
    catchup = report["catchup"]
    assert catchup["complete"] is True and catchup["stored_centrally"] == catchup["events"]
    assert report["raw_pubsub"]["received"] == report["raw_pubsub"]["sent"]

    # The run's database was dropped. Other benchmark smoke tests may run beside this one (the suite
    # runs in several processes) with databases of their own: wait for those to go too.
    wait_until(lambda: not (_bench_databases() - before), 150, "no restrike_bench_* database left behind", interval=1)
