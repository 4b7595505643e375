"""How errors reach the client: every error carries ``extensions.code``; policy refusals keep
their Japanese message; anything unexpected is masked (logged in English, with no personal
data) unless DEBUG is on."""

from __future__ import annotations

import logging

from django.conf import settings
from graphene_django.views import HttpError
from graphql import GraphQLError

from renkei.platform import policy

log = logging.getLogger(__name__)

INTERNAL = "サーバー内部でエラーが発生しました。時間をおいて再度お試しください。"


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
    if isinstance(error, HttpError):  # graphene-django's own request errors (bad JSON, ...)
        return {"message": error.message, "extensions": {"code": "BAD_REQUEST"}}
    if not isinstance(error, GraphQLError):
        log.error("unexpected error in the tenant GraphQL API: %s", type(error).__name__,
                  exc_info=error)
        return {"message": str(error) if settings.DEBUG else INTERNAL,
                "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    formatted = dict(error.formatted)
    original = error.original_error
    extensions = dict(formatted.get("extensions") or {})
    code = code_for(original)
    if code is not None:
        formatted["message"] = str(original)
    elif original is not None:
        log.error("unexpected error in the tenant GraphQL API: %s", type(original).__name__,
                  exc_info=original)
        code = "INTERNAL_SERVER_ERROR"
        if not settings.DEBUG:
            formatted["message"] = INTERNAL
    else:
        code = extensions.get("code") or (
            "GRAPHQL_VALIDATION_FAILED" if error.path is None else "INTERNAL_SERVER_ERROR")
    extensions["code"] = code
    formatted["extensions"] = extensions
    return formatted
