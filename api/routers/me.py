"""``/v1/me``: who the bearer token speaks for, and how they want to hear of notices."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import responses
from api.schemas import Me
from db.preferences import get_preferences, saved_locale, set_preferences, update_preferences
from notify.preferences import Preferences, PreferencesPatch

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get(
    "",
    response_model=Me,
    summary="Who I am",
    description="The directory entry of the caller: name, roles, manager; and the language "
    "saved for them (`locale`, null when none is).",
    responses=responses(401),
)
async def who_am_i(user: CurrentUser, session: SessionDep) -> Me:
    return Me(
        id=user.id,
        name=user.name,
        email=user.email,
        roles=sorted(user.roles),
        manager=user.manager_id,
        is_admin=user.is_admin,
        locale=await saved_locale(session, user.id),
    )


@router.get(
    "/preferences",
    response_model=Preferences,
    summary="My notice preferences",
    description=(
        "Where notices that need my attention go besides the in-app list (`channels`), in "
        "which language (`locale`) and with deadlines in which time zone (`time_zone`). "
        "Unset values are the defaults (e-mail; the deployment's locale and time zone)."
    ),
    responses=responses(401),
)
async def my_preferences(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Preferences:
    return await get_preferences(
        session, user.id, settings.default_locale, settings.default_time_zone
    )


@router.put(
    "/preferences",
    response_model=Preferences,
    summary="Set my notice preferences",
    description=(
        "Replace my preferences. `channels`: any of `email`, `dingtalk`, `wecom`, `feishu`, "
        "each at most once (empty: in-app only); `locale`: `zh-CN` or `en`; `time_zone`: an "
        "IANA name such as `Asia/Shanghai`. All three become my own choice, which a later "
        "reload of the org file keeps; one left out is the deployment's default (e-mail, "
        "its locale and time zone). To change some only, `PATCH`."
    ),
    responses=responses(400, 401, 413, 415, 422),
)
async def set_my_preferences(
    body: Preferences, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Preferences:
    # Left out: the deployment's defaults, as GET answers them for what nobody chose.
    defaults = {"locale": settings.default_locale, "time_zone": settings.default_time_zone}
    body = body.model_copy(
        update={k: v for k, v in defaults.items() if k not in body.model_fields_set}
    )
    await set_preferences(session, user.id, body)
    return body


@router.patch(
    "/preferences",
    response_model=Preferences,
    summary="Change some of my notice preferences",
    description=(
        "Set only the preferences the body carries (as `PUT` takes them); each becomes my own "
        "choice, which a later reload of the org file keeps. Those left out stay as they are: "
        "the org file's or the defaults, following their changes. Null is refused. Answers "
        "all my preferences, as `GET` does."
    ),
    responses=responses(400, 401, 413, 415, 422),
)
async def change_my_preferences(
    body: PreferencesPatch, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Preferences:
    await update_preferences(session, user.id, body.given())
    return await get_preferences(
        session, user.id, settings.default_locale, settings.default_time_zone
    )
