"""Request and response bodies of the HTTP API (the submission body is
:class:`domain.requests.Submission`, the request's full state
:class:`domain.process.RequestView`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.errors import ErrorBody
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
from notify.preferences import Locale


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
        "for your step, as you could); `in_turn`: each, one after the other, in the order given "
        "(alongside: the first now, your own step open beside them).",
    )
    comment: Comment = Field(description="Why you add them (required).")


class CcBody(_Body):
    people: list[Id] = Field(
        min_length=1, max_length=50, description="The directory users to copy in (抄送)."
    )
    comment: Comment | None = None


class UrgeBody(_Body):
    comment: Comment | None = Field(
        default=None, description="A word to the approvers (optional), shown in the notice."
    )


class ReassignBody(_Body):
    from_user: Id = Field(description="Who holds the pending step now.")
    to_user: Id = Field(description="The active user who takes it over.")
    comment: RequiredComment = Field(description="Why (required: both holders are told).")


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
    version: int = Field(
        default=0,
        description="The request's version: pass it as `version_seen` to decide in bulk.",
    )


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
    version: int = Field(
        default=0,
        description="The request's version as listed: pass it as `version_seen` to decide "
        "in bulk, so a request that changed since is refused instead of decided blind.",
    )


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
    locale: Locale | None = Field(
        default=None,
        description="The language saved for me (my own choice, else the org file's): the API's "
        "texts and my notices are in it. Null: none is saved; texts follow `Accept-Language`.",
    )


class SendBackBody(_Body):
    to_stage: StageRef = Field(
        description="Where the request goes back to: the key of a stage it has passed, that "
        "stage's index in `stages` (from 0), or `requester`."
    )
    comment: RequiredComment = Field(description="Why: read first by whoever it goes back to.")


MAX_BULK_ITEMS = 100
"""The most items one bulk decision may carry."""


class BulkItem(_Body):
    request_id: str = Field(max_length=64, description="The request id (a UUID).")
    version_seen: int = Field(
        ge=0,
        description="The request's `version` as the caller saw it (inbox or request view): "
        "if the request changed since, the item is refused `version_conflict`.",
    )


class BulkDecisionBody(_Body):
    action: Literal["approve", "reject"] = Field(
        description="`approve` or `reject`, for every item. `return` is not offered in "
        "bulk: a return asks the requester to change something, which one comment for "
        "many requests cannot say; return a request on its own."
    )
    comment: Comment | None = Field(default=None, description="One comment for every item.")
    items: list[BulkItem] = Field(
        min_length=1,
        json_schema_extra={"maxItems": MAX_BULK_ITEMS},
        description=f"1 to {MAX_BULK_ITEMS} requests, each at most once; each is decided "
        "as its own decision, in the order given.",
    )


class BulkItemOutcome(BaseModel):
    request_id: str
    outcome: Literal["done", "refused"]
    status: str | None = Field(
        default=None, description="`done`: the request's status after the decision."
    )
    version: int | None = Field(
        default=None, description="`done`: the request's version after the decision."
    )
    http_status: int | None = Field(
        default=None,
        description="`refused`: the status the single-item route would have answered.",
    )
    error: ErrorBody | None = Field(
        default=None,
        description="`refused`: the code, message and details the single-item route "
        "(`POST /v1/requests/{id}/decisions`) would have answered.",
    )


class BulkSummary(BaseModel):
    total: int
    done: int
    refused: int


class BulkDecisionResult(BaseModel):
    items: list[BulkItemOutcome] = Field(description="One outcome per item, in input order.")
    summary: BulkSummary


class DelegationBody(_Body):
    """A delegation I set for myself (``POST /v1/me/delegations``)."""

    to: Id = Field(description="Who acts for the delegator: an active user, not the delegator.")
    starts_at: AwareDatetime | None = Field(
        default=None, description="When it starts (with a UTC offset); omitted: now."
    )
    ends_at: AwareDatetime = Field(
        description="When it ends (exclusive), at most 366 days after it starts. Required: "
        "a delegation covers an absence, and one that never ends would hand the "
        "delegator's authority over for good; end it early with `POST .../end`."
    )
    request_types: Literal["all"] | list[Id] = Field(
        default="all",
        max_length=100,
        description="`all`, or the request types it covers (see `GET /v1/request-types`).",
    )
    reason: Comment = ""


class DelegationForBody(DelegationBody):
    """A delegation set for someone (``POST /v1/delegations``): a manager for a direct
    report, an administrator for anyone (people who left)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Id = Field(alias="from", description="Whose steps the delegate takes.")


class DelegationView(BaseModel):
    """One delegation, given by me or to me."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_: str = Field(serialization_alias="from", validation_alias="from")
    to: str
    starts_at: datetime
    ends_at: datetime
    request_types: Literal["all"] | list[str]
    reason: str
    source: Literal["org", "api"] = Field(
        description="`org`: from the org file, read-only here; `api`: made through the API."
    )
    created_by: str | None
    ended_by: str | None
    status: Literal["scheduled", "active", "ended"]
    direction: Literal["given", "received", "other"] = Field(
        description="`given`: I am the delegator; `received`: I am the delegate."
    )
    may_end: bool = Field(description="Whether I may end it now.")


class DelegationList(BaseModel):
    items: list[DelegationView]


class EndDelegationBody(_Body):
    reason: Comment = ""


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
