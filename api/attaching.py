"""Files attached to a message: claimed before the update is sent, released if refused,
and described in the request's history (name, size, hash, where to download)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api import commands
from api.deps import Services
from api.errors import ApiError, field_errors
from api.schemas import AttachmentOut
from db import attachments as store
from db.attachments import AttachmentMeta
from domain.errors import ErrorCode
from domain.process import AttachmentRef, HistoryEvent, RequestView

RELEASED_ON = frozenset({400, 403, 404, 409, 422})
"""Refusals after which the message surely was not applied: its files are free again.
(Not 503 nor a timeout: the process may still apply it.)"""


def url_of(attachment_id: str) -> str:
    return f"/v1/attachments/{attachment_id}"


def described(meta: AttachmentMeta) -> AttachmentOut:
    return AttachmentOut(
        id=meta.id,
        name=meta.file_name,
        content_type=meta.content_type,
        size=meta.size,
        sha256=meta.sha256,
        created_at=meta.created_at,
        url=url_of(meta.id),
    )


def _claim_key(user_id: str, what: str, key: str | None, ids: list[str], text: str) -> str:
    """What attaches the files: one call (the caller's key and body) or a one-off."""
    if key is None:
        return f"once:{uuid.uuid4()}"
    digest = hashlib.sha256("\n".join([user_id, what, key, *ids, text]).encode()).hexdigest()
    return f"key:{digest}"


async def attach(
    services: Services,
    session: AsyncSession,
    *,
    user_id: str,
    request_id: str,
    what: str,
    ids: Sequence[UUID],
    idempotency_key: str | None,
    text: str = "",
) -> tuple[list[AttachmentRef], str]:
    """Claim the caller's uploads for a message to this request: their refs and the claim.

    Raises:
        ApiError: 422 naming the limit, or the ids that are unknown, someone else's, or
            attached already.
    """
    wanted = list(dict.fromkeys(str(i) for i in ids))
    limit = services.settings.attachment_max_count
    if len(wanted) > limit:
        raise field_errors([("attachments", f"at most {limit} files per message")])
    key = _claim_key(user_id, what, idempotency_key, wanted, text)
    if not wanted:
        return [], key
    got = await store.claim(session, wanted, user_id, request_id, what, key)
    if isinstance(got, list):
        raise field_errors(
            [
                ("attachments", f"{i}: no upload of yours by this id, or attached already")
                for i in got
            ]
        )
    await session.commit()
    return [AttachmentRef(id=i, sha256=got[i]) for i in wanted], key


async def run_update(
    services: Services,
    session: AsyncSession,
    request_id: str,
    user_id: str,
    update: str,
    payload: BaseModel,
    idempotency_key: str | None,
    refs: list[AttachmentRef],
    claim: str,
) -> RequestView:
    """:func:`api.commands.run_update`; the files are released when it is refused."""
    try:
        return await commands.run_update(
            services, session, request_id, user_id, update, payload, idempotency_key
        )
    except ApiError as err:
        if refs and err.status in RELEASED_ON and err.code != ErrorCode.CONFLICT.value:
            await session.rollback()
            await store.release(session, [r.id for r in refs], claim)
            await session.commit()
        raise


def with_files(view: RequestView, metas: Sequence[AttachmentMeta]) -> RequestView:
    """``view`` whose history events name their files: name, size, type, hash, url."""
    by_id = {m.id: m for m in metas}
    if not by_id:
        return view
    history: list[HistoryEvent] = []
    for event in view.history:
        refs = event.data.get("attachments")
        if isinstance(refs, list) and refs:
            files = [
                described(by_id[r["id"]]).model_dump(mode="json")
                if isinstance(r, dict) and r.get("id") in by_id
                else r
                for r in refs
            ]
            event = event.model_copy(update={"data": {**event.data, "attachments": files}})
        history.append(event)
    return view.model_copy(update={"history": history})
