"""The inbox's keyset index: my pending steps in urgency order, read a page at a time.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_assignments_inbox",
        "assignments",
        [
            "user_id",
            sa.text("coalesce(due, 'infinity'::timestamp with time zone)"),
            "eligible_since",
            "id",
        ],
        unique=False,
        postgresql_where=sa.text("pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_inbox", table_name="assignments")
