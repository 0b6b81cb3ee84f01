"""The SQLite store on its own: numbering, identity, match linking, flagged rows, busy and full."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from shared.pss.kinds import EventKind
from slave_agent.db.schema import MIGRATIONS
from slave_agent.db.store import DB_FILENAME, Datagram, EventFilter, EventStore, StoreBusy, connect

T0 = 1_753_700_000_000


def dg(text: str | bytes, at: int = T0) -> Datagram:
    return Datagram(at, text if isinstance(text, bytes) else text.encode(), "127.0.0.1:9999")


def test_seq_is_strictly_increasing_and_survives_reopen(tmp_path: Path) -> None:
    store = EventStore(tmp_path, node_id="court-a")
    first = store.write_batch([dg("clk;02:00"), dg("clk;01:59\r\nclk;01:58")])
    epoch = store.epoch
    store.close()
    store = EventStore(tmp_path)
    second = store.write_batch([dg("rnd;1")])
    assert [r.seq for r in first + second] == [1, 2, 3, 4]
    assert store.epoch == epoch and store.node_id == "court-a"
    store.close()


def test_a_new_database_file_is_a_new_epoch(tmp_path: Path) -> None:
    a = EventStore(tmp_path / "a", node_id="court-a")
    b = EventStore(tmp_path / "b", node_id="court-a")
    assert a.epoch != b.epoch
    a.close()
    b.close()


def test_rows_keep_everything_and_bad_input_is_flagged(store: EventStore) -> None:
    raw = b"pt1;3\xff\r\n"
    records = store.write_batch([dg(raw), dg("zz;1"), dg(b""), dg("pt2;2")])
    assert [r.valid for r in records] == [False, False, False, True]
    assert "invalid UTF-8" in (records[0].error or "")
    assert records[1].error == "unknown message code 'zz'"
    assert records[2].error == "empty datagram"
    stored = store.events()
    assert [r.raw_datagram for r in stored] == [raw, b"zz;1", b"", b"pt2;2"]
    assert stored[3].event_category == "TB" and stored[3].parsed["points"] == 2
    assert stored == records  # what is published equals what is stored


def test_events_link_to_their_match_and_learn_its_number(store: EventStore) -> None:
    load = ["pre;FightLoaded", "at1;A;A;CRO;at2;B;B;GER",
            "mch;245.A;Final;M -87kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;22;5;",
            "rdy;FightReady"]
    store.write_batch([dg(load[0])])  # the number arrives in a later batch
    store.write_batch([dg(x) for x in load[1:]])
    store.write_batch([dg("pre;FightLoaded"), dg("clk;02:00")])
    rows = store.events()
    assert [r.match_number for r in rows] == ["245.A"] * 4 + [None, None]
    assert len({r.match_uuid for r in rows[:4]}) == 1 and rows[4].match_uuid != rows[0].match_uuid


def test_locked_database_raises_busy_and_changes_nothing(store: EventStore) -> None:
    store.write_batch([dg("rnd;1")])
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusy, match="locked"):
            store.write_batch([dg("rnd;2")])
        assert store.last_seq == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.seq for r in store.write_batch([dg("rnd;2")])] == [2]


def test_full_database_raises_busy_then_recovers(store: EventStore) -> None:
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [dg("wmh;" + "x" * 4000 + ";2-1 PTF") for _ in range(50)]
    with pytest.raises(StoreBusy, match="full"):
        store.write_batch(big)
    assert store.count() == 0
    store.conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(store.write_batch(big)) == 50


def test_event_queries_filter_by_match_category_time_and_limit(store: EventStore) -> None:
    t = store.create_tournament("Open", start_date="2025-07-28")
    store.add_day(t, 1, "2025-07-28")
    store.activate_day(t, 1)
    store.write_batch([
        dg("pre;FightLoaded", T0),
        dg("mch;101;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;", T0),
        dg("pt1;3", T0 + 1000),
        dg("pt2;1", T0 + 2000),
        dg("wg1;0;wg2;1", T0 + 3000),
    ])
    assert [r.code for r in store.events(EventFilter(categories=("H", "P")))] == ["pt1", "pt2"]
    assert [r.code for r in store.events(EventFilter(categories=("R",)))] == ["wg1"]  # a warning is a referee matter
    assert [r.code for r in store.events(EventFilter(kinds=(EventKind.WARNING, EventKind.MATCH_SETUP)))] == [
        "pre", "mch", "wg1"]
    assert [r.code for r in store.events(EventFilter(since_ms=T0 + 1500, until_ms=T0 + 3000))] == ["pt2", "wg1"]
    assert len(store.events(EventFilter(match_number="101"))) == 5
    assert len(store.events(EventFilter(match_number="102"))) == 0
    assert len(store.events(EventFilter(tournament="Open", day="1", limit=2))) == 2
    assert all(r.tournament_uuid == t for r in store.events())
    with pytest.raises(LookupError):
        store.events(EventFilter(tournament="Nope"))


def test_old_categories_are_rewritten_and_the_seven_are_enforced(tmp_path: Path) -> None:
    """A database of schema 3 (the invented W C I B CLK RND WIN) opened by this agent."""
    path = tmp_path / "slave" / "restrike-slave.sqlite3"
    path.parent.mkdir()
    conn = connect(path)
    for number, (_, sql) in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"BEGIN; {sql}; PRAGMA user_version = {number}; COMMIT;")
    old = [("clk", "CLK"), ("wg1", "W"), ("ch1", "C"), ("ij0", "I"), ("brk", "B"), ("rnd", "RND"), ("win", "WIN"),
           ("wrd", "R"), ("pt1", "TH"), ("hl1", "K"), ("sc1", "O")]
    conn.executemany(
        "INSERT INTO pss_events_v2 (node_id, epoch, seq, received_ms, raw, raw_datagram, event_code, event_category, "
        "is_valid) VALUES ('n', 'e', ?, ?, ?, x'00', ?, ?, 1)",
        [(seq, seq, code, code, category) for seq, (code, category) in enumerate(old, start=1)],
    )
    conn.close()
    reopened = EventStore(tmp_path / "slave", node_id="n")
    try:
        rows = reopened.conn.execute("SELECT event_code, event_category FROM pss_events_v2 ORDER BY seq").fetchall()
        assert rows == [(code, "R") for code, _ in old[:8]] + [("pt1", "TH"), ("hl1", "K"), ("sc1", "O")]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            reopened.conn.execute("UPDATE pss_events_v2 SET event_category = 'CLK' WHERE seq = 1")
        assert len(reopened.write_batch([dg("clk;1:00;start", T0)])) == 1  # the rebuilt table takes new rows
        chapters_view = reopened.conn.execute("SELECT COUNT(*) FROM youtube_chapters").fetchone()
        assert chapters_view == (0,)
    finally:
        reopened.close()


def test_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    EventStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this agent"):
        EventStore(tmp_path)


def test_agent_restart_mid_match_keeps_the_match_row(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.write_batch([dg("pre;FightLoaded"), dg("at1;A;A;CRO;at2;B;B;GER"),
                       dg("mch;7;Final;M -87kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;22;5;"),
                       dg("rdy;FightReady"), dg("clk;02:00;start")])
    store.close()
    store = EventStore(tmp_path)  # restarted: the folded state is empty, the match row is not
    store.write_batch([dg("clk;01:59"), dg("win;RED"), dg("wmh;B;0-2 PTF")])
    row = store.conn.execute("SELECT match_number, phase, blue_name, red_noc, winner, decision, ready_ms, finished_ms FROM matches").fetchone()
    assert row == ("7", "Final", "A", "GER", "red", "PTF", T0, T0)
    assert {r.match_number for r in store.events()} == {"7"}
    store.close()


def test_a_new_node_id_starts_a_new_epoch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = EventStore(tmp_path, node_id="court-a")
    store.write_batch([dg("rnd;1")])
    old_epoch = store.epoch
    store.close()
    store = EventStore(tmp_path)  # no id configured: keeps its own
    assert (store.node_id, store.epoch) == ("court-a", old_epoch)
    store.close()
    store = EventStore(tmp_path, node_id="court-b")
    assert store.node_id == "court-b" and store.epoch != old_epoch
    assert [r.seq for r in store.write_batch([dg("rnd;2")])] == [1]  # the new life numbers from 1
    assert "new epoch" in caplog.text
    store.close()


def test_a_new_database_is_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="slave_agent.db.schema"):
        EventStore(tmp_path).close()
        EventStore(tmp_path).close()  # reopened: nothing to say
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        f"Court database created (schema version {len(MIGRATIONS)})"
    ]
