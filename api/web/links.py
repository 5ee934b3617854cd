"""``/act/{token}``: decide a step from a message's link, after a confirmation page.

``GET`` only shows the request and a form: mail scanners and chat previews open
links on their own, so opening one must never act. ``POST`` (the form) checks
the token again, and that the step is still the user's, records the link as
used, and sends the same signed update as ``POST /v1/requests/{id}/decisions``
through :func:`api.commands.run_update` (the link id is its Idempotency-Key, so
proofs, idempotency and the audit trail are those of the API).

The token is the capability; a cross-site POST also needs the hidden nonce the
page holds (derived from the token), and a browser that names another origin
is refused. Every refusal is a page in the reader's language (zh-CN or en, by
``?lang=`` or ``Accept-Language``) with a 4xx status: 400 malformed, 403
tampered or not allowed, 410 used, expired or moved on, never an action.

A link is for one round of its step (see :mod:`domain.action_links`): once the
request was returned and resubmitted, or the step handed on, the link's round is
no longer the step's and it answers 410; the decision it sends names its round,
so the process refuses it too if the step moved on while the form was open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api import commands
from api.deps import Services, ServicesDep, SessionDep
from api.errors import ApiError
from api.views import request_view
from api.web.router import render_page
from common.action_links import link_key
from common.logs import set_request_user
from db import request_queries as q
from db import used_links
from db.directory import get_user
from domain.action_links import (
    ActionLink,
    LinkRefused,
    Refusal,
    check_form_nonce,
    form_nonce,
)
from domain.action_links import verify as verify_token
from domain.constants import Updates
from domain.errors import ErrorCode
from domain.inbound import MAX_COMMENT, InboundError, check_text
from domain.localize import stage_name
from domain.process import DecideInput
from domain.text import DEFAULT_LANGUAGE, negotiate

log = logging.getLogger("approvals.api")

router = APIRouter(include_in_schema=False)

# Unbounded here: a token of any length gets its page (``verify`` reads none that is too long).
Token = Annotated[str, Path(description="The link's token.")]
Lang = Annotated[str | None, Query(description="`zh-CN` or `en`.")]

LANGS = ("en", "zh-CN")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "lang_name": "English",
        "confirm_approve": "Approve",
        "confirm_return": "Return to the requester",
        "confirm_reject": "Reject",
        "heading_approve": "Approve this request?",
        "heading_return": "Return this request to the requester?",
        "heading_reject": "Reject this request?",
        "title": "Title",
        "type": "Type",
        "amount": "Amount",
        "customer": "Customer",
        "requester": "Requester",
        "stage": "Stage",
        "you": "Deciding as",
        "comment": "Comment (optional)",
        "note": "Nothing happens until you confirm. The link works once.",
        "done_heading": "Done",
        "done_approve": "You approved “{title}”. Its status is now: {status}.",
        "done_return": "You returned “{title}” to the requester. Its status is now: {status}.",
        "done_reject": "You rejected “{title}”. Its status is now: {status}.",
        "refused_heading": "This link cannot be used",
        "malformed": "This is not a complete action link. Copy the whole link from the message.",
        "tampered": "This link has been changed and is not valid. Nothing was done.",
        "expired": "This link has expired. Nothing was done.",
        "used": "This link has already been used. Nothing more was done.",
        "moved_on": "This step is no longer waiting for you: it was decided, handed on or "
        "the request moved on. Nothing was done.",
        "not_allowed": "You are not an active user any more, so this link cannot act for you.",
        "forbidden_form": "The confirmation did not come from this link's page. Open the "
        "link again and confirm there. Nothing was done.",
        "bad_form": "The confirmation could not be read. Open the link again and confirm "
        "there. Nothing was done.",
        "bad_comment": "The comment cannot be taken: {reason}.",
        "failed_heading": "Not done",
        "failed": "The decision was not taken: {reason}",
        "hint": "You can still open your inbox in the approvals app.",
    },
    "zh-CN": {
        "lang_name": "中文",
        "confirm_approve": "同意",
        "confirm_return": "退回申请人",
        "confirm_reject": "驳回",
        "heading_approve": "同意此申请？",
        "heading_return": "将此申请退回申请人？",
        "heading_reject": "驳回此申请？",
        "title": "标题",
        "type": "类型",
        "amount": "金额",
        "customer": "客户",
        "requester": "申请人",
        "stage": "审批环节",
        "you": "审批人",
        "comment": "意见（可选）",
        "note": "确认之前不会执行任何操作。此链接只能使用一次。",
        "done_heading": "已完成",
        "done_approve": "您已同意“{title}”。当前状态：{status}。",
        "done_return": "您已将“{title}”退回申请人。当前状态：{status}。",
        "done_reject": "您已驳回“{title}”。当前状态：{status}。",
        "refused_heading": "此链接无法使用",
        "malformed": "这不是完整的审批链接，请从消息中复制完整链接。",
        "tampered": "此链接已被改动，无效。未执行任何操作。",
        "expired": "此链接已过期。未执行任何操作。",
        "used": "此链接已使用过。未再执行任何操作。",
        "moved_on": "此环节已不再等待您处理：已被审批、转交或申请已进入下一环节。未执行任何操作。",
        "not_allowed": "您已不是有效用户，此链接不能代表您操作。",
        "forbidden_form": "此确认并非来自该链接的页面。"
        "请重新打开链接并在页面上确认。未执行任何操作。",
        "bad_form": "无法读取此确认。请重新打开链接并在页面上确认。未执行任何操作。",
        "bad_comment": "意见无法接受：{reason}。",
        "failed_heading": "未完成",
        "failed": "未能执行此审批：{reason}",
        "hint": "您仍可在审批系统的待办中处理。",
    },
}

_PAGE_OF_REFUSAL: dict[Refusal, tuple[int, str]] = {
    Refusal.MALFORMED: (400, "malformed"),
    Refusal.TAMPERED: (403, "tampered"),
    Refusal.EXPIRED: (410, "expired"),
    # A link of the first version names no round of its step: as good as moved on.
    Refusal.OUTDATED: (410, "moved_on"),
}
_FORM_TYPE = "application/x-www-form-urlencoded"


def pick_lang(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` if it names one of ours, else the first of ours in Accept-Language, else en.

    Both read as the API reads Accept-Language (:func:`domain.text.negotiate`).
    """
    return negotiate((query or "")[:20]) or negotiate(accept_language) or DEFAULT_LANGUAGE


def _page(template: str, lang: str, status: int, **values: object) -> HTMLResponse:
    other = "zh-CN" if lang == "en" else "en"
    return render_page(
        template,
        form_action="'self'",
        status=status,
        # The token is in the URL: never send it on (page_headers), never keep it in a cache.
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
        lang=lang,
        other_lang=other,
        other_lang_name=TEXT[other]["lang_name"],
        styles=["act.css"],
        scripts=[],
        t=TEXT[lang],
        **values,
    )


def message_page(lang: str, status: int, heading_key: str, message: str) -> HTMLResponse:
    """A page that says what happened (or why nothing did), and nothing else."""
    kind = "ok" if status < 300 else "error"
    return _page(
        "act/message.html",
        lang,
        status,
        heading=TEXT[lang][heading_key],
        kind=kind,
        message=message,
    )


def refused_page(lang: str, status: int, reason: str) -> HTMLResponse:
    return message_page(lang, status, "refused_heading", TEXT[lang][reason])


@dataclass(frozen=True)
class _Step:
    """A verified link whose step is still the user's, with what the page shows."""

    link: ActionLink
    title: str
    type: str
    amount: str
    customer: str
    requester: str
    stage: str
    you: str


def _money(amount: Decimal | None) -> str:
    return "—" if amount is None else f"{amount:,.2f} CNY"


async def _live_step(
    services: Services, session: AsyncSession, token: str, lang: str, now: datetime
) -> _Step | HTMLResponse:
    """The step ``token`` is for if it may still be acted on; else the page that says why."""
    try:
        link = verify_token(link_key(services.settings), token, now)
    except LinkRefused as exc:
        log.info("action link refused: %s", exc.reason.value)
        return refused_page(lang, *_PAGE_OF_REFUSAL[exc.reason])
    if await used_links.is_used(session, link.link_id):
        return refused_page(lang, 410, "used")
    user = await get_user(session, link.user_id)
    if user is None or not user.active:
        return refused_page(lang, 403, "not_allowed")
    set_request_user(user.id)  # the link is its user's credential: named in the logs
    row = await q.get_request(session, link.request_id)
    if row is None or not await used_links.step_is_pending(
        session, link.user_id, link.request_id, link.stage_index, link.step_since
    ):
        return refused_page(lang, 410, "moved_on")
    view = request_view(row, [])
    stage = next((s for s in view.stages if s.index == link.stage_index), None)
    requester = await get_user(session, row.requester)
    policy = services.policies.get(row.type)
    await session.commit()
    return _Step(
        link=link,
        title=row.title,
        type=policy.title.get(lang) if policy is not None else row.type,
        amount=_money(row.amount),
        customer=row.customer or "—",
        requester=f"{requester.name} ({row.requester})" if requester else row.requester,
        stage=(
            stage_name(policy, stage.key, stage.name, lang)
            if stage is not None
            else str(link.stage_index + 1)
        ),
        you=f"{user.name} ({user.id})",
    )


def confirm_page(
    lang: str, token: str, step: _Step, *, key: bytes, comment: str = "", error: str = ""
) -> HTMLResponse:
    action = step.link.action
    return _page(
        "act/confirm.html",
        lang,
        422 if error else 200,
        heading=TEXT[lang][f"heading_{action}"],
        error=error,
        step=step,
        nonce=form_nonce(key, token),
        comment=comment,
        action=action,
        confirm=TEXT[lang][f"confirm_{action}"],
    )


@router.get("/act/{token}", summary="Confirm a decision from a message's link")
async def show_link(
    token: Token, request: Request, services: ServicesDep, session: SessionDep, lang: Lang = None
) -> HTMLResponse:
    """The request's summary and a confirmation form. Performs no action."""
    chosen = pick_lang(lang, request.headers.get("accept-language"))
    step = await _live_step(services, session, token, chosen, datetime.now(UTC))
    if isinstance(step, HTMLResponse):
        return step
    return confirm_page(chosen, token, step, key=link_key(services.settings))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _same_origin(request: Request, services: Services) -> bool:
    """False when the browser says the POST came from another site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients; the nonce still guards
    ours = {_origin(str(request.base_url)), _origin(services.settings.public_base_url)}
    return origin.lower() in ours


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form fields, or None when the body is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM_TYPE:
        return None
    try:
        text = (await request.body()).decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=10, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            return None
        fields[name] = value
    return fields


@router.post("/act/{token}", summary="Take the decision a message's link stands for")
async def use_link(
    token: Token, request: Request, services: ServicesDep, session: SessionDep, lang: Lang = None
) -> HTMLResponse:
    """Check the link again, mark it used, and decide as its user, once."""
    form = await _form(request)
    chosen = pick_lang((form or {}).get("lang") or lang, request.headers.get("accept-language"))
    t = TEXT[chosen]
    key = link_key(services.settings)
    step = await _live_step(services, session, token, chosen, datetime.now(UTC))
    if isinstance(step, HTMLResponse):
        return step
    if form is None:
        return message_page(chosen, 400, "refused_heading", t["bad_form"])
    if not _same_origin(request, services) or not check_form_nonce(key, token, form.get("nonce")):
        return message_page(chosen, 403, "refused_heading", t["forbidden_form"])
    raw_comment = form.get("comment", "").replace("\r\n", "\n")
    try:
        comment = check_text(raw_comment, max_length=MAX_COMMENT, multiline=True)
    except InboundError as exc:
        return confirm_page(
            chosen,
            token,
            step,
            key=key,
            comment=raw_comment[:MAX_COMMENT],
            error=t["bad_comment"].format(reason=exc),
        )
    link = step.link
    if not await used_links.claim(
        session,
        link_id=link.link_id,
        request_id=link.request_id,
        user_id=link.user_id,
        stage_index=link.stage_index,
        action=link.action,
    ):
        await session.commit()
        return refused_page(chosen, 410, "used")
    await session.commit()
    # The round goes along: should the step move on between the check above and the
    # workflow's turn (a return and resubmission racing this form), the process refuses.
    payload = DecideInput(
        actor=link.user_id,
        action=link.action,
        comment=comment or None,
        round_since=link.step_since,
    )
    try:
        view = await commands.run_update(
            services,
            session,
            link.request_id,
            link.user_id,
            Updates.DECIDE,
            payload,
            idempotency_key=f"action-link:{link.link_id}",
        )
    except ApiError as exc:
        # Nothing was decided: the link may be tried again (its key keeps it to one action).
        await session.rollback()
        await used_links.release(session, link.link_id)
        await session.commit()
        if exc.code == ErrorCode.ROUND_ENDED:
            return refused_page(chosen, 410, "moved_on")
        return message_page(chosen, exc.status, "failed_heading", t["failed"].format(reason=exc))
    except Exception:
        await session.rollback()
        await used_links.release(session, link.link_id)
        await session.commit()
        raise
    log.info(
        "request %s: %s decided %s from an action link",
        link.request_id,
        link.user_id,
        link.action,
    )
    return message_page(
        chosen,
        200,
        "done_heading",
        t[f"done_{link.action}"].format(title=step.title, status=view.status),
    )
