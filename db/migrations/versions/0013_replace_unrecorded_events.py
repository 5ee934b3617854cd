"""The audit trail may correct a transition Temporal never recorded.

A transition is written by a local activity, inside the workflow task that made it.
If the worker dies after that write and before the task completes, Temporal runs the
task again later: with a later clock (``workflow.now()``), and perhaps with messages
that arrived meanwhile. The first write then describes a transition that is in no
workflow history. The chaos drill (``make chaos``) found such rows: an audit row and a
request row ten seconds earlier than the workflow's own.

``events`` stays append-only (no DELETE, no TRUNCATE, no UPDATE), except for an UPDATE
that keeps the row's request and sequence number inside a transaction that set
``approvals.replace_unrecorded`` (``db.read_model.replace_unrecorded`` does, and only
for a stored event that differs from the one the workflow records at the same
sequence number: a task Temporal recorded replays identically).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CORRECTABLE = """
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'events'
       AND current_setting('approvals.replace_unrecorded', true) = 'on'
       AND NEW.request_id = OLD.request_id AND NEW.seq = OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events is an append-only audit trail: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'record a new event instead of changing an old one';
END;
$$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is an append-only audit trail: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'record a new event instead of changing an old one';
END;
$$
"""


def upgrade() -> None:
    op.execute(CORRECTABLE)


def downgrade() -> None:
    op.execute(APPEND_ONLY)
