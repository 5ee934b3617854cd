"""Schemathesis over ``/openapi.json``: no request, however odd, gets a 5xx, and every
answer is what the schema says (status code, content type, body, headers).

The app runs for real: uvicorn on 127.0.0.1 with its own database on the suite's
embedded PostgreSQL, the suite's Temporal dev server and a real worker, all on one
background event loop (a synchronous schemathesis test cannot drive the suite's
loop, and a worker on a stopped loop would leave every submission unsettled).
Callers carry valid bearer tokens of demo users. The run is derandomized and
bounded: ``APPROVALS_FUZZ_EXAMPLES`` (default 40) examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import issue_token
from common.policy_store import load_policies
from common.settings import Settings
from common.temporal import data_converter
from db.directory import load_org_file
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from domain.policy import FieldSpec, FieldType
from tests.support.api import make_settings, temporal_target
from tests.support.paths import ROOT

MAX_EXAMPLES = int(os.environ.get("APPROVALS_FUZZ_EXAMPLES", "40"))
# The service's own default: shorter would turn a worker slowed by a busy CI
# machine into a 503, which this run counts as a failure.
RPC_TIMEOUT = 10.0
CLIENT_TIMEOUT = 30.0

# The schema is the app's own; building it touches nothing outside the process.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings("postgresql+asyncpg://unused/unused", "unused:7233")).openapi()
)
schema.config.generation.update(
    deterministic=True,
    max_examples=MAX_EXAMPLES,
    database="none",
    # Unknown query parameters are ignored, as HTTP APIs do (cache busters, tracing
    # tags); OpenAPI cannot say "others are ignored", so they are not sent as a
    # negative case that ought to be refused.
    allow_extra_parameters=False,
    # The test sends a valid bearer token itself; a negative case that "omits"
    # Authorization would then be accepted. The ignored_auth check covers 401s.
    with_security_parameters=False,
)

POLICIES = load_policies(ROOT / "policies")
MILESTONES = sorted({m.name for p in POLICIES.values() for m in p.milestones})
# A requester, the first approver of the seeded contracts, and someone who sees all.
CALLERS = ("am_li", "bcd_zheng", "admin")
SEEDED: list[str] = []
"""Ids of the requests the fixture submits before fuzzing (random ids only ever 404)."""

# Strings that plain generation seldom makes but clients do send: NUL, other
# control characters, exotic numbers. Lone surrogates (valid as JSON escapes) are
# left to tests/api/test_hostile_input.py: schemathesis re-validates a steered body
# with a validator that cannot encode them, and fails before anything is sent.
_HOSTILE_CHARS = ["a\x00b", "\x00", "tab\x1fsep", "\x7f"]
_HOSTILE_TEXT = st.sampled_from(_HOSTILE_CHARS)
_HOSTILE_QUERY_TEXT = _HOSTILE_TEXT
_EXOTIC_NUMBERS = st.sampled_from(["1e5", "1E+400", "1e-400", "1_000", "0x10", " 5 ", "-0", "+7"])

# Values a form field might be sent as: any JSON scalar, text in every shape.
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    _HOSTILE_TEXT,
    _EXOTIC_NUMBERS,
)


def _plausible(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A value of the field's own type, so that some submissions pass and start a workflow."""
    t = spec.type
    if t is FieldType.CHOICE:
        return st.sampled_from(list(spec.choices))
    if t is FieldType.BOOLEAN:
        return st.booleans()
    if t is FieldType.DATE:
        return st.dates().map(date.isoformat)
    if t in (FieldType.INTEGER, FieldType.DECIMAL):
        return st.integers(min_value=0, max_value=10**7)
    return st.text(min_size=1, max_size=40)


def _fields_of(policy_type: str, plausible: bool) -> st.SearchStrategy[dict[str, Any]]:
    specs = POLICIES[policy_type].fields
    return st.fixed_dictionaries(
        {f.name: _plausible(f) if plausible else _JSON_SCALARS for f in specs}
    )


def _sometimes(original: Any, choices: Sequence[Any]) -> st.SearchStrategy[Any]:
    """The generated value, or one the service knows (drawn, so still derandomized)."""
    if not choices:
        return st.just(original)
    return st.one_of(st.just(original), st.sampled_from(list(choices)))


def _steered_path(path_parameters: Any) -> st.SearchStrategy[Any]:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    known = {"request_id": SEEDED, "policy_type": sorted(POLICIES), "name": MILESTONES}
    parts = {k: _sometimes(v, known.get(k, ())) for k, v in path_parameters.items()}
    return st.fixed_dictionaries(parts)


def _steered_body(body: Any) -> st.SearchStrategy[Any]:
    """Now and then a known request type, its form fields plausible or arbitrary JSON values,
    or one odd top-level value (hostile text, an exotic number) in a plausible body."""
    if not isinstance(body, dict) or "fields" not in body or not isinstance(body["fields"], dict):
        return st.just(body)

    def known_type(policy_type: str, plausible: bool) -> st.SearchStrategy[dict[str, Any]]:
        amount = st.integers(min_value=0, max_value=10**7).map(str)
        parts: dict[str, st.SearchStrategy[Any]] = {
            "fields": _fields_of(policy_type, plausible),
            "amount": amount if plausible else st.just(body.get("amount")),
        }
        if plausible and "title" in body:
            parts["title"] = st.just(f"Fuzzed {policy_type}")
        return st.fixed_dictionaries(parts).map(
            lambda known: {**body, **known, **({"type": policy_type} if "type" in body else {})}
        )

    def one_value_replaced(base: dict[str, Any], key: str) -> st.SearchStrategy[dict[str, Any]]:
        values = _EXOTIC_NUMBERS if key == "amount" else _HOSTILE_TEXT
        return values.map(lambda value: {**base, key: value})

    def replaced(base_and_key: tuple[dict[str, Any], str]) -> st.SearchStrategy[dict[str, Any]]:
        return one_value_replaced(*base_and_key)

    types = st.sampled_from(sorted(POLICIES))
    plausible = types.flatmap(lambda t: known_type(t, plausible=True))
    texts = sorted(k for k in ("title", "customer", "comment", "amount") if k in body)
    # One odd top-level value in an otherwise plausible body, so that it gets far.
    odd = [st.tuples(plausible, st.sampled_from(texts)).flatmap(replaced)] if texts else []
    return st.one_of(
        # The plausible body twice: it is the one that reaches the workflow.
        st.just(body),
        plausible,
        plausible,
        types.flatmap(lambda t: known_type(t, plausible=False)),
        *odd,
    )


def _steered_query(query: Any) -> st.SearchStrategy[Any]:
    """Now and then, one string filter of the list carries hostile text."""
    names = sorted(
        k for k, v in (query or {}).items() if isinstance(v, str) and k not in ("limit", "overdue")
    )
    if not isinstance(query, dict) or not names:
        return st.just(query)
    hostile = st.tuples(st.sampled_from(names), _HOSTILE_QUERY_TEXT)
    return st.just(query) | hostile.map(lambda kv: {**query, kv[0]: kv[1]})


@schema.hook
def flatmap_case(
    context: schemathesis.HookContext, case: schemathesis.Case
) -> st.SearchStrategy[schemathesis.Case]:
    """Steer schema-valid cases only: a negative case must stay as invalid as it was made."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return st.just(case)

    def steered(parts: tuple[Any, Any, Any]) -> schemathesis.Case:
        case.path_parameters, case.query, case.body = parts
        return case

    return st.tuples(
        _steered_path(case.path_parameters), _steered_query(case.query), _steered_body(case.body)
    ).map(steered)


@dataclass(frozen=True)
class FuzzServer:
    base_url: str
    settings: Settings

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings, user_id)}"}


async def _fresh_database(pg_url: str) -> str:
    """A new, migrated database beside the suite's: fuzzed requests stay out of its counts."""
    url = make_url(pg_url)
    name = f"approvals_fuzz_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    fuzz_url = url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, fuzz_url)
    return fuzz_url


async def _serve(
    pg_url: str, temporal: str, ready: Future[FuzzServer], stop: asyncio.Event
) -> None:
    from worker.main import build_worker

    db_url = await _fresh_database(pg_url)
    # A workflow that cannot settle an update answers 503 after this, well inside
    # the client's timeout, so the run sees the server's answer, never a hang.
    settings = make_settings(db_url, temporal, APPROVALS_RPC_TIMEOUT_SECONDS=RPC_TIMEOUT)
    engine = make_engine(db_url)
    try:
        await load_org_file(make_sessionmaker(engine), ROOT / "org" / "demo.yaml")
        client = await Client.connect(temporal, data_converter=data_converter(settings))
        async with build_worker(client, make_sessionmaker(engine), settings.task_queue):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(
                uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
            )
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.05)
            ready.set_result(FuzzServer(f"http://127.0.0.1:{port}", settings))
            await stop.wait()
            server.should_exit = True
            await serving
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fuzz_server(pg_url: str, temporal_local: WorkflowEnvironment) -> Iterator[FuzzServer]:
    ready: Future[FuzzServer] = Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        try:
            loop.run_until_complete(_serve(pg_url, temporal_target(temporal_local), ready, stop))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="fuzz-api", daemon=True)
    thread.start()
    try:
        server = ready.result(timeout=120)
        SEEDED[:] = [_seed_contract(server, n) for n in range(3)]
        yield server
    finally:
        SEEDED.clear()
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)


def _seed_contract(server: FuzzServer, n: int) -> str:
    """A 250,000 contract by am_li, waiting for bcd_zheng (then dsd_liu)."""
    body = {
        "type": "big_customer_contract",
        "title": f"Seeded contract {n}",
        "customer": "Fuzz Ltd",
        "amount": "250000",
        "fields": {"contract_no": f"F-{n}", "settlement_floor_price": "180000"},
    }
    resp = httpx.post(
        f"{server.base_url}/v1/requests", json=body, headers=server.auth("am_li"), timeout=30
    )
    assert resp.status_code == 201, resp.text
    request_id: str = resp.json()["id"]
    return request_id


_NEGATED_QUERY = re.compile(r"- query: violates `[^`]+` at /properties/([^\s/]+)")


def _same_on_the_wire(case: schemathesis.Case, failures: Sequence[Any]) -> bool:
    """A "schema-violating" query value that is a one-element list of a string.

    ``?customer=x`` is the same request whether schemathesis meant ``"x"`` or
    ``["x"]``; it recognises this for plain parameters but not for the nullable
    ones (``anyOf: [string, null]``) FastAPI makes of our optional filters.
    """
    if not failures or {type(f).__name__ for f in failures} != {"AcceptedNegativeData"}:
        return False
    query = case.query if isinstance(case.query, dict) else {}
    for failure in failures:
        names = _NEGATED_QUERY.findall(failure.message)
        if not names or any(
            not (isinstance(query.get(n), list) and len(query[n]) == 1) for n in names
        ):
            return False
        if "- body:" in failure.message or "- path:" in failure.message:
            return False
    return True


@schema.given(caller=st.sampled_from(CALLERS))
@schema.parametrize()
@hypothesis.settings(
    suppress_health_check=list(HealthCheck), deadline=None, derandomize=True, database=None
)
def test_no_5xx_and_every_answer_matches_the_schema(
    case: schemathesis.Case, caller: str, fuzz_server: FuzzServer
) -> None:
    try:
        case.call_and_validate(
            base_url=fuzz_server.base_url,
            headers=fuzz_server.auth(caller),
            # Schema-valid is not business-valid: an unknown request type, a form
            # field its policy lacks, a cursor the service never issued or a broken
            # hard rule is rightly 422, and no OpenAPI schema can say which.
            excluded_checks=[positive_data_acceptance],
            timeout=CLIENT_TIMEOUT,
        )
    except FailureGroup as group:
        if _same_on_the_wire(case, group.exceptions):
            return
        raise
