"""The payload codec: AES-GCM with a key id, several keys, plain payloads passed through."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from common.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    parse_payload_keys,
)
from common.redaction import configured_secrets, install_log_redaction
from common.settings import Settings

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()


def codec(spec: str, active: str = "") -> EncryptionCodec:
    return EncryptionCodec(parse_payload_keys(spec, active))


payloads = st.builds(
    Payload,
    metadata=st.dictionaries(st.text(min_size=1, max_size=20), st.binary(max_size=40), max_size=4),
    data=st.binary(max_size=2000),
)


@given(payloads)
def test_decode_of_encode_is_the_payload_itself(payload: Payload) -> None:
    c = codec(f"k1:{OLD}")
    [sealed] = asyncio.run(c.encode([payload]))  # the codec's interface, as the SDK calls it
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    if len(payload.data) >= 8:
        assert payload.data not in sealed.data
    assert asyncio.run(c.decode([sealed])) == [payload]


async def test_each_encryption_takes_a_fresh_nonce() -> None:
    c = codec(f"k1:{OLD}")
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'"ACME Ltd"')
    first, second = await c.encode([p, p])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_a_plain_payload_is_decoded_unchanged() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"customer": "ACME"}')
    assert await codec(f"k1:{OLD}").decode([plain]) == [plain]


async def test_after_a_rotation_old_payloads_decode_and_new_ones_use_the_new_key() -> None:
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'"250000"')
    [old] = await codec(f"old:{OLD}").encode([p])
    rotated = codec(f"old:{OLD},new:{NEW}", active="new")
    assert await rotated.decode([old]) == [p]
    [new] = await rotated.encode([p])
    assert new.metadata[KEY_ID_METADATA] == b"new"
    assert await rotated.decode([new]) == [p]


async def test_a_payload_of_an_unknown_key_id_is_refused_naming_the_id() -> None:
    [sealed] = await codec(f"gone:{OLD}").encode([Payload(data=b"x")])
    with pytest.raises(PayloadDecryptionError, match="'gone', which is not configured"):
        await codec(f"k2:{NEW}").decode([sealed])


async def test_a_payload_under_the_right_id_but_another_key_is_refused() -> None:
    [sealed] = await codec(f"k1:{OLD}").encode([Payload(data=b"x")])
    with pytest.raises(PayloadDecryptionError, match="does not decrypt"):
        await codec(f"k1:{NEW}").decode([sealed])


async def test_the_key_id_is_bound_to_the_ciphertext() -> None:
    both = codec(f"a:{OLD},b:{OLD}", active="a")
    [sealed] = await both.encode([Payload(data=b"x")])
    sealed.metadata[KEY_ID_METADATA] = b"b"  # same key, other id: refused all the same
    with pytest.raises(PayloadDecryptionError):
        await both.decode([sealed])


@pytest.mark.parametrize(
    ("spec", "active", "message"),
    [
        ("", "", "holds no key"),
        ("nokey", "", "item 1 is not id:base64key"),
        (f"k1:{OLD},k1:{NEW}", "k1", "names key id 'k1' twice"),
        ("k1:not*base64", "", "'k1' is not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "", "'k1' is 5 bytes"),
        (f"k1:{OLD},k2:{NEW}", "", "must name the key that encrypts"),
        (f"k1:{OLD}", "k9", "names 'k9', which is not among"),
        (f"bad/id:{OLD}", "", "the id must be"),
    ],
)
def test_bad_keys_are_refused_with_a_clear_error_that_never_shows_a_key(
    spec: str, active: str, message: str
) -> None:
    with pytest.raises(PayloadKeyError, match=message) as caught:
        parse_payload_keys(spec, active)
    assert OLD not in str(caught.value) and NEW not in str(caught.value)


def test_url_safe_base64_keys_are_accepted() -> None:
    key = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    assert parse_payload_keys(f"k:{key}").keys["k"] == b"\xfb" * 32


PRODUCTION = {
    "APPROVALS_ENV": "production",
    "APPROVALS_TOKEN_SECRET": "t" * 40,
    "APPROVALS_SIGNING_SECRET": "s" * 40,
    "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
}


def test_production_refuses_to_start_without_payload_keys_unless_plain_is_allowed() -> None:
    with pytest.raises(ValidationError, match="APPROVALS_PAYLOAD_KEYS must be set"):
        Settings(**PRODUCTION)  # type: ignore[arg-type]
    plain = Settings(**PRODUCTION, APPROVALS_ALLOW_PLAIN_PAYLOADS=True)  # type: ignore[arg-type]
    assert plain.payload_keyring is None


def test_production_refuses_bad_keys_at_start_up_without_echoing_them() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**PRODUCTION, APPROVALS_PAYLOAD_KEYS=f"a:{OLD},b:{NEW}")  # type: ignore[arg-type]
    assert "APPROVALS_PAYLOAD_KEY_ID must name" in str(caught.value)
    assert OLD not in str(caught.value) and NEW not in str(caught.value)


def test_development_encrypts_with_the_development_key() -> None:
    keys = Settings(APPROVALS_ENV="development").payload_keyring
    assert keys is not None and keys.active == "dev"


def test_rotation_settings_name_the_active_key() -> None:
    s = Settings(
        **PRODUCTION,  # type: ignore[arg-type]
        APPROVALS_PAYLOAD_KEYS=f"old:{OLD} new:{NEW}",
        APPROVALS_PAYLOAD_KEY_ID="new",
    )
    keys = s.payload_keyring
    assert keys is not None and keys.active == "new" and set(keys.keys) == {"old", "new"}


def test_payload_keys_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    s = Settings(
        **PRODUCTION,  # type: ignore[arg-type]
        APPROVALS_PAYLOAD_KEYS=f"old:{OLD},new:{urlsafe}",
        APPROVALS_PAYLOAD_KEY_ID="new",
    )
    install_log_redaction(configured_secrets(s))
    standard = base64.b64encode(b"\xfb" * 32).decode()
    with caught_at_info(caplog):
        logging.getLogger("approvals.test").info(
            "keys %s and %s and %s", s.payload_keys, standard, OLD.rstrip("=")
        )
    text = caplog.text
    assert OLD.rstrip("=") not in text and urlsafe not in text and standard not in text


def caught_at_info(caplog: pytest.LogCaptureFixture):
    return caplog.at_level(logging.INFO, logger="approvals.test")


ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for folder in ("api", "bench", "cli", "common", "notify", "worker", "activities", "tests")
    for p in (ROOT / folder).rglob("*.py")
]


def test_no_process_builds_a_converter_of_its_own() -> None:
    """A client without the codec writes plain text and cannot read the others' payloads:
    every client, worker, test server and replayer takes common.temporal.data_converter."""
    builders = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if "pydantic_data_converter" in p.read_text(encoding="utf-8") and p != Path(__file__)
    ]
    assert builders == ["common/temporal.py"]
    without = []
    for p in SOURCES:
        text = p.read_text(encoding="utf-8")
        for call in re.finditer(
            r"(Client\.connect|start_local|start_time_skipping|Replayer)\(", text
        ):
            args = text[call.end() : call.end() + 400].split("\n)", 1)[0]
            if "data_converter=" not in args and "# no codec" not in args:
                without.append(f"{p.relative_to(ROOT)}: {call.group(0)}")
    assert without == []


async def test_a_process_writing_plain_payloads_says_so(caplog: pytest.LogCaptureFixture) -> None:
    from common.temporal import connect
    from tests.support.servers import closed_port

    plain = Settings(
        APPROVALS_ENV="development",
        APPROVALS_ALLOW_PLAIN_PAYLOADS=True,
        TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}",
    )
    with (
        caplog.at_level(logging.WARNING, logger="approvals.temporal"),
        pytest.raises(ConnectionError),
    ):
        await connect(plain)
    assert "written in plain text" in caplog.text
