"""Partial indexes for the metrics: open requests by status, stuck requests.

The approvals worker counts both every 15 s (common/metrics.py); with these the
counts read the few open or stuck rows, not the whole table of closed requests.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_requests_open_status",
        "requests",
        ["status"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_requests_stuck_since",
        "requests",
        ["stuck_since"],
        unique=False,
        postgresql_where=sa.text("stuck_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_stuck_since", table_name="requests")
    op.drop_index("ix_requests_open_status", table_name="requests")
