"""A real OBS Studio without a screen: its own HOME, websocket port and Xvfb display.

Tests and ``restrike bench ivr`` use it to talk to the real program instead of a stand-in.
Each instance gets a throw-away home with a profile (simple output mode, mkv, x264
ultrafast, 640x360, replay buffer on) and a scene collection holding the live and replay
scenes. It is stopped with SIGINT, which lets OBS finish its files (SIGTERM skips that).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from restrike.ports import free_port

__all__ = ["HeadlessObs", "ObsNotReady", "available"]

PROFILE = "restrike"
COLLECTION = "restrike"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class ObsNotReady(RuntimeError):
    """OBS (or its display) did not come up; the message holds the end of its log."""


def available() -> str | None:
    """Why a headless OBS cannot run here, or None when ``obs`` and ``Xvfb`` are installed."""
    missing = [exe for exe in ("obs", "Xvfb") if shutil.which(exe) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install obs-studio xvfb xauth libgl1-mesa-dri)"
    return None


def _ini(sections: dict[str, dict[str, object]]) -> str:
    out: list[str] = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out += [f"{key}={'true' if value is True else 'false' if value is False else value}"
                for key, value in values.items()]
        out.append("")
    return "\n".join(out)


def _source(kind: str, name: str, settings: dict[str, object]) -> dict[str, object]:
    return {
        "id": kind, "versioned_id": kind, "name": name, "uuid": str(uuid.uuid4()), "settings": settings,
        "enabled": True, "flags": 0, "mixers": 0, "volume": 1.0, "muted": False,
        "prev_ver": 486539266, "private_settings": {}, "sync": 0, "deinterlace_mode": 0,
        "deinterlace_field_order": 0, "monitoring_type": 0, "balance": 0.5, "push-to-mute": False,
        "push-to-talk": False, "hotkeys": {}, "filters": [],
    }


@dataclass
class HeadlessObs:
    """One OBS instance under its own Xvfb; ``start()``, ``stop()`` (SIGINT), ``kill()`` (SIGKILL)."""

    root: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    scenes: tuple[str, ...] = ("LIVE_SCENE", "IVR_SCENE")
    record_dir: Path | None = None
    _xvfb: subprocess.Popen[bytes] | None = None
    _obs: subprocess.Popen[bytes] | None = None
    display: str | None = None

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def log_path(self) -> Path:
        return self.root / "obs.log"

    @property
    def pid(self) -> int | None:
        return self._obs.pid if self._obs is not None else None

    def running(self) -> bool:
        return self._obs is not None and self._obs.poll() is None

    def write_config(self) -> None:
        """The home folder OBS reads: global settings, one profile, one scene collection."""
        config = self.home / ".config" / "obs-studio"
        profile = config / "basic" / "profiles" / PROFILE
        scenes = config / "basic" / "scenes"
        profile.mkdir(parents=True, exist_ok=True)
        scenes.mkdir(parents=True, exist_ok=True)
        record_dir = self.record_dir or self.root / "recordings"
        record_dir.mkdir(parents=True, exist_ok=True)
        websocket: dict[str, object] = {
            "FirstLoad": False, "ServerEnabled": True, "ServerPort": self.port, "AlertsEnabled": False,
            "AuthRequired": self.password is not None,
        }
        if self.password is not None:
            websocket["ServerPassword"] = self.password
        (config / "global.ini").write_text(_ini({
            "General": {"FirstRun": True, "EnableAutoUpdates": False, "ConfirmOnExit": False},
            "Basic": {"Profile": PROFILE, "ProfileDir": PROFILE, "SceneCollection": COLLECTION,
                      "SceneCollectionFile": COLLECTION, "ConfigOnNewProfile": False},
            "BasicWindow": {"SysTrayEnabled": True, "SysTrayWhenStarted": True, "WarnBeforeStoppingRecord": False,
                            "WarnBeforeStartingStream": False, "WarnBeforeStoppingStream": False},
            "OBSWebSocket": websocket,
        }), encoding="utf-8")
        (profile / "basic.ini").write_text(_ini({
            "General": {"Name": PROFILE},
            "Output": {"Mode": "Simple", "FilenameFormatting": "%CCYY-%MM-%DD %hh-%mm-%ss"},
            # Keyframes every second (x264Settings): a replay buffer or recording that joins an encoder
            # already running waits for the next keyframe, and the default 250 frames is over 8 s.
            "SimpleOutput": {"FilePath": record_dir, "RecFormat": "mkv", "RecEncoder": "x264", "Preset": "ultrafast",
                             "VBitrate": 500, "ABitrate": 64, "RecQuality": "Stream", "StreamEncoder": "x264",
                             "UseAdvanced": True, "x264Settings": "keyint=30",
                             "RecRB": True, "RecRBTime": 20, "RecRBSize": 512, "RecRBPrefix": "Replay"},
            "Video": {"BaseCX": 640, "BaseCY": 360, "OutputCX": 640, "OutputCY": 360, "FPSType": 0, "FPSCommon": 30},
            "Audio": {"SampleRate": 48000, "ChannelSetup": "Stereo"},
        }), encoding="utf-8")
        # Each scene shows a colour: OBS asks "no sources, are you sure?" (a dialog nobody sees, so the
        # request never completes) before starting the replay buffer or a stream from empty scenes.
        sources: list[dict[str, object]] = []
        for index, name in enumerate(self.scenes):
            colour = _source("color_source_v3", f"{name} colour", {"color": 0xFF202080 + index * 0x3000, "width": 640, "height": 360})
            item = {"name": colour["name"], "source_uuid": colour["uuid"], "visible": True, "locked": False, "id": 1,
                    "pos": {"x": 0.0, "y": 0.0}, "scale": {"x": 1.0, "y": 1.0}, "align": 5, "rot": 0.0}
            sources += [colour, _source("scene", name, {"custom_size": False, "id_counter": 1, "items": [item]})]
        (scenes / f"{COLLECTION}.json").write_text(json.dumps({
            "name": COLLECTION,
            "current_scene": self.scenes[0],
            "current_program_scene": self.scenes[0],
            "scene_order": [{"name": name} for name in self.scenes],
            "sources": sources,
            "groups": [], "quick_transitions": [], "transitions": [], "saved_projectors": [],
            "current_transition": "Cut", "transition_duration": 0, "preview_locked": False,
            "scaling_enabled": False, "scaling_level": 0, "scaling_off_x": 0.0, "scaling_off_y": 0.0,
            "modules": {}, "virtual-camera": {"type2": 3},
        }), encoding="utf-8")

    def start(self, timeout: float = START_TIMEOUT) -> HeadlessObs:
        """Start Xvfb (first time only) and OBS; returns once this OBS listens on its websocket port.

        Checked by process, not by connecting: on a machine where other tests start OBS too, a
        port picked free can be taken in between, and a connection would reach the other OBS.
        Then this one gets another port.
        """
        for _attempt in range(3):
            if self._start_once(timeout):
                return self
            self.kill()
            self.port = free_port()
        raise ObsNotReady("OBS found its websocket port taken by another process three times")

    def prepare(self, timeout: float = START_TIMEOUT) -> None:
        """Its home and its display, for whoever starts OBS itself (the agent's ``[obs.<name>.process]``)."""
        if not self.home.exists():
            self.write_config()
        if self._xvfb is None or self._xvfb.poll() is not None:
            self._start_xvfb(timeout)
        (self.root / "run").mkdir(mode=0o700, exist_ok=True)

    def arguments(self) -> list[str]:
        """OBS's arguments (after the program name ``obs``): this profile, collection and port."""
        return ["--minimize-to-tray", "--disable-shutdown-check", "--multi", "--profile", PROFILE,
                "--collection", COLLECTION, f"--websocket_port={self.port}"]

    def environment(self) -> dict[str, str]:
        """What OBS needs on top of a plain environment: its own home and runtime folder, the display."""
        return {"HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.root / "run"), "DISPLAY": str(self.display),
                "LIBGL_ALWAYS_SOFTWARE": "1"}

    def _start_once(self, timeout: float) -> bool:
        self.prepare(timeout)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "WAYLAND"))}, **self.environment()}
        with self.log_path.open("ab") as log:
            self._obs = subprocess.Popen(
                ["obs", *self.arguments()],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self._port_taken():
                return False
            if self._obs.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.kill()
                raise ObsNotReady(f"OBS on port {self.port} did not come up:\n{tail}")
            time.sleep(0.05)
        return True

    def _start_xvfb(self, timeout: float) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            os.close(write_fd)
            write_fd = -1
            number = b""
            deadline = time.monotonic() + timeout
            while not number.endswith(b"\n"):
                if time.monotonic() > deadline or self._xvfb.poll() is not None:
                    raise ObsNotReady("Xvfb did not report a display")
                chunk = os.read(read_fd, 16)
                if not chunk:
                    raise ObsNotReady("Xvfb closed its display pipe without a display number")
                number += chunk
            self.display = f":{number.decode().strip()}"
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)

    def _listening(self) -> bool:
        """This OBS process (not another one) listens on the websocket port."""
        assert self._obs is not None
        try:
            connections = psutil.Process(self._obs.pid).net_connections("tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in connections)

    def _port_taken(self) -> bool:
        """Another process listens on the port this OBS was given."""
        assert self._obs is not None
        try:
            return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port and c.pid not in (None, self._obs.pid)
                       for c in psutil.net_connections("tcp"))
        except psutil.Error:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGINT (OBS finishes its recordings and exits), SIGKILL if it hangs; returns its exit code."""
        if self._obs is None or self._obs.poll() is not None:
            return None if self._obs is None else self._obs.returncode
        self._obs.send_signal(signal.SIGINT)
        try:
            return self._obs.wait(timeout)
        except subprocess.TimeoutExpired:
            self._obs.kill()
            return self._obs.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is finished or saved."""
        if self._obs is not None and self._obs.poll() is None:
            self._obs.kill()
            self._obs.wait(5)

    def close(self) -> None:
        """Stop OBS and its display."""
        self.stop()
        if self._xvfb is not None and self._xvfb.poll() is None:
            self._xvfb.terminate()
            try:
                self._xvfb.wait(5)
            except subprocess.TimeoutExpired:
                self._xvfb.kill()
                self._xvfb.wait(5)
