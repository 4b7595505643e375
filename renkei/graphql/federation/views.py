"""HTTP endpoints of the federation (public host).

``POST /federation/graphql`` - the subgraph. Callers authenticate either with a bearer
analyst token (gateways; :func:`auth.do_issue_analyst_token`) or with a browser session of a
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

import logging
from typing import Any
from urllib.parse import urlsplit

from cross_web import HTTPException
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from graphql import ExecutionResult, GraphQLError
from strawberry.django.views import GraphQLView
from strawberry.http import GraphQLRequestData

from renkei.accounts import policy
from renkei.edudata import metrics
from renkei.edudata.metrics import exact
from renkei.edudata.models import OutOfCalendar, check_school_year
from renkei.graphql import edge
from renkei.graphql.federation import auth
from renkei.graphql.federation.fanout import tenant_request
from renkei.graphql.federation.schema import (
    MAX_TOKENS,
    FederationContext,
    error_code,
    schema,
)
from renkei.platform import service_tokens
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


def _error(status: int, code: str, message) -> JsonResponse:
    """A refusal that happens before GraphQL runs, in the one GraphQL shape."""
    return edge.refusal_response(edge.Refusal(status, code, str(message)))


POST_JSON_ONLY = _("POST（Content-Type: application/json）で送ってください。")
JSON_ONLY = _("Content-Type は application/json にしてください。")
CROSS_SITE = _("別のサイトからのセッションによる照会は受け付けません。")
NOT_GRAPHQL = _("リクエストを処理できません: %(detail)s")


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
        edge.begin_request()
        try:
            return self._dispatch(request)
        except Exception as e:  # the cause is logged with the id the answer shows
            return edge.internal_error_response(e, "the federation")

    def _dispatch(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", POST_JSON_ONLY)
        if _content_type(request) != JSON:
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", JSON_ONLY)
        if _bearer(request) is None and not _same_origin(request):
            return _error(403, "FORBIDDEN", CROSS_SITE)
        try:
            request.renkei_operation = edge.read_operation(request, max_tokens=MAX_TOKENS)
            return self.run(request=request)
        except edge.Refusal as refusal:
            return edge.refusal_response(refusal)
        except HTTPException as e:  # strawberry's own refusals (e.g. an unknown operationName)
            return _error(e.status_code, "BAD_REQUEST", NOT_GRAPHQL % {"detail": e.reason})

    def parse_http_body(self, request_adapter) -> GraphQLRequestData:
        """The operation the edge has read and checked (strawberry would read it again)."""
        operation = request_adapter.request.renkei_operation
        return GraphQLRequestData(
            query=operation.query,
            variables=operation.variables,
            operation_name=operation.operation_name,
            extensions=operation.extensions,
        )

    def process_result(self, request: HttpRequest, result: ExecutionResult) -> dict:
        data: dict[str, Any] = {"data": result.data}
        if result.errors:
            data["errors"] = [_format_error(e) for e in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        return data

    def create_response(self, response_data, sub_response: HttpResponse) -> HttpResponse:
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict) and response_data.get("errors"):
            if edge.UNAVAILABLE in edge.error_codes(response_data):  # to retry
                response.status_code = 503
                response["Retry-After"] = edge.RETRY_AFTER
            elif response_data.get("data") is None:
                response.status_code = 400  # nothing ran: the request was refused
            else:
                response.status_code = edge.status_for(response_data)
        return response

    def get_context(self, request: HttpRequest, response: HttpResponse) -> FederationContext:
        principal, error = authenticate(request)
        return FederationContext(
            principal=principal, auth_error=error, request=request, response=response
        )


def _format_error(error: GraphQLError) -> dict[str, Any]:
    """Every error with its stable code; graphql-core's own messages in the user's language
    and without schema suggestions; internal ones with the id to quote."""
    formatted = dict(error.formatted)
    code = error_code(error)
    extensions = {**(formatted.get("extensions") or {}), "code": code}
    if code == edge.UNAVAILABLE:
        return {**formatted, **edge.unavailable_error()}
    if code == "INTERNAL_SERVER_ERROR":
        formatted["message"] = edge.internal_message()
        extensions["requestId"] = edge.request_id.get()
    elif not isinstance(error.original_error, auth.FederationError) and not (
        error.extensions or {}
    ).get("code"):
        formatted["message"] = edge.about_the_query(error.message)
    formatted["extensions"] = extensions
    return formatted


def _same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser's cross-site request (browsers send Origin on POST)
    return urlsplit(origin).netloc.lower() == request.get_host().lower()


graphql_view = csrf_exempt(FederationView.as_view(schema=schema))


@csrf_exempt
def tenant_metric(request: HttpRequest) -> JsonResponse:
    """Answer one metric question for a municipality held here, for another deployment."""
    edge.begin_request()
    try:
        return _tenant_metric(request)
    except edge.Refusal as refusal:
        return edge.refusal_response(refusal)
    except Exception as e:  # the cause is logged with the id the answer shows
        return edge.internal_error_response(e, "the federation tenant endpoint")


def _tenant_metric(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return _error(405, "METHOD_NOT_ALLOWED", POST_JSON_ONLY)
    if _content_type(request) != JSON:
        return _error(415, "UNSUPPORTED_MEDIA_TYPE", JSON_ONLY)
    body = edge.read_json(request)
    if isinstance(body, dict) and "exact" in body:
        return _exact_counts(request, body)
    try:
        code = body["municipality"]
        metric = body["metric"]
        school_year = body["school_year"]
        breakdown = body.get("breakdown", [])
        if not (
            isinstance(code, str)
            and isinstance(metric, str)
            and type(school_year) is int
            and isinstance(breakdown, list)
            and all(isinstance(d, str) for d in breakdown)
        ):
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        return _error(
            400,
            "BAD_REQUEST",
            _("照会の形式が不正です（municipality, metric, school_year, breakdown）。"),
        )
    token = _bearer(request)
    if token is None:
        return _error(
            401, "UNAUTHENTICATED", _("サービス間トークン（Authorization: Bearer）が必要です。")
        )
    try:
        claims = service_tokens.verify_service_token(
            token,
            audience=code,
            digest=service_tokens.request_digest(
                tenant_request(code, metric, school_year, breakdown)
            ),
        )
    except service_tokens.ServiceTokenError as e:
        return _error(401, "UNAUTHENTICATED", str(e))
    try:
        municipality = get_municipality(code)
        check_school_year(school_year)
    except (UnknownTenant, CodeError) as e:
        return _error(404, "NOT_FOUND", str(e))
    except OutOfCalendar as e:
        return _error(400, "BAD_USER_INPUT", str(e))
    try:
        metrics.require_prefecture_wide(metric)  # a MUNICIPALITY_ONLY metric never leaves
        with in_tenant(municipality):
            table = metrics.compute(
                metric, municipality, school_year=school_year, breakdown=breakdown
            )
    except ValueError as e:
        return _error(400, "BAD_USER_INPUT", str(e))
    log.info(
        "federation tenant endpoint: %s %s %s for %s", code, metric, school_year, claims["sub"]
    )
    return JsonResponse(table.to_json(), json_dumps_params={"ensure_ascii": False})


def _exact_counts(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """Exact rows (or the data version) of a municipality held here, for its prefecture's
    aggregator - only when this deployment names that prefecture as trusted
    (``RENKEI_FEDERATION_TRUSTED_AGGREGATORS``; renkei.edudata.metrics.exact)."""
    code, family = body.get("municipality"), body.get("exact")
    if not (isinstance(code, str) and isinstance(family, str)):
        return _error(
            400, "BAD_REQUEST", _("照会の形式が不正です（municipality, exact, params）。")
        )
    token = _bearer(request)
    if token is None:
        return _error(
            401, "UNAUTHENTICATED", _("サービス間トークン（Authorization: Bearer）が必要です。")
        )
    try:
        claims = service_tokens.verify_service_token(
            token, audience=code, digest=service_tokens.request_digest(body)
        )
    except service_tokens.ServiceTokenError as e:
        return _error(401, "UNAUTHENTICATED", str(e))
    if code[:2] not in settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS:
        return _error(
            403,
            "FORBIDDEN",
            _(
                "この環境は都道府県 %(code)s の集計者に正確な件数を渡す設定になっていません"
                "（RENKEI_FEDERATION_TRUSTED_AGGREGATORS）。公開用に保護した表で照会してください。"
            )
            % {"code": code[:2]},
        )
    try:
        municipality = get_municipality(code)
    except (UnknownTenant, CodeError) as e:
        return _error(404, "NOT_FOUND", str(e))
    if family == exact.VERSION:
        return JsonResponse(
            {"data_version": municipality.data_version, "k": municipality.min_cell_size}
        )
    try:
        with in_tenant(municipality):
            rows = metrics.exact_rows(municipality, family, body.get("params"))
    except ValueError as e:
        return _error(400, "BAD_USER_INPUT", str(e))
    # Counts only, never rows: which family was sent to whom.
    log.info(
        "federation tenant endpoint: exact %s of %s (%d rows) for %s",
        family,
        code,
        len(rows),
        claims["sub"],
    )
    return JsonResponse({"data_version": municipality.data_version, "rows": rows})
