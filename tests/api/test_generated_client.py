"""A client generated from ``/openapi.json`` by openapi-python-client works end to end.

The document is the API's contract for every client that is not hand-written: if a
schema clashes or an operation cannot be generated, the generator drops it with a
warning and the client silently lacks it. So the test generates the client from
the running app's own document, refuses any generator warning, and drives a
request from submission to approval with it against the real worker.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from api.app import create_app
from common.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")

PACKAGE = "approvals_api_client"
BIN = Path(sys.executable).parent


def _generate(spec: dict[str, Any], into: Path) -> subprocess.CompletedProcess[str]:
    path = into / "openapi.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(path),
            "--output-path",
            str(into / "client"),
            "--meta",
            "none",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        # Its post-generation hooks run ruff, which lives beside this interpreter.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=120,
        check=False,
    )


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Callable[[str], ModuleType]]:
    """Import modules of the generated package (put on sys.path by the test)."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}{name}")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


async def test_a_generated_client_submits_and_approves(
    settings: Settings,
    auth: Callable[[str], dict[str, str]],
    tmp_path: Path,
    generated: Callable[[str], ModuleType],
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as raw:
            spec = (await raw.get("/openapi.json")).json()

        result = _generate(spec, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
        (tmp_path / "client").rename(tmp_path / PACKAGE)

        client_mod = generated(".client")
        models = generated(".models")
        submit = generated(".api.requests.submit_request_v1_requests_post")
        decide = generated(".api.requests.decide_v1_requests_request_id_decisions_post")
        get_one = generated(".api.requests.get_request_v1_requests_request_id_get")
        preferences = generated(".api.me.my_preferences_v1_me_preferences_get")

        def as_user(user: str) -> Any:
            token = auth(user)["Authorization"].removeprefix("Bearer ")
            return client_mod.AuthenticatedClient(
                base_url="http://api", token=token, httpx_args={"transport": transport}
            )

        customer = f"Generated client {uuid.uuid4().hex[:6]}"
        body = models.Submission.from_dict(
            {
                "type": "big_customer_contract",
                "title": "Contract through the generated client",
                "customer": customer,
                "amount": "250000",
                "fields": {"contract_no": "C-2026-9", "settlement_floor_price": "180000"},
            }
        )
        async with as_user("am_li") as am_li:
            answer = await submit.asyncio_detailed(
                client=am_li, body=body, idempotency_key=f"gen-{uuid.uuid4().hex}"
            )
            assert answer.status_code == 201, answer.content
            view = answer.parsed
            assert isinstance(view, models.RequestView)
            assert view.status == "in_review"
            assert view.current_approvers == ["bcd_zheng"]
            # The operations the generator once dropped over a schema clash are there.
            prefs = await preferences.asyncio(client=am_li)
            assert isinstance(prefs, models.Preferences)

        for user in ("bcd_zheng", "dsd_liu"):
            async with as_user(user) as approver:
                decided = await decide.asyncio_detailed(
                    view.id,
                    client=approver,
                    body=models.DecisionBody.from_dict({"action": "approve", "comment": "ok"}),
                )
                assert decided.status_code == 200, decided.content

        async with as_user("am_li") as am_li:
            final = await get_one.asyncio(view.id, client=am_li)
            assert isinstance(final, models.RequestView)
            assert final.status == "approved"
            kinds = [e.kind for e in final.history]
            assert kinds.count("approved") == 2
