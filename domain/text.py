"""Policy text in more than one language: a request type's title, stage names, labels.

A policy file writes each such text as a plain string (one language, as before) or as
a mapping ``{en: ..., zh-CN: ...}``. :class:`LocalizedText` is that one type: it *is*
its default text (a ``str``: English when given, else the one language it has), so
code that formats, compares or stores it as a string keeps working, and
:meth:`LocalizedText.get` answers a language with a fallback.

A text given as a plain string dumps as that plain string, so a policy that carries
one language reads, compares and serialises exactly as before (policy snapshots in
running workflows and stored histories included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from domain.inbound import Comment, OptionalShortText, ShortText

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "en"
"""The language of a text's ``str`` value, of the API when the caller names none, and
of the Temporal UI's summaries and details (read by operators, as the logs are)."""

MAX_LENGTH = 4000


class LocalizedText(str):
    """A text with its translations; its ``str`` value is the default language's.

    Each language's text obeys the rule of :data:`domain.inbound.Comment` (multi-line);
    the subclasses below take the rules of the short texts.
    """

    _texts: dict[Language, str]
    _plain: bool
    _rule: TypeAdapter[str] = TypeAdapter(Comment)

    def __new__(cls, value: str | Mapping[str, str]) -> LocalizedText:
        texts, plain = _parse(value, cls._rule)
        default = texts.get(DEFAULT_LANGUAGE) or next(iter(texts.values()))
        self = super().__new__(cls, default)
        self._texts = texts
        self._plain = plain
        return self

    @property
    def languages(self) -> tuple[Language, ...]:
        """The languages the text is written in (a plain string: none named)."""
        return () if self._plain else tuple(self._texts)

    def get(self, lang: str | None) -> str:
        """The text in ``lang``; else English; else the one it has."""
        if lang in self._texts:
            return self._texts[lang]
        return str(self)

    def dump(self) -> str | dict[str, str]:
        """As written: a plain string stays one, a mapping stays a mapping."""
        if self._plain:
            return str(self)
        return {str(k): v for k, v in self._texts.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LocalizedText):
            return self._texts == other._texts
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dump()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.dump(),))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> LocalizedText:
            try:
                return cls(value)
            except ValueError as exc:
                raise PydanticCustomError("localized_text", str(exc)) from exc

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.union_schema(
                [
                    core_schema.str_schema(max_length=MAX_LENGTH),
                    core_schema.typed_dict_schema(
                        {
                            lang: core_schema.typed_dict_field(
                                core_schema.str_schema(max_length=MAX_LENGTH), required=False
                            )
                            for lang in LANGUAGES
                        }
                    ),
                ]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.dump() if isinstance(v, LocalizedText) else str(v),
                return_schema=core_schema.union_schema(
                    [
                        core_schema.str_schema(),
                        core_schema.dict_schema(core_schema.str_schema(), core_schema.str_schema()),
                    ]
                ),
            ),
        )


class LocalizedShortText(LocalizedText):
    """One line, 1 to 200 characters in each language: titles, stage names, messages."""

    _rule = TypeAdapter(ShortText)


class LocalizedLabel(LocalizedText):
    """One line, at most 200 characters, may be empty: field labels."""

    _rule = TypeAdapter(OptionalShortText)


def _parse(value: Any, rule: TypeAdapter[str]) -> tuple[dict[Language, str], bool]:
    if isinstance(value, LocalizedText):
        value = value.dump()
    if isinstance(value, str):
        return {DEFAULT_LANGUAGE: _check(value, rule)}, True
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in LANGUAGES]
        if unknown:
            raise ValueError(f"unknown language {unknown[0]!r}; write one of {list(LANGUAGES)}")
        texts: dict[Language, str] = {}
        for lang in LANGUAGES:  # a stable order, whatever the file's
            if lang in value:
                text = value[lang]
                if not isinstance(text, str):
                    raise ValueError(f"{lang}: must be a string")
                texts[lang] = _check(text, rule)
        if not texts:
            raise ValueError(f"give the text in at least one of {list(LANGUAGES)}")
        return texts, False
    raise ValueError(f"must be a string or a mapping of {list(LANGUAGES)} to strings")


def _check(text: str, rule: TypeAdapter[str]) -> str:
    try:
        return rule.validate_python(text)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None


def text_in(value: str, lang: str | None) -> str:
    """``value`` in ``lang`` when it is a :class:`LocalizedText`; a plain ``str`` as it is."""
    return value.get(lang) if isinstance(value, LocalizedText) else value


def negotiate(accept_language: str | None) -> Language | None:
    """The first of ours an ``Accept-Language`` header asks for (by q-value), else None.

    ``zh``, ``zh-CN``, ``zh-Hans`` … read as zh-CN, ``en-*`` as en; ``q=0`` refuses.
    """
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, n, tag.strip().lower()))
    for weight, _, tag in sorted(ranked):
        if weight >= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return None
