"""What the process asks the world to do, as data.

A step of the process (:mod:`domain.core.machine`) is a generator over immutable
state: it yields one effect at a time, is sent the effect's result (an input to
the process like any other) and returns the next state. The workflow carries
effects out with Temporal (activities, local activities, search attributes); a
test carries them out with plain functions. So the rules never touch a server, a
database or a clock, and the order of effects is the order of the workflow's
commands, which the stored histories pin.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.process import (
    HistoryEvent,
    MarkStuckInput,
    Notice,
    PayoutInput,
    RequestState,
    VerifyProofInput,
)

R = TypeVar("R")


@dataclass(frozen=True)
class Write:
    """Persist one transition: its audit event and notices. Result: None.

    ``state`` is the state right after the transition: a write carried out at once
    sends its projection as the read-model; writes batched until the step ends send
    the state the step returned."""

    event: HistoryEvent
    notices: list[Notice]
    state: RequestState


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


@dataclass(frozen=True)
class FlagStuck:
    """Say loudly that transitions cannot be written (search attribute, read-model
    flag, an ERROR log). Result: None, whether or not the flag could be stored."""

    arg: MarkStuckInput
    state: RequestState
    """The state as flagged (the Temporal UI's current details show it)."""


@dataclass(frozen=True)
class Unflag:
    """The transitions are written again: clear the stuck search attribute. Result: None."""

    request_id: str


Effect = Write | LookUp | Verify | Pay | Patched | FlagStuck | Unflag

Step = Generator[Effect, Any, R]
"""A step of the process: yields effects, is sent their results, returns ``R``."""


__all__ = [
    "Effect",
    "FlagStuck",
    "LookUp",
    "Patched",
    "Pay",
    "Step",
    "Unflag",
    "Verify",
    "Write",
]
