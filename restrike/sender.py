"""Replay protocol lines as UDP datagrams, the way a court's scoring software sends them.

Used by ``restrike pss send`` to feed a slave agent without a court: the sample capture
with its original timing, or simulator output. Two file formats are understood, and
told apart by their first data line:

* plain: one protocol line per datagram, sent ``interval`` seconds apart;
* TSV, the sample capture's ``log_timestamp<TAB>V|R<TAB>line`` with ``#`` comments,
  sent with the original spacing.

The send loop sleeps to absolute deadlines from one monotonic start, so a long replay
does not drift however long each ``sendto`` takes. A :class:`PullResponder` answers pull
requests on a listen port as TkStrike Gen2 does, with the last packet of each kind sent.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from shared.pss.pull import LastPackets

__all__ = [
    "TSV_TIME_FORMAT",
    "PullResponder",
    "Replay",
    "SendResult",
    "open_udp",
    "parse_target",
    "read_replay",
    "send_replay",
    "tsv_line",
]

#: The sample capture's timestamp column, e.g. ``2025-07-28 15:50:26.965``.
TSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_TSV_ROW = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)\t[VR]\t(.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Replay:
    """Datagrams with their offsets in seconds from the first one."""

    format: Literal["plain", "tsv"]
    items: list[tuple[float, bytes]]

    @property
    def duration(self) -> float:
        """Offset of the last datagram: the length of one pass at speed 1."""
        return self.items[-1][0] if self.items else 0.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a replay did, for the summary line."""

    sent: int
    elapsed: float
    passes: int


def tsv_line(at: datetime, line: str) -> str:
    """One row of the sample capture's format (``V``: the line as sent)."""
    return f"{at.strftime(TSV_TIME_FORMAT)[:-3]}\tV\t{line}"


def read_replay(path: Path, *, interval: float = 0.0, max_gap: float | None = None) -> Replay:
    """Read a plain or TSV file; ``max_gap`` shortens idle stretches (hours between matches).

    Raises ``ValueError`` when a TSV row's timestamp cannot be read and ``OSError`` when
    the file cannot be.
    """
    rows = [row.rstrip(b"\r") for row in path.read_bytes().split(b"\n")]
    data = [row for row in rows if row.strip() and not row.startswith(b"#")]
    if data and _TSV_ROW.match(data[0]):
        replay = Replay("tsv", _read_tsv(data, path))
    else:
        # Plain files are sent verbatim: a '#' line is a datagram like any other.
        plain = [row for row in rows if row.strip()]
        replay = Replay("plain", [(i * interval, row) for i, row in enumerate(plain)])
    return replay if max_gap is None else Replay(replay.format, _cap_gaps(replay.items, max_gap))


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` to a host and a port; ``ValueError`` explains a bad one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as [{host}]:{port_text}")
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {port_text!r}")
    return host, int(port_text)


def open_udp(host: str, port: int) -> tuple[socket.socket, tuple[str, int] | tuple[str, int, int, int]]:
    """A UDP socket allowed to broadcast (TkStrike often sends to x.x.x.255) and its target.

    Raises ``OSError`` (``socket.gaierror``) when the host does not resolve.
    """
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    return sock, address  # type: ignore[return-value]


def send_replay(
    sock: socket.socket,
    address: tuple[str, int] | tuple[str, int, int, int],
    items: list[tuple[float, bytes]],
    *,
    speed: float | None = 1.0,
    loop: bool = False,
    suffix: bytes = b"",
    on_sent: Callable[[int, int], None] | None = None,
    responder: PullResponder | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Send ``items`` on schedule (``speed`` None = as fast as possible); ``loop`` repeats forever.

    ``on_sent(sent_in_pass, pass_number)`` runs after each datagram; ``responder`` learns each
    one, to answer pull requests with it. A KeyboardInterrupt
    stops the loop; the caller gets it after the socket has sent what it could.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    start = clock()
    sent = 0
    passes = 0
    pass_start = 0.0  # schedule time at which the current pass begins
    # One pass ends one average spacing after its last datagram, so loops keep the rhythm.
    spacing = items[-1][0] / (len(items) - 1) if len(items) > 1 else 0.0
    while items:
        passes += 1
        for index, (offset, payload) in enumerate(items, 1):
            if speed is not None:
                delay = start + (pass_start + offset) / speed - clock()
                if delay > 0:
                    sleep(delay)
            if responder is not None:  # its state first, as scoring software's: an answer is never older
                responder.sent(payload + suffix)
            sock.sendto(payload + suffix, address)
            sent += 1
            if on_sent is not None:
                on_sent(index, passes)
        if not loop:
            break
        pass_start += items[-1][0] + spacing
    return SendResult(sent, clock() - start, passes)


class PullResponder:
    """Answers pull requests on a listen port the way TkStrike Gen2 does.

    Each request word in a datagram gets, by unicast to the requester, the last packet of
    its kind that :meth:`sent` was told about (nothing if none went out yet). Runs on its own
    thread until :meth:`close`; a request that cannot be answered is counted, never fatal.
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 0):
        self.memory = LastPackets()
        self.requests = 0
        self.answers = 0
        self.errors = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="pull-responder", daemon=True)

    @property
    def port(self) -> int:
        """The listen port (useful when bound to port 0)."""
        port: int = self._sock.getsockname()[1]
        return port

    def start(self) -> PullResponder:
        self._thread.start()
        return self

    def sent(self, packet: bytes) -> None:
        """A packet went out to the receiver: remember it if a pull request can ask for its kind."""
        self.memory.sent(packet)

    def close(self) -> None:
        """Stop answering and release the socket (waits for the thread)."""
        if self._thread.is_alive():
            self._wake_write.send(b"x")
            self._thread.join(10)
        for sock in (self._sock, self._wake_read, self._wake_write):
            sock.close()

    def __enter__(self) -> PullResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            readable, _, _ = select.select([self._sock, self._wake_read], [], [])
            if self._wake_read in readable:
                return
            try:
                data, requester = self._sock.recvfrom(65535)
                self.requests += 1
                for answer in self.memory.answers(data):
                    self._sock.sendto(answer, requester)
                    self.answers += 1
            except OSError:  # e.g. the requester's port closed (ICMP): the next request is served
                self.errors += 1


def _read_tsv(data: list[bytes], path: Path) -> list[tuple[float, bytes]]:
    items: list[tuple[float, bytes]] = []
    first: datetime | None = None
    for number, row in enumerate(data, 1):
        match = _TSV_ROW.match(row)
        if match is None:
            raise ValueError(f"{path}: data row {number} is not 'timestamp<TAB>V|R<TAB>line'")
        try:
            stamp = datetime.fromisoformat(match.group(1).decode("ascii"))
        except ValueError:
            raise ValueError(f"{path}: data row {number} has a bad timestamp") from None
        first = first or stamp
        items.append(((stamp - first).total_seconds(), match.group(2)))
    return items


def _cap_gaps(items: list[tuple[float, bytes]], max_gap: float) -> list[tuple[float, bytes]]:
    capped: list[tuple[float, bytes]] = []
    shift = 0.0
    previous = None
    for offset, payload in items:
        if previous is not None and offset - previous > max_gap:
            shift += offset - previous - max_gap
        previous = offset
        capped.append((offset - shift, payload))
    return capped
