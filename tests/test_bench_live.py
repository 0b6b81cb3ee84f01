"""``restrike bench live`` through the installed command (the ``restrike bench NAME`` pass-through)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import restrike_exe


@pytest.mark.slow
def test_live_bench_reports_costs_and_its_target() -> None:
    out = subprocess.run([restrike_exe(), "bench", "live", "--matches", "1", "--repeat", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["events"] > 100
    for key in ("decode_us", "fold_us", "skip_us", "snapshot_us", "ratio_fold_vs_decode"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["skip_us"] < result["fold_us"]  # a covered catch-up page costs less than folding it
    target = result["targets"]["ratio_fold_vs_decode"]
    assert target["pass"] is (result["ratio_fold_vs_decode"] <= 0.5)
