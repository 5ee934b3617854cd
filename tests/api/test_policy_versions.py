"""A running request keeps the route and version it was submitted under.

The policy file changes and the API and the worker restart; the request in
flight still follows the shipped version, while a new submission takes the next.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.support.api import Auth, make_settings, running, temporal_target
from tests.support.paths import ROOT
from tests.support.policy_versions import version_of
from worker.main import build_worker

BODY = {
    "type": "big_customer_contract",
    "title": "Version pinning",
    "customer": "Pinned Ltd",
    "amount": "250000",
    "fields": {"contract_no": "HT-V1", "settlement_floor_price": "1"},
}


def stage_keys(view: dict) -> list[str]:
    return [s["key"] for s in view["stages"]]


async def test_policy_change_and_restart_do_not_reroute_a_running_request(
    tmp_path: Path,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    demo_org: None,
    auth: Auth,
):
    policy_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    settings = make_settings(
        pg_url, temporal_target(temporal_local), APPROVALS_POLICY_DIR=policy_dir
    )

    async with (
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
        running(create_app(settings)) as api,
    ):
        r = await api.post("/v1/requests", json=BODY, headers=auth("am_li"))
        assert r.status_code == 201, r.text
        first = r.json()
    shipped = version_of("big_customer_contract")
    assert first["policy_version"] == shipped
    assert stage_keys(first) == ["big_customer_dept_sign", "deputy_sales_director_approve"]

    # The next version: the middle tier now also needs the sales director.
    path = policy_dir / "big_customer_contract.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["version"] = shipped + 1
    for stage in doc["stages"]:
        if stage["key"] == "sales_director_approve":
            stage["when"] = {"field": "amount", "op": "gt", "value": 100000}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    # Everything restarts on the changed files.
    async with (
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
        running(create_app(settings)) as api,
    ):
        r = await api.get(f"/v1/requests/{first['id']}", headers=auth("am_li"))
        assert r.json()["policy_version"] == shipped
        assert stage_keys(r.json()) == stage_keys(first)
        for approver in ("bcd_zheng", "dsd_liu"):
            r = await api.post(
                f"/v1/requests/{first['id']}/decisions",
                json={"action": "approve"},
                headers=auth(approver),
            )
            assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"  # the shipped route: no sales director

        r = await api.post(
            "/v1/requests", json={**BODY, "title": "Under v2"}, headers=auth("am_li")
        )
        assert r.status_code == 201, r.text
        assert r.json()["policy_version"] == shipped + 1
        assert stage_keys(r.json()) == [
            "big_customer_dept_sign",
            "deputy_sales_director_approve",
            "sales_director_approve",
        ]
