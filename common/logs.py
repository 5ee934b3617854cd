"""One logging setup for every process: text at a terminal, one JSON object per line else.

``APPROVALS_LOG_FORMAT=text`` (the default, for development) or ``json`` (compose,
production): :func:`configure_logging` puts one handler on the root logger with the
matching formatter, for every process of the service (the API and uvicorn's access
log, the worker, the deliverer, the CLI, the dev runner's children).

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, when
known, ``request_id`` and ``user`` (the HTTP request being served, set by the API's
middleware and its authentication through :data:`request_context`, never passed
around), ``workflow_id``, ``run_id``, ``workflow_type``, ``activity`` and
``activity_id`` (from temporalio's workflow and activity loggers), ``trace_id`` and
``span_id`` (the current OpenTelemetry span), ``exception`` (the whole traceback, one
field) and the ``extra`` fields of the call.

Both formatters mask what they write with :func:`common.redaction.redact` and the
configured secrets, every field of it (keys included): the record factory of
:mod:`common.redaction` already scrubs each record where it is made, this is the
second net, which also catches what ``extra`` and the context carry.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TextIO, get_args

from opentelemetry import trace

from common.redaction import LogScrubber, install_log_redaction, log_scrubber, redact

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)

_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")
MAX_REQUEST_ID_LENGTH = 128


@dataclass
class RequestContext:
    """What the logs say about the HTTP request being served. Mutable on purpose:
    authentication (maybe in a worker thread, with a copy of the context) fills in
    ``user`` on the one object the request's middleware bound."""

    request_id: str
    user: str | None = None


request_context: ContextVar[RequestContext | None] = ContextVar(
    "approvals_request_context", default=None
)


def accepted_request_id(value: str | None) -> str:
    """``value`` if it is a usable request id (1-128 of ``A-Za-z0-9-_.:``), else a new one.

    A caller's (a proxy's) id is kept so that its lines and ours can be joined; anything
    else (too long, spaces, quotes, a line break) is replaced, never echoed or logged.
    """
    if value and len(value) <= MAX_REQUEST_ID_LENGTH and set(value) <= _REQUEST_ID_CHARS:
        return value
    return uuid.uuid4().hex


def set_request_user(user_id: str) -> None:
    """Name the authenticated caller in the log lines of the current request."""
    bound = request_context.get()
    if bound is not None:
        bound.user = user_id


_STANDARD = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    | {"message", "asctime", "taskName", "color_message"}
)
"""Attributes every record has (``color_message``: uvicorn's copy with colour codes)."""


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context of ``record``: request, caller, workflow, activity, trace."""
    fields: dict[str, Any] = {}
    bound = request_context.get()
    if bound is not None:
        fields["request_id"] = bound.request_id
        if bound.user is not None:
            fields["user"] = bound.user
    wf = getattr(record, "temporal_workflow", None)
    if isinstance(wf, dict):
        fields["workflow_id"] = wf.get("workflow_id")
        fields["run_id"] = wf.get("run_id")
        fields["workflow_type"] = wf.get("workflow_type")
    act = getattr(record, "temporal_activity", None)
    if isinstance(act, dict):
        fields["workflow_id"] = act.get("workflow_id")
        fields["run_id"] = act.get("workflow_run_id")
        fields["workflow_type"] = act.get("workflow_type")
        fields["activity"] = act.get("activity_type")
        fields["activity_id"] = act.get("activity_id")
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
        fields["span_id"] = format(span.span_id, "016x")
    return {key: value for key, value in fields.items() if value is not None}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _masked(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(k, secrets): _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a malformed call: say what it was, masked like the rest
        return f"{record.msg!s} {record.args!r}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, every string in it masked."""

    def __init__(self, scrubber: LogScrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or log_scrubber()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        out.update(context_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in ("temporal_workflow", "temporal_activity"):
                out.setdefault(key, _jsonable(value))
        masked = _masked(out, self.scrubber.secrets)
        return json.dumps(masked, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [context]``, the whole line masked."""

    def __init__(self, scrubber: LogScrubber | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.converter = time.gmtime  # UTC, as the JSON lines and the other processes
        self.scrubber = scrubber or log_scrubber()

    def format(self, record: logging.LogRecord) -> str:
        record.message = _message(record)  # a malformed call is logged, not raised
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = context_fields(record)
        if fields:
            line += " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
        exc_text = record.exc_text  # masked where the record was made, if it was
        if not exc_text and record.exc_info and record.exc_info[0] is not None:
            exc_text = self.formatException(record.exc_info)
        if exc_text:
            line += "\n" + exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line, self.scrubber.secrets)


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` owns (found again by its type)."""


def env_log_format() -> LogFormat:
    """``APPROVALS_LOG_FORMAT`` before the settings are read (text if unset or unknown:
    the settings then refuse an unknown value with a clear message)."""
    value = os.environ.get("APPROVALS_LOG_FORMAT", "text")
    return "json" if value == "json" else "text"


def configure_logging(
    log_format: str | None = None, level: int | None = None, *, stream: TextIO | None = None
) -> None:
    """Log every record of this process through one handler in ``log_format``.

    Called again (once the settings are read), it switches the format of the handler it
    installed and leaves the level as the first call set it. Where logging was
    configured by someone else (a test runner), it adds no handler, as
    :func:`logging.basicConfig` would not.
    """
    log_format = log_format or env_log_format()
    install_log_redaction()
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    if ours:
        handler = ours[0]
    elif root.handlers:
        return
    else:
        handler = _Handler(stream or sys.stderr)
        root.addHandler(handler)
        if level is not None:  # the first call's (the command line's -v) holds
            root.setLevel(level)
    handler.setFormatter(formatter_for(log_format))
    _temporal_context_on_message(log_format != "json")


def _temporal_context_on_message(on: bool) -> None:
    # In JSON the workflow's and activity's context are fields; appended to the message
    # as well they would only be noise.
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = on
    activity.logger.activity_info_on_message = on
