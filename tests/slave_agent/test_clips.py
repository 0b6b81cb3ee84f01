"""Which paths a court serves as clips, and the file-transfer messages' limits."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgpack
import pytest

from shared.wire import MAX_CHUNK_BYTES, WIRE_VERSION, FileChunk, FileRequest, WireError, decode, encode
from slave_agent.clips import ClipServer, NotAClip, resolve_clip
from slave_agent.obs.triggers import IVR_FOLDER
from tests.support import async_wait_until


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    clips = root / "Croatia Open" / "Day 1" / IVR_FOLDER
    clips.mkdir(parents=True)
    (clips / "101_2025.mkv").write_bytes(b"clip")
    (root / "Croatia Open" / "Day 1" / "101_Perica_CRO_vs_Stevica_GER.mkv").write_bytes(b"match recording")
    (tmp_path / "secret.txt").write_text("not for the master")
    return root


def test_a_clip_by_absolute_or_relative_path(videos: Path) -> None:
    clip = videos / "Croatia Open" / "Day 1" / IVR_FOLDER / "101_2025.mkv"
    assert resolve_clip(videos, str(clip)) == clip.resolve()
    assert resolve_clip(videos, f"Croatia Open/Day 1/{IVR_FOLDER}/101_2025.mkv") == clip.resolve()
    # `..` that stays inside a clip folder is fine once resolved.
    assert resolve_clip(videos, f"Croatia Open/Day 2/../Day 1/{IVR_FOLDER}/101_2025.mkv") == clip.resolve()


def test_a_relative_path_as_the_agent_stored_it(videos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a relative ``videos_root`` the replay trigger stores clip paths relative to the agent's folder."""
    monkeypatch.chdir(videos.parent)
    clip = videos / "Croatia Open" / "Day 1" / IVR_FOLDER / "101_2025.mkv"
    assert resolve_clip(Path("videos"), f"videos/Croatia Open/Day 1/{IVR_FOLDER}/101_2025.mkv") == clip.resolve()
    assert resolve_clip(Path("videos"), f"Croatia Open/Day 1/{IVR_FOLDER}/101_2025.mkv") == clip.resolve()
    with pytest.raises(NotAClip, match="outside the videos folder"):
        resolve_clip(Path("videos"), "../secret.txt")


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ("../secret.txt", "outside the videos folder"),
        (f"Croatia Open/Day 1/{IVR_FOLDER}/../../../../secret.txt", "outside the videos folder"),
        ("/etc/passwd", "outside the videos folder"),
        ("Croatia Open/Day 1/101_Perica_CRO_vs_Stevica_GER.mkv", f"not in an {IVR_FOLDER!r} folder"),
        (f"Croatia Open/Day 1/{IVR_FOLDER}", f"not in an {IVR_FOLDER!r} folder"),
        ("Croatia Open/Day 1/\x00.mkv", "not a usable path"),
    ],
)
def test_anything_else_is_refused(videos: Path, requested: str, reason: str) -> None:
    with pytest.raises(NotAClip, match=reason):
        resolve_clip(videos, requested)


def test_a_symlink_in_a_clip_folder_pointing_outside_is_refused(videos: Path) -> None:
    link = videos / "Croatia Open" / "Day 1" / IVR_FOLDER / "innocent.mkv"
    os.symlink(videos.parent / "secret.txt", link)
    with pytest.raises(NotAClip, match="outside the videos folder"):
        resolve_clip(videos, str(link))
    # A symlinked videos root is followed: the clips are where it points.
    alias = videos.parent / "alias"
    os.symlink(videos, alias)
    assert resolve_clip(alias, f"Croatia Open/Day 1/{IVR_FOLDER}/101_2025.mkv").read_bytes() == b"clip"


def test_file_messages_round_trip_and_refuse_what_is_out_of_bounds() -> None:
    chunk = FileChunk(request_id=3, offset=10, data=b"\x00\xff" * 8, total_size=26, mtime_ns=5, eof=True)
    assert decode(encode(chunk)) == chunk
    request = FileRequest(request_id=3, path="C:\\videos\\IVR recordings\\a.mkv", offset=0, size=MAX_CHUNK_BYTES)
    assert decode(encode(request)) == request

    def raw(**fields: object) -> bytes:
        return msgpack.packb({"v": WIRE_VERSION, **fields}, use_bin_type=True)

    bad = [
        raw(type="file_request", request_id=1, path="a.mkv", offset=0, size=MAX_CHUNK_BYTES + 1),
        raw(type="file_request", request_id=1, path="a\x00.mkv", offset=0, size=10),
        raw(type="file_request", request_id=1, path="", offset=0, size=10),
        raw(type="file_request", request_id=1, path="a.mkv", offset=-1, size=10),
        raw(type="file_chunk", request_id=1, offset=0, data=b"x" * (MAX_CHUNK_BYTES + 1), total_size=2**30),
        raw(type="file_chunk", request_id=1, offset=0, data=b"x", error="refused"),
        raw(type="file_chunk", request_id=1, offset=5, data=b"xyz", total_size=6),
        raw(type="file_chunk", request_id=1, offset=0, error="on fire"),
    ]
    for payload in bad:
        with pytest.raises(WireError):
            decode(payload)


def test_reads_beyond_the_queue_bound_are_answered_busy_and_nothing_after_stop(videos: Path) -> None:
    """The court's reader thread takes ``max_pending`` reads at once; more is ``busy`` at once, never queued."""
    clip = f"Croatia Open/Day 1/{IVR_FOLDER}/101_2025.mkv"

    async def main() -> None:
        sent: list[FileChunk] = []

        def reply(identity: bytes, payload: bytes) -> None:
            assert identity == b"master"
            message = decode(payload)
            assert isinstance(message, FileChunk)
            sent.append(message)

        server = ClipServer(videos, reply, max_pending=2)
        try:
            for offset in range(3):
                server.handle(b"master", FileRequest(request_id=7, path=clip, offset=offset, size=4))
            assert [(c.offset, c.error) for c in sent] == [(2, "busy")]  # said at once, before any read ended
            await async_wait_until(lambda: len(sent) == 3, 10, "the two queued reads")
            assert sorted((c.offset, c.data) for c in sent[1:]) == [(0, b"clip"), (1, b"lip")]
            assert (server.stats.busy, server.stats.chunks) == (1, 2)
        finally:
            await server.async_stop()
        server.handle(b"master", FileRequest(request_id=7, path=clip, offset=0, size=4))
        assert len(sent) == 3  # stopped: no more answers

    asyncio.run(main())
