"""The one set of inbound types: the text, ids and numbers every entry point accepts.

Everything that arrives from outside (API bodies, query and path parameters, the
token's subject, workflow message payloads, form field values, org and policy
files) goes through these, so whatever is accepted can be stored by PostgreSQL
and carried by Temporal:

* **Text** refuses NUL and every other C0/C1 control character (tab and newline
  are allowed in multi-line text only) and lone surrogates, is bounded in length
  (counted on what was sent, before trimming), and is trimmed of surrounding
  whitespace.
* **Ids** (user ids, request types, milestone names, the token's subject) match
  :data:`ID_PATTERN` exactly; nothing is trimmed.
* **Numbers** are ASCII plain decimals (``-12.5``): no exponent, ``_``, spaces
  or non-ASCII digits; JSON numbers are accepted when their plain form fits. The
  digit budget is checked before any arithmetic, so no input can make a huge
  string or an ``InvalidOperation``. ``-0`` is ``0``.

Each kind is a plain function (for values outside pydantic, e.g. the form fields
of a request) and an ``Annotated`` pydantic type built on it, whose JSON schema
states exactly the same limits (the OpenAPI document is fuzzed against the API).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from domain.errors import DomainError, ErrorCode

MAX_SHORT_TEXT = 200
"""One-line text: titles, customers, references, list filters."""
MAX_COMMENT = 4000
"""Multi-line text: comments, reasons, policy prose."""
MAX_ID = 64

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
"""User ids, request types, milestone names, a token's subject."""

MONEY_INTEGER_DIGITS = 16
"""Money fits ``NUMERIC(18, 2)``: 16 digits before the point, 2 after."""
MONEY_PLACES = 2
FIELD_INTEGER_DIGITS = 15
"""Numeric form fields: below 10^15 in magnitude."""

PAYLOAD_BUDGET_BYTES = 256 * 1024
"""The most a submission's serialized workflow input (or a resubmit's update payload)
may weigh; Temporal refuses payloads over 2 MB, and every transition carries the
request's fields again."""
TEMPORAL_PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024


class InboundError(ValueError):
    """A refused inbound value; the message says what is wrong, for people."""


# --- text --------------------------------------------------------------------------

# As regex source (escapes, not the characters), so the JSON schema shows them readably.
_C0_C1 = r"\x00-\x1F\x7F-\x9F"
_C0_C1_BUT_TAB_NEWLINE = r"\x00-\x08\x0B-\x1F\x7F-\x9F"
# What str.strip() removes besides control characters: a required text needs
# something else.
_SPACES = r" \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"

_ONE_LINE_BAD = re.compile(f"[{_C0_C1}]")
_MULTI_LINE_BAD = re.compile(f"[{_C0_C1_BUT_TAB_NEWLINE}]")
_SURROGATE = re.compile(r"[\uD800-\uDFFF]")
_ID = re.compile(ID_PATTERN)


def text_pattern(*, multiline: bool, required: bool) -> str:
    """The JSON-schema ``pattern`` of a text variant (lone surrogates aside: JSON
    schema regex engines cannot name them, and valid UTF-8 cannot carry them)."""
    allowed = f"[^{_C0_C1_BUT_TAB_NEWLINE if multiline else _C0_C1}]"
    if not required:
        return f"^{allowed}*$"
    spaces = r"\t\n" + _SPACES if multiline else _SPACES
    visible = f"[^{_C0_C1_BUT_TAB_NEWLINE if multiline else _C0_C1}{spaces}]"
    return f"^{allowed}*{visible}{allowed}*$"


def check_text(
    value: object, *, max_length: int, multiline: bool = False, required: bool = False
) -> str:
    """``value`` as inbound text, trimmed.

    Raises:
        InboundError: not a string; longer than ``max_length`` characters (as sent);
            a lone surrogate; a control character (multi-line text allows tab and
            newline); empty after trimming when ``required``.
    """
    if not isinstance(value, str):
        raise InboundError("must be a string")
    if len(value) > max_length:
        raise InboundError(f"must be at most {max_length} characters")
    if _SURROGATE.search(value):
        raise InboundError("must be valid Unicode text (it contains a lone surrogate)")
    bad = (_MULTI_LINE_BAD if multiline else _ONE_LINE_BAD).search(value)
    if bad is not None:
        allowed = "other than tab and newline" if multiline else "(one line: no tab or newline)"
        raise InboundError(
            f"must not contain control characters {allowed}: "
            f"U+{ord(bad.group()):04X} at position {bad.start()}"
        )
    value = value.strip()
    if required and not value:
        raise InboundError("must not be empty")
    return value


def check_id(value: object) -> str:
    """``value`` as an id (see :data:`ID_PATTERN`); nothing is trimmed.

    Raises:
        InboundError: not a string, or not of the id form.
    """
    if not isinstance(value, str):
        raise InboundError("must be a string")
    if len(value) > MAX_ID or _ID.fullmatch(value) is None:
        raise InboundError(
            f"must be an id: 1 to {MAX_ID} of A-Z a-z 0-9 _ . @ -, starting with a letter or digit"
        )
    return value


# --- numbers -----------------------------------------------------------------------


def number_pattern(*, integer_digits: int, places: int, negative: bool) -> str:
    """The JSON-schema ``pattern`` of a plain decimal string with this budget.

    Where negatives are not allowed, ``-0`` still is (it means 0).
    """
    frac = f"(\\.[0-9]{{1,{places}}})?" if places else ""
    if negative:
        return f"^-?[0-9]{{1,{integer_digits}}}{frac}$"
    zero_frac = f"(\\.0{{1,{places}}})?" if places else ""
    return f"^([0-9]{{1,{integer_digits}}}{frac}|-0{{1,{integer_digits}}}{zero_frac})$"


def _plain_number_message(integer_digits: int, places: int) -> str:
    after = f" and at most {places} after it" if places else ", no decimal point"
    return (
        f"must be a plain decimal number (ASCII digits, at most {integer_digits} before "
        f"the point{after}; no exponent, spaces, '_' or other separators)"
    )


def check_number(
    value: object, *, integer_digits: int, places: int, negative: bool = True
) -> Decimal:
    """``value`` as a decimal within the budget; ``-0`` is ``0``.

    Strings must be plain ASCII decimals matching :func:`number_pattern`. JSON
    numbers (int, float) and Decimals are accepted when their plain form fits the
    same budget. The budget is checked before any arithmetic.

    Raises:
        InboundError: not a number, not plain, too many digits, or negative when
            ``negative`` is false.
    """
    if isinstance(value, bool):
        raise InboundError("must be a number")
    if isinstance(value, str):
        pattern = number_pattern(integer_digits=integer_digits, places=places, negative=True)
        if len(value) > integer_digits + places + 2 or re.fullmatch(pattern, value) is None:
            raise InboundError(_plain_number_message(integer_digits, places))
        number = Decimal(value)
    elif isinstance(value, int):
        if not -(10**integer_digits) < value < 10**integer_digits:
            raise InboundError(f"must have at most {integer_digits} digits before the point")
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InboundError("must be a finite number")
        number = Decimal(repr(value))  # the shortest repr: 0.1 means exactly 0.1
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InboundError("must be a finite number")
        number = value
    else:
        raise InboundError("must be a number")
    if number.is_zero():
        return Decimal(0)
    if not negative and number < 0:
        raise InboundError("must not be negative")
    if number.adjusted() >= integer_digits:
        raise InboundError(f"must have at most {integer_digits} digits before the point")
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    if exponent < 0:
        trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        fraction_digits = -exponent - min(trailing_zeros, -exponent)
        if fraction_digits > places:
            raise InboundError(
                f"must have at most {places} decimal places" if places else "must be a whole number"
            )
        if -exponent > places:
            # Zeros beyond the budget (a float's 12.0, a Decimal's 1.500) are dropped,
            # so the plain form is within the budget too. Exact: within 28 digits.
            number = number.quantize(Decimal(1).scaleb(-places))
    return number


_CENT = Decimal("0.01")


def check_money(value: object) -> Decimal:
    """Money in CNY: non-negative, at most 16 + 2 digits, always with two places."""
    number = check_number(
        value, integer_digits=MONEY_INTEGER_DIGITS, places=MONEY_PLACES, negative=False
    )
    return number.quantize(_CENT)


def check_json_text(value: object) -> object:
    """``value`` (any JSON value) if every string in it, keys included, is valid
    Unicode: a lone surrogate has no UTF-8 form, so nothing could carry or store it.

    The value's own rules (a form field's type, length, control characters) are
    checked later by :func:`domain.requests.validate_fields`.

    Raises:
        InboundError: a string somewhere in ``value`` holds a lone surrogate.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InboundError("must be valid Unicode text (it contains a lone surrogate)")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


# --- the payload budget ------------------------------------------------------------


def payload_size(payload: BaseModel) -> int:
    """Bytes of ``payload`` as the pydantic data converter serializes it."""
    return len(payload.__pydantic_serializer__.to_json(payload))


def check_payload_budget(payload: BaseModel, what: str) -> None:
    """Refuse a workflow payload over :data:`PAYLOAD_BUDGET_BYTES`.

    Raises:
        DomainError: PAYLOAD_TOO_LARGE (413), with the size and the budget.
    """
    size = payload_size(payload)
    if size > PAYLOAD_BUDGET_BYTES:
        raise DomainError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{what} is too large: {size} bytes once serialized, more than the "
            f"{PAYLOAD_BUDGET_BYTES} bytes a request may carry",
            {"size_bytes": size, "limit_bytes": PAYLOAD_BUDGET_BYTES},
        )


# --- pydantic types ------------------------------------------------------------------


def _pydantic(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check`` with its InboundError as a pydantic error (message as is)."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except InboundError as exc:
            message = str(exc).replace("{", "(").replace("}", ")")  # braces are placeholders
            raise PydanticCustomError("invalid_input", message) from None

    return validate


def _text(max_length: int, *, multiline: bool, required: bool) -> Any:
    schema: dict[str, Any] = {
        "type": "string",
        "maxLength": max_length,
        "pattern": text_pattern(multiline=multiline, required=required),
    }
    if required:
        schema["minLength"] = 1

    def check(value: Any) -> str:
        return check_text(value, max_length=max_length, multiline=multiline, required=required)

    return Annotated[
        str, AfterValidator(_pydantic(check)), WithJsonSchema(schema, mode="validation")
    ]


ShortText = _text(MAX_SHORT_TEXT, multiline=False, required=True)
"""One line, 1 to 200 characters after trimming: titles, customers, list filters."""
OptionalShortText = _text(MAX_SHORT_TEXT, multiline=False, required=False)
"""One line, at most 200 characters, may be empty: references."""
Comment = _text(MAX_COMMENT, multiline=True, required=False)
"""Multi-line (tab and newline allowed), at most 4000 characters, may be empty."""
RequiredComment = _text(MAX_COMMENT, multiline=True, required=True)
"""A :data:`Comment` that must say something: a reason (why a request is sent back, why
an approval is revoked)."""

Id = Annotated[
    str,
    AfterValidator(_pydantic(check_id)),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": ID_PATTERN},
        mode="validation",
    ),
]
"""A user id, request type, milestone name or token subject (:data:`ID_PATTERN`)."""

FieldValue = Annotated[Any, AfterValidator(_pydantic(check_json_text))]
"""A form field's value as sent: any JSON that can be carried (see :func:`check_json_text`)."""
FormFields = Annotated[
    dict[Id, FieldValue],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 100,
            "propertyNames": {"minLength": 1, "maxLength": MAX_ID, "pattern": ID_PATTERN},
            "description": "The request type's form fields by name (see its policy).",
        },
        mode="validation",
    ),
]
"""The ``fields`` of a submission, resubmission or preview: keys are ids, values
carriable JSON; each is checked against its policy by ``validate_fields``."""

Money = Annotated[
    Decimal,
    BeforeValidator(_pydantic(check_money)),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": number_pattern(
                        integer_digits=MONEY_INTEGER_DIGITS, places=MONEY_PLACES, negative=False
                    ),
                    "maxLength": MONEY_INTEGER_DIGITS + MONEY_PLACES + 2,
                },
                {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMaximum": 10**MONEY_INTEGER_DIGITS,
                    "multipleOf": 0.01,
                },
            ],
            "description": 'CNY, non-negative: a plain decimal string such as "265000" or '
            '"1234.50" (at most 16 digits before the point and 2 after; no exponent, spaces '
            "or separators), or a JSON number whose plain form fits. Stored and shown with "
            "two places.",
        },
        mode="validation",
    ),
]
"""Money in CNY: a non-negative decimal, always with two places ("265000.00"). Never a float."""

MAX_STAGE_INDEX = 999


def check_stage_ref(value: object) -> str | int:
    """``value`` as a stage reference: a stage key (an id) or a stage index from 0.

    Raises:
        InboundError: neither (a JSON boolean is not an index).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= MAX_STAGE_INDEX:
            return value
        raise InboundError(f"a stage index is from 0 to {MAX_STAGE_INDEX}")
    if isinstance(value, str):
        return check_id(value)
    raise InboundError("must be a stage key (a string) or a stage index (an integer from 0)")


StageRef = Annotated[
    str | int,
    PlainValidator(_pydantic(check_stage_ref)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": ID_PATTERN},
                {"type": "integer", "minimum": 0, "maximum": MAX_STAGE_INDEX},
            ]
        },
        mode="validation",
    ),
]
"""A stage of a request's route: its key, or its index in the route (from 0)."""
