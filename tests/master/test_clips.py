"""Replay clips from a court to the master: real agents, real links, real files made by ffmpeg.

A clip goes over the court's ROUTER in chunks with a credit window, lands in the master's
cache byte for byte, resumes after a court crash or a master restart, is remuxed to an MP4
that ffprobe reads, and nothing outside the court's clip folders is ever served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zmq.asyncio

from master.app import Master
from master.clip_cache import ClipCache, _entry
from master.clips import ClipFetcher, ClipNotFound, ClipRefused, CourtChannel, CourtOffline, RemuxFailed
from master.config import MasterConfig
from restrike.ports import free_port
from restrike.venue_keys import set_up_venue
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from slave_agent.obs.triggers import IVR_FOLDER
from tests.pipeline import Proc
from tests.support import async_wait_until, restrike_exe

CLIP_SECONDS = 12
SMALL_CHUNK = 16 * 1024  # a 12 s test clip is ~330 KB: small chunks give a transfer many steps to cut


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_clip(path: Path, seconds: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=320x240:rate=30",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=60,
    )
    return path


@pytest.fixture(scope="module")
def made_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real H.264/AAC Matroska clip for the module (copied into each court's folder)."""
    return _make_clip(tmp_path_factory.mktemp("clip") / "made.mkv", CLIP_SECONDS)


@pytest.fixture
def videos(tmp_path: Path, made_clip: Path) -> Path:
    root = tmp_path / "videos"
    folder = root / "Croatia Open" / "Day 1" / IVR_FOLDER
    folder.mkdir(parents=True)
    (folder / "101_20250720T101500Z.mkv").write_bytes(made_clip.read_bytes())
    return root


CLIP = f"Croatia Open/Day 1/{IVR_FOLDER}/101_20250720T101500Z.mkv"


def _keys(tmp_path: Path) -> None:
    """The court's and the master's keys, exchanged, the court approved in the master's embedded database."""
    set_up_venue(tmp_path / "master" / "keys", {"court-1": tmp_path / "court" / "keys"},
                 MasterConfig(data_dir=tmp_path / "master").url())


def _slave_config(data_dir: Path, videos: Path, pub_port: int, router_port: int) -> SlaveConfig:
    return SlaveConfig(
        data_dir=data_dir,
        node={"node_id": "court-1", "court": "Court 1"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": pub_port, "router_port": router_port, "mdns": False,
                   "heartbeat_seconds": 0.2},
        obs={"rec": {"enabled": False}, "str": {"enabled": False}},
        ivr={"videos_root": videos},
    )


@contextlib.asynccontextmanager
async def _venue(tmp_path: Path, videos: Path) -> AsyncIterator[tuple[SlaveAgent, Master]]:
    """A court agent and a master (embedded SQLite) linked to it, both in this process."""
    _keys(tmp_path)
    agent = SlaveAgent(_slave_config(tmp_path / "court", videos, free_port(), free_port()))
    await agent.async_startup()
    assert agent.publisher is not None
    master = Master(MasterConfig(
        data_dir=tmp_path / "master", mdns=False, heartbeat_seconds=0.2,
        endpoints=[f"court-1@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}"],
    ))
    try:
        await master.async_startup()
        await async_wait_until(lambda: (link := master.link_for("court-1")) is not None and link.online, 15, "the court online")
        yield agent, master
    finally:
        await master.async_shutdown()
        await agent.async_shutdown()


async def _ffprobe(path: Path) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "format=duration,format_name:stream=codec_name",
        "-of", "json", str(path), stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    result: dict[str, object] = json.loads(out)
    return result


def test_a_clip_arrives_byte_for_byte_once_for_all_askers_and_plays_as_mp4(tmp_path: Path, videos: Path) -> None:
    async def main() -> None:
        async with _venue(tmp_path, videos) as (agent, master):
            assert master.clips is not None and agent.clips is not None
            fetcher = master.clips
            seen: list[tuple[int, int]] = []
            first, second, third = await asyncio.gather(
                fetcher.fetch_clip("court-1", CLIP, lambda here, total: seen.append((here, total))),
                fetcher.fetch_clip("court-1", CLIP),
                fetcher.fetch_clip("court-1", CLIP),
            )
            assert first == second == third
            assert _sha(first) == _sha(videos / CLIP)
            size = (videos / CLIP).stat().st_size
            assert fetcher.stats.fetched == 1  # three askers, one transfer
            assert agent.clips.stats.chunks == -(-size // fetcher.chunk_bytes)  # every chunk asked for once
            assert seen[-1] == (size, size) and [h for h, _ in seen] == sorted(h for h, _ in seen)

            assert await fetcher.fetch_clip("court-1", CLIP) == first  # from the cache, no transfer
            assert fetcher.stats.cache_hits == 1 and agent.clips.stats.chunks == -(-size // fetcher.chunk_bytes)

            mp4 = await fetcher.playable(first)
            assert mp4.suffix == ".mp4" and await fetcher.playable(first) == mp4
            assert fetcher.stats.remuxed == 1
            probe = await _ffprobe(mp4)
            fmt = probe["format"]
            assert isinstance(fmt, dict) and "mp4" in fmt["format_name"]
            assert abs(float(fmt["duration"]) - CLIP_SECONDS) < 0.5
            assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]  # type: ignore[attr-defined]
            # -c copy: the video stream's bytes are the court's, not a re-encode.
            assert (await _ffprobe_packets(mp4)) == (await _ffprobe_packets(videos / CLIP))

    asyncio.run(main())


async def _ffprobe_packets(path: Path) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size,flags", "-of", "csv=p=0",
        str(path), stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode().split()


def test_path_traversal_and_missing_clips_are_refused_counted_and_the_court_keeps_serving(
    tmp_path: Path, videos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "secret.mkv").write_bytes(b"not a clip")
    day = videos / "Croatia Open" / "Day 1"
    os.symlink(tmp_path / "secret.mkv", day / IVR_FOLDER / "link.mkv")
    hostile = [
        "../secret.mkv",
        f"Croatia Open/Day 1/{IVR_FOLDER}/../../../../secret.mkv",
        str(tmp_path / "secret.mkv"),
        "/etc/passwd",
        f"Croatia Open/Day 1/{IVR_FOLDER}/link.mkv",
        "Croatia Open/Day 1",
    ]

    async def main() -> None:
        async with _venue(tmp_path, videos) as (agent, master):
            assert master.clips is not None and agent.clips is not None
            for path in hostile:
                with pytest.raises(ClipRefused, match="is not a replay clip of this court"):
                    await master.clips.fetch_clip("court-1", path)
            assert agent.clips.stats.refused == len(hostile)  # one probe each: nothing more was asked
            assert agent.clips.stats.chunks == 0
            with pytest.raises(ClipNotFound, match=r"no clip .*gone\.mkv on this court"):
                await master.clips.fetch_clip("court-1", f"Croatia Open/Day 1/{IVR_FOLDER}/gone.mkv")
            with pytest.raises(CourtOffline, match="not linked"):
                await master.clips.fetch_clip("court-9", CLIP)
            assert _sha(await master.clips.fetch_clip("court-1", CLIP)) == _sha(videos / CLIP)
            assert list((tmp_path / "master" / "clips").glob("*.part")) == []

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    refusals = [r.getMessage() for r in caplog.records if r.name == "slave_agent.clips" and "Refused" in r.getMessage()]
    assert any("(1 refused so far)" in line and "outside the videos folder" in line for line in refusals)
    assert sum(r.levelno == logging.WARNING for r in caplog.records if r.getMessage() in refusals) == 3  # then quieter


async def _fetch_stopped_at_a_third(master: Master) -> None:
    """A fetch in small chunks that the master's own shutdown cuts a third of the way in (a partial copy stays)."""
    clips = master.clips
    assert clips is not None
    clips.chunk_bytes, clips.window = SMALL_CHUNK, 2
    stopping: list[asyncio.Task[None]] = []

    def stop_at_a_third(here: int, total: int) -> None:
        if here > total // 3 and not stopping:
            stopping.append(asyncio.create_task(clips.async_close()))

    with pytest.raises(asyncio.CancelledError):
        await clips.fetch_clip("court-1", CLIP, stop_at_a_third)
    await stopping[0]


def test_a_master_restart_mid_transfer_resumes_from_the_cached_bytes(tmp_path: Path, videos: Path) -> None:
    size = (videos / CLIP).stat().st_size

    async def main() -> int:
        async with _venue(tmp_path, videos) as (_, master):
            await _fetch_stopped_at_a_third(master)
        (part,) = (tmp_path / "master" / "clips").glob("*.part")
        return part.stat().st_size

    kept = asyncio.run(main())
    assert 0 < kept < size

    async def again() -> None:
        async with _venue(tmp_path, videos) as (agent, master):
            assert master.clips is not None and agent.clips is not None
            master.clips.chunk_bytes = SMALL_CHUNK
            clip = await master.clips.fetch_clip("court-1", CLIP)
            assert _sha(clip) == _sha(videos / CLIP)
            assert master.clips.stats.resumed == 1
            assert master.clips.stats.bytes_received == size - kept  # only what was missing
            assert agent.clips.stats.bytes_sent == size - kept

    asyncio.run(again())


def test_a_busy_court_slows_the_transfer_and_loses_nothing(tmp_path: Path, videos: Path) -> None:
    """A court whose reader queue is full answers ``busy``: those chunks are asked again shortly."""

    async def main() -> None:
        async with _venue(tmp_path, videos) as (agent, master):
            assert master.clips is not None and agent.clips is not None
            agent.clips.max_pending = 1
            master.clips.chunk_bytes, master.clips.window = SMALL_CHUNK, 8
            clip = await master.clips.fetch_clip("court-1", CLIP)
            assert _sha(clip) == _sha(videos / CLIP)
            assert agent.clips.stats.busy > 0  # the window was larger than the court's queue

    asyncio.run(main())


def test_a_clip_changed_at_the_court_since_its_partial_copy_is_fetched_anew(
    tmp_path: Path, videos: Path, made_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cached bytes are a prefix of the old file: resuming on the new one would splice two clips."""

    async def main() -> None:
        async with _venue(tmp_path, videos) as (_, master):
            await _fetch_stopped_at_a_third(master)

    asyncio.run(main())
    assert len(list((tmp_path / "master" / "clips").glob("*.part"))) == 1
    changed = made_clip.read_bytes()[::-1]  # same size, other bytes, a later time
    (videos / CLIP).write_bytes(changed)
    os.utime(videos / CLIP, ns=(time.time_ns(), time.time_ns() + 10**9))

    async def again() -> None:
        async with _venue(tmp_path, videos) as (_, master):
            assert master.clips is not None
            master.clips.chunk_bytes = SMALL_CHUNK
            clip = await master.clips.fetch_clip("court-1", CLIP)
            assert clip.read_bytes() == changed
            assert master.clips.stats.resumed == 0 and master.clips.stats.bytes_received == len(changed)

    with caplog.at_level(logging.INFO, logger="master.clips"):
        asyncio.run(again())
    assert any("changed at the court" in r.getMessage() for r in caplog.records)


def _court_process(tmp_path: Path, videos: Path, pub_port: int, router_port: int) -> Proc:
    config = tmp_path / "court.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "court"}"\n'
        '[node]\nnode_id = "court-1"\ncourt = "Court 1"\n'
        f'[udp]\nhost = "127.0.0.1"\nport = {free_port()}\n'
        f'[publisher]\nhost = "127.0.0.1"\npub_port = {pub_port}\nrouter_port = {router_port}\n'
        'mdns = false\nheartbeat_seconds = 0.2\n'
        '[obs.rec]\nenabled = false\n[obs.str]\nenabled = false\n'
        f'[ivr]\nvideos_root = "{videos}"\n',
        encoding="utf-8",
    )
    return Proc(["slave", "run", "--config", str(config)], tmp_path / "court.log")


@pytest.mark.slow
def test_a_court_crash_mid_transfer_fails_as_offline_and_the_next_fetch_resumes(tmp_path: Path, videos: Path) -> None:
    """The court process is frozen (SIGSTOP) a third of the way in, then killed and started again."""
    size = (videos / CLIP).stat().st_size
    pub_port, router_port = free_port(), free_port()
    _keys(tmp_path)
    court = _court_process(tmp_path, videos, pub_port, router_port).start("ready;")

    async def main() -> None:
        master = Master(MasterConfig(
            data_dir=tmp_path / "master", mdns=False, heartbeat_seconds=0.2,
            endpoints=[f"court-1@127.0.0.1:{pub_port}:{router_port}"],
        ))
        await master.async_startup()
        try:
            assert master.clips is not None
            master.clips.chunk_bytes, master.clips.window = SMALL_CHUNK, 2
            await async_wait_until(lambda: (link := master.link_for("court-1")) is not None and link.online, 15, "court online")

            def freeze_at_a_third(here: int, total: int) -> None:
                if here > total // 3 and court.popen is not None and court.popen.returncode is None:
                    court.popen.send_signal(signal.SIGSTOP)

            began = time.monotonic()
            with pytest.raises(CourtOffline, match="went offline during the transfer"):
                await master.clips.fetch_clip("court-1", CLIP, freeze_at_a_third)
            assert time.monotonic() - began < 10  # the link's liveness, not the 15 s stall timeout
            court.kill()
            (part,) = (tmp_path / "master" / "clips").glob("*.part")
            kept = part.stat().st_size
            assert 0 < kept < size
            received = master.clips.stats.bytes_received

            await asyncio.to_thread(court.start, "ready;")
            await async_wait_until(lambda: (link := master.link_for("court-1")) is not None and link.online, 15, "court back")
            clip = await master.clips.fetch_clip("court-1", CLIP)
            assert _sha(clip) == _sha(videos / CLIP)
            assert master.clips.stats.bytes_received - received == size - kept
        finally:
            await master.async_shutdown()

    try:
        asyncio.run(main())
    finally:
        court.close()


def test_a_court_that_never_answers_is_offline_after_the_stall_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        silent = ctx.socket(zmq.ROUTER)  # accepts the connection, never answers
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        channel = CourtChannel(ctx, "127.0.0.1", port, "Court 7")
        fetcher = ClipFetcher(tmp_path / "clips", lambda node_id: channel, chunk_timeout=0.2, stall_timeout=0.6)
        channel.start(fetcher)
        try:
            with pytest.raises(CourtOffline, match="Court 7 stopped answering for 1 s"):
                await fetcher.fetch_clip("court-7", "x/IVR recordings/a.mkv")
            assert fetcher.stats.resent >= 1  # asked again before giving up
            assert list((tmp_path / "clips").glob("*.part")) == [] or all(
                p.stat().st_size == 0 for p in (tmp_path / "clips").glob("*.part"))
        finally:
            await fetcher.async_close()
            await channel.async_close()
            silent.close(linger=0)
            ctx.destroy(linger=0)

    asyncio.run(main())


def test_remux_says_why_it_failed(tmp_path: Path) -> None:
    async def main() -> None:
        fetcher = ClipFetcher(tmp_path / "clips", lambda node_id: None)
        files = fetcher.cache.files("court-1", "a/IVR recordings/broken.mkv")
        files.complete.write_bytes(b"this is no matroska file")
        try:
            with pytest.raises(RemuxFailed, match=r"ffmpeg could not remux \w+\.mkv to MP4: "):
                await fetcher.playable(files.complete)
            assert not files.playable.exists() and list((tmp_path / "clips").glob("*.tmp.mp4")) == []
            fetcher.ffmpeg = str(tmp_path / "no-ffmpeg-here")
            with pytest.raises(RemuxFailed, match=r"cannot run .*install ffmpeg"):
                await fetcher.playable(files.complete)
            with pytest.raises(ValueError, match="not a clip of the cache"):
                await fetcher.playable(tmp_path / "elsewhere.mkv")
        finally:
            await fetcher.async_close()

    asyncio.run(main())


def _fill(cache: ClipCache, name: str, size: int, used: float) -> Path:
    files = cache.files("court-1", f"x/IVR recordings/{name}.mkv")
    files.complete.write_bytes(b"x" * size)
    files.meta.write_text("{}")
    for path in (files.complete, files.meta):
        os.utime(path, (used, used))
    return files.complete


def test_the_cache_keeps_its_bound_least_recently_used_out(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "clips", max_bytes=10_000)
    now = time.time()
    old = _fill(cache, "old", 4000, now - 300)
    busy = _fill(cache, "busy", 4000, now - 200)
    used = _fill(cache, "used", 4000, now - 100)
    new = _fill(cache, "new", 4000, now)
    busy_key = busy.name.partition(".")[0]
    assert len(cache.evict(keep={busy_key})) == 2  # old and used go; busy is in use, new is newest
    assert [p.exists() for p in (old, busy, used, new)] == [False, True, False, True]


def test_a_file_gone_between_listing_and_reading_the_cache_is_skipped(tmp_path: Path) -> None:
    """Another process (the CLI, the master) may end a fetch or a remux while this one scans for eviction."""
    cache = ClipCache(tmp_path / "clips", max_bytes=10_000)
    kept = _fill(cache, "kept", 4000, time.time() - 100)
    gone = _fill(cache, "gone", 4000, time.time())
    with os.scandir(cache.folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    gone.unlink()
    found = {e.name: _entry(e) for e in entries}
    assert found[gone.name] is None
    assert found[kept.name] is not None and found[kept.name].size == 4000  # type: ignore[union-attr]


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "clips", max_bytes=10_000)
    files = cache.files("court-1", "x/IVR recordings/a.mkv")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        files.lock.write_text(str(sleeper.pid))
        assert cache.try_lock(files) == sleeper.pid  # alive: it holds the clip
    finally:
        sleeper.kill()
        sleeper.wait()
    assert cache.try_lock(files) is None  # dead: taken over
    assert files.lock.read_text() == str(os.getpid())
    cache.unlock(files)
    assert not files.lock.exists()


@pytest.mark.slow
def test_clip_fetch_command_copies_the_clip_and_says_why_it_cannot(tmp_path: Path, videos: Path) -> None:
    out = tmp_path / "fetched.mkv"

    async def main() -> subprocess.CompletedProcess[str]:
        async with _venue(tmp_path, videos) as (_, master):
            assert master.store is not None
            await async_wait_until(lambda: any(n["node_id"] == "court-1" for n in master.store.list_nodes()), 15, "the node row")
            args = [restrike_exe(), "master", "clip", "fetch", "--data-dir", str(tmp_path / "master")]

            def run(*more: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([*args, *more], capture_output=True, text=True, timeout=60)

            done, refused, unknown, uncopied = await asyncio.gather(
                asyncio.to_thread(run, "court-1", CLIP, "--out", str(out)),
                asyncio.to_thread(run, "Court 1", "../../etc/passwd"),  # the court's name works as well as its id
                asyncio.to_thread(run, "court-9", CLIP),
                asyncio.to_thread(run, "COURT 1", CLIP, "--out", str(tmp_path / "no-such-folder" / "a.mkv")),
            )
            assert refused.returncode == 1 and "refused" in refused.stderr and "Traceback" not in refused.stderr
            assert unknown.returncode == 2 and "no court 'court-9'" in unknown.stderr and "Court 1" in unknown.stderr
            assert uncopied.returncode == 2 and "cannot be copied to" in uncopied.stderr, uncopied.stderr
            assert "Traceback" not in uncopied.stderr
            return done

    done = asyncio.run(main())
    assert done.returncode == 0, done.stderr
    assert _sha(out) == _sha(videos / CLIP)
    assert str(out) in done.stdout


def test_the_progress_label_shows_court_and_clip_names_as_they_are() -> None:
    """Brackets in a name are no Rich markup: '[final]' would vanish and '[/A]' stop the command."""
    from rich.text import Text

    from master.clip_cli import progress_label

    label = progress_label("Court [/A]", f"x/{IVR_FOLDER}/101_[final].mkv")
    assert Text.from_markup(label).plain == "Court [/A]: 101_[final].mkv"
