"""Who may submit a request of a type: one rule for the submission and the listing.

``POST /v1/requests`` refuses (403) whom :func:`may_submit` refuses, and
``GET /v1/policies?submittable=true`` lists the types it allows, so the new-request
page never offers a type the submission would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.policy import Policy


def may_submit(policy: Policy, user: str, roles: Iterable[str]) -> bool:
    """Whether ``user`` (holding ``roles``) may submit requests of ``policy``'s type."""
    who = policy.submitters
    if who is None:
        return True
    return user in who.users or any(r in who.roles for r in roles)


def submittable(policies: Iterable[Policy], user: str, roles: Iterable[str]) -> list[Policy]:
    """The policies ``user`` may submit, by type."""
    held = tuple(roles)
    return sorted((p for p in policies if may_submit(p, user, held)), key=lambda p: p.type)
