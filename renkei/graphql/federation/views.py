"""HTTP endpoints of the federation (public host).

``POST /federation/graphql`` - the subgraph. Callers authenticate either with a bearer
analyst token (gateways; :func:`auth.issue_analyst_token`) or with a browser session of a
prefecture analyst.

CSRF: the view is ``csrf_exempt`` because a gateway calling server-to-server has no CSRF
cookie. That is safe only because no cookie-authenticated request can be forged from another
site, which is what we make sure of:

* only ``POST`` with ``Content-Type: application/json`` is accepted (415 otherwise; queries
  over ``GET`` are off). A cross-site form can send only urlencoded, multipart or
  text/plain bodies, and a cross-site script that sets ``application/json`` triggers a CORS
  preflight, which this server never approves (it sends no CORS headers). This is the rule
  Apollo Server's CSRF prevention applies.
* a request that relies on the session cookie and carries an ``Origin`` header from
  another host is refused outright (defence in depth).
* a bearer token is never sent by a browser on its own, so token requests need neither.

``POST /federation/tenant`` - the remote side of the fan-out: a deployment that holds a
municipality answers one metric question, authorised by a service token (no session, no
cookie: ``csrf_exempt`` is safe), with the released table as JSON and nothing else.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from strawberry.django.views import GraphQLView

from renkei.edudata import metrics
from renkei.graphql.federation import auth
from renkei.graphql.federation.fanout import tenant_request
from renkei.graphql.federation.schema import FederationContext, schema
from renkei.platform import policy
from renkei.tenants.codes import CodeError
from renkei.tenants.context import UnknownTenant, get_municipality, in_tenant

log = logging.getLogger(__name__)

JSON = "application/json"


def _content_type(request: HttpRequest) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _error(status: int, message: str) -> JsonResponse:
    """A GraphQL-shaped error for refusals that happen before GraphQL runs."""
    return JsonResponse({"errors": [{"message": message}]}, status=status,
                        json_dumps_params={"ensure_ascii": False})


def authenticate(request: HttpRequest) -> tuple[policy.Principal, str | None]:
    """(principal, error to show if they turn out not to be allowed)."""
    token = _bearer(request)
    if token is not None:
        try:
            return auth.principal_for_analyst_token(token), None
        except auth.FederationPermissionError as e:
            return policy.ANONYMOUS, str(e)
    return policy.principal_for(request), None


class FederationView(GraphQLView):
    """The subgraph over HTTP: JSON POST only, context from the caller's credentials."""

    allow_queries_via_get = False
    graphql_ide = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return _error(405, "POST（Content-Type: application/json）で送ってください。")
        if _content_type(request) != JSON:
            return _error(415, "Content-Type は application/json にしてください。")
        if _bearer(request) is None and not _same_origin(request):
            return _error(403, "別のサイトからのセッションによる照会は受け付けません。")
        return super().dispatch(request, *args, **kwargs)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> FederationContext:
        principal, error = authenticate(request)
        return FederationContext(principal=principal, auth_error=error, request=request,
                                 response=response)


def _same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser's cross-site request (browsers send Origin on POST)
    return urlsplit(origin).netloc.lower() == request.get_host().lower()


graphql_view = csrf_exempt(FederationView.as_view(schema=schema))


@csrf_exempt
@require_POST
def tenant_metric(request: HttpRequest) -> JsonResponse:
    """Answer one metric question for a municipality held here, for another deployment."""
    if _content_type(request) != JSON:
        return JsonResponse({"error": "Content-Type は application/json にしてください。"},
                            status=415, json_dumps_params={"ensure_ascii": False})
    try:
        body = json.loads(request.body)
        code = str(body["municipality"])
        metric = str(body["metric"])
        school_year = int(body["school_year"])
        breakdown = [str(d) for d in body.get("breakdown", [])]
    except (ValueError, KeyError, TypeError):
        return _json_error(400, "照会の形式が不正です（municipality, metric, school_year, breakdown）。")
    token = _bearer(request)
    if token is None:
        return _json_error(401, "サービス間トークン（Authorization: Bearer）が必要です。")
    try:
        claims = auth.verify_service_token(
            token, audience=code,
            digest=auth.request_digest(tenant_request(code, metric, school_year, breakdown)))
    except auth.ServiceTokenError as e:
        log.warning("federation tenant endpoint: token refused for %s: %s", code, e)
        return _json_error(401, str(e))
    try:
        municipality = get_municipality(code)
    except (UnknownTenant, CodeError) as e:
        return _json_error(404, str(e))
    try:
        with in_tenant(municipality):
            table = metrics.compute(metric, municipality, school_year=school_year,
                                    breakdown=breakdown)
    except ValueError as e:
        return _json_error(400, str(e))
    log.info("federation tenant endpoint: %s %s %s for %s", code, metric, school_year,
             claims["sub"])
    return JsonResponse(table.to_json(), json_dumps_params={"ensure_ascii": False})


def _json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status,
                        json_dumps_params={"ensure_ascii": False})
