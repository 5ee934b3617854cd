"""What `approvals dev` prints: the links and tokens a newcomer starts from."""

from pathlib import Path

from cli.devstack import banner
from common.settings import Settings


def test_banner_names_every_url_and_a_ready_inbox_link() -> None:
    settings = Settings(APPROVALS_API_PORT=8123, APPROVALS_TEMPORAL_UI_PORT=8244)
    tokens = [
        ("am_li", "Li", ["account_manager"], "tok-am"),
        ("bcd_zheng", "Zheng", ["big_customer_dept"], "tok-bcd"),
    ]
    text = banner(settings, tokens, Path("/tmp/dev.env"))
    assert "http://127.0.0.1:8123/docs" in text
    assert "http://localhost:8244/namespaces/default/workflows" in text
    assert "Authorization: Bearer tok-am" in text
    assert "http://127.0.0.1:8123/inbox#token=tok-bcd" in text


def test_the_dev_stacks_worker_children_get_distinct_metrics_ports_shown_in_the_banner() -> None:
    from cli.dev_metrics import metrics_env, metrics_lines

    envs = metrics_env(Settings())
    addresses = [address for env in envs.values() for address in env.values()]
    assert len(set(addresses)) == 3, addresses  # the deliverer runs no Temporal SDK
    assert "APPROVALS_WORKER_METRICS_ADDRESS" not in envs["deliverer"]
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    lines = metrics_lines("http://127.0.0.1:8000", envs)
    text = banner(Settings(), [("am_li", "Li", [], "tok")], Path("/tmp/dev.env"), lines)
    assert "http://127.0.0.1:8000/metrics" in text
    for address in addresses:
        assert f"http://{address}/metrics" in text


def test_a_metrics_address_turned_off_stays_off_under_the_dev_stack() -> None:
    from cli.dev_metrics import metrics_env

    envs = metrics_env(Settings(APPROVALS_WORKER_METRICS_ADDRESS=""))
    assert envs["worker"]["APPROVALS_WORKER_METRICS_ADDRESS"] == ""
    assert all(env["APPROVALS_METRICS_ADDRESS"] for env in envs.values())
