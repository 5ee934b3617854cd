"""What each post-approval milestone requires of this request."""

from __future__ import annotations

from decimal import Decimal

from domain.conditions import evaluate
from domain.policy import MilestoneSpec
from domain.process import MilestoneState, RequestState
from domain.requests import condition_values

from .queries import money


def milestone_state(spec: MilestoneSpec, view: RequestState) -> MilestoneState:
    """A pending milestone with its required amount: fixed, from a field, or a percentage."""
    required: Decimal | None = None
    if spec.amount is not None:
        if spec.amount.fixed is not None:
            required = spec.amount.fixed
        elif spec.amount.from_field is not None:
            raw = view.fields.get(spec.amount.from_field)
            required = money(Decimal(str(raw))) if raw is not None else None
        elif view.amount is not None and spec.amount.percent_of_amount is not None:
            percent = spec.amount.percent_of_amount
            values = condition_values(view.amount, view.fields)
            for alt in spec.amount.percent_when:
                if evaluate(alt.when, values):
                    percent = alt.percent
                    break
            required = money(view.amount * percent / 100)
    return MilestoneState(name=spec.name, title=spec.title, required=required)
