"""The slave's command-line surface, as an operator (or another tool) uses it: real processes."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from restrike.ports import free_port
from slave_agent.db.store import EventStore
from tests.support import SAMPLE_TSV, restrike_exe, wait_until


def _wait_for(path: Path, text: str, timeout: float = 15.0) -> None:
    wait_until(lambda: path.exists() and text in path.read_text(errors="replace"), timeout, f"{text!r} in {path}")


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
    subprocess.run([restrike_exe(), "keys", "init", "court", "--data-dir", str(data_dir)], check=True, capture_output=True)
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
            wait_until(lambda: len(_events(data_dir)) >= 2831, 20, "2831 events stored", interval=0.2)
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
    store.write_batch([Datagram(1_753_700_000_010, b"sc1;3;sc2;1", resync=True)])
    store.close()
    csv_out = subprocess.run(
        [restrike_exe(), "slave", "events", "-d", str(tmp_path), "--format", "csv", "--category", "H", "--category", "P"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    assert csv_out[0].startswith("seq,timestamp,event_code,event_category")
    assert [row.split(",")[2] for row in csv_out[1:]] == ["pt1", "pt2"]
    kinds = subprocess.run(
        [restrike_exe(), "slave", "events", "-d", str(tmp_path), "--format", "csv", "--kind", "hit_level"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    assert [row.split(",")[2] for row in kinds[1:]] == ["hl1"]
    wrong = subprocess.run([restrike_exe(), "slave", "events", "-d", str(tmp_path), "--category", "CLK"], check=False,
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "K P H TH TB R O" in wrong.stderr
    table = subprocess.run([restrike_exe(), "slave", "events", "-d", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "'bad'" in table.stdout and "5 event(s)" in table.stderr
    assert "(resync)" in table.stdout  # the answer to a pull request, marked
    answers = subprocess.run(
        [restrike_exe(), "slave", "events", "-d", str(tmp_path), "--format", "csv"], check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    assert answers[0].split(",")[5] == "resync"
    assert [row.split(",")[5] for row in answers[1:]] == ["False"] * 4 + ["True"]
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
    from slave_agent.db.store import EventStore

    EventStore(tmp_path).close()  # as the agent's first start leaves it
    run = lambda *args: subprocess.run([restrike_exe(), "slave", *args, "-d", str(tmp_path)], capture_output=True, text=True)  # noqa: E731
    created = run("tournament", "create", "Croatia Open", "--days", "2", "--start-date", "2025-07-27")
    assert created.returncode == 0, created.stderr
    assert "day 1 active" in created.stderr
    assert run("tournament", "activate", "Croatia Open", "2").returncode == 0
    listing = run("tournament", "list").stdout
    assert "Croatia Open" in listing and "2025-07-28" in listing
    none = run("chapters", "--day", "2")
    assert none.returncode == 1 and "at least" in none.stderr.lower()


READING = [["events"], ["events", "--format", "json"], ["tournament", "list"], ["chapters", "--day", "1"], ["session", "list"]]
WRITING = [["tournament", "create", "Open"], ["tournament", "activate", "Open", "1"], ["session", "start", "stream"]]


@pytest.mark.parametrize("command", READING + WRITING, ids=lambda c: " ".join(c))
def test_tools_never_create_a_database(tmp_path: Path, command: list[str]) -> None:
    """Only `slave run` creates a database: a wrong folder is an error naming it and the default."""
    wrong = tmp_path / "WRONG"
    result = subprocess.run([restrike_exe(), "slave", *command, "--data-dir", str(wrong)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"no court database in {wrong}" in result.stderr
    assert "default folder: data/slave" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a file


def test_tools_never_change_the_node_id(tmp_path: Path) -> None:
    """A settings file with another node id must not start a new epoch from a reading command."""
    from slave_agent.db.store import EventStore

    store = EventStore(tmp_path / "court", node_id="court-a")
    epoch = store.epoch
    store.close()
    cfg = tmp_path / "slave.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "court"}"\n[node]\nnode_id = "court-b"\n')
    assert subprocess.run([restrike_exe(), "slave", "events", "-c", str(cfg)], capture_output=True).returncode == 0
    store = EventStore(tmp_path / "court")
    assert (store.node_id, store.epoch) == ("court-a", epoch)
    store.close()


@pytest.mark.parametrize(
    ("data_dir", "expected"),
    [("afile/sub", "cannot create the data folder afile/sub: Not a directory"),
     ("notdb", "cannot open the court database notdb/restrike-slave.sqlite3: file is not a database")],
    ids=["folder-under-a-file", "not-a-database"],
)
def test_an_unusable_data_folder_is_one_line(tmp_path: Path, data_dir: str, expected: str) -> None:
    (tmp_path / "afile").write_text("")
    (tmp_path / "notdb").mkdir()
    (tmp_path / "notdb" / "restrike-slave.sqlite3").write_text("not a database")
    result = subprocess.run(
        [restrike_exe(), "slave", "run", "-d", data_dir, "--udp-port", str(free_port()), "--pub-port", str(free_port()),
         "--router-port", str(free_port()), "--no-mdns"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"Error: {expected}"


def test_a_settings_file_that_does_not_parse_names_file_line_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[udp]\nport = 6000\n[node\ncourt = "x"\n')
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('court = "x"\n\n[udp]\nport = "six thousand"\n')
    for path, parts in ((broken, [f"{broken}: not valid TOML", "line 3"]),
                        (wrong, [f"{wrong}: line 1: court: Extra inputs", "line 4: udp.port: Input should be a valid integer"])):
        result = subprocess.run([restrike_exe(), "slave", "run", "-c", str(path)], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith("Configuration error: ") and len(result.stderr.strip().splitlines()) == 1
        for part in parts:
            assert part in result.stderr
        assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = subprocess.run([restrike_exe(), "slave", "events", "-d", str(tmp_path / "x"), "--debug"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "no court database" in result.stderr


def test_replay_against_a_page_that_is_not_an_agent_says_what_answered() -> None:
    """A server answered with an HTTP error: not 'nobody answered', which sends the operator looking elsewhere."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)  # no POST: 501
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = subprocess.run([restrike_exe(), "slave", "replay", "--url", url], capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert result.returncode == 2, result.stderr
    assert f"{url} answered HTTP 501" in result.stderr and "No court agent answered" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2


def test_ivr_list_prints_obs_reasons_as_they_are(store: EventStore) -> None:
    """A reason from OBS (or a clip name) with square brackets is text, not Rich markup."""
    from typer.testing import CliRunner

    from slave_agent.cli import app
    from slave_agent.db.ivr import save_log
    from slave_agent.obs.triggers import Step, StepOutcome, Trigger, TriggerKind, TriggerLog

    trigger = Trigger(TriggerKind.REPLAY, "operator", 1_700_000_000_000, match_number="101")
    steps = [Step("save_clip", StepOutcome.FAILED, 12, 12, "OBS said [red]no[/] [bold]buffer")]
    save_log(store.conn, TriggerLog("u-1", trigger, 1_700_000_000_050, steps), None)
    result = CliRunner().invoke(app, ["ivr", "list", "--data-dir", str(store.path.parent)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "save_clip: OBS said [red]no[/] [bold]buffer" in result.output
