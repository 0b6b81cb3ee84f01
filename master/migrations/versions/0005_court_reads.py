"""What the read services need: a court's match and full OBS state on its node row, when the master
last wrote it, and events in time order across courts (the event list's newest-first pages).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("central_slave_nodes", sa.Column("match", _JSON, nullable=True))
    op.add_column("central_slave_nodes", sa.Column("obs", _JSON, nullable=True))
    op.add_column("central_slave_nodes", sa.Column("heard_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_central_pss_events_received_ms_id"), "central_pss_events", ["received_ms", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_central_pss_events_received_ms_id"), table_name="central_pss_events")
    op.drop_column("central_slave_nodes", "heard_at")
    op.drop_column("central_slave_nodes", "obs")
    op.drop_column("central_slave_nodes", "match")
