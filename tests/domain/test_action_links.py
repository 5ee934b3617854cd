"""Action-link tokens: what is minted verifies, and anything else is refused with its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.action_links import (
    ACTIONS,
    ActionLink,
    LinkRefused,
    Refusal,
    check_form_nonce,
    derive_key,
    form_nonce,
    mint,
    verify,
)

KEY = derive_key("a-test-secret-of-more-than-32-characters")
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)

links = st.builds(
    ActionLink,
    link_id=st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=16, max_size=64
    ),
    user_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z"),
    request_id=st.uuids().map(str),
    stage_index=st.integers(0, 9_999),
    step_since=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    action=st.sampled_from(ACTIONS),
    expires_at=st.integers(1, 10**9).map(lambda s: NOW + timedelta(seconds=s)),
)


def _link(**changes: object) -> ActionLink:
    values: dict[str, object] = {
        "link_id": "L" * 22,
        "user_id": "bcd_zheng",
        "request_id": str(uuid.uuid4()),
        "stage_index": 0,
        "step_since": NOW - timedelta(hours=1, microseconds=7),
        "action": "approve",
        "expires_at": NOW + timedelta(hours=72),
    }
    values.update(changes)
    return ActionLink(**values)  # type: ignore[arg-type]


def _refusal(token: object, key: bytes = KEY, now: datetime = NOW) -> Refusal:
    with pytest.raises(LinkRefused) as caught:
        verify(key, token, now)
    return caught.value.reason


@given(links)
def test_a_minted_link_verifies_to_exactly_what_was_minted(link: ActionLink) -> None:
    assert verify(KEY, mint(KEY, link), NOW) == link


@given(links, st.data())
def test_any_change_to_a_token_is_refused(link: ActionLink, data: st.DataObject) -> None:
    token = mint(KEY, link)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[position]))
    tampered = token[:position] + replacement + token[position + 1 :]
    assert _refusal(tampered) in (Refusal.TAMPERED, Refusal.MALFORMED)


@given(links, st.text(max_size=5, min_size=1), st.booleans())
def test_a_token_with_text_added_or_cut_is_refused(
    link: ActionLink, extra: str, at_end: bool
) -> None:
    token = mint(KEY, link)
    assert _refusal(token + extra if at_end else extra + token) in (
        Refusal.TAMPERED,
        Refusal.MALFORMED,
    )
    assert _refusal(token[: -len(extra)]) in (Refusal.TAMPERED, Refusal.MALFORMED)


@given(links, links)
def test_a_body_signed_for_another_link_does_not_pass(a: ActionLink, b: ActionLink) -> None:
    body_a, _, _ = mint(KEY, a).partition(".")
    _, _, sig_b = mint(KEY, b).partition(".")
    if body_a != mint(KEY, b).partition(".")[0]:
        assert _refusal(f"{body_a}.{sig_b}") is Refusal.TAMPERED


@given(links)
def test_a_token_signed_with_another_key_is_tampered(link: ActionLink) -> None:
    other = derive_key("another-secret-of-more-than-32-characters")
    assert _refusal(mint(other, link)) is Refusal.TAMPERED


def test_the_links_key_is_not_the_secret_itself() -> None:
    secret = "a-test-secret-of-more-than-32-characters"
    assert derive_key(secret) != secret.encode()
    assert len(derive_key(secret)) == 32


@given(st.one_of(st.text(max_size=300), st.binary().map(repr), st.none(), st.integers()))
def test_arbitrary_input_is_refused_never_raised(junk: object) -> None:
    assert _refusal(junk) in (Refusal.MALFORMED, Refusal.TAMPERED)


def test_malformed_tokens_are_malformed() -> None:
    good = mint(KEY, _link())
    body, _, sig = good.partition(".")
    for token in (
        "",
        ".",
        body,
        f"{body}.",
        f".{sig}",
        f"{body}.{sig[:-1]}",
        f"{body}+.{sig}",
        f"{body}.{sig}=",
        "x" * 2000,
    ):
        assert _refusal(token) is Refusal.MALFORMED, token


def test_a_link_expires_at_its_expiry_and_not_before() -> None:
    link = _link(expires_at=NOW + timedelta(hours=1))
    token = mint(KEY, link)
    assert verify(KEY, token, NOW + timedelta(minutes=59, seconds=59)) == link
    assert _refusal(token, now=NOW + timedelta(hours=1)) is Refusal.EXPIRED
    assert _refusal(token, now=NOW + timedelta(days=10)) is Refusal.EXPIRED


def test_expiry_is_checked_only_after_the_signature() -> None:
    token = mint(KEY, _link(expires_at=NOW - timedelta(hours=1)))
    body, _, sig = token.partition(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert _refusal(f"{body}.{flipped}") is Refusal.TAMPERED
    assert _refusal(token) is Refusal.EXPIRED


@pytest.mark.parametrize(
    "change",
    [
        {"link_id": "short"},
        {"user_id": "no spaces"},
        {"request_id": "not-a-uuid"},
        {"stage_index": -1},
        {"step_since": datetime(2026, 11, 30, 5, 0)},
        {"step_since": datetime(1969, 12, 31, tzinfo=UTC)},
        {"action": "withdraw"},
        {"expires_at": datetime(2026, 12, 1)},
    ],
)
def test_mint_refuses_what_no_link_may_hold(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        mint(KEY, _link(**change))


def test_the_form_nonce_belongs_to_its_token() -> None:
    a, b = mint(KEY, _link()), mint(KEY, _link(action="reject"))
    assert check_form_nonce(KEY, a, form_nonce(KEY, a))
    assert not check_form_nonce(KEY, a, form_nonce(KEY, b))
    assert not check_form_nonce(KEY, a, None)
    assert not check_form_nonce(KEY, a, "")
    assert not check_form_nonce(KEY, a, "é" * 43)


def test_a_link_names_the_round_of_its_step_to_the_microsecond() -> None:
    since = datetime(2026, 11, 30, 5, 59, 58, 999_999, tzinfo=UTC)
    link = verify(KEY, mint(KEY, _link(step_since=since)), NOW)
    assert link.step_since == since
    later = verify(KEY, mint(KEY, _link(step_since=since + timedelta(microseconds=1))), NOW)
    assert later.step_since != since


def _signed(claims: dict[str, object]) -> str:
    """A token as an earlier version of this module made it, with the same key."""
    raw = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    mac = hmac.new(KEY, body.encode(), hashlib.sha256).digest()
    return f"{body}." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def test_a_genuine_link_of_the_first_version_names_no_round_and_is_outdated() -> None:
    v1 = {
        "v": 1,
        "l": "L" * 22,
        "u": "bcd_zheng",
        "r": str(uuid.uuid4()),
        "s": 0,
        "a": "approve",
        "e": int((NOW + timedelta(hours=1)).timestamp()),
    }
    assert _refusal(_signed(v1)) is Refusal.OUTDATED
    # This version's claims without a round are no link at all.
    assert _refusal(_signed({**v1, "v": 2})) is Refusal.TAMPERED
    assert _refusal(_signed({**v1, "v": 2, "n": "soon"})) is Refusal.TAMPERED
    current = verify(KEY, _signed({**v1, "v": 2, "n": 1_700_000_000_000_001}), NOW)
    assert current.step_since == datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)
