"""Reminders and urgent notices planned outside working hours wait for the next working
hour (issue 14, item 9), on the real pipeline: the delivery activities, a real
PostgreSQL and a real SMTP receiver.

The activities plan with the wall clock, so the notifier gets a calendar on which
today is a holiday: whatever the hour the suite runs at, "now" is outside working
hours, and the next working hour is the opening of the next working day.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery import DeliveryActivities
from common.policy_store import PolicyError, load_policies, load_policy_file
from common.settings import get_settings
from db.deliveries import claim_due
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow
from domain.delivery import CHANNELS, DeliverInput, DeliverNoticesInput, deliver_not_before
from domain.working_time import BusinessCalendar
from notify.fanout import Recipient, plan
from notify.setup import Notifier, build_notifier
from tests.support.notify import add_notice, add_request, make_notifier, set_preferences
from tests.support.receivers import MailBox, smtp_server

Sessions = async_sessionmaker[AsyncSession]
ROOT = Path(__file__).resolve().parents[2]


def closed_today() -> BusinessCalendar:
    """Shanghai office hours, with today (in Shanghai) a day off."""
    today = datetime.now(UTC).astimezone(BusinessCalendar().zone).date()
    return BusinessCalendar(holidays=frozenset({today}))


def holding(port: int, calendar: BusinessCalendar, send_at_once: frozenset[str]) -> Notifier:
    notifier = make_notifier(port)
    notifier.calendar = calendar
    notifier.send_at_once = send_at_once
    return notifier


async def one_pass(acts: DeliveryActivities) -> list[str]:
    """What the DeliverNotices workflow does, without Temporal: plan, claim, deliver each."""
    batch = await acts.plan_and_claim(DeliverNoticesInput())
    return [
        (await acts.deliver(DeliverInput(delivery_id=c.delivery_id))).status for c in batch.claimed
    ]


async def delivery_of(sessions: Sessions, notice_id: int) -> DeliveryRow:
    async with sessions() as s:
        return (
            await s.scalars(select(DeliveryRow).where(DeliveryRow.notification_id == notice_id))
        ).one()


async def claimable_at(sessions: Sessions, at: datetime) -> list[int]:
    async with transaction(sessions) as s:
        claimed = await claim_due(s, at, 50, lambda _c, _n: timedelta(minutes=1), CHANNELS)
        await s.rollback()  # look only: leave the rows as they were
    return [c.id for c in claimed]


async def test_a_reminder_planned_at_night_is_not_sent_before_the_next_working_hour(
    sessions: Sessions,
) -> None:
    calendar = closed_today()
    rid = await add_request(sessions)
    reminder = await add_notice(sessions, rid, "bcd_zheng", "reminder", stage="Sign")
    assigned = await add_notice(sessions, rid, "bcd_zheng", "assigned", stage="Sign")
    await set_preferences(sessions, "bcd_zheng", locale="en")
    box = MailBox()
    async with smtp_server(box) as port:
        acts = DeliveryActivities(sessions, holding(port, calendar, frozenset()))
        before = datetime.now(UTC)
        assert await one_pass(acts) == ["sent"]  # the new step goes out at once
        opens = calendar.next_working_instant(before)
        assert opens > before + timedelta(minutes=1)
        row = await delivery_of(sessions, reminder)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, opens)
        assert (await delivery_of(sessions, assigned)).status == "sent"

        # Later passes in the night take nothing; the in-app notice is there already.
        assert await one_pass(acts) == []
        async with sessions() as s:
            notice = await s.get(NotificationRow, reminder)
        assert notice is not None and notice.fanned_out_at is not None
        assert await claimable_at(sessions, opens - timedelta(seconds=1)) == []
        # At the working hour the claim takes it, and it is mailed once.
        assert await claimable_at(sessions, opens) == [row.id]
        assert (await acts.deliver(DeliverInput(delivery_id=row.id))).status == "sent"
    subjects = [m["Subject"] for m in box.messages]
    assert subjects == [
        "Your decision is needed: Annual supply contract",
        "Reminder: Annual supply contract still waits for you",
    ]


async def test_a_policy_that_wants_its_reminders_at_once_gets_them_at_night(
    sessions: Sessions,
) -> None:
    rid = await add_request(sessions, type="customer_complaint", policy_type="customer_complaint")
    await add_notice(sessions, rid, "bcd_zheng", "reminder", stage="Acknowledge")
    await add_notice(sessions, rid, "bcd_zheng", "escalated", stage="Acknowledge")
    box = MailBox()
    async with smtp_server(box) as port:
        notifier = holding(port, closed_today(), frozenset({"customer_complaint"}))
        assert await one_pass(DeliveryActivities(sessions, notifier)) == ["sent", "sent"]
    assert len(box.messages) == 2


async def test_without_a_calendar_nothing_is_held(sessions: Sessions) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "overdue")
    box = MailBox()
    async with smtp_server(box) as port:
        assert await one_pass(DeliveryActivities(sessions, make_notifier(port))) == ["sent"]


def test_the_worker_notifier_holds_for_every_policy_but_those_that_opt_out(
    tmp_path: Path,
) -> None:
    """``notices: {hold_to_working_hours: false}`` in a policy file: that type's reminders
    go at once; every other type's wait (the default, additive to the format)."""
    text = (ROOT / "policies" / "customer_gift.yaml").read_text(encoding="utf-8")
    (tmp_path / "customer_gift.yaml").write_text(
        text + "notices:\n  hold_to_working_hours: false\n", encoding="utf-8"
    )
    shutil.copy(ROOT / "policies" / "customer_discount.yaml", tmp_path)
    policies = load_policies(tmp_path)
    assert not policies["customer_gift"].notices.hold_to_working_hours
    assert policies["customer_discount"].notices.hold_to_working_hours
    calendar = closed_today()
    notifier = build_notifier(get_settings(), calendar=calendar, policies=policies)
    config = notifier.plan_config()
    assert config.calendar == calendar and config.send_at_once == {"customer_gift"}


def test_a_misspelt_notices_option_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "customer_gift.yaml").read_text(encoding="utf-8")
    path = tmp_path / "customer_gift.yaml"
    path.write_text(text + "notices:\n  hold_to_working_hour: false\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"notices\.hold_to_working_hour"):
        load_policy_file(path)


async def test_an_urge_at_night_is_mailed_at_once_marked_urgent(sessions: Sessions) -> None:
    """催办 is a person pushing now: it is never held to working hours, unlike a reminder."""
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "bcd_zheng", "urged", stage="Sign", by="am_li", urgent=True)
    await add_notice(sessions, rid, "bcd_zheng", "reminder", stage="Sign")
    await set_preferences(sessions, "bcd_zheng", locale="en")
    box = MailBox()
    async with smtp_server(box) as port:
        acts = DeliveryActivities(sessions, holding(port, closed_today(), frozenset()))
        assert await one_pass(acts) == ["sent"]
    assert [m["Subject"] for m in box.messages] == [
        "Urgent: am_li asks you to decide Annual supply contract"
    ]


def test_an_urge_goes_to_every_channel_the_approver_chose() -> None:
    who = Recipient(id="bcd_zheng", email="bcd_zheng@demo.example", active=True)
    channels = ["email", "dingtalk", "feishu"]
    planned = plan("urged", who, channels, [], {"dingtalk", "feishu"})
    assert [(p.channel, p.status) for p in planned] == [
        ("email", "pending"),
        ("dingtalk", "pending"),
        ("feishu", "pending"),
    ]
    night = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # a Saturday, 23:00 in Shanghai
    for channel in channels:
        assert deliver_not_before("urged", channel, night, BusinessCalendar()) == night
    assert deliver_not_before("reminder", "email", night, BusinessCalendar()) > night
