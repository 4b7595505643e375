"""A local learning record store: the xAPI statements resource over real HTTPS on 127.0.0.1
(the certificate of fake_graph), with HTTP Basic or OAuth 2.0 client-credentials auth.

It behaves as xAPI 1.0.3 says: ``GET /xapi/statements`` needs ``X-Experience-API-Version``,
answers a ``StatementResult`` of at most ``limit`` statements stored after ``since`` (oldest
first with ``ascending=true``), and a relative ``more`` link for the rest. Statements get a
``stored`` time when added. Failure modes: a status for every statements request, a delay
(for timeouts), a body that is not JSON, a ``more`` link to another host. Every request is
logged in ``fake.requests``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fake_graph import HttpsServer
from fake_graph import _Handler as _GraphHandler


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeLrs:
    username: str = "renkei"
    password: str = "lrs-pa55word"
    client_id: str = "renkei-client"
    client_secret: str = "lrs-client-s3cret"
    statements: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None  # every statements request answers this
    delay: float = 0.0  # seconds before answering a statements request
    not_json: bool = False
    more_host: str | None = None  # `more` links point at this origin instead
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._clock = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
        self._https: HttpsServer | None = None

    def add(self, *statements: dict[str, Any]) -> None:
        """Store statements now: each gets a ``stored`` time a second after the last."""
        for statement in statements:
            self._clock += dt.timedelta(seconds=1)
            self.statements.append(
                {**statement, "stored": self._clock.isoformat().replace("+00:00", "Z")}
            )

    def start(self) -> FakeLrs:
        fake = self

        class Handler(_LrsHandler):
            lrs = fake

        self._https = HttpsServer(Handler, "fake-lrs-")
        return self

    def stop(self) -> None:
        if self._https:
            self._https.stop()
            self._https = None

    @property
    def base_url(self) -> str:
        assert self._https, "FakeLrs is not started"
        return self._https.base_url

    @property
    def ca_file(self) -> Path:
        assert self._https, "FakeLrs is not started"
        return self._https.ca_file

    def config(self, auth: str = "basic", **overrides: Any) -> dict[str, Any]:
        """xapi connector config fields that pull from this LRS."""
        values: dict[str, Any] = {
            "endpoint": f"{self.base_url}/xapi/",
            "auth": auth,
            "ca_bundle": self.ca_file,
            "timeout_seconds": 5,
        }
        if auth == "basic":
            values |= {"username": self.username, "password": self.password}
        else:
            values |= {
                "token_url": f"{self.base_url}/oauth/token",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        return values | overrides

    def statement_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/xapi/statements"]


class _LrsHandler(_GraphHandler):
    lrs: FakeLrs

    def _log_request(self) -> Request:
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query).items()},
            dict(self.headers.items()),
        )
        self.lrs.requests.append(request)
        return request

    def _answer(self, request: Request, status: int, payload: Any, raw: bytes | None = None):
        request.status = status
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = self._log_request()
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        lrs = self.lrs
        expected = _basic(lrs.client_id, lrs.client_secret)
        if request.path != "/oauth/token" or form.get("grant_type") != "client_credentials":
            self._answer(request, 400, {"error": "unsupported_grant_type"})
        elif self.headers.get("Authorization") != expected:
            self._answer(request, 401, {"error": "invalid_client"})
        else:
            token = secrets.token_urlsafe(16)
            lrs._tokens.add(token)
            self._answer(
                request, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            )

    def do_GET(self) -> None:
        request = self._log_request()
        lrs = self.lrs
        if request.path != "/xapi/statements":
            self._answer(request, 404, {"error": "not found"})
            return
        if lrs.delay:
            time.sleep(lrs.delay)
        authorization = self.headers.get("Authorization") or ""
        bearer = authorization.removeprefix("Bearer ")
        if authorization != _basic(lrs.username, lrs.password) and bearer not in lrs._tokens:
            self._answer(request, 401, {"error": "unauthorized"})
            return
        if self.headers.get("X-Experience-API-Version") != "1.0.3":
            self._answer(request, 400, {"error": "X-Experience-API-Version missing"})
            return
        if lrs.status:
            self._answer(request, lrs.status, {"error": "configured failure"})
            return
        if lrs.not_json:
            self._answer(request, 200, None, b"<html>login</html>")
            return
        query = request.query
        since = query.get("since")
        limit = int(query.get("limit") or 0) or 100
        offset = int(query.get("offset") or 0)
        found = [
            s for s in lrs.statements if since is None or _moment(s["stored"]) > _moment(since)
        ]
        page = found[offset : offset + limit]
        more = ""
        if offset + limit < len(found):
            rest = {k: v for k, v in query.items() if k != "offset"} | {"offset": offset + limit}
            more = f"{lrs.more_host or ''}/xapi/statements?{urlencode(rest)}"
        self._answer(request, 200, {"statements": page, "more": more})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def fake_lrs() -> Iterator[FakeLrs]:
    fake = FakeLrs().start()
    try:
        yield fake
    finally:
        fake.stop()
