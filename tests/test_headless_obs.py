"""The test harness's headless OBS: it starts, answers, records a playable file, stops cleanly, survives SIGKILL."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

import obsws_python as obsws
import pytest

from tests.obs_peers import running_obs

pytestmark = pytest.mark.slow

logging.getLogger("obsws_python").setLevel(logging.CRITICAL)  # it logs connection parameters at INFO


def _client(port: int, password: str = "") -> obsws.ReqClient:
    return obsws.ReqClient(host="127.0.0.1", port=port, password=password, timeout=5)


def test_headless_obs_records_and_stops_on_sigint(tmp_path: Path) -> None:
    with running_obs(tmp_path) as obs:
        client = _client(obs.port)
        version = client.get_version()
        assert version.obs_version.split(".")[0].isdigit() and version.obs_web_socket_version.startswith("5.")
        scenes = {s["sceneName"] for s in client.get_scene_list().scenes}
        assert scenes == {"LIVE_SCENE", "IVR_SCENE"}
        events = obsws.EventClient(host="127.0.0.1", port=obs.port, password="")
        stopped = threading.Event()
        paths: list[str] = []

        def on_record_state_changed(data: object) -> None:
            if data.output_state == "OBS_WEBSOCKET_OUTPUT_STOPPED":  # type: ignore[attr-defined]
                paths.append(data.output_path)  # type: ignore[attr-defined]
                stopped.set()

        events.callback.register(on_record_state_changed)
        client.start_record()
        time.sleep(1.5)  # the recording's length is what is under test here
        client.stop_record()
        assert stopped.wait(10)
        events.disconnect()
        client.disconnect()
        duration = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", paths[0]],
            capture_output=True, text=True, check=True,
        ).stdout
        assert float(duration) > 1.0
        began = time.monotonic()
        assert obs.stop() == 0
        assert time.monotonic() - began < 5  # SIGINT with no client left: a clean, quick exit


def test_killed_obs_comes_back_on_the_same_port(tmp_path: Path) -> None:
    with running_obs(tmp_path, password="s3cret") as obs:
        pid = obs.pid
        obs.kill()
        assert not obs.running()
        obs.start()
        assert obs.pid != pid
        client = _client(obs.port, "s3cret")
        assert client.get_version().obs_version
        client.disconnect()


def test_a_port_taken_by_another_process_is_not_mistaken_for_obs(tmp_path: Path) -> None:
    """Tests on one machine pick ports at the same time: this OBS must never be confused with another listener."""
    import socket

    from restrike.headless_obs import HeadlessObs

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        obs = HeadlessObs(tmp_path / "obs", port=taken)
        try:
            obs.start()
            assert obs.port != taken
            client = _client(obs.port)
            assert client.get_version().obs_version
            client.disconnect()
        finally:
            obs.close()
