"""Templates: every notice kind in zh-CN and en, escaping, time zones, decision links."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from notify.message import Audience, SendError
from notify.render import ACTION_KINDS, LOCALES, TEMPLATE_DIR, NoticeFacts, Renderer

# Every kind the approval workflow and reconciliation write today (grep `_notice(`).
KINDS = [
    "assigned", "approve", "return", "reject", "transferred", "withdrawn", "milestone_met",
    "milestone_opened", "cc_submitted", "approved", "paid_out", "in_force", "review_started",
    "watch_notice", "settled", "reminder", "escalated", "overdue", "expired",
    "milestone_reminder", "lapsed", "cc_outcome", "terminated", "sent_back", "auto_approved",
    "approver_added", "cc_added", "revoked", "urged", "reassigned_to", "reassigned_away",
    "mentioned",
]  # fmt: skip
# Kinds outside any request: a delegation (db/delegations.py, api/routers/delegations.py).
DELEGATION_KINDS = ["delegation_started", "delegation_set_for_you"]
EXTRA = {
    "milestone": "Deposit",
    "outcome": "approved",
    "reference": "PAY-1",
    "next_review": "2027-06-01T00:00:00+00:00",
    "step": "Report to the manager",
    "due": "2026-12-08T02:00:00+00:00",
    "by": "bcd_zheng",
    "now": True,
}


def facts(kind: str, **over: object) -> NoticeFacts:
    values: dict[str, object] = {
        "kind": kind,
        "recipient": "bcd_zheng",
        "recipient_name": "Zheng",
        "request_id": "r-1",
        "title": "Annual supply contract",
        "amount": Decimal("250000"),
        "stage": "Big-customer department signs",
        "stage_index": 0,
        "step_since": datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
        "deadline": datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
        "customer": "ACME Ltd",
        "extra": EXTRA,
        **over,
    }
    return NoticeFacts.model_validate(values)


def test_every_locale_names_exactly_the_kinds_the_workflow_produces() -> None:
    for locale in LOCALES:
        data = yaml.safe_load((TEMPLATE_DIR / f"notices.{locale}.yaml").read_text("utf-8"))
        assert set(data) - {"_labels"} == set(KINDS) | set(DELEGATION_KINDS), locale


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", DELEGATION_KINDS)
def test_delegation_notices_name_the_people_and_the_period(kind: str, locale: str) -> None:
    payload = {
        "delegator": "bcd_zheng",
        "delegate": "price_lin",
        "starts_at": "2026-12-07 01:00 UTC",
        "ends_at": "2026-12-10 01:00 UTC",
        "scope": "*",
        "reason": "annual leave",
        "by": "dsd_liu",
    }
    out = Renderer("https://approvals.example/").render(
        facts(kind, request_id=None, title="bcd_zheng -> price_lin", extra=payload),
        locale,
        None,
    )
    for body in (out.text, out.html, out.markdown):
        assert "price_lin" in body or "bcd_zheng" in body
        assert "2026-12-10 01:00 UTC" in body
        assert "annual leave" in body
        assert "*" not in body.replace("**", "")  # "all types" is said in words
    assert "https://approvals.example/inbox" in out.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_title_amount_stage_deadline_and_link(kind: str, locale: str) -> None:
    out = Renderer("https://approvals.example/").render(facts(kind), locale, "Asia/Shanghai")
    assert "Annual supply contract" in out.subject
    for body in (out.text, out.html, out.markdown):
        assert "Annual supply contract" in body
        assert "250,000.00" in body
        assert "Big-customer department signs" in body
        assert "2026-12-01 09:30 (Asia/Shanghai)" in body
    assert "https://approvals.example/inbox#request=r-1" in out.text
    assert 'href="https://approvals.example/inbox#request=r-1"' in out.html


def test_chinese_and_english_wording_differ() -> None:
    r = Renderer("http://x")
    assert r.render(facts("assigned"), "zh-CN", None).subject.startswith("待您审批")
    assert r.render(facts("assigned"), "en", None).subject.startswith("Your decision is needed")


def test_deadline_follows_the_users_time_zone_and_defaults_to_shanghai() -> None:
    r = Renderer("http://x")
    assert (
        "2026-11-30 20:30 (America/New_York)"
        in r.render(facts("reminder"), "en", "America/New_York").text
    )
    assert "2026-12-01 09:30 (Asia/Shanghai)" in r.render(facts("reminder"), "en", None).text
    # payload timestamps too (a milestone's due date)
    assert (
        "2026-12-08 10:00 (Asia/Shanghai)"
        in r.render(facts("milestone_opened", deadline=None), "en", None).text
    )


def test_html_escapes_what_people_typed() -> None:
    out = Renderer("http://x").render(facts("assigned", title="<script>x</script>"), "en", None)
    assert "<script>x</script>" not in out.html
    assert "&lt;script&gt;x&lt;/script&gt;" in out.html
    assert "<script>x</script>" in out.text  # plain text is not HTML


def test_decision_links_only_for_kinds_that_ask_for_a_decision_and_one_person() -> None:
    asked: list[tuple[str, str]] = []

    def links(user_id: str, request_id: str, stage_index: int, since: datetime) -> dict[str, str]:
        asked.append((user_id, request_id))
        return {k: f"https://x/a/{k}?t=1&u=2" for k in ("approve", "return", "reject")}

    r = Renderer("http://x", action_links=links)
    for kind in KINDS:
        out = r.render(facts(kind), "en", None, audience=Audience.PERSON)
        if kind in ACTION_KINDS or kind == "approver_added":  # EXTRA says "now": it may decide
            assert out.actions is not None and set(out.actions) == {"approve", "return", "reject"}
            assert 'href="https://x/a/approve?t=1&amp;u=2"' in out.html
            assert "https://x/a/reject?t=1&u=2" in out.text
        else:
            assert out.actions is None and "https://x/a/" not in out.html
        # The robots' form never holds them, even in a message made for one person.
        assert "https://x/a/" not in out.markdown
        # For a group (and by default) none are asked for.
        for shared in (
            r.render(facts(kind), "en", None, audience=Audience.GROUP),
            r.render(facts(kind), "en", None),
        ):
            assert shared.actions is None
            assert "https://x/a/" not in shared.text + shared.html + shared.markdown
    assert asked == [("bcd_zheng", "r-1")] * (len(ACTION_KINDS) + 1)


def test_someone_added_who_may_decide_now_gets_decision_links_and_someone_queued_none() -> None:
    def links(user_id: str, request_id: str, stage_index: int, since: datetime) -> dict[str, str]:
        return {k: f"https://x/a/{k}" for k in ("approve", "return", "reject")}

    r = Renderer("http://x", action_links=links)
    now = r.render(
        facts("approver_added", extra={**EXTRA, "now": True}), "en", None, audience=Audience.PERSON
    )
    assert now.actions is not None and "https://x/a/approve" in now.html
    later = r.render(
        facts("approver_added", extra={**EXTRA, "now": False}), "en", None, audience=Audience.PERSON
    )
    assert later.actions is None and "https://x/a/" not in later.html


def test_without_action_links_there_are_no_buttons() -> None:
    out = Renderer("http://x").render(facts("assigned"), "en", None)
    assert out.actions is None
    assert "Decide from here" not in out.text


def test_an_unknown_kind_or_a_broken_template_is_a_permanent_failure(tmp_path: Path) -> None:
    with pytest.raises(SendError) as caught:
        Renderer("http://x").render(facts("no_such_kind"), "en", None)
    assert caught.value.permanent and "no template for notice kind" in caught.value.reason

    for name in ("email.html.j2", "email.txt.j2", "robot.md.j2", "notices.zh-CN.yaml"):
        (tmp_path / name).write_text((TEMPLATE_DIR / name).read_text("utf-8"), "utf-8")
    (tmp_path / "notices.en.yaml").write_text(
        (TEMPLATE_DIR / "notices.en.yaml")
        .read_text("utf-8")
        .replace("Overdue: {{ title }}", "Overdue: {{ titel }}"),
        "utf-8",
    )
    with pytest.raises(SendError) as caught:
        Renderer("http://x", template_dir=tmp_path).render(facts("overdue"), "en", None)
    assert caught.value.permanent and "'titel' is undefined" in caught.value.reason


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_working_time_deadline_says_so_and_whether_it_is_provisional(locale: str) -> None:
    r = Renderer("http://x")
    extra = {**EXTRA, "working_time": "4 working hours"}
    plain = r.render(facts("assigned"), locale, "Asia/Shanghai")
    working = r.render(facts("assigned", extra=extra), locale, "Asia/Shanghai")
    provisional = r.render(
        facts("assigned", extra={**extra, "provisional": True}), locale, "Asia/Shanghai"
    )
    shown = "2026-12-01 09:30 (Asia/Shanghai)"
    marker = {"en": "working time: 4 working hours", "zh-CN": "按工作时间计：4 working hours"}
    caveat = {"en": "provisional", "zh-CN": "暂定"}
    assert shown in plain.text and marker[locale] not in plain.text
    assert marker[locale] in working.text and caveat[locale] not in working.text
    assert marker[locale] in provisional.text and caveat[locale] in provisional.text
    assert marker[locale] in provisional.html and caveat[locale] in provisional.markdown


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("en", "sent back from stage Sales director approves"),
        ("zh-CN", "已从“Sales director approves”环节退回"),
    ],
)
def test_a_send_back_names_the_stage_that_sent_it_and_asks_for_a_new_decision(
    locale: str, said: str
) -> None:
    extra = {**EXTRA, "from_stage": "Sales director approves"}
    out = Renderer("https://approvals.example/").render(
        facts("sent_back", extra=extra), locale, "Asia/Shanghai"
    )
    assert said in out.text
    assert "sent_back" in ACTION_KINDS


@pytest.mark.parametrize(
    ("rule", "en", "zh"),
    [
        ("repeated", "already approved it at stage Sales head", "已在“Sales head”环节同意"),
        ("requester_skipped", "you are an approver of this step", "您本人是该环节的审批人"),
        ("empty_skipped", "nobody is named for this step", "该环节没有审批人"),
    ],
)
def test_an_automatic_approval_says_why_in_both_locales(rule: str, en: str, zh: str) -> None:
    extra = {"rule": rule, "at_stage": "Sales head"}
    renderer = Renderer("https://approvals.example/")
    assert en in renderer.render(facts("auto_approved", extra=extra), "en", None).text
    assert zh in renderer.render(facts("auto_approved", extra=extra), "zh-CN", None).text


@pytest.mark.parametrize(("locale", "said"), [("en", "2 payment(s)"), ("zh-CN", "2 笔款项")])
def test_a_revoke_notice_says_how_many_recorded_payments_need_reversing(
    locale: str, said: str
) -> None:
    with_payments = facts("revoked", extra={**EXTRA, "reversals": 2})
    assert said in Renderer("https://approvals.example/").render(with_payments, locale, None).text
    assert (
        said
        not in Renderer("https://approvals.example/").render(facts("revoked"), locale, None).text
    )


def test_an_urge_is_marked_urgent_in_both_locales_and_carries_the_requesters_note() -> None:
    r = Renderer("http://x")
    urged = facts("urged", extra={**EXTRA, "by": "am_li", "note": "signing Friday"})
    zh, en = r.render(urged, "zh-CN", None), r.render(urged, "en", None)
    assert zh.subject.startswith("【催办】am_li")
    assert en.subject.startswith("Urgent: am_li")
    assert "signing Friday" in zh.text and "signing Friday" in en.text
    assert {"urged", "reassigned_to"} <= ACTION_KINDS
    assert "reassigned_away" not in ACTION_KINDS  # the old holder decides nothing any more
