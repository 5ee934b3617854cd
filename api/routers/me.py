"""``/v1/me``: who the bearer token speaks for."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser
from api.errors import responses
from api.schemas import Me

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get(
    "",
    response_model=Me,
    summary="Who I am",
    description="The directory entry of the caller: name, roles, manager.",
    responses=responses(401),
)
async def who_am_i(user: CurrentUser) -> Me:
    return Me(
        id=user.id,
        name=user.name,
        email=user.email,
        roles=sorted(user.roles),
        manager=user.manager_id,
        is_admin=user.is_admin,
    )
