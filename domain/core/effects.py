"""What the process asks the world to do, as data.

A step of the process (:mod:`domain.core.machine`) is a generator: it yields
one effect at a time and is resumed with the effect's result. The workflow
carries effects out with Temporal (activities, local activities); a test
carries them out with plain functions. So the rules never touch a server, a
database or a clock, and the order of effects is the order of the workflow's
commands, which the stored histories pin.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.process import HistoryEvent, Notice, PayoutInput, VerifyProofInput

R = TypeVar("R")


@dataclass(frozen=True)
class Write:
    """Persist one transition: its audit event and notices, and the read-model as the
    process stands (:meth:`~domain.core.machine.Process.snapshot`). Result: None.

    The snapshot is taken when the write is carried out, so a write deferred to the
    end of a step shows the state at the end of the step."""

    event: HistoryEvent
    notices: list[Notice]


@dataclass(frozen=True)
class LookUp:
    """A read-only question to the directory. Result: an instance of ``result_type``."""

    activity: str
    arg: BaseModel
    result_type: type[BaseModel]
    summary: str


@dataclass(frozen=True)
class Verify:
    """Check who vouches for a message. Result: ``VerifyProofOutput``."""

    arg: VerifyProofInput


@dataclass(frozen=True)
class Pay:
    """Pay out once (idempotent on the input's key). Result: ``PayoutOutput``."""

    arg: PayoutInput
    summary: str


@dataclass(frozen=True)
class Patched:
    """May the process take a changed path here? Result: ``bool``.

    A rule whose change would alter what an already running request does next asks
    this where old and new rules part. The workflow answers with
    ``workflow.patched(change)``: True for a request that reaches this point on the
    new code, False while it replays a history the old rules made, so that history
    replays as it was. Asked only on the changed path, so other requests pay nothing."""

    change: str


Effect = Write | LookUp | Verify | Pay | Patched

Step = Generator[Effect, Any, R]
"""A step of the process: yields effects, is sent their results, returns ``R``."""


__all__ = ["Effect", "LookUp", "Patched", "Pay", "Step", "Verify", "Write"]
