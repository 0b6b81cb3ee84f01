"""``restrike bench ivr``: challenge to replay on air, through the court agent, against the bare chain, in one run.

Two real headless OBS Studio (REC and STR, :mod:`restrike.headless_obs`) and real mpv; the court
agent (``SlaveAgent``) runs in this process on loopback. After a match is loaded (recording and
replay buffer started by the agent) and the buffer has filled, each of ``challenges`` rounds:

1. **Ours**: a ``ch1`` datagram to the agent's UDP port; from its arrival (the ingest stamp) to
   (a) the clip final on disk (saved by OBS and moved to ``IVR recordings``), (b) the clip playing
   in mpv at its position (asked over mpv's IPC), (c) the IVR scene live (OBS_STR's
   ``CurrentProgramSceneChanged``); read from the trigger log's step times. Then ``ch1;1`` ends
   the review (live scene back, mpv closed) before the next round.
2. **The floor**, alternating with ours: obsws-python alone on OBS_REC, ``SaveReplayBuffer`` ->
   ``ReplayBufferSaved`` -> mpv started on the file with the same position, polled over its IPC
   socket until it reports a playback position; no agent, no database, no rename.

Prints ONE JSON object: p50/p95 of each, the ratio of our (b) to the floor's (b) at p95, and the
targets (b) p95 <= 1.0 s and <= 1.25x the floor. Exits 0 whether or not they are met.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import typer

from restrike.bench.toolkit import BenchError, latency_summary
from restrike.headless_obs import HeadlessObs, available
from restrike.ports import free_port
from restrike.venue_keys import ensure_key_pair
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from slave_agent.obs.triggers import TriggerKind, TriggerLog
from slave_agent.security import COURT_KEY_NAME

__all__ = ["TARGET_B_P95_MS", "TARGET_RATIO", "register"]

logger = logging.getLogger(__name__)

TARGET_B_P95_MS = 1000.0
TARGET_RATIO = 1.25
PLAYER_ARGS = ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"]
MATCH = [
    "pre;FightLoaded",
    "at1;T. KIM;KIM Tae-hun;KOR;at2;J. SMITH;John Smith;USA",
    "mch;101;Final;M -58kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
    "rdy;FightReady",
]


def register(app: typer.Typer) -> None:
    """Add ``ivr`` to ``app`` (the ``restrike bench`` group)."""
    app.command("ivr")(ivr)


def ivr(
    challenges: int = typer.Option(20, min=1, max=200, help="Challenges through the agent (and as many bare runs)"),
    buffer_seconds: int = typer.Option(20, min=5, max=120, help="Replay buffer length (the clip's length)"),
    before_end: float = typer.Option(10.0, min=0, max=60, help="The clip opens this long before its end"),
    warmup: float = typer.Option(11.0, min=1, max=120, help="Seconds of video recorded before the first challenge"),
    gap: float = typer.Option(2.0, min=0, max=60, help="Pause before each save (OBS 29 stops saving after saves "
                                                        "in quick succession; real challenges are minutes apart)"),
) -> None:
    """Challenge -> clip final, mpv playing at position, IVR scene live; p50/p95 against the bare chain (JSON)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    problem = available() or (None if shutil.which("mpv") else "mpv not installed")
    if problem is not None:
        typer.echo(f"restrike bench ivr needs real OBS and mpv: {problem}", err=True)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="restrike-bench-ivr-") as folder:
        root = Path(folder)
        rec, streamer = HeadlessObs(root / "rec"), HeadlessObs(root / "str")
        try:  # OBS is stopped outside the event loop, so even Ctrl-C leaves no OBS behind
            rec.start()
            streamer.start()
            result = asyncio.run(_async_measure(root, rec, streamer, challenges, buffer_seconds, before_end, warmup, gap))
        finally:
            rec.close()
            streamer.close()
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


async def _async_measure(
    root: Path, rec: HeadlessObs, streamer: HeadlessObs, challenges: int, buffer_seconds: int, before_end: float,
    warmup: float, gap: float,
) -> dict[str, Any]:
    """Both chains, alternating, against the running OBS pair; the JSON-ready result."""
    udp_port = free_port()
    ensure_key_pair(root / "court" / "keys", COURT_KEY_NAME)  # CURVE is on; no master here
    agent = SlaveAgent(SlaveConfig(
        data_dir=root / "court",
        node={"node_id": "court-bench", "court": "Bench court"},
        udp={"host": "127.0.0.1", "port": udp_port},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        obs={"rec": {"port": rec.port}, "str": {"port": streamer.port}},
        ivr={"videos_root": str(root / "videos"), "replay_buffer_seconds": buffer_seconds,
             "start_before_end_seconds": before_end, "player_arguments": PLAYER_ARGS},
    ))
    tournament = agent.store.create_tournament("Bench Open")
    agent.store.add_day(tournament, 1, time.strftime("%Y-%m-%d"))
    agent.store.activate_day(tournament, 1)
    logs: list[TriggerLog] = []
    ours: dict[str, list[int]] = {"clip_final": [], "player_playing": [], "ivr_scene_live": []}
    bare: dict[str, list[int]] = {"clip_saved": [], "player_playing": []}
    failures: list[str] = []
    await agent.async_startup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert agent.director is not None and agent.obs is not None
        agent.director.on_log(logs.append)
        for sup in agent.obs.supervisors:
            await sup.async_wait_up(30)

        async def trigger(line: str, kind: TriggerKind) -> TriggerLog:
            count = len(logs)
            sock.sendto(line.encode(), ("127.0.0.1", udp_port))
            async with asyncio.timeout(60):
                while not any(log.trigger.kind is kind for log in logs[count:]):
                    await asyncio.sleep(0.005)
            return next(log for log in logs[count:] if log.trigger.kind is kind)

        for line in MATCH[:-1]:
            sock.sendto(line.encode(), ("127.0.0.1", udp_port))
        ready = await trigger(MATCH[-1], TriggerKind.MATCH_READY)
        if ready.outcome != "done":
            raise BenchError(f"the match did not start recording: {ready.reason}")
        print(f"recording; letting the replay buffer fill for {warmup:.0f} s", file=sys.stderr)
        await asyncio.sleep(warmup)
        floor = _BareChain(rec.port, before_end)
        try:
            for round_number in range(1, challenges + 1):
                await asyncio.sleep(gap)
                replay = await trigger("ch1", TriggerKind.REPLAY)
                steps = {s.name: s for s in replay.steps}
                if replay.outcome == "done":
                    ours["clip_final"].append(steps["move_clip"].at_ms)
                    ours["player_playing"].append(steps["open_player"].at_ms)
                    ours["ivr_scene_live"].append(steps["ivr_scene"].at_ms)
                else:
                    failures.append(f"ours #{round_number}: {replay.reason}")
                over = await trigger("ch1;1", TriggerKind.REVIEW_OVER)
                if over.outcome != "done":
                    failures.append(f"review over #{round_number}: {over.reason}")
                await asyncio.sleep(gap)
                try:
                    saved_ms, playing_ms = await asyncio.to_thread(floor.run, root / "bare")
                    bare["clip_saved"].append(saved_ms)
                    bare["player_playing"].append(playing_ms)
                except (OSError, TimeoutError, RuntimeError) as exc:
                    failures.append(f"bare #{round_number}: {exc}")
                print(f"{round_number}/{challenges}", file=sys.stderr)
        finally:
            floor.close()
    finally:
        sock.close()
        await agent.async_shutdown()
    return _result(ours, bare, failures, challenges, buffer_seconds, before_end)


def _result(ours: dict[str, list[int]], bare: dict[str, list[int]], failures: list[str], challenges: int,
            buffer_seconds: int, before_end: float) -> dict[str, Any]:
    def summary(values: list[int]) -> dict[str, Any] | None:
        return latency_summary([v * 1_000_000 for v in values], (50, 95))

    out: dict[str, Any] = {
        "challenges": challenges, "buffer_seconds": buffer_seconds, "before_end_seconds": before_end,
        "ours_ms": {name: summary(values) for name, values in ours.items()},
        "bare_ms": {name: summary(values) for name, values in bare.items()},
        "failures": failures,
    }
    ours_b, bare_b = out["ours_ms"]["player_playing"], out["bare_ms"]["player_playing"]
    if ours_b and bare_b:
        ratio = ours_b["p95"] / bare_b["p95"] if bare_b["p95"] else None
        out["ratio_player_playing_p95"] = None if ratio is None else round(ratio, 3)
        out["targets"] = {
            "player_playing_p95_ms": {"target": f"<= {TARGET_B_P95_MS:.0f}", "pass": ours_b["p95"] <= TARGET_B_P95_MS},
            "ratio_player_playing_p95": {"target": f"<= {TARGET_RATIO}",
                                         "pass": ratio is not None and ratio <= TARGET_RATIO},
        }
    return out


class _BareChain:
    """obsws-python and mpv with nothing in between: the floor the agent's chain is compared with."""

    def __init__(self, port: int, before_end: float):
        import obsws_python as obsws

        self.before_end = before_end
        self.requests = obsws.ReqClient(host="127.0.0.1", port=port, password="", timeout=10)
        self.events = obsws.EventClient(host="127.0.0.1", port=port, password="")
        self.saved = threading.Event()
        self.path = ""

        def on_replay_buffer_saved(data: Any) -> None:
            self.path = data.saved_replay_path
            self.saved.set()

        self.events.callback.register(on_replay_buffer_saved)

    def run(self, folder: Path) -> tuple[int, int]:
        """One chain: ms from the request to the clip saved, and to mpv playing it at its position."""
        folder.mkdir(exist_ok=True)
        self.saved.clear()
        began = time.monotonic()
        self.requests.save_replay_buffer()
        if not self.saved.wait(30):
            raise TimeoutError("no ReplayBufferSaved within 30 s")
        saved = time.monotonic()
        ipc = folder / "mpv.sock"
        ipc.unlink(missing_ok=True)
        player = subprocess.Popen(["mpv", *PLAYER_ARGS, f"--input-ipc-server={ipc}", f"--start=-{self.before_end:g}",
                                   "--", self.path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_playing(ipc, player, began + 30)
            playing = time.monotonic()
        finally:
            player.terminate()
            player.wait(10)
        return round((saved - began) * 1000), round((playing - began) * 1000)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.events.disconnect()
        with contextlib.suppress(Exception):
            self.requests.disconnect()


def _wait_playing(ipc: Path, player: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll mpv's IPC socket until it reports a playback position."""
    conn: socket.socket | None = None
    try:
        while conn is None:
            if player.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mpv did not open its IPC socket")
            candidate = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                candidate.connect(str(ipc))
                conn = candidate
            except OSError:
                candidate.close()
                time.sleep(0.005)
        with conn.makefile("rb") as reader:
            while time.monotonic() < deadline:
                conn.sendall(b'{"command": ["get_property", "time-pos"], "request_id": 1}\n')
                while True:
                    reply = json.loads(reader.readline() or b"{}")
                    if reply.get("request_id") == 1 or not reply:
                        break
                if reply.get("error") == "success" and reply.get("data") is not None:
                    return
                time.sleep(0.005)
        raise RuntimeError("mpv did not report a playback position")
    finally:
        if conn is not None:
            conn.close()
