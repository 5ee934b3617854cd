"""``/v1/attachments``: upload a file, download one (only those who may read its request)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import StreamingResponse

from api import attaching
from api.deps import CurrentUser, ServicesDep, SessionDep, viewer_of
from api.errors import ApiError, not_found, responses
from api.schemas import AttachmentOut
from db import attachments as store
from db import request_queries as q
from db.models import AttachmentRow
from domain.attachments import content_disposition, sanitise_name, sniff
from domain.errors import DomainError, ErrorCode

router = APIRouter(prefix="/v1/attachments", tags=["attachments"])

READ_CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024
"""What a multipart body may carry besides the file (boundaries, part headers)."""

AttachmentId = Annotated[str, Path(description="The attachment id (a UUID).", max_length=64)]


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        ErrorCode.PAYLOAD_TOO_LARGE.value,
        f"the file is larger than {limit} bytes (APPROVALS_ATTACHMENT_MAX_BYTES)",
        {"limit_bytes": limit},
    )


@router.post(
    "",
    response_model=AttachmentOut,
    status_code=201,
    summary="Upload a file to attach",
    description=(
        "multipart/form-data with one part `file`. Allowed: pdf, png, jpeg, gif, webp, xlsx, "
        "docx, txt, csv; the type is read from the bytes, and a declared type the bytes "
        "contradict is 422. Larger than `APPROVALS_ATTACHMENT_MAX_BYTES` (default 10 MiB): "
        "413. The name is sanitised. Answers the id to name in `attachments` of a "
        "submission, decision or comment; an upload attached to nothing within a day is "
        "deleted."
    ),
    responses=responses(400, 401, 413, 415, 422),
)
async def upload(
    file: Annotated[UploadFile, File(description="The file.")],
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> AttachmentOut:
    limit = services.settings.attachment_max_bytes
    digest = hashlib.sha256()
    parts: list[bytes] = []
    size = 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        digest.update(chunk)
        parts.append(chunk)
    content = b"".join(parts)
    name = file.filename or ""
    try:
        kind = sniff(content, file.content_type or "", name)
    except DomainError as err:
        raise ApiError.from_domain(err) from None
    if not content:
        raise ApiError(422, ErrorCode.VALIDATION.value, "the file is empty", {"field": "file"})
    meta = await store.store(
        session,
        AttachmentRow(
            id=str(uuid.uuid4()),
            uploader=user.id,
            file_name=sanitise_name(name, kind),
            content_type=kind.content_type,
            size=size,
            sha256=digest.hexdigest(),
            content=content,
        ),
    )
    return attaching.described(meta)


@router.get(
    "/{attachment_id}",
    summary="Download a file",
    description=(
        "The bytes, streamed, with the stored content type, `Content-Disposition: attachment` "
        "(RFC 5987 `filename*`) and `X-Content-Type-Options: nosniff`. Only for those who "
        "may read the request it is attached to (and its uploader, before it is attached): "
        "404 for everyone else, as for an unknown id."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        **responses(401, 404, 422),
    },
)
async def download(
    attachment_id: AttachmentId, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> StreamingResponse:
    try:
        aid = str(uuid.UUID(attachment_id))
    except ValueError:
        raise not_found("attachment") from None
    meta = await store.get_meta(session, aid)
    if meta is None:
        raise not_found("attachment")
    if meta.request_id is None:
        allowed = meta.uploader == user.id
    else:
        allowed = await q.get_visible_ref(session, meta.request_id, viewer_of(user)) is not None
    await session.commit()
    if not allowed:
        raise not_found("attachment")
    return StreamingResponse(
        store.chunks(services.sessions, meta.id, meta.size),
        media_type=meta.content_type,
        headers={
            "Content-Disposition": content_disposition(meta.file_name),
            "Content-Length": str(meta.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
