"""Requests we refuse before any view, and error answers that say what happened.

* A NUL character in the path, the query string or a submitted form is refused with 400:
  PostgreSQL cannot store it in text and would fail the query (a 500), and nobody types it.
* A view that answers 405 (a GET on a POST-only action, e.g. a bookmarked 取り消し link)
  gets a page that says so instead of an empty body.

404 and 500 pages are the templates ``404.html`` and ``500.html``; 403 is ``403.html``.
* The database out of reach (its server or the pooler in front of it restarting, a dropped
  connection) is a 503 that says to try again (``503.html``), not a 500: the request's
  transaction was rolled back by the server with the connection, so nothing of it was written.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views import defaults

NUL_MESSAGE = "URL または入力に、使えない制御文字（NUL）が含まれています。"


def _has_nul(request) -> bool:
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    # Our pages post urlencoded forms (no uploads); other bodies are the API views' to judge.
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        return b"%00" in request.body or b"\x00" in request.body
    return False


class ClearErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            if "/api/" in request.path_info:  # the push API answers in its own error shape
                return JsonResponse(
                    {"error": {"code": "invalid_request", "message": NUL_MESSAGE}}, status=400
                )
            return render(
                request,
                "platform/error.html",
                {
                    "title": _("入力を受け付けられません"),
                    "message": _(
                        "URL または入力に、使えない制御文字（NUL）が含まれています。"
                        "入力し直してください。"
                    ),
                },
                status=400,
            )
        response = self.get_response(request)
        if response.status_code == 405 and not response.streaming and not response.content:
            allowed = response.get("Allow", "")
            response = render(
                request,
                "platform/error.html",
                {
                    "title": _("この操作はできません"),
                    "message": _(
                        "このアドレスは、画面のボタンから送信したときだけ使えます。"
                        "元の画面に戻って操作してください。"
                    ),
                },
                status=405,
            )
            response["Allow"] = allowed
        return response


UNAVAILABLE_MESSAGE = gettext_noop(
    "データベースに一時的に接続できません。この操作は保存されていません。"
    "少し待ってからもう一度お試しください。"
)
RETRY_AFTER_SECONDS = "10"


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` is the database out of reach (a 503 to retry, not a 500)."""
    return isinstance(error, OperationalError | InterfaceError)


def unavailable_message() -> str:
    return _(UNAVAILABLE_MESSAGE)


def server_error(request):
    """``handler500`` of both URLconfs: a 503 when the database could not be reached (no
    database access here: the page is static, as ``500.html`` is), else Django's 500."""
    if not is_unavailable(sys.exc_info()[1]):
        return defaults.server_error(request)
    if "/api/" in request.path:  # the push API answers in its own error shape
        response = JsonResponse(
            {"error": {"code": "unavailable", "message": unavailable_message()}},
            status=503,
            json_dumps_params={"ensure_ascii": False},
        )
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response
