"""Personal information at rest: AES-256-GCM encryption with named keys, and a keyed hash
(blind index) to find a value without decrypting anything.

A ciphertext is ``<key id>:<base64(nonce || ciphertext+tag)>``; the column's purpose is the
associated data, so a value copied into another column does not decrypt. Rotation adds a
key, makes it current, and ``healthgrid keys rotate`` re-encrypts every column marked
``info={"pii": ...}``. The blind-index key does not rotate (the index would have to be
rebuilt from the plaintext); it is separate from the encryption keys.

MLPS level 3 (GB/T 22239-2019 数据保密性) asks for cryptographic protection of important
personal information at rest (../shared/specs/domain-rules.md §10.4). The issue names
AES-GCM; SM4-GCM is the national-algorithm alternative, not implemented yet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

SESSION_KEY = "healthgrid_keyring"


class PiiKeyError(RuntimeError):
    pass


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _decode_key(kid: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise PiiKeyError(f"PII key {kid!r} is not valid base64") from None
    if len(raw) != 32:
        raise PiiKeyError(f"PII key {kid!r} must be 32 bytes (AES-256), got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current: str
    index_key: bytes
    chain_key: bytes  # keys the audit trail's hash chain

    @classmethod
    def from_strings(cls, keys: dict[str, str], current: str, index_key: str) -> Keyring:
        if not keys:
            raise PiiKeyError("no PII encryption key is configured (HEALTHGRID_SECURITY__PII_KEYS)")
        if current not in keys:
            raise PiiKeyError(f"the current PII key {current!r} is not among the configured keys"
                            f" {sorted(keys)}")
        for kid in keys:
            if not kid or ":" in kid:
                raise PiiKeyError(f"PII key id {kid!r} must be non-empty and contain no ':'")
        if len(index_key) < 32:
            raise PiiKeyError("the blind-index key (HEALTHGRID_SECURITY__BLIND_INDEX_KEY) must have"
                            " at least 32 characters")
        # The audit chain is keyed from the blind-index key, which never rotates, so the
        # session secret can be changed without breaking verification of old rows.
        chain_key = hmac.new(index_key.encode(), b"healthgrid audit chain", hashlib.sha256).digest()
        return cls({k: _decode_key(k, v) for k, v in keys.items()}, current, index_key.encode(), chain_key)

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{self.current}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, token: str, purpose: str) -> str:
        kid, _, body = token.partition(":")
        if kid not in self.keys:
            raise PiiKeyError(f"value was encrypted with key {kid!r}, which is not configured")
        raw = base64.b64decode(body)
        try:
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except InvalidTag:
            raise PiiKeyError(f"a {purpose} value does not decrypt: altered, or in the wrong column")\
                from None

    def key_id(self, token: str) -> str:
        return token.partition(":")[0]

    def blind_index(self, value: str, purpose: str) -> str:
        """HMAC-SHA256 of the normalised value, per purpose, hex."""
        msg = f"{purpose}\x00{value.strip().upper()}".encode()
        return hmac.new(self.index_key, b"blind index\x00" + msg, hashlib.sha256).hexdigest()


def keyring(session: Session) -> Keyring:
    ring = session.info.get(SESSION_KEY)
    if ring is None:
        raise PiiKeyError("this database session has no PII keyring; build sessions with"
                        " security.session_info(settings)")
    return ring


def seal(session: Session, value: str | None, purpose: str) -> str | None:
    return None if value is None else keyring(session).encrypt(value, purpose)


def unseal(session: Session, token: str | None, purpose: str) -> str | None:
    return None if token is None else keyring(session).decrypt(token, purpose)


def blind(session: Session, value: str, purpose: str) -> str:
    return keyring(session).blind_index(value, purpose)


def dev_keys(data_dir: Path) -> dict[str, str]:
    """Development only: keys kept in ``<data_dir>/dev-keys.json``, made on first use, so a
    demo's data stays readable across restarts. Never used outside env=dev."""
    path = data_dir / "dev-keys.json"
    if path.exists():
        return json.loads(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = {"pii_key": new_key(), "blind_index_key": secrets.token_urlsafe(48)}
    path.write_text(json.dumps(keys))
    path.chmod(0o600)
    return keys
