"""Attachments, pure: the content type read from the bytes, file names made safe."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.attachments import (
    CSV,
    DOCX,
    GIF,
    JPEG,
    MAX_NAME,
    PDF,
    PNG,
    TXT,
    WEBP,
    XLSX,
    Kind,
    content_disposition,
    sanitise_name,
    sniff,
    stale,
)
from domain.errors import DomainError, ErrorCode


def _zip(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in names:
            z.writestr(name, "<x/>")
    return out.getvalue()


SAMPLES: list[tuple[bytes, Kind]] = [
    (b"%PDF-1.7\n%\xe2\xe3", PDF),
    (b"\x89PNG\r\n\x1a\n\x00\x00", PNG),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
    (b"GIF89a\x01\x00", GIF),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", WEBP),
    (_zip("[Content_Types].xml", "xl/workbook.xml"), XLSX),
    (_zip("[Content_Types].xml", "word/document.xml"), DOCX),
    ("金额,备注\n1,2\n".encode(), TXT),
]


@pytest.mark.parametrize(("content", "kind"), SAMPLES)
def test_the_kind_is_read_from_the_bytes_and_its_declared_type_is_accepted(
    content: bytes, kind: Kind
) -> None:
    assert sniff(content) is kind
    assert sniff(content, "application/octet-stream") is kind
    assert sniff(content, f"{kind.content_type}; charset=utf-8") is kind


@given(st.sampled_from(SAMPLES), st.sampled_from(SAMPLES))
def test_a_declared_type_the_bytes_contradict_is_refused(
    sample: tuple[bytes, Kind], other: tuple[bytes, Kind]
) -> None:
    content, kind = sample
    declared = other[1].content_type
    if declared in kind.declared or {kind, other[1]} <= {TXT, CSV}:
        return
    with pytest.raises(DomainError) as info:
        sniff(content, declared)
    assert info.value.code is ErrorCode.VALIDATION
    assert info.value.details["declared"] == declared


def test_text_is_csv_when_declared_or_named_so() -> None:
    assert sniff(b"a,b\n", "text/csv") is CSV
    assert sniff(b"a,b\n", "", "t.CSV") is CSV
    assert sniff(b"a,b\n", "text/plain", "t.csv") is TXT


@pytest.mark.parametrize(
    "content",
    [
        b"\x7fELF\x02\x01",
        b"MZ\x90\x00\x03",
        _zip("[Content_Types].xml", "ppt/presentation.xml"),
        _zip("payload.exe"),
        b"PK\x03\x04broken",
        b"text with a \x00 nul",
        b"\xff\xfe not utf-8 \xc3",
    ],
)
def test_bytes_of_no_allowed_kind_are_refused(content: bytes) -> None:
    with pytest.raises(DomainError) as info:
        sniff(content, "")
    assert info.value.details["field"] == "file"


@given(st.binary(max_size=64))
def test_anything_is_either_an_allowed_kind_or_refused_never_a_crash(content: bytes) -> None:
    try:
        kind = sniff(content, "")
    except DomainError as err:
        assert err.code is ErrorCode.VALIDATION
    else:
        assert isinstance(kind, Kind)


BAD = {"/", "\\", "\u202e", "\u202d", "\u2066", "\u2069", "\u200b", "\u200f", "\x00", "\x1b", "\n"}


@given(st.text(max_size=400), st.sampled_from([None, PDF, PNG]))
def test_a_sanitised_name_has_no_path_control_or_bidi_character_and_is_bounded(
    raw: str, kind: Kind | None
) -> None:
    name = sanitise_name(raw, kind)
    assert name and len(name) <= MAX_NAME
    assert not set(name) & BAD
    assert all(unicodedata.category(c)[0] != "C" for c in name)
    assert not name.startswith((".", " ")) and not name.endswith((".", " "))
    assert sanitise_name(name, kind) == name  # stable


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=50
    )
)
def test_cjk_names_are_kept(stem: str) -> None:
    assert sanitise_name(f"{stem}.pdf") == f"{unicodedata.normalize('NFC', stem)}.pdf"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd.pdf"),  # the kind names what it is
        ("C:\\Users\\li\\合同.docx", "合同.docx"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("  ..hidden.txt  ", "hidden.txt"),
        ("", "file.pdf"),
        ("a" * 300 + ".xlsx", "a" * (MAX_NAME - 5) + ".xlsx"),
        ("报价\t单\n.pdf", "报价单.pdf"),
    ],
)
def test_names_are_sanitised(raw: str, expected: str) -> None:
    assert sanitise_name(raw, PDF) == expected


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert content_disposition('合同 "v2";.pdf') == (
        'attachment; filename="__ _v2__.pdf"; '
        "filename*=UTF-8''%E5%90%88%E5%90%8C%20%22v2%22%3B.pdf"
    )


def test_uploads_unattached_for_a_day_are_stale() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert stale(now - timedelta(days=1), attached=False, now=now)
    assert not stale(now - timedelta(hours=23), attached=False, now=now)
    assert not stale(now - timedelta(days=9), attached=True, now=now)
