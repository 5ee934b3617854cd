"""Payout instructions (special-discount rebates paid in their monthly windows).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("beneficiary", sa.String(length=200), nullable=True),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_payouts_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payouts_idempotency_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_payouts_reference")),
    )
    op.create_index(op.f("ix_payouts_request_id"), "payouts", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payouts_request_id"), table_name="payouts")
    op.drop_table("payouts")
