"""The HTTP endpoint: POST /graphql inside a tenant (/m/<code>/graphql or <code>.<domain>/graphql).

Before any GraphQL runs, the request is authenticated and admitted here:

* ``Authorization: Bearer <token>``: the token is the only credential looked at (cookies are
  ignored, never mixed in). It must belong to this municipality. CSRF does not apply: a browser
  never attaches this header on its own, so another site cannot make a victim's browser send
  it (no CORS is configured that would allow it).
* Otherwise the Django session (the login page's), and then CSRF *is* enforced, exactly as
  Django's CsrfViewMiddleware would: the view is ``csrf_exempt`` only so that the check can
  be skipped for bearer requests; session requests run the same middleware check by hand
  (as Django REST framework's SessionAuthentication does).
* Anonymous → 401; no role in this municipality (another tenant's users, prefecture analysts)
  → 403; both as a GraphQL error body with ``extensions.code``.

Browsers on other sites (embedded widgets) may use a token when its ``allowed_origins`` list
their origin: the preflight is approved only for an origin some live token of this
municipality lists, the request itself only when *its* token lists it, and the answer then
carries ``Access-Control-Allow-Origin`` for that origin alone, never with credentials.

The body is read and checked by :mod:`renkei.graphql.edge` (size, encoding, JSON shape and
nesting, control characters, token and fragment limits) before graphene sees it; every refusal
has the same GraphQL shape with a stable code. Only POST with a JSON (or application/graphql) body: a GET query would let another site
trigger pupil reads (and access-log rows) through an image tag, and form-encoded posts are
what a cross-site page can send without a CORS preflight. No batching: a JSON list of
operations is refused with a clear error (batching would multiply the cost limit).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from graphene_django.settings import graphene_settings
from graphene_django.views import GraphQLView
from graphql import ExecutionResult, execute

from renkei.accounts import policy, tokens
from renkei.accounts.models import ApiToken
from renkei.graphql import edge
from renkei.graphql.tenant import validation
from renkei.graphql.tenant.context import RequestContext
from renkei.graphql.tenant.errors import format_error
from renkei.graphql.tenant.schema import schema

UNAUTHENTICATED = _(
    "ログインしてください（またはAPI トークンを Authorization: Bearer で送ってください）。"
)
BAD_AUTH_SCHEME = _("Authorization ヘッダーは「Bearer <トークン>」の形式で送ってください。")
CSRF_FAILED = _("CSRF トークンが確認できません。ページを再読み込みしてから送信してください。")
POST_ONLY = _("GraphQL は POST（JSON 本文）で送ってください。")
NO_TENANT = _("自治体が特定できません。/m/<自治体コード>/graphql に送ってください。")
JSON_ONLY = _("Content-Type は application/json（または application/graphql）にしてください。")
CONTENT_TYPES = frozenset({"application/json", "application/graphql"})
MAX_TOKENS = 3000  # the widgets' largest query has about 110


def _error(status: int, code: str, message, **headers: str) -> JsonResponse:
    return edge.refusal_response(edge.Refusal(status, code, str(message)), **headers)


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})


@method_decorator(csrf_exempt, name="dispatch")
class TenantGraphQLView(GraphQLView):
    """graphene-django's view with our admission, context, validation rules and errors."""

    graphiql = False
    batch = False

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        edge.begin_request()
        try:
            return self._dispatch(request, *args, **kwargs)
        except Exception as e:  # the cause is logged with the id the answer shows
            return edge.internal_error_response(e, "the tenant GraphQL API")

    def _dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            return _preflight(request)
        if request.method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", POST_ONLY, Allow="POST")
        if self.get_content_type(request) not in CONTENT_TYPES:
            # Form posts are what a cross-site page can send without a preflight.
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", JSON_ONLY)
        municipality = getattr(request, "tenant", None)
        if municipality is None:
            return _error(404, "NOT_FOUND", NO_TENANT)
        header = request.headers.get("Authorization", "")
        token = None
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return _error(
                    401,
                    "UNAUTHENTICATED",
                    BAD_AUTH_SCHEME,
                    **{"WWW-Authenticate": 'Bearer error="invalid_request"'},
                )
            try:
                token, principal = tokens.authenticate_bearer(secret, municipality)
            except tokens.TokenRefused as refused:
                return _error(
                    401,
                    "UNAUTHENTICATED",
                    str(refused),
                    **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            origin = request.headers.get("Origin")
            if not tokens.origin_allowed(token, origin, _own_origin(request)):
                return _error(
                    403, "ORIGIN_NOT_ALLOWED", tokens.REFUSED_ORIGIN.format(origin=origin)
                )
        else:
            if _csrf_failure(request) is not None:
                return _error(403, "CSRF_FAILED", CSRF_FAILED)
            principal = policy.principal_for(request)
            if principal.user_id is None:
                return _error(401, "UNAUTHENTICATED", UNAUTHENTICATED)
        if not policy.may_enter_tenant(principal, municipality):
            return _error(403, "FORBIDDEN", policy.FORBIDDEN_TENANT)
        try:
            request.renkei_operation = self._operation(request)
        except edge.Refusal as refusal:
            return edge.refusal_response(refusal)
        request.renkei_context = RequestContext(
            request=request, municipality=municipality, principal=principal, token=token
        )
        # Fresh rule classes per request: introspection follows DEBUG as it is now.
        self.validation_rules = validation.rules_for_request()
        response = super().dispatch(request, *args, **kwargs)
        if response.status_code == 503:
            response["Retry-After"] = edge.RETRY_AFTER
        if token is not None and request.headers.get("Origin"):
            _allow_origin(response, request.headers["Origin"])
        return response

    def _operation(self, request: HttpRequest) -> edge.Operation:
        if self.get_content_type(request) == "application/graphql":
            text = edge.read_text(request)
            return edge.Operation(
                query=text,
                variables=None,
                operation_name=None,
                extensions=None,
                document=edge.check_document(text, max_tokens=MAX_TOKENS),
            )
        return edge.read_operation(request, max_tokens=MAX_TOKENS)

    def execute_graphql_request(
        self, request, data, query, variables, operation_name, show_graphiql=False
    ):
        """graphene-django's, less what this view never takes (GET, GraphiQL, mutations: the
        schema has none), on the document the edge parsed, validated once per query text."""
        graphql_schema, operation = self.schema.graphql_schema, request.renkei_operation
        errors = validation.errors_of(
            graphql_schema,
            operation.document,
            operation.query,
            self.validation_rules,
            graphene_settings.MAX_VALIDATION_ERRORS,
        )
        if errors:
            return ExecutionResult(data=None, errors=errors)
        try:
            return execute(
                graphql_schema,
                operation.document,
                root_value=self.get_root_value(request),
                context_value=self.get_context(request),
                variable_values=variables,
                operation_name=operation_name,
                middleware=self.get_middleware(request),
            )
        except Exception as e:  # as graphene-django: an error of the answer
            return ExecutionResult(errors=[e])

    def get_response(self, request: HttpRequest, data: dict, show_graphiql: bool = False):
        result, status = super().get_response(request, data, show_graphiql)
        if (
            result
            and f'"{edge.UNAVAILABLE}"' in result
            and edge.UNAVAILABLE in edge.error_codes(json.loads(result))
        ):
            return result, 503  # the database went out of reach: to retry, nothing was written
        if status == 200 and result and '"BAD_USER_INPUT"' in result:
            status = edge.status_for(json.loads(result))
        return result, status

    def parse_body(self, request: HttpRequest) -> dict:
        """The operation the edge has read and checked (graphene would read it again)."""
        return request.renkei_operation.as_dict()

    def get_context(self, request: HttpRequest) -> RequestContext:
        return request.renkei_context

    @staticmethod
    def format_error(error) -> dict:
        return format_error(error)


def _own_origin(request: HttpRequest) -> str:
    return tokens.normalize_origin(f"{request.scheme}://{request.get_host()}")


def _allow_origin(response: HttpResponse, origin: str) -> None:
    """CORS for one origin already checked; no Allow-Credentials, so no cookies."""
    response["Access-Control-Allow-Origin"] = origin
    patch_vary_headers(response, ["Origin"])


def _preflight(request: HttpRequest) -> HttpResponse:
    """Approve a CORS preflight when a live token of this municipality lists the origin (the
    preflight carries no token; the request itself is checked against its own token)."""
    origin = request.headers.get("Origin", "")
    municipality = getattr(request, "tenant", None)
    try:
        origin = tokens.normalize_origin(origin)
    except tokens.TokenError:
        origin = ""
    listed = (
        municipality is not None
        and origin
        and ApiToken.objects.live()
        .filter(municipality__code=municipality.code, allowed_origins__contains=[origin])
        .exists()
    )
    if not listed:
        return HttpResponse(status=403)
    response = HttpResponse(status=204)
    _allow_origin(response, origin)
    response["Access-Control-Allow-Methods"] = "POST"
    response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response["Access-Control-Max-Age"] = "600"
    return response


def graphql_view():
    """The view as mounted in urls.py: the schema, no GraphiQL, no batching, and validation
    rules (set again per request in ``dispatch``)."""
    return TenantGraphQLView.as_view(
        schema=schema,
        graphiql=False,
        batch=False,
        middleware=[],
        validation_rules=validation.rules_for_request(),
    )
