"""``GET /admin/outbox``: the admin's page of deliveries; ``GET /dev/mails``: caught mails.

The outbox page holds no data (like the inbox): it calls
``/v1/admin/deliveries`` with the admin's token from the tab's storage. The
mails page exists only in development: it lists what the mail catcher caught,
rendered from templates/mails.html with Jinja2's autoescape (mails carry text
that people typed).

Both are in zh-CN or en, chosen as the other server-rendered pages choose (the sign-in
and one-click decision pages): ``?lang=``, else ``Accept-Language``, else en; each links
to the other language. The outbox script's own words come with the page
(``data-words`` on its ``<main>``), in the same language.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import SettingsDep
from api.errors import not_found
from api.web import links
from api.web.router import render_page
from notify.mailcatcher import caught

router = APIRouter(include_in_schema=False)

OUTBOX_PATH = "/admin/outbox"
MAILS_PATH = "/dev/mails"

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "other": "中文",
        "outbox_title": "Outbox",
        "outbox_intro": "Deliveries of notices by e-mail, webhooks and group robots. Failed "
        "ones can be sent again. Admins only; the token is the one the inbox keeps in this tab.",
        "inbox": "Inbox",
        "token": "Bearer token",
        "sign_in": "Sign in",
        "status": "Status",
        "failed": "failed",
        "skipped": "skipped",
        "pending": "pending",
        "sent": "sent",
        "all": "all",
        "reload": "Reload",
        "col_when": "when",
        "col_notice": "notice",
        "col_to": "to",
        "col_channel": "channel",
        "col_attempts": "attempts",
        "col_status": "status / last error",
        "mails_title": "Caught mails",
        "mails_intro": "Development only: every mail the stack sent to the mail catcher "
        "({directory}), newest first.",
        "mail_to": "to {to}",
        "mail_from": "From {sender} · Message-ID {message_id}",
        "no_mail": "No mail yet. Submit a request (see the README's walk-through) and reload.",
        # outbox.js
        "js_need_token": "Sign in with an admin's token.",
        "js_loading": "Loading…",
        "js_retry": "Retry",
        "js_due_again": "#{id} is due again.",
        "js_count": "{n} deliveries",
        "js_newest": " (newest 200)",
    },
    "zh-CN": {
        "other": "English",
        "outbox_title": "发件箱",
        "outbox_intro": "通过邮件、Webhook 和群机器人发送的通知。发送失败的可以重发。"
        "仅限管理员；令牌即收件箱在此标签页中保存的令牌。",
        "inbox": "收件箱",
        "token": "Bearer 令牌",
        "sign_in": "登录",
        "status": "状态",
        "failed": "失败",
        "skipped": "已跳过",
        "pending": "待发送",
        "sent": "已发送",
        "all": "全部",
        "reload": "刷新",
        "col_when": "时间",
        "col_notice": "通知",
        "col_to": "收件人",
        "col_channel": "渠道",
        "col_attempts": "尝试次数",
        "col_status": "状态 / 最近错误",
        "mails_title": "已捕获的邮件",
        "mails_intro": "仅限开发环境：系统发往邮件捕获器（{directory}）的全部邮件，最新的在前。",
        "mail_to": "收件人 {to}",
        "mail_from": "发件人 {sender} · Message-ID {message_id}",
        "no_mail": "还没有邮件。提交一个申请（见 README 的演练）后刷新。",
        "js_need_token": "请用管理员的令牌登录。",
        "js_loading": "加载中…",
        "js_retry": "重发",
        "js_due_again": "#{id} 将重新发送。",
        "js_count": "{n} 条投递",
        "js_newest": "（最新 200 条）",
    },
}
"""The words of both pages; every key in both languages (tests pin it)."""


def _lang(request: Request) -> str:
    return links.pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"))


def _vary() -> dict[str, str]:
    return {"Vary": "Accept-Language"}


@router.get(OUTBOX_PATH, response_class=HTMLResponse)
def outbox_page(request: Request) -> HTMLResponse:
    """The deliveries page (a plain ``def``: the file read runs in a thread)."""
    lang = _lang(request)
    t = TEXT[lang]
    return render_page(
        "outbox.html",
        headers=_vary(),
        lang=lang,
        other_lang="en" if lang == "zh-CN" else "zh-CN",
        t=t,
        words={k.removeprefix("js_"): v for k, v in t.items() if k.startswith("js_")},
        styles=["outbox.css"],
        scripts=["outbox.js"],
    )


@router.get(MAILS_PATH, response_class=HTMLResponse)
def mails_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The mails the development mail catcher caught; 404 outside development."""
    if settings.environment != "development":
        raise not_found("page")
    lang = _lang(request)
    directory = settings.data_dir / "mail"
    return render_page(
        "mails.html",
        headers=_vary(),
        lang=lang,
        other_lang="en" if lang == "zh-CN" else "zh-CN",
        t=TEXT[lang],
        styles=["mails.css"],
        scripts=[],
        mails=caught(directory),
        directory=str(directory),
    )
