"""Microsoft 365 usage from the Microsoft Graph usage reports (PITFALLS "Microsoft Graph usage
reports").

Per day it reads two per-user reports under an app registration with ``Reports.Read.All``
(client credentials through msal) and yields one ``M365UsageRecord`` per user, day and app:

- ``getM365AppUserDetail(date=…)``: the per-app Yes/No columns (Outlook, Word, Excel,
  PowerPoint, OneNote, Teams) say which apps the user used that day.
- ``getTeamsUserActivityUserDetail(date=…)``: a user counts as active in ``teams`` that day
  when "Last Activity Date" is that day or any activity count (chat messages, calls,
  meetings, posts, replies) is above zero. Either alone is enough: the counts miss actions
  such as reading a channel ("Has Other Action"), and the date alone misses nothing the counts
  would show, but we take both so that a report with one of them blank still counts.

A user/app/day both reports mark is yielded once. CSV is the default (the API answers 302 to
a short-lived pre-authenticated URL, which is fetched without the bearer token); ``format:
json`` pages through ``@odata.nextLink``. Concealed user names (32-hex hashes) fail the run
with instructions for the administrator: a hash can never be matched to the roster.
User principal names are never logged; only counts are.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import msal
import requests
from pydantic import Field, field_validator, model_validator

from renkei.connectors import http
from renkei.connectors.records import M365UsageRecord, Origin, Record
from renkei.connectors.sdk import (
    CheckResult,
    Connector,
    ConnectorConfig,
    RowError,
    RunState,
    SourceError,
    Stream,
    build,
)

log = logging.getLogger(__name__)

M365_REPORT = "getM365AppUserDetail"
TEAMS_REPORT = "getTeamsUserActivityUserDetail"
REPORTS = (M365_REPORT, TEAMS_REPORT)

UPN = "User Principal Name"
LAST_ACTIVITY = "Last Activity Date"
REFRESH_DATE = "Report Refresh Date"
# getM365AppUserDetail: column -> app name in records (and its JSON property in "details").
APP_COLUMNS = {
    "Outlook": ("outlook", "outlook"),
    "Word": ("word", "word"),
    "Excel": ("excel", "excel"),
    "PowerPoint": ("powerpoint", "powerPoint"),
    "OneNote": ("onenote", "oneNote"),
    "Teams": ("teams", "teams"),
}
# getTeamsUserActivityUserDetail: activity counts (column -> JSON property).
TEAMS_COUNTS = {
    "Team Chat Message Count": "teamChatMessageCount",
    "Private Chat Message Count": "privateChatMessageCount",
    "Call Count": "callCount",
    "Meeting Count": "meetingCount",
    "Post Messages": "postMessages",
    "Reply Messages": "replyMessages",
    "Meetings Organized Count": "meetingsOrganizedCount",
    "Meetings Attended Count": "meetingsAttendedCount",
}
REQUIRED_COLUMNS = {M365_REPORT: (UPN, *APP_COLUMNS), TEAMS_REPORT: (UPN, LAST_ACTIVITY)}

KEEP_FETCHED_DAYS = 60  # reports only go back 28 days; older "fetched" entries are dropped
MAX_WAIT_SECONDS = 300.0  # a longer Retry-After is capped; the run is not left hanging
_CONCEALED = re.compile(r"[0-9A-Fa-f]{32}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

PERMISSION_HINT = (
    "アプリ登録に Reports.Read.All（アプリケーションの許可）と管理者の同意が必要です"
    "（Microsoft Entra 管理センター → アプリの登録 → API のアクセス許可 → Microsoft Graph → "
    "アプリケーションの許可 → Reports.Read.All を追加し、「管理者の同意を与えます」を押してください）。"
)
CONCEALED_MESSAGE = (
    "Microsoft 365 の利用状況レポートでユーザー名が匿名化されています（ユーザー プリンシパル名の"
    "代わりに 32 桁の英数字が返されます）。これでは名簿と照合できないため、取り込みを中止しました。"
    "全体管理者が Microsoft 365 管理センター → 設定 → 組織設定 → サービス → レポート で"
    "「すべてのレポートで、ユーザー名、グループ名、およびサイト名を非表示にする」をオフにしてください"
    '（または Microsoft Graph で PATCH /admin/reportSettings に {"displayConcealedNames": false} を'
    "送ります。ReportSettings.ReadWrite.All が必要です）。反映まで数分かかることがあります。"
)


class MicrosoftGraphConfig(ConnectorConfig):
    """Where and how to read the usage reports: from Microsoft Graph (tenant, app, secret), or
    from report CSVs already exported (``paths``: files or directories; the admin centre's
    export, or files fetched elsewhere), which needs no credentials."""

    tenant_id: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9.-]*)?$")
    client_id: str = Field(default="", pattern=r"^[A-Za-z0-9-]*$")
    client_secret: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    dates: list[dt.date] | None = None  # explicit days; otherwise the last ``days`` days
    days: int = Field(default=7, ge=1, le=28)  # the reports keep 28 days
    format: Literal["csv", "json"] = "csv"
    max_retries: int = Field(default=4, ge=0, le=10)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    ca_bundle: Path | None = None  # extra CA to trust (a proxy or a test server)

    @field_validator("authority_host", "graph_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"「{value}」は https:// で始まる URL ではありません")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials_unless_files(self) -> MicrosoftGraphConfig:
        if not self.paths and not (self.tenant_id and self.client_id and self.client_secret):
            raise ValueError(
                "tenant_id・client_id・client_secret を指定するか、"
                "エクスポートしたレポートの CSV を指定してください"
            )
        return self

    @property
    def scope(self) -> str:
        """Graph's app-only scope: ``https://graph.microsoft.com/.default`` for the real one."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


@dataclass
class _Page:
    """One fetched response body: what is archived, and the rows it holds."""

    name: str
    content: bytes
    rows: list[_Row] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    origin: Origin
    values: dict[str, str]
    problem: str | None = None


class _RowProblem(Exception):
    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


class MicrosoftGraphConnector(Connector):
    name = "msgraph"
    version = "1.0"
    title = "Microsoft 365（Graph 利用状況レポート）"
    Config = MicrosoftGraphConfig
    secret_fields = frozenset({"client_secret"})
    secret_safe_fields = frozenset({"dates", "days", "format", "max_retries", "timeout_seconds"})

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        """``sleep`` and ``today`` are injectable so tests neither wait nor depend on the date."""
        self._sleep = sleep
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())  # reports use UTC days

    def discover(self) -> list[Stream]:
        return [
            Stream("m365_usage", "Microsoft 365 アプリと Teams の利用（利用者・日・アプリごと）")
        ]

    def check(self, config: MicrosoftGraphConfig) -> CheckResult:
        """Get a token and read one row of yesterday's report; never raises."""
        day = self._today() - dt.timedelta(days=1)
        try:
            with _GraphClient(config, self._sleep) as client:
                page = client.first_json_page(M365_REPORT, day)
            _refuse_concealed(page.rows)
        except SourceError as e:
            return CheckResult(False, str(e))
        return CheckResult(True, "Microsoft Graph に接続し、利用状況レポートを読めました。")

    def read(self, config: MicrosoftGraphConfig, state: RunState) -> Iterator[Record | RowError]:
        if config.paths:
            yield from self._read_files(config.paths)
            return
        days = self._days_to_fetch(config, state)
        log.info("msgraph: %d day(s) to fetch", len(days))
        if not days:
            return
        with _GraphClient(config, self._sleep) as client:
            yield from self._read_days(client, days, config, state)

    def _read_days(
        self,
        client: _GraphClient,
        days: list[dt.date],
        config: MicrosoftGraphConfig,
        state: RunState,
    ) -> Iterator[Record | RowError]:
        fetched = set(state.data.get("fetched") or [])
        for day in days:
            seen: set[tuple[str, str]] = set()
            rows_in_day = 0
            for report in REPORTS:
                pages = client.report(report, day, config.format)
                for page in pages:
                    if state.archive is not None:
                        state.archive(page.name, page.content)
                rows = [row for page in pages for row in page.rows]
                rows_in_day += len(rows)
                _refuse_concealed(rows)
                records = errors = 0
                for item in _unique(_interpret(report, day, rows), seen):
                    if isinstance(item, M365UsageRecord):
                        records += 1
                    else:
                        errors += 1
                    yield item
                log.info(
                    "msgraph: %s %s: %d rows, %d records, %d row errors",
                    report,
                    day,
                    len(rows),
                    records,
                    errors,
                )
            if rows_in_day:
                fetched.add(day.isoformat())
                oldest = (self._today() - dt.timedelta(days=KEEP_FETCHED_DAYS)).isoformat()
                state.data["fetched"] = sorted(d for d in fetched if d >= oldest)
            else:  # Graph answers an empty report while a day is still being processed
                log.info("msgraph: no rows for %s yet; it will be fetched again next run", day)

    def _read_files(self, paths: list[Path]) -> Iterator[Record | RowError]:
        """Exported report CSVs: the report is told by its columns, the day by the file name
        (…YYYY-MM-DD.csv) or else by the rows' Report Refresh Date."""
        files = sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.csv")))
        if not files:
            raise SourceError("レポートの CSV ファイルが見つかりません。")
        for path in files:
            content = path.read_bytes()  # one row per user: small even for a large city
            header = content.decode("utf-8-sig", errors="replace").split("\n", 1)[0]
            report = M365_REPORT if all(c in header for c in APP_COLUMNS) else TEAMS_REPORT
            rows = _csv_rows(path.name, content, report)
            _refuse_concealed(rows)
            named = _ISO_DATE.search(path.stem)
            refreshed = next((r.values.get(REFRESH_DATE, "") for r in rows if r.values), "")
            day_text = named.group() if named else refreshed.strip()
            try:
                day = dt.date.fromisoformat(day_text)
            except ValueError:
                raise SourceError(
                    f"{path.name}: レポートの日付がわかりません（ファイル名に "
                    "YYYY-MM-DD を含めてください）。"
                ) from None
            yield from _unique(_interpret(report, day, rows), set())

    def _days_to_fetch(self, config: MicrosoftGraphConfig, state: RunState) -> list[dt.date]:
        """Explicit ``dates`` always; otherwise the last ``days`` complete days not yet fetched."""
        if config.dates:
            return sorted(set(config.dates))
        today = self._today()
        fetched = set(state.data.get("fetched") or [])
        candidates = (today - dt.timedelta(days=n) for n in range(config.days, 0, -1))
        return [d for d in candidates if d.isoformat() not in fetched]


class _GraphClient:
    """Token, retries and report download. Every failure becomes a Japanese SourceError."""

    def __init__(self, config: MicrosoftGraphConfig, sleep: Callable[[float], None]) -> None:
        self.config = config
        self.sleep = sleep
        self.session = http.Session(config.timeout_seconds, config.ca_bundle)
        authority = f"{config.authority_host}/{config.tenant_id}"
        try:  # msal fetches the tenant's OpenID configuration here
            # Our session (not msal's own) so that ca_bundle and the timeout apply to msal too.
            # instance_discovery=False: the authority is configured, not guessed, and
            # discovery would ask login.microsoftonline.com about hosts it cannot know
            # (a sovereign cloud, the test server). Well-known hosts skip it anyway.
            self.app = msal.ConfidentialClientApplication(
                config.client_id,
                client_credential=config.client_secret,
                authority=authority,
                instance_discovery=False,
                http_client=self.session,
            )
        except requests.RequestException as e:
            self.session.close()
            raise SourceError(_unreachable(config.authority_host, e)) from None
        except ValueError:
            self.session.close()
            raise SourceError(
                f"Microsoft Entra ID からテナント「{config.tenant_id}」の構成を取得できません。"
                "テナント ID（ディレクトリ ID）と authority_host を確認してください。"
            ) from None

    def __enter__(self) -> _GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def token(self) -> str:
        """A bearer token; msal caches it and renews it before it expires."""
        try:
            result = self.app.acquire_token_for_client(scopes=[self.config.scope])
        except requests.RequestException as e:
            raise SourceError(_unreachable(self.config.authority_host, e)) from None
        if "access_token" not in result:
            raise SourceError(_token_error(result, self.config.scope))
        return str(result["access_token"])

    def report(self, report: str, day: dt.date, fmt: str) -> list[_Page]:
        call = f"{report}(date={day.isoformat()})"
        url = f"{self.config.graph_url}/reports/{call}"
        if fmt == "json":
            return self._json_pages(report, call, f"{url}?$format=application/json")
        response = self._get(url, authorized=True)
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("Location")
            if not location:
                raise SourceError(f"{call}: Microsoft Graph の転送先（Location）がありません。")
            # A pre-authenticated, short-lived URL on another host: never send it the token.
            response = self._get(urljoin(url, location), authorized=False)
        _raise_for_status(response, call)
        name = f"{call}.csv"
        return [_Page(name, response.content, _csv_rows(name, response.content, report))]

    def first_json_page(self, report: str, day: dt.date) -> _Page:
        """The first row of a report as JSON: a cheap proof that token and permission work."""
        call = f"{report}(date={day.isoformat()})"
        url = f"{self.config.graph_url}/reports/{call}?$format=application/json&$top=1"
        response = self._get(url, authorized=True)
        _raise_for_status(response, call)
        name = f"{call}.json"
        return _Page(
            name, response.content, _json_rows(name, _json(response, call)["value"], report)
        )

    def _json_pages(self, report: str, call: str, url: str | None) -> list[_Page]:
        pages: list[_Page] = []
        graph_origin = http.origin(self.config.graph_url)
        while url:
            response = self._get(url, authorized=True)
            _raise_for_status(response, call)
            payload = _json(response, call)
            name = f"{call}.json" if not pages else f"{call}.page{len(pages) + 1}.json"
            pages.append(
                _Page(name, response.content, _json_rows(name, payload.get("value") or [], report))
            )
            url = payload.get("@odata.nextLink")
            if url and http.origin(url) != graph_origin:
                raise SourceError(
                    f"{call}: 次のページの URL が Microsoft Graph の外を指しています。"
                )
            if len(pages) > 10_000:
                raise SourceError(f"{call}: ページが終わりません（@odata.nextLink が続きます）。")
        return pages

    def _get(self, url: str, *, authorized: bool) -> requests.Response:
        """GET with bounded retries: 429 waits Retry-After, 5xx and network errors back off."""
        retries = self.config.max_retries
        for attempt in range(retries + 1):
            headers = {"Authorization": f"Bearer {self.token()}"} if authorized else {}
            try:
                response = self.session.get(url, headers=headers, allow_redirects=False)
            except requests.RequestException as e:
                if attempt == retries:
                    raise SourceError(_unreachable(http.origin(url), e)) from None
                delay = _backoff(attempt)
                log.warning(
                    "msgraph: %s; retrying in %.0f s (%d/%d)",
                    type(e).__name__,
                    delay,
                    attempt + 1,
                    retries,
                )
                self.sleep(delay)
                continue
            status = response.status_code
            if status != 429 and status < 500:
                return response
            if attempt == retries:
                raise SourceError(
                    f"Microsoft Graph が応答できない状態です（HTTP {status}、{retries} 回再試行）。"
                    "時間をおいてもう一度実行してください。"
                )
            delay = _retry_after(response) if status == 429 else None
            delay = _backoff(attempt) if delay is None else delay
            log.warning(
                "msgraph: HTTP %d; retrying in %.0f s (%d/%d)", status, delay, attempt + 1, retries
            )
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


# -- parsing ---------------------------------------------------------------------------------


def _csv_rows(name: str, content: bytes, report: str) -> list[_Row]:
    """Rows of a report CSV (UTF-8 with BOM); ``line`` is the physical line, header = 1."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{name}: UTF-8 として読めません。") from None
    if not text.strip():
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS[report] if c not in header]
    if missing:
        raise SourceError(
            f"{name}: 必須の列がありません: {'、'.join(missing)}。"
            "Microsoft Graph のレポート形式が変わった可能性があります。"
        )
    rows = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as e:
            rows.append(
                _Row(
                    Origin(file=name, line=reader.line_num), {}, f"CSV として読めない行です（{e}）"
                )
            )
            continue
        if not any(c.strip() for c in cells):
            continue
        problem = None
        if len(cells) != len(header):
            problem = f"列の数が合いません（{len(header)} 列のはずが {len(cells)} 列）"
        rows.append(
            _Row(
                Origin(file=name, line=reader.line_num),
                dict(zip(header, cells, strict=False)),
                problem,
            )
        )


def _json_rows(name: str, items: list[Any], report: str) -> list[_Row]:
    """JSON items as CSV-column dicts, so both formats share one interpretation.
    ``line`` is the item's 1-based position in that page's ``value``."""
    rows = []
    for n, item in enumerate(items, start=1):
        origin = Origin(file=name, line=n)
        if not isinstance(item, dict):
            rows.append(_Row(origin, {}, "レポートの行がオブジェクトではありません"))
            continue
        values = {
            UPN: _text(item.get("userPrincipalName")),
            LAST_ACTIVITY: _text(item.get("lastActivityDate")),
            REFRESH_DATE: _text(item.get("reportRefreshDate")),
        }
        if report == M365_REPORT:
            details = item.get("details") or [{}]
            first = details[0] if isinstance(details[0], dict) else {}
            for column, (_app, prop) in APP_COLUMNS.items():
                values[column] = _text(first.get(prop))
        else:
            for column, prop in TEAMS_COUNTS.items():
                if prop in item:
                    values[column] = _text(item[prop])
        rows.append(_Row(origin, values))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _refuse_concealed(rows: Iterable[_Row]) -> None:
    """Fail when most user names are 32-hex hashes: concealment is on in the tenant."""
    names = [r.values.get(UPN, "").strip() for r in rows]
    names = [n for n in names if n]
    concealed = sum(1 for n in names if "@" not in n and _CONCEALED.fullmatch(n))
    if names and concealed * 2 > len(names):
        log.error("msgraph: %d of %d user names are concealed", concealed, len(names))
        raise SourceError(CONCEALED_MESSAGE)


def _interpret(report: str, day: dt.date, rows: list[_Row]) -> Iterator[Record | RowError]:
    for row in rows:
        if row.problem:
            yield RowError(row.origin, "", "", row.problem)
            continue
        try:
            upn = row.values.get(UPN, "").strip()
            if not upn:
                raise _RowProblem(UPN, "", "ユーザー プリンシパル名がありません")
            for column in (REFRESH_DATE, LAST_ACTIVITY):
                _date(row.values, column)
            apps = _m365_apps(row.values) if report == M365_REPORT else _teams_apps(row.values, day)
        except _RowProblem as p:
            yield RowError(row.origin, p.column, p.value, p.reason)
            continue
        for app in apps:
            yield build(
                M365UsageRecord,
                row.origin,
                {"principal_name": upn, "date": day, "app": app, "active": True},
                {"principal_name": UPN},
            )


def _unique(
    items: Iterable[Record | RowError], seen: set[tuple[str, str]]
) -> Iterator[Record | RowError]:
    """Drop a user/app of one day already yielded (both reports may mark Teams use)."""
    for item in items:
        if isinstance(item, M365UsageRecord):
            key = (item.principal_name.casefold(), item.app)
            if key in seen:
                continue
            seen.add(key)
        yield item


def _date(values: dict[str, str], column: str) -> dt.date | None:
    value = values.get(column, "").strip()
    if not value:
        return None
    if _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _RowProblem(column, value, "日付として読めません（YYYY-MM-DD のはずです）")


def _m365_apps(values: dict[str, str]) -> list[str]:
    apps = []
    for column, (app, _prop) in APP_COLUMNS.items():
        value = values.get(column, "").strip()
        if value.casefold() in ("yes", "true"):
            apps.append(app)
        elif value.casefold() not in ("no", "false", ""):
            raise _RowProblem(column, value, "Yes か No のはずです")
    return apps


def _teams_apps(values: dict[str, str], day: dt.date) -> list[str]:
    """Active in Teams that day: Last Activity Date is the day, or any count is above zero."""
    active = _date(values, LAST_ACTIVITY) == day
    for column in TEAMS_COUNTS:
        value = values.get(column, "").strip()
        if not value:
            continue
        try:
            count = int(value)
        except ValueError:
            raise _RowProblem(column, value, "数値として読めません") from None
        active = active or count > 0
    return ["teams"] if active else []


# -- HTTP helpers ----------------------------------------------------------------------------


def _backoff(attempt: int) -> float:
    return float(min(2**attempt, 60))


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (or as an HTTP date), capped; None when absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def _json(response: requests.Response, call: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("value", []), list):
        raise SourceError(f"{call}: Microsoft Graph の応答が JSON のレポートではありません。")
    return payload


def _graph_error(response: requests.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return ""


def _raise_for_status(response: requests.Response, call: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 403:
        raise SourceError(
            f"Microsoft Graph が利用状況レポート（{call}）へのアクセスを拒否しました"
            f"（HTTP 403）。{PERMISSION_HINT}"
        )
    if status == 401:
        raise SourceError(
            f"Microsoft Graph がアクセス トークンを受け付けませんでした（HTTP 401）。"
            f"{PERMISSION_HINT}"
        )
    if 300 <= status < 400:
        raise SourceError(f"{call}: 想定外の転送です（HTTP {status}）。")
    detail = _graph_error(response)
    detail = f"（{detail}）" if detail else ""
    hint = (
        "レポートは過去 28 日分しか取得できません。日付を確認してください。"
        if status == 400
        else ""
    )
    raise SourceError(
        f"{call}: Microsoft Graph がエラーを返しました（HTTP {status}）{detail}。{hint}"
    )


def _unreachable(url: str, error: Exception) -> str:
    tls = (
        "TLS 証明書を検証できません。通信を検査するプロキシを通す場合は、その CA を ca_bundle に"
        "指定してください。"
        if isinstance(error, requests.exceptions.SSLError)
        else ""
    )
    return (
        f"Microsoft Graph に接続できません（{http.origin(url)}: {type(error).__name__}）。{tls}"
        "ネットワークとテナント ID を確認してください。"
    )


def _token_error(result: dict[str, Any], scope: str) -> str:
    error = str(result.get("error", ""))
    codes = result.get("error_codes") or []
    if error == "invalid_client":
        return (
            "アクセス トークンを取得できません: クライアント シークレットが正しくないか、期限切れです"
            "（invalid_client）。アプリ登録の「証明書とシークレット」で新しいシークレットを作り、"
            "設定し直してください。"
        )
    if error == "unauthorized_client" or 700016 in codes:
        return (
            "アクセス トークンを取得できません: アプリケーション（クライアント）ID がこのテナントに"
            "見つかりません。client_id とテナント ID を確認してください。"
        )
    if error == "invalid_scope":
        return (
            f"アクセス トークンを取得できません: スコープ {scope} が受け付けられませんでした。"
            "graph_url を確認してください。"
        )
    return (
        f"アクセス トークンを取得できません（{error or '不明なエラー'}）。"
        "テナント ID・クライアント ID・クライアント シークレットを確認してください。"
    )
