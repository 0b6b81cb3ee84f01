"""The plan's seven event categories: stored rows rewritten, then a CHECK on event_category.

The parser used to invent W, C, I, B, CLK, RND and WIN; every one of them is a referee
matter, R. Anything else outside the seven becomes O (other).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEVEN = "('K', 'P', 'H', 'TH', 'TB', 'R', 'O')"


def upgrade() -> None:
    op.execute(
        "UPDATE central_pss_events SET event_category = 'R' "
        "WHERE event_category IN ('W', 'C', 'I', 'B', 'CLK', 'RND', 'WIN')"
    )
    op.execute(f"UPDATE central_pss_events SET event_category = 'O' WHERE event_category NOT IN {_SEVEN}")
    with op.batch_alter_table("central_pss_events") as batch:  # SQLite rebuilds the table to add it
        batch.create_check_constraint("ck_central_pss_events_event_category", f"event_category IN {_SEVEN}")


def downgrade() -> None:
    with op.batch_alter_table("central_pss_events") as batch:
        batch.drop_constraint("ck_central_pss_events_event_category", type_="check")
