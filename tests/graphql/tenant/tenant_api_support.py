"""Helpers of the tenant API tests (importable from the test modules: pytest puts this
directory on sys.path)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from renkei.tenants.context import in_tenant

AS_OF = dt.date(2025, 6, 5)  # a Thursday
YEAR = 2025


@dataclass
class Response:
    status: int
    body: dict

    @property
    def data(self):
        return self.body.get("data")

    @property
    def errors(self) -> list[dict]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    @property
    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


def post(
    client,
    query: str,
    variables: dict | None = None,
    *,
    code: str = "131130",
    token: str | None = None,
    host: bool = False,
    raw=None,
    **extra,
) -> Response:
    """POST a GraphQL request to a tenant, by path (/m/<code>/graphql) or by host."""
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if host:
        url, extra["HTTP_HOST"] = "/graphql", f"{code}.localhost"
    else:
        url = f"/m/{code}/graphql"
    body = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}})
    response = client.post(url, data=body, content_type="application/json", **extra)
    try:
        parsed = response.json()
    except ValueError:
        parsed = {"_raw": response.content.decode(errors="replace")}
    return Response(response.status_code, parsed)


def step_up(client, user) -> None:
    """Log in with a verified second factor (as django_otp.login does after a TOTP code)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def access_log_rows(municipality, **filters):
    from renkei.edudata.models import AccessLog

    with in_tenant(municipality):
        return list(
            AccessLog.objects.filter(**filters).values(
                "student_pseudonym", "username", "what", "via", "sensitive"
            )
        )
