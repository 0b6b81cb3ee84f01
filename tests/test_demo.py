"""The README's first command runs the demo: it must come up, move events end to end, stop cleanly
however it is stopped (a duration, Ctrl-C, SIGTERM) with its verdict, and read well on an 80x24 terminal."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pyte
import pytest

from restrike.ports import free_port
from tests.support import restrike_exe, wait_until

VERDICT = re.compile(r"^(Court \d): sent (\d+), stored (\d+) at the court, (\d+) at the master$")


def _verdict(stderr: str, courts: int) -> dict[str, tuple[int, ...]]:
    """Each court's numbers from the demo's closing lines; all must agree, and say so."""
    counts = {m.group(1): tuple(int(n) for n in m.groups()[1:]) for line in stderr.splitlines() if (m := VERDICT.match(line))}
    assert len(counts) == courts, stderr[-2000:]
    for sent, stored, at_master in counts.values():
        assert sent > 20 and stored >= sent and stored == at_master, stderr[-2000:]  # a datagram is one event or more
    assert "Nothing lost" in stderr and "Traceback" not in stderr
    return counts


def test_demo_runs_a_venue_and_loses_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [restrike_exe(), "demo", "--duration", "6", "--speed", "60", "--courts", "2", "--plain", "-d", str(tmp_path / "demo"),
         "--http-port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    _verdict(result.stderr, 2)
    assert "Stopped:" not in result.stderr  # it ran its course
    assert "sign in as director, password " in result.stderr  # the web console, with a user made for the demo
    # Court 1's agent, restarted half-way, asked its simulated scoring software for the match.
    resync = re.search(r"resynchronised from (\d+) answers", result.stderr.replace("\n", " "))
    assert resync is not None and int(resync.group(1)) > 0, result.stderr[-2000:]
    assert (tmp_path / "demo" / "court1" / "restrike-slave.sqlite3").exists()
    assert (tmp_path / "demo" / "master" / "central.sqlite3").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_plain_demo_runs_until_stopped_then_drains_and_gives_its_verdict(tmp_path: Path, signum: int) -> None:
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        demo = subprocess.Popen([restrike_exe(), "demo", "--plain", "--speed", "60", "-d", str(tmp_path / "demo"),
                                 "--http-port", "0"],
                                stdout=stdout, stderr=stderr)
        try:
            wait_until(lambda: len(out.read_text().splitlines()) >= 2 or demo.poll() is not None, 60, "two progress lines")
            assert demo.poll() is None, err.read_text()  # no --duration: it keeps running
            demo.send_signal(signum)
            assert demo.wait(timeout=60) == 0, err.read_text()
        finally:
            if demo.poll() is None:
                demo.kill()
    progress = out.read_text().splitlines()
    assert all(len(line) <= 80 and "sent" in line and "at master" in line for line in progress), progress
    assert "Stopped: the senders are off" in err.read_text()
    _verdict(err.read_text(), 2)


class _Terminal:
    """A real pseudo-terminal of a given size, its output kept on an emulated screen."""

    def __init__(self, columns: int, lines: int):
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the other side closed
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)

    def lines(self) -> list[str]:
        with self.lock:
            return [line.rstrip() for line in self.screen.display]


@pytest.mark.slow
def test_live_view_fits_an_80x24_terminal(tmp_path: Path) -> None:
    term = _Terminal(80, 24)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm-256color"}
    demo = subprocess.Popen([restrike_exe(), "demo", "--courts", "8", "--speed", "60", "-d", str(tmp_path / "demo"),
                             "--http-port", "0"],
                            stdin=term.slave, stdout=term.slave, stderr=term.slave, env=env, close_fds=True)
    os.close(term.slave)
    term.reader.start()
    try:
        def all_courts_shown() -> bool:
            screen = term.lines()
            return sum(bool(re.match(rf"^Court {k} .* online$", line)) for line in screen for k in range(1, 9)) == 8
        wait_until(lambda: all_courts_shown() or demo.poll() is not None, 90, "8 courts online on the screen")
        time.sleep(1.0)  # a few more refreshes: the view must stay in place
        screen = term.lines()
        assert demo.poll() is None, "\n".join(screen)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        term.reader.join(timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
        os.close(term.master)
    shown = "\n".join(screen)
    assert screen[0].startswith("reStrike VTA demo · 8 simulated courts"), shown  # nothing scrolled off the top
    assert sum(line.startswith("reStrike VTA demo") for line in screen) == 1, shown
    headers = [line for line in screen if line.startswith("court ") and "at master" in line]
    assert len(headers) == 1, shown  # drawn once, in place
    assert "link" in headers[0] and "status" not in headers[0]  # the least important column went first
    for k in range(1, 9):  # one line per court, counts and link on it
        assert len([line for line in screen if re.match(rf"^Court {k} .*\d+ +\d+ +online$", line)]) == 1, shown
    assert any(line.startswith("court ") and line.rstrip().endswith("raw") for line in screen), shown  # events fill the rest
    closing = "\n".join(term.lines())
    assert "Nothing lost" in closing and "Traceback" not in closing, closing


def test_columns_go_least_important_first() -> None:
    from restrike.demo_view import COURT_COLUMNS, fit_columns, shorten

    headers = [column.header for column in COURT_COLUMNS]
    widths = [7, 6, 44, 7, 5, 5, 13, 8, 9, 7]
    kept = lambda total: [headers[i] for i in fit_columns(COURT_COLUMNS, widths, total)]  # noqa: E731
    assert kept(200) == headers
    assert kept(80) == ["court", "match", "blue – red", "score", "at court", "at master", "link"]
    assert kept(40) == ["court", "score", "at court", "at master", "link"]
    assert kept(10) == ["court"]
    assert shorten("CRO Fatima Zahra Alaoui – KOR Nguyễn Thị Hoa", 21) == "CRO Fati… – KOR Nguy…"
    assert shorten("short", 21) == "short"


def test_names_and_raw_lines_are_shown_as_text_never_as_markup() -> None:
    """A datagram or a name with brackets must show as it is, not style the view or stop it (a MarkupError)."""
    from rich.console import Console

    from restrike.demo_view import CourtRow, EventRow, render

    cells = ("Court 1", "101", "CRO [bold]A[/bold] – GER [/x]B", "1 (0-0)", "2:00", "0:0", "ready", "5", "5", "online")
    view = render("demo", [CourtRow(cells, True)], [EventRow("Court 1", 5, "[/oops]", "O", "zz9;[red]x[/red]")], 120, 24)
    console = Console(width=120, record=True, color_system=None)
    console.print(view)
    text = console.export_text()
    assert "CRO [bold]A[/bold] – GER [/x]B" in text
    assert "[/oops]" in text and "zz9;[red]x[/red]" in text


@pytest.mark.expect_error_logs
def test_a_failed_restart_of_court_1_is_in_the_verdict_not_swallowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging
    import socket

    from restrike.demo import Venue
    from tests.support import async_wait_until

    async def main() -> None:
        venue = Venue(tmp_path / "demo", courts=1, speed=10.0, seed=1, round_seconds=120)
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        taken.bind(("127.0.0.1", 0))
        try:
            await venue.async_start()
            venue.agents[0].config.udp.port = taken.getsockname()[1]  # the agent started again finds it taken
            venue.restart_later(0)
            await async_wait_until(lambda: venue._restart is not None and venue._restart.done(), 60, "the restart")
        finally:
            result = await venue.async_stop(drain_seconds=2)
            taken.close()
        assert result.restart_error is not None and "already in use" in result.restart_error
        assert result.resync_answers is None

    with caplog.at_level(logging.ERROR, logger="restrike.demo"):
        asyncio.run(main())
    assert any("could not be restarted" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
