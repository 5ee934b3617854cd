"""docs/examples: one submit body per request type, each accepted as it is.

A newcomer copies these (``curl -d @docs/examples/<type>.json``): each must be
submitted with 201 by the demo account manager, and previewed with the same body.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.api import Auth
from tests.support.paths import ROOT

EXAMPLES = ROOT / "docs" / "examples"
TYPES = sorted(p.stem for p in (ROOT / "policies").glob("*.yaml"))


def example(type_: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{type_}.json").read_text(encoding="utf-8"))
    return body


def test_there_is_one_example_per_request_type_and_no_other() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == TYPES
    for type_ in TYPES:
        assert example(type_)["type"] == type_


@pytest.mark.parametrize("type_", TYPES)
async def test_each_example_previews_and_submits_as_it_is(
    api: httpx.AsyncClient, worker: None, auth: Auth, type_: str
) -> None:
    body = example(type_)

    preview = await api.post(f"/v1/policies/{type_}/preview", json=body, headers=auth("am_li"))
    assert preview.status_code == 200, preview.text

    submitted = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert submitted.status_code == 201, submitted.text
    view = submitted.json()
    assert (view["type"], view["title"]) == (type_, body["title"])


def test_the_examples_readme_names_every_example() -> None:
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for type_ in TYPES:
        assert f"{type_}.json" in text, type_
