"""Policy text in zh-CN and en: one type, plain strings as before, fallbacks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.localize import field_units
from domain.policy import FieldSpec, Policy
from domain.text import LocalizedShortText, LocalizedText


class Holder(BaseModel):
    text: LocalizedShortText


def test_a_plain_string_is_one_language_and_dumps_as_the_same_string():
    held = Holder.model_validate({"text": "Contract number"})
    assert held.text == "Contract number"
    assert held.text.get("zh-CN") == "Contract number"
    assert held.model_dump() == {"text": "Contract number"}
    assert held.model_dump_json() == '{"text":"Contract number"}'


def test_a_mapping_answers_each_language_and_falls_back_to_english():
    text = LocalizedText({"zh-CN": "合同编号", "en": "Contract number"})
    assert str(text) == "Contract number"
    assert text.get("zh-CN") == "合同编号"
    assert text.get("en") == "Contract number"
    assert text.get("fr") == "Contract number"
    assert text.get(None) == "Contract number"
    assert text.languages == ("zh-CN", "en")


def test_a_text_in_chinese_only_falls_back_to_chinese():
    text = LocalizedText({"zh-CN": "合同编号"})
    assert text.get("en") == "合同编号"
    assert str(text) == "合同编号"


@pytest.mark.parametrize(
    "bad",
    [{}, {"fr": "Numéro"}, {"en": 3}, {"en": ""}, {"en": "two\nlines"}, 42, {"en": "x" * 201}],
)
def test_bad_texts_are_refused_with_a_reason(bad: object):
    with pytest.raises(ValidationError):
        Holder.model_validate({"text": bad})


def test_translations_differ_as_values():
    one = LocalizedText({"en": "A", "zh-CN": "甲"})
    assert one != LocalizedText({"en": "A", "zh-CN": "乙"})
    assert one == LocalizedText({"zh-CN": "甲", "en": "A"})
    assert LocalizedText("A") == "A"


def test_choices_read_by_their_labels_and_unknown_labels_are_refused():
    spec = FieldSpec.model_validate(
        {
            "name": "rating",
            "type": "choice",
            "choices": ["good", "poor"],
            "choice_labels": {"good": {"en": "Good", "zh-CN": "良好"}},
        }
    )
    assert spec.choice_label("good", "zh-CN") == "良好"
    assert spec.choice_label("poor", "zh-CN") == "poor"
    with pytest.raises(ValidationError, match="unknown choices"):
        FieldSpec.model_validate(
            {"name": "r", "type": "choice", "choices": ["a"], "choice_labels": {"b": "B"}}
        )


_line = (
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200)
    .map(str.strip)
    .filter(bool)
)
_texts = _line | st.dictionaries(st.sampled_from(["en", "zh-CN"]), _line, min_size=1)


@given(_texts)
def test_any_accepted_text_round_trips(value: str | dict[str, str]):
    try:
        held = Holder.model_validate({"text": value})
    except ValidationError:
        return
    again = Holder.model_validate_json(held.model_dump_json())
    assert again == held
    assert again.text.dump() == held.text.dump()
    assert Holder.model_validate(held.model_dump()).text.languages == held.text.languages


def test_a_field_unit_is_optional_localized_and_left_out_of_a_dump_when_absent() -> None:
    with_unit = FieldSpec.model_validate(
        {"name": "months", "type": "integer", "unit": {"en": "months", "zh-CN": "个月"}}
    )
    without = FieldSpec.model_validate({"name": "note", "type": "string"})
    assert "unit" not in without.model_dump()
    assert with_unit.model_dump()["unit"] == {"en": "months", "zh-CN": "个月"}
    policy = Policy.model_validate(
        {"type": "t", "version": 1, "title": "T", "fields": [with_unit, without]}
    )
    assert field_units(policy, "zh-CN") == {"months": "个月"}
    assert field_units(policy, "en") == {"months": "months"}
