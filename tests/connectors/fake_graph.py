"""A local stand-in for Entra ID (token endpoint) and the Microsoft Graph usage reports.

It speaks HTTPS on 127.0.0.1 with a certificate made at start-up, because msal only accepts
``https://`` authorities (``msal.authority.canonicalize``). Point the connector at it with
``fake.config(...)``; ``fake.ca_file`` is the CA the client must trust.

Behaviour follows the documented API: OIDC discovery and client-credentials tokens (wrong
secret → 401 ``invalid_client``), bearer check on reports, CSV reports as a 302 to a one-time
download URL serving a UTF-8 BOM CSV, ``$format=application/json`` paged with
``@odata.nextLink``, 429 + ``Retry-After`` throttling, 503s, concealed user names and 403 for
an app without ``Reports.Read.All``. Every request is logged in ``fake.requests``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

APPS = ("outlook", "word", "excel", "powerpoint", "onenote", "teams")
M365_COLUMNS = [
    "Report Refresh Date",
    "User Principal Name",
    "Last Activation Date",
    "Last Activity Date",
    "Report Period",
    "Windows",
    "Mac",
    "Mobile",
    "Web",
    "Outlook",
    "Word",
    "Excel",
    "PowerPoint",
    "OneNote",
    "Teams",
    *[
        f"{app} ({platform})"
        for platform in ("Windows", "Mac", "Mobile", "Web")
        for app in ("Outlook", "Word", "Excel", "PowerPoint", "OneNote", "Teams")
    ],
]
TEAMS_COLUMNS = [
    "Report Refresh Date",
    "Tenant Display Name",
    "Shared Channel Tenant Display Names",
    "User Id",
    "User Principal Name",
    "Last Activity Date",
    "Is Deleted",
    "Deleted Date",
    "Assigned Products",
    "Team Chat Message Count",
    "Private Chat Message Count",
    "Call Count",
    "Meeting Count",
    "Post Messages",
    "Reply Messages",
    "Urgent Messages",
    "Meetings Organized Count",
    "Meetings Attended Count",
    "Ad Hoc Meetings Organized Count",
    "Ad Hoc Meetings Attended Count",
    "Scheduled One-time Meetings Organized Count",
    "Scheduled One-time Meetings Attended Count",
    "Scheduled Recurring Meetings Organized Count",
    "Scheduled Recurring Meetings Attended Count",
    "Audio Duration",
    "Video Duration",
    "Screen Share Duration",
    "Audio Duration In Seconds",
    "Video Duration In Seconds",
    "Screen Share Duration In Seconds",
    "Has Other Action",
    "Is Licensed",
    "Report Period",
]
_APP_COLUMN = {
    "outlook": "Outlook",
    "word": "Word",
    "excel": "Excel",
    "powerpoint": "PowerPoint",
    "onenote": "OneNote",
    "teams": "Teams",
}
_APP_JSON = {
    "outlook": "outlook",
    "word": "word",
    "excel": "excel",
    "powerpoint": "powerPoint",
    "onenote": "oneNote",
    "teams": "teams",
}
_TEAMS_JSON = {  # CSV column -> JSON property of teamsUserActivityUserDetail
    "Report Refresh Date": "reportRefreshDate",
    "User Principal Name": "userPrincipalName",
    "Last Activity Date": "lastActivityDate",
    "Is Deleted": "isDeleted",
    "Deleted Date": "deletedDate",
    "Team Chat Message Count": "teamChatMessageCount",
    "Private Chat Message Count": "privateChatMessageCount",
    "Call Count": "callCount",
    "Meeting Count": "meetingCount",
    "Post Messages": "postMessages",
    "Reply Messages": "replyMessages",
    "Meetings Organized Count": "meetingsOrganizedCount",
    "Meetings Attended Count": "meetingsAttendedCount",
    "Has Other Action": "hasOtherAction",
    "Report Period": "reportPeriod",
}
REPORTS = ("getM365AppUserDetail", "getTeamsUserActivityUserDetail")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeGraph:
    """Configure the attributes, then ``start()`` (or use the ``fake_graph`` fixture)."""

    tenant_id: str = "11111111-2222-3333-4444-555555555555"
    client_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    client_secret: str = "s3cret~value"
    # usage[upn][day] = apps used that day (names from APPS)
    usage: dict[str, dict[dt.date, set[str]]] = field(default_factory=dict)
    # Extra raw CSV/JSON rows per report (CSV column -> value), e.g. malformed ones.
    extra_rows: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {r: [] for r in REPORTS}
    )
    concealed: bool = False
    forbidden: bool = False  # app registration lacks Reports.Read.All
    throttle_first: int = 0  # the first N report requests get 429 + Retry-After
    retry_after: int = 1
    fail_first: int = 0  # the first N report requests (after throttling) get 503
    page_size: int = 200
    requests: list[Request] = field(default_factory=list)
    downloads_with_authorization: int = 0

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._downloads: dict[str, bytes] = {}
        self._report_calls = 0
        self._lock = threading.Lock()
        self._https: HttpsServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeGraph:
        fake = self

        class Handler(_Handler):
            graph = fake

        self._https = HttpsServer(Handler, "fake-graph-")
        return self

    def stop(self) -> None:
        if self._https:
            self._https.stop()
            self._https = None

    @property
    def base_url(self) -> str:
        assert self._https, "FakeGraph is not started"
        return self._https.base_url

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def ca_file(self) -> Path:
        assert self._https, "FakeGraph is not started"
        return self._https.ca_file

    def config(self, **overrides: Any) -> dict[str, Any]:
        """Connector config fields that point at this fake."""
        return {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "authority_host": self.base_url,
            "graph_url": self.graph_url,
            "ca_bundle": self.ca_file,
            **overrides,
        }

    def report_requests(self) -> list[Request]:
        return [r for r in self.requests if "/reports/" in r.path]

    @staticmethod
    def conceal(upn: str) -> str:
        """What a concealed report shows instead of the name: an opaque 32-hex hash."""
        return hashlib.md5(upn.encode()).hexdigest().upper()

    # -- report content ----------------------------------------------------------------------

    def rows(self, report: str, day: dt.date) -> list[dict[str, str]]:
        """The report for one day as CSV-column dicts: users with any activity that day
        (a day Graph has not processed yet, or without activity, is header-only)."""
        rows = []
        for n, (upn, days) in enumerate(sorted(self.usage.items())):
            apps = days.get(day, set())
            if not apps:
                continue
            if report == "getM365AppUserDetail":
                rows.append(self._m365_row(upn, day, apps))
            else:
                rows.append(self._teams_row(upn, day, "teams" in apps, other_only=n % 2 == 1))
        return rows + [dict(r) for r in self.extra_rows.get(report, [])]

    def _name(self, upn: str) -> str:
        return self.conceal(upn) if self.concealed else upn

    def _m365_row(self, upn: str, day: dt.date, apps: set[str]) -> dict[str, str]:
        row = dict.fromkeys(M365_COLUMNS, "No")
        row.update(
            {
                "Report Refresh Date": (day + dt.timedelta(days=2)).isoformat(),
                "User Principal Name": self._name(upn),
                "Last Activation Date": "",
                "Last Activity Date": day.isoformat(),
                "Report Period": "1",
                "Windows": "Yes",
            }
        )
        for app in apps:
            row[_APP_COLUMN[app]] = "Yes"
            row[f"{_APP_COLUMN[app]} (Windows)"] = "Yes"
        return row

    def _teams_row(self, upn: str, day: dt.date, active: bool, other_only: bool) -> dict[str, str]:
        """Active users have chat counts, or (every other user) only Last Activity Date;
        users active elsewhere but not in Teams have zero counts and an older date."""
        row = dict.fromkeys(TEAMS_COLUMNS, "0")
        row.update(
            {
                "Report Refresh Date": (day + dt.timedelta(days=2)).isoformat(),
                "Tenant Display Name": "渋谷区教育委員会",
                "Shared Channel Tenant Display Names": "",
                "User Id": "",
                "User Principal Name": self._name(upn),
                "Is Deleted": "False",
                "Deleted Date": "",
                "Assigned Products": "MICROSOFT 365 A3 FOR STUDENTS",
                "Has Other Action": "No",
                "Is Licensed": "Yes",
                "Report Period": "1",
                "Audio Duration": "PT0S",
                "Video Duration": "PT0S",
                "Screen Share Duration": "PT0S",
            }
        )
        if active:
            row["Last Activity Date"] = day.isoformat()
            if other_only:
                row["Has Other Action"] = "Yes"
            else:
                row["Team Chat Message Count"] = "3"
                row["Private Chat Message Count"] = "5"
        else:
            row["Last Activity Date"] = (day - dt.timedelta(days=3)).isoformat()
        return row

    def csv_bytes(self, report: str, day: dt.date) -> bytes:
        columns = M365_COLUMNS if report == "getM365AppUserDetail" else TEAMS_COLUMNS
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for row in self.rows(report, day):
            writer.writerow([row.get(c, "") for c in columns])
        return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")

    def json_items(self, report: str, day: dt.date) -> list[dict[str, Any]]:
        return [
            _m365_json(r) if report == "getM365AppUserDetail" else _teams_json(r)
            for r in self.rows(report, day)
        ]

    # -- request handling (called from _Handler) ---------------------------------------------

    def _next_report_failure(self) -> int:
        """429 for the first ``throttle_first`` report requests, then 503 for ``fail_first``."""
        with self._lock:
            self._report_calls += 1
            n = self._report_calls
        if n <= self.throttle_first:
            return 429
        if n <= self.throttle_first + self.fail_first:
            return 503
        return 0


def _m365_json(row: dict[str, str]) -> dict[str, Any]:
    details: dict[str, Any] = {"reportPeriod": _int_or(row.get("Report Period"), 1)}
    for app, prop in _APP_JSON.items():
        value = row.get(_APP_COLUMN[app], "No")
        details[prop] = True if value == "Yes" else False if value == "No" else value
    return {
        "reportRefreshDate": row.get("Report Refresh Date") or None,
        "userPrincipalName": row.get("User Principal Name", ""),
        "lastActivationDate": row.get("Last Activation Date") or None,
        "lastActivityDate": row.get("Last Activity Date") or None,
        "details": [details],
    }


def _teams_json(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for column, prop in _TEAMS_JSON.items():
        value = row.get(column, "")
        if column.endswith(("Count", "Messages")):
            item[prop] = _int_or(value, value)
        elif value in ("True", "False", "Yes", "No"):
            item[prop] = value in ("True", "Yes")
        else:
            item[prop] = value or None
    return item


def _int_or(value: str | None, default: Any) -> Any:
    try:
        return int(value or "")
    except ValueError:
        return default


class HttpsServer:
    """A threaded HTTPS server on 127.0.0.1 with its own throwaway CA (``ca_file``), started
    at once; the fakes' handlers answer on it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        context = _tls_context(Path(self._tmp.name))
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # Handshake in the handler thread, not in accept(), so one stuck client cannot block.
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> Path:
        return Path(self._tmp.name) / "ca.pem"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that reject our certificate (a test does) are expected, not noise."""
        import sys

        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    graph: FakeGraph
    _request: Request

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._request.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _graph_error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(
            status,
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {"request-id": secrets.token_hex(8)},
                }
            },
            headers,
        )

    def _log(self) -> None:
        self._request = Request(self.command, self.path, dict(self.headers.items()))
        with self.graph._lock:
            self.graph.requests.append(self._request)

    def do_GET(self) -> None:
        self._log()
        url = urlsplit(self.path)
        path = unquote(url.path)
        g = self.graph
        if path == f"/{g.tenant_id}/v2.0/.well-known/openid-configuration":
            base = f"{g.base_url}/{g.tenant_id}"
            return self._json(
                200,
                {
                    "issuer": f"{base}/v2.0",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                },
            )
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            return self._json(
                400,
                {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."},
            )
        if path.startswith("/data/download/"):
            return self._download(path.rsplit("/", 1)[1])
        if path.startswith("/v1.0/reports/"):
            return self._report(path.removeprefix("/v1.0/reports/"), parse_qs(url.query))
        return self._graph_error(404, "ResourceNotFound", "Not found")

    def do_POST(self) -> None:
        self._log()
        g = self.graph
        if urlsplit(self.path).path != f"/{g.tenant_id}/oauth2/v2.0/token":
            return self._json(404, {"error": "not_found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self._json(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != g.client_id:
            return self._json(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application with identifier was not found "
                    "in the directory.",
                    "error_codes": [700016],
                },
            )
        if form.get("client_secret") != g.client_secret:
            return self._json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
            )
        if form.get("scope") != f"{g.base_url}/.default":
            return self._json(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": "AADSTS1002012: The provided value for scope is not valid.",
                },
            )
        token = secrets.token_urlsafe(24)
        with g._lock:
            g._tokens.add(token)
        return self._json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    def _report(self, call: str, query: dict[str, list[str]]) -> None:
        g = self.graph
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in g._tokens:
            return self._graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty or invalid."
            )
        name, _, arg = call.partition("(")
        if name not in REPORTS or not arg.startswith("date=") or not arg.endswith(")"):
            return self._graph_error(400, "BadRequest", "Unsupported report call.")
        try:
            day = dt.date.fromisoformat(arg[5:-1].strip("'"))
        except ValueError:
            return self._graph_error(400, "InvalidArgument", "Invalid date value specified.")
        if g.forbidden:
            return self._graph_error(403, "S2SUnauthorized", "Invalid permission.")
        failure = g._next_report_failure()
        if failure == 429:
            return self._graph_error(
                429, "TooManyRequests", "Too many requests.", {"Retry-After": str(g.retry_after)}
            )
        if failure:
            return self._graph_error(503, "ServiceUnavailable", "Service unavailable.")
        if query.get("$format", ["text/csv"])[0] == "application/json":
            return self._json_page(name, day, query)
        key = secrets.token_urlsafe(16)
        with g._lock:
            g._downloads[key] = g.csv_bytes(name, day)
        self._send(302, b"", "text/plain", {"Location": f"{g.base_url}/data/download/{key}"})

    def _json_page(self, name: str, day: dt.date, query: dict[str, list[str]]) -> None:
        g = self.graph
        items = g.json_items(name, day)
        start = int(query.get("$skiptoken", ["0"])[0])
        size = min(g.page_size, int(query.get("$top", [str(g.page_size)])[0]))
        payload: dict[str, Any] = {
            "@odata.context": f"{g.graph_url}/$metadata#Collection(microsoft.graph.report)",
            "value": items[start : start + size],
        }
        if start + size < len(items):
            payload["@odata.nextLink"] = (
                f"{g.graph_url}/reports/{name}(date={day.isoformat()})"
                f"?$format=application/json&$skiptoken={start + size}"
            )
        self._json(200, payload)

    def _download(self, key: str) -> None:
        g = self.graph
        if "Authorization" in self.headers:
            # A pre-authenticated blob URL must not receive the Graph token.
            g.downloads_with_authorization += 1
            return self._send(
                400, b"<Error><Code>InvalidAuthenticationInfo</Code></Error>", "application/xml"
            )
        with g._lock:
            body = g._downloads.pop(key, None)
        if body is None:
            return self._send(404, b"<Error><Code>BlobNotFound</Code></Error>", "application/xml")
        self._send(200, body, "application/octet-stream")


_TLS_FILES: tuple[bytes, bytes, bytes] | None = None


def _tls_context(directory: Path) -> ssl.SSLContext:
    """A server context for 127.0.0.1 signed by a throw-away CA written to ``ca.pem``."""
    global _TLS_FILES
    if _TLS_FILES is None:
        _TLS_FILES = _make_certificates()
    ca_pem, cert_pem, key_pem = _TLS_FILES
    (directory / "ca.pem").write_bytes(ca_pem)
    (directory / "server.pem").write_bytes(cert_pem + key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem")
    return context


def _make_certificates() -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Graph test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem),
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    """A started FakeGraph, stopped after the test. Configure it before the first request."""
    fake = FakeGraph().start()
    try:
        yield fake
    finally:
        fake.stop()
