"""The msgraph connector against FakeGraph over real HTTPS on 127.0.0.1 (no database)."""

from __future__ import annotations

import datetime as dt
import logging
import socket

import pytest
from fake_graph import REPORTS, FakeGraph

from renkei.connectors.builtin.msgraph import MicrosoftGraphConnector
from renkei.connectors.records import M365UsageRecord
from renkei.connectors.sdk import RowError, RunState, SourceError

DAY1, DAY2, TODAY = dt.date(2025, 6, 2), dt.date(2025, 6, 3), dt.date(2025, 6, 4)
USAGE = {
    "taro@school.example.jp": {DAY1: {"teams", "word"}, DAY2: {"outlook"}},
    "hanako@school.example.jp": {DAY1: {"excel", "powerpoint", "onenote"}, DAY2: {"teams"}},
    # Active in Teams on DAY2 with zero counts: only Last Activity Date says so.
    "jiro@school.example.jp": {DAY2: {"teams", "outlook"}},
}
CONCEALMENT_SETTING = "「すべてのレポートで、ユーザー名、グループ名、およびサイト名を非表示にする」"


def expected(usage: dict, days: set[dt.date] | None = None) -> set[tuple[str, dt.date, str]]:
    return {
        (upn, day, app)
        for upn, by_day in usage.items()
        for day, apps in by_day.items()
        if days is None or day in days
        for app in apps
    }


def triples(items: list) -> set[tuple[str, dt.date, str]]:
    return {(r.principal_name, r.date, r.app) for r in items if isinstance(r, M365UsageRecord)}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(sleeps: Sleeps) -> MicrosoftGraphConnector:
    return MicrosoftGraphConnector(sleep=sleeps, today=lambda: TODAY)


def config(fake: FakeGraph, **overrides):
    return MicrosoftGraphConnector.Config(**fake.config(**overrides))


def test_csv_reports_with_redirect_and_token(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    items = list(connector.read(config(fake_graph, dates=[DAY1, DAY2]), RunState()))

    assert not [i for i in items if isinstance(i, RowError)]
    assert triples(items) == expected(USAGE)
    assert len(items) == len(expected(USAGE))  # teams marked by both reports is yielded once
    token_calls = [r for r in fake_graph.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1  # client credentials, cached by msal for the whole run
    reports = fake_graph.report_requests()
    assert len(reports) == 4 and {r.status for r in reports} == {302}
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in reports)
    downloads = [r for r in fake_graph.requests if r.path.startswith("/data/download/")]
    assert len(downloads) == 4 and {r.status for r in downloads} == {200}
    assert not any("Authorization" in r.headers for r in downloads)
    assert fake_graph.downloads_with_authorization == 0


def test_origin_is_the_csv_line(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    items = list(connector.read(config(fake_graph, dates=[DAY1]), RunState()))
    # Rows are sorted by UPN in the fake: hanako on line 2, taro on line 3.
    word = next(r for r in items if r.app == "word")
    assert word.origin.file == "getM365AppUserDetail(date=2025-06-02).csv"
    assert word.origin.line == 3


def test_json_paging_across_three_pages(fake_graph: FakeGraph, connector) -> None:
    usage = {f"user{n}@school.example.jp": {DAY1: {"word"}} for n in range(5)}
    fake_graph.usage = usage
    fake_graph.page_size = 2
    items = list(connector.read(config(fake_graph, dates=[DAY1], format="json"), RunState()))

    assert triples(items) == expected(usage)
    m365 = [r for r in fake_graph.report_requests() if "getM365AppUserDetail" in r.path]
    assert len(m365) == 3
    assert all("$format=application/json" in r.path for r in m365)
    assert [("$skiptoken" in r.path) for r in m365] == [False, True, True]
    assert {i.origin.file for i in items} == {
        "getM365AppUserDetail(date=2025-06-02).json",
        "getM365AppUserDetail(date=2025-06-02).page2.json",
        "getM365AppUserDetail(date=2025-06-02).page3.json",
    }


def test_json_matches_csv(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    as_csv = list(connector.read(config(fake_graph, dates=[DAY1, DAY2]), RunState()))
    as_json = list(
        connector.read(config(fake_graph, dates=[DAY1, DAY2], format="json"), RunState())
    )
    assert triples(as_csv) == triples(as_json) == expected(USAGE)


def test_429_waits_retry_after_and_succeeds(fake_graph: FakeGraph, connector, sleeps) -> None:
    fake_graph.usage = USAGE
    fake_graph.throttle_first = 2
    items = list(connector.read(config(fake_graph, dates=[DAY1]), RunState()))

    assert triples(items) == expected(USAGE, {DAY1})
    assert [r.status for r in fake_graph.report_requests()][:3] == [429, 429, 302]
    assert sleeps == [1.0, 1.0]  # Retry-After: 1, honoured through the injected sleep


def test_5xx_retries_are_bounded(fake_graph: FakeGraph, connector, sleeps) -> None:
    fake_graph.usage = USAGE
    fake_graph.fail_first = 100
    with pytest.raises(SourceError, match="HTTP 503、2 回再試行"):
        list(connector.read(config(fake_graph, dates=[DAY1], max_retries=2), RunState()))
    assert len(fake_graph.report_requests()) == 3
    assert sleeps == [1.0, 2.0]  # exponential backoff


def test_wrong_secret(fake_graph: FakeGraph, connector) -> None:
    bad = config(fake_graph, client_secret="wrong", dates=[DAY1])
    result = connector.check(bad)
    assert not result.ok
    assert "クライアント シークレットが正しくないか、期限切れです" in result.message
    with pytest.raises(SourceError, match="invalid_client"):
        list(connector.read(bad, RunState()))
    assert not fake_graph.report_requests()


def test_unknown_client_id(fake_graph: FakeGraph, connector) -> None:
    result = connector.check(config(fake_graph, client_id="00000000-0000-0000-0000-000000000000"))
    assert not result.ok and "クライアント）ID がこのテナントに見つかりません" in result.message


def test_unknown_tenant(fake_graph: FakeGraph, connector) -> None:
    result = connector.check(config(fake_graph, tenant_id="nosuch.onmicrosoft.com"))
    assert not result.ok and "テナント「nosuch.onmicrosoft.com」" in result.message


def test_missing_permission_names_reports_read_all(fake_graph: FakeGraph, connector) -> None:
    fake_graph.forbidden = True
    result = connector.check(config(fake_graph))
    assert not result.ok
    assert "Reports.Read.All（アプリケーションの許可）と管理者の同意が必要です" in result.message
    with pytest.raises(SourceError, match=r"HTTP 403.*Reports\.Read\.All"):
        list(connector.read(config(fake_graph, dates=[DAY1]), RunState()))


def test_unreachable_host_is_a_message_not_an_exception(connector) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    result = connector.check(
        MicrosoftGraphConnector.Config(
            tenant_id="contoso.onmicrosoft.com",
            client_id="abc",
            client_secret="x",
            authority_host=f"https://127.0.0.1:{port}",
            graph_url=f"https://127.0.0.1:{port}/v1.0",
        )
    )
    assert not result.ok
    assert "Microsoft Graph に接続できません" in result.message
    assert "ネットワークとテナント ID を確認してください" in result.message


def test_untrusted_certificate(fake_graph: FakeGraph, connector) -> None:
    result = connector.check(config(fake_graph, ca_bundle=None))
    assert not result.ok and "TLS 証明書を検証できません" in result.message


def test_ca_bundle_wins_over_requests_ca_bundle_env(
    fake_graph: FakeGraph, connector, monkeypatch
) -> None:
    """requests lets REQUESTS_CA_BUNDLE override Session.verify (psf/requests#3829)."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    result = connector.check(config(fake_graph))
    assert result.ok, result.message


def test_check_ok(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = {"taro@school.example.jp": {TODAY - dt.timedelta(days=1): {"word"}}}
    result = connector.check(config(fake_graph))
    assert result.ok, result.message
    assert any("$top=1" in r.path for r in fake_graph.report_requests())


def test_concealed_names_stop_the_run(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    fake_graph.concealed = True
    yielded = []
    with pytest.raises(SourceError) as e:
        for item in connector.read(config(fake_graph, dates=[DAY1]), RunState()):
            yielded.append(item)
    assert not yielded  # nothing half-imported, no hash guessed into a name
    message = str(e.value)
    assert CONCEALMENT_SETTING in message
    assert "Microsoft 365 管理センター → 設定 → 組織設定 → サービス → レポート" in message
    assert '{"displayConcealedNames": false}' in message
    fake_graph.usage = {"taro@school.example.jp": {TODAY - dt.timedelta(days=1): {"word"}}}
    result = connector.check(config(fake_graph))
    assert not result.ok and CONCEALMENT_SETTING in result.message


def test_incremental_skips_fetched_days(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    state = RunState()
    first = list(connector.read(config(fake_graph, days=3), state))
    assert triples(first) == expected(USAGE)  # 6/1 (no data yet), 6/2, 6/3
    # A day whose reports are still empty is not marked: it is fetched again next run.
    assert state.data["fetched"] == ["2025-06-02", "2025-06-03"]

    before = len(fake_graph.report_requests())
    second = list(connector.read(config(fake_graph, days=3), state))
    assert second == []
    asked = fake_graph.report_requests()[before:]
    assert len(asked) == 2 and all("date=2025-06-01" in r.path for r in asked)


def test_teams_activity_rules(fake_graph: FakeGraph, connector) -> None:
    day = DAY1.isoformat()
    older = (DAY1 - dt.timedelta(days=4)).isoformat()
    fake_graph.extra_rows["getTeamsUserActivityUserDetail"] = [
        {
            "User Principal Name": "saburo@school.example.jp",
            "Last Activity Date": day,
            "Team Chat Message Count": "0",
        },  # the date alone counts
        {
            "User Principal Name": "shiro@school.example.jp",
            "Last Activity Date": older,
            "Call Count": "2",
        },  # a count alone counts
        {
            "User Principal Name": "goro@school.example.jp",
            "Last Activity Date": older,
            "Meeting Count": "0",
        },  # neither: not active
    ]
    items = list(connector.read(config(fake_graph, dates=[DAY1]), RunState()))
    assert triples(items) == {
        ("saburo@school.example.jp", DAY1, "teams"),
        ("shiro@school.example.jp", DAY1, "teams"),
    }


def test_malformed_rows_are_row_errors_with_line_numbers(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    fake_graph.extra_rows["getM365AppUserDetail"] = [
        {"User Principal Name": "", "Outlook": "Yes"},
        {
            "User Principal Name": "saburo@school.example.jp",
            "Last Activity Date": "2025/06/02",
            "Word": "Yes",
        },
        {"User Principal Name": "shiro@school.example.jp", "Excel": "Maybe"},
    ]
    items = list(connector.read(config(fake_graph, dates=[DAY1]), RunState()))
    errors = [i for i in items if isinstance(i, RowError)]
    assert [(e.origin.line, e.column, e.value) for e in errors] == [
        (4, "User Principal Name", ""),
        (5, "Last Activity Date", "2025/06/02"),
        (6, "Excel", "Maybe"),
    ]
    assert all(e.origin.file == "getM365AppUserDetail(date=2025-06-02).csv" for e in errors)
    assert "ユーザー プリンシパル名がありません" in errors[0].reason
    assert triples(items) == expected(USAGE, {DAY1})  # the good rows still come through


def test_archive_receives_raw_bytes(fake_graph: FakeGraph, connector) -> None:
    fake_graph.usage = USAGE
    archived: dict[str, bytes] = {}
    state = RunState(archive=lambda name, content: archived.__setitem__(name, content))
    list(connector.read(config(fake_graph, dates=[DAY1]), state))
    assert archived == {
        f"{report}(date=2025-06-02).csv": fake_graph.csv_bytes(report, DAY1) for report in REPORTS
    }
    assert all(content.startswith(b"\xef\xbb\xbf") for content in archived.values())


def test_no_names_or_secrets_in_logs(fake_graph: FakeGraph, connector, caplog) -> None:
    fake_graph.usage = USAGE
    fake_graph.throttle_first = 1
    caplog.set_level(logging.DEBUG)
    items = list(connector.read(config(fake_graph, dates=[DAY1, DAY2], format="json"), RunState()))
    assert items
    assert "msgraph" in caplog.text  # counts are logged
    for upn in USAGE:
        assert upn not in caplog.text
        assert upn.split("@")[0] not in caplog.text
    assert fake_graph.client_secret not in caplog.text


def test_config_and_discover() -> None:
    cfg = MicrosoftGraphConnector.Config(
        tenant_id="contoso.onmicrosoft.com", client_id="abc", client_secret="very-secret"
    )
    assert cfg.scope == "https://graph.microsoft.com/.default"
    assert MicrosoftGraphConnector.redacted(cfg)["client_secret"] == "********"
    assert [s.name for s in MicrosoftGraphConnector().discover()] == ["m365_usage"]
    assert MicrosoftGraphConnector().discover()[0].record_type is M365UsageRecord
    with pytest.raises(ValueError, match="https://"):
        MicrosoftGraphConnector.Config(
            tenant_id="t", client_id="c", client_secret="s", graph_url="http://graph.example/v1.0"
        )
