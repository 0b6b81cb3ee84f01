"""Row changes from the courts: event revisions, matches, sessions with their source, change cursors.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("central_pss_events", sa.Column("rev", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.add_column("central_obs_sessions", sa.Column("output_path", sa.Text(), nullable=True))
    op.add_column("central_obs_sessions", sa.Column("epoch", sa.String(length=64), nullable=True))
    op.add_column("central_obs_sessions", sa.Column("rev", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "central_matches",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.Column("tournament_uuid", sa.Text(), nullable=True),
        sa.Column("tournament_day_uuid", sa.Text(), nullable=True),
        sa.Column("match_number", sa.Text(), nullable=True),
        sa.Column("phase", sa.Text(), nullable=True),
        sa.Column("weight_class", sa.Text(), nullable=True),
        sa.Column("division", sa.Text(), nullable=True),
        sa.Column("blue_name", sa.Text(), nullable=True),
        sa.Column("blue_noc", sa.Text(), nullable=True),
        sa.Column("red_name", sa.Text(), nullable=True),
        sa.Column("red_noc", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("winner", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("blue_rounds", sa.Integer(), nullable=True),
        sa.Column("red_rounds", sa.Integer(), nullable=True),
        sa.Column("loaded_ms", sa.BigInteger(), nullable=False),
        sa.Column("ready_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_central_matches"),
        sa.UniqueConstraint("uuid", name="uq_central_matches_uuid"),
    )
    op.create_index("ix_central_matches_node_id_loaded_ms", "central_matches", ["node_id", "loaded_ms"])
    op.create_index(
        "ix_central_matches_tournament_day_uuid_loaded_ms", "central_matches", ["tournament_day_uuid", "loaded_ms"]
    )
    op.create_index("ix_central_matches_match_number", "central_matches", ["match_number"])
    op.create_table(
        "central_change_cursors",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_central_change_cursors"),
        sa.UniqueConstraint("node_id", "epoch", name="uq_central_change_cursors_node_id_epoch"),
    )


def downgrade() -> None:
    op.drop_table("central_change_cursors")
    op.drop_table("central_matches")
    with op.batch_alter_table("central_obs_sessions") as batch:
        batch.drop_column("rev")
        batch.drop_column("epoch")
        batch.drop_column("output_path")
    with op.batch_alter_table("central_pss_events") as batch:
        batch.drop_column("rev")
