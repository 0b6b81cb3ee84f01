"""``restrike bench clips`` end to end, shrunk: a real court process, the real master, raw pyzmq, ffmpeg.

Checks the shape of the JSON and that every figure is a measurement, not the targets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from restrike.bench.clips import QUICK_PLAN, async_run_benchmark

TINY_PLAN = replace(QUICK_PLAN, size_mb=2, windows=(2,), repeats=1, clip_seconds=2)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_tiny_run_reports_every_figure() -> None:
    result = json.loads(json.dumps(asyncio.run(async_run_benchmark(TINY_PLAN))))

    for key in ("throughput_mb_s", "raw_pyzmq_mb_s", "ratio_vs_raw"):
        assert set(result[key]) == {"window_2"}, key
        figures = result[key]["window_2"]
        assert figures["best"] >= figures["median"] > 0 or key == "ratio_vs_raw", key
    assert set(result["cpu_s_per_100_mb"]["window_2"]) == {"ours", "raw"}
    playable = result["first_playable_ms"]
    assert 0 < playable["fetch_ms_p50"] < playable["total_ms_p50"]
    assert 0 < playable["remux_ms_p50"] < playable["total_ms_p50"]
    assert result["first_playable_clip"]["bytes"] > 10_000
    assert set(result["targets"]) == {"ratio_vs_raw_window_8", "first_playable_ms_p50"}
    assert result["targets"]["ratio_vs_raw_window_8"]["value"] is None  # no window 8 in this plan
    assert isinstance(result["targets"]["first_playable_ms_p50"]["pass"], bool)
