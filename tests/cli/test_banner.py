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
