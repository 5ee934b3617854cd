"""Personal decision links go to personal channels only, never to a group or a subscriber.

A decision link is a bearer credential: whoever holds it decides as the person it was
made for. A robot posts into a group chat and a webhook goes to another system, so
neither may ever carry one; they link to the request page, where the reader signs in
as themselves. Links are minted for real here (``common.action_links``), so a token
that slipped into any payload would be found.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery import DeliveryActivities, webhook_event
from common.action_links import ACT_PATH, decision_links
from common.settings import Settings
from db.deliveries import DeliveryJob
from db.models import DeliveryRow, NotificationRow
from notify.message import SendError
from notify.render import LOCALES, NoticeFacts
from notify.robots import RobotChannel, RobotConfig
from notify.setup import Notifier
from notify.webhooks import Subscriber
from tests.notify.test_pipeline import one_pass
from tests.notify.test_render import KINDS, facts
from tests.support.notify import add_notice, add_request, hold_step, make_notifier, set_preferences
from tests.support.receivers import MailBox, http_receiver, smtp_server

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ROBOTS = ("dingtalk", "wecom", "feishu")
REQUEST_ID = "0b6f3a52-6a3c-4bb4-9f3e-5b8f4d1c2a10"


class MintedLinks:
    """The real link maker of the worker, remembering every token it minted."""

    def __init__(self) -> None:
        self._make = decision_links(Settings(APPROVALS_ENV="development"))
        self.tokens: list[str] = []

    def __call__(self, *args: Any) -> dict[str, str]:
        urls = self._make(*args)
        self.tokens += [url.split(ACT_PATH, 1)[1] for url in urls.values()]
        return urls

    def leaked_into(self, text: str) -> list[str]:
        found = [t for t in self.tokens if t in text]
        return found + ([ACT_PATH] if ACT_PATH in text else [])


def _notifier(links: MintedLinks) -> Notifier:
    notifier = make_notifier(
        1,
        subscribers=[Subscriber(name="crm", url="https://crm.example/hook", secret=SECRET)],
        robots={
            kind: RobotChannel(RobotConfig(kind, f"https://{kind}.example/robot", "s3cret"))
            for kind in ROBOTS
        },
    )
    notifier.renderer.action_links = links
    return notifier


def _job(kind: str) -> DeliveryJob:
    """An in-memory delivery of a notice of ``kind`` to a subscriber (for its event body)."""
    notice = NotificationRow(
        id=1,
        request_id=REQUEST_ID,
        recipient="bcd_zheng",
        channel="inbox",
        template=kind,
        payload={"request_id": REQUEST_ID, "title": "Annual supply contract"},
        dedupe_key="k",
        status="pending",
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    delivery = DeliveryRow(id=1, notification_id=1, channel="webhook", target="crm", dedupe_id="d")
    return DeliveryJob(delivery=delivery, notice=notice, user=None, preference=None, request=None)


def _facts(kind: str) -> NoticeFacts:
    return facts(
        kind,
        request_id=REQUEST_ID,
        stage_index=0,
        step_since=datetime(2026, 12, 1, 1, 0, 0, 123456, tzinfo=UTC),
        amount=Decimal("250000"),
    )


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_robot_or_webhook_payload_of_any_kind_holds_a_decision_link(
    kind: str, locale: str
) -> None:
    links = MintedLinks()
    notifier = _notifier(links)
    payloads: dict[str, str] = {}
    for robot in ROBOTS:
        rendered = notifier.render_for(robot, _facts(kind), locale, "Asia/Shanghai")
        url, body = notifier.robots[robot].request(rendered)
        payloads[robot] = url + json.dumps(body, ensure_ascii=False)
        assert rendered.link.endswith(f"/inbox#request={REQUEST_ID}")
        assert rendered.link in payloads[robot]  # where the reader signs in as themselves
    rendered = notifier.render_for("webhook", _facts(kind), locale, "Asia/Shanghai")
    payloads["webhook"] = json.dumps(webhook_event(_job(kind), rendered), ensure_ascii=False)
    for channel, payload in payloads.items():
        assert links.leaked_into(payload) == [], channel
    # The same notice by e-mail, the person's own channel, does carry their links.
    mail = notifier.render_for("email", _facts(kind), locale, "Asia/Shanghai")
    if mail.actions:
        assert links.tokens and all(t in mail.text + mail.html for t in links.tokens)


def test_a_robot_refuses_a_message_made_for_one_person() -> None:
    links = MintedLinks()
    notifier = _notifier(links)
    personal = notifier.render_for("email", _facts("assigned"), "en", None)
    assert personal.actions
    for robot in ROBOTS:
        with pytest.raises(SendError) as refused:
            notifier.robots[robot].request(personal)
        assert refused.value.permanent
    with pytest.raises(SendError):
        webhook_event(_job("assigned"), personal)


async def test_the_pipeline_sends_links_by_mail_and_never_to_a_group(sessions: Sessions) -> None:
    """Through plan, claim and send, with real receivers: the robots of all three
    platforms and a webhook subscriber get the request page; the mail gets the links."""
    rid = await add_request(sessions)
    await hold_step(sessions, rid, "bcd_zheng", stage_index=0)
    for kind in ("assigned", "reminder", "escalated"):
        await add_notice(sessions, rid, "bcd_zheng", kind, stage="Big-customer department signs")
    await set_preferences(sessions, "bcd_zheng", channels=["email", *ROBOTS], locale="en")
    links = MintedLinks()
    box = MailBox()
    with http_receiver() as recv:
        async with smtp_server(box) as port:
            notifier = make_notifier(
                port,
                subscribers=[Subscriber(name="crm", url=recv.url + "/crm", secret=SECRET)],
                robots={k: RobotChannel(RobotConfig(k, f"{recv.url}/{k}")) for k in ROBOTS},
            )
            notifier.renderer.action_links = links
            assert await one_pass(DeliveryActivities(sessions, notifier)) == ["sent"] * 15
    assert sorted(h.path for h in recv.hits) == sorted(
        f"/{c}" for c in ("crm", *ROBOTS) for _ in range(3)
    )
    for hit in recv.hits:
        text = hit.path + hit.body.decode()
        assert links.leaked_into(text) == [], hit.path
        assert f"/inbox#request={rid}" in text
    assert len(box.messages) == 3
    for msg in box.messages:
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert html.count(ACT_PATH) == 3
