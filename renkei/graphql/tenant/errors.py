"""How errors reach the client: every error carries ``extensions.code``; policy refusals keep
their Japanese message; graphql-core's own messages lose their schema suggestions; anything
unexpected is masked (logged with its cause and the request id the answer carries) unless
DEBUG is on. Refusals are logged as one INFO line with the code (renkei.graphql.edge)."""

from __future__ import annotations

from django.conf import settings
from graphene_django.views import HttpError
from graphql import GraphQLError

from renkei.accounts import policy
from renkei.graphql import edge
from renkei.platform import errors

WHERE = "the tenant GraphQL API"


class UserInputError(Exception):
    """The arguments are wrong; the message (Japanese) says how to fix them."""


def code_for(error: BaseException | None) -> str | None:
    if isinstance(error, policy.StepUpRequired):
        return "STEP_UP_REQUIRED"
    if isinstance(error, policy.AccessDenied):
        return "FORBIDDEN"
    if isinstance(error, UserInputError):
        return "BAD_USER_INPUT"
    return None


def format_error(error: Exception) -> dict:
    """The JSON of one error (graphene-django's format_error, with codes and masking)."""
    if isinstance(error, HttpError):  # graphene-django's own request errors
        return {"message": error.message, "extensions": {"code": "BAD_REQUEST"}}
    if not isinstance(error, GraphQLError):
        edge.log_graphql_error(
            GraphQLError(str(type(error).__name__), original_error=error),
            "INTERNAL_SERVER_ERROR",
            expected=False,
            where=WHERE,
        )
        return _internal(str(error))
    formatted = dict(error.formatted)
    original = error.original_error
    if errors.is_unavailable(original):  # the view answers 503 (TenantGraphQLView)
        edge.log_unavailable(original, WHERE)
        return edge.unavailable_error()
    extensions = dict(formatted.get("extensions") or {})
    code = code_for(original)
    if code is not None:
        formatted["message"] = str(original)
    elif edge.is_bad_variable(error):
        code = "BAD_USER_INPUT"
        formatted["message"] = edge.about_the_query(error.message)
    elif original is not None:
        edge.log_graphql_error(error, "INTERNAL_SERVER_ERROR", expected=False, where=WHERE)
        return {
            **_internal(str(original)),
            **{k: v for k, v in formatted.items() if k in ("locations", "path")},
        }
    elif extensions.get("code"):
        code = extensions["code"]  # our validation rules: already a Japanese message
    else:
        code = "GRAPHQL_VALIDATION_FAILED" if error.path is None else "INTERNAL_SERVER_ERROR"
        formatted["message"] = edge.about_the_query(error.message)
    edge.log_graphql_error(error, code, expected=True, where=WHERE)
    extensions["code"] = code
    formatted["extensions"] = extensions
    return formatted


def _internal(debug_message: str) -> dict:
    return {
        "message": debug_message if settings.DEBUG else edge.internal_message(),
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": edge.request_id.get()},
    }
