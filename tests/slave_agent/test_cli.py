"""The slave's command-line surface, as an operator (or another tool) uses it: real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.support import SAMPLE_TSV, free_port, restrike_exe


def _wait_for(path: Path, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{path.read_text(errors='replace') if path.exists() else ''}")


def _events(data_dir: Path) -> list[dict]:
    out = subprocess.run(
        [restrike_exe(), "slave", "events", "--data-dir", str(data_dir), "--format", "json"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_run_send_stop_and_list_events(tmp_path: Path) -> None:
    data_dir = tmp_path / "court"
    port = free_port()
    log = tmp_path / "slave.log"
    with log.open("w") as log_file:
        agent = subprocess.Popen(
            [restrike_exe(), "slave", "run", "--data-dir", str(data_dir), "--udp-port", str(port),
             "--udp-host", "127.0.0.1", "--pub-port", str(free_port()), "--router-port", str(free_port()), "--no-mdns"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(log, "ready;")
            sent = subprocess.run(
                [restrike_exe(), "pss", "send", str(SAMPLE_TSV), "--to", f"127.0.0.1:{port}", "--speed", "max"],
                check=True, capture_output=True, text=True, timeout=60,
            )
            assert "2831" in sent.stdout + sent.stderr
            deadline = time.monotonic() + 20
            while len(_events(data_dir)) < 2831 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=20) == 0
    assert "Stopped: 2831 datagrams received, 2831 events stored, 0 dropped" in log.read_text()
    events = _events(data_dir)
    assert len(events) == 2831
    required = {"seq", "timestamp", "raw", "code", "event_category", "valid", "match_number"}
    assert required <= events[0].keys()
    assert [e["seq"] for e in events] == list(range(1, 2832))
    assert all(e["valid"] for e in events)
    assert {e["match_number"] for e in events if e["code"] == "wmh"} >= {"1945"}


def test_events_table_and_csv_and_filters(tmp_path: Path) -> None:
    from slave_agent.db.store import Datagram, EventStore

    store = EventStore(tmp_path)
    store.write_batch([Datagram(1_753_700_000_000 + i, line.encode()) for i, line in enumerate(["pt1;3", "pt2;1", "hl1;99", "bad;;"])])
    store.close()
    csv_out = subprocess.run(
        [restrike_exe(), "slave", "events", "-d", str(tmp_path), "--format", "csv", "--category", "H", "--category", "P"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    assert csv_out[0].startswith("seq,timestamp,event_code,event_category")
    assert [row.split(",")[2] for row in csv_out[1:]] == ["pt1", "pt2"]
    table = subprocess.run([restrike_exe(), "slave", "events", "-d", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "'bad'" in table.stdout and "4 event(s)" in table.stderr
    bad = subprocess.run([restrike_exe(), "slave", "events", "-d", str(tmp_path), "--tournament", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no tournament" in bad.stderr


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "slave.toml"
    cfg.write_text("[udp]\nport = 70000\nprot = 1\n")
    result = subprocess.run([restrike_exe(), "slave", "validate-config", str(cfg)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "udp.port" in result.stderr and "udp.prot" in result.stderr
    assert "Traceback" not in result.stderr


def test_tournament_day_context_and_chapters_cli(tmp_path: Path) -> None:
    run = lambda *args: subprocess.run([restrike_exe(), "slave", *args, "-d", str(tmp_path)], capture_output=True, text=True)  # noqa: E731
    created = run("tournament", "create", "Croatia Open", "--days", "2", "--start-date", "2025-07-27")
    assert created.returncode == 0, created.stderr
    assert "day 1 active" in created.stderr
    assert run("tournament", "activate", "Croatia Open", "2").returncode == 0
    listing = run("tournament", "list").stdout
    assert "Croatia Open" in listing and "2025-07-28" in listing
    none = run("chapters", "--day", "2")
    assert none.returncode == 1 and "at least" in none.stderr.lower()
