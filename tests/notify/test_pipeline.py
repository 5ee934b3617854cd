"""The delivery activities on a real PostgreSQL with real receivers: fan-out, sending,
faults, retries with backoff recorded on the row, and no duplicate at the receiver."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery import DeliveryActivities
from common.policy_store import load_policies
from db.deliveries import retry_delivery
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow, UserRow
from domain.delivery import DeliverInput, DeliverNoticesInput
from notify.robots import RobotChannel, RobotConfig
from notify.webhooks import Subscriber
from tests.support.notify import add_notice, add_request, hold_step, make_notifier, set_preferences
from tests.support.paths import ROOT
from tests.support.receivers import MailBox, free_port, http_receiver, smtp_server

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def deliveries(sessions: Sessions) -> list[DeliveryRow]:
    async with sessions() as s:
        return list(await s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


async def make_due(sessions: Sessions) -> None:
    """Skip the backoff: what the clock would do minutes later."""
    async with transaction(sessions) as s:
        await s.execute(
            update(DeliveryRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def one_pass(acts: DeliveryActivities) -> list[str]:
    """What the DeliverNotices workflow does, without Temporal: plan, claim, deliver each."""
    batch = await acts.plan_and_claim(DeliverNoticesInput())
    return [
        (await acts.deliver(DeliverInput(delivery_id=c.delivery_id))).status for c in batch.claimed
    ]


async def test_assigned_notice_is_mailed_once_in_the_users_locale(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned", stage="Big-customer department signs")
    await set_preferences(sessions, "bcd_zheng", locale="en", time_zone="Europe/Berlin")
    box = MailBox()
    async with smtp_server(box) as port:
        acts = DeliveryActivities(sessions, make_notifier(port))
        assert await one_pass(acts) == ["sent"]
        assert await one_pass(acts) == []  # nothing due any more
        [row] = await deliveries(sessions)
        # a stray second run of the activity sends nothing
        assert (await acts.deliver(DeliverInput(delivery_id=row.id))).status == "sent"
    [msg] = box.messages
    assert box.envelopes[0][1] == ["bcd_zheng@demo.example"]
    assert msg["Message-ID"] == f"<{row.dedupe_id}@corp.test>"
    assert msg["Subject"] == "Your decision is needed: Annual supply contract"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "250,000.00" in text and "2026-12-03 02:00 (Europe/Berlin)" in text
    assert f"https://approvals.example/inbox#request={rid}" in text
    assert (row.status, row.attempts, row.channel, row.target) == (
        "sent",
        1,
        "email",
        "bcd_zheng@demo.example",
    )
    assert row.sent_at is not None


async def test_default_locale_is_chinese_and_in_app_only_kinds_make_no_deliveries(
    sessions: Sessions,
) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "dsd_liu", "reminder")
    await add_notice(sessions, rid, "od_peng", "cc_submitted")
    box = MailBox()
    async with smtp_server(box) as port:
        assert await one_pass(DeliveryActivities(sessions, make_notifier(port))) == ["sent"]
    [msg] = box.messages
    assert msg["Subject"].startswith("催办")
    async with sessions() as s:
        assert all(n.fanned_out_at is not None for n in await s.scalars(select(NotificationRow)))


async def test_user_without_address_is_recorded_as_skipped_with_the_reason(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as s:
        await s.execute(update(UserRow).where(UserRow.id == "bcd_zheng").values(email=None))
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    await set_preferences(sessions, "bcd_zheng", channels=["email", "wecom"])
    async with smtp_server(MailBox()) as port:
        assert await one_pass(DeliveryActivities(sessions, make_notifier(port))) == []
    rows = await deliveries(sessions)
    assert [(r.channel, r.status, r.last_error) for r in rows] == [
        ("email", "skipped", "user bcd_zheng has no e-mail address"),
        ("wecom", "skipped", "the wecom robot is not configured"),
    ]


async def test_smtp_down_records_why_and_retries_later_then_sends_once(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    port = free_port()
    acts = DeliveryActivities(sessions, make_notifier(port))
    assert await one_pass(acts) == ["pending"]
    [row] = await deliveries(sessions)
    assert row.attempts == 1 and "unreachable" in (row.last_error or "")
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=5)  # backoff
    assert await one_pass(acts) == []  # not due yet
    box = MailBox()
    async with smtp_server(box, port=port):
        await make_due(sessions)
        assert await one_pass(acts) == ["sent"]
    [row] = await deliveries(sessions)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(box.messages) == 1


async def test_backoff_grows_and_gives_up_after_max_attempts(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    acts = DeliveryActivities(sessions, make_notifier(free_port(), max_attempts=3))
    waits = []
    for expected in ("pending", "pending", "failed"):
        before = datetime.now(UTC)
        assert await one_pass(acts) == [expected]
        [row] = await deliveries(sessions)
        waits.append(row.next_attempt_at - before)
        await make_due(sessions)
    assert waits[1] > waits[0]
    assert row.status == "failed" and row.attempts == 3


async def test_smtp_refusing_fails_for_good_and_an_admin_retry_sends_it(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    box = MailBox(refuse="550 5.1.1 no such mailbox")
    async with smtp_server(box) as port:
        acts = DeliveryActivities(sessions, make_notifier(port))
        assert await one_pass(acts) == ["failed"]
        [row] = await deliveries(sessions)
        assert "550 5.1.1 no such mailbox" in (row.last_error or "")
        box.refuse = None
        async with transaction(sessions) as s:
            await retry_delivery(s, row.id, datetime.now(UTC))
        assert await one_pass(acts) == ["sent"]
    assert len(box.messages) == 1


async def test_a_send_repeated_after_a_crash_carries_the_same_dedupe_id(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    box = MailBox()
    with http_receiver() as recv:
        sub = Subscriber(name="erp", url=recv.url, secret=SECRET)
        async with smtp_server(box) as port:
            acts = DeliveryActivities(sessions, make_notifier(port, subscribers=[sub]))
            assert sorted(await one_pass(acts)) == ["sent", "sent"]
            # The worker died after the receivers answered and before the rows said "sent":
            async with transaction(sessions) as s:
                await s.execute(update(DeliveryRow).values(status="pending", attempts=0))
            await make_due(sessions)
            assert sorted(await one_pass(acts)) == ["sent", "sent"]
    assert len(box.messages) == 2
    assert box.messages[0]["Message-ID"] == box.messages[1]["Message-ID"]
    assert len(recv.hits) == 2
    assert recv.hits[0].headers["webhook-id"] == recv.hits[1].headers["webhook-id"]


async def test_webhook_answering_500_then_hanging_is_retried_and_recorded(
    sessions: Sessions,
) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "cd_xu", "cc_submitted")  # in-app only for cd_xu
    await set_preferences(sessions, "cd_xu", channels=[])
    with http_receiver() as recv:
        sub = Subscriber(name="erp", url=recv.url, secret=SECRET)
        acts = DeliveryActivities(
            sessions, make_notifier(free_port(), subscribers=[sub], webhook_timeout=0.5)
        )
        recv.status = 500
        assert await one_pass(acts) == ["pending"]
        [row] = await deliveries(sessions)
        assert "answered 500" in (row.last_error or "")
        recv.status, recv.delay = 200, 2
        await make_due(sessions)
        assert await one_pass(acts) == ["pending"]
        [row] = await deliveries(sessions)
        assert "no answer within 0.5 s" in (row.last_error or "") and row.attempts == 2
        recv.delay = 0
        await make_due(sessions)
        assert await one_pass(acts) == ["sent"]
    event = recv.hits[-1].json()
    assert event["type"] == "notice.cc_submitted" and event["data"]["request_id"] == rid


async def test_robot_error_json_is_recorded_and_retried(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "escalated")
    await set_preferences(sessions, "bcd_zheng", channels=["dingtalk"])
    with http_receiver() as recv:
        recv.answer = {"errcode": 130101, "errmsg": "send too fast"}
        robot = RobotChannel(RobotConfig("dingtalk", recv.url, secret="SEC1"))
        acts = DeliveryActivities(sessions, make_notifier(free_port(), robots={"dingtalk": robot}))
        assert await one_pass(acts) == ["pending"]
        [row] = await deliveries(sessions)
        assert "130101 send too fast" in (row.last_error or "")
        recv.answer = {"errcode": 0, "errmsg": "ok"}
        await make_due(sessions)
        assert await one_pass(acts) == ["sent"]
    assert "Annual supply contract" in recv.hits[-1].json()["markdown"]["text"]


async def test_a_template_error_fails_the_delivery_with_the_reason(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "brand_new_kind")
    with http_receiver() as recv:
        sub = Subscriber(name="erp", url=recv.url, secret=SECRET)
        acts = DeliveryActivities(sessions, make_notifier(free_port(), subscribers=[sub]))
        assert await one_pass(acts) == ["failed"]
    [row] = await deliveries(sessions)
    assert "no template for notice kind 'brand_new_kind'" in (row.last_error or "")
    assert recv.hits == []


async def test_old_notices_are_not_sent_late(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    nid = await add_notice(sessions, rid, "bcd_zheng", "assigned")
    async with transaction(sessions) as s:
        await s.execute(
            update(NotificationRow)
            .where(NotificationRow.id == nid)
            .values(created_at=datetime.now(UTC) - timedelta(days=30))
        )
    assert await one_pass(DeliveryActivities(sessions, make_notifier(free_port()))) == []
    assert await deliveries(sessions) == []


async def test_a_backlog_on_a_channel_that_is_down_never_holds_up_another_channel(
    sessions: Sessions,
) -> None:
    rid = await add_request(sessions)
    for _ in range(8):
        await add_notice(sessions, rid, "bcd_zheng", "reminder")
    await add_notice(sessions, rid, "dsd_liu", "assigned")
    await set_preferences(sessions, "bcd_zheng", channels=["email"])
    await set_preferences(sessions, "dsd_liu", channels=["wecom"])
    with http_receiver() as recv:
        robot = RobotChannel(RobotConfig("wecom", recv.url))
        acts = DeliveryActivities(
            sessions, make_notifier(free_port(), robots={"wecom": robot}, smtp_timeout=1)
        )
        batch = await acts.plan_and_claim(DeliverNoticesInput(batch=3))
        assert sorted(c.channel for c in batch.claimed) == ["email"] * 3 + ["wecom"]
        wecom = next(c for c in batch.claimed if c.channel == "wecom")
        assert (await acts.deliver(DeliverInput(delivery_id=wecom.delivery_id))).status == "sent"
    assert len(recv.hits) == 1


async def test_decision_links_reach_the_mail_when_a_link_maker_is_given(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")
    box = MailBox()

    held = await hold_step(sessions, rid, "bcd_zheng", stage_index=0)

    def links(user_id: str, request_id: str, stage_index: int, since: datetime) -> dict[str, str]:
        return {
            a: f"https://x/act/{user_id}/{request_id}/{stage_index}/{since:%s%f}/{a}"
            for a in ("approve", "reject")
        }

    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        notifier.renderer.action_links = links
        assert await one_pass(DeliveryActivities(sessions, notifier)) == ["sent"]
    html = box.messages[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Bound to the round of the step the recipient holds, to the microsecond.
    assert f'href="https://x/act/bcd_zheng/{rid}/0/{held:%s%f}/approve"' in html


async def test_no_decision_links_once_the_step_has_moved_on(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "assigned")  # nobody holds a step now
    box = MailBox()

    def links(user_id: str, request_id: str, stage_index: int, since: datetime) -> dict[str, str]:
        raise AssertionError("no links for a step nobody holds")

    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        notifier.renderer.action_links = links
        assert await one_pass(DeliveryActivities(sessions, notifier)) == ["sent"]
    html = box.messages[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/act/" not in html


async def test_a_notice_names_the_type_and_stage_in_each_recipients_language(
    sessions: Sessions,
) -> None:
    # The workflow names the stage in the default language (en); the route has its key.
    signs = "Big-customer management department signs"
    stages = [{"key": "big_customer_dept_sign", "name": signs}]
    rid = await add_request(sessions, view={"stages": stages}, route={"stages": stages})
    await add_notice(sessions, rid, "bcd_zheng", "assigned", stage=signs)
    await add_notice(sessions, rid, "sh_zhou", "assigned", stage=signs)
    await set_preferences(sessions, "bcd_zheng", locale="zh-CN")
    await set_preferences(sessions, "sh_zhou", locale="en")
    box = MailBox()
    async with smtp_server(box) as port:
        notifier = make_notifier(port, policies=load_policies(ROOT / "policies"))
        assert await one_pass(DeliveryActivities(sessions, notifier)) == ["sent", "sent"]
    texts = {
        to[0]: msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for (_, to), msg in zip(box.envelopes, box.messages, strict=True)
    }
    zh = texts["bcd_zheng@demo.example"]
    assert "在“大客户管理部签署”环节" in zh and "环节: 大客户管理部签署" in zh
    assert "申请类型: 大客户合同" in zh and signs not in zh
    en = texts["sh_zhou@demo.example"]
    assert f"at stage {signs}." in en and "Request type: Big-customer contract" in en
