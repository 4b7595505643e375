"""Pulling xAPI statements from a learning record store's statements resource
(``GET {endpoint}statements``, xAPI 1.0.3 part three, 2.1 and 7.2).

Each page is saved as a ``StatementResult`` JSON file (and archived with the run); the xapi
connector then reads those files like an export. ``since`` comes from the connector's state:
the ``stored`` time of the newest statement of the last successful pull, so a nightly pull
fetches only what the LRS stored since. ``more`` links are followed on the endpoint's own
host only (they are relative to it; another host would receive our credentials).

Every failure is a Japanese SourceError naming the URL without its query; no credential is
ever part of a message or a log line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from renkei.connectors import http
from renkei.connectors.sdk import RunState, SourceError

if TYPE_CHECKING:
    from renkei.connectors.builtin.xapi import XapiConfig

log = logging.getLogger(__name__)

XAPI_VERSION = "1.0.3"
MAX_PAGES = 10_000  # a `more` chain longer than this is a loop, not data


class LrsClient:
    """One pull's HTTP: authentication, the statements resource, its pages."""

    def __init__(self, config: XapiConfig) -> None:
        self.config = config
        self.statements_url = urljoin(config.endpoint.rstrip("/") + "/", "statements")
        self.session = http.Session(config.timeout_seconds, config.ca_bundle)
        self._token: str | None = None

    def __enter__(self) -> LrsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def pages(self, since: str | None, limit: int) -> Iterator[tuple[int, bytes, list[Any]]]:
        """(page number, body, its statements) of every page from ``since`` on."""
        query = {"limit": limit, "ascending": "true"}
        if since:
            query["since"] = since
        url: str | None = f"{self.statements_url}?{urlencode(query)}"
        home = http.origin(self.statements_url)
        number = 0
        while url:
            number += 1
            if number > MAX_PAGES:
                raise SourceError(
                    f"LRS（{where(self.statements_url)}）のページが終わりません"
                    f"（more が {MAX_PAGES:,} ページを超えて続きます）。"
                )
            response = self._get(url)
            statements, more = _statement_result(response, url)
            yield number, response.content, statements
            url = urljoin(url, more) if more else None
            if url and http.origin(url) != home:
                raise SourceError(
                    f"LRS（{where(self.statements_url)}）の次のページ（more）が別のホスト"
                    f"（{http.origin(url)}）を指しています。認証情報を送らないよう、"
                    "取り込みを中止しました。LRS の設定を確認してください。"
                )

    def _get(self, url: str) -> requests.Response:
        headers = {"X-Experience-API-Version": XAPI_VERSION}
        basic = None
        if self.config.auth == "basic":
            basic = (self.config.username, self.config.password)
        else:
            self._token = self._token or self._fetch_token()  # one per pull
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self.session.get(url, headers=headers, auth=basic, allow_redirects=False)
        except requests.RequestException as e:
            raise SourceError(_unreachable(url, e, self.config.timeout_seconds)) from None
        _raise_for_status(response, url, self.config.auth)
        return response

    def _fetch_token(self) -> str:
        """OAuth 2.0 client credentials (RFC 6749 4.4), the client authenticated with HTTP
        Basic as section 2.3.1 says every server supports."""
        url = self.config.token_url
        data = {"grant_type": "client_credentials"}
        if self.config.scope:
            data["scope"] = self.config.scope
        try:
            response = self.session.post(
                url,
                data=data,
                auth=(self.config.client_id, self.config.client_secret),
                headers={"Accept": "application/json"},
                allow_redirects=False,
            )
        except requests.RequestException as e:
            raise SourceError(_unreachable(url, e, self.config.timeout_seconds)) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if response.status_code == 200 and isinstance(token, str) and token:
            return token
        code = payload.get("error", "") if isinstance(payload, dict) else ""
        code = code[:60] if isinstance(code, str) else ""  # the server's word, kept short
        detail = f"HTTP {response.status_code}{f'、{code}' if code else ''}"
        raise SourceError(
            f"LRS のアクセス トークンを取得できません（{where(url)}: {detail}）。"
            "client_id・client_secret・token_url（と scope）を確認してください。"
        )


def pull(config: XapiConfig, state: RunState, into: Path) -> list[Path]:
    """Fetch every page since the saved cursor into ``into`` as ``statements.pageN.json``
    (each archived with the run); then move the cursor to the newest ``stored`` time."""
    with LrsClient(config) as client:
        cursor = (
            state.data.get("since") if state.data.get("endpoint") == client.statements_url else None
        )
        since = cursor or (config.since.isoformat() if config.since else None)
        newest: tuple[dt.datetime, str] | None = None
        files = []
        for number, content, statements in client.pages(since, config.page_size):
            path = into / f"statements.page{number}.json"
            path.write_bytes(content)
            files.append(path)
            if state.archive is not None:
                state.archive(path.name, content)
            for stored in _stored_times(statements):
                if newest is None or stored[0] > newest[0]:
                    newest = stored
        log.info("xapi: %d page(s) pulled from the LRS", len(files))
        state.data["endpoint"] = client.statements_url
        state.data["since"] = newest[1] if newest else since
    return files


def check(config: XapiConfig) -> None:
    """Read one statement: proves the address, the credentials and the permission."""
    with LrsClient(config) as client:
        next(client.pages(None, 1))


def where(url: str) -> str:
    """The URL without its query (which may hold a paging token): for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _stored_times(statements: list[Any]) -> Iterator[tuple[dt.datetime, str]]:
    for item in statements:
        stored = item.get("stored") if isinstance(item, dict) else None
        if not isinstance(stored, str):
            continue
        try:
            moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is not None:
            yield moment, stored


def _statement_result(response: requests.Response, url: str) -> tuple[list[Any], str]:
    try:
        payload = json.loads(response.content)
    except ValueError:
        payload = None
    statements = payload.get("statements") if isinstance(payload, dict) else None
    more = payload.get("more") if isinstance(payload, dict) else None
    if not isinstance(statements, list) or not isinstance(more, str | None):
        raise SourceError(
            f"LRS（{where(url)}）の応答が xAPI の StatementResult（statements と more を持つ "
            "JSON）ではありません。endpoint が LRS の xAPI のアドレスか確認してください。"
        )
    return statements, more or ""


def _raise_for_status(response: requests.Response, url: str, auth: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    credentials = "username と password" if auth == "basic" else "client_id と client_secret"
    if status == 401:
        message = f"認証情報を受け付けませんでした（HTTP 401）。{credentials}を確認してください。"
    elif status == 403:
        message = (
            "statement の読み出しを拒否しました（HTTP 403）。この認証情報に statements の"
            "読み取り権限を与えてください。"
        )
    elif status >= 500:
        message = f"エラーを返しました（HTTP {status}）。時間をおいてもう一度実行してください。"
    elif 300 <= status < 400:
        message = f"想定外の転送を返しました（HTTP {status}）。endpoint を確認してください。"
    else:
        message = f"要求を受け付けませんでした（HTTP {status}）。endpoint を確認してください。"
    raise SourceError(f"LRS（{where(url)}）が{message}")


def _unreachable(url: str, error: Exception, timeout: float) -> str:
    if isinstance(error, requests.Timeout):
        return (
            f"LRS（{where(url)}）から {timeout:g} 秒以内に応答がありませんでした。"
            "時間をおいてもう一度実行するか、timeout_seconds を延ばしてください。"
        )
    tls = (
        "TLS 証明書を検証できません。通信を検査するプロキシを通す場合は、その CA を ca_bundle に"
        "指定してください。"
        if isinstance(error, requests.exceptions.SSLError)
        else ""
    )
    return (
        f"LRS（{where(url)}）に接続できません（{type(error).__name__}）。{tls}"
        "endpoint とネットワークを確認してください。"
    )
