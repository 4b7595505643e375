"""Who may use the federation, and the two kinds of token it knows.

Access
------
Only prefecture analysts (``Membership`` with role ``prefecture_analyst`` of a prefecture),
and only for the municipalities of that prefecture. Teachers, school managers, tenant admins
and board analysts have the municipality API for their own data and are refused here, even
for their own municipality: the federation is the prefecture's instrument. The per-
municipality check also goes through ``policy.may_see_tenant_aggregates`` so that the policy
module stays the one place that says what a principal may see.

Analyst bearer tokens
---------------------
A gateway (Apollo Router or ``@apollo/gateway``) calls this subgraph server-to-server and has
no browser session. It sends ``Authorization: Bearer rkf1.<token>``, a token issued for one
analyst and one prefecture (:func:`do_issue_analyst_token`). The token is signed with Django's
``SECRET_KEY`` (``django.core.signing``, its own salt), expires (default one day), and is
checked against the database on every request: the membership must still exist, the user be
active, and the password unchanged since issue (a password change revokes every token).
There is no token table, so a single token cannot be revoked on its own: remove the
membership, change the password, or rotate the secret key.

Service tokens (between deployments) are in :mod:`renkei.platform.service_tokens`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.tenants.codes import PREFECTURES

# Names and labels, not secrets (ruff S105 reads "TOKEN" as a password).
ANALYST_TOKEN_PREFIX = "rkf1."  # noqa: S105
ANALYST_TOKEN_SALT = "renkei.federation.analyst-token"  # noqa: S105
ANALYST_TOKEN_TTL_SECONDS = 24 * 3600


NOT_SIGNED_IN = _(
    "ログインしてください。都道府県連携 API は都道府県の分析担当者のアカウント"
    "（または連携用トークン）で利用します。"
)
NOT_PREFECTURE_ANALYST = _(
    "都道府県連携 API は都道府県の分析担当者のみ利用できます。"
    "市区町村のデータは各自治体の API から参照してください。"
)
BAD_ANALYST_TOKEN = _("連携用トークンが無効か期限切れです。新しいトークンを発行してください。")


class FederationError(Exception):
    """An error whose message is meant for the caller (Japanese); never masked. ``code`` is
    its ``extensions.code``."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class FederationPermissionError(FederationError):
    """Refused by the access rules."""

    code = "FORBIDDEN"


class FederationAuthenticationError(FederationPermissionError):
    """No credentials, or credentials that do not verify."""

    code = "UNAUTHENTICATED"


# -- access -----------------------------------------------------------------------------------


def require_analyst(principal: policy.Principal, auth_error: str | None = None) -> None:
    """Refuse anyone who is not a prefecture analyst of some prefecture."""
    if principal.user_id is None:
        raise FederationAuthenticationError(auth_error or str(NOT_SIGNED_IN))
    if not policy.analyst_prefectures(principal):
        raise FederationPermissionError(str(NOT_PREFECTURE_ANALYST))


def require_prefecture(
    principal: policy.Principal, prefecture_code: str, auth_error: str | None = None
) -> None:
    """Refuse unless the principal is an analyst of this prefecture."""
    require_analyst(principal, auth_error)
    if prefecture_code not in policy.analyst_prefectures(principal):
        name = PREFECTURES.get(prefecture_code, prefecture_code)
        raise FederationPermissionError(
            gettext(
                "%(name)s（%(code)s）のデータを見る権限がありません。"
                "所属する都道府県の市区町村のみ照会できます。"
            )
            % {"name": name, "code": prefecture_code}
        )


def require_municipality(
    principal: policy.Principal, municipality, auth_error: str | None = None
) -> None:
    """Refuse unless the principal is an analyst of the municipality's prefecture and the
    policy lets them see its aggregates. ``municipality`` needs ``.code`` (it may be a
    remote tenant that has no row here)."""
    require_prefecture(principal, municipality.code[:2], auth_error)
    if not policy.may_see_tenant_aggregates(principal, municipality):
        raise FederationPermissionError(policy.FORBIDDEN_AGGREGATES)


# -- analyst bearer tokens ----------------------------------------------------------------------


def _user_fingerprint(user) -> str:
    """Changes when the password does, so a password change revokes issued tokens."""
    return salted_hmac(ANALYST_TOKEN_SALT, f"{user.pk}:{user.password}").hexdigest()[:16]


@transaction.atomic
def do_issue_analyst_token(
    user, prefecture_code: str, *, actor: Actor, ttl_seconds: int = ANALYST_TOKEN_TTL_SECONDS
) -> str:
    """A bearer token for a gateway acting for ``user`` in one prefecture. Nothing of it is
    stored (it is signed); its issue is in the prefecture's audit trail.

    Refused (FederationPermissionError) unless the user is an analyst of that prefecture now.
    """
    principal = policy.principal_for(user, step_up=False)
    require_prefecture(principal, prefecture_code)
    expires = int(time.time()) + int(ttl_seconds)
    payload = {"u": user.pk, "p": prefecture_code, "f": _user_fingerprint(user), "exp": expires}
    audit.record(
        actor,
        "token.issue",
        prefecture_code=prefecture_code,
        target=f"federation token of {user.get_username()}",
        changes={
            "kind": "federation",
            "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(),
        },
    )
    return ANALYST_TOKEN_PREFIX + signing.dumps(payload, salt=ANALYST_TOKEN_SALT)


def principal_for_analyst_token(token: str) -> policy.Principal:
    """The principal a token stands for, narrowed to the token's prefecture.

    Raises FederationPermissionError when the token is malformed, forged, expired, or the
    user or their membership is no longer what it was.
    """
    if not token.startswith(ANALYST_TOKEN_PREFIX):
        raise FederationAuthenticationError(str(BAD_ANALYST_TOKEN))
    try:
        payload = signing.loads(token[len(ANALYST_TOKEN_PREFIX) :], salt=ANALYST_TOKEN_SALT)
    except signing.BadSignature:
        raise FederationAuthenticationError(str(BAD_ANALYST_TOKEN)) from None
    if not isinstance(payload, dict) or int(payload.get("exp", 0)) < time.time():
        raise FederationAuthenticationError(str(BAD_ANALYST_TOKEN))
    user = get_user_model().objects.filter(pk=payload.get("u"), is_active=True).first()
    if user is None or not hmac.compare_digest(_user_fingerprint(user), str(payload.get("f"))):
        raise FederationAuthenticationError(str(BAD_ANALYST_TOKEN))
    principal = policy.principal_for(user, step_up=False)
    scope = str(payload.get("p"))
    grants = tuple(
        g
        for g in principal.grants
        if g.role == Role.PREFECTURE_ANALYST and g.prefecture_code == scope
    )
    if not grants:
        raise FederationAuthenticationError(str(BAD_ANALYST_TOKEN))
    return policy.Principal(
        user_id=principal.user_id, username=principal.username, grants=grants, step_up=False
    )
