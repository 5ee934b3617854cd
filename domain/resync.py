"""Resync's types and its pure part: what a read-model restored from a backup lacks.

The workflows are the source of truth for every request; PostgreSQL holds a
read-model of them. A database restored from an older backup shows each request
as it was when the backup was taken, and knows nothing of requests created
since. ``approvals resync`` (:mod:`cli.resync`) asks each workflow for its state
and writes back the row, the inbox and the audit rows that are missing; this
module says which audit rows those are and what the rewrite changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from domain.durations import Span
from domain.process import HistoryEvent

DEFAULT_CLOSED_SINCE = timedelta(days=30)
"""Requests closed this recently are resynced too (a backup older than this leaves
the requests closed before it as the backup shows them)."""


_SHORT = re.compile(r"^(?P<n>\d{1,6})(?P<unit>[hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def window(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, or a duration as policies write it (``P30D``, ``30 days``).

    Raises ValueError for anything else, a working-time span or a length not above zero.
    """
    short = _SHORT.match(text.strip().lower())
    if short:
        length = int(short["n"]) * _UNITS[short["unit"]]
    else:
        span = Span.parse(text)
        if span.working:
            raise ValueError(f"{text!r}: a window counts calendar time, not working time")
        length = timedelta(span.days, span.seconds, span.microseconds)
    if length <= timedelta(0):
        raise ValueError(f"{text!r}: the window must be longer than nothing")
    return length


def missing_events(
    stored: Iterable[int], history: Iterable[HistoryEvent]
) -> tuple[list[HistoryEvent], list[int]]:
    """The events of ``history`` whose seq is not ``stored``, and the seqs neither holds.

    A workflow that continued as new carries only its latest events, so a request
    that lived long may lack early audit rows that its workflow no longer holds:
    those seqs are returned as lost (1 up to the last seq the workflow knows).
    """
    have = set(stored)
    events = sorted(history, key=lambda e: e.seq)
    to_add = [e for e in events if e.seq not in have]
    known = have | {e.seq for e in events}
    last = max(known, default=0)
    lost = [seq for seq in range(1, last + 1) if seq not in known]
    return to_add, lost


def seq_ranges(seqs: Iterable[int]) -> str:
    """``#1-3, #7``: seqs as runs, so a report line stays short for a long audit trail."""
    runs: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return ", ".join(f"#{a}" if a == b else f"#{a}-{b}" for a, b in runs)


def changed_rows(
    before: Mapping[Any, Mapping[str, Any]], after: Mapping[Any, Mapping[str, Any]]
) -> int:
    """How many rows (by key) ``after`` adds to ``before`` or holds with other values."""
    return sum(1 for key, row in after.items() if before.get(key) != row)


class RequestResync(BaseModel):
    """What resync changed, or would change (``--dry-run``), for one request."""

    request_id: str
    workflow_status: str
    """As Temporal's visibility names it: ``Running`` or ``Completed``."""
    seq: int = 0
    """The workflow's last transition."""
    row: str = "unchanged"
    """``created`` (the backup lacked the request), ``rewritten``, ``unchanged`` or
    ``ahead`` (the database shows a later transition than the workflow answered: it
    moved on meanwhile, or Temporal's store is older; left alone) or
    ``failed`` (the workflow did not answer: ``error``, nothing written)."""
    inbox_rows: int = 0
    """Inbox (assignment) rows added or changed."""
    events_added: list[int] = Field(default_factory=list)
    """The seqs of the audit rows written."""
    events_corrected: list[int] = Field(default_factory=list)
    """The seqs of audit rows that said otherwise than the workflow's history: written by
    a workflow task Temporal never recorded (``db.read_model.replace_unrecorded``)."""
    events_lost: list[int] = Field(default_factory=list)
    """Seqs that neither the database nor the workflow holds any more (see
    :func:`missing_events`)."""
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.row in ("created", "rewritten") or bool(
            self.inbox_rows or self.events_added or self.events_corrected
        )


class ResyncReport(BaseModel):
    checked: int = 0
    failed: int = 0
    """Requests whose workflow did not answer the query (counted in ``checked``)."""
    rewritten: int = 0
    """Requests with any change (row, inbox or audit rows)."""
    events_added: int = 0
    requests: list[RequestResync] = Field(default_factory=list)
    """Every request that changed, or has lost audit rows, or is ahead."""

    def add(self, one: RequestResync) -> None:
        self.checked += 1
        self.failed += one.row == "failed"
        self.events_added += len(one.events_added)
        if one.changed:
            self.rewritten += 1
        if one.changed or one.events_lost or one.row in ("ahead", "failed"):
            self.requests.append(one)
