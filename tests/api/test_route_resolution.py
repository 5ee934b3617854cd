"""The policy's ``resolution`` options end to end: the API, the real worker, PostgreSQL.

Two request types beside the shipped ones: ``route_options`` skips repeated approvers,
a step naming the requester and a step nobody is named for (each recorded as
``auto_approved``); ``route_refuse`` refuses a submission whose route has a step nobody
is named for (422 ``no_approver`` naming it). The preview shows which rule applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.support.api import Auth, make_settings, running, temporal_target
from tests.support.stored_histories import keep, recording
from worker.main import build_worker

OPTIONS: dict[str, Any] = {
    "type": "route_options",
    "version": 1,
    "title": "Route options",
    "amount": {"required": False},
    "stages": [
        {"key": "manager", "name": "Manager", "approvers": [{"manager": 1}]},
        {"key": "board", "name": "Board", "approvers": [{"role": "board"}]},
        {"key": "head", "name": "Sales head", "approvers": [{"role": "sales_head"}]},
        {"key": "director", "name": "Sales director", "approvers": [{"role": "sales_director"}]},
    ],
    "resolution": {
        "repeated_approver": "skip",
        "requester_approver": "skip",
        "empty_slot": "skip",
    },
}
REFUSE: dict[str, Any] = {
    "type": "route_refuse",
    "version": 1,
    "title": "Route refuse",
    "amount": {"required": False},
    "stages": [
        {"key": "manager", "name": "Manager", "approvers": [{"manager": 1}]},
        {
            "key": "countersign",
            "name": "Countersign",
            "mode": "all",
            "approvers": [{"role": "sales_head"}, {"role": "board"}],
        },
    ],
    "resolution": {"empty_slot": "refuse"},
}

SELF: dict[str, Any] = {
    "type": "route_self",
    "version": 1,
    "title": "Route self",
    "amount": {"required": False},
    "stages": [{"key": "head", "name": "Sales head", "approvers": [{"role": "sales_head"}]}],
    "resolution": {"requester_approver": "self"},
}


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    demo_org: None,
) -> AsyncIterator[httpx.AsyncClient]:
    policy_dir: Path = tmp_path_factory.mktemp("policies")
    for doc in (OPTIONS, REFUSE, SELF):
        (policy_dir / f"{doc['type']}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_POLICY_DIR=policy_dir,
    )
    async with (
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
        running(create_app(settings)) as api,
    ):
        yield api
        if recording() is not None:
            query = f'TaskQueue="{settings.task_queue}"'
            async for wf in temporal_local.client.list_workflows(query):
                handle = temporal_local.client.get_workflow_handle(wf.id, run_id=wf.run_id)
                keep(await handle.fetch_history(), f"api_{wf.status.name if wf.status else ''}")


def body(type_: str, title: str) -> dict[str, Any]:
    return {"type": type_, "title": title, "fields": {}}


async def approve(api: httpx.AsyncClient, auth: Auth, request_id: str, user: str) -> dict:
    r = await api.post(
        f"/v1/requests/{request_id}/decisions", json={"action": "approve"}, headers=auth(user)
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_repeated_and_empty_steps_are_approved_automatically_and_audited(
    app: httpx.AsyncClient, auth: Auth
) -> None:
    r = await app.post("/v1/requests", json=body("route_options", "Skips"), headers=auth("am_li"))
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["current_approvers"] == ["sh_zhou"]
    view = await approve(app, auth, view["id"], "sh_zhou")
    # Board: nobody named, skipped; sales head: sh_zhou approved at Manager, skipped.
    assert view["current_approvers"] == ["sd_chen"]
    r = await app.get(f"/v1/requests/{view['id']}", headers=auth("am_li"))
    full = r.json()
    auto = [e for e in full["history"] if e["kind"] == "auto_approved"]
    assert [(e["actor"], e["comment"]) for e in auto] == [
        ("system", "approved automatically: nobody is named for this step"),
        ("system", "approved automatically: already approved at stage Manager"),
    ]
    board, head = full["stages"][1], full["stages"][2]
    assert board["status"] == head["status"] == "approved"
    assert head["slots"][0]["automatic"] == auto[1]["comment"]
    assert head["slots"][0]["decided_by"] == "sh_zhou"
    view = await approve(app, auth, view["id"], "sd_chen")
    assert view["status"] == "approved"
    inbox = await app.get("/v1/notifications", headers=auth("am_li"))
    assert inbox.status_code == 200, inbox.text
    mine = [n for n in inbox.json()["items"] if n["request_id"] == view["id"]]
    auto_notices = [n["payload"] for n in mine if n["kind"] == "auto_approved"]
    assert {(p["stage"], p["rule"]) for p in auto_notices} == {
        ("Board", "empty_skipped"),
        ("Sales head", "repeated"),
    }


async def test_a_step_naming_the_requester_is_skipped(app: httpx.AsyncClient, auth: Auth) -> None:
    r = await app.post("/v1/requests", json=body("route_options", "Own"), headers=auth("sh_zhou"))
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["current_approvers"] == ["dsd_liu"]  # sh_zhou's manager
    view = await approve(app, auth, view["id"], "dsd_liu")
    # Board skipped (nobody), sales head skipped (the requester): on to the director.
    assert view["current_approvers"] == ["sd_chen"]
    r = await app.get(f"/v1/requests/{view['id']}", headers=auth("sh_zhou"))
    history = r.json()["history"]
    rules = [s["rule"] for e in history if e["kind"] == "auto_approved" for s in e["data"]["slots"]]
    assert rules == ["empty_skipped", "requester_skipped"]


async def test_a_step_nobody_is_named_for_refuses_the_submission_naming_it(
    app: httpx.AsyncClient, auth: Auth
) -> None:
    r = await app.post("/v1/requests", json=body("route_refuse", "Nobody"), headers=auth("am_li"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "no_approver"
    assert "Countersign" in error["message"]
    assert error["details"]["stage"] == "countersign"
    assert error["details"]["slot"] == "role board"
    mine = await app.get("/v1/requests?type=route_refuse", headers=auth("am_li"))
    assert mine.json()["items"] == []  # nothing written, nothing started


async def test_the_preview_shows_which_rule_applies(app: httpx.AsyncClient, auth: Auth) -> None:
    r = await app.post("/v1/policies/route_refuse/preview", json={}, headers=auth("am_li"))
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["resolution"]["empty_slot"] == "refuse"
    countersign = preview["stages"][1]["slots"]
    assert [(s["label"], s["applies"], s["people"]) for s in countersign] == [
        ("role sales_head", "named", ["sh_zhou"]),
        ("role board", "refused", []),
    ]
    r = await app.post("/v1/policies/route_options/preview", json={}, headers=auth("sh_zhou"))
    applies = [s["slots"][0]["applies"] for s in r.json()["stages"]]
    assert applies == ["named", "empty_skipped", "requester_skipped", "named"]


async def test_the_requester_approves_their_own_step_where_the_policy_lets_them(
    app: httpx.AsyncClient, auth: Auth
) -> None:
    r = await app.post("/v1/requests", json=body("route_self", "Mine"), headers=auth("sh_zhou"))
    assert r.status_code == 201, r.text
    assert r.json()["current_approvers"] == ["sh_zhou"]
    view = await approve(app, auth, r.json()["id"], "sh_zhou")
    assert view["status"] == "approved"
    # Under a policy without the option the requester is never on their own step.
    r = await app.post("/v1/requests", json=body("route_options", "Not"), headers=auth("am_li"))
    refused = await app.post(
        f"/v1/requests/{r.json()['id']}/decisions",
        json={"action": "approve"},
        headers=auth("am_li"),
    )
    assert refused.status_code == 403, refused.text
