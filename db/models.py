"""The read-model, the audit trail, the notifications outbox and the directory.

Temporal holds the process; these tables are what people and reports read.
``events`` is append-only: a database trigger (see the first migration) refuses
UPDATE and DELETE on it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

MONEY = Numeric(18, 2)


class RequestRow(Base):
    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    requester: Mapped[str] = mapped_column(String(64))
    customer: Mapped[str | None] = mapped_column(String(200), index=True)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    policy_type: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    route: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(64), index=True)
    stage_index: Mapped[int | None] = mapped_column(Integer)
    stage_key: Mapped[str | None] = mapped_column(String(64))
    resolve_due: Mapped[datetime | None]
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    current_approvers: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    view: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None]
    stuck_since: Mapped[datetime | None]
    """Set while the workflow cannot write a transition (see ``stuck_reason``)."""
    stuck_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("requester", "idempotency_key"),
        Index("ix_requests_created_id", "created_at", "id"),
        # A requester's requests; with the id, who may see which request reads the
        # index alone and stops at the count it needs (db.request_queries, 0017).
        Index("ix_requests_requester_id", "requester", "id"),
        # The metrics' counts (common/metrics.py): open requests by status, stuck ones.
        Index("ix_requests_open_status", "status", postgresql_where=text("closed_at IS NULL")),
        Index(
            "ix_requests_stuck_since",
            "stuck_since",
            postgresql_where=text("stuck_since IS NOT NULL"),
        ),
        # The SLA report (db.sla): requests of a type submitted in a period; the oldest open.
        Index("ix_requests_type_created", "type", "created_at"),
        Index("ix_requests_open_created", "created_at", postgresql_where=text("closed_at IS NULL")),
    )


class AssignmentRow(Base):
    """Who may act on which stage of which request: powers the inbox."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    stage_index: Mapped[int] = mapped_column(Integer)
    stage_key: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(64))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    eligible_since: Mapped[datetime]
    due: Mapped[datetime | None]
    acted: Mapped[bool] = mapped_column(Boolean, default=False)
    pending: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    __table_args__ = (
        UniqueConstraint("request_id", "stage_index", "slot", "user_id"),
        # The inbox, a page at a time in urgency order (db.request_queries.inbox).
        Index(
            "ix_assignments_inbox",
            "user_id",
            text("coalesce(due, 'infinity'::timestamp with time zone)"),
            "eligible_since",
            "id",
            postgresql_where=text("pending"),
        ),
        # Who may see which request (db.request_queries._visible_ids): one lookup per
        # way in, each reading only its index (migration 0017).
        Index("ix_assignments_user_request", "user_id", "request_id"),
        Index(
            "ix_assignments_on_behalf_request",
            "on_behalf_of",
            "request_id",
            postgresql_where=text("on_behalf_of IS NOT NULL"),
        ),
    )


class EventRow(Base):
    """The audit trail. Append-only."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    __table_args__ = (
        UniqueConstraint("request_id", "seq"),
        # Who may see which request: whoever acted, or was acted for; an invalid
        # signal (``ignored``) grants nothing (db.request_queries._visible_ids).
        Index(
            "ix_events_actor_request",
            "actor",
            "request_id",
            postgresql_where=text("kind <> 'ignored'"),
        ),
        Index(
            "ix_events_on_behalf_request",
            "on_behalf_of",
            "request_id",
            postgresql_where=text("on_behalf_of IS NOT NULL AND kind <> 'ignored'"),
        ),
    )


class NotificationRow(Base):
    """The outbox: the in-app inbox today, mail/webhook channels later."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="inbox")
    template: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None]
    """When the recipient marked it read in the app; unread while null."""
    fanned_out_at: Mapped[datetime | None]
    """Set once the dispatcher has planned this notice's deliveries (see ``deliveries``)."""

    __table_args__ = (
        # GET /v1/notifications: mine, newest first, a page at a time.
        Index("ix_notifications_recipient_created_id", "recipient", "created_at", "id"),
        # Who may see which request: whoever was told of it (db.request_queries).
        Index(
            "ix_notifications_recipient_request",
            "recipient",
            "request_id",
            postgresql_where=text("request_id IS NOT NULL"),
        ),
        Index(
            "ix_notifications_not_fanned_out", "id", postgresql_where=text("fanned_out_at IS NULL")
        ),
    )


class UsedActionLinkRow(Base):
    """An action link that was used: a link acts once (see ``domain.action_links``)."""

    __tablename__ = "used_action_links"

    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(64))
    stage_index: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DeliveryRow(Base):
    """One notice on one outside channel (e-mail, a webhook subscriber, a group robot).

    The dispatcher (``workflows/delivery.py``) claims due rows and sends each
    with ``dedupe_id`` (the e-mail's Message-ID, the webhook's ``webhook-id``),
    so a send repeated after a crash is one message to the receiver.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(300), default="")
    """The address, the webhook subscriber's name or the robot, as planned."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    dedupe_id: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    claimed_by: Mapped[int | None] = mapped_column(Integer)
    """The deliverer process whose lease ``next_attempt_at`` is (its advisory lock's id;
    see ``db.deliveries.reclaim_orphans``); None when not claimed, or by an old pass."""

    __table_args__ = (
        UniqueConstraint("notification_id", "channel", "target"),
        Index(
            "ix_deliveries_due",
            "channel",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_status_id", "status", "id"),
        Index(
            "ix_deliveries_finished_created",
            "created_at",
            "id",
            postgresql_where=text("status IN ('sent', 'skipped')"),
        ),
        Index(
            "ix_deliveries_claimed_by",
            "claimed_by",
            postgresql_where=text("status = 'pending' AND claimed_by IS NOT NULL"),
        ),
    )


class UserPreferenceRow(Base):
    """How a user wants to hear of notices: channels, locale, time zone (NULL: the default).

    ``user_fields`` names the values the user chose themselves (``PUT`` sets all
    three, ``PATCH /v1/me/preferences`` the ones it carries); the others come from
    the org file, which a reload rewrites, never touching the user's own. ``source``
    is ``user`` once the user chose any value, ``org`` while all come from the org file.
    """

    __tablename__ = "user_preferences"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    locale: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8), default="org")
    user_fields: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), default=list, server_default="{}"
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoleRow(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class UserRoleRow(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(ForeignKey("roles.name"), primary_key=True)


class DelegationRow(Base):
    """A written authorisation: ``to_user`` may act for ``from_user`` in a period."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    from_user: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    to_user: Mapped[str] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    """Exclusive; ending one early sets it to the moment it was ended."""
    reason: Mapped[str] = mapped_column(Text, default="")
    request_types: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    """The request types it covers; null for all."""
    source: Mapped[str] = mapped_column(String(8), default="org", server_default="org")
    """``org`` (the org file's load owns it) or ``api`` (made through ``/v1/.../delegations``)."""
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ended_by: Mapped[str | None] = mapped_column(String(64))
    """Who ended it before its time (null: it runs to ``ends_at`` as set)."""
    start_told_at: Mapped[datetime | None]
    """When the open requests of ``from_user`` were told it started (see
    :mod:`activities.delegations`); null while nobody was."""
    end_told_at: Mapped[datetime | None]
    """When they were told it ended."""
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    """The ``Idempotency-Key`` it was made under (per author)."""

    __table_args__ = (
        UniqueConstraint("created_by", "idempotency_key"),
        Index(
            "ix_delegations_untold",
            "id",
            postgresql_where=text("start_told_at IS NULL OR end_told_at IS NULL"),
        ),
    )


class DelegationEventRow(Base):
    """The audit trail of delegations made or ended through the API. Append-only."""

    __tablename__ = "delegation_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class PayoutRow(Base):
    """A payment instruction to finance, made once per idempotency key."""

    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    beneficiary: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="instructed")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ActionKeyRow(Base):
    """An ``Idempotency-Key`` of an action, scoped to its caller and request.

    The same caller sending the same key and body again gets the same update
    (``update_id``); another body under the same key is a conflict; another
    caller's key never touches this one.
    """

    __tablename__ = "action_keys"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    body_hash: Mapped[str] = mapped_column(String(64))
    update_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AttachmentRow(Base):
    """An uploaded file (submission, decision or comment), its bytes in ``content``.

    Unattached (``request_id`` null) until a message names it; the workflow carries only
    its id and ``sha256``. An upload left unattached for a day is deleted
    (:func:`db.attachments.delete_stale`).
    """

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    uploader: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    attached_as: Mapped[str | None] = mapped_column(String(16))
    """``submission``, ``decision`` or ``comment``."""
    claim: Mapped[str | None] = mapped_column(String(300))
    """What attached it (the caller's Idempotency-Key, or a one-off): the same call
    retried finds it attached to itself."""
    attached_at: Mapped[datetime | None]


class WebSessionRow(Base):
    """A browser's sign-in through the company identity provider (``approvals_session``).

    The cookie holds a random token; only its SHA-256 is stored, so a copy of this
    table signs no one in. Deleted at sign-out; an expired one is refused and removed.
    """

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    """Sent back in ``X-CSRF-Token`` on every state-changing request the session makes."""
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)


_STEP_FIGURES = ("reply_due", "decided_at", "status", "escalations", "decide_seconds")
# Whole seconds from a step's start to its decision, kept by PostgreSQL itself: the
# report sorts integers for its percentiles (faster than floats; migration 0014).
DECIDE_SECONDS = "(date_part('epoch', decided_at - started_at))::integer"


class RequestStepRow(Base):
    """One stage of one request as the SLA report reads it (see :mod:`db.sla`).

    Written with the read-model from the workflow's view (its latest run of the stage:
    a stage started again after a send-back replaces the earlier run). ``reply_due`` is
    the instant the stage's reply is due, already counted in working time where the
    policy counts it, so comparing instants respects working time.
    """

    __tablename__ = "request_steps"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    stage_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage_key: Mapped[str] = mapped_column(String(64))
    request_type: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    reply_due: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    """When the stage was approved, rejected or returned; null while open or if closed undecided."""
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    decide_seconds: Mapped[int | None] = mapped_column(
        Integer, Computed(DECIDE_SECONDS, persisted=True)
    )
    """Whole seconds from ``started_at`` to ``decided_at`` (null while undecided)."""

    __table_args__ = (
        # The report (db.sla) reads only these covering indexes: by type and stage in
        # group order, and by start (a week at a time).
        Index(
            "ix_request_steps_type_stage",
            "request_type",
            "stage_key",
            "started_at",
            postgresql_include=[*_STEP_FIGURES, "stage_index", "requester"],
        ),
        Index(
            "ix_request_steps_started",
            "started_at",
            postgresql_include=[*_STEP_FIGURES, "request_type", "requester"],
        ),
    )
