"""The triggers' pure decisions and names."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.match_state import Athlete, MatchState
from shared.pss import parse_datagram
from shared.records import EventRecord
from slave_agent.obs.triggers import (
    Step,
    StepOutcome,
    TriggerKind,
    clip_name,
    clip_span,
    decide,
    overall,
    record_folder,
    recording_name,
    safe_name,
)


def _record(line: str, at: int = 1_000) -> EventRecord:
    (event,) = parse_datagram(line.encode())
    return EventRecord(node_id="n", epoch="e", seq=1, received_ms=at, raw=event.raw, raw_datagram=line.encode(),
                       code=event.code, event_category=event.category.value, parsed=event.fields, valid=event.valid,
                       match_uuid="m", match_number="101")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KIM Tae-hun", "KIM-Tae-hun"),
        ('a<b>c:d"e/f\\g|h?i*j%k', "abcdefghijk"),
        ("  trailing dots...  ", "trailing-dots"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Đoković Šime", "Đoković-Šime"),
        ("\x00\x1f", "unknown"),
        ("", "unknown"),
        ("x" * 400, "x" * 150),
    ],
)
def test_names_are_safe_on_windows_and_linux(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_recording_folder_and_names() -> None:
    state = MatchState()
    state.blue, state.red = Athlete("N. DESMOND", "N. DESMOND", "MRN"), Athlete("", "", "")
    assert recording_name(state, "245.A") == "245.A_N.-DESMOND_MRN_vs_red_NOC"
    assert record_folder(Path("/v"), "Croatia Open: 2026", 2) == Path("/v/Croatia-Open-2026/Day 2")
    assert clip_name("101", 1_785_253_212_000, ".mkv") == "101_20260728T154012Z.mkv"
    assert clip_name(None, 0, "mp4") == "match_19700101T000000Z.mp4"


def test_which_event_starts_what() -> None:
    assert decide(_record("rdy;FightReady"), review_on_air=False).kind is TriggerKind.MATCH_READY  # type: ignore[union-attr]
    replay = decide(_record("ch1"), review_on_air=False)
    assert replay is not None and replay.kind is TriggerKind.REPLAY and replay.challenge_by == "blue"
    assert replay.at_ms == 1_000 and replay.match_number == "101"
    over = decide(_record("ch1;0"), review_on_air=True)
    assert over is not None and over.kind is TriggerKind.REVIEW_OVER and over.challenge_result == "denied"
    assert decide(_record("ch1;0"), review_on_air=False) is None  # nothing on air to end
    clock = decide(_record("clk;01:30;start"), review_on_air=True)
    assert clock is not None and clock.source == "clock"
    assert decide(_record("clk;01:30;start"), review_on_air=False) is None
    assert decide(_record("pt1;3"), review_on_air=True) is None
    resent = _record("rdy;FightReady").model_copy(update={"resync": True})
    assert decide(resent, review_on_air=False) is None  # the past, resent after a restart


def test_a_clip_never_reaches_before_its_buffer_started() -> None:
    assert clip_span(100_000, 20, None) == clip_span(100_000, 20, 50_000)
    assert clip_span(100_000, 20, None).start_ms == 80_000
    assert clip_span(100_000, 20, 95_000).start_ms == 95_000


def test_overall_outcome() -> None:
    def step(outcome: StepOutcome) -> Step:
        return Step("s", outcome, 0, 0)

    assert overall([step(StepOutcome.DONE)] * 2) == "done"
    assert overall([step(StepOutcome.SKIPPED)] * 2) == "skipped"
    assert overall([step(StepOutcome.FAILED), step(StepOutcome.SKIPPED)]) == "failed"
    assert overall([step(StepOutcome.DONE), step(StepOutcome.FAILED)]) == "partial"
