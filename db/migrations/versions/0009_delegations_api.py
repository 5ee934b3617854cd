"""Delegations made through the API: their request types, source, author, audit trail.

Existing rows came from the org file: ``source`` defaults to ``org`` and they count
as told (their effect was always read at resolution time).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("delegations", sa.Column("request_types", postgresql.ARRAY(sa.String(length=64))))
    op.add_column(
        "delegations",
        sa.Column("source", sa.String(length=8), server_default="org", nullable=False),
    )
    op.add_column("delegations", sa.Column("created_by", sa.String(length=64)))
    op.add_column(
        "delegations",
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.add_column("delegations", sa.Column("ended_by", sa.String(length=64)))
    op.add_column("delegations", sa.Column("start_told_at", sa.DateTime(timezone=True)))
    op.add_column("delegations", sa.Column("end_told_at", sa.DateTime(timezone=True)))
    op.add_column("delegations", sa.Column("idempotency_key", sa.String(length=200)))
    op.create_unique_constraint(
        op.f("uq_delegations_created_by_idempotency_key"),
        "delegations",
        ["created_by", "idempotency_key"],
    )
    op.execute("UPDATE delegations SET start_told_at = now(), end_told_at = now()")
    op.create_index(
        "ix_delegations_untold",
        "delegations",
        ["id"],
        unique=False,
        postgresql_where=sa.text("start_told_at IS NULL OR end_told_at IS NULL"),
    )
    op.create_table(
        "delegation_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("delegation_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["delegation_id"],
            ["delegations.id"],
            name=op.f("fk_delegation_events_delegation_id_delegations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegation_events")),
    )
    op.create_index(
        op.f("ix_delegation_events_delegation_id"),
        "delegation_events",
        ["delegation_id"],
        unique=False,
    )
    # Append-only, as ``events`` (the function comes from the first migration).
    op.execute(
        "CREATE TRIGGER delegation_events_append_only BEFORE UPDATE OR DELETE"
        " ON delegation_events FOR EACH ROW EXECUTE FUNCTION events_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER delegation_events_append_only ON delegation_events")
    op.drop_index(op.f("ix_delegation_events_delegation_id"), table_name="delegation_events")
    op.drop_table("delegation_events")
    op.drop_index("ix_delegations_untold", table_name="delegations")
    op.drop_constraint(
        op.f("uq_delegations_created_by_idempotency_key"), "delegations", type_="unique"
    )
    for column in (
        "idempotency_key",
        "end_told_at",
        "start_told_at",
        "ended_by",
        "created_at",
        "created_by",
        "source",
        "request_types",
    ):
        op.drop_column("delegations", column)
