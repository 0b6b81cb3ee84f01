"""Court approval: the pinned CURVE key of each court, the key it last offered, pending/revoked states.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_COLUMNS = (
    ("public_key", sa.String(length=40)),
    ("approved_at", sa.DateTime(timezone=True)),
    ("approved_by", sa.String(length=255)),
    ("offered_key", sa.String(length=40)),
    ("offered_at", sa.DateTime(timezone=True)),
    ("offered_from", sa.String(length=255)),
)


def upgrade() -> None:
    with op.batch_alter_table("central_slave_nodes") as batch:
        for name, column_type in _NEW_COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=True))
        batch.drop_constraint("ck_central_slave_nodes_status", type_="check")
        batch.create_check_constraint("status", "status IN ('online', 'offline', 'pending', 'revoked')")


def downgrade() -> None:
    op.execute("UPDATE central_slave_nodes SET status = 'offline' WHERE status IN ('pending', 'revoked')")
    with op.batch_alter_table("central_slave_nodes") as batch:
        batch.drop_constraint("ck_central_slave_nodes_status", type_="check")
        batch.create_check_constraint("status", "status IN ('online', 'offline')")
        for name, _ in reversed(_NEW_COLUMNS):
            batch.drop_column(name)
