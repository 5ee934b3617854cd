"""Hardening: a visible "stuck" flag on requests, and action idempotency keys per caller.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("stuck_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("requests", sa.Column("stuck_reason", sa.Text(), nullable=True))
    op.create_table(
        "action_keys",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("update_id", sa.String(length=300), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_action_keys_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "request_id", "user_id", "idempotency_key", name=op.f("pk_action_keys")
        ),
    )


def downgrade() -> None:
    op.drop_table("action_keys")
    op.drop_column("requests", "stuck_reason")
    op.drop_column("requests", "stuck_since")
