"""``/v1/policies``: the request types, their rules, and route previews."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import CalendarDep, CurrentUser, LanguageDep, PoliciesDep, SessionDep
from api.errors import BODY_ERRORS, ApiError, field_errors, responses
from api.schemas import (
    PolicyList,
    PolicySummary,
    Preview,
    PreviewBody,
    PreviewDeadline,
    PreviewRevoke,
    PreviewSlot,
    PreviewStage,
)
from db.directory import route_details
from domain.core.admission import add_rule
from domain.deadline_preview import preview_deadlines
from domain.errors import ErrorCode
from domain.inbound import Id
from domain.localize import stage_text
from domain.policy import SEND_BACK_TO_REQUESTER, Policy
from domain.requests import condition_values, validate_fields
from domain.resolution import settle
from domain.routing import resolve_route
from domain.submitters import submittable as may_submit_all

router = APIRouter(prefix="/v1/policies", tags=["policies"])

PolicyType = Annotated[Id, Path(description="The request type.")]


def _policy(policies: dict[str, Policy], type_: str) -> Policy:
    policy = policies.get(type_)
    if policy is None:
        raise ApiError(
            404,
            ErrorCode.NOT_FOUND.value,
            f"no request type {type_!r}",
            {"known_types": sorted(policies)},
        )
    return policy


@router.get(
    "",
    response_model=PolicyList,
    summary="List the request types",
    description=(
        "Every request type, in the caller's language. With `submittable=true`, only those "
        "the caller may submit (a policy's `submitters` names who may; `POST /v1/requests` "
        "refuses anyone else with 403, by the same rule)."
    ),
    responses=responses(401, 422),
)
async def list_policies(
    user: CurrentUser,
    policies: PoliciesDep,
    lang: LanguageDep,
    submittable: Annotated[
        bool, Query(description="Only the types the caller may submit.")
    ] = False,
) -> PolicyList:
    shown = (
        may_submit_all(policies.values(), user.id, user.roles)
        if submittable
        else sorted(policies.values(), key=lambda p: p.type)
    )
    return PolicyList(
        items=[
            PolicySummary(
                type=p.type,
                title=p.title.get(lang),
                version=p.version,
                description=p.description.strip(),
            )
            for p in shown
        ]
    )


@router.get(
    "/{policy_type}",
    response_model=Policy,
    summary="One request type's rules",
    description="The whole policy: fields, hard rules, stages with conditions, timers "
    "(ISO-8601 durations) and milestones.",
    responses=responses(401, 404, 422),
)
async def get_policy(policy_type: PolicyType, user: CurrentUser, policies: PoliciesDep) -> Policy:
    return _policy(policies, policy_type)


@router.post(
    "/{policy_type}/preview",
    response_model=Preview,
    summary="Preview a request's route",
    description=(
        "The stages a request with these values would take, why each applies, and the people "
        "it would reach today with the caller as the requester. Takes the body of "
        "`POST /v1/requests` as it is (its `title` and `comment` are checked, then ignored; "
        "a `type` must be the path's). Invalid fields and broken hard rules are answered as "
        "for a submission (422)."
    ),
    responses=responses(401, 404, *BODY_ERRORS),
)
async def preview(
    policy_type: PolicyType,
    body: PreviewBody,
    user: CurrentUser,
    policies: PoliciesDep,
    calendar: CalendarDep,
    session: SessionDep,
    lang: LanguageDep,
) -> Preview:
    policy = _policy(policies, policy_type)
    if body.type is not None and body.type != policy.type:
        raise field_errors(
            [("type", f"must be {policy.type!r}, the request type of the path, or left out")]
        )
    fields = validate_fields(policy, body.amount, body.fields)
    route = resolve_route(policy, body.amount, fields)
    now = datetime.now(UTC)
    stages: list[PreviewStage] = []
    rules = policy.resolution
    # Where each stage may send the request back (admission.send_back_target): the
    # requester, or any stage before it, which it has passed by the time it decides.
    passed: list[str] = [SEND_BACK_TO_REQUESTER]
    for stage, detail in await route_details(
        session, user.id, route.stages, now, rules.empty_slot_role, policy.type
    ):
        # Settled as the submission and the process settle it (domain.resolution).
        settled = settle(detail, user.id, rules, now, submitting=True)
        people = list(dict.fromkeys(a.user for x in settled for a in x.slot.actors))
        name, reason = stage_text(
            policy, stage.key, stage.name, stage.reason, condition_values(body.amount, fields), lang
        )
        stages.append(
            PreviewStage(
                key=stage.key,
                name=name,
                mode=stage.mode,
                reason=reason,
                approvers=[a.describe() for a in stage.approvers],
                people=people,
                slots=[
                    PreviewSlot(
                        label=x.slot.label,
                        people=[a.user for a in x.slot.actors],
                        applies=x.applies,
                    )
                    for x in settled
                ],
                add_approvers=add_rule(policy, stage.key),
                send_back_to=list(passed) if policy.send_back.allowed else [],
            )
        )
        passed.append(stage.key)
    deadlines = (
        [
            PreviewDeadline(
                clock=d.clock,
                span=d.span.describe(lang),
                due=d.due.at,
                working=d.due.working,
                provisional=d.due.provisional,
            )
            for d in preview_deadlines(policy, calendar, now)
        ]
        if route.stages
        else []
    )
    return Preview(
        policy_type=route.policy_type,
        policy_version=route.policy_version,
        stages=stages,
        deadlines=deadlines,
        resolution=rules,
        send_back=policy.send_back,
        revoke=PreviewRevoke(
            allowed=policy.revoke is not None,
            within=policy.revoke.within.describe(lang) if policy.revoke is not None else None,
            until_payout=policy.revoke is not None and policy.payout is not None,
        ),
    )
