"""Output state from OBS's events: only STARTED / STOPPED (and a recording's pause) change it.

The sequence below is what OBS 29 sent when the replay buffer started while a recording ran
(the encoder already running): STARTED came before STARTING, and STARTING carries
``outputActive: false``. Following ``outputActive`` left a running buffer shown as off (the
flaky ``test_the_courts_obs_commands``).
"""

from __future__ import annotations

from slave_agent.obs.supervisor import ObsSupervisor


def _event(state: str) -> dict[str, object]:
    return {"outputActive": state in ("STARTED", "RESUMED"), "outputState": f"OBS_WEBSOCKET_OUTPUT_{state}"}


def test_a_late_starting_event_does_not_turn_a_running_buffer_off() -> None:
    sup = ObsSupervisor("rec", "127.0.0.1", 1, lambda: "")
    seen: list[bool] = []
    sup.on_state(lambda before, after: seen.append(after.replay_buffer))
    for state in ("STARTED", "STARTING"):
        sup._dispatch("ReplayBufferStateChanged", _event(state))
    assert sup.snapshot.replay_buffer and seen == [True]
    for state in ("STOPPING", "STOPPED", "STARTING"):
        sup._dispatch("ReplayBufferStateChanged", _event(state))
    assert not sup.snapshot.replay_buffer and seen == [True, False]


def test_a_paused_recording_is_still_recording_and_keeps_its_file() -> None:
    sup = ObsSupervisor("rec", "127.0.0.1", 1, lambda: "")
    sup._dispatch("RecordStateChanged", {**_event("STARTED"), "outputPath": "/v/101.mkv"})
    sup._dispatch("RecordStateChanged", {**_event("PAUSED"), "outputPath": None})
    assert sup.snapshot.recording and sup.snapshot.record_path == "/v/101.mkv"
    sup._dispatch("RecordStateChanged", _event("STOPPING"))
    assert sup.snapshot.recording
    sup._dispatch("RecordStateChanged", {**_event("STOPPED"), "outputPath": "/v/101.mkv"})
    assert not sup.snapshot.recording
