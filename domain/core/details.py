"""The request's story as the Temporal UI shows it (current details, markdown)."""

from __future__ import annotations

from datetime import datetime

from domain.process import RequestState, Status, Via

from .queries import active_stage, current_approvers, open_milestone, outstanding


def when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "-"


def details(view: RequestState) -> str:
    """Where the request stands, who it waits on and until when."""
    v = view
    lines = [f"**{v.title}** · {v.type} v{v.policy_version} · by {v.requester}"]
    if v.stuck is not None:
        lines.append(
            f"⚠ Stuck since {when(v.stuck.since)} after {v.stuck.attempts} attempts: "
            f"{v.stuck.reason}. Retrying by itself."
        )
    stage = active_stage(v)
    m = open_milestone(v)
    if v.status == Status.IN_REVIEW and stage is not None:
        lines.append(
            f"In review at stage {stage.index + 1}/{len(v.stages)}: *{stage.name}*; "
            f"waiting on {', '.join(current_approvers(v)) or 'nobody (unassigned)'}"
        )
        if stage.reply_due:
            lines.append(f"Reply due {when(stage.reply_due)}")
        added = [
            f"{', '.join(a.user for a in (*slot.actors, *slot.queued))} "
            f"({slot.added_as.value if slot.added_as else 'added'}, by {slot.added_by}"
            f"{', waiting for their turn' if slot.queued else ''})"
            for slot in stage.slots
            if slot.added_by is not None and slot.decision is None
        ]
        if added:
            lines.append(f"Added approvers (加签): {'; '.join(added)}")
        standing_in = sorted(
            f"{a.user} for {a.on_behalf_of}"
            for slot in stage.slots
            if slot.decision is None
            for a in slot.actors
            if a.via == Via.DELEGATION and a.on_behalf_of
        )
        if standing_in:
            lines.append(f"Delegates (委托): {', '.join(standing_in)}")
    elif v.status == Status.RETURNED:
        lines.append(f"Returned to {v.requester}; resubmit by {when(v.resubmit_due)}")
    elif v.status == Status.WATCHING and v.watch is not None:
        lines.append(
            f"Watching: {outstanding(v)} CNY outstanding; next step "
            f"{when(v.watch.next_at)}; review {when(v.watch.review_at)}"
        )
    elif v.status == Status.AWAITING_PAYOUT and v.payout is not None:
        lines.append(f"{v.payout.title}: window opens {when(v.payout.window_opens)}")
    elif v.status == Status.ACTIVE:
        lines.append(f"In force; next re-evaluation {when(v.next_review)}")
    elif v.status == Status.REVOKED:
        lines.append(
            f"Revoked {when(v.closed_at)}"
            + (f"; {len(v.to_reverse)} recorded payment(s) need reversal" if v.to_reverse else "")
        )
    elif m is not None:
        lines.append(
            f"Approved; awaiting **{m.title}**: {m.paid} of "
            f"{m.required if m.required is not None else '-'} CNY, due {when(m.due)}"
        )
    else:
        lines.append(f"Status: **{v.label}**")
    sent = v.sent_back
    if sent is not None and not v.finished:
        to = sent.to_key or f"the requester ({v.requester})"
        back = v.stages[v.return_to[-1]].key if v.return_to else None
        then = f"; then straight back to *{back}*" if back else ""
        lines.append(
            f"Last sent back {when(sent.at)} by {sent.by}: from *{sent.from_key}* to *{to}*{then}"
        )
    automatic = [
        f"*{st.name}* ({slot.automatic.removeprefix('approved automatically: ')})"
        for st in v.stages
        for slot in st.slots
        if slot.automatic
    ]
    if automatic:
        lines.append(f"Approved automatically: {'; '.join(automatic)}")
    if v.cc:
        lines.append(f"Copied (抄送): {', '.join(v.cc)}")
    if v.urges and v.last_urge is not None:
        last = v.last_urge
        again = f"; again from {when(last.next_at)}" if not v.finished else ""
        lines.append(
            f"Urged (催办) {v.urges}×, last {when(last.at)} by {last.by}"
            f" ({', '.join(last.people) or 'nobody'}){again}"
        )
    if v.revocable_until is not None and not v.finished:
        lines.append(f"May be revoked until {when(v.revocable_until)}")
    if v.overdue:
        lines.append("⚠ Overdue: no final decision within the resolve time")
    in_bulk = [e for e in v.history if e.data.get("bulk") is True]
    if in_bulk:
        event = in_bulk[-1]
        lines.append(
            f"Decided in bulk (批量审批): {event.kind.value} by {event.actor} {when(event.at)}"
        )
    if v.comments:
        lines.append(f"Comments (评论): {v.comments}")
    return "\n\n".join(lines)
