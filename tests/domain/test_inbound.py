"""The inbound types: what text, ids and numbers are accepted, and that the JSON
schema the API publishes says exactly the same (it is fuzzed against the server)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.inbound import (
    ID_PATTERN,
    MAX_COMMENT,
    MAX_SHORT_TEXT,
    MONEY_INTEGER_DIGITS,
    MONEY_PLACES,
    Comment,
    Id,
    InboundError,
    Money,
    OptionalShortText,
    ShortText,
    check_id,
    check_money,
    check_number,
    check_text,
    number_pattern,
    text_pattern,
)
from tests.support.strategies import number_text, numbers, texts

SETTINGS = settings(max_examples=100, deadline=None)


def _is_control(c: str, multiline: bool) -> bool:
    o = ord(c)
    if multiline and c in "\t\n":
        return False
    return o < 0x20 or 0x7F <= o <= 0x9F


def _should_accept(s: str, max_length: int, multiline: bool, required: bool) -> bool:
    """The rule, written out without the module's regexes."""
    if len(s) > max_length:
        return False
    if any(0xD800 <= ord(c) <= 0xDFFF or _is_control(c, multiline) for c in s):
        return False
    return not (required and not s.strip())


VARIANTS = [
    (MAX_SHORT_TEXT, False, True),
    (MAX_SHORT_TEXT, False, False),
    (MAX_COMMENT, True, False),
]


@SETTINGS
@given(s=texts)
@example(s="a\x00b")
@example(s="\ud800")
@example(s="title\n")
@example(s=" \u3000 ")
def test_text_accepts_exactly_what_the_rule_says_and_nothing_unsafe(s: str) -> None:
    for max_length, multiline, required in VARIANTS:
        expected = _should_accept(s, max_length, multiline, required)
        try:
            got = check_text(s, max_length=max_length, multiline=multiline, required=required)
        except InboundError:
            assert not expected, (s, multiline, required)
            continue
        assert expected, (s, multiline, required)
        assert got == s.strip()
        assert len(got) <= max_length
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in got)
        assert not any(_is_control(c, multiline) for c in got)
        assert "\x00" not in got
        if required:
            assert got
        got.encode("utf-8")  # always storable as UTF-8


@SETTINGS
@given(s=texts)
@example(s="title\n")
@example(s="\t")
def test_text_schema_pattern_says_what_the_server_accepts(s: str) -> None:
    # Lone surrogates aside (JSON schema regex engines cannot name them; valid
    # UTF-8 never carries them), schema-valid <=> accepted, in Python's regex and
    # in the Rust engine schemathesis validates with.
    if any(0xD800 <= ord(c) <= 0xDFFF for c in s):
        return
    for max_length, multiline, required in VARIANTS:
        pattern = text_pattern(multiline=multiline, required=required)
        schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": pattern}
        accepted = _should_accept(s, max_length, multiline, required)
        assert (re.fullmatch(pattern, s) is not None and len(s) <= max_length) == accepted
        assert jsonschema_rs.validator_for(schema).is_valid(s) == accepted, (s, pattern)


@SETTINGS
@given(s=st.one_of(texts, st.from_regex(ID_PATTERN, fullmatch=True)))
@example(s="am_li")
@example(s="am_li\n")
@example(s="user@example.com")
def test_ids_match_the_pattern_exactly(s: str) -> None:
    try:
        got = check_id(s)
    except InboundError:
        assert re.fullmatch(ID_PATTERN, s) is None or len(s) > 64
        return
    assert got == s
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", got)


def test_the_demo_org_and_policies_ids_are_ids() -> None:
    root = Path(__file__).resolve().parents[2]
    org = yaml.safe_load((root / "org" / "demo.yaml").read_text(encoding="utf-8"))
    for user in org["users"]:
        assert check_id(user["id"]) == user["id"]
    for path in (root / "policies").glob("*.yaml"):
        assert check_id(path.stem) == path.stem


# --- numbers -----------------------------------------------------------------------

BUDGETS = [(15, 0, True), (15, 4, True), (MONEY_INTEGER_DIGITS, MONEY_PLACES, False)]


def _plain_digits(d: Decimal) -> tuple[int, int]:
    text = format(d, "f").lstrip("-")
    whole, _, frac = text.partition(".")
    return len(whole.lstrip("0")), len(frac.rstrip("0"))


@SETTINGS
@given(raw=numbers)
@example(raw="1e-1000000")
@example(raw="1e28")
@example(raw=10**28)
@example(raw="-0")
@example(raw=-0.0)
@example(raw="1_000")
@example(raw=" 1 ")
@example(raw="\u0661\u0662\u0663")
@example(raw=True)
def test_accepted_numbers_are_plain_within_budget_and_round_trip(raw: Any) -> None:
    for integer_digits, places, negative in BUDGETS:
        try:
            got = check_number(raw, integer_digits=integer_digits, places=places, negative=negative)
        except InboundError:
            continue
        assert not isinstance(raw, bool)
        assert got.is_finite()
        whole, frac = _plain_digits(got)
        assert whole <= integer_digits and frac <= places
        if got.is_zero():
            assert not got.is_signed()  # -0 is 0
        if not negative:
            assert got >= 0
        plain = format(got, "f")
        assert len(plain) <= integer_digits + places + 2
        assert check_number(plain, integer_digits=integer_digits, places=places) == got
        if isinstance(raw, str):
            assert re.fullmatch(
                number_pattern(integer_digits=integer_digits, places=places, negative=negative),
                raw,
            )


@SETTINGS
@given(raw=number_text)
@example(raw="-0.00")
@example(raw="-1")
def test_money_schema_pattern_says_what_the_server_accepts(raw: str) -> None:
    pattern = number_pattern(
        integer_digits=MONEY_INTEGER_DIGITS, places=MONEY_PLACES, negative=False
    )
    try:
        money = check_money(raw)
    except InboundError:
        accepted = False
    else:
        accepted = True
        assert re.fullmatch(r"[0-9]{1,16}\.[0-9]{2}", str(money))
    assert (re.fullmatch(pattern, raw) is not None) == accepted
    assert jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(raw) == (
        accepted
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("265000", "265000.00"), ("-0", "0.00"), (-0.0, "0.00"), ("1.5", "1.50"), (12, "12.00")],
)
def test_money_has_two_places_and_no_negative_zero(raw: Any, shown: str) -> None:
    assert str(check_money(raw)) == shown


@pytest.mark.parametrize(
    "raw",
    [
        "1e-1000000",
        "1e-100000000",
        "1E+5",
        "1_000",
        " 1 ",
        "1 000",
        "\u0661\u0662\u0663",
        "\uff11",
        "+1",
        "1.",
        ".5",
        "0x10",
        "NaN",
        "Infinity",
        "-1",
        "1.005",
        "1" * 17,
        10**16,
        1e16,
        float("inf"),
        True,
        None,
        [1],
    ],
)
def test_money_refusals(raw: Any) -> None:
    with pytest.raises(InboundError):
        check_money(raw)


class Body(BaseModel):
    title: ShortText
    reference: OptionalShortText = ""
    comment: Comment | None = None
    user: Id = "am_li"
    amount: Money | None = None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "a\x00b"),
        ("title", "\ud800"),
        ("title", "two\nlines"),
        ("title", "   "),
        ("title", "x" * 201),
        ("reference", "ref\x00"),
        ("comment", "nul\x00"),
        ("comment", "c1\x85"),
        ("comment", "cr\r\n"),
        ("comment", "y" * 4001),
        ("user", "am li"),
        ("user", "am_li\x00"),
        ("user", "_am"),
        ("amount", "1e-1000000"),
    ],
)
def test_pydantic_types_refuse_naming_the_field(field: str, value: Any) -> None:
    body: dict[str, Any] = {"title": "ok", field: value}
    with pytest.raises(ValidationError) as info:
        Body.model_validate(body)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]
    # The message is for people: no pydantic boilerplate.
    assert not info.value.errors()[0]["msg"].startswith("Value error")


def test_pydantic_types_trim_and_normalise() -> None:
    body = Body.model_validate(
        {"title": "  A title ", "comment": "line one\n\tline two\n", "amount": "-0"}
    )
    assert (body.title, body.comment, body.amount) == (
        "A title",
        "line one\n\tline two",
        Decimal("0.00"),
    )
    assert str(body.amount) == "0.00"
