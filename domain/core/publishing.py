"""What a request shows in the Temporal UI: its search attributes, as values.

Pure: :func:`published` reads them off the state; the workflow shell
(:mod:`workflows.effects`) upserts them when :attr:`Published.changes` differ from the
last ones it published, and writes the current details (:mod:`domain.core.details`).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.core.queries import current_approvers
from domain.process import RequestState


@dataclass(frozen=True)
class Published:
    status: str
    approvers: tuple[str, ...]
    overdue: bool
    amount: float | None
    request_type: str
    requester: str
    customer: str | None

    @property
    def changes(self) -> tuple[object, ...]:
        """The values that move while a request runs: a change among them is upserted
        (type, requester and customer never change, and go with every upsert)."""
        return (self.status, self.approvers, self.overdue, self.amount)


def published(s: RequestState) -> Published:
    return Published(
        status=s.label,
        approvers=tuple(current_approvers(s)),
        overdue=s.overdue,
        amount=float(s.amount) if s.amount is not None else None,
        request_type=s.type,
        requester=s.requester,
        customer=s.customer or None,
    )


__all__ = ["Published", "published"]
