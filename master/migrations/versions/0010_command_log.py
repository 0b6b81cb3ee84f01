"""The director's commands: central_command_log (one row per command and court) and central_announcements.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "central_command_log",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("command_id", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("court_name", sa.String(length=255), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("args", _JSON, nullable=False),
        sa.Column("issued_by", sa.String(length=255), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announcement_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("court_ms", sa.Double(), nullable=True),
        sa.Column("round_trip_ms", sa.Double(), nullable=True),
        sa.Column("replayed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('done', 'failed', 'expired')", name="ck_central_command_log_outcome"),
        sa.PrimaryKeyConstraint("id", name="pk_central_command_log"),
        sa.UniqueConstraint("command_id", "node_id", name="uq_central_command_log_command_id_node_id"),
    )
    op.create_index("ix_central_command_log_issued_at", "central_command_log", ["issued_at"])
    op.create_table(
        "central_announcements",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("targets", _JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="sending", nullable=False),
        sa.Column("issued_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("status IN ('sending', 'delivered', 'partial', 'failed')", name="ck_central_announcements_status"),
        sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="ck_central_announcements_priority"),
        sa.PrimaryKeyConstraint("id", name="pk_central_announcements"),
    )


def downgrade() -> None:
    op.drop_table("central_announcements")
    op.drop_index("ix_central_command_log_issued_at", table_name="central_command_log")
    op.drop_table("central_command_log")
