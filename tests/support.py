"""Helpers the tests share: the real tournament capture and the installed console script."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
SAMPLE_TSV = DATA / "reconstructed_pss_stream_20250720-20250809.tsv"


def sample_lines() -> list[tuple[str, str]]:
    """``(log timestamp, protocol line)`` for every row of the real tournament capture."""
    rows = []
    for line in SAMPLE_TSV.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        stamp, _kind, text = line.split("\t", 2)
        rows.append((stamp, text))
    return rows


def restrike_exe() -> str:
    """The installed console script, next to the interpreter running the tests."""
    exe = Path(sys.executable).parent / "restrike"
    return str(exe) if exe.exists() else shutil.which("restrike") or "restrike"


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    import socket

    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
