"""Per-tenant pseudonymization keys, encrypted at rest with the platform's master key.

A tenant's key lives in the public schema, encrypted (Fernet); it is never written to the
tenant's own schema, so a dump of one tenant schema cannot be re-identified on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from functools import cache

from cryptography.fernet import Fernet
from django.conf import settings


@cache
def _master() -> Fernet:
    # From the environment, or generated once under RENKEI_HOME (renkei.platform.deploy_secrets).
    return Fernet(settings.RENKEI_MASTER_KEY.encode())


def new_encrypted_tenant_key() -> str:
    """A fresh 256-bit HMAC key, encrypted for storage in the public schema."""
    return _master().encrypt(secrets.token_bytes(32)).decode()


def encrypt_json(value) -> str:
    """Encrypt a JSON-serialisable value with the master key (stored secrets such as a
    connector's client secret)."""
    return _master().encrypt(json.dumps(value, ensure_ascii=False).encode()).decode()


def decrypt_json(encrypted: str):
    return json.loads(_master().decrypt(encrypted.encode()).decode())


def _decrypt(encrypted: str) -> bytes:
    return _master().decrypt(encrypted.encode())


_decrypt_cached = cache(_decrypt)


def pseudonym(encrypted_key: str, source_system: str, source_id: str) -> str:
    """Keyed HMAC-SHA256 of (source system, source id), as 32 hex characters (128 bits)."""
    message = f"{source_system}\x1f{source_id}".encode()
    return hmac.new(_decrypt_cached(encrypted_key), message, hashlib.sha256).hexdigest()[:32]
