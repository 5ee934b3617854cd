"""Files attached to submissions, decisions and comments: what they may be, what they are called.

Pure rules, no I/O. The content type is read from the bytes (magic numbers), never
believed from the upload: a declared type that says otherwise is refused, and only
the kinds of :data:`KINDS` are taken. File names are sanitised so that a name can be
shown and sent back in a ``Content-Disposition`` safely: no path, no control or
bidirectional-override characters, a bounded length; CJK and other letters are kept.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from domain.errors import DomainError, ErrorCode

MAX_NAME = 120
"""Characters kept of a file name (the extension kept whole)."""
UNATTACHED_FOR = timedelta(days=1)
"""An upload not attached to anything after this long is deleted (:func:`stale`)."""


@dataclass(frozen=True)
class Kind:
    """One allowed kind of file."""

    name: str
    content_type: str
    extensions: tuple[str, ...]
    declared: frozenset[str]
    """Content types an upload may declare for it (besides none or octet-stream)."""


def _kind(name: str, content_type: str, extensions: tuple[str, ...], *also: str) -> Kind:
    return Kind(name, content_type, extensions, frozenset({content_type, *also}))


PDF = _kind("pdf", "application/pdf", (".pdf",))
PNG = _kind("png", "image/png", (".png",))
JPEG = _kind("jpeg", "image/jpeg", (".jpg", ".jpeg"), "image/jpg", "image/pjpeg")
GIF = _kind("gif", "image/gif", (".gif",))
WEBP = _kind("webp", "image/webp", (".webp",))
XLSX = _kind(
    "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)
)
DOCX = _kind(
    "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)
)
TXT = _kind("txt", "text/plain", (".txt",))
CSV = _kind("csv", "text/csv", (".csv",), "application/csv", "text/comma-separated-values")
KINDS = (PDF, PNG, JPEG, GIF, WEBP, XLSX, DOCX, TXT, CSV)
"""The allow-list."""
UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Declared types that say nothing: the bytes decide alone."""

_TEXT_CONTROLS = frozenset("\t\n\r\f")


def _zip_kind(content: bytes) -> Kind | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, RuntimeError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "xl/workbook.xml" in names:
        return XLSX
    if "word/document.xml" in names:
        return DOCX
    return None


def _is_text(content: bytes) -> bool:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS for c in text)


def sniff(content: bytes, declared: str = "", name: str = "") -> Kind:
    """The kind of file ``content`` is, checked against the type the upload declared.

    Text (UTF-8, no control characters) is CSV when declared or named so, else plain text.

    Raises:
        DomainError: 422 when the bytes are of no allowed kind, or of another kind than
            the one declared.
    """
    declared = declared.split(";", 1)[0].strip().lower()
    found: Kind | None = None
    head = content[:16]
    if head.startswith(b"%PDF-"):
        found = PDF
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = PNG
    elif head.startswith(b"\xff\xd8\xff"):
        found = JPEG
    elif head.startswith((b"GIF87a", b"GIF89a")):
        found = GIF
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        found = WEBP
    elif head.startswith(b"PK\x03\x04"):
        found = _zip_kind(content)
    elif _is_text(content):
        csv_named = name.lower().endswith(".csv")
        found = CSV if declared in CSV.declared or (declared in UNDECLARED and csv_named) else TXT
    if found is None:
        allowed = ", ".join(k.name for k in KINDS)
        raise DomainError(
            ErrorCode.VALIDATION,
            f"this kind of file is not accepted (allowed: {allowed})",
            {"field": "file", "allowed": [k.name for k in KINDS]},
        )
    if declared not in UNDECLARED and declared not in found.declared:
        raise DomainError(
            ErrorCode.VALIDATION,
            f"the file is declared {declared} but its content is {found.content_type}",
            {"field": "file", "declared": declared, "content": found.content_type},
        )
    return found


def sanitise_name(raw: str, kind: Kind | None = None) -> str:
    """A file name safe to store, show and send back: the last path part only, no
    control, format (bidi overrides, zero-width) or unassigned characters, spaces
    folded, no leading dots, at most :data:`MAX_NAME` characters with the extension
    kept; ``file`` (with the kind's extension) when nothing is left."""
    name = unicodedata.normalize("NFC", raw)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for c in name:
        category = unicodedata.category(c)
        if category[0] == "C":  # Cc control, Cf format (bidi, zero-width), Cs, Co, Cn
            continue
        kept.append(" " if category[0] == "Z" else c)
    name = " ".join("".join(kept).split())
    name = name.lstrip(". ").rstrip(". ")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = name, ""
    if not stem:
        stem = "file"
    if not ext and kind is not None:
        ext = kind.extensions[0].lstrip(".")
    suffix = f".{ext}" if ext else ""
    stem = stem[: MAX_NAME - len(suffix)].rstrip(". ") or "file"
    return f"{stem}{suffix}"


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\;%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def stale(created_at: datetime, attached: bool, now: datetime) -> bool:
    """An upload nobody attached within :data:`UNATTACHED_FOR`: the cleaner deletes it."""
    return not attached and now - created_at >= UNATTACHED_FOR
