"""The court agent as a daemon: its operator page and API, and ``restrike slave replay`` from another process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from restrike.headless_obs import HeadlessObs
from restrike.ports import free_port
from slave_agent.db.store import EventStore
from tests.obs_peers import MATCH_101
from tests.pipeline import Proc
from tests.support import court_keys, restrike_exe, wait_until

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    return json.loads(body) if url.endswith("/api/status") else body.decode()


def _config(tmp: Path, rec: HeadlessObs, streamer: HeadlessObs, page_port: int, udp_port: int) -> Path:
    path = tmp / "slave.toml"
    path.write_text(f"""
data_dir = "{tmp / 'court'}"
[node]
node_id = "court-5"
court = "Court 5"
[udp]
host = "127.0.0.1"
port = {udp_port}
[publisher]
host = "127.0.0.1"
pub_port = {free_port()}
router_port = {free_port()}
mdns = false
[operator]
enabled = true
port = {page_port}
[obs.rec]
port = {rec.port}
[obs.str]
port = {streamer.port}
[ivr]
videos_root = "{tmp / 'videos'}"
replay_buffer_seconds = 5
start_before_end_seconds = 2.0
player_arguments = ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"]
""", encoding="utf-8")
    return path


def test_operator_page_and_replay_from_another_process(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs]
) -> None:
    rec, streamer = obs_pair
    page_port, udp_port = free_port(), free_port()
    config = _config(tmp_path, rec, streamer, page_port, udp_port)
    court_keys(tmp_path / "court")
    store = EventStore(tmp_path / "court", node_id="court-5")
    tournament = store.create_tournament("Croatia Open")
    store.add_day(tournament, 1, "2026-12-03")
    store.activate_day(tournament, 1)
    store.close()
    base = f"http://127.0.0.1:{page_port}"
    agent = Proc(["slave", "run", "--config", str(config)], tmp_path / "agent.log").start("Operator page on")
    try:
        wait_until(lambda: _get(f"{base}/api/status")["obs"]["str_state"] == "up", 20, "OBS_STR up on the page")
        status = _get(f"{base}/api/status")
        assert status["court"] == "Court 5" and status["day"].startswith("Croatia Open, day 1")
        html = _get(f"{base}/")
        assert "REPLAY" in html and "Court 5" in html
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in MATCH_101:
                sock.sendto(line.encode(), ("127.0.0.1", udp_port))
        wait_until(lambda: [t["trigger"] for t in _get(f"{base}/api/status")["triggers"]] == ["match_ready"], 20,
                   "the match-ready trigger on the page")
        status = _get(f"{base}/api/status")
        assert status["match"]["number"] == "101" and status["match"]["blue"] == "KIM Tae-hun KOR"
        assert status["triggers"][0]["outcome"] == "done" and status["events"][0]["code"] == "rdy"
        wait_until(lambda: _get(f"{base}/api/status")["obs"]["replay_buffer"], 10, "the replay buffer running")
        # A hardware key's script: the REPLAY of the operator page, from another process.
        wait_until(lambda: (tmp_path / "videos").exists(), 5, "the recording folder")
        time.sleep(2)  # not a wait for readiness: the clip needs seconds of real video in the buffer
        replay = subprocess.run([restrike_exe(), "slave", "replay", "--url", base],
                                capture_output=True, text=True, timeout=120)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert replay.stdout.startswith("Replay done") and "IVR recordings" in replay.stdout
        status = _get(f"{base}/api/status")
        assert status["review_on_air"] and status["triggers"][0]["trigger"] == "replay"
        assert status["obs"]["current_scene"] == "IVR_SCENE"
    finally:
        assert agent.stop() == 0
    log = agent.text()
    assert "Traceback" not in log and "obsws_python" not in log  # the library's own logging stays silent
    nobody = subprocess.run([restrike_exe(), "slave", "replay", "--url", f"http://127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=60)
    assert nobody.returncode == 2 and "No court agent answered" in nobody.stderr
    assert len(nobody.stderr.strip().splitlines()) <= 2
