"""``restrike pss`` end to end: the console script, real stdin/stdout and real UDP sockets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from restrike import pss_cli, sender
from restrike.ports import free_port
from shared.pss.parser import parse_line

SAMPLE = Path(__file__).resolve().parent / "data" / "reconstructed_pss_stream_20250720-20250809.tsv"
_BESIDE = Path(sys.executable).with_name("restrike")
RESTRIKE = str(_BESIDE) if _BESIDE.exists() else shutil.which("restrike")
# Wide enough that rich's error box does not wrap the messages asserted on.
ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
KEYS = ["raw", "code", "category", "valid", "error", "fields"]


def run(*args: str, stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    assert RESTRIKE, "the restrike console script is not installed"
    return subprocess.run([RESTRIKE, "pss", *args], input=stdin, capture_output=True, timeout=timeout, env=ENV)


def invoke(*args: str) -> Result:
    """In-process, for the error and help paths (each console-script start costs a second)."""
    return CliRunner().invoke(pss_cli.app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        yield sock
    finally:
        sock.close()


def receive(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65536) for _ in range(count)]


def target(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"{host}:{port}"


# --- parse ---------------------------------------------------------------------------------


def test_parse_stdin_to_json_lines() -> None:
    stdin = "pt1;3\nsc1; 3;sc2; 4\r\n\nwmh;Marko Drakulić;2-1 PTF\n".encode() + b"\xff\xfe;garbage\n" + b"zzz;1"
    result = run("parse", stdin=stdin)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [list(row) for row in rows] == [KEYS] * 5
    assert [row["code"] for row in rows] == ["pt1", "sc1", "wmh", "\\xff\\xfe", "zzz"]
    assert [row["valid"] for row in rows] == [True, True, True, False, False]
    assert rows[0]["fields"] == {"athlete": "blue", "points": 3, "technique": "head"}
    assert rows[0]["category"] == "H"
    assert rows[1]["fields"] == {"blue_score": 3, "red_score": 4}
    assert rows[2]["fields"]["winner_name"] == "Marko Drakulić"
    assert "Drakulić" in result.stdout.decode("utf-8")  # ensure_ascii=False
    assert rows[3]["raw"] == "\\xff\\xfe;garbage"
    assert "invalid UTF-8" in rows[3]["error"]


def test_parse_survives_binary_garbage() -> None:
    garbage = bytes(range(256)) * 8 + b"\x00\n\r\n\xc3(\n" + b"A" * 10000 + b"\n"
    result = run("parse", stdin=garbage)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert rows and all(isinstance(row["raw"], str) for row in rows)
    assert any("oversized" in (row["error"] or "") for row in rows)
    assert not any(row["valid"] for row in rows)


# --- simulate ------------------------------------------------------------------------------


def test_simulate_output_parses_and_is_deterministic() -> None:
    args = ("simulate", "--seed", "4", "--matches", "2", "--round-seconds", "20", "--break-seconds", "5")
    first, second = run(*args), run(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    lines = first.stdout.decode("utf-8").splitlines()
    assert lines[0] == "Udp Port 8888 connected;"
    assert sum(line == "pre;FightLoaded" for line in lines) >= 2
    assert sum(line.startswith("wmh;") for line in lines) == 2
    events = [parse_line(line) for line in lines]
    assert all(e.valid for e in events), [e.raw for e in events if not e.valid]


def test_simulate_tsv_to_file_round_trips_through_the_reader(tmp_path: Path) -> None:
    out = tmp_path / "sim.tsv"
    result = run("simulate", "--seed", "2", "--round-seconds", "20", "--break-seconds", "5", "--sender", "gen2",
                 "--tsv", "--start", "2025-07-28 15:00:00", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("# SIMULATED")
    assert rows[2] == "2025-07-28 15:00:00.000\tV\tUdp Port 8888 connected;"
    replay = sender.read_replay(out)
    assert replay.format == "tsv"
    assert len(replay.items) == len(rows) - 2
    assert replay.duration > 60  # two or three 20 s rounds with breaks


def test_simulate_rejects_unknown_sender() -> None:
    result = invoke("simulate", "--sender", "gen9")
    assert result.exit_code == 2
    assert "gen9" in result.output


# --- send ----------------------------------------------------------------------------------


def test_send_plain_file_delivers_every_datagram_in_order(tmp_path: Path, receiver: socket.socket) -> None:
    simulated = run("simulate", "--seed", "8", "--round-seconds", "20", "--break-seconds", "5")
    path = tmp_path / "match.txt"
    path.write_bytes(simulated.stdout)
    expected = simulated.stdout.splitlines()
    with subprocess.Popen(
        [RESTRIKE, "pss", "send", str(path), "--to", target(receiver), "--speed", "max"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    ) as process:
        got = receive(receiver, len(expected))
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert got == expected
    assert f"sent {len(expected)} datagrams".encode() in stdout


def test_send_tsv_keeps_timing_scaled_by_speed(tmp_path: Path, receiver: socket.socket) -> None:
    path = tmp_path / "capture.tsv"
    path.write_text(
        "# a comment\n"
        "2025-07-28 15:47:15.657\tR\thl2;99\n"
        "2025-07-28 15:47:15.710\tR\tpt2;2\n"
        "2025-07-28 15:47:16.057\tV\tsc1;0;sc2;2\n"
        "2025-07-28 15:47:16.457\tV\tat1;Marko Drakulić;Marko Drakulić;CRO;at2;Ana Šarić;Ana Šarić;CRO\n",
        encoding="utf-8",
    )
    result = run("send", str(path), "--to", target(receiver), "--speed", "2", "--crlf", "-q")
    assert result.returncode == 0, result.stderr
    got = receive(receiver, 4)
    assert got[0] == b"hl2;99\r\n"
    assert got[3] == "at1;Marko Drakulić;Marko Drakulić;CRO;at2;Ana Šarić;Ana Šarić;CRO\r\n".encode()
    elapsed = float(result.stdout.split(b" in ")[-1].split()[0])
    assert 0.38 <= elapsed < 3.0  # 0.8 s of capture at speed 2
    assert b"(tsv, 1 pass)" in result.stdout


def test_send_loop_repeats_until_interrupted(tmp_path: Path, receiver: socket.socket) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"clk;02:00;start\nclk;01:59\nclk;01:58\n")
    with subprocess.Popen(
        [RESTRIKE, "pss", "send", str(path), "--to", target(receiver), "--interval", "20", "--loop", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    ) as process:
        got = receive(receiver, 7)  # more than two passes: the loop is running
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    assert got[:6] == [b"clk;02:00;start", b"clk;01:59", b"clk;01:58"] * 2
    assert process.returncode == 130
    assert b"interrupted" in stdout
    assert b"Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "localhost"], "HOST:PORT"),
        (["--to", "127.0.0.1:99999"], "65535"),
        (["--to", "::1:8888"], "brackets"),
        (["--to", "127.0.0.1:8888", "--speed", "fast"], "'max'"),
        (["--to", "127.0.0.1:8888", "--speed", "0"], "greater than 0"),
        (["--to", "no-such-host.invalid:8888"], "cannot send"),
        (["--to", "127.0.0.1:8888", "--hold"], "give --listen-port too"),
    ],
)
def test_send_reports_bad_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_bytes(b"pt1;3\n")
    result = invoke("send", str(path), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_send_answers_pull_requests_with_what_it_sent(tmp_path: Path, receiver: socket.socket) -> None:
    path = tmp_path / "played.txt"
    path.write_bytes(b"pre;FightLoaded\nsc1;0;sc2;0\nclk;02:00\nsc1;3;sc2;1\npt1;3\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))  # a listen port already in use: a clear error
        busy = invoke("send", str(path), "--to", f"127.0.0.1:{receiver.getsockname()[1]}",
                      "--listen-port", str(taken.getsockname()[1]))
        assert busy.exit_code == 2 and "cannot listen on UDP" in busy.output
    listen = free_port()
    sender = subprocess.Popen(
        [RESTRIKE, "pss", "send", str(path), "--to", f"127.0.0.1:{receiver.getsockname()[1]}", "--crlf", "-q",
         "--listen-port", str(listen), "--hold"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )
    try:
        got = [receiver.recv(100) for _ in range(5)]
        assert got[-1] == b"pt1;3\r\n"
        assert sender.stderr is not None
        while b"holding" not in (line := sender.stderr.readline()):  # all sent: it holds, answering
            assert line, "the sender ended instead of holding"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
            agent.settimeout(10)
            agent.sendto(b"scores\r\nclock\r\nathletes", ("127.0.0.1", listen))
            assert [agent.recv(100), agent.recv(100)] == [b"sc1;3;sc2;1\r\n", b"clk;02:00\r\n"]  # no athletes sent
        sender.send_signal(signal.SIGTERM)
        out, err = sender.communicate(timeout=30)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(10)
    assert sender.returncode == 0, (out, err)
    assert b"answered 2 packets to 1 pull requests" in err  # (stderr read from after "holding")
    assert b"sent 5 datagrams" in out


def test_send_missing_file(tmp_path: Path) -> None:
    result = run("send", str(tmp_path / "absent.txt"), "--to", "127.0.0.1:8888")
    assert result.returncode == 2
    assert b"does not exist" in result.stderr
    assert b"Traceback" not in result.stderr


def test_help_texts() -> None:
    for command, option in (("parse", "--help"), ("simulate", "--round-seconds"), ("send", "--speed")):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Usage" in result.output and option in result.output
    assert "parse" in invoke("--help").output


# --- the sender module ---------------------------------------------------------------------


def test_read_sample_capture_and_cap_gaps() -> None:
    replay = sender.read_replay(SAMPLE)
    assert replay.format == "tsv"
    assert len(replay.items) == 2831
    assert replay.items[0] == (0.0, b"Udp Port 8888 connected;")
    assert replay.duration > 7 * 86400  # 2025-07-20 19:16 to 2025-07-28 16:26
    capped = sender.read_replay(SAMPLE, max_gap=5.0)
    gaps = [b[0] - a[0] for a, b in zip(capped.items, capped.items[1:], strict=False)]
    assert max(gaps) <= 5.0 + 1e-9
    assert [p for _, p in capped.items] == [p for _, p in replay.items]


def test_plain_file_is_sent_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_bytes(b"pt1;3\r\n# not a comment here\n\n\xff\xfe\n")
    replay = sender.read_replay(path, interval=0.5)
    assert replay.format == "plain"
    assert replay.items == [(0.0, b"pt1;3"), (0.5, b"# not a comment here"), (1.0, b"\xff\xfe")]


def test_schedule_does_not_drift() -> None:
    """Each send takes 0.3 s of 'time'; deadlines stay on the 1 s grid anyway."""
    now = [100.0]
    sent_at: list[float] = []

    class SlowSocket:
        def sendto(self, data: bytes, address: object) -> int:
            sent_at.append(now[0])
            now[0] += 0.3
            return len(data)

    def sleep(seconds: float) -> None:
        assert seconds > 0
        now[0] += seconds

    items = [(float(i), b"clk") for i in range(5)]
    result = sender.send_replay(
        SlowSocket(),  # type: ignore[arg-type]
        ("127.0.0.1", 9),
        items,
        speed=2.0,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert sent_at == pytest.approx([100.0, 100.5, 101.0, 101.5, 102.0])
    assert result.sent == 5 and result.passes == 1
    assert result.elapsed == pytest.approx(2.3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8888", ("127.0.0.1", 8888)), ("[::1]:6000", ("::1", 6000)), ("court-3.local:1", ("court-3.local", 1))],
)
def test_parse_target(text: str, expected: tuple[str, int]) -> None:
    assert sender.parse_target(text) == expected
