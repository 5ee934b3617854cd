"""Indexes for who may see a request: each way in, led by the person, with the request id.

``db.request_queries`` finds the requests someone takes part in as a union of index
lookups (requester, assigned, acted for by a delegate, acted, told), and tests one
request by probing the same indexes with its id. Each index holds the request id, so
both read the index alone. The events' indexes leave out ``ignored`` rows (an invalid
signal grants nothing), the delegates' ones the rows without a delegate.
``ix_requests_requester_id`` and ``ix_assignments_user_request`` replace
``ix_requests_requester`` and ``ix_assignments_user_id``, which they start with.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_requests_requester_id", "requests", ["requester", "id"], unique=False)
    op.drop_index("ix_requests_requester", table_name="requests")
    op.create_index(
        "ix_assignments_user_request", "assignments", ["user_id", "request_id"], unique=False
    )
    op.drop_index("ix_assignments_user_id", table_name="assignments")
    op.create_index(
        "ix_assignments_on_behalf_request",
        "assignments",
        ["on_behalf_of", "request_id"],
        unique=False,
        postgresql_where=sa.text("on_behalf_of IS NOT NULL"),
    )
    op.create_index(
        "ix_events_actor_request",
        "events",
        ["actor", "request_id"],
        unique=False,
        postgresql_where=sa.text("kind <> 'ignored'"),
    )
    op.create_index(
        "ix_events_on_behalf_request",
        "events",
        ["on_behalf_of", "request_id"],
        unique=False,
        postgresql_where=sa.text("on_behalf_of IS NOT NULL AND kind <> 'ignored'"),
    )
    op.create_index(
        "ix_notifications_recipient_request",
        "notifications",
        ["recipient", "request_id"],
        unique=False,
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_recipient_request", table_name="notifications")
    op.drop_index("ix_events_on_behalf_request", table_name="events")
    op.drop_index("ix_events_actor_request", table_name="events")
    op.drop_index("ix_assignments_on_behalf_request", table_name="assignments")
    op.create_index("ix_assignments_user_id", "assignments", ["user_id"], unique=False)
    op.drop_index("ix_assignments_user_request", table_name="assignments")
    op.create_index("ix_requests_requester", "requests", ["requester"], unique=False)
    op.drop_index("ix_requests_requester_id", table_name="requests")
