"""The approval process's types: workflow input, state/view, messages, activity payloads.

One typed argument per workflow, update, signal and activity, so a field can be
added without breaking callers or running requests.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.inbound import (
    Comment,
    FormFields,
    Id,
    Money,
    OptionalShortText,
    RequiredComment,
    StageRef,
)
from domain.policy import AddMode, AddPosition, ApproverSpec, Policy, SendBackResume, StageMode
from domain.routing import Route
from domain.signing import Proof
from domain.text import Language


class Frozen(BaseModel):
    """A value: never changed in place; a change is a new value (``model_copy(update=)``)."""

    model_config = ConfigDict(frozen=True)


class Status(StrEnum):
    SUBMITTED = "submitted"  # in the read-model only, before the workflow has run
    IN_REVIEW = "in_review"
    RETURNED = "returned"
    APPROVED = "approved"
    AWAITING = "awaiting"  # shown as awaiting_<milestone>
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"
    EXPIRED = "expired"
    WATCHING = "watching"  # before review: a ladder of notices, waiting for a settling payment
    AWAITING_PAYOUT = "awaiting_payout"  # approved and paid: the payout waits for its window
    ACTIVE = "active"  # approved and in force until the next periodic re-evaluation
    TERMINATED = "terminated"  # its workflow was ended outside the process (e.g. terminated)
    REVOKED = "revoked"  # approved, then revoked (撤销) by its requester or an administrator


TERMINAL = frozenset(
    {
        Status.COMPLETED,
        Status.REJECTED,
        Status.WITHDRAWN,
        Status.LAPSED,
        Status.EXPIRED,
        Status.TERMINATED,
        Status.REVOKED,
    }
)
"""Statuses that end the workflow. ``approved`` is terminal only without milestones."""


def awaiting(milestone: str) -> str:
    return f"awaiting_{milestone}"


AwaitingLabel = Annotated[str, StringConstraints(pattern=r"^awaiting_[A-Za-z0-9_]+$")]
"""``awaiting_<milestone>``: an approved request waiting for that milestone."""

StatusLabel = Status | AwaitingLabel
"""A request's status as people and the API see it: a :class:`Status` value, or
``awaiting_<milestone>`` while a milestone is open (the milestones are the policy's)."""


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    ASSIGNED = "assigned"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    WITHDRAWN = "withdrawn"
    TRANSFERRED = "transferred"
    REMINDED = "reminded"
    ESCALATED = "escalated"
    OVERDUE = "overdue"
    STAGE_COMPLETED = "stage_completed"
    REQUEST_APPROVED = "request_approved"
    MILESTONE_OPENED = "milestone_opened"
    MILESTONE = "milestone"
    MILESTONE_MET = "milestone_met"
    MILESTONE_REMINDED = "milestone_reminded"
    LAPSED = "lapsed"
    COMPLETED = "completed"
    EXPIRED = "expired"
    IGNORED = "ignored"  # an invalid signal, recorded and otherwise ignored
    CC = "cc"  # people copied at submission
    PAYOUT_SCHEDULED = "payout_scheduled"
    PAID_OUT = "paid_out"
    REVIEW_STARTED = "review_started"
    IN_FORCE = "in_force"
    WATCH_NOTICE = "watch_notice"
    SETTLED = "settled"
    REASSIGNED = "reassigned"  # people who left the directory were taken off a step
    TERMINATED = "terminated"  # reconciled: the workflow was ended outside the process
    SENT_BACK = (
        "sent_back"  # an approver sent the request back to an earlier stage or its requester
    )
    AUTO_APPROVED = "auto_approved"  # a step approved by the policy's resolution options
    APPROVERS_ADDED = "approvers_added"  # 加签: a current approver added people to the stage
    CC_ADDED = "cc_added"  # 抄送: people copied in while the request runs
    REVOKED = "revoked"  # the approval was revoked (撤销): the request closed
    REVOKE_WINDOW_CLOSED = "revoke_window_closed"  # an approval can no longer be revoked
    URGED = "urged"  # 催办: the requester urged the current approvers of the open stage
    DELEGATES_CHANGED = "delegates_changed"  # a delegation started or ended: the step follows
    COMMENTED = "commented"  # a participant commented (评论), maybe mentioning people


SYSTEM = "system"
"""The actor of transitions made by timers."""


class Via(StrEnum):
    """Why a person may act for a slot (besides ``role:<name>``: they hold the role)."""

    MANAGER = "manager"
    USER = "user"
    DELEGATION = "delegation"
    FALLBACK = "fallback"  # nobody named: the requester's manager, or an administrator
    ESCALATION = "escalation"
    REASSIGNMENT = "reassignment"  # stepped in for someone who left the directory
    TRANSFER = "transfer"
    ADDED = "added"  # added to the stage by one of its approvers (加签)
    ADMIN = "admin"  # moved onto the step by an administrator (reassign)


RoleVia = Annotated[str, StringConstraints(pattern=r"^role:.+$")]
"""``role:<name>``: they hold the role the policy names."""

ActorVia = Via | RoleVia


def via_role(role: str) -> str:
    return f"role:{role}"


class Actor(Frozen):
    """A person who may act for a slot, and why."""

    user: str
    via: ActorVia
    on_behalf_of: str | None = None
    since: datetime


class StageStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    CLOSED = "closed"


class MilestoneStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    MET = "met"
    LAPSED = "lapsed"
    CLOSED = "closed"
    REVOKED = "revoked"  # the approval was revoked before it was met


class SlotView(BaseModel):
    """One decision a stage needs. ``any`` stages have one slot, ``all`` one per approver."""

    label: str
    actors: list[Actor] = Field(default_factory=list)
    decision: Literal["approve"] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    automatic: str | None = None
    """Approved automatically, and why (the policy's ``resolution`` options)."""
    added_by: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """Set on a slot a current approver added (加签): who added it."""
    added_as: AddPosition | None = Field(default=None, exclude_if=lambda v: v is None)
    queued: list[Actor] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Who decides this slot once the slots it waits for are approved (their turn)."""
    waits_for: list[int] = Field(default_factory=list, exclude_if=lambda v: not v)
    """The positions (in the stage's slots) that must be approved before this one opens."""

    def may_act(self, user: str) -> bool:
        return any(a.user == user for a in self.actors)


class Slot(Frozen):
    """A slot as the process keeps it: with whom the next escalation starts from."""

    label: str
    actors: tuple[Actor, ...] = ()
    decision: Literal["approve"] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    escalation_frontier: tuple[str, ...] = ()
    """Whom the next reply-timeout escalates from: the last people added."""
    automatic: str | None = None
    """Approved automatically, and why (the policy's ``resolution`` options)."""
    added_by: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """Set on a slot a current approver added (加签): who added it. Such a slot must be
    approved whatever the stage's mode."""
    added_as: AddPosition | None = Field(default=None, exclude_if=lambda v: v is None)
    queued: tuple[Actor, ...] = Field(default=(), exclude_if=lambda v: not v)
    """Who decides this slot once the slots it :attr:`waits_for` are approved: the
    people added after the adder or in turn, or the adder held while those added
    before them decide. A slot with people queued is held: nobody acts on it."""
    waits_for: tuple[int, ...] = Field(default=(), exclude_if=lambda v: not v)
    """Positions of the stage's slots that must be approved before this one opens."""

    def may_act(self, user: str) -> bool:
        return any(a.user == user for a in self.actors)

    @property
    def waiting(self) -> bool:
        """Undecided and open: its actors may decide it now (reminders, escalation)."""
        return self.decision is None and not self.queued


class SupersededDecision(Frozen):
    """A decision that no longer counts: its stage was sent back over and decides again.

    Kept (never deleted) on its stage, with when and by whose send-back it stopped
    counting.
    """

    label: str
    """The slot it was made for."""
    decision: Literal["approve"]
    decided_by: str
    decided_at: datetime | None = None
    superseded_at: datetime
    superseded_by: str
    """Who sent the request back (or resubmitted it onto another route)."""
    event_seq: int
    """The audit event that superseded it (``sent_back``, or ``resubmitted``)."""


class StageView(BaseModel):
    index: int
    key: str
    name: str
    mode: StageMode
    reason: str
    approvers: tuple[ApproverSpec, ...]
    status: StageStatus = StageStatus.PENDING
    slots: list[SlotView] = Field(default_factory=list)
    started_at: datetime | None = None
    reply_due: datetime | None = None
    escalations: int = 0
    superseded: list[SupersededDecision] = Field(default_factory=list)
    """Decisions of this stage made before a send-back over it: shown, no longer counted."""


class StageState(Frozen):
    """A stage as the process keeps it (its slots carry escalation frontiers)."""

    index: int
    key: str
    name: str
    mode: StageMode
    reason: str
    approvers: tuple[ApproverSpec, ...]
    status: StageStatus = StageStatus.PENDING
    slots: tuple[Slot, ...] = ()
    started_at: datetime | None = None
    reply_due: datetime | None = None
    escalations: int = 0
    superseded: tuple[SupersededDecision, ...] = ()
    """Decisions of this stage made before a send-back over it: kept, no longer counted."""


def stages_of(route: Route) -> tuple[StageState, ...]:
    """The route's stages as (not yet started) stage states."""
    return tuple(
        StageState(
            index=i, key=s.key, name=s.name, mode=s.mode, reason=s.reason, approvers=s.approvers
        )
        for i, s in enumerate(route.stages)
    )


def stage_views_of(route: Route) -> list[StageView]:
    """The route's stages as people see them before any has started."""
    return [
        StageView(
            index=i, key=s.key, name=s.name, mode=s.mode, reason=s.reason, approvers=s.approvers
        )
        for i, s in enumerate(route.stages)
    ]


class Payment(Frozen):
    amount: Decimal | None
    reference: str
    by: str
    at: datetime


class Reversal(Frozen):
    """A payment recorded before the approval was revoked: it stays, and needs reversing."""

    milestone: str
    amount: Decimal | None
    reference: str
    by: str
    at: datetime


class MilestoneState(Frozen):
    name: str
    title: str
    required: Decimal | None
    paid: Decimal = Decimal(0)
    status: MilestoneStatus = MilestoneStatus.PENDING
    opened_at: datetime | None = None
    due: datetime | None = None
    reminded: bool = False
    payments: tuple[Payment, ...] = ()


class PayoutState(Frozen):
    title: str
    amount: Decimal | None
    window_opens: datetime | None = None
    paid_at: datetime | None = None
    reference: str | None = None


class WatchState(Frozen):
    anchor: datetime
    next_step: int = 0
    next_at: datetime | None = None
    review_at: datetime


class StuckState(Frozen):
    """A transition that could not be written yet, and why."""

    since: datetime
    reason: str
    attempts: int


class SentBack(Frozen):
    """A send-back (退回): who sent the request from which stage to which, and when."""

    by: str
    at: datetime
    event_seq: int
    """Its ``sent_back`` audit event."""
    from_stage: int
    from_key: str
    to_stage: int | None
    """The stage sent back to (its index); None: the requester."""
    to_key: str | None
    resume: SendBackResume
    """What follows the new decision (or resubmission): the route runs again from
    there, or jumps straight back to ``from_stage``."""


class DueNote(Frozen):
    """How a deadline counted in working time was computed (the instant is beside it)."""

    at: datetime
    span: str
    """The policy's length, for people: ``4 working hours``, ``3 working days``."""
    provisional: bool = False
    """The count crossed a year whose official holiday schedule was not known yet."""


DueKind = Literal["reply", "resolve", "resubmit", "milestone"]


class UrgeState(Frozen):
    """The latest urge (催办): by whom, when, on which round of which stage, whom it reached."""

    at: datetime
    by: str
    stage: int
    """The stage's index."""
    round: datetime | None
    """The stage's round urged (its ``started_at``): a stage passed again is a new round."""
    people: tuple[str, ...] = ()
    next_at: datetime
    """The first instant the same round may be urged again (the policy's ``urge`` interval)."""


class AttachmentRef(Frozen):
    """An uploaded file as a message carries it: its id and the SHA-256 of its bytes.

    Never its content, nor its name: the bytes stay in PostgreSQL (``attachments``)."""

    id: Id
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class HistoryEvent(Frozen):
    seq: int
    at: datetime
    kind: EventKind
    actor: str
    on_behalf_of: str | None = None
    comment: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class RequestView(BaseModel):
    """Everything about one request people may see: the API's answer and the read-model."""

    id: str
    type: str
    title: str
    requester: str
    customer: str | None
    amount: Decimal | None
    fields: dict[str, Any]
    comment: str | None = None
    policy_type: str
    policy_version: int
    status: StatusLabel
    """A :class:`Status` value, or ``awaiting_<milestone>`` while a milestone is open."""
    stage_index: int | None = None
    stages: list[StageView] = Field(default_factory=list)
    milestones: list[MilestoneState] = Field(default_factory=list)
    submitted_at: datetime
    resolve_due: datetime | None = None
    resubmit_due: datetime | None = None
    overdue: bool = False
    closed_at: datetime | None = None
    current_approvers: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    payout: PayoutState | None = None
    review_cycle: int = 0
    next_review: datetime | None = None
    watch: WatchState | None = None
    stuck: StuckState | None = None
    """Set while a transition cannot be written; the workflow retries until it can."""
    working_time: dict[DueKind, DueNote] = Field(default_factory=dict)
    """The current deadlines counted in working time on the business calendar: the reply
    (active stage), resolve, resubmit and milestone (open milestone) deadlines whose
    instant is the one beside them in this view. Absent kinds count calendar time."""
    provisional: bool = False
    """A current deadline was computed without the official holiday schedule of a year
    it crosses (weekends, statutory dates and the company's overrides only)."""
    revocable_until: datetime | None = None
    """Until when the approval may be revoked (the policy's ``revoke`` window from the
    approval); None when its policy sets no window or it was never approved."""
    to_reverse: list[Reversal] = Field(default_factory=list)
    """Payments recorded before the approval was revoked: they stay, and need reversing."""
    history: list[HistoryEvent] = Field(default_factory=list)
    sent_back: SentBack | None = None
    """The latest send-back of this request, if it was ever sent back."""
    urges: int = Field(default=0, exclude_if=lambda v: v == 0)
    """How often the requester urged (催办) the approvers of this request."""
    last_urge: UrgeState | None = Field(default=None, exclude_if=lambda v: v is None)
    """The latest urge, and when the same stage may be urged again."""
    type_title: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """The request type's title in the reader's language (set by the API, never stored)."""
    field_labels: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """Each form field's label in the reader's language (set by the API, never stored),
    so pages show ``合同编号`` / ``Contract number`` and not ``contract_no``."""
    field_units: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """The unit of each form field that has one (``天``, ``%``), in the reader's language
    (set by the API, never stored), shown after the value."""
    amount_label: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """The amount's label in the reader's language (set by the API, never stored)."""
    version: int = 0
    """The request's version: the sequence number of its last recorded transition. A
    decision may name the version its maker saw (``version_seen``): if the request has
    changed since, it is refused rather than decided blind."""
    comments: int = Field(default=0, exclude_if=lambda v: v == 0)
    """How many comments (评论) the request has (in its history as ``commented``)."""


_AWAITING_PREFIX = "awaiting_"
_STATUS_VALUES = frozenset(s.value for s in Status)


class RequestState(Frozen):
    """One request as its process keeps it: a value, never changed in place.

    The process's rules (:mod:`domain.core`) map a state and an input to the next
    state; people see it through :func:`domain.core.projection.view_of`. The field
    names are those of the state carried over continue-as-new by earlier runs
    (a ``RequestView`` with internal fields), so that state still reads.
    """

    id: str
    type: str
    title: str
    requester: str
    customer: str | None
    amount: Decimal | None
    fields: dict[str, Any]
    comment: str | None = None
    policy_type: str
    policy_version: int
    status: Status
    awaiting: str | None = None
    """The milestone the request awaits, while :attr:`status` is ``AWAITING``."""
    stage_index: int | None = None
    stages: tuple[StageState, ...] = ()
    milestones: tuple[MilestoneState, ...] = ()
    submitted_at: datetime
    resolve_due: datetime | None = None
    resubmit_due: datetime | None = None
    overdue: bool = False
    closed_at: datetime | None = None
    """Set when the request closes: nothing changes it any more."""
    cc: tuple[str, ...] = ()
    payout: PayoutState | None = None
    review_cycle: int = 0
    next_review: datetime | None = None
    watch: WatchState | None = None
    stuck: StuckState | None = None
    """Set while a transition cannot be written; the workflow retries until it can."""
    working_time: dict[DueKind, DueNote] = Field(default_factory=dict)
    """How the deadlines counted in working time were computed (a note per kind)."""
    revocable_until: datetime | None = None
    """Until when the approval may be revoked; set at approval by a policy with ``revoke``."""
    to_reverse: tuple[Reversal, ...] = ()
    """Payments recorded before the approval was revoked (they need reversing)."""
    history: tuple[HistoryEvent, ...] = ()
    """The transitions of this run (a continued run starts with the last few)."""
    seq: int = 0
    """The sequence number of the last transition."""
    resolve_fired: bool = False
    continue_requested: bool = False
    """The process asks for a fresh run once idle (each credit-line cycle)."""
    nonces: dict[str, datetime] = Field(default_factory=dict)
    """Proof nonces seen within :data:`domain.signing.MAX_AGE`: each proof is single-use."""
    applied: dict[str, AppliedUpdate] = Field(default_factory=dict)
    """Update ids already handled, with their outcome. Temporal answers a repeated update
    id with the first outcome only within one run; this carries that promise over, so
    a payment retried under its Idempotency-Key is never counted twice."""
    sent_back: SentBack | None = None
    """The latest send-back of this request, if it was ever sent back."""
    return_to: tuple[int, ...] = ()
    """Stages that sent the request back under ``jump_back``, the latest last: once the
    stage (or the requester) sent back to has decided again, the route jumps to the
    last of them instead of running on."""
    urges: int = Field(default=0, exclude_if=lambda v: v == 0)
    """How often the requester urged (催办) the approvers (every stage, every round)."""
    last_urge: UrgeState | None = Field(default=None, exclude_if=lambda v: v is None)
    """The latest urge: the policy's interval counts from it, on its round of its stage."""
    comments: int = Field(default=0, exclude_if=lambda v: v == 0)
    """How many comments (评论) the request has had."""
    submitted_files: tuple[AttachmentRef, ...] = Field(default=(), exclude_if=lambda v: not v)
    """The files submitted with the request (ids and hashes), for its ``submitted`` event."""

    @model_validator(mode="before")
    @classmethod
    def _split_awaiting(cls, data: Any) -> Any:
        # State carried by runs before ``awaiting`` existed says "awaiting_<milestone>".
        if isinstance(data, dict):
            status = data.get("status")
            if (
                isinstance(status, str)
                and status.startswith(_AWAITING_PREFIX)
                and status not in _STATUS_VALUES  # awaiting_payout is a status of its own
            ):
                data = {
                    **data,
                    "status": Status.AWAITING,
                    "awaiting": status[len(_AWAITING_PREFIX) :],
                }
        return data

    @property
    def label(self) -> str:
        """The status as people and the API see it (``awaiting_deposit``)."""
        if self.status is Status.AWAITING and self.awaiting:
            return awaiting(self.awaiting)
        return self.status.value

    @property
    def finished(self) -> bool:
        """Closed: the workflow ends once its handlers are done."""
        return self.closed_at is not None


class ApprovalInput(BaseModel):
    """The workflow's one argument: the request, its policy snapshot and its route."""

    request_id: str
    requester: str
    title: str
    customer: str | None = None
    amount: Money | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    # Plain str, not the inbound Comment: the API built this input from a checked
    # Submission, and the workflow decodes it again on every replay, so a rule
    # tightened later must not make a running request's own input undecodable.
    comment: str | None = None
    policy: Policy
    route: Route
    carried: Carried | None = None
    """Set only by continue-as-new: the state to resume from."""
    attachments: list[AttachmentRef] = Field(
        default_factory=list, max_length=20, exclude_if=lambda v: not v
    )
    """Files submitted with the request (ids and hashes); absent when none, so inputs
    without them read and replay as before."""
    operator_language: Language | None = Field(default=None, exclude_if=lambda v: v is None)
    """The language of the Temporal UI's current details (``APPROVALS_OPERATOR_LANGUAGE``);
    None, as in every input of before it, is English, so stored histories replay as they
    were. Set only when it is not English."""


class AppliedUpdate(Frozen):
    """How an update the process already handled ended: applied, or refused and why."""

    at: datetime
    code: str | None = None
    """The refusal's :class:`~domain.errors.ErrorCode` value; None when it was applied."""
    message: str | None = None


RequestState.model_rebuild()


class Carried(BaseModel):
    """What a continued-as-new run resumes from (the history lives in the audit table)."""

    state: RequestState

    @model_validator(mode="before")
    @classmethod
    def _from_view(cls, data: Any) -> Any:
        # Runs before RequestState carried {view, seq, resolve_fired, nonces, applied}.
        if isinstance(data, dict) and "state" not in data and "view" in data:
            view = data["view"]
            if isinstance(view, BaseModel):
                view = view.model_dump()
            extra = {k: data[k] for k in ("seq", "resolve_fired", "nonces", "applied") if k in data}
            data = {"state": {**view, **extra}}
        return data


# --- messages (updates and signals carry the same payloads) -----------------
# Every field is an inbound type (domain.inbound), so a payload sent straight to
# Temporal that PostgreSQL could not store is refused when it is decoded: an
# update is rejected, a signal is dropped by the SDK (logged), and neither
# reaches record_transition.


class DecideInput(BaseModel):
    actor: Id
    action: Literal["approve", "reject", "return"]
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""
    round_since: AwareDatetime | None = Field(default=None, exclude_if=lambda v: v is None)
    """The round of the actor's step this decision was made for (a decision link's):
    the instant they became eligible on it (:func:`domain.core.queries.step_round`).
    Set, the decision is refused if the step is of another round now. Absent, it is
    neither sent nor signed (:func:`domain.signing.payload_of`), so messages and stored
    histories of before it read, verify and replay as they did."""
    version_seen: int | None = Field(default=None, ge=0, exclude_if=lambda v: v is None)
    """The request's version (:attr:`RequestState.seq`) the decider saw. Set, the decision
    is refused (``version_conflict``) if the request changed since. Absent, neither sent
    nor signed, like ``round_since``."""
    bulk: bool = Field(default=False, exclude_if=lambda v: not v)
    """Made in bulk (``POST /v1/decisions/bulk``): refused on a stage whose policy forbids
    it, and recorded ``bulk: true``. False, neither sent nor signed."""
    attachments: list[AttachmentRef] = Field(
        default_factory=list, max_length=20, exclude_if=lambda v: not v
    )
    """Files attached to the decision (ids and hashes: the bytes stay in PostgreSQL). Left
    out of the payload when there are none, so a decision without them is signed, sent
    and replayed exactly as before the field existed."""


class ResubmitInput(BaseModel):
    actor: Id
    amount: Money | None = None
    fields: FormFields | None = None
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class WithdrawInput(BaseModel):
    actor: Id
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class TransferInput(BaseModel):
    actor: Id
    to_user: Id
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class MilestoneInput(BaseModel):
    actor: Id
    milestone: Id
    amount: Money | None = None
    reference: OptionalShortText = ""
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class SendBackInput(BaseModel):
    """Send the request back to a stage it has passed, or to its requester (退回)."""

    actor: Id
    to_stage: StageRef
    """A stage key, a stage's index (from 0), or ``requester``."""
    comment: RequiredComment
    """Why: the stage sent back to (or the requester) reads it first."""
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class AddApproversInput(BaseModel):
    """加签: a current approver adds people to the active stage, with a reason."""

    actor: Id
    people: list[Id] = Field(min_length=1, max_length=20)
    position: AddPosition
    mode: AddMode = AddMode.ALL
    comment: Comment | None = None
    """Why (required: the process refuses an addition without one)."""
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class CcInput(BaseModel):
    """抄送: the requester or a current approver copies people in while the request runs."""

    actor: Id
    people: list[Id] = Field(min_length=1, max_length=50)
    comment: Comment | None = None
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class RevokeInput(BaseModel):
    """Take an approval back (撤销): its requester, or an administrator, with a reason."""

    actor: Id
    comment: RequiredComment
    """Why: required (a revoke undoes what the approvers decided, they are told why)."""
    as_admin: bool = False
    """The actor revokes as an administrator (the API sets it for an admin who is not the
    requester); the proof covers it, so only the API or a signed operator command can."""
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class UrgeInput(BaseModel):
    """催办: the requester urges the current approvers of the open stage to decide."""

    actor: Id
    comment: Comment | None = None
    """A word to the approvers (optional)."""
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class ReassignInput(BaseModel):
    """An administrator moves a pending step from one holder to another, with a reason.

    Only the API (for an administrator) or a signed operator command vouches for it:
    the proof covers it, so nobody else can send one that is believed."""

    actor: Id
    from_user: Id
    """Who holds the step now (an actor of an undecided slot of the open stage)."""
    to_user: Id
    """Who takes it over: an active user, not the requester (unless the policy lets the
    requester approve their own step)."""
    comment: RequiredComment
    """Why: both holders read it."""
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class CommentInput(BaseModel):
    """评论: someone who may read the request comments on it without deciding anything."""

    actor: Id
    comment: RequiredComment
    """The comment's text (the API's ``body``)."""
    mentions: list[Id] = Field(default_factory=list, max_length=20)
    """People told of the comment (@): each must be able to read the request."""
    attachments: list[AttachmentRef] = Field(
        default_factory=list, max_length=20, exclude_if=lambda v: not v
    )
    proof: Proof | None = None
    """Who vouches for ``actor``: see :mod:`domain.signing`."""


class DirectoryChangedInput(BaseModel):
    """A hint that people may have left the directory (sent by ``approvals load-org``).

    It proves nothing and needs no proof: the workflow asks the directory itself
    which of its current approvers are inactive and acts only on that answer.
    """

    users: list[str] = Field(default_factory=list, max_length=10_000)
    delegators: list[str] = Field(default_factory=list, max_length=10_000)
    """People whose delegations started or ended (sent by the API and the delegation
    pass): the open step's delegates are read again from the directory."""


# --- activity payloads -------------------------------------------------------


class VerifyProofInput(BaseModel):
    request_id: str
    message: str
    payload: dict[str, Any]
    proof: Proof | None


class VerifyProofOutput(BaseModel):
    reason: str | None
    """Why the proof fails; None when it vouches for the message."""


class MarkStuckInput(BaseModel):
    request_id: str
    stuck: StuckState


class DelegatesInput(BaseModel):
    principals: list[str]
    request_type: str
    at: datetime


class DelegatesOutput(BaseModel):
    delegates: dict[str, list[str]]
    """Principal -> their delegates in force at ``at`` for the type (active users only)."""


class InactiveUsersInput(BaseModel):
    users: list[str]


class InactiveUsersOutput(BaseModel):
    inactive: list[str]
    """Those of the users who are not active in the directory (unknown ones too)."""


class ResolveAssigneesInput(BaseModel):
    request_id: str
    requester: str
    stage_key: str
    mode: StageMode
    approvers: tuple[ApproverSpec, ...]
    at: datetime
    detail: bool = False
    """Also answer :class:`ResolveDetail`: asked only under a policy's ``resolution``
    options, so requests without them make the look-up they always made."""
    request_type: str | None = None
    """The request's type: delegations scoped to other types do not count (None: all
    count, as for a look-up scheduled before delegations had a scope)."""
    fallback_role: str | None = None


class ResolveDetail(BaseModel):
    """What the directory says of a stage before any rule settles who decides it.

    The pure core (:func:`domain.resolution.settle`) decides from it: the requester
    rule, the empty-step rule and the repeated-approver rule are never hidden in the
    look-up.
    """

    named: list[Slot]
    """Per slot, everyone its specs name with their active delegates: the requester
    too when named (never as anyone's delegate); no fallback."""
    manager: str | None = None
    """The requester's nearest active manager."""
    admins: list[str] = Field(default_factory=list)
    role_holders: list[str] = Field(default_factory=list)
    """The active holders of ``fallback_role``."""


class ResolveAssigneesOutput(BaseModel):
    slots: list[Slot]
    detail: ResolveDetail | None = None


class AddableInput(BaseModel):
    """Which of ``users`` ``adder`` may not add to a stage, under the stage's ``within``."""

    adder: str
    users: list[str]
    within: Literal["any", "reporting_line"] = "any"


class AddableOutput(BaseModel):
    refused: dict[str, str] = Field(default_factory=dict)
    """user -> why they may not be added (not an active user, outside the reporting line)."""


class ReadersInput(BaseModel):
    """Which of ``users`` may not read request ``request_id`` (the read-model's rule)."""

    request_id: str
    users: list[str]


class ReadersOutput(BaseModel):
    unreadable: list[str] = Field(default_factory=list)
    """Those of the users who may not read the request (unknown or inactive ones too)."""


class EscalationInput(BaseModel):
    """Who is next up from each of ``users`` (their manager, or the escalation role)."""

    request_id: str
    requester: str
    users: list[str]
    escalation_role: str | None = None
    at: datetime


class EscalationOutput(BaseModel):
    next_up: dict[str, list[str]]  # user -> the people one level up (empty at the top)


class PayoutInput(BaseModel):
    """Pay ``amount`` once: ``idempotency_key`` makes a retried payout a no-op."""

    request_id: str
    idempotency_key: str
    amount: Decimal | None
    beneficiary: str | None
    method: str


class PayoutStatus(StrEnum):
    INSTRUCTED = "instructed"  # finance was told to pay (once per idempotency key)


class PayoutOutput(BaseModel):
    reference: str


class Notice(BaseModel):
    recipient: str
    template: str
    payload: dict[str, Any] = Field(default_factory=dict)
    dedupe_key: str


class TransitionRecord(BaseModel):
    """One state change: the read-model snapshot, its audit event and its notices.

    Idempotent on ``(request_id, event.seq)``: a retry writes nothing twice.
    """

    view: RequestView | None = None
    """The read-model after this transition, without history (the event is the new history
    row). Always set on a transition written alone; inside a batch that carries its
    :attr:`TransitionBatch.view`, left out (the read-model shows the batch's end)."""
    event: HistoryEvent
    notices: list[Notice] = Field(default_factory=list)


class TransitionBatch(BaseModel):
    """The transitions one message (or deadline) caused, written in one transaction, in order."""

    records: list[TransitionRecord] = Field(min_length=1)
    view: RequestView | None = None
    """The read-model once all of them happened (else the last record's view: batches
    sent by workers before this field existed)."""
