"""The xapi connector pulling from an LRS's statements resource (FakeLrs over real HTTPS):
pages through ``more``, continues from the saved ``since``, authenticates with HTTP Basic or
an OAuth 2.0 client-credentials token, and fails with a Japanese message naming the URL (and
no secret) when the LRS cannot be read. End to end: voiding across pages and across pulls."""

from __future__ import annotations

import logging
import uuid

import pytest
from fake_lrs import FakeLrs
from pydantic import ValidationError

from renkei.connectors.actions import do_save_connector_setting
from renkei.connectors.builtin.xapi import VOIDED, XapiConnector
from renkei.connectors.pipeline import do_import
from renkei.connectors.records import LearningActivityRecord
from renkei.connectors.sdk import RunState, SourceError
from renkei.edudata.models import ConnectorSetting, LearningActivity, StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

ACTOR = Actor.system("test")


def statement(upn: str, minute: int = 0) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{upn}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": f"https://drill.example.jp/units/{minute}"},
        "timestamp": f"2025-06-02T09:{minute:02d}:00+09:00",
        "result": {"duration": "PT10M"},
    }


def voiding(target: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"account": {"homePage": "https://lrs.example.jp", "name": "admin"}},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": target["id"]},
        "timestamp": "2025-06-03T09:00:00+09:00",
    }


def pull(fake: FakeLrs, state: RunState | None = None, **config) -> list:
    connector = XapiConnector()
    return list(connector.read(connector.Config(**fake.config(**config)), state or RunState()))


def test_pages_through_more_then_continues_from_since(fake_lrs: FakeLrs) -> None:
    first = [statement("a@example.jp", m) for m in range(5)]
    fake_lrs.add(*first)
    archived: dict[str, bytes] = {}
    state = RunState(archive=lambda name, content: archived.__setitem__(name, content))

    items = pull(fake_lrs, state, page_size=2)

    assert [i.statement_id for i in items] == [s["id"] for s in first]
    assert all(isinstance(i, LearningActivityRecord) for i in items)
    assert [i.origin.file for i in items] == [
        "statements.page1.json",
        "statements.page1.json",
        "statements.page2.json",
        "statements.page2.json",
        "statements.page3.json",
    ]
    requests = fake_lrs.statement_requests()
    assert len(requests) == 3 and {r.status for r in requests} == {200}
    assert {r.query["limit"] for r in requests} == {"2"}
    assert "since" not in requests[0].query  # the first pull takes everything
    assert all(r.headers["X-Experience-API-Version"] == "1.0.3" for r in requests)
    assert all(r.headers["Authorization"].startswith("Basic ") for r in requests)
    assert sorted(archived) == [f"statements.page{n}.json" for n in (1, 2, 3)]
    assert state.data["since"] == fake_lrs.statements[-1]["stored"]

    # the next night: only what the LRS stored since
    later = [statement("a@example.jp", m) for m in (10, 11)]
    fake_lrs.add(*later)
    fake_lrs.requests.clear()
    items = pull(fake_lrs, state, page_size=2)
    assert [i.statement_id for i in items] == [s["id"] for s in later]
    assert fake_lrs.statement_requests()[0].query["since"] == fake_lrs.statements[4]["stored"]
    assert state.data["since"] == fake_lrs.statements[-1]["stored"]
    # nothing new: one empty page, the cursor stays
    fake_lrs.requests.clear()
    assert pull(fake_lrs, state) == []
    assert state.data["since"] == fake_lrs.statements[-1]["stored"]


def test_another_endpoint_starts_over_from_the_configured_since(fake_lrs: FakeLrs) -> None:
    fake_lrs.add(statement("a@example.jp"))
    state = RunState(data={"endpoint": "https://old-lrs.example.jp/xapi/statements", "since": "x"})
    pull(fake_lrs, state, since="2025-01-01T00:00:00+09:00")
    assert fake_lrs.statement_requests()[0].query["since"] == "2025-01-01T00:00:00+09:00"


def test_oauth2_client_credentials(fake_lrs: FakeLrs) -> None:
    fake_lrs.add(*(statement("a@example.jp", m) for m in range(3)))
    items = pull(fake_lrs, auth="oauth2", page_size=1)
    assert len(items) == 3
    tokens = [r for r in fake_lrs.requests if r.path == "/oauth/token"]
    assert len(tokens) == 1 and tokens[0].status == 200  # one token for the whole pull
    requests = fake_lrs.statement_requests()
    assert len(requests) == 3
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in requests)

    with pytest.raises(SourceError) as failed:
        pull(fake_lrs, auth="oauth2", client_secret="wrong-secret")
    message = str(failed.value)
    assert f"{fake_lrs.base_url}/oauth/token" in message and "invalid_client" in message
    assert "wrong-secret" not in message


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"password": "wrong-password"}, "認証情報を受け付けませんでした（HTTP 401）"),
        ({"status": 403}, "読み出しを拒否しました（HTTP 403）"),
        ({"status": 503}, "エラーを返しました（HTTP 503）"),
        ({"delay": 1.5}, "1 秒以内に応答がありませんでした"),
        ({"not_json": True}, "StatementResult"),
        (
            {"more_host": "https://elsewhere.example.jp"},
            "別のホスト（https://elsewhere.example.jp）",
        ),
    ],
)
def test_failures_name_the_url_and_no_secret(
    fake_lrs: FakeLrs, caplog, setup: dict, expected: str
) -> None:
    fake_lrs.add(*(statement("a@example.jp", m) for m in range(3)))
    password = setup.pop("password", fake_lrs.password)
    for name, value in setup.items():
        setattr(fake_lrs, name, value)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as failed:
        pull(fake_lrs, password=password, page_size=2, timeout_seconds=1)
    message = str(failed.value)
    assert expected in message
    assert f"{fake_lrs.base_url}/xapi/statements" in message
    assert password not in message and password not in caplog.text
    if "more_host" in setup:  # the first page was read; nothing went to the other host
        assert len(fake_lrs.statement_requests()) == 1


def test_a_pull_needs_https_and_its_credentials() -> None:
    with pytest.raises(ValidationError, match="https://"):
        XapiConnector.Config(endpoint="http://lrs.example.jp/xapi/", username="u", password="p")
    with pytest.raises(ValidationError, match="https://"):
        XapiConnector.Config(
            endpoint="https://u:p@lrs.example.jp/xapi/", username="u", password="p"
        )
    with pytest.raises(ValidationError, match="username と password"):
        XapiConnector.Config(endpoint="https://lrs.example.jp/xapi/", username="u")
    with pytest.raises(ValidationError, match="token_url・client_id・client_secret"):
        XapiConnector.Config(endpoint="https://lrs.example.jp/xapi/", auth="oauth2")
    config = XapiConnector.Config(
        endpoint="https://lrs.example.jp/xapi/", username="u", password="very-secret"
    )
    assert XapiConnector.redacted(config)["password"] == "********"


def test_check_reads_one_statement(fake_lrs: FakeLrs) -> None:
    fake_lrs.add(statement("a@example.jp"))
    connector = XapiConnector()
    ok = connector.check(connector.Config(**fake_lrs.config()))
    assert ok.ok, ok.message
    assert fake_lrs.statement_requests()[0].query["limit"] == "1"
    bad = connector.check(connector.Config(**fake_lrs.config(password="nope")))
    assert not bad.ok and "HTTP 401" in bad.message


# -- end to end ---------------------------------------------------------------------------


@pytest.fixture
def pupils(shibuya, synth_data, home):
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == "succeeded", run.message
    with in_tenant(shibuya):
        return list(
            StudentIdentity.objects.exclude(principal_name="").values_list(
                "principal_name", "student_id"
            )[:2]
        )


@pytest.mark.django_db
def test_nightly_pulls_with_the_stored_secret_and_voiding_across_pages_and_pulls(
    shibuya, pupils, fake_lrs: FakeLrs
) -> None:
    (first, _first_pk), (second, second_pk) = pupils
    # 管理 › コネクタ設定: the password is stored encrypted; the CA is the operator's
    config = fake_lrs.config(page_size=2)
    ca_bundle = config.pop("ca_bundle")
    with in_tenant(shibuya):
        do_save_connector_setting(
            XapiConnector,
            shibuya,
            actor=ACTOR,
            config=XapiConnector.Config(**config),
            config_fields=list(config),
            enabled=True,
            inbox_enabled=False,
        )
        setting = ConnectorSetting.objects.get(connector="xapi")
    assert fake_lrs.password not in str(setting.config) + setting.secrets

    mistake, kept, other = (
        statement(first, 1),
        statement(second, 2),
        statement(first, 3),
    )
    fake_lrs.add(mistake, kept, other, voiding(other))  # `other` voided on the next page
    night1 = do_import("xapi", shibuya, actor=ACTOR, config={"ca_bundle": ca_bundle})
    assert night1.status == "succeeded", night1.message
    assert (night1.rows_read, night1.rows_accepted, night1.rows_rejected) == (4, 3, 1)
    assert night1.config["password"] == "********"
    with in_tenant(shibuya):
        reasons = [(q.file, q.line, q.reason) for q in night1.quarantine.all()]
        assert set(LearningActivity.objects.values_list("statement_id", flat=True)) == {
            mistake["id"],
            kept["id"],
        }
    assert reasons == [("statements.page2.json", 1, reasons[0][2])]
    assert "で取り消されています" in reasons[0][2]
    assert len(night1.files) == 2  # the pages, archived with the run

    # the next night the LRS has voided the mistake, stored last night
    fake_lrs.requests.clear()
    fake_lrs.add(voiding(mistake))
    night2 = do_import("xapi", shibuya, actor=ACTOR, config={"ca_bundle": ca_bundle})
    assert (night2.rows_read, night2.rows_accepted, night2.rows_rejected) == (1, 1, 0)
    assert "1 件を削除しました" in night2.message
    assert fake_lrs.statement_requests()[0].query["since"] == fake_lrs.statements[3]["stored"]
    with in_tenant(shibuya):
        assert list(LearningActivity.objects.values_list("student_id", "statement_id")) == [
            (second_pk, kept["id"])
        ]
