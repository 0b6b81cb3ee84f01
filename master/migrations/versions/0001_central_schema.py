"""Central schema: tournaments, days, slave nodes, OBS sessions and PSS events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "central_tournaments",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_central_tournaments"),
        sa.UniqueConstraint("uuid", name="uq_central_tournaments_uuid"),
    )
    op.create_table(
        "central_tournament_days",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("tournament_uuid", sa.String(length=64), nullable=False),
        sa.Column("day_number", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["tournament_uuid"],
            ["central_tournaments.uuid"],
            name="fk_central_tournament_days_tournament_uuid_central_tournaments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_central_tournament_days"),
        sa.UniqueConstraint("uuid", name="uq_central_tournament_days_uuid"),
    )
    op.create_index(
        "ix_central_tournament_days_tournament_uuid", "central_tournament_days", ["tournament_uuid"]
    )
    op.create_table(
        "central_slave_nodes",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("court_name", sa.String(length=255), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("pub_port", sa.Integer(), nullable=True),
        sa.Column("router_port", sa.Integer(), nullable=True),
        sa.Column("approved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="offline", nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_heartbeat_seq", sa.BigInteger(), nullable=True),
        sa.Column("epoch", sa.String(length=64), nullable=True),
        sa.Column("cpu_percent", sa.Double(), nullable=True),
        sa.Column("memory_percent", sa.Double(), nullable=True),
        sa.Column("disk_free_bytes", sa.BigInteger(), nullable=True),
        sa.Column("obs_rec_connected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("obs_str_connected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("recording", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("streaming", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("replay_buffer", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("current_scene", sa.String(length=255), nullable=True),
        sa.Column("events_received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("events_stored", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("status IN ('online', 'offline')", name="ck_central_slave_nodes_status"),
        sa.PrimaryKeyConstraint("id", name="pk_central_slave_nodes"),
        sa.UniqueConstraint("node_id", name="uq_central_slave_nodes_node_id"),
    )
    op.create_table(
        "central_obs_sessions",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("tournament_day_uuid", sa.String(length=64), nullable=False),
        sa.Column("session_type", sa.String(length=16), nullable=False),
        sa.Column("session_number", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("interruption_reason", sa.Text(), nullable=True),
        sa.Column("time_offset_seconds", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("cumulative_offset_seconds", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "session_type IN ('stream', 'recording', 'replay_buffer')",
            name="ck_central_obs_sessions_session_type",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_central_obs_sessions"),
        sa.UniqueConstraint(
            "node_id",
            "tournament_day_uuid",
            "session_type",
            "session_number",
            name="uq_central_obs_sessions_session",
        ),
    )
    op.create_table(
        "central_pss_events",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("raw_datagram", sa.LargeBinary(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("event_category", sa.Text(), nullable=False),
        sa.Column("parsed", _JSON, nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processing_us", sa.BigInteger(), nullable=False),
        sa.Column("tournament_uuid", sa.Text(), nullable=True),
        sa.Column("tournament_day_uuid", sa.Text(), nullable=True),
        sa.Column("match_uuid", sa.Text(), nullable=True),
        sa.Column("match_number", sa.Text(), nullable=True),
        sa.Column("rec_timestamp", sa.Text(), nullable=True),
        sa.Column("str_timestamp", sa.Text(), nullable=True),
        sa.Column("ivr_link", sa.Text(), nullable=True),
        sa.Column(
            "master_received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_central_pss_events"),
        sa.UniqueConstraint("node_id", "epoch", "seq", name="uq_central_pss_events_node_id_epoch_seq"),
    )
    op.create_index(
        "ix_central_pss_events_node_id_received_ms", "central_pss_events", ["node_id", "received_ms"]
    )
    op.create_index("ix_central_pss_events_match_number", "central_pss_events", ["match_number"])
    op.create_index(
        "ix_central_pss_events_tournament_day_uuid_received_ms",
        "central_pss_events",
        ["tournament_day_uuid", "received_ms"],
    )
    op.create_index("ix_central_pss_events_event_category", "central_pss_events", ["event_category"])


def downgrade() -> None:
    op.drop_table("central_pss_events")
    op.drop_table("central_obs_sessions")
    op.drop_table("central_slave_nodes")
    op.drop_table("central_tournament_days")
    op.drop_table("central_tournaments")
