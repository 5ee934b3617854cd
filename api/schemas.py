"""Request and response bodies of the HTTP API (the submission body is
:class:`domain.requests.Submission`, the request's full state
:class:`domain.process.RequestView`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.inbound import (
    Comment,
    FormFields,
    Id,
    Money,
    OptionalShortText,
    RequiredComment,
    ShortText,
    StageRef,
)
from domain.policy import (
    AddApprovers,
    AddMode,
    AddPosition,
    Resolution,
    SendBackOptions,
    StageMode,
)
from domain.process import ActorVia, StatusLabel
from domain.resolution import Applies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _attachment_ids() -> Any:
    return Field(
        default_factory=list,
        max_length=20,
        description="Ids of files you uploaded (`POST /v1/attachments`) and attached nowhere "
        "yet; at most `APPROVALS_ATTACHMENT_MAX_COUNT` (default 10).",
    )


class DecisionBody(_Body):
    action: Literal["approve", "reject", "return"] = Field(
        description="`approve`, `reject`, or `return` (send back to the requester for changes)."
    )
    comment: Comment | None = None
    attachments: list[UUID] = _attachment_ids()


class ResubmitBody(_Body):
    fields: FormFields | None = Field(
        default=None,
        max_length=100,
        description="The complete new form fields (they replace the current ones); "
        "omitted: keep the current fields.",
    )
    amount: Money | None = None
    comment: Comment | None = None


class WithdrawBody(_Body):
    comment: Comment | None = None


class RevokeBody(_Body):
    comment: RequiredComment = Field(
        description="Why the approval is taken back (required: the approvers are told)."
    )


class TransferBody(_Body):
    to_user: Id = Field(description="The directory user who takes over this step.")
    comment: Comment | None = None


class MilestoneBody(_Body):
    amount: Money | None = Field(default=None, description="The payment received (CNY).")
    reference: OptionalShortText = Field(
        default="", description="e.g. the bank transfer reference."
    )
    comment: Comment | None = None


class AddApproversBody(_Body):
    people: list[Id] = Field(
        min_length=1, max_length=20, description="The directory users to add (加签)."
    )
    position: AddPosition = Field(
        description="`before`: they decide first, then the step comes back to you; "
        "`after`: they follow once you approved; `alongside`: they join the stage now."
    )
    mode: AddMode = Field(
        default=AddMode.ALL,
        description="`all`: each of them approves; `any`: one of them approves (alongside: "
        "for your step, as you could); `in_turn`: each, one after the other (before/after).",
    )
    comment: Comment = Field(description="Why you add them (required).")


class CcBody(_Body):
    people: list[Id] = Field(
        min_length=1, max_length=50, description="The directory users to copy in (抄送)."
    )
    comment: Comment | None = None


class RequestSummary(BaseModel):
    """One line of the request list."""

    id: str
    type: str
    title: str
    requester: str
    customer: str | None
    amount: Decimal | None
    status: StatusLabel
    stage_key: str | None
    current_approvers: list[str]
    overdue: bool
    resolve_due: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class RequestPage(BaseModel):
    items: list[RequestSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class InboxItem(BaseModel):
    """One step waiting for me."""

    request_id: str
    type: str
    title: str
    requester: str
    customer: str | None
    amount: Decimal | None
    status: StatusLabel
    stage_index: int
    stage_key: str
    stage_name: str
    via: ActorVia = Field(description="Why I may act: `role:<name>`, or a reason listed.")
    on_behalf_of: str | None = Field(description="Whom I act for, when I am their delegate.")
    eligible_since: datetime
    due: datetime | None = Field(description="When this step's reply is due.")
    due_working_time: str | None = Field(
        default=None,
        description="Set when `due` is counted in working time: the policy's length "
        "(`4 working hours`).",
    )
    due_provisional: bool = Field(
        default=False,
        description="`due` crosses a year whose official holidays are not published yet.",
    )
    overdue: bool = Field(description="The step's reply is past due, or the request is overdue.")


class Inbox(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )
    total: int = Field(description="How many steps wait for me in all (every page).")


class PolicySummary(BaseModel):
    type: str
    title: str
    version: int
    description: str


class PolicyList(BaseModel):
    items: list[PolicySummary]


class PreviewBody(_Body):
    """What a route depends on; a submission's whole body is taken as it is."""

    type: Id | None = Field(
        default=None, description="Optional; when given, the request type of the path."
    )
    title: ShortText | None = Field(default=None, description="Checked as for a submission.")
    amount: Money | None = None
    fields: FormFields = Field(default_factory=dict, max_length=100)
    customer: OptionalShortText | None = None
    comment: Comment | None = Field(default=None, description="Checked as for a submission.")


class PreviewSlot(BaseModel):
    label: str = Field(description="Who the policy names for it, e.g. `role sales_director`.")
    people: list[str] = Field(description="The users who would decide it today.")
    applies: Applies = Field(
        description="How it is settled: `named` (the people named), `requester_decides`, "
        "`requester_skipped`, `to_manager` (the requester's manager instead of the "
        "requester), `fallback` (nobody named: the requester's manager, else the "
        "administrators), `administrators`, `fallback_role`, `empty_skipped`, `refused` "
        "(a submission would be refused: 422 `no_approver`), `unassigned` (nobody at all: "
        "the timers escalate it). `repeated` is only known once the earlier stages are decided."
    )


class PreviewStage(BaseModel):
    key: str
    name: str
    mode: StageMode
    reason: str = Field(description="Why this stage applies, with the values that decided it.")
    approvers: list[str] = Field(description="Who the policy names, e.g. `role sales_director`.")
    people: list[str] = Field(
        description="The users it would reach today with the caller as requester."
    )
    slots: list[PreviewSlot] = Field(
        default_factory=list,
        description="Each decision the stage needs, who would take it today and which "
        "rule of the policy's `resolution` applies.",
    )
    add_approvers: AddApprovers = Field(
        default_factory=AddApprovers,
        description="Whether its approvers may add people to it (加签), whom, where and how.",
    )
    send_back_to: list[str] = Field(
        default_factory=list,
        description="Where its approvers may send the request back to (退回): `requester`, "
        "then the keys of the stages before it, in route order; empty when the policy's "
        "`send_back` does not allow it.",
    )


class PreviewDeadline(BaseModel):
    clock: Literal["reply", "resolve"] = Field(
        description="`reply`: the first stage's answer; `resolve`: the final decision."
    )
    span: str = Field(description="The policy's length: `PT4H`, `4 working hours`, `3 days`.")
    due: datetime = Field(description="When it would fall if submitted now (UTC).")
    working: bool = Field(description="Counted in working time on the business calendar.")
    provisional: bool = Field(
        description="The count crosses a year whose official holidays are not published yet."
    )


class PreviewRevoke(BaseModel):
    """Revoke after approval (撤销), as the policy sets it for this request type."""

    allowed: bool = Field(
        description="Whether an approved request of this type may be revoked (by its "
        "requester or an administrator, with a reason). False: the policy sets no window."
    )
    within: str | None = Field(
        default=None,
        description="How long after the final approval it may be revoked (`P31D`); null "
        "when it may not.",
    )
    until_payout: bool = Field(
        default=False,
        description="The request type pays out after approval: once the payout is made, "
        "the request can no longer be revoked, even within the window.",
    )


class Preview(BaseModel):
    policy_type: str
    policy_version: int
    stages: list[PreviewStage]
    deadlines: list[PreviewDeadline] = Field(
        default_factory=list,
        description="The deadlines that start at submission, as they would fall now.",
    )
    resolution: Resolution = Field(
        default_factory=Resolution,
        description="The policy's rules for repeated approvers, the requester as an "
        "approver and steps nobody is named for.",
    )
    send_back: SendBackOptions = Field(
        default_factory=SendBackOptions,
        description="Sending back to an earlier stage or the requester (退回): whether "
        "approvers may (`allowed`), and how the route goes on once the stage sent back to "
        "(or the requester) has acted again: `rerun` (every later stage decides again) or "
        "`jump_back` (straight back to the stage that sent it back). Each stage's "
        "`send_back_to` lists where its approvers may send it.",
    )
    revoke: PreviewRevoke = Field(
        default_factory=lambda: PreviewRevoke(allowed=False),
        description="Whether and how long after approval the request may be revoked (撤销).",
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str]


class Me(BaseModel):
    """The caller as the directory knows them."""

    id: str
    name: str
    email: str | None
    roles: list[str]
    manager: str | None
    is_admin: bool


class SendBackBody(_Body):
    to_stage: StageRef = Field(
        description="Where the request goes back to: the key of a stage it has passed, that "
        "stage's index in `stages` (from 0), or `requester`."
    )
    comment: RequiredComment = Field(description="Why: read first by whoever it goes back to.")


class CommentBody(_Body):
    body: RequiredComment = Field(description="The comment (评论), up to 4000 characters.")
    mentions: list[Id] = Field(
        default_factory=list,
        max_length=20,
        description="User ids to tell of the comment (@). Each must be able to read the "
        "request already (422 naming those who cannot). `@user` in the text is only text: "
        "who is told is this list.",
    )
    attachments: list[UUID] = _attachment_ids()


class AttachmentOut(BaseModel):
    """An uploaded file, as the API describes it (never its bytes)."""

    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    url: str = Field(description="Where to download it (`GET /v1/attachments/{id}`).")


class CommentOut(BaseModel):
    """A comment: its history event, with the files attached to it."""

    seq: int
    at: datetime
    actor: str
    on_behalf_of: str | None = None
    body: str
    mentions: list[str]
    attachments: list[AttachmentOut]
