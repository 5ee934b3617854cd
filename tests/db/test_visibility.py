"""Who may see a request: the index lookups select exactly the rows the plain rule does.

``db.request_queries`` finds someone's requests as a union of index lookups, tests one
request by probing those indexes, and pages a list one of three ways (see
``list_requests``). The oracle below is the rule as it was first written, one
``EXISTS`` per way in; every form must agree with it row for row, for any mix of
requesters, assignments (with and without a delegate), events (``ignored`` ones grant
nothing), notices and viewers, admins and auditors included.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import request_queries as q
from db.models import AssignmentRow, EventRow, NotificationRow, RequestRow

PEOPLE = ["am_li", "cd_xu", "dgm_zhao", "sh_zhou"]
VIEWERS = [*PEOPLE, "nobody"]
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _oracle(viewer: q.Viewer) -> ColumnElement[bool]:
    """The visibility rule as first written (the code's form before the indexes)."""
    if viewer.sees_all:
        return true()
    assigned = exists().where(
        AssignmentRow.request_id == RequestRow.id,
        or_(AssignmentRow.user_id == viewer.user_id, AssignmentRow.on_behalf_of == viewer.user_id),
    )
    acted = exists().where(
        EventRow.request_id == RequestRow.id,
        EventRow.kind != "ignored",
        or_(EventRow.actor == viewer.user_id, EventRow.on_behalf_of == viewer.user_id),
    )
    told = exists().where(
        NotificationRow.request_id == RequestRow.id,
        NotificationRow.recipient == viewer.user_id,
    )
    return or_(RequestRow.requester == viewer.user_id, assigned, acted, told)


person = st.sampled_from(PEOPLE)
delegate = st.none() | person
world = st.fixed_dictionaries(
    {
        # Each request: its requester and its hour (equal hours: the id breaks the tie).
        "requests": st.lists(st.tuples(person, st.integers(0, 3)), min_size=1, max_size=7),
        # (request, user, acted for, pending); a request index wraps around the requests.
        "assignments": st.lists(
            st.tuples(st.integers(0, 6), person, delegate, st.booleans()), max_size=8
        ),
        "events": st.lists(
            st.tuples(
                st.integers(0, 6),
                person,
                delegate,
                st.sampled_from(["submitted", "approved", "ignored", "commented"]),
            ),
            max_size=8,
        ),
        # (request or None: a notice about no request, person)
        "notices": st.lists(st.tuples(st.none() | st.integers(0, 6), person), max_size=6),
    }
)
viewers = st.builds(q.Viewer, user_id=st.sampled_from(VIEWERS), sees_all=st.booleans())
# (FEW, WINDOW): by id and sorted; the newest few tested row by row, with and without
# a page among them; the default.
ways = st.sampled_from([(1000, 1000), (10_000, 1), (-1, 1), (-1, 3), (-1, 1000), (2, 2)])


async def _seed(session: AsyncSession, tag: str, w: dict) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in w["requests"]]
    for rid, (requester, hour) in zip(ids, w["requests"], strict=True):
        session.add(
            RequestRow(
                id=rid,
                type=tag,
                title="T",
                requester=requester,
                policy_type=tag,
                policy_version=1,
                route={},
                status="in_review",
                created_at=T0 + timedelta(hours=hour),
                last_seq=0,
            )
        )
    await session.flush()
    for n, (i, user, behalf, pending) in enumerate(w["assignments"]):
        session.add(
            AssignmentRow(
                request_id=ids[i % len(ids)],
                stage_index=n,
                stage_key=f"s{n}",
                slot="approver",
                user_id=user,
                via="manager",
                on_behalf_of=behalf,
                eligible_since=T0,
                pending=pending,
            )
        )
    for n, (i, actor, behalf, kind) in enumerate(w["events"]):
        session.add(
            EventRow(
                request_id=ids[i % len(ids)],
                seq=n + 1,
                at=T0,
                actor=actor,
                on_behalf_of=behalf,
                kind=kind,
                data={},
            )
        )
    for i, recipient in w["notices"]:
        session.add(
            NotificationRow(
                request_id=None if i is None else ids[i % len(ids)],
                recipient=recipient,
                template="cc",
                dedupe_key=f"{tag}-{uuid.uuid4()}",
            )
        )
    await session.flush()
    return ids


async def _ids(session: AsyncSession, tag: str, *where: ColumnElement[bool]) -> set[str]:
    rows = await session.execute(select(RequestRow.id).where(RequestRow.type == tag, *where))
    return set(rows.scalars())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(w=world, viewer=viewers, way=ways, assignee=st.sampled_from([None, "me", *PEOPLE]))
async def test_every_form_of_the_rule_selects_exactly_the_oracles_requests(
    db_sessions: async_sessionmaker[AsyncSession],
    w: dict,
    viewer: q.Viewer,
    way: tuple[int, int],
    assignee: str | None,
) -> None:
    tag = f"vis-{uuid.uuid4().hex[:12]}"
    async with db_sessions() as session:
        ids = await _seed(session, tag, w)
        expected = await _ids(session, tag, _oracle(viewer))

        # One row at a time (a single request, the newest of a list).
        assert await _ids(session, tag, q._visible_to(viewer)) == expected
        for rid in ids:
            ref = await q.get_visible_ref(session, rid, viewer)
            assert (ref is not None) == (rid in expected), rid
            row = await q.get_visible_request(session, rid, viewer)
            assert (row is not None) == (rid in expected), rid
        # The union of index lookups (admins and auditors skip it: they see all).
        if not viewer.sees_all:
            assert (
                await _ids(session, tag, RequestRow.id.in_(q._visible_ids(viewer.user_id)))
                == expected
            )

        # The list, page by page, whichever way it finds its pages.
        few, window = way
        order = (RequestRow.created_at.desc(), RequestRow.id.desc())
        # ``assignee``: one's own pending steps (which the list reads without the rule:
        # being assigned lets one see them), or another's.
        filters = q.RequestFilters(
            type=tag, assignee=viewer.user_id if assignee == "me" else assignee
        )
        pending = exists().where(
            AssignmentRow.request_id == RequestRow.id,
            AssignmentRow.user_id == filters.assignee,
            AssignmentRow.pending.is_(True),
        )
        newest_first = list(
            (
                await session.execute(
                    select(RequestRow.id)
                    .where(
                        RequestRow.type == tag,
                        _oracle(viewer),
                        pending if filters.assignee is not None else true(),
                    )
                    .order_by(*order)
                )
            ).scalars()
        )
        listed: list[str] = []
        after = None
        with patch.object(q, "FEW", few), patch.object(q, "WINDOW", window):
            for _ in range(len(ids) + 1):
                page, after = await q.list_requests(session, viewer, filters, after=after, limit=2)
                listed += [r.id for r in page]
                if after is None:
                    break
        assert listed == newest_first
        await session.rollback()
