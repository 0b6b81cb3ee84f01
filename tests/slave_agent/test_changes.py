"""Row revisions in the court's SQLite: every change of a replicated column gets the next
revision, whoever writes it; what is part of an insert does not; reading them back is
ordered, paged without skipping, and covers every column the master keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.changes import EventChange, MatchRecord, SessionRecord
from shared.stream_time import SessionType
from slave_agent.db.changes import last_rev, read_changes
from slave_agent.db.ivr import link_clip
from slave_agent.db.schema import MIGRATIONS
from slave_agent.db.sessions import SessionBook
from slave_agent.db.store import Datagram, DayContext, EventStore, connect
from slave_agent.obs.triggers import ClipSpan

T0 = 1_753_700_000_000
S = 1000
MCH = "mch;101;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;"
AT1 = "at1;Perica;Perica;CRO;at2;Stevica;Stevica;GER"

#: Columns that stay on the court on purpose (local keys, bookkeeping); every other one travels.
LOCAL_ONLY = {
    "pss_events_v2": {"id", "source_addr", "tournament_id", "tournament_day_id", "match_id"},
    "matches": {"id", "tournament_id", "tournament_day_id"},
    "obs_sessions": {"id", "tournament_day_id", "last_alive_ms", "created_at"},
}


def dg(line: str, at: int) -> Datagram:
    return Datagram(at, line.encode())


def open_day(store: EventStore) -> DayContext:
    t = store.create_tournament("Open")
    store.add_day(t, 1, "2025-07-28")
    return store.activate_day(t, 1)


def changes(store: EventStore, after: int = 0) -> list[EventChange | MatchRecord | SessionRecord]:
    return read_changes(store.conn, after, 10_000).changes


def test_every_column_the_master_keeps_is_in_a_record() -> None:
    """A column added to these tables without a place in the records (or LOCAL_ONLY) fails here."""
    conn = sqlite3.connect(":memory:")
    for _, sql in MIGRATIONS:
        conn.executescript(sql)
    shapes = {
        "pss_events_v2": {*EventChange.model_fields, "raw", "raw_datagram", "received_ms", "event_code", "is_resync",
                          "event_category", "parsed_data", "is_valid", "error_message", "processing_us"},
        "matches": {*MatchRecord.model_fields, "uuid"},
        "obs_sessions": set(SessionRecord.model_fields),
    }
    for table, fields in shapes.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        assert columns - LOCAL_ONLY[table] <= fields, f"{table}: {columns - LOCAL_ONLY[table] - fields} not replicated"


def test_what_belongs_to_an_insert_is_no_change_and_what_changes_later_is(store: EventStore) -> None:
    day = open_day(store)
    book = SessionBook(store.conn)
    book.start(day.day_id, SessionType.STREAM, T0)  # a new session row: one revision
    assert [c.kind for c in changes(store)] == ["session"]
    first = last_rev(store.conn)
    stamped = store.write_batch([dg("clk;01:00", T0 + 5 * S)])  # stamped by the insert trigger: no change
    assert stamped[0].str_timestamp == "00:00:05" and stamped[0].rev == 0
    assert changes(store, first) == []
    book.keep_alive(T0 + 6 * S)  # bookkeeping the master does not keep: no change
    assert changes(store, first) == []

    restamped = book.correct_offset(day.day_id, SessionType.STREAM, 1, -4.0)
    assert restamped == 1
    after_correction = changes(store, first)
    assert [c.kind for c in after_correction] == ["session", "event"]  # one row each, in their newest state
    session, event = after_correction
    assert isinstance(session, SessionRecord) and (session.time_offset_seconds, session.cumulative_offset_seconds) == (
        -4.0, -4.0)
    assert isinstance(event, EventChange) and event.str_timestamp == "00:00:01"
    newest = last_rev(store.conn)
    assert event.rev == newest
    book.correct_offset(day.day_id, SessionType.STREAM, 1, -4.0)  # the same value again changes nothing
    assert last_rev(store.conn) == newest


def test_naming_a_match_is_a_change_of_the_rows_published_before(store: EventStore) -> None:
    loaded = store.write_batch([dg("pre;FightLoaded", T0), dg(AT1, T0 + 1)])
    assert [r.match_number for r in loaded] == [None, None]
    before = last_rev(store.conn)
    named = store.write_batch([dg(MCH, T0 + 2)])
    assert (named[0].match_number, named[0].rev) == ("101", 0)  # stored with its number: no change
    found = changes(store, before)
    events = sorted((c.seq, c.match_number) for c in found if isinstance(c, EventChange))
    assert events == [(1, "101"), (2, "101")]
    (match,) = [c for c in found if isinstance(c, MatchRecord)]
    assert (match.match_number, match.blue_name, match.red_noc, match.status) == ("101", "Perica", "GER", "loaded")


def test_a_replay_clip_linked_by_the_obs_trigger_is_a_change(store: EventStore) -> None:
    day = open_day(store)
    SessionBook(store.conn).start(day.day_id, SessionType.RECORDING, T0 + 100 * S)
    store.write_batch([dg("pt1;3", T0 + 95 * S), dg("ch1", T0 + 110 * S), dg("clk;00:30", T0 + 130 * S)])
    before = last_rev(store.conn)
    assert link_clip(store.conn, ClipSpan(T0 + 100 * S, T0 + 120 * S), "/videos/IVR recordings/101_ch1.mkv") == 1
    (change,) = changes(store, before)
    assert isinstance(change, EventChange) and change.seq == 2
    assert (change.ivr_link, change.rec_timestamp) == ("/videos/IVR recordings/101_ch1.mkv", "00:00:10")


def test_pages_end_at_a_revision_and_skip_nothing(store: EventStore) -> None:
    day = open_day(store)
    book = SessionBook(store.conn)
    for n in range(5):
        store.write_batch([dg("pre;FightLoaded", T0 + n * 100 * S), dg(MCH.replace("101", f"{n}"), T0 + n * 100 * S + 1)])
        book.start(day.day_id, SessionType.STREAM, T0 + n * 100 * S + 2)
    everything = changes(store)
    revs = [c.rev for c in everything]
    assert revs == sorted(set(revs)) and revs[-1] == last_rev(store.conn)
    paged, after = [], 0
    while True:
        page = read_changes(store.conn, after, 3)
        paged += page.changes
        if page.complete:
            break
        after = page.changes[-1].rev
    assert paged == everything
    assert {c.kind for c in everything} == {"event", "match", "session"}


def test_rows_stored_before_revisions_get_one_each(tmp_path: Path) -> None:
    """A schema-6 database: the master may hold stale copies, so everything is offered once."""
    path = tmp_path / "slave" / "restrike-slave.sqlite3"
    path.parent.mkdir()
    conn = connect(path)
    for number, (_, sql) in enumerate(MIGRATIONS[:6], start=1):
        conn.executescript(f"BEGIN; {sql}; PRAGMA user_version = {number}; COMMIT;")
    conn.executescript("""
        INSERT INTO tournaments (id, uuid, name) VALUES (1, 't', 'Open');
        INSERT INTO tournament_days (id, uuid, tournament_id, day_number, date) VALUES (1, 'd', 1, 1, '2025-07-28');
        INSERT INTO matches (id, uuid, tournament_day_id, match_number, loaded_ms) VALUES (1, 'm', 1, '7', 0);
        INSERT INTO obs_sessions (id, tournament_day_id, session_type, session_number, start_ms) VALUES (1, 1, 'stream', 1, 0);
        INSERT INTO pss_events_v2 (node_id, epoch, seq, received_ms, raw, raw_datagram, event_code, event_category,
            is_valid, match_id, match_number) VALUES ('n', 'e', 1, 5, 'pt1;3', x'00', 'pt1', 'H', 1, 1, '7');
        INSERT INTO pss_events_v2 (node_id, epoch, seq, received_ms, raw, raw_datagram, event_code, event_category,
            is_valid) VALUES ('n', 'e', 2, 6, 'hel', x'00', 'hel', 'O', 1);
    """)
    conn.close()
    store = EventStore(tmp_path / "slave", node_id="n")
    try:
        found = changes(store)
        assert [(c.kind, c.rev) for c in found] == [("event", 1), ("match", 3), ("session", 4)]
        assert last_rev(store.conn) == 4
        store.conn.execute("UPDATE matches SET winner = 'blue'")
        assert last_rev(store.conn) == 5
    finally:
        store.close()
