"""Deciding from a message and in-app notices: used action links, a read marker.

Revision ID: 0006
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_notifications_recipient_created_id",
        "notifications",
        ["recipient", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "used_action_links",
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column(
            "used_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_used_action_links_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_used_action_links")),
    )
    op.create_index(
        op.f("ix_used_action_links_request_id"), "used_action_links", ["request_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_used_action_links_request_id"), table_name="used_action_links")
    op.drop_table("used_action_links")
    op.drop_index("ix_notifications_recipient_created_id", table_name="notifications")
    op.drop_column("notifications", "read_at")
