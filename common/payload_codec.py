"""Encrypted Temporal payloads: AES-256-GCM, several keys for rotation (docs/encryption.md).

Every payload a client or worker sends to Temporal (workflow input, signals, updates,
queries' answers, activity arguments and results, failure details) goes through
:class:`EncryptionCodec` on its way out, so the server stores only ciphertext. An
encrypted payload is::

    metadata: {"encoding": "binary/encrypted", "encryption-key-id": "<key id>"}
    data:     12-byte random nonce || AES-GCM(key, nonce, original Payload bytes, aad=key id)

The key id names which of the configured keys encrypted it, so that a new key can
take over (the *active* key) while the old ones still decrypt the histories written
with them. A payload whose encoding is not ``binary/encrypted`` (histories written
before encryption, or by a process that was told to write plain payloads) is passed
through unchanged; one encrypted with a key that is not configured is refused with
an error naming the key id (never a key).

The keys come from settings (``APPROVALS_PAYLOAD_KEYS``, ``id:base64key`` items);
:func:`parse_payload_keys` validates them with errors that never repeat a key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class PayloadKeyError(ValueError):
    """The configured keys are unusable; the message names the setting, never a key."""


class PayloadDecryptionError(Exception):
    """An encrypted payload that cannot be decrypted with the configured keys."""


@dataclass(frozen=True)
class PayloadKeys:
    """The keys that decrypt (``keys``, by id) and the one that encrypts (``active``)."""

    keys: Mapping[str, bytes] = field(repr=False)
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise PayloadKeyError(
                f"APPROVALS_PAYLOAD_KEY_ID names {self.active!r}, which is not among the "
                f"ids of APPROVALS_PAYLOAD_KEYS ({', '.join(sorted(self.keys)) or 'none'})"
            )
        for key_id, key in self.keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise PayloadKeyError(f"payload key id {key_id!r} is not a valid id")
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(
                    f"payload key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )

    @property
    def encoded(self) -> list[str]:
        """Every key as base64 (standard and URL-safe): what must never reach a log."""
        return sorted(
            {base64.b64encode(k).decode() for k in self.keys.values()}
            | {base64.urlsafe_b64encode(k).decode() for k in self.keys.values()}
        )


def parse_payload_keys(spec: str, active: str = "") -> PayloadKeys:
    """``"id1:base64key1,id2:base64key2"`` (commas, spaces or new lines between items).

    ``active`` is the id that encrypts; empty: allowed only when there is one key.

    Raises:
        PayloadKeyError: naming the faulty item by its id or position, never its key.
    """
    keys: dict[str, bytes] = {}
    items = [item for item in re.split(r"[,\s]+", spec) if item]
    if not items:
        raise PayloadKeyError("APPROVALS_PAYLOAD_KEYS holds no key")
    for position, item in enumerate(items, start=1):
        key_id, colon, encoded = item.partition(":")
        if not colon or not key_id or not encoded:
            raise PayloadKeyError(
                f"APPROVALS_PAYLOAD_KEYS item {position} is not id:base64key "
                "(generate one with `approvals payload-key`)"
            )
        if not _KEY_ID.fullmatch(key_id):
            raise PayloadKeyError(
                f"APPROVALS_PAYLOAD_KEYS item {position}: the id must be 1-64 letters, "
                "digits, '.', '_' or '-'"
            )
        if key_id in keys:
            raise PayloadKeyError(f"APPROVALS_PAYLOAD_KEYS names key id {key_id!r} twice")
        try:
            raw = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(
                f"APPROVALS_PAYLOAD_KEYS key {key_id!r} is not valid base64"
            ) from None
        if len(raw) != KEY_BYTES:
            raise PayloadKeyError(
                f"APPROVALS_PAYLOAD_KEYS key {key_id!r} is {len(raw)} bytes; AES-256 needs "
                f"{KEY_BYTES} (generate one with `approvals payload-key`)"
            )
        keys[key_id] = raw
    if not active:
        if len(keys) > 1:
            raise PayloadKeyError(
                "APPROVALS_PAYLOAD_KEY_ID must name the key that encrypts when "
                "APPROVALS_PAYLOAD_KEYS holds more than one"
            )
        active = next(iter(keys))
    return PayloadKeys(keys=keys, active=active)


def new_key() -> str:
    """A fresh random AES-256 key, base64."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the active key; decrypts with the key its id names."""

    def __init__(self, keys: PayloadKeys) -> None:
        self._active = keys.active
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    @property
    def active_key_id(self) -> str:
        return self._active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._active.encode()
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption, or plain on purpose
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which is not configured "
                f"(APPROVALS_PAYLOAD_KEYS has {', '.join(sorted(self._ciphers))}): keep "
                "every key that encrypted a history still within retention"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload with key id {key_id!r} does not decrypt: the key configured "
                "under that id is not the one that encrypted it, or the payload is damaged"
            ) from None
        return Payload.FromString(plain)
