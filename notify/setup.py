"""The channels, the renderer and the planning rules, built from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from common.redaction import install_log_redaction
from common.settings import Settings
from domain.policy import Policy
from domain.working_time import BusinessCalendar
from notify.email import EmailChannel, SmtpConfig
from notify.fanout import PlanConfig
from notify.message import Audience, Rendered
from notify.render import ActionLinks, NoticeFacts, Renderer, no_action_links
from notify.robots import RobotChannel, RobotConfig
from notify.webhooks import WebhookChannel, load_subscribers


@dataclass
class Notifier:
    """What the delivery activities send with."""

    renderer: Renderer
    email: EmailChannel
    webhooks: WebhookChannel
    robots: dict[str, RobotChannel] = field(default_factory=dict)
    default_channels: tuple[str, ...] = ("email",)
    max_attempts: int = 6
    max_age: timedelta = timedelta(hours=72)
    retention: timedelta | None = timedelta(days=90)
    """Sent and skipped deliveries are deleted this long after they were planned; None
    keeps them (``APPROVALS_DELIVERY_RETENTION_DAYS``, 0 for none)."""
    concurrency: int = 8
    """Sends of one channel's batch under way at once (``APPROVALS_DELIVERY_CONCURRENCY``)."""
    calendar: BusinessCalendar | None = None
    """Reminders and urgent notices planned outside working hours on this calendar wait
    for the next working hour; None (tests, tools) sends every notice at once."""
    send_at_once: frozenset[str] = frozenset()
    """Request types whose policy says ``notices: {hold_to_working_hours: false}``."""

    def plan_config(self) -> PlanConfig:
        return PlanConfig(
            subscribers=list(self.webhooks.subscribers.values()),
            robots=set(self.robots),
            default_channels=self.default_channels,
            max_age=self.max_age,
            calendar=self.calendar,
            send_at_once=self.send_at_once,
        )

    def audience_of(self, channel: str) -> Audience:
        """Who reads what ``channel`` sends, as the channel declares it (a group if unknown)."""
        if channel == "email":
            return self.email.audience
        if channel == "webhook":
            return self.webhooks.audience
        robot = self.robots.get(channel)
        return robot.audience if robot is not None else Audience.GROUP

    def render_for(
        self, channel: str, facts: NoticeFacts, locale: str | None, time_zone: str | None
    ) -> Rendered:
        """``facts`` rendered for ``channel``: with the recipient's decision links only if
        the channel reaches the recipient alone.

        Raises:
            SendError: permanent, when a template cannot render.
        """
        return self.renderer.render(facts, locale, time_zone, audience=self.audience_of(channel))

    def timeout_of(self, channel: str) -> float:
        """The longest one send on ``channel`` may take."""
        if channel == "email":
            return self.email.timeout
        if channel == "webhook":
            return self.webhooks.timeout
        robot = self.robots.get(channel)
        return robot.timeout if robot is not None else 10.0


def build_notifier(
    settings: Settings,
    action_links: ActionLinks = no_action_links,
    *,
    calendar: BusinessCalendar | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> Notifier:
    """The notifier the settings describe.

    ``action_links(user_id, request_id, stage_index, step_since)`` gives the
    approve/return/reject links of a "your decision is needed" message for one person
    (default: none). With a ``calendar``, reminders and urgent notices wait for its next
    working hour, except those of the request types whose policy in ``policies`` says
    ``notices: {hold_to_working_hours: false}``.
    """
    robots: dict[str, RobotChannel] = {}
    for kind, url, secret in (
        ("dingtalk", settings.dingtalk_url, settings.dingtalk_secret),
        ("wecom", settings.wecom_url, None),
        ("feishu", settings.feishu_url, settings.feishu_secret),
    ):
        if url:
            robots[kind] = RobotChannel(
                RobotConfig(kind, url, secret, timeout=settings.robot_timeout_seconds)
            )
    subscribers = load_subscribers(settings.webhooks_file)
    # Masked in the logs by value too, not only by shape: the key without its prefix.
    install_log_redaction(
        text for sub in subscribers for text in (sub.secret, sub.secret.removeprefix("whsec_"))
    )
    return Notifier(
        renderer=Renderer(
            settings.public_base_url,
            action_links=action_links,
            default_locale=settings.default_locale,
            default_time_zone=settings.default_time_zone,
            policies=policies,
        ),
        email=EmailChannel(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=settings.smtp_password,
                sender=settings.mail_from,
                timeout=settings.smtp_timeout_seconds,
            )
        ),
        webhooks=WebhookChannel(subscribers, timeout=settings.webhook_timeout_seconds),
        robots=robots,
        max_attempts=settings.delivery_max_attempts,
        max_age=timedelta(hours=settings.delivery_max_age_hours),
        retention=(
            timedelta(days=settings.delivery_retention_days)
            if settings.delivery_retention_days > 0
            else None
        ),
        concurrency=settings.delivery_concurrency,
        calendar=calendar,
        send_at_once=frozenset(
            name for name, p in (policies or {}).items() if not p.notices.hold_to_working_hours
        ),
    )
