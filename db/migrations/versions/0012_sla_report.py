"""The SLA report: a row per stage of each request, and indexes for its queries.

``request_steps`` holds each request's stages (start, reply due, decision,
escalations) in columns, so the report (db/sla.py) reads a narrow indexed table
instead of every request's JSON view; it is backfilled here from ``requests.view``
and kept current by the activity that writes the read-model.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A decided stage's decision time: the last slot decision, else when the request last
# moved (a rejection decides no slot).
_BACKFILL = """
INSERT INTO request_steps (request_id, stage_index, stage_key, request_type, requester,
                           status, started_at, reply_due, decided_at, escalations)
SELECT r.id, (s->>'index')::int, s->>'key', r.type, r.requester, s->>'status',
       (s->>'started_at')::timestamptz, (s->>'reply_due')::timestamptz,
       CASE WHEN s->>'status' IN ('approved', 'rejected', 'returned') THEN coalesce(
           (SELECT max((sl->>'decided_at')::timestamptz)
              FROM jsonb_array_elements(coalesce(s->'slots', '[]'::jsonb)) sl),
           r.closed_at, r.updated_at) END,
       coalesce((s->>'escalations')::int, 0)
  FROM requests r, jsonb_array_elements(coalesce(r.view->'stages', '[]'::jsonb)) s
 WHERE r.view IS NOT NULL AND s->>'started_at' IS NOT NULL
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    op.create_table(
        "request_steps",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("stage_key", sa.String(length=64), nullable=False),
        sa.Column("request_type", sa.String(length=64), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_steps_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "stage_index", name=op.f("pk_request_steps")),
    )
    # Covering: the report's queries read these alone (index-only scans), in the order
    # they group by, so nothing sorts the period's steps (db/sla.py).
    figures = ["reply_due", "decided_at", "status", "escalations"]
    op.create_index(
        "ix_request_steps_type_stage",
        "request_steps",
        ["request_type", "stage_key", "started_at"],
        unique=False,
        postgresql_include=[*figures, "stage_index", "requester"],
    )
    op.create_index(
        "ix_request_steps_started",
        "request_steps",
        ["started_at"],
        unique=False,
        postgresql_include=[*figures, "request_type", "requester"],
    )
    # The report's request-level figures: requests submitted in a period, by type.
    op.create_index("ix_requests_type_created", "requests", ["type", "created_at"], unique=False)
    # The slowest open requests: the oldest open ones first.
    op.create_index(
        "ix_requests_open_created",
        "requests",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_requests_open_created", table_name="requests")
    op.drop_index("ix_requests_type_created", table_name="requests")
    op.drop_index("ix_request_steps_started", table_name="request_steps")
    op.drop_index("ix_request_steps_type_stage", table_name="request_steps")
    op.drop_table("request_steps")
