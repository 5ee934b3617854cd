"""Deciding from a message's link: the confirmation page, the one action, and every refusal.

Against the real app, worker, PostgreSQL and Temporal. A big-customer contract of
250,000 waits for bcd_zheng (stage 0), then for dsd_liu (stage 1).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.action_links import link_key, link_urls
from common.settings import Settings
from db.used_links import make_action_links, pending_step
from tests.support.api import Auth, Db

from .test_flows import Flow, contract, unique

pytestmark = pytest.mark.usefixtures("worker")

ORIGIN = "http://api"


@pytest.fixture
def flow(api: httpx.AsyncClient, auth: Auth, db: Db) -> Flow:
    return Flow(api, auth, db)


def _path(url: str) -> str:
    return "/act/" + url.split("/act/", 1)[1]


def _nonce(page: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def _waiting_for_bcd(flow: Flow) -> str:
    view = await flow.submit("am_li", contract(unique("Links"), "250000"))
    assert view["current_approvers"] == ["bcd_zheng"]
    return str(view["id"])


async def _links(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], user: str, rid: str
) -> dict[str, str]:
    links = await make_action_links(settings, sessions, user, rid, datetime.now(UTC))
    assert links is not None
    return {action: _path(url) for action, url in links.items()}


async def _confirm(
    api: httpx.AsyncClient, path: str, comment: str = "", **headers: str
) -> httpx.Response:
    page = await api.get(path)
    assert page.status_code == 200, page.text
    return await api.post(
        path,
        data={"nonce": _nonce(page.text), "comment": comment},
        headers={"Origin": ORIGIN, **headers},
    )


async def _view(flow: Flow, rid: str) -> dict[str, Any]:
    resp = await flow.get("am_li", rid)
    assert resp.status_code == 200
    view: dict[str, Any] = resp.json()
    return view


async def _nothing_decided(flow: Flow, rid: str) -> None:
    """The request still waits for bcd_zheng at its first stage: no approval recorded."""
    view = await _view(flow, rid)
    assert (view["stage_index"], view["current_approvers"]) == (0, ["bcd_zheng"])
    assert [h for h in view["history"] if h["kind"] == "approved"] == []


async def _opened_approve_link(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[str, str, str]:
    """A request waiting for bcd_zheng, his approve link's path, and its page's form nonce."""
    rid = await _waiting_for_bcd(flow)
    path = (await _links(settings, sessions, "bcd_zheng", rid))["approve"]
    return rid, path, _nonce((await api.get(path)).text)


async def test_make_action_links_gives_three_links_only_to_whom_a_step_waits_for(
    flow: Flow, settings: Settings, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid = await _waiting_for_bcd(flow)
    now = datetime.now(UTC)
    links = await make_action_links(settings, db_sessions, "bcd_zheng", rid, now)
    assert links is not None
    assert set(links) == {"approve", "return", "reject"}
    assert all(url.startswith("http://127.0.0.1:8000/act/") for url in links.values())
    assert len(set(links.values())) == 3
    # With the caller's own session too; and nothing for those who hold no step.
    async with db_sessions() as session:
        assert await make_action_links(settings, session, "bcd_zheng", rid, now) is not None
        assert await make_action_links(settings, session, "dsd_liu", rid, now) is None
        assert await make_action_links(settings, session, "am_li", rid, now) is None
        assert await make_action_links(settings, session, "nobody", rid, now) is None


async def test_opening_a_link_shows_the_request_and_does_nothing(
    api: httpx.AsyncClient,
    flow: Flow,
    db: Db,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await _waiting_for_bcd(flow)
    links = await _links(settings, db_sessions, "bcd_zheng", rid)
    before = await db.event_kinds(rid)
    for _ in range(2):  # a link scanner, then the person
        page = await api.get(links["approve"])
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "form-action 'self'" in page.headers["content-security-policy"]
        assert "Approve this request?" in page.text
        assert "Contract with Links" in page.text
        assert "250,000.00 CNY" in page.text
        assert "am_li" in page.text and "bcd_zheng" in page.text
        assert '<form method="post">' in page.text
    assert await db.event_kinds(rid) == before
    await _nothing_decided(flow, rid)
    # Chinese by Accept-Language or by ?lang=.
    zh = await api.get(links["reject"], headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert zh.status_code == 200 and "驳回此申请" in zh.text and 'lang="zh-CN"' in zh.text
    assert "大客户合同" in zh.text and "大客户管理部签署" in zh.text  # the policy's words
    zh = await api.get(links["return"] + "?lang=zh-CN")
    assert "退回申请人" in zh.text
    en = await api.get(links["return"] + "?lang=en", headers={"Accept-Language": "zh"})
    assert "Return this request to the requester?" in en.text
    assert "Big-customer contract" in en.text and "大客户" not in en.text


async def test_confirming_approves_once_and_the_request_moves_on(
    api: httpx.AsyncClient,
    flow: Flow,
    db: Db,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await _waiting_for_bcd(flow)
    links = await _links(settings, db_sessions, "bcd_zheng", rid)
    done = await _confirm(api, links["approve"], comment="fine by me\r\nsigned")
    assert done.status_code == 200, done.text
    assert "You approved" in done.text
    view = await _view(flow, rid)
    assert (view["stage_index"], view["current_approvers"]) == (1, ["dsd_liu"])
    approved = [h for h in view["history"] if h["kind"] == "approved"]
    assert [(h["actor"], h["comment"]) for h in approved] == [("bcd_zheng", "fine by me\nsigned")]
    kinds = await db.event_kinds(rid)

    # The same link again: the used page, no second action; so for GET and POST.
    again = await api.post(links["approve"], data={"comment": ""}, headers={"Origin": ORIGIN})
    assert again.status_code == 410
    assert "already been used" in again.text
    assert (await api.get(links["approve"])).status_code == 410
    # The other links of that step: the step has moved on.
    moved = await api.get(links["reject"])
    assert moved.status_code == 410 and "no longer waiting for you" in moved.text
    moved = await api.post(links["reject"], data={"comment": ""}, headers={"Origin": ORIGIN})
    assert moved.status_code == 410
    assert await db.event_kinds(rid) == kinds
    assert (await _view(flow, rid))["current_approvers"] == ["dsd_liu"]


async def test_return_and_reject_links_send_those_decisions(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    returned = await _waiting_for_bcd(flow)
    done = await _confirm(
        api, (await _links(settings, db_sessions, "bcd_zheng", returned))["return"]
    )
    assert done.status_code == 200, done.text
    assert (await _view(flow, returned))["status"] == "returned"

    rejected = await _waiting_for_bcd(flow)
    done = await _confirm(
        api,
        (await _links(settings, db_sessions, "bcd_zheng", rejected))["reject"],
        **{"Accept-Language": "zh-CN"},
    )
    assert done.status_code == 200, done.text
    assert "您已驳回" in done.text
    assert (await _view(flow, rejected))["status"] == "rejected"


async def test_a_link_for_a_stage_decided_through_the_api_is_refused(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await _waiting_for_bcd(flow)
    links = await _links(settings, db_sessions, "bcd_zheng", rid)
    page = await api.get(links["reject"])
    nonce = _nonce(page.text)
    await flow.decide("bcd_zheng", rid)
    moved = await api.post(
        links["reject"], data={"nonce": nonce, "comment": "no"}, headers={"Origin": ORIGIN}
    )
    assert moved.status_code == 410
    assert "no longer waiting for you" in moved.text
    view = await _view(flow, rid)
    assert (view["status"], view["current_approvers"]) == ("in_review", ["dsd_liu"])


async def test_an_expired_link_is_refused(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await _waiting_for_bcd(flow)
    async with db_sessions() as session:
        step = await pending_step(session, "bcd_zheng", rid)
    assert step is not None
    long_ago = datetime.now(UTC) - timedelta(hours=settings.action_link_ttl_hours + 1)
    path = _path(link_urls(settings, "bcd_zheng", rid, 0, step.since, long_ago)["approve"])
    page = await api.get(path)
    assert page.status_code == 410 and "expired" in page.text
    posted = await api.post(path, data={"comment": ""}, headers={"Origin": ORIGIN})
    assert posted.status_code == 410
    assert (await _view(flow, rid))["current_approvers"] == ["bcd_zheng"]


async def test_tampered_and_malformed_links_are_refused(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await _waiting_for_bcd(flow)
    path = (await _links(settings, db_sessions, "bcd_zheng", rid))["approve"]
    i = len("/act/") + 10
    tampered = path[:i] + ("A" if path[i] != "A" else "B") + path[i + 1 :]
    for method in ("GET", "POST"):
        resp = await api.request(
            method, tampered, data={"comment": ""} if method == "POST" else None
        )
        assert resp.status_code == 403, resp.text
        assert "has been changed" in resp.text
        resp = await api.request(method, "/act/not-a-token")
        assert resp.status_code == 400 and "not a complete action link" in resp.text
    long = await api.get("/act/" + "a" * 5000, params={"lang": "x" * 100})
    assert long.status_code == 400 and "not a complete action link" in long.text
    # Any one character changed, anywhere: refused, never shown, never acted on.
    for i in range(len("/act/"), len(path), 5):
        changed = path[:i] + ("x" if path[i] != "x" else "y") + path[i + 1 :]
        page = await api.get(changed)
        assert page.status_code in (400, 403), (i, page.status_code)
        assert "<form" not in page.text
    assert (await _view(flow, rid))["current_approvers"] == ["bcd_zheng"]


async def test_a_link_acts_only_for_its_own_user(
    api: httpx.AsyncClient, flow: Flow, auth: Auth, settings: Settings
) -> None:
    rid = await _waiting_for_bcd(flow)
    # A link made for someone who holds no step on that stage (dsd_liu, the requester):
    # it cannot act for them, and never for bcd_zheng, whoever's token comes along.
    for user in ("dsd_liu", "am_li"):
        now = datetime.now(UTC)
        path = _path(link_urls(settings, user, rid, 0, now, now)["approve"])
        assert (await api.get(path)).status_code == 410
        resp = await api.post(
            path, data={"comment": ""}, headers={"Origin": ORIGIN, **auth("bcd_zheng")}
        )
        assert resp.status_code == 410
    await _nothing_decided(flow, rid)


async def test_a_confirmation_from_elsewhere_or_with_bad_input_never_acts(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, path, nonce = await _opened_approve_link(api, flow, settings, db_sessions)
    # Another site's form, a missing or foreign nonce.
    cross = await api.post(
        path, data={"nonce": nonce, "comment": ""}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    cross = await api.post(
        path, data={"nonce": nonce, "comment": ""}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert (await api.post(path, data={"comment": ""})).status_code == 403
    assert (await api.post(path, data={"nonce": "x" * 43, "comment": ""})).status_code == 403
    # Not a form: JSON, or bytes that are not UTF-8, or a field twice.
    assert (await api.post(path, json={"nonce": nonce})).status_code == 400
    not_utf8 = await api.post(
        path,
        content=b"nonce=" + nonce.encode() + b"&comment=%ff%fe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    twice = await api.post(
        path,
        content=f"nonce={nonce}&nonce={nonce}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    # A comment with a control character, or too long: the form again, with the reason.
    for comment in ("bad\x00byte", "bell\x07", "x" * 4001):
        bad = await api.post(path, data={"nonce": nonce, "comment": comment})
        assert bad.status_code == 422, bad.text
        assert "The comment cannot be taken" in bad.text
        assert '<form method="post">' in bad.text
    await _nothing_decided(flow, rid)
    # The link still works afterwards.
    done = await api.post(path, data={"nonce": nonce, "comment": "ok"}, headers={"Origin": ORIGIN})
    assert done.status_code == 200, done.text
    assert (await _view(flow, rid))["current_approvers"] == ["dsd_liu"]


async def test_two_confirmations_at_once_decide_once(
    api: httpx.AsyncClient,
    flow: Flow,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, path, nonce = await _opened_approve_link(api, flow, settings, db_sessions)
    answers = await asyncio.gather(
        *(
            api.post(path, data={"nonce": nonce, "comment": "twice?"}, headers={"Origin": ORIGIN})
            for _ in range(3)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 410, 410], [a.text for a in answers]
    view = await _view(flow, rid)
    assert [h["actor"] for h in view["history"] if h["kind"] == "approved"] == ["bcd_zheng"]
    assert view["current_approvers"] == ["dsd_liu"]


async def test_a_link_from_before_a_return_cannot_approve_the_resubmitted_terms(
    api: httpx.AsyncClient,
    flow: Flow,
    db: Db,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A link is for one round of its step: bcd_zheng's approve link of the first round
    (opened, its form at hand) is refused once he returned the request and it came back
    at a higher amount; a link of the new round decides."""
    rid, old, nonce = await _opened_approve_link(api, flow, settings, db_sessions)
    assert (await flow.decide("bcd_zheng", rid, "return")).get("status") == "returned"
    resp = await flow.act("am_li", rid, "resubmit", {"amount": "280000", "comment": "bigger"})
    assert resp.status_code == 200, resp.text
    view = await _view(flow, rid)
    assert (view["status"], view["stage_index"], view["current_approvers"]) == (
        "in_review",
        0,
        ["bcd_zheng"],
    )
    assert view["amount"] == "280000.00"
    kinds = await db.event_kinds(rid)

    page = await api.get(old)
    assert page.status_code == 410 and "no longer waiting for you" in page.text
    posted = await api.post(old, data={"nonce": nonce, "comment": ""}, headers={"Origin": ORIGIN})
    assert posted.status_code == 410 and "no longer waiting for you" in posted.text
    assert await db.event_kinds(rid) == kinds
    view = await _view(flow, rid)
    assert (view["stage_index"], view["current_approvers"]) == (0, ["bcd_zheng"])
    assert [h for h in view["history"] if h["kind"] == "approved"] == []

    new = (await _links(settings, db_sessions, "bcd_zheng", rid))["approve"]
    done = await _confirm(api, new, comment="the new terms")
    assert done.status_code == 200, done.text
    view = await _view(flow, rid)
    approved = [h for h in view["history"] if h["kind"] == "approved"]
    assert [(h["actor"], h["comment"]) for h in approved] == [("bcd_zheng", "the new terms")]
    assert view["current_approvers"] != ["bcd_zheng"]


async def test_a_genuine_link_of_the_first_version_is_refused_as_moved_on(
    api: httpx.AsyncClient, flow: Flow, settings: Settings
) -> None:
    """Links sent before links named their round cannot tell whether their step is
    still the one they were made for: 410, never an action."""
    rid = await _waiting_for_bcd(flow)
    claims = {
        "v": 1,
        "l": "first-version-link-id",
        "u": "bcd_zheng",
        "r": rid,
        "s": 0,
        "a": "approve",
        "e": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    raw = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    mac = hmac.new(link_key(settings), body.encode(), hashlib.sha256).digest()
    path = f"/act/{body}." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    page = await api.get(path)
    assert page.status_code == 410 and "no longer waiting for you" in page.text
    posted = await api.post(path, data={"comment": ""}, headers={"Origin": ORIGIN})
    assert posted.status_code == 410
    await _nothing_decided(flow, rid)
