"""The master's clip cache on disk: partial files that survive a restart, bounded in size, least recently used out.

One clip (a court's node id and path) has one key and these files in the cache folder:
``KEY.json`` (where it comes from, its size and modification time at the court; touched at
each use), ``KEY.part`` (the bytes received so far, always a prefix of the clip), ``KEY.<ext>``
(the complete clip, renamed from the part once its size is right), ``KEY.play.mp4`` (the
remuxed copy a browser plays) and ``KEY.lock`` while a process fetches it. Everything here is
blocking file I/O: :mod:`master.clips` calls it from its own thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ClipCache", "ClipFiles", "ClipMeta"]

logger = logging.getLogger(__name__)

_SUFFIX = re.compile(r"\.([A-Za-z0-9]{1,8})$")


class ClipMeta(BaseModel):
    """Which file of which court the cached bytes are, as the court described it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node_id: str
    path: str
    total_size: int = Field(ge=0)
    mtime_ns: int = Field(ge=0)


@dataclass(frozen=True, slots=True)
class ClipFiles:
    """The cache files of one clip."""

    key: str
    folder: Path
    suffix: str

    @property
    def meta(self) -> Path:
        return self.folder / f"{self.key}.json"

    @property
    def part(self) -> Path:
        return self.folder / f"{self.key}.part"

    @property
    def complete(self) -> Path:
        return self.folder / f"{self.key}{self.suffix}"

    @property
    def playable(self) -> Path:
        return self.folder / f"{self.key}.play.mp4"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.key}.lock"


class ClipCache:
    """The cache folder: names, metadata, a lock per clip between processes, and LRU eviction."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)

    def files(self, node_id: str, path: str) -> ClipFiles:
        key = hashlib.sha256(f"{node_id}\0{path}".encode()).hexdigest()[:32]
        match = _SUFFIX.search(path)
        return ClipFiles(key, self.folder, f".{match.group(1).lower()}" if match else ".bin")

    def files_of(self, clip: Path) -> ClipFiles:
        """The files of a complete clip given by its path in this cache."""
        key, _, suffix = clip.name.partition(".")
        if clip.parent.resolve() != self.folder.resolve() or len(key) != 32 or not suffix:
            raise ValueError(f"{clip} is not a clip of the cache {self.folder}")
        return ClipFiles(key, self.folder, f".{suffix}")

    # --- metadata and the partial file ------------------------------------------------------

    def read_meta(self, files: ClipFiles) -> ClipMeta | None:
        try:
            return ClipMeta.model_validate_json(files.meta.read_bytes())
        except (OSError, ValidationError):
            return None

    def write_meta(self, files: ClipFiles, meta: ClipMeta) -> None:
        tmp = files.meta.with_suffix(f".json.{os.getpid()}")
        tmp.write_text(meta.model_dump_json(), encoding="utf-8")
        os.replace(tmp, files.meta)

    def resume_offset(self, files: ClipFiles) -> tuple[ClipMeta | None, int]:
        """What is known of the clip and how many of its bytes are here; a part without metadata,
        or longer than the clip, is discarded."""
        meta = self.read_meta(files)
        size = files.part.stat().st_size if files.part.exists() else 0
        if meta is None or size > meta.total_size:
            self.discard_part(files)
            return None, 0
        return meta, size

    def discard_part(self, files: ClipFiles) -> None:
        for path in (files.part, files.meta):
            path.unlink(missing_ok=True)

    def discard(self, files: ClipFiles) -> None:
        """Every file of the clip (it has gone from the court)."""
        for path in (files.part, files.meta, files.complete, files.playable):
            path.unlink(missing_ok=True)

    def touch(self, files: ClipFiles) -> None:
        """Mark the clip as just used (the metadata file's time orders the eviction)."""
        with contextlib.suppress(OSError):
            os.utime(files.meta)

    # --- one fetching process per clip ------------------------------------------------------

    def try_lock(self, files: ClipFiles) -> int | None:
        """Take the clip's lock: ``None`` when taken, else the pid of the live process holding it.

        A lock left by a process that has died (or by an earlier life of this pid) is taken over.
        """
        for _ in range(3):
            try:
                fd = os.open(files.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._lock_holder(files)
                if holder is not None:
                    return holder
                files.lock.unlink(missing_ok=True)  # stale
                continue
            with os.fdopen(fd, "w") as out:
                out.write(str(os.getpid()))
            return None
        return self._lock_holder(files) or -1

    def unlock(self, files: ClipFiles) -> None:
        if self._lock_holder(files) is None:  # ours (or nobody's)
            files.lock.unlink(missing_ok=True)

    def _lock_holder(self, files: ClipFiles) -> int | None:
        pid = self._read_pid(files)
        if pid is None or pid == os.getpid() or not psutil.pid_exists(pid):
            return None
        return pid

    def _read_pid(self, files: ClipFiles) -> int | None:
        try:
            return int(files.lock.read_text(encoding="ascii").strip() or "0") or None
        except (OSError, ValueError):
            return None

    # --- size bound -------------------------------------------------------------------------

    def evict(self, keep: set[str]) -> list[str]:
        """Delete the least recently used clips until the cache fits ``max_bytes``; returns their keys.

        Clips in ``keep`` (in use here) and those another process is fetching stay, and so does
        the most recently used one, even alone over the bound.
        """
        groups: dict[str, list[_Entry]] = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.is_file() and (found := _entry(entry)) is not None:
                    groups.setdefault(entry.name.partition(".")[0], []).append(found)
        sizes = {key: sum(e.size for e in group) for key, group in groups.items()}
        total = sum(sizes.values())
        if total <= self.max_bytes:
            return []
        order = sorted(groups, key=lambda key: _last_used(groups[key]))
        evicted = []
        for key in order[:-1]:
            if total <= self.max_bytes:
                break
            files = ClipFiles(key, self.folder, "")
            if key in keep or (files.lock.exists() and self._lock_holder(files) is not None):
                continue
            for cached in groups[key]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(cached.path)
            total -= sizes[key]
            evicted.append(key)
        if evicted:
            logger.info("Clip cache over %d MB: removed %d least recently used clip(s)", self.max_bytes // 2**20, len(evicted))
        return evicted


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str
    name: str
    size: int
    mtime: float


def _entry(entry: os.DirEntry[str]) -> _Entry | None:
    """A file of the cache with its size and time; None when it has gone since the folder was listed
    (another process finished a fetch, renamed a part or a remux, or evicted it)."""
    try:
        info = entry.stat()
    except FileNotFoundError:
        return None
    return _Entry(entry.path, entry.name, info.st_size, info.st_mtime)


def _last_used(group: list[_Entry]) -> float:
    """The metadata file's time (touched at each use), else the newest file's."""
    metas = [entry for entry in group if entry.name.endswith(".json")]
    return max(entry.mtime for entry in metas or group)
