"""The replay player is a real mpv, kept ready: a clip loaded at a position, asked over IPC, unloaded or closed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from slave_agent.obs.player import Player, PlayerError

HEADLESS = ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"]


def _clip(path: Path, seconds: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=160x90:rate=30:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(path)],
        check=True, timeout=60,
    )
    return path


def test_clip_loads_before_its_end_and_an_operator_close_is_reported(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip 101.mkv", 15)  # a space in the name, as OBS writes them
    other = _clip(tmp_path / "clip 102.mkv", 6)

    async def main() -> None:
        player = Player("mpv", HEADLESS)
        closed = asyncio.Event()
        player.on_closed(closed.set)
        try:
            await player.async_prepare()
            began = time.monotonic()
            position = await player.async_open(clip, 10, timeout=10)
            assert time.monotonic() - began < 2  # loading into a ready player, not starting one
            assert 4.5 <= position <= 6.0 and player.is_open
            assert await player.async_get("duration") == pytest.approx(15, abs=0.2)
            assert await player.async_get("path") == str(clip)
            # Unloaded by us: no "closed by the operator", the same player stays ready.
            process = player._process
            await player.async_close()
            assert not player.is_open and not closed.is_set() and player._process is process
            async with asyncio.timeout(5):  # mpv unloads asynchronously
                while await player.async_get("path") is not None:
                    await asyncio.sleep(0.01)
            position = await player.async_open(other, 10, timeout=10)  # shorter than the lead: from its start
            assert position <= 1.0 and await player.async_get("path") == str(other)
            assert player._process is not None
            os.kill(player._process.pid, signal.SIGTERM)  # what closing the window does
            async with asyncio.timeout(5):
                await closed.wait()
            assert not player.is_open
            await player.async_open(clip, 2, timeout=10)  # a new player is started when needed
            assert player.is_open
        finally:
            await player.async_shutdown()

    asyncio.run(main())


def test_a_missing_player_or_clip_says_why(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(PlayerError, match="not installed"):
            await Player("no-such-player", []).async_open(tmp_path / "x.mkv", 10, timeout=5)
        player = Player("mpv", HEADLESS)
        try:
            with pytest.raises(PlayerError, match="did not start playing"):
                await player.async_open(tmp_path / "missing.mkv", 10, timeout=2)
            assert not player.is_open
        finally:
            await player.async_shutdown()

    asyncio.run(main())
