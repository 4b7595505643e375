"""Service tokens: how one Renkei deployment asks another about a municipality it holds.

When a municipality runs its own deployment, the prefecture's federation calls it over
HTTP (``/federation/tenant``) with a short-lived JWT (HS256 with
``settings.RENKEI_SERVICE_TOKEN_KEY``, shared between the deployments): issuer
``renkei-federation``, audience = the municipality code, subject = the asking prefecture,
expiry one minute, and ``req`` = SHA-256 of the request body, so a token cannot be replayed
for another municipality or another question. The remote side verifies all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import jwt
from django.conf import settings

SERVICE_TOKEN_ISSUER = "renkei-federation"  # noqa: S105
SERVICE_TOKEN_TTL_SECONDS = 60
SERVICE_TOKEN_LEEWAY_SECONDS = 5


class ServiceTokenError(Exception):
    """A service token that does not verify; the message says why (Japanese)."""


def request_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a tenant request (binds a token to one question)."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _service_key() -> str:
    key = settings.RENKEI_SERVICE_TOKEN_KEY
    if not key:
        raise ServiceTokenError(
            "サービス間トークンの鍵（RENKEI_SERVICE_TOKEN_KEY）が設定されていません。"
        )
    return key


def issue_service_token(
    audience: str,
    *,
    prefecture_code: str,
    digest: str,
    ttl_seconds: int = SERVICE_TOKEN_TTL_SECONDS,
) -> str:
    """A short-lived token for asking municipality ``audience`` one question."""
    now = int(time.time())
    claims = {
        "iss": SERVICE_TOKEN_ISSUER,
        "aud": audience,
        "sub": f"prefecture:{prefecture_code}",
        "iat": now,
        "exp": now + int(ttl_seconds),
        "jti": secrets.token_hex(8),
        "req": digest,
    }
    return jwt.encode(claims, _service_key(), algorithm="HS256")


def verify_service_token(token: str, *, audience: str, digest: str) -> dict[str, Any]:
    """The claims of a valid token for this municipality and this request, else
    ServiceTokenError with a Japanese reason."""
    try:
        claims = jwt.decode(
            token,
            _service_key(),
            algorithms=["HS256"],
            audience=audience,
            issuer=SERVICE_TOKEN_ISSUER,
            leeway=SERVICE_TOKEN_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "iat", "exp", "req"]},
        )
    except jwt.ExpiredSignatureError:
        raise ServiceTokenError("サービス間トークンの有効期限が切れています。") from None
    except jwt.InvalidAudienceError:
        raise ServiceTokenError("このサービス間トークンは別の自治体あてです。") from None
    except jwt.InvalidTokenError as e:
        raise ServiceTokenError(f"サービス間トークンが無効です（{type(e).__name__}）。") from None
    if claims["exp"] - claims["iat"] > SERVICE_TOKEN_TTL_SECONDS * 5:
        raise ServiceTokenError("サービス間トークンの有効期間が長すぎます。")
    if not hmac.compare_digest(str(claims["req"]), digest):
        raise ServiceTokenError("サービス間トークンは別の照会のために発行されています。")
    sub = str(claims["sub"])
    if sub != f"prefecture:{audience[:2]}":
        raise ServiceTokenError(
            "このサービス間トークンの発行元はこの自治体の都道府県ではありません。"
        )
    return claims
