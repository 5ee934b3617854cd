"""The request's story as the Temporal UI shows it (current details, markdown).

In the operators' language (``APPROVALS_OPERATOR_LANGUAGE``), which reaches the
workflow in its input (:attr:`~domain.process.ApprovalInput.operator_language`):
None, as in every input of before it, is English, word for word as it always was.
Stage names come from the request's policy snapshot when the language is not English.
"""

from __future__ import annotations

from datetime import datetime

from domain.policy import Policy
from domain.process import RequestState, StageState, Status, Via
from domain.text import DEFAULT_LANGUAGE

from .queries import active_stage, current_approvers, open_milestone, outstanding

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "head": "**{title}** · {type} v{version} · by {requester}",
        "stuck": "⚠ Stuck since {since} after {attempts} attempts: {reason}. Retrying by itself.",
        "in_review": "In review at stage {n}/{of}: *{stage}*; waiting on {people}",
        "nobody_unassigned": "nobody (unassigned)",
        "reply_due": "Reply due {at}",
        "added_one": "{people} ({how}, by {by}{queued})",
        "added": "added",
        "queued": ", waiting for their turn",
        "added_line": "Added approvers (加签): {list}",
        "delegate": "{user} for {whom}",
        "delegates": "Delegates (委托): {list}",
        "returned": "Returned to {requester}; resubmit by {at}",
        "watching": "Watching: {outstanding} CNY outstanding; next step {next}; review {review}",
        "payout": "{title}: window opens {at}",
        "active": "In force; next re-evaluation {at}",
        "revoked": "Revoked {at}",
        "to_reverse": "; {n} recorded payment(s) need reversal",
        "milestone": "Approved; awaiting **{title}**: {paid} of {required} CNY, due {due}",
        "status": "Status: **{label}**",
        "the_requester": "the requester ({requester})",
        "then_back": "; then straight back to *{back}*",
        "sent_back": "Last sent back {at} by {by}: from *{src}* to *{to}*{then}",
        "automatic_one": "*{stage}* ({why})",
        "automatic": "Approved automatically: {list}",
        "cc": "Copied (抄送): {list}",
        "urge_again": "; again from {at}",
        "urged": "Urged (催办) {n}×, last {at} by {by} ({people}){again}",
        "nobody": "nobody",
        "revocable": "May be revoked until {at}",
        "overdue": "⚠ Overdue: no final decision within the resolve time",
        "bulk": "Decided in bulk (批量审批): {kind} by {actor} {at}",
        "comments": "Comments (评论): {n}",
        "sep": ", ",
        "semi": "; ",
    },
    "zh-CN": {
        "head": "**{title}** · {type} v{version} · 申请人 {requester}",
        "stuck": "⚠ 自 {since} 起卡住，已尝试 {attempts} 次：{reason}。正在自动重试。",
        "in_review": "审批中，第 {n}/{of} 个环节：*{stage}*；等待 {people}",
        "nobody_unassigned": "无人（未分配）",
        "reply_due": "答复期限 {at}",
        "added_one": "{people}（{how}，由 {by} 加签{queued}）",
        "added": "加签",
        "queued": "，等待轮到",
        "added_line": "加签：{list}",
        "delegate": "{user} 代 {whom}",
        "delegates": "委托：{list}",
        "returned": "已退回 {requester}；须在 {at} 前重新提交",
        "watching": "跟踪中：未收 {outstanding} 元；下一步 {next}；审议 {review}",
        "payout": "{title}：支付窗口 {at} 开启",
        "active": "生效中；下次复评 {at}",
        "revoked": "已于 {at} 撤销",
        "to_reverse": "；{n} 笔已登记的付款须冲回",
        "milestone": "已批准；等待 **{title}**：已付 {paid} / 应付 {required} 元，截止 {due}",
        "status": "状态：**{label}**",
        "the_requester": "申请人（{requester}）",
        "then_back": "；之后直接回到 *{back}*",
        "sent_back": "最近一次退回 {at}，由 {by}：从 *{src}* 退回到 *{to}*{then}",
        "automatic_one": "*{stage}*（{why}）",
        "automatic": "自动通过：{list}",
        "cc": "抄送：{list}",
        "urge_again": "；{at} 起可再次催办",
        "urged": "催办 {n} 次，最近 {at} 由 {by}（{people}）{again}",
        "nobody": "无人",
        "revocable": "可撤销至 {at}",
        "overdue": "⚠ 已超期：未在办结时限内作出最终决定",
        "bulk": "批量审批：{kind}，由 {actor} 于 {at}",
        "comments": "评论：{n} 条",
        "sep": "、",
        "semi": "；",
    },
}
"""Every line in each language; every key in both (tests pin it)."""


def when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "-"


def _stage_name(stage: StageState, policy: Policy | None, lang: str) -> str:
    """The stage's name in ``lang`` from the policy snapshot; as stored otherwise."""
    if policy is None or lang == DEFAULT_LANGUAGE:
        return stage.name
    spec = next((s for s in policy.stages if s.key == stage.key), None)
    return stage.name if spec is None else spec.name.get(lang)


def details(view: RequestState, lang: str | None = None, policy: Policy | None = None) -> str:
    """Where the request stands, who it waits on and until when, in ``lang`` (None: en)."""
    v = view
    language = lang if lang in WORDS else DEFAULT_LANGUAGE
    w = WORDS[language]

    def say(key: str, **values: object) -> str:
        return w[key].format(**values)

    def name(stage: StageState) -> str:
        return _stage_name(stage, policy, language)

    lines = [
        say("head", title=v.title, type=v.type, version=v.policy_version, requester=v.requester)
    ]
    if v.stuck is not None:
        lines.append(
            say(
                "stuck", since=when(v.stuck.since), attempts=v.stuck.attempts, reason=v.stuck.reason
            )
        )
    stage = active_stage(v)
    m = open_milestone(v)
    if v.status == Status.IN_REVIEW and stage is not None:
        people = w["sep"].join(current_approvers(v)) or w["nobody_unassigned"]
        lines.append(
            say("in_review", n=stage.index + 1, of=len(v.stages), stage=name(stage), people=people)
        )
        if stage.reply_due:
            lines.append(say("reply_due", at=when(stage.reply_due)))
        added = [
            say(
                "added_one",
                people=w["sep"].join(a.user for a in (*slot.actors, *slot.queued)),
                how=slot.added_as.value if slot.added_as else w["added"],
                by=slot.added_by,
                queued=w["queued"] if slot.queued else "",
            )
            for slot in stage.slots
            if slot.added_by is not None and slot.decision is None
        ]
        if added:
            lines.append(say("added_line", list=w["semi"].join(added)))
        standing_in = sorted(
            say("delegate", user=a.user, whom=a.on_behalf_of)
            for slot in stage.slots
            if slot.decision is None
            for a in slot.actors
            if a.via == Via.DELEGATION and a.on_behalf_of
        )
        if standing_in:
            lines.append(say("delegates", list=w["sep"].join(standing_in)))
    elif v.status == Status.RETURNED:
        lines.append(say("returned", requester=v.requester, at=when(v.resubmit_due)))
    elif v.status == Status.WATCHING and v.watch is not None:
        lines.append(
            say(
                "watching",
                outstanding=outstanding(v),
                next=when(v.watch.next_at),
                review=when(v.watch.review_at),
            )
        )
    elif v.status == Status.AWAITING_PAYOUT and v.payout is not None:
        lines.append(say("payout", title=v.payout.title, at=when(v.payout.window_opens)))
    elif v.status == Status.ACTIVE:
        lines.append(say("active", at=when(v.next_review)))
    elif v.status == Status.REVOKED:
        lines.append(
            say("revoked", at=when(v.closed_at))
            + (say("to_reverse", n=len(v.to_reverse)) if v.to_reverse else "")
        )
    elif m is not None:
        lines.append(
            say(
                "milestone",
                title=m.title,
                paid=m.paid,
                required=m.required if m.required is not None else "-",
                due=when(m.due),
            )
        )
    else:
        lines.append(say("status", label=v.label))
    sent = v.sent_back
    if sent is not None and not v.finished:
        to = sent.to_key or say("the_requester", requester=v.requester)
        back = v.stages[v.return_to[-1]].key if v.return_to else None
        then = say("then_back", back=back) if back else ""
        lines.append(
            say("sent_back", at=when(sent.at), by=sent.by, src=sent.from_key, to=to, then=then)
        )
    automatic = [
        say(
            "automatic_one",
            stage=name(st),
            why=slot.automatic.removeprefix("approved automatically: "),
        )
        for st in v.stages
        for slot in st.slots
        if slot.automatic
    ]
    if automatic:
        lines.append(say("automatic", list=w["semi"].join(automatic)))
    if v.cc:
        lines.append(say("cc", list=w["sep"].join(v.cc)))
    if v.urges and v.last_urge is not None:
        last = v.last_urge
        again = say("urge_again", at=when(last.next_at)) if not v.finished else ""
        people = w["sep"].join(last.people) or w["nobody"]
        lines.append(
            say("urged", n=v.urges, at=when(last.at), by=last.by, people=people, again=again)
        )
    if v.revocable_until is not None and not v.finished:
        lines.append(say("revocable", at=when(v.revocable_until)))
    if v.overdue:
        lines.append(w["overdue"])
    in_bulk = [e for e in v.history if e.data.get("bulk") is True]
    if in_bulk:
        event = in_bulk[-1]
        lines.append(say("bulk", kind=event.kind.value, actor=event.actor, at=when(event.at)))
    if v.comments:
        lines.append(say("comments", n=v.comments))
    return "\n\n".join(lines)
