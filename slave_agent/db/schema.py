"""The slave's SQLite schema, as numbered migrations applied in order at open.

SQLite is the court's source of truth; every change to it is a new migration so a
laptop that skipped versions upgrades in one go.
"""

from __future__ import annotations

import logging
import sqlite3

__all__ = ["MIGRATIONS", "SESSION_TIME_SQL", "migrate"]

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
        """,
    ),
    (
        "index events by match (naming a match back-fills its earlier rows)",
        "CREATE INDEX ix_events_match_id ON pss_events_v2 (match_id);",
    ),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this file lacks; returns the schema version now in force."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this agent knows "
            f"({len(MIGRATIONS)}); upgrade reStrike VTA before opening it"
        )
    for number, (name, sql) in enumerate(MIGRATIONS[version:], start=version + 1):
        logger.info("Applying SQLite migration %d: %s", number, name)
        conn.executescript(f"BEGIN; {sql}; PRAGMA user_version = {number}; COMMIT;")
    return len(MIGRATIONS)
