"""Rendering a notice for one person: Jinja2 templates in zh-CN and en.

The wording of each notice kind is in ``templates/notices.<locale>.yaml``
(a subject and a line, each a Jinja2 template); the layouts are
``email.html.j2`` (autoescaped), ``email.txt.j2`` and ``robot.md.j2``. Undefined
names are errors (``StrictUndefined``), so a broken template fails its delivery
with the reason instead of sending half a message.

Decision links: for the kinds in :data:`ACTION_KINDS`, and only for a message
whose :class:`~notify.message.Audience` is one person (the channel says so: the
recipient's e-mail), the renderer asks the injected ``action_links(user_id,
request_id, stage_index, step_since)`` for ``{"approve": url, "return": url, "reject": url}``;
the default gives None, and the message has no buttons. A message for a group (a
robot's chat, a webhook subscriber) never has them, whatever the kind: it links to
the request page, where the reader signs in as themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from pydantic import BaseModel

from domain.localize import stage_name
from domain.policy import Policy
from notify.message import Audience, Rendered, SendError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LOCALES = ("zh-CN", "en")
ACTION_KINDS = frozenset(
    {"assigned", "reminder", "escalated", "sent_back", "urged", "reassigned_to"}
)
"""Notices that ask the recipient to decide: they may carry approve/return/reject links."""

ActionLinks = Callable[[str, str, int, datetime], dict[str, str] | None]
"""(user, request, stage index the user holds, round of that step) → the decision links,
or None."""


def no_action_links(
    user_id: str, request_id: str, stage_index: int, step_since: datetime
) -> dict[str, str] | None:
    """The default: no decision links (the message links to the request only)."""
    return None


class NoticeFacts(BaseModel):
    """What a notice is about, gathered from its payload and the request row."""

    kind: str
    recipient: str
    recipient_name: str
    request_id: str | None
    title: str
    amount: Decimal | None = None
    stage: str | None = None
    stage_index: int | None = None
    """The stage the recipient holds a pending step on, now: decision links bind to it."""
    step_since: datetime | None = None
    """The round of that step (when the recipient became eligible on it): links bind to it."""
    deadline: datetime | None = None
    customer: str | None = None
    request_type: str | None = None
    policy_type: str | None = None
    """The request's policy: its type title and stage names in the recipient's language."""
    stage_key: str | None = None
    """The key of :attr:`stage` (stored in the default language) in that policy."""
    extra: dict[str, Any] = {}
    """The rest of the payload (milestone, outcome, reference, next_review, step)."""


def format_amount(amount: Decimal | None) -> str | None:
    if amount is None:
        return None
    try:
        return f"{Decimal(amount):,.2f}"
    except (InvalidOperation, ValueError):
        return str(amount)


def zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")  # pragma: no cover


def format_deadline(deadline: datetime | None, tz: ZoneInfo) -> str | None:
    if deadline is None:
        return None
    return f"{deadline.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key})"


def _as_date(value: Any, tz: ZoneInfo) -> Any:
    """ISO timestamps in the payload (due, next_review) shown in the user's zone."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return format_deadline(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    return value


@cache
def _catalogue(directory: Path, locale: str) -> dict[str, dict[str, str]]:
    data = yaml.safe_load((directory / f"notices.{locale}.yaml").read_text(encoding="utf-8"))
    return dict(data)


class Renderer:
    """Renders :class:`NoticeFacts` for one locale and time zone."""

    def __init__(
        self,
        public_base_url: str,
        *,
        action_links: ActionLinks = no_action_links,
        default_locale: str = "zh-CN",
        default_time_zone: str = "Asia/Shanghai",
        template_dir: Path = TEMPLATE_DIR,
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self.base = public_base_url.rstrip("/")
        self.policies: Mapping[str, Policy] = policies or {}
        """The policies the worker runs: type titles and stage names in each language."""
        self.action_links = action_links
        self.default_locale = default_locale
        self.default_time_zone = default_time_zone
        self.template_dir = template_dir
        loader = FileSystemLoader(str(template_dir))
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
        self._plain = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)
        # The catalogue's wording, compiled once per text: compiling is most of a render.
        self._wording = lru_cache(maxsize=1024)(self._plain.from_string)

    def link(self, request_id: str | None) -> str:
        """The request in the web UI (or the UI's start page for a notice without one)."""
        # The web inbox opens one request from its fragment (api/web/static/inbox/token.js).
        return f"{self.base}/inbox#request={request_id}" if request_id else f"{self.base}/inbox"

    def _policy(self, facts: NoticeFacts) -> Policy | None:
        return self.policies.get(facts.policy_type) if facts.policy_type else None

    def _stage(self, facts: NoticeFacts, loc: str) -> str | None:
        """The stage's name in ``loc`` (as the notice has it when the policy lacks it)."""
        if facts.stage is None or facts.stage_key is None:
            return facts.stage
        return stage_name(self._policy(facts), facts.stage_key, facts.stage, loc)

    def _type_title(self, facts: NoticeFacts, loc: str) -> str | None:
        policy = self._policy(facts)
        return policy.title.get(loc) if policy is not None else None

    def render(
        self,
        facts: NoticeFacts,
        locale: str | None,
        time_zone: str | None,
        *,
        audience: Audience = Audience.GROUP,
    ) -> Rendered:
        """Render, or raise a permanent :class:`SendError` naming what is wrong.

        ``audience`` is the channel's: decision links are made for
        :attr:`Audience.PERSON` only. The default is the safe one (no links).
        """
        try:
            return self._render(facts, locale, time_zone, audience)
        except (TemplateError, KeyError, TypeError, OSError, yaml.YAMLError) as exc:
            raise SendError(
                f"template error ({facts.kind}, {locale or self.default_locale}): "
                f"{type(exc).__name__}: {exc}",
                permanent=True,
            ) from exc

    def _render(
        self, facts: NoticeFacts, locale: str | None, time_zone: str | None, audience: Audience
    ) -> Rendered:
        loc = locale if locale in LOCALES else self.default_locale
        tz = zone(time_zone, self.default_time_zone)
        catalogue = _catalogue(self.template_dir, loc)
        if facts.kind not in catalogue:
            raise KeyError(f"no template for notice kind {facts.kind!r}")
        wording = catalogue[facts.kind]
        # Someone added (加签) who may decide at once is asked to, as an assigned approver is;
        # one queued behind others is told only (their links come when it is their turn).
        asks_decision = facts.kind in ACTION_KINDS or (
            facts.kind == "approver_added" and facts.extra.get("now") is True
        )
        actions = None
        if (
            audience is Audience.PERSON
            and asks_decision
            and facts.request_id
            and facts.stage_index is not None
            and facts.step_since is not None
        ):
            actions = self.action_links(
                facts.recipient, facts.request_id, facts.stage_index, facts.step_since
            )
            actions = actions or None
        values: dict[str, Any] = {
            "milestone": None,
            "outcome": None,
            "reference": None,
            "next_review": None,
            "step": None,
            "working_time": None,
            "provisional": None,
            "rule": None,
            "at_stage": None,
            **{k: _as_date(v, tz) for k, v in facts.extra.items()},
            "recipient_name": facts.recipient_name,
            "title": facts.title,
            "amount": format_amount(facts.amount),
            "stage": self._stage(facts, loc),
            "type_title": self._type_title(facts, loc),
            "deadline": format_deadline(facts.deadline, tz) or _as_date(facts.extra.get("due"), tz),
            "customer": facts.customer,
            "request_type": facts.request_type,
        }
        strings = self._plain
        labels = {k: self._wording(v).render(values) for k, v in catalogue["_labels"].items()}
        if values["deadline"] and facts.extra.get("working_time"):
            # Counted on the business calendar: say so, and whether only provisionally.
            notes = [labels["working_time"]]
            if facts.extra.get("provisional"):
                notes.append(labels["provisional"])
            values["deadline"] = " ".join([values["deadline"], *notes])
        subject = self._wording(wording["subject"]).render(values)
        line = self._wording(wording["line"]).render(values)
        context = {
            **values,
            "locale": loc,
            "subject": subject,
            "line": line,
            "greeting": labels["greeting"],
            "labels": labels,
            "link": self.link(facts.request_id),
            "actions": actions,
            "asks_decision": asks_decision,
        }
        return Rendered(
            kind=facts.kind,
            locale=loc,
            subject=" ".join(subject.split()),
            text=strings.get_template("email.txt.j2").render(context),
            html=self._html.get_template("email.html.j2").render(context),
            markdown=strings.get_template("robot.md.j2").render(context).strip(),
            link=context["link"],
            audience=audience,
            actions=actions,
            facts={k: v for k, v in values.items() if v is not None},
        )
