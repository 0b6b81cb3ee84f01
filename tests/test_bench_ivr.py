"""``restrike bench ivr`` through the installed command: real OBS, real mpv, both chains measured."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import restrike_exe


@pytest.mark.slow
@pytest.mark.obs
def test_ivr_bench_measures_our_chain_and_the_bare_one() -> None:
    # A round OBS did not confirm is reported, not counted (docs/architecture.md, known limits). Headless
    # OBS 29 starved of CPU (a loaded test machine) was seen confirming no save at all for a while, in
    # both chains: then the bench runs once more, and the report of every run is in the message.
    reports: list[list[str]] = []
    for _ in range(2):
        out = subprocess.run(
            [restrike_exe(), "bench", "ivr", "--challenges", "3", "--warmup", "3", "--buffer-seconds", "5",
             "--before-end", "2"],
            capture_output=True, text=True, timeout=240,
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert all(isinstance(f, str) and ": " in f for f in result["failures"])
        reports.append(result["failures"])
        ours_failed = len([f for f in result["failures"] if f.startswith("ours")])
        bare_failed = len([f for f in result["failures"] if f.startswith("bare")])
        if ours_failed < 3 and bare_failed < 3:
            break
    assert ours_failed < 3 and bare_failed < 3, reports
    for name in ("clip_final", "player_playing", "ivr_scene_live"):
        assert result["ours_ms"][name]["samples"] == 3 - ours_failed and result["ours_ms"][name]["p50"] > 0, name
    for name in ("clip_saved", "player_playing"):
        assert result["bare_ms"][name]["samples"] == 3 - bare_failed, name
    # The clip is final before it plays; the floor's player cannot play before its clip is saved.
    assert result["ours_ms"]["clip_final"]["p50"] <= result["ours_ms"]["player_playing"]["p50"]
    assert result["bare_ms"]["clip_saved"]["p50"] <= result["bare_ms"]["player_playing"]["p50"]
    ratio = result["ratio_player_playing_p95"]
    assert ratio == pytest.approx(result["ours_ms"]["player_playing"]["p95"] / result["bare_ms"]["player_playing"]["p95"],
                                  abs=0.001)
    targets = result["targets"]
    assert targets["ratio_player_playing_p95"]["pass"] is (ratio <= 1.25)
    assert targets["player_playing_p95_ms"]["pass"] is (result["ours_ms"]["player_playing"]["p95"] <= 1000)
