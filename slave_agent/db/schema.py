"""The slave's SQLite schema, as numbered migrations applied in order at open.

SQLite is the court's source of truth; every change to it is a new migration so a
laptop that skipped versions upgrades in one go.
"""

from __future__ import annotations

import logging
import sqlite3

from runtime.errors import OperatorError

__all__ = ["MIGRATIONS", "SESSION_TIME_SQL", "SchemaTooNew", "migrate"]

logger = logging.getLogger(__name__)

#: Stream/recording time of a ``pss_events_v2`` row in the active session of a type, ``HH:MM:SS``.
#: One expression, used by the insert trigger and by the recalculation of a day.
SESSION_TIME_SQL = """(
    SELECT restrike_session_hms(pss_events_v2.received_ms, s.start_ms, s.cumulative_offset_seconds)
    FROM obs_sessions s
    WHERE s.tournament_day_id = pss_events_v2.tournament_day_id
      AND s.session_type = '{session_type}'
      AND s.start_ms <= pss_events_v2.received_ms
      AND (s.end_ms IS NULL OR pss_events_v2.received_ms < s.end_ms)
    ORDER BY s.start_ms DESC, s.session_number DESC
    LIMIT 1
)"""

_NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

#: Stamps a new event with the stream/recording time of the session active when it arrived.
#: (Migration 7 replaces it by one that also marks the row, see ``_change_tracking``.)
_SESSION_TIMES_TRIGGER = f"""
        CREATE TRIGGER trg_events_session_times
        AFTER INSERT ON pss_events_v2
        WHEN NEW.tournament_day_id IS NOT NULL
             AND EXISTS (SELECT 1 FROM obs_sessions WHERE tournament_day_id = NEW.tournament_day_id)
        BEGIN
            UPDATE pss_events_v2 SET
                str_timestamp = COALESCE(str_timestamp, {SESSION_TIME_SQL.format(session_type="stream")}),
                rec_timestamp = COALESCE(rec_timestamp, {SESSION_TIME_SQL.format(session_type="recording")})
            WHERE id = NEW.id;
        END;
"""
_CHAPTERS_VIEW = """
        CREATE VIEW youtube_chapters AS
        SELECT e.tournament_day_id,
               m.id AS match_id,
               m.match_number, m.phase, m.weight_class,
               m.blue_name, m.blue_noc, m.red_name, m.red_noc,
               e.received_ms,
               e.str_timestamp
        FROM pss_events_v2 e
        JOIN matches m ON m.id = e.match_id
        WHERE e.event_code = 'rdy' AND e.is_valid = 1 AND e.str_timestamp IS NOT NULL
        ORDER BY e.tournament_day_id, e.received_ms;
"""

def _bump(table: str) -> str:
    """Trigger body: the next revision of the database, given to the row just written."""
    return f"""
            UPDATE change_clock SET rev = rev + 1 WHERE id = 1;
            UPDATE {table} SET rev = (SELECT rev FROM change_clock WHERE id = 1) WHERE id = NEW.id;"""


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


def _ivr_change_tracking() -> str:
    """Every trigger outcome, and the review result filled in later, gives its row the next revision."""
    columns = ("outcome", "reason", "challenge_result", "clip_path", "clip_bytes", "linked_events", "finished_ms")
    return f"""
        ALTER TABLE ivr_events ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
        UPDATE ivr_events SET rev = (SELECT rev FROM change_clock WHERE id = 1) + id;
        UPDATE change_clock SET rev = MAX(rev, (SELECT COALESCE(MAX(rev), 0) FROM ivr_events)) WHERE id = 1;
        CREATE INDEX ix_ivr_events_rev ON ivr_events (rev);
        CREATE TRIGGER trg_ivr_events_inserted AFTER INSERT ON ivr_events
        BEGIN {_bump("ivr_events")}
        END;
        CREATE TRIGGER trg_ivr_events_changed
        AFTER UPDATE OF {", ".join(columns)} ON ivr_events
        WHEN {_changed(columns)}
        BEGIN {_bump("ivr_events")}
        END;
    """


def _change_tracking() -> str:
    """Migration 7: every change of a replicated column gives its row the next revision.

    ``pss_events_v2.rev`` is NULL for a row untouched since its insert, 0 for a row the insert
    trigger stamped with session times (part of the insert, published with it, so not a
    change), and the revision of its last change otherwise. The inner UPDATEs set only
    ``rev``, which no ``UPDATE OF`` list names, so they never fire a trigger again.
    """
    event_columns = ("match_number", "rec_timestamp", "str_timestamp", "ivr_link")
    match_columns = (
        "tournament_id", "tournament_day_id", "match_number", "phase", "weight_class", "division",
        "blue_name", "blue_noc", "red_name", "red_noc", "status", "winner", "decision",
        "blue_rounds", "red_rounds", "loaded_ms", "ready_ms", "finished_ms",
    )
    session_columns = (
        "tournament_day_id", "session_type", "session_number", "start_ms", "end_ms", "is_active",
        "interruption_reason", "time_offset_seconds", "cumulative_offset_seconds", "output_path",
    )
    stamp = SESSION_TIME_SQL.format
    return f"""
        CREATE TABLE change_clock (
            id   INTEGER PRIMARY KEY CHECK (id = 1),
            rev  INTEGER NOT NULL
        );
        ALTER TABLE pss_events_v2 ADD COLUMN rev INTEGER;
        ALTER TABLE matches ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE obs_sessions ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;

        -- Rows stored before: one revision each (unique, so pages never split a tie), so the
        -- master reads them once and repairs any copy a correction left stale.
        UPDATE pss_events_v2 SET rev = id
            WHERE {" OR ".join(f"{c} IS NOT NULL" for c in event_columns)};
        UPDATE matches SET rev = id + (SELECT COALESCE(MAX(id), 0) FROM pss_events_v2);
        UPDATE obs_sessions SET rev = id + (SELECT COALESCE(MAX(id), 0) FROM pss_events_v2)
                                         + (SELECT COALESCE(MAX(id), 0) FROM matches);
        INSERT INTO change_clock (id, rev) VALUES (1, (
            SELECT MAX(r) FROM (SELECT COALESCE(MAX(rev), 0) AS r FROM pss_events_v2
                                UNION ALL SELECT COALESCE(MAX(rev), 0) FROM matches
                                UNION ALL SELECT COALESCE(MAX(rev), 0) FROM obs_sessions)));
        CREATE INDEX ix_events_rev ON pss_events_v2 (rev) WHERE rev > 0;
        CREATE INDEX ix_matches_rev ON matches (rev);
        CREATE INDEX ix_sessions_rev ON obs_sessions (rev);

        DROP TRIGGER trg_events_session_times;
        CREATE TRIGGER trg_events_session_times
        AFTER INSERT ON pss_events_v2
        WHEN NEW.tournament_day_id IS NOT NULL
             AND EXISTS (SELECT 1 FROM obs_sessions WHERE tournament_day_id = NEW.tournament_day_id)
        BEGIN
            UPDATE pss_events_v2 SET
                str_timestamp = COALESCE(str_timestamp, {stamp(session_type="stream")}),
                rec_timestamp = COALESCE(rec_timestamp, {stamp(session_type="recording")}),
                rev = 0
            WHERE id = NEW.id;
        END;
        CREATE TRIGGER trg_events_changed
        AFTER UPDATE OF {", ".join(event_columns)} ON pss_events_v2
        WHEN ({_changed(event_columns)}) AND NOT (OLD.rev IS NULL AND NEW.rev IS 0)
        BEGIN {_bump("pss_events_v2")}
        END;
        CREATE TRIGGER trg_matches_inserted AFTER INSERT ON matches
        BEGIN {_bump("matches")}
        END;
        CREATE TRIGGER trg_matches_changed
        AFTER UPDATE OF {", ".join(match_columns)} ON matches
        WHEN {_changed(match_columns)}
        BEGIN {_bump("matches")}
        END;
        CREATE TRIGGER trg_sessions_inserted AFTER INSERT ON obs_sessions
        BEGIN {_bump("obs_sessions")}
        END;
        CREATE TRIGGER trg_sessions_changed
        AFTER UPDATE OF {", ".join(session_columns)} ON obs_sessions
        WHEN {_changed(session_columns)}
        BEGIN {_bump("obs_sessions")}
        END;
    """


MIGRATIONS: list[tuple[str, str]] = [
    (
        "core tables: node identity, tournaments, days, matches, events",
        f"""
        CREATE TABLE node_meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE tournaments (
            id          INTEGER PRIMARY KEY,
            uuid        TEXT NOT NULL UNIQUE,
            name        TEXT NOT NULL,
            location    TEXT,
            start_date  TEXT,
            end_date    TEXT,
            is_active   INTEGER NOT NULL DEFAULT 0,
            created_at  TEXT NOT NULL DEFAULT {_NOW}
        );
        CREATE TABLE tournament_days (
            id             INTEGER PRIMARY KEY,
            uuid           TEXT NOT NULL UNIQUE,
            tournament_id  INTEGER NOT NULL REFERENCES tournaments(id),
            day_number     INTEGER NOT NULL CHECK (day_number >= 1),
            date           TEXT NOT NULL,
            name           TEXT,
            is_active      INTEGER NOT NULL DEFAULT 0,
            created_at     TEXT NOT NULL DEFAULT {_NOW},
            UNIQUE (tournament_id, day_number)
        );
        CREATE TABLE matches (
            id                 INTEGER PRIMARY KEY,
            uuid               TEXT NOT NULL UNIQUE,
            tournament_id      INTEGER REFERENCES tournaments(id),
            tournament_day_id  INTEGER REFERENCES tournament_days(id),
            match_number       TEXT,
            phase              TEXT,
            weight_class       TEXT,
            division           TEXT,
            blue_name          TEXT,
            blue_noc           TEXT,
            red_name           TEXT,
            red_noc            TEXT,
            status             TEXT NOT NULL DEFAULT 'loaded',
            winner             TEXT,
            decision           TEXT,
            blue_rounds        INTEGER,
            red_rounds         INTEGER,
            loaded_ms          INTEGER NOT NULL,
            ready_ms           INTEGER,
            finished_ms        INTEGER
        );
        CREATE INDEX ix_matches_day ON matches (tournament_day_id, loaded_ms);
        CREATE TABLE pss_events_v2 (
            id                 INTEGER PRIMARY KEY,
            node_id            TEXT NOT NULL,
            epoch              TEXT NOT NULL,
            seq                INTEGER NOT NULL,
            received_ms        INTEGER NOT NULL,
            source_addr        TEXT,
            raw                TEXT NOT NULL,
            raw_datagram       BLOB NOT NULL,
            event_code         TEXT NOT NULL,
            event_category     TEXT NOT NULL,
            parsed_data        TEXT NOT NULL DEFAULT '{{}}',
            is_valid           INTEGER NOT NULL,
            error_message      TEXT,
            processing_us      INTEGER NOT NULL DEFAULT 0,
            tournament_id      INTEGER REFERENCES tournaments(id),
            tournament_day_id  INTEGER REFERENCES tournament_days(id),
            match_id           INTEGER REFERENCES matches(id),
            match_number       TEXT,
            rec_timestamp      TEXT,
            str_timestamp      TEXT,
            ivr_link           TEXT,
            UNIQUE (epoch, seq)
        );
        CREATE INDEX ix_events_received ON pss_events_v2 (received_ms);
        CREATE INDEX ix_events_day ON pss_events_v2 (tournament_day_id, received_ms);
        CREATE INDEX ix_events_match ON pss_events_v2 (match_number);
        CREATE INDEX ix_events_category ON pss_events_v2 (event_category);
        """,
    ),
    (
        "obs_sessions with stream/recording time triggers and the youtube_chapters view",
        f"""
        CREATE TABLE obs_sessions (
            id                         INTEGER PRIMARY KEY,
            tournament_day_id          INTEGER NOT NULL REFERENCES tournament_days(id),
            session_type               TEXT NOT NULL
                CHECK (session_type IN ('stream', 'recording', 'replay_buffer')),
            session_number             INTEGER NOT NULL CHECK (session_number >= 1),
            start_ms                   INTEGER NOT NULL,
            end_ms                     INTEGER,
            is_active                  INTEGER NOT NULL DEFAULT 1,
            interruption_reason        TEXT,
            time_offset_seconds        REAL NOT NULL DEFAULT 0,
            cumulative_offset_seconds  REAL NOT NULL DEFAULT 0,
            output_path                TEXT,
            last_alive_ms              INTEGER,
            created_at                 TEXT NOT NULL DEFAULT {_NOW},
            UNIQUE (tournament_day_id, session_type, session_number)
        );
        CREATE INDEX ix_sessions_lookup ON obs_sessions (tournament_day_id, session_type, start_ms);

        {_SESSION_TIMES_TRIGGER}
        {_CHAPTERS_VIEW}
        """,
    ),
    (
        "index events by match (naming a match back-fills its earlier rows)",
        "CREATE INDEX ix_events_match_id ON pss_events_v2 (match_id);",
    ),
    (
        "the plan's seven event categories (K P H TH TB R O): rows rewritten, then enforced by a CHECK",
        # SQLite cannot add a CHECK to a table: rebuild it (its view and trigger go with it).
        f"""
        DROP VIEW youtube_chapters;
        DROP TRIGGER trg_events_session_times;
        UPDATE pss_events_v2 SET event_category = 'R'
            WHERE event_category IN ('W', 'C', 'I', 'B', 'CLK', 'RND', 'WIN');
        UPDATE pss_events_v2 SET event_category = 'O'
            WHERE event_category NOT IN ('K', 'P', 'H', 'TH', 'TB', 'R', 'O');
        CREATE TABLE pss_events_v2_new (
            id                 INTEGER PRIMARY KEY,
            node_id            TEXT NOT NULL,
            epoch              TEXT NOT NULL,
            seq                INTEGER NOT NULL,
            received_ms        INTEGER NOT NULL,
            source_addr        TEXT,
            raw                TEXT NOT NULL,
            raw_datagram       BLOB NOT NULL,
            event_code         TEXT NOT NULL,
            event_category     TEXT NOT NULL
                CHECK (event_category IN ('K', 'P', 'H', 'TH', 'TB', 'R', 'O')),
            parsed_data        TEXT NOT NULL DEFAULT '{{}}',
            is_valid           INTEGER NOT NULL,
            error_message      TEXT,
            processing_us      INTEGER NOT NULL DEFAULT 0,
            tournament_id      INTEGER REFERENCES tournaments(id),
            tournament_day_id  INTEGER REFERENCES tournament_days(id),
            match_id           INTEGER REFERENCES matches(id),
            match_number       TEXT,
            rec_timestamp      TEXT,
            str_timestamp      TEXT,
            ivr_link           TEXT,
            UNIQUE (epoch, seq)
        );
        INSERT INTO pss_events_v2_new SELECT * FROM pss_events_v2;
        DROP TABLE pss_events_v2;
        ALTER TABLE pss_events_v2_new RENAME TO pss_events_v2;
        CREATE INDEX ix_events_received ON pss_events_v2 (received_ms);
        CREATE INDEX ix_events_day ON pss_events_v2 (tournament_day_id, received_ms);
        CREATE INDEX ix_events_match ON pss_events_v2 (match_number);
        CREATE INDEX ix_events_category ON pss_events_v2 (event_category);
        CREATE INDEX ix_events_match_id ON pss_events_v2 (match_id);
        {_SESSION_TIMES_TRIGGER}
        {_CHAPTERS_VIEW}
        """,
    ),
    (
        "mark answers to pull requests (resynchronisation after a restart) apart from live traffic",
        "ALTER TABLE pss_events_v2 ADD COLUMN is_resync INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        "ivr_events: the outcome of every OBS / instant-replay trigger, step by step",
        """
        CREATE TABLE ivr_events (
            id                 INTEGER PRIMARY KEY,
            uuid               TEXT NOT NULL UNIQUE,
            kind               TEXT NOT NULL CHECK (kind IN ('match_ready', 'replay', 'review_over')),
            source             TEXT NOT NULL,
            outcome            TEXT NOT NULL CHECK (outcome IN ('done', 'partial', 'failed', 'skipped')),
            reason             TEXT,
            tournament_day_id  INTEGER REFERENCES tournament_days(id),
            match_id           INTEGER REFERENCES matches(id),
            match_number       TEXT,
            blue               TEXT,
            red                TEXT,
            challenge_by       TEXT,
            challenge_result   TEXT,
            recording_path     TEXT,
            clip_path          TEXT,
            clip_bytes         INTEGER,
            clip_start_ms      INTEGER,
            clip_end_ms        INTEGER,
            linked_events      INTEGER,
            requested_ms       INTEGER NOT NULL,
            finished_ms        INTEGER NOT NULL,
            steps              TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX ix_ivr_events_requested ON ivr_events (requested_ms);
        """,
    ),
    (
        "row revisions (change_clock, rev columns, triggers): every later change reaches the master",
        _change_tracking(),
    ),
    (
        "ivr_events reach the master as row changes (rev column and triggers)",
        _ivr_change_tracking(),
    ),
    (
        "the director's commands (each id runs at most once, across restarts) and messages",
        """
        CREATE TABLE director_commands (
            command_id   TEXT PRIMARY KEY,
            action       TEXT NOT NULL,
            args         TEXT NOT NULL,
            received_ms  INTEGER NOT NULL,
            finished_ms  INTEGER,
            outcome      TEXT CHECK (outcome IN ('done', 'failed', 'expired')),
            reason       TEXT,
            duration_ms  REAL,
            data         TEXT
        );
        CREATE INDEX ix_director_commands_received ON director_commands (received_ms);
        CREATE TABLE director_messages (
            id               INTEGER PRIMARY KEY,
            announcement_id  INTEGER,
            kind             TEXT NOT NULL,
            priority         TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
            text             TEXT NOT NULL,
            received_ms      INTEGER NOT NULL
        );
        """,
    ),
]


class SchemaTooNew(OperatorError, RuntimeError):
    """The database was written by a newer version; opening it here could damage it."""

    exit_code = 2


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this file lacks; returns the schema version now in force."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"database schema version {version} is newer than this agent knows "
            f"({len(MIGRATIONS)}); upgrade reStrike VTA before opening it"
        )
    for number, (name, sql) in enumerate(MIGRATIONS[version:], start=version + 1):
        logger.debug("Applying SQLite migration %d: %s", number, name)
        conn.executescript(f"BEGIN; {sql}; PRAGMA user_version = {number}; COMMIT;")
    if version == 0:
        logger.info("Court database created (schema version %d)", len(MIGRATIONS))
    elif version < len(MIGRATIONS):
        logger.info("Court database upgraded from schema version %d to %d", version, len(MIGRATIONS))
    return len(MIGRATIONS)
