"""The directory: who exists, their roles, their managers, their delegations.

Loaded from an org YAML file (``org/demo.yaml`` in development) and queried by
the activities that turn a stage's approver specs into people. Loading is
idempotent; people removed from the file are deactivated, never deleted,
because audit rows name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy import and_, delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import DelegationRow, RoleRow, UserRoleRow, UserRow
from db.preferences import sync_org_preferences
from domain.errors import field_problems
from domain.inbound import Comment, Id, ShortText
from domain.policy import ApproverSpec, StageMode
from domain.process import Actor, ActorVia, ResolveDetail, Slot, Via, via_role
from domain.routing import RouteStage
from notify.preferences import Locale, PersonalChannel, TimeZoneName

# Everything in the org file that becomes a stored id or text is an inbound type
# (domain.inbound), so a malformed file fails at load, naming the field.
UserId = Id
RoleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

# Org loads from several processes (dev stack, tests) take turns.
ORG_LOAD_LOCK = 7_201_914_002
# A manager chain longer than this is a data error; it also bounds the recursive query.
MAX_CHAIN = 32


# --- the org file -------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OrgUser(_Strict):
    id: UserId
    name: ShortText
    email: Annotated[ShortText, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    roles: tuple[RoleId, ...] = ()
    manager: UserId | None = None
    is_admin: bool = False
    # Notice preferences (all optional; the user may change them: PUT /v1/me/preferences).
    channels: tuple[PersonalChannel, ...] | None = None
    locale: Locale | None = None
    time_zone: TimeZoneName | None = None

    def states_preferences(self) -> bool:
        return (self.channels, self.locale, self.time_zone) != (None, None, None)


class OrgDelegation(_Strict):
    """``to`` may act for ``from_`` while ``starts_at <= t < ends_at``."""

    from_: UserId = Field(alias="from")
    to: UserId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Comment = ""


class OrgFile(_Strict):
    """The whole directory as the org file states it."""

    roles: dict[RoleId, ShortText]
    users: tuple[OrgUser, ...] = Field(min_length=1)
    delegations: tuple[OrgDelegation, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> OrgFile:
        problems = [*self._user_problems(), *self._delegation_problems()]
        if not problems:
            problems = _manager_cycles({u.id: u.manager for u in self.users})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _user_problems(self) -> list[str]:
        problems: list[str] = []
        ids = [u.id for u in self.users]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"duplicate user ids: {dupes}")
        known = set(ids)
        for user in self.users:
            for role in user.roles:
                if role not in self.roles:
                    problems.append(f"user {user.id!r}: unknown role {role!r} (not under roles:)")
            if user.manager is not None and user.manager not in known:
                problems.append(f"user {user.id!r}: manager {user.manager!r} is not a user")
            if user.manager == user.id:
                problems.append(f"user {user.id!r} is their own manager")
        return problems

    def _delegation_problems(self) -> list[str]:
        problems: list[str] = []
        known = {u.id for u in self.users}
        for n, d in enumerate(self.delegations):
            where = f"delegation {n} ({d.from_} -> {d.to})"
            for who in (d.from_, d.to):
                if who not in known:
                    problems.append(f"{where}: {who!r} is not a user")
            if d.from_ == d.to:
                problems.append(f"{where}: a user cannot delegate to themself")
            if d.ends_at <= d.starts_at:
                problems.append(f"{where}: ends_at must be after starts_at")
        keys = [(d.from_, d.to, d.starts_at, d.ends_at) for d in self.delegations]
        if len(set(keys)) != len(keys):
            problems.append("duplicate delegations (same from, to, starts_at, ends_at)")
        return problems

    def managers_first(self) -> list[OrgUser]:
        """The users ordered so that everyone comes after their manager."""
        by_id = {u.id: u for u in self.users}
        depth: dict[str, int] = {}

        def depth_of(uid: str) -> int:
            if uid not in depth:
                manager = by_id[uid].manager
                depth[uid] = 0 if manager is None else depth_of(manager) + 1
            return depth[uid]

        return sorted(self.users, key=lambda u: (depth_of(u.id), u.id))


def _manager_cycles(manager_of: dict[str, str | None]) -> list[str]:
    """Each cycle in the manager relation, once, as ``a -> b -> a``."""
    problems: list[str] = []
    done: set[str] = set()
    for start in sorted(manager_of):
        path: list[str] = []
        current: str | None = start
        while current is not None and current not in done and current not in path:
            path.append(current)
            current = manager_of.get(current)
        if current is not None and current in path:
            cycle = [*path[path.index(current) :], current]
            problems.append(f"manager cycle: {' -> '.join(cycle)}")
        done.update(path)
    return problems


class OrgError(Exception):
    """An org file that cannot be loaded; the message names the file and the problem."""


def read_org_file(path: Path) -> OrgFile:
    """Parse and validate an org file.

    Raises:
        OrgError: not YAML, not a mapping, or invalid (every problem is named).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OrgError(f"{path}: cannot read the org file: {exc}") from exc
    if not isinstance(data, dict):
        raise OrgError(f"{path}: must be a mapping with roles, users and delegations")
    try:
        return OrgFile.model_validate(data)
    except ValidationError as exc:
        raise OrgError(f"{path}: {field_problems(exc)}") from exc


# --- loading ------------------------------------------------------------------


async def load_org_file(sessions: async_sessionmaker[AsyncSession], path: Path) -> None:
    """Make the directory tables say what the org file says, in one transaction.

    Idempotent: a second load of the same file writes nothing. Users missing
    from the file are deactivated (and lose their roles); roles and delegations
    missing from it are deleted.

    Raises:
        OrgError: the file is invalid; nothing is written.
    """
    org = read_org_file(path)
    async with transaction(sessions) as session:
        await apply_org(session, org)


async def apply_org(session: AsyncSession, org: OrgFile) -> None:
    """Write ``org`` into the directory tables, inside the caller's transaction."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORG_LOAD_LOCK})
    await _upsert_roles(session, org)
    await _upsert_users(session, org)
    await _sync_user_roles(session, org)
    await session.execute(delete(RoleRow).where(RoleRow.name.not_in(list(org.roles))))
    await _sync_delegations(session, org)
    await sync_org_preferences(
        session,
        [
            {
                "user_id": u.id,
                "channels": list(u.channels) if u.channels is not None else None,
                "locale": u.locale,
                "time_zone": u.time_zone,
            }
            for u in org.users
            if u.states_preferences()
        ],
    )


async def _upsert_roles(session: AsyncSession, org: OrgFile) -> None:
    if not org.roles:
        return
    stmt = insert(RoleRow).values([{"name": k, "title": v} for k, v in org.roles.items()])
    stmt = stmt.on_conflict_do_update(
        index_elements=[RoleRow.name],
        set_={"title": stmt.excluded.title},
        where=RoleRow.title.is_distinct_from(stmt.excluded.title),
    )
    await session.execute(stmt)


async def _upsert_users(session: AsyncSession, org: OrgFile) -> None:
    rows = [
        {
            "id": u.id,
            "name": u.name,
            "email": u.email,
            "manager_id": u.manager,
            "is_admin": u.is_admin,
            "active": True,
        }
        for u in org.managers_first()
    ]
    stmt = insert(UserRow).values(rows)
    changed = ("name", "email", "manager_id", "is_admin", "active")
    stmt = stmt.on_conflict_do_update(
        index_elements=[UserRow.id],
        set_={c: stmt.excluded[c] for c in changed},
        # Only rows that differ are rewritten, so a repeated load writes nothing.
        where=tuple_(*(UserRow.__table__.c[c] for c in changed)).is_distinct_from(
            tuple_(*(stmt.excluded[c] for c in changed))
        ),
    )
    await session.execute(stmt)
    await session.execute(
        update(UserRow)
        .where(UserRow.id.not_in([u.id for u in org.users]), UserRow.active.is_(True))
        .values(active=False)
    )


async def _sync_user_roles(session: AsyncSession, org: OrgFile) -> None:
    wanted = {(u.id, r) for u in org.users for r in u.roles}
    have = {
        tuple(r) for r in (await session.execute(select(UserRoleRow.user_id, UserRoleRow.role)))
    }
    stale = sorted(have - wanted)
    if stale:
        await session.execute(
            delete(UserRoleRow).where(tuple_(UserRoleRow.user_id, UserRoleRow.role).in_(stale))
        )
    missing = sorted(wanted - have)
    if missing:
        await session.execute(
            insert(UserRoleRow).values([{"user_id": u, "role": r} for u, r in missing])
        )


async def _sync_delegations(session: AsyncSession, org: OrgFile) -> None:
    # Only the file's own rows: those made through the API are not the file's to touch.
    existing = (
        (await session.execute(select(DelegationRow).where(DelegationRow.source == "org")))
        .scalars()
        .all()
    )
    by_key = {(d.from_user, d.to_user, d.starts_at, d.ends_at): d for d in existing}
    wanted = {(d.from_, d.to, d.starts_at, d.ends_at): d for d in org.delegations}
    stale = [row.id for key, row in by_key.items() if key not in wanted]
    if stale:
        await session.execute(delete(DelegationRow).where(DelegationRow.id.in_(stale)))
    for key, d in wanted.items():
        row = by_key.get(key)
        if row is None:
            session.add(
                DelegationRow(
                    from_user=d.from_,
                    to_user=d.to,
                    starts_at=d.starts_at,
                    ends_at=d.ends_at,
                    reason=d.reason,
                    source="org",
                )
            )
        elif row.reason != d.reason:
            row.reason = d.reason
    await session.flush()


# --- queries ------------------------------------------------------------------


class DirectoryUser(BaseModel):
    """One person as the directory knows them."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str | None
    manager_id: str | None
    roles: list[str]
    is_admin: bool
    active: bool


class Delegation(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_user: str
    to_user: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    request_types: list[str] | None = None
    """The request types it covers; None for all."""


async def get_user(session: AsyncSession, user_id: str) -> DirectoryUser | None:
    """The user with this id, active or not, or None.

    One statement, no ORM rows: every authenticated API call asks this.
    """
    roles = (
        select(func.array_agg(aggregate_order_by(UserRoleRow.role, UserRoleRow.role)))
        .where(UserRoleRow.user_id == UserRow.id)
        .scalar_subquery()
    )
    found = (
        await session.execute(
            select(
                UserRow.id,
                UserRow.name,
                UserRow.email,
                UserRow.manager_id,
                UserRow.is_admin,
                UserRow.active,
                roles.label("roles"),
            ).where(UserRow.id == user_id)
        )
    ).one_or_none()
    if found is None:
        return None
    return DirectoryUser(
        id=found.id,
        name=found.name,
        email=found.email,
        manager_id=found.manager_id,
        roles=list(found.roles or ()),
        is_admin=found.is_admin,
        active=found.active,
    )


async def active_among(session: AsyncSession, users: Iterable[str]) -> set[str]:
    """Those of ``users`` who are active users of the directory."""
    wanted = sorted(set(users))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(UserRow.id).where(UserRow.id.in_(wanted), UserRow.active.is_(True))
    )
    return set(rows)


async def names_of(session: AsyncSession, users: Iterable[str]) -> dict[str, str]:
    """The directory names of those of ``users`` it holds (active or not): id -> name."""
    wanted = sorted(set(users))
    if not wanted:
        return {}
    rows = await session.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(wanted)))
    return {row.id: row.name for row in rows}


async def departed_holders(session: AsyncSession) -> dict[str, list[str]]:
    """Requests with a pending step held by someone inactive or unknown: id -> those users."""
    from db.models import AssignmentRow

    rows = await session.execute(
        select(AssignmentRow.request_id, AssignmentRow.user_id)
        .outerjoin(UserRow, UserRow.id == AssignmentRow.user_id)
        .where(
            AssignmentRow.pending.is_(True),
            (UserRow.id.is_(None)) | (UserRow.active.is_(False)),
        )
        .distinct()
    )
    held: dict[str, list[str]] = {}
    for request_id, user_id in rows:
        held.setdefault(request_id, []).append(user_id)
    return {rid: sorted(users) for rid, users in held.items()}


async def users_with_role(session: AsyncSession, role: str) -> list[str]:
    """The active holders of ``role``, sorted by id.

    Role assignments carry no validity period, so this is the same at any time.
    """
    ids = await session.scalars(
        select(UserRow.id)
        .join(UserRoleRow, UserRoleRow.user_id == UserRow.id)
        .where(UserRoleRow.role == role, UserRow.active.is_(True))
        .order_by(UserRow.id)
    )
    return list(ids)


async def admins(session: AsyncSession) -> list[str]:
    """The active administrators, sorted by id."""
    ids = await session.scalars(
        select(UserRow.id)
        .where(UserRow.is_admin.is_(True), UserRow.active.is_(True))
        .order_by(UserRow.id)
    )
    return list(ids)


async def manager_chain(session: AsyncSession, user_id: str) -> list[str]:
    """The active managers above ``user_id``, nearest first (empty at the top)."""
    chain = (
        select(UserRow.manager_id.label("id"), literal(1).label("depth"))
        .where(UserRow.id == user_id, UserRow.manager_id.is_not(None))
        .cte("chain", recursive=True)
    )
    up = UserRow.__table__.alias("up")
    chain = chain.union_all(
        select(up.c.manager_id, chain.c.depth + 1).where(
            up.c.id == chain.c.id, up.c.manager_id.is_not(None), chain.c.depth < MAX_CHAIN
        )
    )
    rows = await session.execute(
        select(chain.c.id)
        .join(UserRow, UserRow.id == chain.c.id)
        .where(UserRow.active.is_(True))
        .order_by(chain.c.depth)
    )
    return [r.id for r in rows]


async def manager_of(session: AsyncSession, user_id: str) -> str | None:
    """The user's nearest active manager, or None at the top of the chain."""
    chain = await manager_chain(session, user_id)
    return chain[0] if chain else None


async def next_up(
    session: AsyncSession, users: list[str], requester: str, escalation_role: str | None
) -> dict[str, list[str]]:
    """Who is next up from each of ``users``: their manager, plus the escalation role.

    Never the requester and never the user themself; an empty list at the top
    of the chain. If the manager is the requester, the next one up is taken
    instead, so a request does not stall one level below its author.
    """
    role_holders = await users_with_role(session, escalation_role) if escalation_role else []
    found_up: dict[str, list[str]] = {}
    for user in users:
        chain = await manager_chain(session, user)
        manager = next((m for m in chain if m != requester), None)
        found = [manager] if manager is not None else []
        found += [h for h in role_holders if h not in found]
        found_up[user] = [u for u in found if u not in (user, requester)]
    return found_up


_TO_USER = UserRow.__table__.alias("to_user")


async def active_delegations(
    session: AsyncSession,
    at: datetime,
    request_type: str | None = None,
    principals: Iterable[str] | None = None,
) -> list[Delegation]:
    """Delegations in force at ``at`` between active users, by (from, to), once each.

    ``request_type``: only those covering it (None: every one). ``principals``: only
    those whose ``from`` is among them.
    """
    d = DelegationRow
    query = (
        select(d.from_user, d.to_user, d.starts_at, d.ends_at, d.reason, d.request_types)
        .join(UserRow, UserRow.id == d.from_user)
        .join(_TO_USER, _TO_USER.c.id == d.to_user)
        .where(
            and_(d.starts_at <= at, at < d.ends_at),
            UserRow.active.is_(True),
            _TO_USER.c.active.is_(True),
        )
        .order_by(d.from_user, d.to_user, d.starts_at)
    )
    if request_type is not None:
        query = query.where(d.request_types.is_(None) | d.request_types.contains([request_type]))
    if principals is not None:
        query = query.where(d.from_user.in_(sorted(set(principals))))
    found: dict[tuple[str, str], Delegation] = {}
    for r in await session.execute(query):
        found.setdefault(
            (r.from_user, r.to_user),
            Delegation(
                from_user=r.from_user,
                to_user=r.to_user,
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                reason=r.reason,
                request_types=r.request_types,
            ),
        )
    return list(found.values())


# --- assignee resolution --------------------------------------------------------


async def resolve_slots(
    session: AsyncSession,
    requester: str,
    mode: StageMode,
    approvers: Sequence[ApproverSpec],
    at: datetime,
    request_type: str | None = None,
) -> list[Slot]:
    """Turn a stage's approver specs into the people who may decide it at ``at``.

    ``any``: one slot whose actors are everyone any spec names. ``all``: one slot
    per spec. In every slot the requester is removed, then each actor's active
    delegate is added (on their behalf); a slot left empty falls back to the
    requester's nearest manager, then to the administrators. Actors are sorted
    by user id. Delegations that name request types count only for ``request_type``.
    """
    resolver = _Resolver(session, requester, at, request_type)
    groups = await _groups(resolver, mode, approvers)
    return [Slot(label=label, actors=await resolver.finish(found)) for label, found in groups]


async def resolve_detail(
    session: AsyncSession,
    requester: str,
    mode: StageMode,
    approvers: Sequence[ApproverSpec],
    at: datetime,
    fallback_role: str | None = None,
    request_type: str | None = None,
) -> ResolveDetail:
    """What the specs name at ``at`` before any rule settles who decides.

    The slots as :func:`resolve_slots` groups them, with the requester kept where
    named and each other actor's active delegate added (never the requester), and no
    fallback; with the requester's nearest manager, the administrators and the
    holders of ``fallback_role``. :func:`domain.resolution.settle` decides from it.
    """
    resolver = _Resolver(session, requester, at, request_type)
    groups = await _groups(resolver, mode, approvers)
    named = [Slot(label=label, actors=await resolver.named(found)) for label, found in groups]
    manager = next((m for m in await resolver.chain() if m != requester), None)
    return ResolveDetail(
        named=named,
        manager=manager,
        admins=await admins(session),
        role_holders=await users_with_role(session, fallback_role) if fallback_role else [],
    )


async def route_details(
    session: AsyncSession,
    requester: str,
    stages: Sequence[RouteStage],
    at: datetime,
    fallback_role: str | None = None,
    request_type: str | None = None,
) -> list[tuple[RouteStage, ResolveDetail]]:
    """:func:`resolve_detail` for each stage of a route (the submission and the preview)."""
    return [
        (
            stage,
            await resolve_detail(
                session, requester, stage.mode, stage.approvers, at, fallback_role, request_type
            ),
        )
        for stage in stages
    ]


async def _groups(
    resolver: _Resolver, mode: StageMode, approvers: Sequence[ApproverSpec]
) -> list[tuple[str, list[Actor]]]:
    if mode is StageMode.ANY:
        union: dict[str, Actor] = {}
        for spec in approvers:
            for actor in await resolver.named_by(spec):
                union.setdefault(actor.user, actor)
        return [(" or ".join(s.describe() for s in approvers), list(union.values()))]
    return [(spec.describe(), await resolver.named_by(spec)) for spec in approvers]


class _Resolver:
    """One resolution: caches the requester's chain and the delegations in force."""

    def __init__(
        self, session: AsyncSession, requester: str, at: datetime, request_type: str | None
    ) -> None:
        self.session = session
        self.requester = requester
        self.at = at
        self.request_type = request_type
        self._chain: list[str] | None = None
        self._delegations: dict[str, list[str]] | None = None

    async def chain(self) -> list[str]:
        if self._chain is None:
            self._chain = await manager_chain(self.session, self.requester)
        return self._chain

    async def delegates(self) -> dict[str, list[str]]:
        if self._delegations is None:
            found: dict[str, list[str]] = {}
            for d in await active_delegations(self.session, self.at, self.request_type):
                found.setdefault(d.from_user, []).append(d.to_user)
            self._delegations = found
        return self._delegations

    def actor(self, user: str, via: ActorVia, on_behalf_of: str | None = None) -> Actor:
        return Actor(user=user, via=via, on_behalf_of=on_behalf_of, since=self.at)

    async def named_by(self, spec: ApproverSpec) -> list[Actor]:
        """The people a spec names, before the requester rule and delegations."""
        if spec.role is not None:
            holders = await users_with_role(self.session, spec.role)
            return [self.actor(u, via_role(spec.role)) for u in holders]
        if spec.manager is not None:
            chain = await self.chain()
            if len(chain) < spec.manager:
                return []
            return [self.actor(chain[spec.manager - 1], Via.MANAGER)]
        assert spec.user is not None  # ApproverSpec guarantees exactly one
        user = await self.session.get(UserRow, spec.user)
        return [self.actor(user.id, Via.USER)] if user is not None and user.active else []

    async def named(self, found: Iterable[Actor]) -> list[Actor]:
        """``found`` with the delegates of everyone but the requester (never the requester)."""
        actors = {a.user: a for a in found}
        delegates = await self.delegates()
        for principal in sorted(u for u in actors if u != self.requester):
            for delegate in delegates.get(principal, []):
                if delegate != self.requester and delegate not in actors:
                    actors[delegate] = self.actor(delegate, Via.DELEGATION, on_behalf_of=principal)
        return [actors[u] for u in sorted(actors)]

    async def finish(self, found: Iterable[Actor]) -> list[Actor]:
        actors = {a.user: a for a in found if a.user != self.requester}
        delegates = await self.delegates()
        for principal in sorted(actors):
            for delegate in delegates.get(principal, []):
                if delegate != self.requester and delegate not in actors:
                    actors[delegate] = self.actor(delegate, Via.DELEGATION, on_behalf_of=principal)
        if not actors:
            actors = {a.user: a for a in await self.fallback()}
        return [actors[u] for u in sorted(actors)]

    async def fallback(self) -> list[Actor]:
        """Nobody else can decide: the requester's manager, else the administrators."""
        for manager in await self.chain():
            if manager != self.requester:
                return [self.actor(manager, Via.FALLBACK)]
        return [
            self.actor(u, Via.FALLBACK) for u in await admins(self.session) if u != self.requester
        ]
