"""Who gets what: a user's channels, locale and time zone, and the defaults per notice kind.

In-app needs no delivery: every notice is a ``notifications`` row, which is the
in-app inbox. Outside channels carry only the notices a person should hear of
now (:data:`OUTBOUND_KINDS`: something waits for them, or their request moved);
the others (CC copies, receivable steps, reviews) stay in-app. A user's
``channels`` (org file, or ``PUT /v1/me/preferences``) say where the outbound
ones go; without a choice, e-mail.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from domain.inbound import ShortText

PersonalChannel = Literal["email", "dingtalk", "wecom", "feishu"]
"""A channel a person chooses for their notices. Only e-mail reaches them alone: the
robots post into a group chat, so what they carry has no decision links
(:class:`notify.message.Audience`)."""
Locale = Literal["zh-CN", "en"]

DEFAULT_CHANNELS: tuple[PersonalChannel, ...] = ("email",)
OUTBOUND_KINDS = frozenset(
    {
        # something waits for the recipient
        "assigned",
        "reminder",
        "escalated",
        "transferred",
        "overdue",
        "milestone_opened",
        "milestone_reminder",
        # the recipient's own request moved
        "return",
        "reject",
        "approved",
        "expired",
        "lapsed",
        "terminated",
        # sent back to the recipient's stage: it waits for them again
        "sent_back",
        "auto_approved",
        # something waits for the recipient (加签), later or now
        "approver_added",
        "revoked",
        # 催办: the requester pushes now, on every channel the approver chose
        "urged",
        # an administrator moved a step: to the new holder, and the old one is told
        "reassigned_to",
        "reassigned_away",
        # a delegation: the delegate acts for someone from now; the delegator is told
        # when someone else set one for them
        "delegation_started",
        "delegation_set_for_you",
        # someone asks the recipient to read a comment (@)
        "mentioned",
    }
)
"""Notice kinds that go to the user's outside channels; every kind is in-app."""


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)"
        ) from exc
    return value


TimeZoneName = Annotated[ShortText, AfterValidator(_known_zone)]


def _each_once(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("each channel at most once")
    return value


class Preferences(BaseModel):
    """A user's notice preferences, as stored and as ``PUT /v1/me/preferences`` takes them."""

    # One schema for what PUT takes and GET answers: FastAPI would otherwise publish
    # ``Preferences-Input`` and ``Preferences-Output`` under one title, and client
    # generators (openapi-python-client) drop both operations over the clash.
    model_config = ConfigDict(extra="forbid", json_schema_mode_override="validation")

    channels: list[PersonalChannel] = Field(
        default_factory=lambda: list(DEFAULT_CHANNELS),
        max_length=4,
        description="Outside channels for the notices that need attention (in-app is always "
        "on): `email`, `dingtalk`, `wecom`, `feishu`; empty = in-app only.",
    )
    locale: Locale = Field(default="zh-CN", description="`zh-CN` or `en`.")
    time_zone: TimeZoneName = Field(
        default="Asia/Shanghai", description="IANA time zone for deadlines in messages."
    )

    @field_validator("channels")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        return _each_once(value)


def _not_nullable(schema: dict[str, Any]) -> None:
    """Publish each field as its value's type: null is refused (``_given_with_a_value``)."""
    for name, field in schema.get("properties", {}).items():
        kinds = [k for k in field.pop("anyOf", []) if k.get("type") != "null"]
        field.pop("default", None)
        if kinds:
            schema["properties"][name] = {**kinds[0], **field}


class PreferencesPatch(BaseModel):
    """Some of a user's preferences, as ``PATCH /v1/me/preferences`` takes them.

    Only the fields given become the user's own; the others stay as they are (the org
    file's, else the defaults). A field is given with a value or left out: null is
    refused, there being no way back to the org file's value but its next reload.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable)

    channels: Annotated[list[PersonalChannel], AfterValidator(_each_once)] | None = Field(
        default=None,
        max_length=4,
        description="Outside channels for the notices that need attention (in-app is always "
        "on): `email`, `dingtalk`, `wecom`, `feishu`, each at most once; empty = in-app only.",
    )
    locale: Locale | None = Field(default=None, description="`zh-CN` or `en`.")
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA time zone for deadlines in messages."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _given_with_a_value(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("give a value, or leave the field out to keep it as it is")
        return value

    def given(self) -> dict[str, Any]:
        """The fields the body carried, with their values as stored."""
        return self.model_dump(include=self.model_fields_set)


def channels_for(kind: str, channels: list[str] | tuple[str, ...]) -> list[str]:
    """The outside channels a notice of ``kind`` goes to, for a user who chose ``channels``."""
    if kind not in OUTBOUND_KINDS:
        return []
    return list(dict.fromkeys(channels))
