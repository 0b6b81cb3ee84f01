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

__all__ = [
    "Base",
    "CentralObsSession",
    "CentralPssEvent",
    "CentralSlaveNode",
    "CentralTournament",
    "CentralTournamentDay",
    "NAMING_CONVENTION",
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
    __table_args__ = (CheckConstraint("status IN ('online', 'offline')", name="status"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), unique=True)
    court_name: Mapped[str | None] = mapped_column(String(255))
    hostname: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(255))
    pub_port: Mapped[int | None] = mapped_column(Integer)
    router_port: Mapped[int | None] = mapped_column(Integer)
    approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="offline", server_default="offline")
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


class CentralPssEvent(Base):
    """A slave's stored event (:class:`shared.records.EventRecord`) plus when the master got it.

    Text columns without a length are deliberate: a malformed datagram can put up to
    8 KB into ``raw`` or ``code``, and a length error would make its batch unstorable.
    """

    __tablename__ = "central_pss_events"
    __table_args__ = (
        UniqueConstraint("node_id", "epoch", "seq"),
        Index(None, "node_id", "received_ms"),
        Index(None, "match_number"),
        Index(None, "tournament_day_uuid", "received_ms"),
        Index(None, "event_category"),
        Index(None, "match_uuid"),
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
    processing_us: Mapped[int] = mapped_column(BigInteger)
    tournament_uuid: Mapped[str | None] = mapped_column(Text)
    tournament_day_uuid: Mapped[str | None] = mapped_column(Text)
    match_uuid: Mapped[str | None] = mapped_column(Text)
    match_number: Mapped[str | None] = mapped_column(Text)
    rec_timestamp: Mapped[str | None] = mapped_column(Text)
    str_timestamp: Mapped[str | None] = mapped_column(Text)
    ivr_link: Mapped[str | None] = mapped_column(Text)
    master_received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
