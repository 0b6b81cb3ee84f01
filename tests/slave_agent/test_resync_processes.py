"""Resynchronisation between real processes: a court agent restarted mid-match, a sender started before it.

The score a court shows is what its heartbeat carries; the test reads it off the PUB socket,
as the master does.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest
import zmq

from restrike.ports import free_port
from restrike.sender import PullResponder
from shared.match_snapshot import MatchSnapshot
from shared.match_state import MatchState
from shared.pss.parser import parse_line
from shared.wire import TOPIC_HEARTBEAT, Heartbeat, decode
from tests.pipeline import Court, Proc, keys_for
from tests.resync_cases import Cut, cuts_after_points, resynced_view
from tests.support import wait_until


def shown_match(court: Court, expected: MatchState, timeout: float = 20.0) -> MatchSnapshot:
    """The court's match as its heartbeats show it, once it shows ``expected`` (or fail saying what it showed)."""
    want = resynced_view(expected)
    sub = zmq.Context.instance().socket(zmq.SUB)
    master, court_key = keys_for("master"), keys_for(court.node_id)  # CURVE: read it as the test master would
    sub.curve_publickey, sub.curve_secretkey = master.public.encode(), master.secret.encode()
    sub.curve_serverkey = court_key.public.encode()
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC_HEARTBEAT)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(f"tcp://127.0.0.1:{court.pub_port}")
    shown: MatchSnapshot | None = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sub.poll(200):
                continue
            message = decode(sub.recv_multipart()[-1])
            if isinstance(message, Heartbeat) and message.match is not None:
                shown = message.match
                if resynced_view(shown) == want:
                    return shown
    finally:
        sub.close()
    raise AssertionError(f"the court never showed the match: want {want}, last shown {shown and resynced_view(shown)}")


def stored(court: Court, resync: bool) -> int:
    """Rows the court stored as live traffic (``resync`` False) or as answers (True)."""
    conn = sqlite3.connect(f"file:{court.data_dir / 'restrike-slave.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM pss_events_v2 WHERE is_resync = ?", (int(resync),)).fetchone()[0])
    finally:
        conn.close()


def a_cut_before_a_clock_tick() -> Cut:
    """Mid-round (round 2 or later) of the second match, the next line a plain clock tick."""
    return next(
        cut for cut in cuts_after_points(5, "gen3")
        if cut.match_index() == 1 and cut.truth().round >= 2 and parse_line(cut.rest[0]).fields.get("action", 0) is None
        and cut.rest[0].startswith("clk;")
    )


@pytest.mark.slow
def test_a_court_restarted_mid_match_shows_the_score_from_the_answers_at_once(tmp_path: Path) -> None:
    cut = a_cut_before_a_clock_tick()
    tick = cut.rest[0]
    seen_before_crash = len(cut.sent) // 2  # the agent saw the first match and half of the second load
    with PullResponder("127.0.0.1", 0) as responder, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        court = Court(tmp_path / "court", "Court 5", options=("--resync-port", str(responder.port), "--no-obs"))
        try:
            court.start()

            def send(lines: list[str]) -> None:
                for line in lines:
                    payload = line.encode() + b"\r\n"
                    responder.sent(payload)  # state first, as scoring software: asked at once, it answers this line
                    sender.sendto(payload, ("127.0.0.1", court.udp_port))

            for start in range(0, seen_before_crash, 50):  # bursts the court takes in before the next
                end = min(start + 50, seen_before_crash)
                send(cut.sent[start:end])
                wait_until(lambda n=end: stored(court, False) >= n, 20, "the court storing")
            assert court.proc is not None
            court.proc.kill()  # a crash mid-match
            send(cut.sent[seen_before_crash:])  # scoring goes on; the court hears none of it
            court.start()
            assert responder.requests == 0  # the first run heard the sender start: nothing to ask
            send([tick])  # the first datagram after the restart: the agent asks the sender at once
            truth = MatchState()
            for line in [*cut.sent, tick]:
                truth.fold(parse_line(line))
            shown = shown_match(court, truth)
            assert shown.score.blue + shown.score.red > 0 and shown.round >= 2
            assert responder.requests == 1
            assert stored(court, True) >= 8  # the answers, flagged
            assert stored(court, False) == seen_before_crash + 1
            assert court.proc is not None
            proc = court.proc
            wait_until(lambda: "Resynchronised with the scoring software at 127.0.0.1" in proc.text(), 10, "the log line")
            assert proc.stop() == 0
            assert "Traceback" not in proc.text()
        finally:
            if court.proc is not None:
                court.proc.close()


@pytest.mark.slow
def test_a_court_started_after_the_sender_asks_the_configured_address_before_any_traffic(tmp_path: Path) -> None:
    cut = next(c for c in cuts_after_points(8, "gen2") if c.match_index() == 1 and c.truth().round >= 2)
    capture = tmp_path / "played.txt"
    capture.write_text("".join(f"{line}\n" for line in cut.sent), encoding="utf-8")
    court = Court(tmp_path / "court", "Court 6")
    listen = free_port()
    sender = Proc(
        ["pss", "send", str(capture), "--to", f"127.0.0.1:{court.udp_port}", "--speed", "max", "--crlf",
         "--listen-port", str(listen), "--hold", "--quiet"],
        tmp_path / "sender.log",
    )
    try:
        sender.start("holding")  # every line sent while no court listened
        court.options = ("--resync-port", str(listen), "--sender-host", "127.0.0.1", "--no-obs")
        court.start()
        shown_match(court, cut.truth())  # from the answers alone: the sender sends nothing more
        assert stored(court, False) == 0
        assert court.proc is not None and court.proc.stop() == 0
        assert sender.stop() == 0
        assert "to 1 pull requests" in sender.text()
    finally:
        sender.close()
        if court.proc is not None:
            court.proc.close()
