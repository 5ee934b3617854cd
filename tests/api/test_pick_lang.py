"""The action pages pick their language as the API does: ``?lang=``, else Accept-Language."""

from __future__ import annotations

import pytest

from api.web.links import pick_lang


@pytest.mark.parametrize(
    ("query", "header", "lang"),
    [
        ("zh-CN", "en", "zh-CN"),
        ("zh", None, "zh-CN"),
        ("EN-gb", "zh", "en"),
        ("fr", "zh-TW,en;q=0.5", "zh-CN"),
        (None, "fr, en;q=0.2, zh;q=0.8", "zh-CN"),
        (None, "zh;q=0, en", "en"),
        ("x" * 100, "de", "en"),
        (None, None, "en"),
    ],
)
def test_the_address_then_accept_language_then_english(
    query: str | None, header: str | None, lang: str
) -> None:
    assert pick_lang(query, header) == lang
