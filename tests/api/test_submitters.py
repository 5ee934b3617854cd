"""Who may submit (发起人范围): the listing and the submission apply one rule.

The app runs on a copy of the shipped policies in which customer gifts may be submitted
by account managers and by om_wu only. A policy without ``submitters`` is open to all.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from common.settings import Settings
from domain.policy import Policy, Submitters
from tests.support.api import Auth, Db, make_settings, running, temporal_target
from tests.support.paths import ROOT

GIFT = "customer_gift"
ROLES = ("account_manager", "office_manager", "sales_head", "auditor", "finance_staff")
USERS = ("am_li", "am_sun", "om_wu", "sh_zhou", "fin_he", "auditor_qin", "sd_chen", "admin")


@pytest.fixture(scope="module")
async def gated(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    settings: Settings,
    demo_org: None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    policy_dir = tmp_path_factory.mktemp("submitters") / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    path = policy_dir / f"{GIFT}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["submitters"] = {"roles": ["account_manager"], "users": ["om_wu"]}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    app_settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_POLICY_DIR=policy_dir,
        APPROVALS_TASK_QUEUE=settings.task_queue,  # the worker fixture's queue
    )
    app = create_app(app_settings)
    async with running(app) as client:
        yield app, client


def _gift(customer: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": GIFT,
        "title": "A gift",
        "customer": customer,
        "amount": "300",
        "fields": fields if fields is not None else {"gift": "Tea set", "reason": "Loyal"},
    }


async def _listed(api: httpx.AsyncClient, auth: Auth, user: str, **query: str) -> list[str]:
    resp = await api.get("/v1/policies", params=query, headers=auth(user))
    assert resp.status_code == 200, resp.text
    return [p["type"] for p in resp.json()["items"]]


async def test_the_listing_offers_a_gated_type_only_to_whom_it_names(
    gated: tuple[FastAPI, httpx.AsyncClient], auth: Auth
) -> None:
    _, api = gated
    assert GIFT in await _listed(api, auth, "am_li", submittable="true")  # by role
    assert GIFT in await _listed(api, auth, "om_wu", submittable="true")  # by name
    others = await _listed(api, auth, "sd_chen", submittable="true")
    assert GIFT not in others
    assert "big_customer_contract" in others  # open to all: no submitters
    assert GIFT in await _listed(api, auth, "sd_chen")  # the whole catalogue, as before


@pytest.mark.usefixtures("worker")
async def test_whom_the_policy_names_submits_and_anyone_else_is_refused(
    gated: tuple[FastAPI, httpx.AsyncClient], auth: Auth, db: Db
) -> None:
    _, api = gated
    customer = f"Gift {uuid.uuid4().hex[:8]}"
    refused = await api.post("/v1/requests", json=_gift(customer), headers=auth("sd_chen"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden"
    assert refused.json()["error"]["details"] == {"type": GIFT}
    assert await db.count_for_customer(customer) == 0

    accepted = await api.post("/v1/requests", json=_gift(customer), headers=auth("am_li"))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["requester"] == "am_li"


async def test_an_unknown_type_is_still_the_validation_error(
    gated: tuple[FastAPI, httpx.AsyncClient], auth: Auth
) -> None:
    _, api = gated
    body = _gift("Nobody") | {"type": "no_such_type"}
    resp = await api.post("/v1/requests", json=body, headers=auth("sd_chen"))
    assert resp.status_code == 422, resp.text


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    roles=st.lists(st.sampled_from(ROLES), max_size=2, unique=True),
    users=st.lists(st.sampled_from(USERS), max_size=2, unique=True),
    caller=st.sampled_from(USERS),
)
async def test_the_listing_agrees_with_what_submit_refuses(
    gated: tuple[FastAPI, httpx.AsyncClient],
    auth: Auth,
    roles: list[str],
    users: list[str],
    caller: str,
) -> None:
    """Whatever the policy names, a type is listed exactly when submit lets the caller
    past the gate: a body with a missing field then answers 422 naming it, not 403."""
    app, api = gated
    policies: dict[str, Policy] = app.state.services.policies
    who = Submitters(roles=tuple(roles), users=tuple(users)) if roles or users else None
    policies[GIFT] = policies[GIFT].model_copy(update={"submitters": who})
    listed = GIFT in await _listed(api, auth, caller, submittable="true")
    resp = await api.post(
        "/v1/requests", json=_gift("Nobody", {"gift": "Tea set"}), headers=auth(caller)
    )
    assert resp.status_code == (422 if listed else 403), resp.text
