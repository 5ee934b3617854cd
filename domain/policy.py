"""The policy file schema: one request type's fields, stages, timers and rules.

Policies are data. Conditions are structured (``{field: amount, op: gt, value:
300000}``) and evaluated by :mod:`domain.conditions`; nothing is ever evaluated
as an expression string. Durations are :class:`~domain.durations.Span`: ISO-8601
(``PT4H``, ``P3D``) or words (``3 days``), calendar time unless they say working
(``PT4H working``, ``3 working days``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.durations import Span
from domain.inbound import Comment, Id, OptionalShortText, ShortText
from domain.text import LocalizedLabel, LocalizedShortText, LocalizedText

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    DATE = "date"


class FieldSpec(_Strict):
    """One field of a request type's form."""

    name: Identifier
    type: FieldType
    label: LocalizedLabel = LocalizedLabel("")
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = Field(default=2000, ge=1, le=100_000)
    decimal_places: int = Field(default=4, ge=0, le=8)
    """``decimal`` fields: the most digits a value may have after the point."""
    choices: tuple[ShortText, ...] = ()
    choice_labels: dict[ShortText, LocalizedShortText] = Field(
        default_factory=dict, exclude_if=lambda v: not v
    )
    """How people read a choice (``{good: {en: Good, zh-CN: 良好}}``); the choice itself is
    the value submitted and compared. Left out of a dump when empty, as before it."""
    help: LocalizedText = LocalizedText("")
    unit: LocalizedShortText | None = Field(default=None, exclude_if=lambda v: v is None)
    """What the value counts (``{en: days, zh-CN: 天}``, ``%``, ``¥``), shown beside the
    input and after the value; the label then says what, not in what. Left out of a dump
    when absent, so policies and stored inputs of before it read and compare as they did."""

    @model_validator(mode="after")
    def _choices_only_for_choice(self) -> FieldSpec:
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError(f"field {self.name!r} of type choice needs choices")
        if self.type is not FieldType.CHOICE and self.choices:
            raise ValueError(f"field {self.name!r} has choices but is not of type choice")
        unknown = [c for c in self.choice_labels if c not in self.choices]
        if unknown:
            raise ValueError(f"field {self.name!r} labels unknown choices {unknown}")
        return self

    def choice_label(self, choice: str, lang: str | None) -> str:
        """The choice as people read it in ``lang``; the choice itself when unlabelled."""
        label = self.choice_labels.get(choice)
        return label.get(lang) if label is not None else choice


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"


class Comparison(_Strict):
    """``field op value``; ``field`` is ``amount`` or the name of a form field."""

    field: Identifier
    op: Op
    value: Decimal | str | bool | tuple[Decimal | str, ...]

    @model_validator(mode="after")
    def _list_only_for_membership(self) -> Comparison:
        is_list = isinstance(self.value, tuple)
        if self.op in (Op.IN, Op.NOT_IN) and not is_list:
            raise ValueError(f"op {self.op} needs a list value")
        if self.op not in (Op.IN, Op.NOT_IN) and is_list:
            raise ValueError(f"op {self.op} needs a single value")
        return self


class AllOf(_Strict):
    all: tuple[Condition, ...] = Field(min_length=1)


class AnyOf(_Strict):
    any: tuple[Condition, ...] = Field(min_length=1)


class Not(_Strict):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Condition = Comparison | AllOf | AnyOf | Not


class ApproverSpec(_Strict):
    """Who: exactly one of role, manager level, user, or the requester.

    ``requester: true`` names the requester for notices (CC, ladder steps); a
    decision stage may not use it, since nobody approves their own request.
    """

    role: Identifier | None = None
    manager: int | None = Field(default=None, ge=1, le=10)
    user: Id | None = None
    requester: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ApproverSpec:
        given = [
            k for k in ("role", "manager", "user", "requester") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("an approver names exactly one of: role, manager, user, requester")
        return self

    def describe(self) -> str:
        if self.role is not None:
            return f"role {self.role}"
        if self.manager is not None:
            return (
                "the requester's manager"
                if self.manager == 1
                else f"the requester's manager, {self.manager} levels up"
            )
        if self.requester:
            return "the requester"
        return f"user {self.user}"


class StageMode(StrEnum):
    ANY = "any"  # 或签: one eligible person decides for the stage
    ALL = "all"  # 会签: every approver spec must approve


class AddPosition(StrEnum):
    """Where people added to a stage (加签) decide, relative to the one who adds them."""

    BEFORE = "before"  # 前加签: they decide first, then the step comes back to the adder
    AFTER = "after"  # 后加签: they follow once the adder approved
    ALONGSIDE = "alongside"  # 并加签: they join the stage now


class AddMode(StrEnum):
    """How the people added at once decide among themselves."""

    ALL = "all"  # 会签: each of them approves
    ANY = "any"  # 或签: one of them approves for all
    IN_TURN = "in_turn"  # 依次: each approves, one after the other, in the order given


class AddApprovers(_Strict):
    """Whether a stage's current approvers may add people to it (加签), and whom.

    Absent, a stage allows it, anyone active, every position and mode: adding people
    never takes a decision away from the stage (the adder still decides, or those
    added join the adder's own step as a transfer would, which is already allowed), so
    the default is as open as DingTalk's and Feishu's.
    """

    allowed: bool = True
    within: Literal["any", "reporting_line"] = "any"
    """``reporting_line``: only the adder's managers (up the chain), the people who
    report to the adder (directly or not), and the adder's peers (same manager)."""
    positions: tuple[AddPosition, ...] = (
        AddPosition.BEFORE,
        AddPosition.AFTER,
        AddPosition.ALONGSIDE,
    )
    modes: tuple[AddMode, ...] = (AddMode.ALL, AddMode.ANY, AddMode.IN_TURN)
    max_people: int = Field(default=5, ge=1, le=20)


class BulkDecisions(_Strict):
    """Whether a stage's steps may be decided in bulk (``POST /v1/decisions/bulk``).

    Absent, they may: a bulk decision is each item's own decision, checked as one
    (eligible, not changed since seen), so the default is as open as DingTalk's batch
    approval. A stage that wants each request read on its own says ``allowed: false``,
    or ``max_amount``: requests above it (the request's ``amount``) are decided one by one.
    A request without an amount is within any ``max_amount``.
    """

    allowed: bool = True
    max_amount: Decimal | None = Field(default=None, ge=0)


class StageSpec(_Strict):
    key: Identifier
    name: LocalizedShortText
    approvers: tuple[ApproverSpec, ...] = Field(min_length=1)
    mode: StageMode = StageMode.ANY
    when: Condition | None = None
    note: Comment = ""
    add_approvers: AddApprovers = Field(
        default_factory=AddApprovers, exclude_if=lambda v: v == AddApprovers()
    )
    """Who may be added to this stage (加签); left out of a dump when it is the default,
    so policies and stored inputs of before it read and compare as they did."""
    bulk: BulkDecisions = Field(
        default_factory=BulkDecisions, exclude_if=lambda v: v == BulkDecisions()
    )
    """Whether this stage's steps may be decided in bulk; left out of a dump when it is
    the default, so policies and stored inputs of before it read and compare as they did."""

    @field_validator("approvers")
    @classmethod
    def _requester_never_decides(cls, v: tuple[ApproverSpec, ...]) -> tuple[ApproverSpec, ...]:
        if any(a.requester for a in v):
            raise ValueError("the requester cannot approve their own request")
        return v


class ResolveAction(StrEnum):
    ESCALATE = "escalate"
    AUTO_REJECT = "auto_reject"


class Timers(_Strict):
    reply: Span = Span(hours=4)
    resolve: Span = Span(days=3)
    resolve_action: ResolveAction = ResolveAction.ESCALATE
    resubmit: Span = Span(days=7)
    escalation_role: Identifier | None = None
    max_escalations: int = Field(default=5, ge=0, le=20)

    @field_validator("reply", "resolve", "resubmit")
    @classmethod
    def _positive(cls, v: Span) -> Span:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration")
        return v


class MilestoneAmount(_Strict):
    """What a milestone must collect: a percentage of the request amount or fixed."""

    percent_of_amount: Decimal | None = Field(default=None, gt=0, le=100)
    fixed: Decimal | None = Field(default=None, gt=0)
    from_field: Identifier | None = None
    """The amount is the value of this (decimal) form field, e.g. the invoice total."""
    percent_when: tuple[ConditionalPercent, ...] = ()

    @model_validator(mode="after")
    def _one_base(self) -> MilestoneAmount:
        bases = [self.percent_of_amount, self.fixed, self.from_field]
        if sum(b is not None for b in bases) != 1:
            raise ValueError(
                "a milestone amount is exactly one of percent_of_amount, fixed, from_field"
            )
        return self


class ConditionalPercent(_Strict):
    """A percentage that replaces the default when its condition holds (fresh food: 50 %)."""

    when: Condition
    percent: Decimal = Field(gt=0, le=100)


def _calendar_only(v: Span | None) -> Span | None:
    """Refuse working time where the engine counts calendar time only (never silently)."""
    if v is not None and v.working:
        raise ValueError(
            f"{v.canonical()}: working time is counted for reply, resolve, resubmit and "
            "milestone due only; write this one as calendar time (e.g. P1D)"
        )
    return v


class MilestoneSpec(_Strict):
    name: Identifier
    title: LocalizedShortText
    due: Span
    remind_before: Span | None = Span(days=1)
    amount: MilestoneAmount | None = None
    when: Condition | None = None
    """The milestone applies only when this holds (custom goods: a deposit)."""
    note: Comment = ""

    _remind_in_calendar_time = field_validator("remind_before")(_calendar_only)


class HardRule(_Strict):
    """A rule that refuses a request at submission when ``refuse_when`` holds."""

    name: Identifier
    message: LocalizedShortText
    refuse_when: Condition


class CcSpec(_Strict):
    """People copied (抄送): told at submission and of the outcome; they decide nothing."""

    who: ApproverSpec
    when: Condition | None = None
    note: Comment = ""


class PayoutSpec(_Strict):
    """A payment the company makes after approval, only inside monthly windows.

    Special discounts: the rebate is paid once the customer has paid in full
    (``after_milestone``), at the next window (7th-10th or 25th-27th).
    """

    title: LocalizedShortText
    after_milestone: Identifier | None = None
    windows: tuple[tuple[int, int], ...] = ((7, 10), (25, 27))
    method: ShortText = "bank transfer"
    utc_offset_hours: int = Field(default=8, ge=-12, le=14)
    """The windows are days of the company's calendar (China Standard Time by default)."""

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, v: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        if not v:
            raise ValueError("at least one payout window")
        for first, last in v:
            if not 1 <= first <= last <= 28:
                raise ValueError("a window is (first day, last day) within days 1..28")
        return v


class ReviewCycle(_Strict):
    """Re-evaluate an approved request periodically for as long as it lives (credit lines).

    Each re-evaluation is an approval like any other: the route runs again; a
    rejection ends the request (the customer goes back to pay-before-delivery).
    """

    every: Span
    title: LocalizedShortText = LocalizedShortText("Periodic re-evaluation")

    _every_in_calendar_time = field_validator("every")(_calendar_only)


class WatchStep(_Strict):
    """One rung of a ladder: at ``after`` (from the anchor), notify; optionally repeat."""

    after: Span
    title: LocalizedShortText
    notify: tuple[ApproverSpec, ...] = Field(min_length=1)
    repeat_every: Span | None = None

    _steps_in_calendar_time = field_validator("after", "repeat_every")(_calendar_only)


class Watch(_Strict):
    """Before review: a ladder of notices while waiting for a settling payment.

    Overdue receivables: reported at 2 months, weekly progress from 4 months, and
    at 6 months (``review_after``) the route's stages start (management, then the
    board decides on write-off). Paying ``settles_with`` in full at any point
    completes the request.
    """

    settles_with: Identifier
    settles_title: LocalizedShortText = LocalizedShortText("Payment received")
    anchor_field: Identifier | None = None
    """A date field the ladder counts from (the invoice due date); else submission."""
    steps: tuple[WatchStep, ...] = ()
    review_after: Span

    _review_in_calendar_time = field_validator("review_after")(_calendar_only)


class AmountSpec(_Strict):
    required: bool = True
    label: LocalizedShortText = LocalizedShortText("Amount (CNY)")
    max: Decimal = Decimal("1000000000000")
    positive: bool = False
    """The amount must be more than 0 (a contract, an order, a gift), not merely >= 0."""


class NoticeOptions(_Strict):
    """How the request type's notices reach people (additive: a policy without it holds)."""

    hold_to_working_hours: bool = True
    """Reminders and urgent notices (:data:`domain.delivery.HELD_KINDS`: a reminder, an
    escalation, overdue, a milestone reminder …) planned outside working hours wait
    for the next working hour on the business calendar before they are mailed or
    posted to a chat; ``false`` sends them at once, night or weekend. The in-app
    notice is there at once either way."""


class SendBackResume(StrEnum):
    """Where the route goes on once a stage sent back to has decided again."""

    RERUN = "rerun"
    """From the stage sent back to, every later stage decides again."""
    JUMP_BACK = "jump_back"
    """Straight back to the stage that sent it back; the stages between keep their
    approvals (Feishu's "return to the node that sent it back")."""


class SendBackOptions(_Strict):
    """Sending a request back to an earlier stage or its requester (退回到指定节点).

    Additive: a policy without it allows sending back and reruns the route.
    """

    allowed: bool = True
    """False: approvers may only decide (approve, reject, return to the requester)."""
    resume: SendBackResume = SendBackResume.RERUN


SEND_BACK_TO_REQUESTER = "requester"
"""The target of a send-back to the requester; so no stage may have this key."""


class RepeatedApprover(StrEnum):
    """An approver who already approved an earlier stage of this request (审批人去重)."""

    DECIDE_AGAIN = "decide_again"
    """Today's behaviour: they decide again."""
    SKIP = "skip"
    """Their step is approved automatically if they approved any earlier stage."""
    SKIP_ADJACENT = "skip_adjacent"
    """… only if they approved the stage just before (Feishu: 仅连续出现时)."""


class RequesterApprover(StrEnum):
    """The requester resolves as an approver of a step (Feishu ``starter_assignee``)."""

    MANAGER = "manager"
    """Today's behaviour: the requester is taken off the step; if nobody else is on it,
    it goes to the requester's manager (then, as for an empty step, to the rule below)."""
    SKIP = "skip"
    """The step is approved automatically, with a record."""
    SELF = "self"
    """The requester approves it themself."""


class EmptySlot(StrEnum):
    """A step the policy names nobody for (a role nobody holds, a manager level above the top)."""

    FALLBACK = "fallback"
    """Today's behaviour: the requester's manager, else the administrators, else the step
    stays unassigned until the timers escalate."""
    ADMINISTRATORS = "administrators"
    """The administrators."""
    ROLE = "role"
    """The holders of ``empty_slot_role`` (else the administrators)."""
    SKIP = "skip"
    """The step is approved automatically, with a record."""
    REFUSE = "refuse"
    """The submission is refused (422 ``no_approver`` naming the step); a step that finds
    nobody later (the directory changed since) falls back as ``fallback`` does."""


class Resolution(_Strict):
    """How a step's people are settled (additive: a policy without it behaves as always)."""

    repeated_approver: RepeatedApprover = RepeatedApprover.DECIDE_AGAIN
    requester_approver: RequesterApprover = RequesterApprover.MANAGER
    empty_slot: EmptySlot = EmptySlot.FALLBACK
    empty_slot_role: Identifier | None = None
    """With ``empty_slot: role``: the role whose holders take a step nobody is named for."""

    @model_validator(mode="after")
    def _role_with_role(self) -> Resolution:
        if (self.empty_slot is EmptySlot.ROLE) != (self.empty_slot_role is not None):
            raise ValueError("empty_slot_role is given exactly when empty_slot is 'role'")
        return self

    @property
    def as_always(self) -> bool:
        """Today's behaviour: steps resolve as they did before these options existed."""
        return self == Resolution()


class RevokeSpec(_Strict):
    """Revoke after approval (撤销): the requester, or an administrator, takes an approval
    back with a reason, within ``within`` of it (Feishu's default is 31 days).

    Absent from a policy, its approvals cannot be revoked (today's behaviour)."""

    within: Span

    _within_in_calendar_time = field_validator("within")(_calendar_only)

    @field_validator("within")
    @classmethod
    def _positive(cls, v: Span) -> Span:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration")
        return v


class UrgeOptions(_Strict):
    """Urging (催办): the requester pushes the current approvers of the open stage.

    Additive: a policy without it lets the requester urge once per working hour.
    """

    interval: Span = Span(hours=1, working=True)
    """At most one urge per round of a stage within this span (working time on the
    business calendar when it says ``working``, as the other durations)."""

    @field_validator("interval")
    @classmethod
    def _positive(cls, v: Span) -> Span:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration")
        return v


class Submitters(_Strict):
    """Who may submit requests of a type (DingTalk's 发起人范围, Feishu's "who can submit").

    A person may when they are one of ``users`` or hold one of ``roles``. Absent from a
    policy, anyone active in the directory may (today's behaviour). Decided by
    :func:`domain.submitters.may_submit`, for the submission and for the listing alike.
    """

    roles: tuple[Identifier, ...] = ()
    users: tuple[Id, ...] = ()

    @model_validator(mode="after")
    def _someone(self) -> Submitters:
        if not self.roles and not self.users:
            raise ValueError("submitters names at least one role or user (or leave it out)")
        return self


class Policy(_Strict):
    """One request type."""

    type: Identifier
    version: int = Field(ge=1)
    title: LocalizedShortText
    description: Comment = ""
    source: OptionalShortText = ""
    amount: AmountSpec = AmountSpec()
    fields: tuple[FieldSpec, ...] = ()
    rules: tuple[HardRule, ...] = ()
    stages: tuple[StageSpec, ...] = ()
    timers: Timers = Timers()
    milestones: tuple[MilestoneSpec, ...] = ()
    cc: tuple[CcSpec, ...] = ()
    payout: PayoutSpec | None = None
    review_cycle: ReviewCycle | None = None
    watch: Watch | None = None
    notices: NoticeOptions = NoticeOptions()
    send_back: SendBackOptions = SendBackOptions()
    resolution: Resolution = Resolution()
    revoke: RevokeSpec | None = None
    """How long after an approval it may be revoked; None: never (see :class:`RevokeSpec`)."""
    urge: UrgeOptions = UrgeOptions()
    """How often the requester may urge (催办) the current approvers of a stage."""
    submitters: Submitters | None = Field(default=None, exclude_if=lambda v: v is None)
    """Who may submit; None: everyone. Left out of a dump when absent, so policies and
    stored inputs of before it read and compare as they did."""

    @model_validator(mode="after")
    def _names_are_consistent(self) -> Policy:
        names = [f.name for f in self.fields]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate field names: {sorted(dupes)}")
        if "amount" in names:
            raise ValueError("'amount' is built in; do not declare it as a field")
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        if SEND_BACK_TO_REQUESTER in keys:
            raise ValueError(f"a stage key must not be {SEND_BACK_TO_REQUESTER!r}")
        ms = [m.name for m in self.milestones]
        if len(set(ms)) != len(ms):
            raise ValueError("milestone names must be unique")
        known = {*names, "amount"}
        if self.payout and self.payout.after_milestone and self.payout.after_milestone not in ms:
            raise ValueError(f"payout waits for unknown milestone {self.payout.after_milestone!r}")
        for m in self.milestones:
            if m.amount and m.amount.from_field and m.amount.from_field not in names:
                raise ValueError(f"milestone {m.name!r} takes its amount from unknown field")
        if self.revoke and self.watch:
            raise ValueError("revoke does not apply to a receivable (watch) policy")
        if self.watch and self.watch.anchor_field and self.watch.anchor_field not in names:
            raise ValueError(f"watch anchor {self.watch.anchor_field!r} is not a field")
        for cond in self._conditions():
            for ref in _fields_of(cond):
                if ref not in known:
                    raise ValueError(f"a condition refers to unknown field {ref!r}")
        return self

    def _conditions(self) -> list[Condition]:
        conds: list[Condition] = [r.refuse_when for r in self.rules]
        conds += [s.when for s in self.stages if s.when is not None]
        conds += [c.when for c in self.cc if c.when is not None]
        conds += [m.when for m in self.milestones if m.when is not None]
        for m in self.milestones:
            if m.amount is not None:
                conds += [p.when for p in m.amount.percent_when]
        return conds

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


def _fields_of(cond: Condition) -> list[str]:
    if isinstance(cond, Comparison):
        return [cond.field]
    if isinstance(cond, AllOf):
        return [f for c in cond.all for f in _fields_of(c)]
    if isinstance(cond, AnyOf):
        return [f for c in cond.any for f in _fields_of(c)]
    return _fields_of(cond.not_)


AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()
MilestoneAmount.model_rebuild()
MilestoneSpec.model_rebuild()
CcSpec.model_rebuild()
StageSpec.model_rebuild()
HardRule.model_rebuild()
Policy.model_rebuild()


def policy_from_mapping(data: dict[str, Any]) -> Policy:
    return Policy.model_validate(data)
