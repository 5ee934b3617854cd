"""Finished deliveries by age: what the retention pass deletes, found without a scan.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_finished_created",
        "deliveries",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('sent', 'skipped')"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_finished_created", table_name="deliveries")
