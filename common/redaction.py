"""Keep secrets out of every log line: tokens, signed links, secrets, passwords.

A bearer token or a decision link is a credential: whoever reads it from a log can
act with it. So every log record of every process (the API with uvicorn's access
log, the worker, the deliverer, the dev runner and its children) is scrubbed where
it is made, by one log record factory (:func:`install_log_redaction`), before any
handler or formatter sees it:

* query strings and fragments of URLs keep their keys, never their values
  (``/v1/me?access_token=***``): a token in a query string is refused by the API
  but was already on the wire;
* the token of a decision link (``/act/***``);
* known shapes wherever they stand: JWTs (our bearer tokens), our link tokens
  (``<base64>.<43+ base64 characters>``), webhook secrets (``whsec_…``), the value
  after ``Bearer``/``Basic`` and after ``password=``, ``token:`` and the like;
* passwords in URLs (``postgresql://user:***@host/db``);
* the values of the configured secrets (:func:`configured_secrets`), wherever they
  stand and however they got there.

:func:`redact` is the pure function the factory applies; it never leaves one of
those whole, and applying it twice changes nothing more.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import SecretBytes, SecretStr

if TYPE_CHECKING:
    from common.settings import Settings

MASK = "***"
MIN_SECRET_LENGTH = 8
"""Configured values shorter than this are not searched for: they would mask common
words. Every secret the service requires outside development is 32+ characters."""

_B64 = r"A-Za-z0-9_\-"
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,39}")
"""A query key shown as it is; anything else (a bare value, an odd key) is masked whole."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # The userinfo password of a URL: scheme://user:password@host
    (re.compile(r"(://[^\s/@:?#]*):[^\s/@]*@"), rf"\1:{MASK}@"),
    # The token of a decision link, up to the next separator.
    (re.compile(r"(/act/)[^\s\"'<>?#/\\]+"), rf"\1{MASK}"),
    # Credentials after an authentication scheme (an Authorization header as text).
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]+"), rf"\1\2{MASK}"),
    # key=value and key: value where the key says it is a secret.
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|access_token|api_key|apikey|"
            r"authorization|signature)(\s*[=:]\s*[\"']?)[^\s\"'&,;<>]+"
        ),
        rf"\1\2{MASK}",
    ),
    # JWTs (our bearer tokens): a base64url JSON header, payload and signature.
    (re.compile(rf"eyJ[{_B64}]*\.[{_B64}]*\.[{_B64}]*"), MASK),
    # Our link tokens: base64url claims, a dot, a base64url HMAC-SHA256 (43 characters).
    (re.compile(rf"[{_B64}]+\.[{_B64}]{{43,}}"), MASK),
    # Standard Webhooks secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), MASK),
)
_QUERY = re.compile(r"(?<=[^ \t\r\n\"'<>=(\[{])([?#])([^ \t\r\n\"'<>`]+)")
"""A query string or a fragment: up to a space, a line end or a quote. Other
characters (control characters, Unicode spaces) never end one: masking more than the
query is better than leaving part of it."""


def _mask_query(match: re.Match[str]) -> str:
    pieces = []
    for piece in re.split(r"([&;])", match.group(2)):
        if piece in ("&", ";", ""):
            pieces.append(piece)
            continue
        key, eq, _value = piece.partition("=")
        pieces.append(f"{key}={MASK}" if eq and _SAFE_KEY.fullmatch(key) else MASK)
    return match.group(1) + "".join(pieces)


def _without(text: str, secret: str) -> str:
    # Replacing can join what surrounds a secret into it again; each pass shortens
    # the text (a secret is longer than the mask), so this ends.
    while secret in text:
        text = text.replace(secret, MASK)
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every token, link, secret and password it holds masked."""
    literal = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    for secret in literal:
        text = _without(text, secret)
    text = _QUERY.sub(_mask_query, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in literal:  # a secret the patterns cut in two is gone; one they joined is not
        text = _without(text, secret)
    return text


SECRET_SETTING = re.compile(r"(?:^|_)(?:secret|secrets|password|passwd|key|keys|token|tokens)$")
"""Settings named like this are secrets, whatever their type: a new one is masked
without anyone remembering to list it (``oidc_client_secret``, ``codec_keys``, ...)."""
SECRET_SETTINGS: list[str] = []
"""Settings that are secrets although their name does not say so: append to this."""
CREDENTIAL_URL_SETTINGS: list[str] = ["dingtalk_url", "wecom_url", "feishu_url"]
"""Settings holding a URL that is itself a credential (a robot's URL): DingTalk's
``access_token`` and WeCom's ``key`` are in the query, Feishu's hook id is the last
step of the path. Every URL setting's userinfo password is masked anyway."""


def configured_secrets(settings: Settings) -> list[str]:
    """The values of every secret ``settings`` hold, as written and URL-encoded.

    A secret is a ``SecretStr`` setting (or a list or mapping of them), a setting named
    like a secret (:data:`SECRET_SETTING`) or listed in :data:`SECRET_SETTINGS`, the
    credentials in a robot's URL (:data:`CREDENTIAL_URL_SETTINGS`) and the password in
    any URL setting (``DATABASE_URL``). A value made of several (``id:key,id:key``) is
    also masked piece by piece.
    """
    values: list[str | None] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr | SecretBytes) or _holds_secret_type(value):
            values += _secret_values(value)
        elif SECRET_SETTING.search(name) or name in SECRET_SETTINGS:
            values += _secret_values(value)
        if name in CREDENTIAL_URL_SETTINGS and isinstance(value, str):
            values += _url_credentials(value)
        elif isinstance(value, str) and "://" in value:
            values.append(_url_password(value))
    values += _payload_keys(settings.payload_keys)
    found: set[str] = set()
    for value in values:
        if value:
            found |= {value, quote(value, safe=""), unquote(value)}
    return sorted(found)


def _holds_secret_type(value: object) -> bool:
    items = value.values() if isinstance(value, Mapping) else value
    return (
        isinstance(items, Iterable)
        and not isinstance(items, str | bytes)
        and any(isinstance(item, SecretStr | SecretBytes) for item in items)
    )


def _secret_values(value: object) -> list[str | None]:
    """Every text a secret setting holds: whole, and split into its parts."""
    if value is None or isinstance(value, bool | int | float):
        return []
    if isinstance(value, SecretStr):
        return _secret_values(value.get_secret_value())
    if isinstance(value, SecretBytes):
        return _secret_values(value.get_secret_value().decode("utf-8", "replace"))
    if isinstance(value, bytes):
        return _secret_values(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _secret_values(item)]
    if isinstance(value, Iterable) and not isinstance(value, str):
        return [text for item in value for text in _secret_values(item)]
    text = str(value)
    return [text, *re.split(r"[\s,;:=]+", text)]


def _payload_keys(spec: str | None) -> list[str | None]:
    """The Temporal payload keys (``id:base64key`` items): the whole setting, each item and
    each key, also in the other base64 alphabet and without its padding."""
    if not spec:
        return []
    found: list[str | None] = [spec.strip()]
    for item in re.split(r"[,\s]+", spec):
        key = item.partition(":")[2]
        if key:
            other = key.translate(str.maketrans("+/-_", "-_+/"))
            found += [item, key, other, key.rstrip("="), other.rstrip("=")]
    return found


def _url_credentials(url: str | None) -> list[str | None]:
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str | None] = [parts.password, parts.path.rstrip("/").rpartition("/")[2]]
    found += [value for _, value in parse_qsl(parts.query)]
    return found


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class _Masked:
    """An argument of a log call that is neither text nor a number, shown masked."""

    def __init__(self, value: object, secrets: tuple[str, ...]) -> None:
        self._str = redact(str(value), secrets)
        self._repr = redact(repr(value), secrets)

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


_STRUCTURAL_ARGS = frozenset({"uvicorn.access"})
"""Loggers whose formatter unpacks the arguments (uvicorn's access log): their
arguments are masked one by one, never merged into the message."""


class LogScrubber:
    """Masks a log record where it is made; the secrets can be added to later."""

    def __init__(self) -> None:
        self.secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self.secrets = tuple(sorted(set(self.secrets) | set(secrets)))

    def arg(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return redact(value, self.secrets)
        return _Masked(value, self.secrets)

    def scrub(self, record: logging.LogRecord) -> None:
        secrets = self.secrets
        args = record.args
        if isinstance(args, Mapping):
            record.args = {key: self.arg(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(self.arg(value) for value in args)
        if isinstance(record.msg, str) and record.name not in _STRUCTURAL_ARGS:
            try:
                message = record.getMessage()
            except Exception:  # a malformed call: logging reports it with the masked args
                message = None
            if message is not None:
                masked = redact(message, secrets)
                if masked != message:
                    record.msg, record.args = masked, None
        elif not isinstance(record.msg, str):
            record.msg = self.arg(record.msg)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # Formatters use exc_text when it is set, instead of formatting the exception.
            record.exc_text = redact(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n"), secrets
            )
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)


_scrubber = LogScrubber()
_installed = threading.Lock()
_base_factory: Any = None


def log_scrubber() -> LogScrubber:
    """This process's scrubber: the secrets every log line is masked with."""
    return _scrubber


def install_log_redaction(secrets: Iterable[str] = ()) -> None:
    """Mask every log record of this process from now on; add ``secrets`` to the mask.

    Idempotent: the first call installs the record factory (and routes warnings through
    logging, so that they are masked too); later calls only add secrets, e.g. once the
    settings are read.
    """
    global _base_factory
    _scrubber.add(secrets)
    with _installed:
        if _base_factory is not None:
            return
        _base_factory = logging.getLogRecordFactory()
        base = _base_factory

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record: logging.LogRecord = base(*args, **kwargs)
            _scrubber.scrub(record)
            return record

        logging.setLogRecordFactory(factory)
        logging.captureWarnings(True)
