"""How the process's transitions are written, and waited out while they cannot be.

Pure: the workflow shell (:mod:`workflows.effects`) carries the writes out with Temporal
and asks here how large a batch may grow, what its activity is called in the UI, what a
failure tells the process and how long to wait before trying again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.core.inputs import WriteFailed
from domain.process import TransitionRecord

MAX_BATCH = 50
"""Transitions written by one activity at most (a longer run of them is flushed early)."""

STUCK_RETRY_FIRST = timedelta(seconds=5)
STUCK_RETRY_MAX = timedelta(minutes=5)
REASON_MAX = 1000


def batch_summary(records: Sequence[TransitionRecord]) -> str:
    """``record #3-5: approved, escalated, reminded``: what the UI shows for the write."""
    kinds = ", ".join(r.event.kind.value for r in records)
    first, last = records[0].event.seq, records[-1].event.seq
    span = f"#{first}" if first == last else f"#{first}-{last}"
    return f"record {span}: {kinds}"


def write_failed(
    summary: str, cause: str, at: datetime, failures: int, attempts_each: int
) -> WriteFailed:
    """What the process is told after ``failures`` failed writes of ``attempts_each``
    attempts each: the reason (bounded), when, and the attempts so far."""
    return WriteFailed(f"{summary}: {cause}"[:REASON_MAX], at, failures * attempts_each)


def stuck_pause(failures: int) -> timedelta:
    """How long to wait before writing again after ``failures`` failed writes: doubling
    from :data:`STUCK_RETRY_FIRST`, never longer than :data:`STUCK_RETRY_MAX`."""
    return min(STUCK_RETRY_FIRST * 2 ** (failures - 1), STUCK_RETRY_MAX)


__all__ = [
    "MAX_BATCH",
    "STUCK_RETRY_FIRST",
    "STUCK_RETRY_MAX",
    "batch_summary",
    "stuck_pause",
    "write_failed",
]
