"""``/v1/requests``: submit, list, read, and act on requests."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import attaching, commands
from api.deps import CurrentUser, IdempotencyKey, ReaderDep, ServicesDep, SessionDep, viewer_of
from api.errors import BODY_ERRORS, ApiError, field_errors, not_found, responses
from api.schemas import (
    AddApproversBody,
    CcBody,
    CommentBody,
    CommentOut,
    DecisionBody,
    MilestoneBody,
    ReassignBody,
    RequestPage,
    ResubmitBody,
    RevokeBody,
    SendBackBody,
    TransferBody,
    UrgeBody,
    WithdrawBody,
)
from api.views import request_view, summary
from db import attachments
from db import request_queries as q
from db.directory import DirectoryUser, get_user
from db.models import RequestRow
from domain.constants import Updates
from domain.core.admission import closed_revoke_refusal
from domain.errors import ErrorCode
from domain.inbound import Id, OptionalShortText, check_payload_budget
from domain.process import (
    AddApproversInput,
    CcInput,
    CommentInput,
    DecideInput,
    EventKind,
    MilestoneInput,
    ReassignInput,
    RequestView,
    ResubmitInput,
    RevokeInput,
    SendBackInput,
    TransferInput,
    UrgeInput,
    WithdrawInput,
)
from domain.requests import Submission
from domain.submitters import may_submit

router = APIRouter(prefix="/v1/requests", tags=["requests"])

MILESTONE_ROLES = frozenset({"finance_staff", "order_desk"})

# Not an Id: a malformed request id is answered 404 like an unknown one (see _visible).
RequestId = Annotated[str, Path(description="The request id (a UUID).", max_length=64)]


def _viewer(user: DirectoryUser, request_id: str, sees_all: bool) -> tuple[str, q.Viewer]:
    """The request id in canonical form and who asks; 404 for a malformed id."""
    try:
        rid = str(uuid.UUID(request_id))
    except ValueError:
        raise not_found() from None
    viewer = viewer_of(user)
    if sees_all:
        viewer = q.Viewer(user_id=user.id, sees_all=True)
    return rid, viewer


async def _visible(session: AsyncSession, user: DirectoryUser, request_id: str) -> RequestRow:
    """The request (its stored view and all) if the caller may see it; 404 otherwise."""
    row = await q.get_visible_request(session, *_viewer(user, request_id, False))
    if row is None:
        raise not_found()
    return row


async def _target(
    session: AsyncSession, user: DirectoryUser, request_id: str, *, sees_all: bool = False
) -> q.RequestRef:
    """The request an action is for, if the caller may see it; 404 otherwise (also for
    malformed ids)."""
    ref = await q.get_visible_ref(session, *_viewer(user, request_id, sees_all))
    if ref is None:
        raise not_found()
    # End the read transaction now: the update that follows may wait on Temporal,
    # and must not hold a database connection meanwhile.
    await session.commit()
    return ref


def _forbidden(message: str) -> ApiError:
    return ApiError(403, ErrorCode.FORBIDDEN.value, message)


@router.post(
    "",
    response_model=RequestView,
    status_code=201,
    summary="Submit a request",
    description=(
        "Validates the body against the request type's policy, resolves the route, records "
        "the request and starts its workflow. Answers 201 with the RequestView once the first "
        "stage is assigned; 202 (with Retry-After) when the request is durably accepted but no "
        "worker answered in time; 200 with the earlier request when the same `Idempotency-Key` "
        "and body were submitted before. Unknown type, invalid fields or a broken hard rule: "
        "422, and nothing is written or started. 403 when the type's policy names who may "
        "submit (`submitters`) and the caller is not among them; "
        "`GET /v1/policies?submittable=true` lists the types the caller may submit."
    ),
    responses={
        200: {"model": RequestView, "description": "The same Idempotency-Key and body again."},
        202: {"model": RequestView, "description": "Accepted; the worker has not answered yet."},
        **responses(401, 403, 409, *BODY_ERRORS, 503),
    },
)
async def submit_request(
    body: Submission,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    policy = services.policies.get(body.type)  # an unknown type is the command's 422
    if policy is not None and not may_submit(policy, user.id, user.roles):
        raise ApiError(
            403,
            ErrorCode.FORBIDDEN.value,
            f"you may not submit requests of type {policy.type!r}: its policy names who may",
            {"type": policy.type},
        )
    # The session that authenticated the caller is the command's too: one per request.
    outcome = await commands.submit(services, session, user.id, body, idempotency_key)
    response.status_code = outcome.status_code
    response.headers["Location"] = f"/v1/requests/{outcome.view.id}"
    if outcome.status_code == 202:
        response.headers["Retry-After"] = "5"
    return reader.view(outcome.view)


@router.get(
    "",
    response_model=RequestPage,
    summary="List requests",
    description=(
        "The requests the caller may see (their own, those they were ever assigned; admins and "
        "auditors see all), newest first, one page at a time: pass `next_cursor` back as "
        "`cursor`."
    ),
    responses=responses(401, 422),
)
async def list_requests(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[Id | None, Query(description="e.g. `in_review`")] = None,
    type: Annotated[Id | None, Query(description="Request type.")] = None,
    requester: Annotated[Id | None, Query()] = None,
    assignee: Annotated[
        Id | None,
        Query(description="`me` (or a user id): requests with a step pending for that person."),
    ] = None,
    overdue: bool | None = None,
    customer: Annotated[OptionalShortText | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestPage:
    after = None
    if cursor is not None:
        try:
            decoded = q.Cursor.decode(cursor)
            # The id is compared with request ids in SQL: only a real one may get there.
            after = q.Cursor(created_at=decoded.created_at, id=str(uuid.UUID(decoded.id)))
        except ValueError:
            raise field_errors([("cursor", "is not a cursor from this list")]) from None
    filters = q.RequestFilters(
        status=status,
        type=type,
        requester=requester,
        assignee=user.id if assignee == "me" else assignee,
        overdue=overdue,
        customer=customer,
    )
    rows, next_cursor = await q.list_requests(
        session, viewer_of(user), filters, after=after, limit=limit
    )
    return RequestPage(
        items=[summary(r) for r in rows],
        next_cursor=next_cursor.encode() if next_cursor else None,
    )


@router.get(
    "/{request_id}",
    response_model=RequestView,
    summary="Read a request",
    description="Route, stages with assignees and decisions, deadlines and the audit history.",
    responses=responses(401, 404, 422),
)
async def get_request(
    request_id: RequestId,
    user: CurrentUser,
    session: SessionDep,
    reader: ReaderDep,
) -> RequestView:
    row = await _visible(session, user, request_id)
    view = reader.view(request_view(row, await q.request_history(session, row.id)))
    return attaching.with_files(view, await attachments.of_request(session, row.id))


_ACTION_ERRORS = responses(401, 403, 404, 409, *BODY_ERRORS, 503)


@router.post(
    "/{request_id}/decisions",
    response_model=RequestView,
    summary="Decide the current stage",
    description=(
        "`approve`, `reject` or `return` as one of the current stage's approvers. 403 when the "
        "caller may not decide it (the requester never approves their own request, unless "
        "the request type's `resolution.requester_approver` is `self`); 409 when "
        "they already decided or the request is no longer in review."
    ),
    responses=_ACTION_ERRORS,
)
async def decide(
    request_id: RequestId,
    body: DecisionBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    refs, claim = await attaching.attach(
        services,
        session,
        user_id=user.id,
        request_id=row.id,
        what="decision",
        ids=body.attachments,
        idempotency_key=idempotency_key,
        text=f"{body.action}:{body.comment or ''}",
    )
    payload = DecideInput(actor=user.id, action=body.action, comment=body.comment, attachments=refs)
    return reader.view(
        await attaching.run_update(
            services,
            session,
            row.id,
            user.id,
            Updates.DECIDE,
            payload,
            idempotency_key,
            refs,
            claim,
        )
    )


@router.post(
    "/{request_id}/resubmit",
    response_model=RequestView,
    summary="Resubmit a returned request",
    description="The requester, after a return: optionally new fields and amount. "
    "The route is resolved again.",
    responses=_ACTION_ERRORS,
)
async def resubmit(
    request_id: RequestId,
    body: ResubmitBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    if row.requester != user.id:
        raise _forbidden("only the requester may resubmit this request")
    payload = ResubmitInput(
        actor=user.id, amount=body.amount, fields=body.fields, comment=body.comment
    )
    check_payload_budget(payload, "the resubmission")
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.RESUBMIT, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/withdraw",
    response_model=RequestView,
    summary="Withdraw a request",
    description="The requester, before a final decision.",
    responses=_ACTION_ERRORS,
)
async def withdraw(
    request_id: RequestId,
    body: WithdrawBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    if row.requester != user.id:
        raise _forbidden("only the requester may withdraw this request")
    payload = WithdrawInput(actor=user.id, comment=body.comment)
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.WITHDRAW, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/transfer",
    response_model=RequestView,
    summary="Hand the current step to someone else",
    description="A current approver hands their step to another active user (not the "
    "requester, not themself).",
    responses=_ACTION_ERRORS,
)
async def transfer(
    request_id: RequestId,
    body: TransferBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    target = await get_user(session, body.to_user)
    await session.commit()
    if target is None or not target.active:
        raise field_errors([("to_user", f"{body.to_user!r} is not an active user")])
    if target.id == row.requester:
        raise field_errors([("to_user", "must not be the requester")])
    if target.id == user.id:
        raise field_errors([("to_user", "must be someone other than yourself")])
    payload = TransferInput(actor=user.id, to_user=target.id, comment=body.comment)
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.TRANSFER, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/milestones/{name}",
    response_model=RequestView,
    summary="Record a milestone (e.g. a deposit payment)",
    description=(
        "Payments accumulate against the milestone's required amount; the milestone is met "
        "when they reach it. Allowed for the requester, finance staff, the order desk and "
        "admins."
    ),
    responses=_ACTION_ERRORS,
)
async def record_milestone(
    request_id: RequestId,
    name: Annotated[Id, Path(description="The milestone, e.g. `deposit`.")],
    body: MilestoneBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    # Finance staff and the order desk record payments for requests they were never
    # assigned to, so for this action they see every request.
    records_payments = bool(MILESTONE_ROLES & set(user.roles))
    row = await _target(session, user, request_id, sees_all=records_payments)
    if not (user.id == row.requester or user.is_admin or records_payments):
        raise _forbidden(
            "only the requester, finance staff, the order desk or an admin may record milestones"
        )
    payload = MilestoneInput(
        actor=user.id,
        milestone=name,
        amount=body.amount,
        reference=body.reference,
        comment=body.comment,
    )
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.RECORD_MILESTONE, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/send-back",
    response_model=RequestView,
    summary="Send the request back to a stage it has passed, or to its requester",
    description=(
        "退回到指定节点: a current approver sends the request back to any stage it has passed "
        "(`to_stage`: its key or index) or to `requester`, saying why. That stage is resolved "
        "again (its people as the directory has them today) and decides in a new round, with a "
        "new reply deadline; the resolve deadline runs on. The decisions of the stages passed "
        "again stay on their stages as `superseded`. What follows the new decision is the "
        "policy's `send_back.resume`: `rerun` (the route runs on from there) or `jump_back` "
        "(straight back to the stage that sent it). Sent to the requester, the request is "
        "`returned`. 403 when the caller may not decide the current stage or the policy "
        "forbids sending back; 409 when it is not in review; 422 for a stage it has not "
        "passed, or no comment."
    ),
    responses=_ACTION_ERRORS,
)
async def send_back(
    request_id: RequestId,
    body: SendBackBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    payload = SendBackInput(actor=user.id, to_stage=body.to_stage, comment=body.comment)
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.SEND_BACK, payload, idempotency_key
        )
    )


async def _active_people(
    session: AsyncSession, people: list[str], requester: str, me: str
) -> list[str]:
    """``people`` without repeats, each an active user other than the requester and ``me``;
    422 naming the field otherwise."""
    wanted = list(dict.fromkeys(people))
    problems: list[tuple[str, str]] = []
    for who in wanted:
        found = await get_user(session, who)
        if found is None or not found.active:
            problems.append(("people", f"{who!r} is not an active user"))
        elif who == requester:
            problems.append(("people", f"{who!r} is the requester"))
        elif who == me:
            problems.append(("people", "must be someone other than yourself"))
    await session.commit()
    if problems:
        raise field_errors(problems)
    return wanted


@router.post(
    "/{request_id}/approvers",
    response_model=RequestView,
    summary="Add approvers to the current stage (加签)",
    description=(
        "A current approver adds active users before their own decision, after it, or "
        "alongside (mode `all`, `any` or `in_turn`), with a reason. 403 when the caller may not "
        "decide the stage now or the stage forbids it; 422 for the requester, someone already "
        "pending on the stage, an inactive user, a position or mode the stage does not allow."
    ),
    responses=_ACTION_ERRORS,
)
async def add_approvers(
    request_id: RequestId,
    body: AddApproversBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    people = await _active_people(session, body.people, row.requester, user.id)
    payload = AddApproversInput(
        actor=user.id, people=people, position=body.position, mode=body.mode, comment=body.comment
    )
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.ADD_APPROVERS, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/cc",
    response_model=RequestView,
    summary="Copy people in (抄送)",
    description=(
        "The requester or a current approver copies active users in: they are told, may read "
        "the request and are told of its outcome; they decide nothing. 403 for anyone else."
    ),
    responses=_ACTION_ERRORS,
)
async def add_cc(
    request_id: RequestId,
    body: CcBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    people = await _active_people(session, body.people, row.requester, user.id)
    payload = CcInput(actor=user.id, people=people, comment=body.comment)
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.ADD_CC, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/revoke",
    response_model=RequestView,
    summary="Revoke an approval (撤销)",
    description=(
        "The requester, or an administrator, takes an approval back with a reason, within "
        "the revoke window its request type's policy sets (`revoke: {within: P31D}`; none: "
        "never). Allowed while approved, awaiting a milestone, awaiting the payout, in "
        "force or completed (every milestone met, kept open for the window); the request "
        "becomes `revoked` (closed), milestones not met close as revoked, payments already "
        "recorded are listed in `to_reverse`, and everyone who decided is told. 409 naming "
        "why otherwise: not approved (withdraw instead), the payout was made, the window "
        "ended, no window in the policy."
    ),
    responses=_ACTION_ERRORS,
)
async def revoke(
    request_id: RequestId,
    body: RevokeBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    as_requester = row.requester == user.id
    if not (as_requester or user.is_admin):
        raise _forbidden("only the requester or an administrator may revoke this request")
    payload = RevokeInput(actor=user.id, comment=body.comment, as_admin=not as_requester)
    try:
        return reader.view(
            await commands.run_update(
                services, session, row.id, user.id, Updates.REVOKE, payload, idempotency_key
            )
        )
    except ApiError as err:
        if err.code != ErrorCode.INVALID_STATE.value or err.message != commands.CLOSED:
            raise
        # Its process has ended (no update reaches it): the read-model says why.
        closed = await commands.read_view(session, row.id)
        raise ApiError.from_domain(closed_revoke_refusal(closed)) from err


@router.post(
    "/{request_id}/urge",
    response_model=RequestView,
    summary="Urge the current approvers (催办)",
    description=(
        "The requester urges the approvers of the open stage: each is told at once, marked "
        "urgent, on every channel they chose (never held to working hours). At most once per "
        "round of a stage within the policy's `urge.interval` (default 1 working hour): 429 "
        "`too_soon` with `Retry-After` and `details.next_allowed_at` before then. 403 for "
        "anyone but the requester; 409 when no stage waits for a decision."
    ),
    responses=responses(401, 403, 404, 409, *BODY_ERRORS, 429, 503),
)
async def urge(
    request_id: RequestId,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    body: UrgeBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    if row.requester != user.id:
        raise _forbidden("only the requester may urge the approvers")
    payload = UrgeInput(actor=user.id, comment=body.comment if body is not None else None)
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.URGE, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/reassign",
    response_model=RequestView,
    summary="Reassign a pending step (administrators)",
    description=(
        "An administrator moves the step `from_user` holds on the open stage to `to_user`, "
        "whatever the directory says, with a reason: the new holder gets the stage's reply "
        "timer afresh and a notice with decision links, the old holder is told. 403 for "
        "anyone but an administrator; 422 naming `to_user` (unknown, inactive, the requester, "
        "already holding it) or `from_user` (holds no pending step); 409 when no step is pending."
    ),
    responses=_ACTION_ERRORS,
)
async def reassign(
    request_id: RequestId,
    body: ReassignBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    if not user.is_admin:
        raise _forbidden("only an administrator may reassign a step")
    row = await _target(session, user, request_id)
    found = await get_user(session, body.to_user)
    await session.commit()
    if found is None or not found.active:
        raise field_errors([("to_user", f"{body.to_user!r} is not an active user")])
    payload = ReassignInput(
        actor=user.id, from_user=body.from_user, to_user=body.to_user, comment=body.comment
    )
    return reader.view(
        await commands.run_update(
            services, session, row.id, user.id, Updates.REASSIGN, payload, idempotency_key
        )
    )


@router.post(
    "/{request_id}/comments",
    response_model=RequestView,
    summary="Comment on a request (评论)",
    description=(
        "Anyone who may read the request comments on it without deciding: `{body, mentions, "
        "attachments}`. The people in `mentions` (user ids) are told; each must be able to "
        "read the request already, else 422 naming them (a mention never opens a request to "
        "anyone). Files are ids from `POST /v1/attachments`. Allowed in every state while "
        "the request is open; 409 once it is closed. Answers the request's view."
    ),
    responses=_ACTION_ERRORS,
)
async def comment(
    request_id: RequestId,
    body: CommentBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    reader: ReaderDep,
    idempotency_key: IdempotencyKey = None,
) -> RequestView:
    row = await _target(session, user, request_id)
    refs, claim = await attaching.attach(
        services,
        session,
        user_id=user.id,
        request_id=row.id,
        what="comment",
        ids=body.attachments,
        idempotency_key=idempotency_key,
        text=body.body,
    )
    payload = CommentInput(
        actor=user.id, comment=body.body, mentions=body.mentions, attachments=refs
    )
    try:
        return reader.view(
            await attaching.run_update(
                services,
                session,
                row.id,
                user.id,
                Updates.COMMENT,
                payload,
                idempotency_key,
                refs,
                claim,
            )
        )
    except ApiError as err:
        if err.code != ErrorCode.INVALID_STATE.value:
            raise
        closed = await commands.read_view(session, row.id)
        raise ApiError(
            409,
            err.code,
            f"the request is {closed.status} and closed: comments are taken only while it is open",
            {"status": closed.status},
        ) from err


@router.get(
    "/{request_id}/comments",
    response_model=list[CommentOut],
    summary="The comments on a request",
    description="Oldest first, each with the people it mentions and its files. 404 for a "
    "request you may not read.",
    responses=responses(401, 404, 422),
)
async def comments(
    request_id: RequestId, user: CurrentUser, session: SessionDep
) -> list[CommentOut]:
    row = await _visible(session, user, request_id)
    files = {m.id: m for m in await attachments.of_request(session, row.id)}
    found: list[CommentOut] = []
    for event in await q.request_history(session, row.id):
        if event.kind != EventKind.COMMENTED:
            continue
        data = event.data or {}
        refs = [r.get("id") for r in data.get("attachments", []) if isinstance(r, dict)]
        found.append(
            CommentOut(
                seq=event.seq,
                at=event.at,
                actor=event.actor,
                on_behalf_of=event.on_behalf_of,
                body=event.comment or "",
                mentions=list(data.get("mentions", [])),
                attachments=[attaching.described(files[i]) for i in refs if i in files],
            )
        )
    return found
