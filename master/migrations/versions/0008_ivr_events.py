"""The courts' trigger logs (match ready, replay, review over) as row changes: central_ivr_events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "central_ivr_events",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.Column("tournament_day_uuid", sa.Text(), nullable=True),
        sa.Column("match_uuid", sa.Text(), nullable=True),
        sa.Column("match_number", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("blue", sa.Text(), nullable=True),
        sa.Column("red", sa.Text(), nullable=True),
        sa.Column("challenge_by", sa.Text(), nullable=True),
        sa.Column("challenge_result", sa.Text(), nullable=True),
        sa.Column("recording_path", sa.Text(), nullable=True),
        sa.Column("clip_path", sa.Text(), nullable=True),
        sa.Column("clip_bytes", sa.BigInteger(), nullable=True),
        sa.Column("clip_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("clip_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("linked_events", sa.Integer(), nullable=True),
        sa.Column("requested_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=False),
        sa.Column("steps", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_central_ivr_events"),
        sa.UniqueConstraint("uuid", name="uq_central_ivr_events_uuid"),
    )
    op.create_index("ix_central_ivr_events_node_id_requested_ms", "central_ivr_events", ["node_id", "requested_ms"])
    op.create_index("ix_central_ivr_events_match_uuid", "central_ivr_events", ["match_uuid"])


def downgrade() -> None:
    op.drop_table("central_ivr_events")
