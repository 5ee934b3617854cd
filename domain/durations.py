"""Policy durations that say which time they count: calendar time or working time.

A :class:`Span` *is* a :class:`datetime.timedelta` (its length), plus whether it
counts working time and, for working time, whether it is a number of working
days or of working hours. Code that adds a span to an instant (``now +
policy.timers.reply``) therefore keeps compiling and counts calendar time until
it asks the business calendar instead (:mod:`domain.working_time`).

Written in a policy file as::

    reply: PT4H                # calendar time, ISO-8601, as every policy always had
    resolve: P3D
    resolve: 3 days            # the same, in words
    reply: PT4H working        # 4 working hours
    reply: 4 working hours
    resolve: P3D working       # 3 working days
    resolve: 3 working days

Calendar spans serialize exactly as pydantic serializes a ``timedelta``
(``PT4H``, ``P3D``), so policies and workflow histories stored before spans
existed read and write byte-identically. Working spans serialize as the
ISO-8601 form followed by `` working`` (``PT4H working``, ``P3D working``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)

_WORDS = re.compile(
    r"^(?P<n>\d{1,6})\s+(?P<working>working\s+)?(?P<unit>minute|hour|day|week)s?$",
    re.IGNORECASE,
)
_ISO_WORKING = re.compile(r"^(?P<iso>P\S*)\s+working$", re.IGNORECASE)

FORMS = (
    "an ISO-8601 duration (PT4H, P3D) or words (4 hours, 3 days), for working time "
    "followed by 'working' (PT4H working, P3D working) or in words (4 working hours, "
    "3 working days)"
)


class SpanUnit(StrEnum):
    """What a working span counts: whole working days, or working hours (and minutes)."""

    DAYS = "days"
    HOURS = "hours"


class Span(timedelta):
    """A policy duration: a ``timedelta`` that also says whether it counts working time.

    Attributes:
        working: counts working time on the business calendar (else calendar time).
        unit: ``DAYS`` (``P3D working``: the end of the 3rd working day) or ``HOURS``
            (``PT4H working``: 4 hours of working hours). For calendar spans it is
            informational: ``DAYS`` when the length is whole days.
    """

    working: bool
    unit: SpanUnit

    def __new__(
        cls,
        days: float = 0,
        seconds: float = 0,
        microseconds: float = 0,
        milliseconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        weeks: float = 0,
        *,
        working: bool = False,
        unit: SpanUnit | None = None,
    ) -> Span:
        self = super().__new__(
            cls, days, seconds, microseconds, milliseconds, minutes, hours, weeks
        )
        whole_days = self.seconds == 0 and self.microseconds == 0
        if unit is None:
            unit = SpanUnit.DAYS if whole_days and self.days != 0 else SpanUnit.HOURS
        if working:
            if self < timedelta(0):
                raise ValueError("a working-time duration cannot be negative")
            if unit is SpanUnit.DAYS and not whole_days:
                raise ValueError("working days are whole days (P3D working, 3 working days)")
        self.working = working
        self.unit = SpanUnit(unit)
        return self

    @classmethod
    def of(cls, length: timedelta, *, working: bool = False, unit: SpanUnit | None = None) -> Span:
        """The span of ``length`` (calendar time unless ``working``)."""
        return cls(length.days, length.seconds, length.microseconds, working=working, unit=unit)

    @classmethod
    def parse(cls, text: str) -> Span:
        """Read a span written in a policy file; ``ValueError`` says what is accepted."""
        s = text.strip()
        if not s:
            raise ValueError(f"an empty duration: write {FORMS}")
        words = _WORDS.match(s)
        if words:
            n = int(words["n"])
            unit_word = words["unit"].lower()
            working = words["working"] is not None
            if working and unit_word == "week":
                raise ValueError(
                    f"{text!r}: working weeks are ambiguous; write working days (5 working days)"
                )
            length = timedelta(**{unit_word + "s": n})
            unit = SpanUnit.DAYS if unit_word in ("day", "week") else SpanUnit.HOURS
            return cls.of(length, working=working, unit=unit)
        iso = _ISO_WORKING.match(s)
        if iso:
            form = iso["iso"].upper()
            if not re.fullmatch(r"P(\d+D|T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)", form) or form == "PT":
                raise ValueError(
                    f"{text!r}: a working duration is whole days (P3D working) or hours, "
                    "minutes and seconds (PT4H working, PT1H30M working), never both"
                )
            unit = SpanUnit.HOURS if form.startswith("PT") else SpanUnit.DAYS
            return cls.of(_timedelta(form, text), working=True, unit=unit)
        if "working" in s.lower():
            raise ValueError(f"{text!r} is not a working-time duration: write {FORMS}")
        return cls.of(_timedelta(s, text))

    def canonical(self) -> str:
        """The form written back: ``PT4H`` (as pydantic writes a timedelta), ``P3D working``."""
        if not self.working:
            plain = timedelta(self.days, self.seconds, self.microseconds)
            return str(_TIMEDELTA.dump_python(plain, mode="json"))
        if self.unit is SpanUnit.DAYS:
            return f"P{self.days}D working"
        return f"{_iso_time(self)} working"

    def describe(self, lang: str | None = None) -> str:
        """For people: ``4 working hours``, ``3 working days``, ``3 days``; in zh-CN
        ``4个工作小时``, ``3个工作日`` (a calendar span keeps its canonical form)."""
        chinese = (lang or "").lower().startswith("zh")
        if self.working and self.unit is SpanUnit.DAYS:
            if chinese:
                return f"{self.days}个工作日"
            return f"{self.days} working day{'s' if self.days != 1 else ''}"
        if self.working:
            hours = self.total_seconds() / 3600
            shown = f"{hours:g}"
            if chinese:
                return f"{shown}个工作小时"
            return f"{shown} working hour{'s' if shown != '1' else ''}"
        return self.canonical()

    # Equality includes the kind of time: 3 working days are not 3 calendar days. A
    # calendar span still equals the plain timedelta of its length (old code compares so).
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Span):
            return (
                timedelta.__eq__(self, other)
                and self.working == other.working
                and (not self.working or self.unit == other.unit)
            )
        if isinstance(other, timedelta):
            return not self.working and timedelta.__eq__(self, other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        if not self.working:
            return timedelta.__hash__(self)
        return hash((timedelta(self.days, self.seconds, self.microseconds), True, self.unit))

    def __repr__(self) -> str:
        return f"Span({self.canonical()!r})"

    def __str__(self) -> str:
        return self.canonical()

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle keep the kind of time
        return (_rebuild, (self.days, self.seconds, self.microseconds, self.working, self.unit))

    def __deepcopy__(self, memo: dict[int, Any]) -> Span:
        return self

    def __copy__(self) -> Span:
        return self

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                Span.canonical, when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "description": f"A duration: {FORMS}.",
            "examples": ["PT4H", "P3D", "PT4H working", "P3D working"],
        }


def _rebuild(days: int, seconds: int, microseconds: int, working: bool, unit: str) -> Span:
    return Span(days, seconds, microseconds, working=working, unit=SpanUnit(unit))


def _validate(value: Any) -> Span:
    if isinstance(value, Span):
        return value
    if isinstance(value, str):
        return Span.parse(value)
    if isinstance(value, timedelta):
        return Span.of(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Span.of(_TIMEDELTA.validate_python(value))  # seconds, as a timedelta accepts
    raise ValueError(f"a duration must be text: {FORMS}")


def _timedelta(form: str, text: str) -> timedelta:
    try:
        return _TIMEDELTA.validate_python(form)
    except ValidationError:
        raise ValueError(f"{text!r} is not a duration: write {FORMS}") from None


def _iso_time(length: timedelta) -> str:
    """``PT4H``, ``PT1H30M``, ``PT0.5S``: a time-only ISO-8601 duration (hours may exceed 24)."""
    total_us = (length.days * 86_400 + length.seconds) * 1_000_000 + length.microseconds
    hours, rest = divmod(total_us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if seconds or micros:
        out += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    return out if out != "PT" else "PT0S"
