"""What both GraphQL endpoints check before any GraphQL runs, and the one shape of every
refusal they send.

A request body is read at most ``GRAPHQL_MAX_BODY_BYTES`` (413 past it), must be UTF-8 (a
BOM is tolerated), JSON of bounded nesting, and an object of the GraphQL-over-HTTP shape
(``query`` a string; ``variables`` and ``extensions`` objects; ``operationName`` a string).
No string in it may hold a control character other than tab, newline and carriage return (NUL would reach
PostgreSQL). The query is parsed once here with a token limit, and fragments may not spread
each other more than ``MAX_FRAGMENT_NESTING`` deep (graphql-core's validation recurses along
such chains). Only then do graphene or strawberry see it.

Every refusal is ``{"errors": [{"message", "extensions": {"code"}}]}``: a stable code and a
message in the request's language (Japanese by default, English by ``Accept-Language``).
Refusals are logged as one INFO line with the code, never the query; an unexpected error is
logged with its cause and a request id, which the answer also carries (``requestId``).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    parse,
    visit,
)

from renkei.platform import errors
from renkei.platform.errors import RETRY_AFTER_SECONDS as RETRY_AFTER

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 16
MAX_FRAGMENT_NESTING = 8
DEFAULT_MAX_TOKENS = 3000
# Tab, newline and carriage return are ordinary text; every other C0 control and DEL is not.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# graphql-core appends " Did you mean 'x'?" from the schema: a leak when introspection is off.
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?\s*$")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("renkei_request_id", default="-")


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    document: DocumentNode  # the query, parsed and checked (check_document)

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "variables": self.variables,
            "operationName": self.operation_name,
        }


class Refusal(Exception):
    """A request refused before GraphQL runs; ``message`` is already in the request's
    language."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def begin_request() -> str:
    """A fresh request id for the log lines and the answer of this request."""
    rid = secrets.token_hex(6)
    request_id.set(rid)
    return rid


# -- reading the body ---------------------------------------------------------------------------


def max_body_bytes() -> int:
    return int(getattr(settings, "GRAPHQL_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def read_text(request: HttpRequest) -> str:
    """The body as text, within the size limit and in UTF-8 (else Refusal)."""
    limit = max_body_bytes()
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large(limit) from None
    if len(body) > limit:
        raise _too_large(limit)
    charset = (request.content_params or {}).get("charset", "utf-8").strip().lower()
    if charset not in ("utf-8", "utf8"):
        raise Refusal(
            400,
            "INVALID_ENCODING",
            gettext(
                "本文の文字コードは UTF-8 にしてください（charset=%(charset)s は受け付けません）。"
            )
            % {"charset": charset[:40]},
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refusal(
            400,
            "INVALID_ENCODING",
            gettext(
                "本文が UTF-8 として読めません（%(offset)s バイト目）。UTF-8 で送ってください。"
            )
            % {"offset": e.start + 1},
        ) from None
    return text.removeprefix("\ufeff")


def read_json(request: HttpRequest) -> Any:
    """The body as JSON, within the size, encoding and nesting limits (else Refusal)."""
    text = read_text(request)
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as e:
        raise Refusal(
            400,
            "INVALID_JSON",
            gettext("本文が JSON として読めません（%(line)s 行 %(column)s 列）。")
            % {"line": e.lineno, "column": e.colno},
        ) from None
    _check_values(data)
    return data


def _too_large(limit: int) -> Refusal:
    return Refusal(
        413,
        "PAYLOAD_TOO_LARGE",
        gettext("本文が大きすぎます（上限 %(limit)s KB）。") % {"limit": limit // 1024},
    )


def _too_deep() -> Refusal:
    return Refusal(
        400,
        "JSON_TOO_DEEP",
        gettext("本文の JSON の入れ子が深すぎます（上限 %(limit)s 段）。")
        % {"limit": MAX_JSON_DEPTH},
    )


def _check_values(data: Any) -> None:
    """Nesting depth and control characters, without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    found = CONTROL_CHARACTERS.search(text)
    if found:
        raise Refusal(
            400,
            "CONTROL_CHARACTER",
            gettext(
                "文字列に制御文字（U+%(code)04X）が含まれています。取り除いてから送ってください。"
            )
            % {"code": ord(found.group())},
        )


# -- the operation ------------------------------------------------------------------------------


def read_operation(request: HttpRequest, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> Operation:
    """The GraphQL operation of a POST body (else Refusal)."""
    data = read_json(request)
    if isinstance(data, list):
        raise Refusal(
            400,
            "BATCHING_NOT_SUPPORTED",
            gettext(
                "一括リクエスト（操作の配列）には対応していません。操作を 1 つずつ送ってください。"
            ),
        )
    if not isinstance(data, dict):
        raise _bad_request(
            gettext(
                '本文は {"query": "...", "variables": {...}} の形の JSON オブジェクトにしてください。'
            )
        )
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise _bad_request(gettext("query にはクエリを文字列で指定してください。"))
    if variables is not None and not isinstance(variables, dict):
        raise _bad_request(gettext("variables はオブジェクト（{...}）で指定してください。"))
    if name is not None and not isinstance(name, str):
        raise _bad_request(gettext("operationName は文字列で指定してください。"))
    if extensions is not None and not isinstance(extensions, dict):
        raise _bad_request(gettext("extensions はオブジェクト（{...}）で指定してください。"))
    return Operation(
        query=query,
        variables=variables,
        operation_name=name or None,
        extensions=extensions,
        document=check_document(query, max_tokens=max_tokens),
    )


def _bad_request(message: str) -> Refusal:
    return Refusal(400, "BAD_REQUEST", message)


# Clients send the same few query texts again and again (the widgets' boards, a vendor's
# report): each is parsed and checked once per process. Documents are never changed after
# parsing, so threads share them; a refused text raises and is not kept. A parsed document
# takes about 100 times its text in memory, so only short texts are kept (the widgets' are
# under 1,000 characters): at most about 30 MB per process, whatever clients send.
REMEMBERED_DOCUMENTS = 128
REMEMBERED_QUERY_CHARS = 2048


def check_document(query: str, *, max_tokens: int) -> DocumentNode:
    """Parse with a token limit, then bound the nesting of fragment spreads."""
    if len(query) <= REMEMBERED_QUERY_CHARS:
        return _remembered_document(query, max_tokens)
    return _checked_document(query, max_tokens)


@functools.lru_cache(maxsize=REMEMBERED_DOCUMENTS)
def _remembered_document(query: str, max_tokens: int) -> DocumentNode:
    return _checked_document(query, max_tokens)


def _checked_document(query: str, max_tokens: int) -> DocumentNode:
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as e:
        if "tokens" in e.message and "more than" in e.message:
            raise Refusal(
                400,
                "QUERY_TOO_LARGE",
                gettext("クエリが大きすぎます（上限 %(limit)s トークン）。")
                % {"limit": max_tokens},
            ) from None
        where = e.locations[0] if e.locations else None
        raise Refusal(
            400,
            "GRAPHQL_PARSE_FAILED",
            gettext("クエリの構文が正しくありません（%(line)s 行 %(column)s 列）。")
            % {"line": where.line if where else "?", "column": where.column if where else "?"},
        ) from None
    visit(document, _StringLiterals())
    if _fragment_nesting(document) > MAX_FRAGMENT_NESTING:
        raise Refusal(
            400,
            "QUERY_TOO_DEEP",
            gettext("フラグメントの入れ子が深すぎます（上限 %(limit)s 段）。")
            % {"limit": MAX_FRAGMENT_NESTING},
        )
    return document


class _StringLiterals(Visitor):
    """Escapes like "\\u0000" in the query text become control characters only when parsed."""

    def enter_string_value(self, node: StringValueNode, *_args) -> None:
        _check_text(node.value)


def _fragment_nesting(document: DocumentNode) -> int:
    """The longest chain of fragments spreading fragments. A cycle is left to the spec rule
    that names it (NoFragmentCycles), unless it already counts past the limit."""
    spreads = {
        d.name.value: set(_spreads(d.selection_set))
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    depth: dict[str, int] = {}
    # Longest path by repeated relaxation, at most len(spreads) + 1 rounds, each bounded by
    # the token limit; stops as soon as a chain is past the limit.
    for _round in range(len(spreads) + 1):
        changed = False
        for name, targets in spreads.items():
            value = 1 + max((depth.get(t, 0) for t in targets if t in spreads), default=0)
            if value != depth.get(name):
                depth[name], changed = value, True
        if not changed:
            break
        if any(v > MAX_FRAGMENT_NESTING for v in depth.values()):
            break
    return max(depth.values(), default=0)


def _spreads(selection_set: SelectionSetNode | None):
    stack = [selection_set]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            else:
                stack.append(getattr(selection, "selection_set", None))


# -- answers and logs ---------------------------------------------------------------------------


def error_codes(response: dict[str, Any]) -> set[str | None]:
    """The ``extensions.code`` of each error of a GraphQL answer."""
    return {(e.get("extensions") or {}).get("code") for e in response.get("errors") or ()}


def status_for(response: dict[str, Any]) -> int:
    """400 when bad input left the answer empty (nothing but nulls), as for a request refused
    before GraphQL ran; otherwise GraphQL's 200 with partial data (a gateway keeps the parts
    that answered, e.g. the good ``_entities`` representations)."""
    if "BAD_USER_INPUT" not in error_codes(response):
        return 200
    stack = [response.get("data")]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            return 200
    return 400


def refusal_response(refusal: Refusal, **headers: str) -> JsonResponse:
    log.info(
        "graphql request refused: %s (HTTP %s) rid=%s",
        refusal.code,
        refusal.status,
        request_id.get(),
    )
    return error_response(refusal.status, refusal.code, refusal.message, **headers)


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    extensions: dict[str, Any] = {"code": code}
    if status >= 500:
        extensions["requestId"] = request_id.get()
    response = JsonResponse(
        {"errors": [{"message": message, "extensions": extensions}]},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    for name, value in headers.items():
        response[name] = value
    return response


def internal_error_response(error: BaseException, where: str) -> JsonResponse:
    """A 500 that says which request id to quote; the cause goes to the log. The database
    out of reach is a 503 to retry instead (its server or the pooler restarting)."""
    if errors.is_unavailable(error):
        return unavailable_response(error, where)
    log.error(
        "unexpected error in %s rid=%s: %s",
        where,
        request_id.get(),
        type(error).__name__,
        exc_info=error,
    )
    return error_response(500, "INTERNAL_SERVER_ERROR", internal_message())


UNAVAILABLE = "UNAVAILABLE"  # extensions.code of an answer to retry: HTTP 503


def unavailable_response(error: BaseException, where: str) -> JsonResponse:
    log_unavailable(error, where)
    return error_response(
        503, UNAVAILABLE, errors.unavailable_message(), **{"Retry-After": RETRY_AFTER}
    )


def log_unavailable(error: BaseException, where: str) -> None:
    log.warning(
        "database unavailable in %s rid=%s: %s", where, request_id.get(), type(error).__name__
    )


def unavailable_error() -> dict[str, Any]:
    """The JSON of an error whose cause is the database out of reach."""
    return {
        "message": errors.unavailable_message(),
        "extensions": {"code": UNAVAILABLE, "requestId": request_id.get()},
    }


def internal_message() -> str:
    return gettext(
        "サーバー内部でエラーが発生しました（問い合わせ番号 %(rid)s）。"
        "時間をおいて再度お試しください。"
    ) % {"rid": request_id.get()}


def without_suggestions(message: str) -> str:
    """graphql-core's "Did you mean ...?" hints name schema members: gone unless DEBUG."""
    return message if settings.DEBUG else SUGGESTION.sub("", message)


def about_the_query(detail: str) -> str:
    """graphql-core's own message (English, about the query), introduced in the user's
    language and without schema suggestions."""
    return gettext("クエリを実行できません: %(detail)s") % {"detail": without_suggestions(detail)}


def is_bad_variable(error: GraphQLError) -> bool:
    """graphql-core's report that a variable value does not fit its type: no path, and its
    original error is graphql-core's own coercion error. Any other exception raised before
    execution (strawberry wraps it the same way, also without a path) is ours, not the
    caller's, and stays masked."""
    return error.path is None and isinstance(error.original_error, GraphQLError)


def log_graphql_error(error: GraphQLError, code: str, *, expected: bool, where: str) -> None:
    """One line per error: INFO with the code for a refusal, the cause for anything else."""
    if expected:
        log.info("%s: refused %s rid=%s", where, code, request_id.get())
        return
    original = error.original_error or error
    log.error(
        "unexpected error in %s rid=%s: %s",
        where,
        request_id.get(),
        type(original).__name__,
        exc_info=original,
    )
