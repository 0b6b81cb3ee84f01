"""The central database schema: every court's events, health and OBS sessions.

Events carry no foreign keys on purpose: a row must be storable whatever the master
knows about its tournament, day or node, so nothing can ever reject an event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.pss import Category

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "CentralAnnouncement",
    "CentralCommandLog",
    "CentralIvrReview",
    "CentralObsSession",
    "CentralPssEvent",
    "CentralSlaveNode",
    "CentralTournament",
    "CentralTournamentDay",
    "ConsoleSession",
    "ConsoleUser",
]

#: Stable constraint names, so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
_Json = JSON().with_variant(JSONB(), "postgresql")
_Uuid = String(64)  # slaves send UUIDs as text; 64 leaves room for other id forms
#: The plan's CHECK on ``event_category``, from the one list of categories.
CATEGORY_CHECK = "event_category IN ({})".format(", ".join(f"'{c.value}'" for c in Category))


class Base(DeclarativeBase):
    """Declarative base of the central schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CentralTournament(Base):
    """A tournament, identified venue-wide by the UUID the slaves share."""

    __tablename__ = "central_tournaments"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(_Uuid, unique=True)
    name: Mapped[str] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(String(255))
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CentralTournamentDay(Base):
    """One day of a tournament; courts on the same day share its UUID."""

    __tablename__ = "central_tournament_days"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(_Uuid, unique=True)
    tournament_uuid: Mapped[str] = mapped_column(
        _Uuid, ForeignKey("central_tournaments.uuid", ondelete="CASCADE"), index=True
    )
    day_number: Mapped[int] = mapped_column(Integer)
    date: Mapped[dt.date | None] = mapped_column(Date)
    name: Mapped[str | None] = mapped_column(String(255))


class CentralSlaveNode(Base):
    """A court's slave agent as last heard: identity, approval, health and OBS state."""

    __tablename__ = "central_slave_nodes"
    __table_args__ = (CheckConstraint("status IN ('online', 'offline', 'pending', 'revoked')", name="status"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), unique=True)
    court_name: Mapped[str | None] = mapped_column(String(255))
    hostname: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(255))
    pub_port: Mapped[int | None] = mapped_column(Integer)
    router_port: Mapped[int | None] = mapped_column(Integer)
    approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # online / offline once approved; pending until the director approves; revoked after.
    status: Mapped[str] = mapped_column(String(16), default="offline", server_default="offline")
    # The court's CURVE key the director pinned (the master only talks to its holder), and
    # the last other key a court presented under this node id: pending approval, or refused.
    public_key: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(255))
    offered_key: Mapped[str | None] = mapped_column(String(40))
    offered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    offered_from: Mapped[str | None] = mapped_column(String(255))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_heartbeat_seq: Mapped[int | None] = mapped_column(BigInteger)
    epoch: Mapped[str | None] = mapped_column(String(64))
    cpu_percent: Mapped[float | None] = mapped_column(Double)
    memory_percent: Mapped[float | None] = mapped_column(Double)
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    obs_rec_connected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    obs_str_connected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    recording: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    streaming: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    replay_buffer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    current_scene: Mapped[str | None] = mapped_column(String(255))
    # Every delivered event, duplicates included, and those actually stored.
    events_received: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    events_stored: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # The court's current match (a shared.match_snapshot.MatchSnapshot) and full OBS state
    # (shared.wire.ObsStatus) as JSON, and when the master wrote them (its own clock).
    match: Mapped[dict[str, Any] | None] = mapped_column(_Json)
    obs: Mapped[dict[str, Any] | None] = mapped_column(_Json)
    heard_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CentralObsSession(Base):
    """A stream, recording or replay-buffer session of one court on one day."""

    __tablename__ = "central_obs_sessions"
    __table_args__ = (
        UniqueConstraint(
            "node_id",
            "tournament_day_uuid",
            "session_type",
            "session_number",
            name="uq_central_obs_sessions_session",  # the generated name exceeds 63 chars
        ),
        CheckConstraint(
            "session_type IN ('stream', 'recording', 'replay_buffer')", name="session_type"
        ),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    tournament_day_uuid: Mapped[str] = mapped_column(_Uuid)
    session_type: Mapped[str] = mapped_column(String(16))
    session_number: Mapped[int] = mapped_column(Integer)
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int | None] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    interruption_reason: Mapped[str | None] = mapped_column(Text)
    time_offset_seconds: Mapped[float] = mapped_column(Double, default=0.0, server_default=text("0"))
    cumulative_offset_seconds: Mapped[float] = mapped_column(
        Double, default=0.0, server_default=text("0")
    )
    output_path: Mapped[str | None] = mapped_column(Text)
    # The court database (epoch) and revision this state comes from (shared.changes).
    epoch: Mapped[str | None] = mapped_column(String(64))
    rev: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class CentralMatch(Base):
    """A court's match as its database holds it (``shared.changes.MatchRecord``): number,
    athletes and NOCs, division and weight, result, load/ready/finish times.

    Text columns without a length, like the events': the values come from the scoring
    software's datagrams.
    """

    __tablename__ = "central_matches"
    __table_args__ = (
        Index(None, "node_id", "loaded_ms"),
        Index(None, "tournament_day_uuid", "loaded_ms"),
        Index(None, "match_number"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(_Uuid, unique=True)
    node_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[str] = mapped_column(String(64))
    rev: Mapped[int] = mapped_column(BigInteger)
    tournament_uuid: Mapped[str | None] = mapped_column(Text)
    tournament_day_uuid: Mapped[str | None] = mapped_column(Text)
    match_number: Mapped[str | None] = mapped_column(Text)
    phase: Mapped[str | None] = mapped_column(Text)
    weight_class: Mapped[str | None] = mapped_column(Text)
    division: Mapped[str | None] = mapped_column(Text)
    blue_name: Mapped[str | None] = mapped_column(Text)
    blue_noc: Mapped[str | None] = mapped_column(Text)
    red_name: Mapped[str | None] = mapped_column(Text)
    red_noc: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    winner: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(Text)
    blue_rounds: Mapped[int | None] = mapped_column(Integer)
    red_rounds: Mapped[int | None] = mapped_column(Integer)
    loaded_ms: Mapped[int] = mapped_column(BigInteger)
    ready_ms: Mapped[int | None] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)


class CentralIvrEvent(Base):
    """What an OBS / instant-replay trigger did at a court (``shared.changes.IvrEventRecord``):
    match ready, replay or review over, its outcome, the clip and each step's time."""

    __tablename__ = "central_ivr_events"
    __table_args__ = (
        Index(None, "node_id", "requested_ms"),
        Index(None, "match_uuid"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(_Uuid, unique=True)
    node_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[str] = mapped_column(String(64))
    rev: Mapped[int] = mapped_column(BigInteger)
    tournament_day_uuid: Mapped[str | None] = mapped_column(Text)
    match_uuid: Mapped[str | None] = mapped_column(Text)
    match_number: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    blue: Mapped[str | None] = mapped_column(Text)
    red: Mapped[str | None] = mapped_column(Text)
    challenge_by: Mapped[str | None] = mapped_column(Text)
    challenge_result: Mapped[str | None] = mapped_column(Text)
    recording_path: Mapped[str | None] = mapped_column(Text)
    clip_path: Mapped[str | None] = mapped_column(Text)
    clip_bytes: Mapped[int | None] = mapped_column(BigInteger)
    clip_start_ms: Mapped[int | None] = mapped_column(BigInteger)
    clip_end_ms: Mapped[int | None] = mapped_column(BigInteger)
    linked_events: Mapped[int | None] = mapped_column(Integer)
    requested_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(_Json)


class CentralIvrReview(Base):
    """The IVR desk's review of one replay: the master's own row, never written by a court.

    Apart from :class:`CentralIvrEvent` so a court's later change to the replay cannot overwrite
    it. ``reviewer`` and ``reviewed_at`` say who set the current ``state`` and when (a save that
    keeps the state, e.g. new notes, leaves them); ``updated_at`` is the last save of any kind.
    """

    __tablename__ = "central_ivr_reviews"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'reviewed', 'resolved')", name="state"),
        Index(None, "reviewed_at"),
    )

    ivr_uuid: Mapped[str] = mapped_column(_Uuid, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(255))
    reviewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CentralChangeCursor(Base):
    """How far a court's row changes are applied: every revision up to ``rev`` of its database ``epoch``."""

    __tablename__ = "central_change_cursors"
    __table_args__ = (UniqueConstraint("node_id", "epoch"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[str] = mapped_column(String(64))
    rev: Mapped[int] = mapped_column(BigInteger)


class CentralPssEvent(Base):
    """A slave's stored event (:class:`shared.records.EventRecord`) plus when the master got it.

    Text columns without a length are deliberate: a malformed datagram can put up to
    8 KB into ``raw`` or ``code``, and a length error would make its batch unstorable.
    """

    __tablename__ = "central_pss_events"
    __table_args__ = (
        UniqueConstraint("node_id", "epoch", "seq"),
        CheckConstraint(CATEGORY_CHECK, name="event_category"),
        Index(None, "node_id", "received_ms"),
        Index(None, "match_number"),
        Index(None, "tournament_day_uuid", "received_ms"),
        Index(None, "event_category"),
        Index(None, "match_uuid"),
        Index(None, "received_ms", "id"),  # every court's events in time order (the event list)
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    received_ms: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[str] = mapped_column(Text)
    raw_datagram: Mapped[bytes] = mapped_column(LargeBinary)
    code: Mapped[str] = mapped_column(Text)
    event_category: Mapped[str] = mapped_column(Text)
    parsed: Mapped[dict[str, Any]] = mapped_column(_Json)
    valid: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    #: An answer to the slave's pull request, not live traffic (see docs/protocol-notes.md).
    resync: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    processing_us: Mapped[int] = mapped_column(BigInteger)
    tournament_uuid: Mapped[str | None] = mapped_column(Text)
    tournament_day_uuid: Mapped[str | None] = mapped_column(Text)
    match_uuid: Mapped[str | None] = mapped_column(Text)
    match_number: Mapped[str | None] = mapped_column(Text)
    rec_timestamp: Mapped[str | None] = mapped_column(Text)
    str_timestamp: Mapped[str | None] = mapped_column(Text)
    ivr_link: Mapped[str | None] = mapped_column(Text)
    rev: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    master_received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ConsoleUser(Base):
    """A person who may sign in to the web console; only an argon2 hash of the password is kept."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ConsoleSession(Base):
    """A signed-in browser: the SHA-256 of its cookie's token (never the token), until it expires."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(_BigId, ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    address: Mapped[str | None] = mapped_column(String(64))


class CentralCommandLog(Base):
    """The audit trail of the director's commands: one row per command and court, its outcome filled in."""

    __tablename__ = "central_command_log"
    __table_args__ = (
        UniqueConstraint("command_id", "node_id"),
        CheckConstraint("outcome IS NULL OR outcome IN ('done', 'failed', 'expired')", name="outcome"),
        Index(None, "issued_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    command_id: Mapped[str] = mapped_column(String(32))
    node_id: Mapped[str] = mapped_column(String(64))
    court_name: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(_Json)
    issued_by: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    announcement_id: Mapped[int | None] = mapped_column(BigInteger)
    # NULL until the court answers or the deadline passes.
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    court_ms: Mapped[float | None] = mapped_column(Double)
    round_trip_ms: Mapped[float | None] = mapped_column(Double)
    replayed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CentralAnnouncement(Base):
    """A message from the director to courts' local pages, and how far it got."""

    __tablename__ = "central_announcements"
    __table_args__ = (
        CheckConstraint("status IN ('sending', 'delivered', 'partial', 'failed')", name="status"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    targets: Mapped[list[str]] = mapped_column(_Json)
    message: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="sending", server_default="sending")
    issued_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
