"""Which deliverer claimed a delivery: a dead one's claims fall due at once.

A deliverer process holds a PostgreSQL advisory lock on its own random id for its
whole life, and a claim writes that id to ``deliveries.claimed_by`` along with the
lease. Another deliverer that finds rows claimed by an id whose lock nobody holds
(its process died, its connection closed) makes them due at once instead of waiting
for the lease (``db.deliveries.reclaim_orphans``). NULL: not claimed, or claimed by an
old ``DeliverNotices`` pass (the lease alone applies). The partial index finds the
claimed rows among the pending ones without a scan.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("claimed_by", sa.Integer(), nullable=True))
    op.create_index(
        "ix_deliveries_claimed_by",
        "deliveries",
        ["claimed_by"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND claimed_by IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_claimed_by", table_name="deliveries")
    op.drop_column("deliveries", "claimed_by")
