"""Every shipped policy speaks zh-CN and en: each text a person reads is in both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from common.policy_store import load_policies
from domain.policy import FieldType, Policy
from domain.text import LANGUAGES, LocalizedText
from tests.support.paths import ROOT

POLICIES = load_policies(ROOT / "policies")


def _texts(value: Any, where: str) -> Iterator[tuple[str, LocalizedText]]:
    if isinstance(value, LocalizedText):
        yield where, value
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _texts(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _texts(item, f"{where}.{k}")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name), f"{where}.{name}")


@pytest.mark.parametrize("policy", POLICIES.values(), ids=list(POLICIES))
def test_every_text_of_a_shipped_policy_is_in_chinese_and_english(policy: Policy):
    missing = [
        where
        for where, text in _texts(policy, policy.type)
        if str(text) and set(text.languages) != set(LANGUAGES)
    ]
    assert not missing
    for spec in policy.fields:
        if spec.type is FieldType.CHOICE:
            assert set(spec.choice_labels) == set(spec.choices), spec.name
        assert spec.label.get("zh-CN") != spec.label.get("en"), spec.name


def test_the_seeds_own_words_name_the_big_customer_contract():
    policy = POLICIES["big_customer_contract"]
    assert policy.title.get("zh-CN") == "大客户合同"
    assert policy.field("contract_no").label.get("zh-CN") == "合同编号"  # type: ignore[union-attr]
    names = {s.key: s.name.get("zh-CN") for s in policy.stages}
    assert names["big_customer_dept_approve"] == "大客户管理部审批备案"
    assert names["deputy_sales_director_approve"] == "销售副总监批准"
