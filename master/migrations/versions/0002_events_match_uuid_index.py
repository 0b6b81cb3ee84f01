"""Index events by match: naming a match back-fills the number on its earlier rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_central_pss_events_match_uuid"), "central_pss_events", ["match_uuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_central_pss_events_match_uuid"), table_name="central_pss_events")
