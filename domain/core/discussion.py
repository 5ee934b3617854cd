"""Comments on a request (评论): @mentions, attachments, and who may be mentioned.

A comment decides nothing: it is one more event of the request's history
(``commented``), allowed in every state while the process runs. The people it
mentions are told, and each must already be able to read the request: a mention
never opens a request to someone (a notice would, see ``db.request_queries``), so
the process asks the read-model who may read it and refuses the comment naming
those who may not.
"""

from __future__ import annotations

from domain.constants import Activities
from domain.errors import DomainError, ErrorCode
from domain.process import (
    AttachmentRef,
    CommentInput,
    EventKind,
    ReadersInput,
    ReadersOutput,
    RequestState,
)

from .effects import Step
from .queries import active_stage
from .steps import Context, Refused, look_up, notice, put, record


def mentioned(msg: CommentInput) -> list[str]:
    """The people ``msg`` mentions, each once, in the order named."""
    return list(dict.fromkeys(msg.mentions))


def check_comment(msg: CommentInput) -> None:
    """What a comment must be, whatever the request's state (admission's part).

    Raises:
        DomainError: 422 naming the field: a mention of oneself, an attachment twice.
    """
    if msg.actor in msg.mentions:
        raise DomainError(
            ErrorCode.VALIDATION, "mention someone other than yourself", {"field": "mentions"}
        )
    ids = [a.id for a in msg.attachments]
    if len(set(ids)) != len(ids):
        raise DomainError(
            ErrorCode.VALIDATION, "an attachment is named twice", {"field": "attachments"}
        )


def unreadable_refusal(unreadable: list[str]) -> DomainError:
    """The refusal of a comment mentioning people who may not read the request."""
    who = sorted(set(unreadable))
    return DomainError(
        ErrorCode.VALIDATION,
        f"cannot mention {', '.join(who)}: they may not read this request (copy them in first)",
        {"field": "mentions", "unreadable": who},
    )


def attached(refs: list[AttachmentRef]) -> dict[str, object]:
    """What an event's data says of the files attached to its message: ids and hashes."""
    if not refs:
        return {}
    return {"attachments": [{"id": a.id, "sha256": a.sha256} for a in refs]}


def comment(
    ctx: Context, s: RequestState, msg: CommentInput, operator: str | None
) -> Step[Refused]:
    """评论: recorded in the history; the people mentioned are told (in-app and outbound)."""
    people = mentioned(msg)
    if people:
        found = yield from look_up(
            Activities.READERS,
            ReadersInput(request_id=s.id, users=people),
            ReadersOutput,
            "who may be mentioned",
        )
        if found.unreadable:
            return s, unreadable_refusal(found.unreadable)
    stage = active_stage(s)
    holding = [
        a
        for slot in (stage.slots if stage is not None else ())
        if slot.decision is None
        for a in slot.actors
        if a.user == msg.actor
    ]
    s = put(s, comments=s.comments + 1)
    data: dict[str, object] = {"mentions": people, **attached(msg.attachments)}
    return (
        yield from record(
            ctx,
            s,
            EventKind.COMMENTED,
            msg.actor,
            msg.comment,
            data,
            notices=[notice(s, u, "mentioned", by=msg.actor) for u in people],
            # An approver acting for someone (a delegate) comments on their behalf.
            on_behalf_of=next((a.on_behalf_of for a in holding if a.on_behalf_of), None),
            operator=operator,
        )
    ), None
