"""API tokens for the tenant GraphQL API: issue, authenticate, revoke.

Design (why it looks like this):

* **Hashed at rest.** A token is ``rk_`` + 32 random bytes (urlsafe base64). Only its SHA-256
  is stored; the secret is returned once by ``do_issue_token`` and cannot be shown again. A plain
  hash (no salt, no slow KDF) is right here: the secret has 256 bits of entropy, so nothing can
  be guessed offline, and lookups stay one indexed query.
* **Scoped.** A token belongs to one municipality and acts with one role. Used against any
  other municipality it is refused, whatever else it may do.
* **Never more than its user.** The role must be one the user holds there (a tenant admin may
  also issue board-analyst tokens, which can only read aggregates). Memberships are checked on
  every use, so removing a membership or deactivating a user disables their tokens at once.
* **Expiry** is mandatory (``MAX_LIFETIME`` at most); revocation is immediate.
* **Widget tokens** are read-only and metric-scoped: they can read the metrics they name and
  nothing else (the GraphQL layer enforces "metric queries only"); any token may also be
  limited to a list of metrics.
* **Allowed origins.** A browser sends ``Origin`` with every cross-site request. A token used
  from a page of any origin other than the platform's own and those listed on the token is
  refused, and CORS headers are only ever sent for a listed origin (without credentials:
  cookies never travel cross-site). Widget tokens embedded in another site list that site.
* **No second factor through a token**: its principal never has step-up, so sensitive items
  are never readable with a token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from renkei.accounts import policy
from renkei.accounts.models import SCHOOL_ROLES, ApiToken, IngestToken, Membership, Role
from renkei.platform import audit
from renkei.platform.audit import Actor

TOKEN_PREFIX = "rk_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret
DEFAULT_LIFETIME = dt.timedelta(days=90)
MAX_LIFETIME = dt.timedelta(days=366)
# Touch last_used_at at most this often: one UPDATE per request would be a write per query.
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)

REFUSED = "API トークンが無効です。"
REFUSED_UNKNOWN = REFUSED + "トークンを確認してください（発行時に一度だけ表示されたものです）。"
REFUSED_OTHER_TENANT = (
    "この API トークンはこの自治体では使えません（発行した自治体でのみ有効です）。"
)
# Lazy: translated when the refusal is shown (the push API answers in English on request).
REFUSED_EXPIRED = gettext_lazy(
    "API トークンの有効期限が切れています。新しいトークンを発行してください。"
)
REFUSED_REVOKED = gettext_lazy("API トークンは失効しています。新しいトークンを発行してください。")
REFUSED_NO_MEMBERSHIP = "API トークンの利用者は、この自治体でこの役割をもう持っていません。"
REFUSED_ORIGIN = (
    "このトークンは、このサイト（{origin}）からは使えません。"
    "トークンの「利用を許可するサイト」に登録されたサイトからのみ使えます。"
)


class TokenError(ValueError):
    """A token cannot be issued as asked; the message says why (Japanese)."""


class TokenRefused(Exception):
    """A presented token is not accepted; the message is shown to the client."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _held_roles(user, municipality) -> set[str]:
    return set(
        Membership.objects.filter(user=user, municipality=municipality).values_list(
            "role", flat=True
        )
    )


def _may_carry(held: set[str], role: str) -> bool:
    """A token carries a role its user holds, or (for an admin) the aggregate-only role."""
    return role in held or (role == Role.BOARD_ANALYST and Role.TENANT_ADMIN in held)


MAX_ORIGIN_LENGTH = 200  # ApiToken.allowed_origins


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it in ``Origin``; TokenError
    (Japanese) for anything else (a path, a query, a wildcard, another scheme)."""
    value = text.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or "*" in value
    ):
        raise TokenError(
            f"「{text.strip()}」はサイトのオリジンではありません。"
            "https://example.jp または http://127.0.0.1:8080 の形で書いてください"
            "（パスや * は書けません）。"
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    else:
        try:  # browsers send an internationalised name as punycode (例え.jp -> xn--r8jz45g.jp)
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TokenError(
                f"「{text.strip()[:60]}」のホスト名はドメイン名として正しくありません"
                "（区切りの間は 63 文字まで）。"
            ) from None
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    if len(origin) > MAX_ORIGIN_LENGTH:
        raise TokenError(f"「{text.strip()[:40]}…」は長すぎます（{MAX_ORIGIN_LENGTH} 文字まで）。")
    return origin


def origin_allowed(token: ApiToken, origin: str | None, own_origin: str) -> bool:
    """May a request with this ``Origin`` header use the token? No header (not a browser's
    cross-site request) and the platform's own origin are always fine."""
    if not origin:
        return True
    try:
        origin = normalize_origin(origin)
    except TokenError:
        return False  # "null" (sandboxed frames, file:// pages) or garbage
    return origin == own_origin or origin in token.allowed_origins


@transaction.atomic
def do_issue_token(
    user,
    municipality,
    *,
    actor: Actor,
    name: str,
    role: str | None = None,
    metrics: Sequence[str] = (),
    widget: bool = False,
    allowed_origins: Sequence[str] = (),
    expires_in: dt.timedelta = DEFAULT_LIFETIME,
) -> IssuedToken:
    """Create a token and return it with its secret (the only time the secret exists).

    ``role`` defaults to the user's one role in the municipality; a user with several must
    choose. Widget tokens must name their metrics. ``allowed_origins`` are the sites whose
    pages may use the token from a browser.
    """
    held = _held_roles(user, municipality)
    if role is None:
        if len(held) != 1:
            raise TokenError("この自治体での役割が 1 つに決まりません。役割を指定してください。")
        role = next(iter(held))
    if not _may_carry(held, role):
        raise TokenError(
            f"この自治体で役割「{role}」を持っていないため、そのトークンは発行できません。"
        )
    metric_names = sorted({m.strip() for m in metrics if m.strip()})
    if widget and not metric_names:
        raise TokenError("ウィジェット用トークンには、読める指標を 1 つ以上指定してください。")
    origins = sorted({normalize_origin(o) for o in allowed_origins if o.strip()})
    if not (dt.timedelta(0) < expires_in <= MAX_LIFETIME):
        raise TokenError(f"有効期間は {MAX_LIFETIME.days} 日以内で指定してください。")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        user=user,
        municipality=municipality,
        role=role,
        kind=ApiToken.Kind.WIDGET if widget else ApiToken.Kind.API,
        metrics=metric_names,
        allowed_origins=origins,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        expires_at=timezone.now() + expires_in,
    )
    audit.record(
        actor,
        "token.issue",
        municipality_code=municipality.code,
        target=_audit_target(token),
        changes={
            "user": user.get_username(),
            "role": role,
            "kind": token.kind,
            "metrics": metric_names,
            "allowed_origins": origins,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def do_revoke_token(token: ApiToken | IngestToken, *, actor: Actor) -> None:
    """Revoke a token of either kind at once; revoking a revoked token changes nothing and
    records nothing."""
    token = type(token).objects.select_for_update().select_related("municipality").get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            actor,
            "token.revoke",
            municipality_code=token.municipality.code,
            target=_audit_target(token),
        )


def _audit_target(token: ApiToken | IngestToken) -> str:
    # The prefix identifies a token in 管理 and is not enough to use it (the secret is 43 more
    # random characters).
    kind = "ingest token" if isinstance(token, IngestToken) else "token"
    return f"{kind} {token.pk} {token.name} ({token.prefix}…)"


def authenticate_bearer(secret: str, municipality) -> tuple[ApiToken, policy.Principal]:
    """The token a bearer secret names and the principal it acts as, or TokenRefused.

    Checks, in order: known, this municipality, not revoked, not expired, user active and still
    holding the role there.
    """
    token = (
        ApiToken.objects.select_related("user", "municipality")
        .filter(token_hash=hash_secret(secret.strip()))
        .first()
    )
    if token is None:
        raise TokenRefused(REFUSED_UNKNOWN)
    if token.municipality.code != municipality.code:
        raise TokenRefused(REFUSED_OTHER_TENANT)
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused(REFUSED_REVOKED)
    if token.expires_at <= now:
        raise TokenRefused(REFUSED_EXPIRED)
    memberships = list(Membership.objects.filter(user=token.user, municipality=municipality))
    if not token.user.is_active or not _may_carry({m.role for m in memberships}, token.role):
        raise TokenRefused(REFUSED_NO_MEMBERSHIP)
    school_codes: frozenset[str] = frozenset()
    if token.role in SCHOOL_ROLES:
        school_codes = frozenset(
            code for m in memberships if m.role == token.role for code in m.school_codes
        )
    _touch(token, now)
    principal = policy.Principal(
        user_id=token.user_id,
        username=f"{token.user.get_username()[:120]} [token {token.prefix}]",
        grants=(
            policy.Grant(
                role=token.role,
                municipality_code=municipality.code,
                prefecture_code=None,
                school_codes=school_codes,
            ),
        ),
        step_up=False,
        via="api",
    )
    return token, principal


# -- ingest tokens (the push API of renkei.connectors.api) -----------------------------------

INGEST_PREFIX = "ri_"
REFUSED_INGEST_UNKNOWN = gettext_lazy(
    "取り込み用トークンが無効です。発行時に一度だけ表示されたトークンを使ってください。"
)
REFUSED_INGEST_IP = gettext_lazy("このトークンは、この送信元（%(ip)s）からは使えません。")
REFUSED_INGEST_CONNECTOR = gettext_lazy(
    "このトークンではコネクタ「%(name)s」の取り込みはできません（使えるもの: %(allowed)s）。"
)


@dataclass(frozen=True)
class IssuedIngestToken:
    token: IngestToken
    secret: str  # shown once, never stored


def normalize_networks(lines: Sequence[str]) -> list[str]:
    """Addresses or CIDR networks, one per entry; TokenError names the first bad one."""
    networks = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise TokenError(
                f"「{text[:60]}」は IP アドレスでもネットワーク（例: 203.0.113.0/24）でもありません。"
            ) from None
    return sorted(set(networks))


@transaction.atomic
def do_issue_ingest_token(
    municipality,
    *,
    actor: Actor,
    name: str,
    connectors: Sequence[str],
    allowed_ips: Sequence[str] = (),
    expires_in: dt.timedelta = DEFAULT_LIFETIME,
) -> IssuedIngestToken:
    names = sorted({c.strip() for c in connectors if c.strip()})
    if not names:
        raise TokenError("取り込み用トークンには、使えるコネクタを 1 つ以上指定してください。")
    if not (dt.timedelta(0) < expires_in <= MAX_LIFETIME):
        raise TokenError(f"有効期間は {MAX_LIFETIME.days} 日以内で指定してください。")
    networks = normalize_networks(allowed_ips)
    secret = INGEST_PREFIX + secrets.token_urlsafe(32)
    token = IngestToken.objects.create(
        name=name,
        municipality=municipality,
        connectors=names,
        allowed_ips=networks,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        created_by=actor.username[:150],
        expires_at=timezone.now() + expires_in,
    )
    audit.record(
        actor,
        "token.issue",
        municipality_code=municipality.code,
        target=_audit_target(token),
        changes={
            "kind": "ingest",
            "connectors": names,
            "allowed_ips": networks,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return IssuedIngestToken(token=token, secret=secret)


def authenticate_ingest(secret: str, municipality, remote_ip: str) -> IngestToken:
    """The ingest token a bearer secret names, or TokenRefused: known, this municipality's,
    not revoked, not expired, and used from an allowed address."""
    token = IngestToken.objects.filter(token_hash=hash_secret(secret.strip())).first()
    if token is None or token.municipality_id != municipality.pk:
        # Another municipality's token gets the same answer as an unknown one.
        raise TokenRefused(REFUSED_INGEST_UNKNOWN)
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused(REFUSED_REVOKED)
    if token.expires_at <= now:
        raise TokenRefused(REFUSED_EXPIRED)
    if token.allowed_ips and not _address_in(remote_ip, token.allowed_ips):
        raise TokenRefused(REFUSED_INGEST_IP % {"ip": remote_ip})
    _touch(token, now)
    return token


def _touch(token: ApiToken | IngestToken, now: dt.datetime) -> None:
    """Note when the token was last used (see LAST_USED_RESOLUTION)."""
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        type(token).objects.filter(pk=token.pk).update(last_used_at=now)


def _address_in(address: str, networks: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in networks)
