"""The central store against real PostgreSQL and SQLite: schema, exactly-once storage,
recovery from a dropped connection, and the bookkeeping tables."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from master.db import (
    Base,
    CentralStore,
    CentralStoreError,
    CentralStoreUnavailable,
    current_revision,
    default_sqlite_url,
    head_revision,
    upgrade,
)
from shared.changes import EventChange, MatchRecord, SessionRecord
from shared.pss.parser import parse_line
from shared.records import EventRecord

_LINES = ("pt1;3", "pt2;1", "hl1;50", "wg1;1;wg2;0", "clk;1:23;start", "ch1", "zz9;bogus")


def records(node_id: str, epoch: str, seqs: range, **overrides: Any) -> list[EventRecord]:
    """Realistic events, as a slave would have stored them."""
    result = []
    for seq in seqs:
        line = _LINES[seq % len(_LINES)]
        event = parse_line(line)
        fields: dict[str, Any] = {
            "node_id": node_id,
            "epoch": epoch,
            "seq": seq,
            "received_ms": 1_754_000_000_000 + seq * 37,
            "raw": line,
            "raw_datagram": line.encode() + b"\r\n",
            "code": event.code,
            "event_category": event.category.value,
            "parsed": event.fields,
            "valid": event.valid,
            "error": event.error,
            "resync": seq % 11 == 0,  # an answer to a pull request now and then
            "processing_us": seq % 900,
            "tournament_uuid": "6f1c2a1e-0000-4000-8000-000000000001",
            "tournament_day_uuid": "6f1c2a1e-0000-4000-8000-000000000002",
            "match_uuid": None if seq % 5 == 0 else "6f1c2a1e-0000-4000-8000-000000000003",
            "match_number": str(101 + seq // 100),
            "rec_timestamp": "00:01:02" if seq % 3 == 0 else None,
        }
        fields.update(overrides)
        result.append(EventRecord(**fields))
    return result


# --- schema -----------------------------------------------------------------------------


def test_upgrade_creates_the_schema_the_models_describe(central_url: str) -> None:
    assert current_revision(central_url) is None
    upgrade(central_url)
    upgrade(central_url)  # idempotent, as the master runs it at every start
    assert current_revision(central_url) == head_revision() == "0011"

    engine = create_engine(central_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_old_categories_are_rewritten_to_the_seven_and_others_refused(central_url: str) -> None:
    """Rows stored before the plan's categories become R (referee) or O; the CHECK then holds."""
    upgrade(central_url, "0002")
    old = {1: ("clk", "CLK"), 2: ("wg1", "W"), 3: ("ch1", "C"), 4: ("ij0", "I"), 5: ("brk", "B"),
           6: ("rnd", "RND"), 7: ("wmh", "WIN"), 8: ("wrd", "R"), 9: ("pt1", "H"), 10: ("hl1", "K"),
           11: ("zzz", "Q")}
    engine = create_engine(central_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for seq, (code, category) in old.items():
                connection.execute(text(
                    "INSERT INTO central_pss_events (node_id, epoch, seq, received_ms, raw, raw_datagram, code, "
                    "event_category, parsed, valid, processing_us) VALUES ('c', 'e', :seq, 0, :code, :raw, :code, "
                    ":category, '{}', true, 0)"), {"seq": seq, "code": code, "raw": code.encode(), "category": category})
        upgrade(central_url)
        with engine.connect() as connection:
            stored = dict(connection.execute(text("SELECT seq, event_category FROM central_pss_events")).all())
    finally:
        engine.dispose()
    assert stored == {**dict.fromkeys(range(1, 9), "R"), 9: "H", 10: "K", 11: "O"}
    with CentralStore(central_url) as store:
        assert [r.event_category for r in store.fetch_events("c", "e")][:8] == ["R"] * 8
        bad = EventRecord.model_construct(**{**records("c", "e", range(20, 21))[0].__dict__, "event_category": "CLK"})
        with pytest.raises(CentralStoreError) as refused:
            store.insert_events([bad])
        assert not isinstance(refused.value, CentralStoreUnavailable)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path / "data" / "master")
    assert (tmp_path / "data" / "master").is_dir()
    upgrade(url)
    with CentralStore(url) as store, store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


# --- exactly-once storage ---------------------------------------------------------------


def test_same_batch_twice_is_stored_once(store: CentralStore) -> None:
    batch = records("court-1", "e1", range(1, 501))
    assert store.insert_events(batch) == 500
    assert store.insert_events(batch) == 0
    assert store.count_events() == 500
    assert store.fetch_events("court-1", "e1") == batch


def test_overlapping_batches_store_each_event_once(store: CentralStore) -> None:
    assert store.insert_events(records("court-1", "e1", range(1, 501))) == 500
    assert store.insert_events(records("court-1", "e1", range(251, 751))) == 250
    # Duplicates inside one batch (a live message also delivered by catch-up).
    doubled = records("court-1", "e1", range(741, 761))
    assert store.insert_events(doubled + doubled) == 10
    assert store.count_events("court-1") == 760
    assert [r.seq for r in store.fetch_events("court-1", "e1")] == list(range(1, 761))


def test_empty_batch_stores_nothing(store: CentralStore) -> None:
    assert store.insert_events([]) == 0
    assert store.count_events() == 0


def test_last_stored_per_epoch_keeps_epochs_and_nodes_apart(store: CentralStore) -> None:
    assert store.last_stored("court-1") == {}
    assert store.last_seq("court-1", "old") == 0
    store.insert_events(records("court-1", "old", range(1, 301)))
    store.insert_events(records("court-1", "new", range(1, 41)))  # slave database recreated
    store.insert_events(records("court-2", "old", range(1, 1001)))

    assert store.last_stored("court-1") == {"old": 300, "new": 40}
    assert store.last_seq("court-1", "new") == 40
    assert store.last_seq("court-2", "old") == 1000
    assert store.count_events("court-1") == 340
    assert store.count_events() == 1340
    assert [r.epoch for r in store.fetch_events("court-1", "new")] == ["new"] * 40
    assert store.fetch_events("court-1", "old") == records("court-1", "old", range(1, 301))


def test_non_ascii_raw_and_arbitrary_bytes_round_trip_exactly(store: CentralStore) -> None:
    odd = records(
        "court-1",
        "e1",
        range(1, 4),
        raw="at1;Müller;GER;Kim Tae-hŭi 김태희;KOR 🥋 \\xff\\xfe",
        raw_datagram=bytes(range(256)) + "김".encode() + b"\xff\xfe\x00",
        parsed={"blue": "Müller", "red": "김태희", "nested": [{"ü": 1.5}, None, True]},
        valid=False,
        error="invalid UTF-8 at byte 3",
    )
    store.insert_events(odd)
    assert store.fetch_events("court-1", "e1") == odd


def test_nul_characters_never_make_a_batch_unstorable(
    store: CentralStore, caplog: pytest.LogCaptureFixture
) -> None:
    datagram = b"pt1;3\x00\x00"
    batch = records(
        "court-1",
        "e1",
        range(1, 3),
        raw="pt1;3\x00\x00",
        raw_datagram=datagram,
        parsed={"note\x00": "a\x00b"},
        valid=False,
        error="pt1: bad points",
    )
    with caplog.at_level(logging.WARNING, logger="master.db.store"):
        assert store.insert_events(batch) == 2
        assert store.insert_events(batch) == 0
    stored = store.fetch_events("court-1", "e1")
    assert [r.raw_datagram for r in stored] == [datagram, datagram]
    if store.engine.dialect.name == "sqlite":
        assert stored == batch
        assert caplog.records == []
    else:  # PostgreSQL text cannot hold U+0000: written the way undecodable bytes are
        assert stored[0].raw == "pt1;3\\x00\\x00"
        assert stored[0].parsed == {"note\\x00": "a\\x00b"}
        assert len(caplog.records) == 1  # loud once, not per row


def test_insert_from_a_worker_thread(store: CentralStore) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        batches = [records("c1", "e", range(1, 201)), records("c2", "e", range(1, 201))]
        counts = list(pool.map(store.insert_events, batches))
    assert counts == [200, 200]


# --- connection loss (PostgreSQL) ---------------------------------------------------------


def _terminate_others(admin: Engine, database: str) -> int:
    with admin.connect() as connection:
        return len(
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).all()
        )


def test_connection_killed_between_batches_is_recovered(pg_url: str, admin_engine: Engine) -> None:
    upgrade(pg_url)
    first, second = records("court-1", "e1", range(1, 501)), records("court-1", "e1", range(501, 1001))
    with CentralStore(pg_url) as store:
        assert store.insert_events(first) == 500
        assert _terminate_others(admin_engine, store.engine.url.database or "") >= 1
        try:
            store.insert_events(second)  # pre-ping replaces the dead pooled connection
        except CentralStoreUnavailable:
            store.insert_events(second)
        assert store.insert_events(first + second) == 0
        assert store.count_events() == 1000
        assert store.fetch_events("court-1", "e1") == first + second


@pytest.mark.parametrize("stage", ["INSERT INTO central_pss_events", "UPDATE central_slave_nodes"])
def test_connection_killed_mid_batch_raises_unavailable_and_retry_stores_once(
    pg_url: str, admin_engine: Engine, stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed before the insert from staging, or after it but before the commit: either way
    the caller sees the same error, and its retry stores the batch once."""
    upgrade(pg_url)
    batch = records("court-1", "e1", range(1, 501))
    with CentralStore(pg_url) as store:
        store.upsert_node("court-1")
        killed: list[int] = []

        @event.listens_for(store.engine, "before_cursor_execute")
        def kill(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().startswith(stage) and not killed:
                pid = conn.connection.driver_connection.info.backend_pid
                with admin_engine.connect() as admin:
                    admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
                killed.append(pid)

        with caplog.at_level(logging.WARNING, logger="master.db.store"):
            with pytest.raises(CentralStoreUnavailable):
                store.insert_events(batch)
            assert store.insert_events(batch) == 500  # the caller's retry
            assert store.insert_events(batch) == 0
        assert killed
        assert store.count_events() == 500
        assert store.list_nodes()[0]["events_stored"] == 500
        assert caplog.records == []  # the store raises; saying it is the master's DbWorker's job (once)


def test_batch_the_server_rejects_raises_central_store_error(pg_url: str) -> None:
    """Not a transient failure: the caller must not retry it forever."""
    upgrade(pg_url)
    # Bypasses EventRecord's validation: node_id is limited to 64 characters.
    bad = EventRecord.model_construct(**{**records("c", "e1", range(1, 2))[0].__dict__, "node_id": "x" * 65})
    with CentralStore(pg_url) as store:
        with pytest.raises(CentralStoreError) as caught:
            store.insert_events([bad])
        assert not isinstance(caught.value, CentralStoreUnavailable)
        assert store.insert_events(records("c", "e1", range(1, 3))) == 2  # the store still works


def test_unreachable_server_raises_unavailable() -> None:
    with CentralStore("postgresql://postgres@127.0.0.1:1/nowhere") as store:
        with pytest.raises(CentralStoreUnavailable):
            store.insert_events(records("court-1", "e1", range(1, 3)))
        with pytest.raises(CentralStoreUnavailable):
            store.last_stored("court-1")


# --- nodes, tournaments, OBS sessions ---------------------------------------------------------


def test_nodes_upsert_list_and_go_offline(store: CentralStore) -> None:
    store.upsert_node("court-2", court_name="Court 2")
    store.upsert_node("court-1", court_name="Court 1", hostname="laptop-1", address="10.0.0.11",
                      pub_port=5556, router_port=5557, status="online", epoch="e1")
    seen = dt.datetime(2025, 8, 1, 9, 30, tzinfo=dt.UTC)
    store.upsert_node("court-1", approved=True, last_seen=seen, last_heartbeat_seq=42, cpu_percent=12.5,
                      memory_percent=40.0, disk_free_bytes=123 * 2**30, obs_rec_connected=True,
                      recording=True, current_scene="LIVE_SCENE")
    store.upsert_node("court-2")  # known already: nothing changes

    nodes = {n["node_id"]: n for n in store.list_nodes()}
    assert list(nodes) == ["court-1", "court-2"]
    court1 = nodes["court-1"]
    assert (court1["court_name"], court1["hostname"], court1["pub_port"]) == ("Court 1", "laptop-1", 5556)
    assert (court1["approved"], court1["status"], court1["recording"], court1["streaming"]) == (
        True, "online", True, False)
    assert court1["last_seen"].replace(tzinfo=dt.UTC) == seen
    assert court1["disk_free_bytes"] == 123 * 2**30
    assert court1["first_seen"] is not None
    assert (nodes["court-2"]["approved"], nodes["court-2"]["status"]) == (False, "offline")

    store.mark_offline("court-1")
    store.mark_offline("unknown")
    assert store.list_nodes()[0]["status"] == "offline"


def test_node_counters_follow_insert_events(store: CentralStore) -> None:
    store.upsert_node("court-1")
    store.insert_events(records("court-1", "e1", range(1, 301)))
    store.insert_events(records("court-1", "e1", range(201, 401)))
    node = store.list_nodes()[0]
    assert (node["events_received"], node["events_stored"]) == (500, 400)


def test_node_fields_are_checked(store: CentralStore) -> None:
    with pytest.raises(TypeError, match="colour"):
        store.upsert_node("court-1", colour="blue")
    with pytest.raises(CentralStoreError):
        store.upsert_node("court-1", status="sleeping")
    assert store.list_nodes() == []


def test_tournament_and_day_upsert_by_uuid_is_idempotent(store: CentralStore) -> None:
    for _ in range(2):
        store.upsert_tournament("t-1", "Open", location="Zagreb", start_date=dt.date(2025, 8, 1),
                                end_date=dt.date(2025, 8, 3))
        store.upsert_day("d-1", "t-1", 1, dt.date(2025, 8, 1))
    store.upsert_day("d-1", "t-1", 1, dt.date(2025, 8, 1), name="Day 1 (cadets)")
    store.upsert_tournament("t-1", "Croatia Open", location="Zagreb")

    with store.engine.connect() as connection:
        tournaments = connection.execute(
            text("SELECT uuid, name, start_date FROM central_tournaments")
        ).all()
        days = connection.execute(
            text("SELECT uuid, tournament_uuid, day_number, name FROM central_tournament_days")
        ).all()
    assert [(t.uuid, t.name, t.start_date) for t in tournaments] == [("t-1", "Croatia Open", None)]
    assert [tuple(d) for d in days] == [("d-1", "t-1", 1, "Day 1 (cadets)")]

    with pytest.raises(CentralStoreError):
        store.upsert_day("d-2", "no-such-tournament", 2, None)


# --- row changes ---------------------------------------------------------------------------------


def _session(number: int, rev: int, **fields: Any) -> SessionRecord:
    return SessionRecord(**{"rev": rev, "tournament_day_uuid": "d-1", "session_type": "stream",
                            "session_number": number, "start_ms": number * 100_000, "is_active": True, **fields})


def _match(rev: int, **fields: Any) -> MatchRecord:
    return MatchRecord(**{"rev": rev, "uuid": "m-1", "status": "loaded", "loaded_ms": 1_000, **fields})


def test_event_changes_apply_only_when_newer(store: CentralStore) -> None:
    store.insert_events(records("court-1", "e1", range(1, 4), match_number=None, rec_timestamp=None))
    newer = EventChange(rev=7, node_id="court-1", epoch="e1", seq=2, match_number="101", str_timestamp="00:00:09",
                        ivr_link="/clips/a.mkv")
    store.apply_changes("court-1", "e1", [newer], through_rev=7)
    older = newer.model_copy(update={"rev": 5, "match_number": "99", "ivr_link": None})
    store.apply_changes("court-1", "e1", [older], through_rev=7)  # a stale state arriving late changes nothing
    missing = newer.model_copy(update={"rev": 8, "seq": 40})  # not stored here: nothing to change, no row made
    store.apply_changes("court-1", "e1", [missing], through_rev=8)
    stored = store.fetch_events("court-1", "e1")
    assert len(stored) == 3
    assert (stored[1].match_number, stored[1].str_timestamp, stored[1].ivr_link, stored[1].rev) == (
        "101", "00:00:09", "/clips/a.mkv", 7)
    assert stored[0].match_number is None and stored[0].rev == 0
    assert store.change_cursor("court-1") == {"e1": 8}


def test_matches_and_sessions_keep_their_newest_state(store: CentralStore) -> None:
    store.apply_changes("court-1", "e1", [_match(1), _session(1, 2)], through_rev=2)
    store.apply_changes("court-1", "e1", [
        _match(3, match_number="101", blue_name="Perica", blue_noc="CRO"),
        _match(4, match_number="101", blue_name="Perica", blue_noc="CRO", status="finished", winner="blue"),
        _session(1, 5, end_ms=161_000, interruption_reason="obs_crash"),
        _session(2, 6, cumulative_offset_seconds=61.0),
    ], through_rev=6)
    store.apply_changes("court-1", "e1", [_match(2, match_number="old")], through_rev=6)  # late and stale
    assert store.fetch_matches("court-1") == [
        _match(4, match_number="101", blue_name="Perica", blue_noc="CRO", status="finished", winner="blue")]
    assert store.fetch_sessions("court-1") == [
        _session(1, 5, end_ms=161_000, interruption_reason="obs_crash"), _session(2, 6, cumulative_offset_seconds=61.0)]
    assert store.change_cursor("court-1") == {"e1": 6}
    # The court's database was replaced: its revisions start again, and its state is the court's now.
    store.apply_changes("court-1", "e2", [_session(1, 1, output_path="/rec/1.mkv")], through_rev=1)
    assert store.fetch_sessions("court-1")[0] == _session(1, 1, output_path="/rec/1.mkv")
    assert store.change_cursor("court-1") == {"e1": 6, "e2": 1}
    with pytest.raises(ValueError):
        _session(1, 1, session_type="screenshot")


def test_court_approval_pending_approved_refused_revoked(store: CentralStore) -> None:
    from master.approvals import Verdict, judge

    real, other = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    offer = {"court_name": "Court 4", "address": "10.0.0.14", "pub_port": 5570, "router_port": 5571}
    first = store.offer_court("court-4", real, **offer)
    assert (first.status, first.approved, first.offered_key, judge(first, real)) == ("pending", False, real, Verdict.PENDING)
    store.mark_offline("court-4")  # the offline sweep leaves a pending court alone
    assert store.court_approvals()["court-4"].status == "pending"

    approved = store.approve_court("court-4", by="director")  # pins the key it offered
    assert (approved.status, approved.public_key, approved.offered_key, approved.approved_by) == ("offline", real, None, "director")
    assert judge(store.offer_court("court-4", real, **offer), real) is Verdict.APPROVED

    impostor = store.offer_court("court-4", other, **{**offer, "address": "10.0.0.66"})
    assert judge(impostor, other) is Verdict.REFUSED
    assert (impostor.public_key, impostor.refused_key, impostor.offered_from) == (real, other, "10.0.0.66")
    with pytest.raises(ValueError, match="--replace"):
        store.approve_court("court-4", by="director")  # the refused key is not pinned by accident

    store.revoke_court("court-4")
    store.upsert_node("court-4", status="online")  # a heartbeat in flight when it was revoked
    revoked = store.court_approvals()["court-4"]
    assert (revoked.status, revoked.approved, revoked.public_key, judge(revoked, real)) == ("revoked", False, None, Verdict.REVOKED)
    with pytest.raises(LookupError, match="--key"):
        store.approve_court("court-9", by="director")  # never seen, no key given
    configured = store.approve_court("court-9", other, by="director")  # a configured court: key read out by hand
    assert configured.approved and configured.public_key == other
