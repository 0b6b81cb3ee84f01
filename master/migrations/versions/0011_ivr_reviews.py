"""The IVR desk's reviews: central_ivr_reviews, the master's own rows beside the replicated central_ivr_events.

Kept apart so a court's later change to its replay (its challenge result, a resync) never
overwrites what the director's reviewers wrote. Keyed by the IVR event's UUID; no foreign key,
like the replicated tables (a review must survive whatever the court sends).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "central_ivr_reviews",
        sa.Column("ivr_uuid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=255), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'reviewed', 'resolved')", name="ck_central_ivr_reviews_state"),
        sa.PrimaryKeyConstraint("ivr_uuid", name="pk_central_ivr_reviews"),
    )
    op.create_index("ix_central_ivr_reviews_reviewed_at", "central_ivr_reviews", ["reviewed_at"])


def downgrade() -> None:
    op.drop_index("ix_central_ivr_reviews_reviewed_at", table_name="central_ivr_reviews")
    op.drop_table("central_ivr_reviews")
