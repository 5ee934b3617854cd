"""Reconciliation's types: requests whose workflow was ended outside the process.

An operator may terminate a request's workflow in the Temporal UI or CLI, or a
workflow may time out, be cancelled or fail. The workflow then never writes its
last transition, and the read-model would show the request ``in_review`` (with
live inbox rows) forever. A reconciliation pass finds such requests and records
them as ``terminated``. One typed argument and result, like every activity.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

DEFAULT_LOOKBACK = timedelta(days=7)
"""How far back a pass looks for workflows that closed (by their close time).

Long enough to cover any outage of the scheduled reconciler, short enough that
a pass reads few visibility pages: only abnormally closed runs are listed, and
those already reconciled are skipped by one database query per page.
"""


LISTED = 100
"""Requests a pass names in its result by default (all are counted).

A pass after a batch terminate may record thousands; naming them all would
exceed Temporal's payload limit for an activity result.
"""


class ReconcileInput(BaseModel):
    lookback: timedelta = DEFAULT_LOOKBACK
    """Consider workflows that closed at most this long ago."""
    list_at_most: int | None = Field(default=LISTED, ge=0)
    """Name at most this many recorded requests in the result; None names them all."""


class Reconciled(BaseModel):
    """One request that a pass recorded as ``terminated``."""

    request_id: str
    workflow_id: str
    run_id: str
    execution_status: str
    """As Temporal's visibility names it: ``Terminated``, ``TimedOut``, ``Canceled``, ``Failed``."""
    actor: str
    """Who ended it, as Temporal recorded the identity (``system`` for a timeout or failure)."""
    reason: str | None
    closed_at: datetime
    seq: int


class ReconcileOutput(BaseModel):
    examined: int = 0
    """Abnormally closed workflows the visibility query returned."""
    recorded: int = 0
    """Requests this pass recorded as terminated."""
    reconciled: list[Reconciled] = Field(default_factory=list)
    """The first of them, up to the input's ``list_at_most``."""
    delegations_told: int = 0
    uploads_deleted: int = 0
    """Uploads attached to nothing for a day, deleted by this pass
    (:func:`db.attachments.delete_stale`)."""
    """Delegations that started or ended since the last pass whose requests were told
    (see :func:`activities.reconcile.ReconcileActivities.tell_delegations`)."""
