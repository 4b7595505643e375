"""The federation over HTTP: authentication, CSRF rules, and remote tenants over a real
socket with signed service tokens."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from fed_world import SCHOOL_YEAR, TOKYO_A, TOKYO_B

from renkei.edudata import metrics
from renkei.graphql.federation import auth, fanout
from renkei.platform import service_tokens
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.slow

URL = "/federation/graphql"
QUERY = (
    '{ prefecture(code: "13") { longTermAbsence(schoolYear: YEAR, byMunicipality: true) '
    "{ complete dimensions cells { key pupils value suppressed reasonCode } "
    "municipalities { code status reason remote } } } }"
).replace("YEAR", str(SCHOOL_YEAR))


def post(client, query=QUERY, **headers):
    return client.post(
        URL,
        data=json.dumps({"query": query}),
        content_type="application/json",
        HTTP_HOST="localhost",
        **headers,
    )


# -- the subgraph endpoint ------------------------------------------------------------------


def test_session_of_a_prefecture_analyst(client, world):
    client.force_login(world.users["fed-pref13"])
    response = post(client)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert body["data"]["prefecture"]["longTermAbsence"]["complete"] is True


def test_session_of_a_teacher_is_refused_with_a_clear_error(client, world):
    client.force_login(world.users["fed-teacher"])
    body = post(client).json()
    assert body["data"] == {"prefecture": None}
    assert "都道府県の分析担当者のみ" in body["errors"][0]["message"]


def test_anonymous_is_asked_to_sign_in(client, world):
    body = post(client).json()
    assert body["data"] == {"prefecture": None}
    assert "ログインしてください" in body["errors"][0]["message"]


def test_bearer_token_of_an_analyst(client, world):
    token = auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR)
    body = post(client, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert "errors" not in body, body
    # the token is scoped to its prefecture
    other = post(client, QUERY.replace('"13"', '"27"'), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert "大阪府（27）のデータを見る権限がありません" in other.json()["errors"][0]["message"]


def test_a_token_cannot_be_issued_for_another_prefecture(world):
    with pytest.raises(auth.FederationPermissionError):
        auth.do_issue_analyst_token(world.users["fed-pref13"], "27", actor=TEST_ACTOR)
    with pytest.raises(auth.FederationPermissionError):
        auth.do_issue_analyst_token(world.users["fed-board"], "13", actor=TEST_ACTOR)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # forged signature
        lambda t: "rkf1.garbage",
        lambda t: t.replace("rkf1.", "rkf0."),
    ],
)
def test_bad_bearer_tokens_are_refused(client, world, mangle):
    token = mangle(auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR))
    body = post(client, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert body["data"] == {"prefecture": None}
    assert "連携用トークンが無効か期限切れです" in body["errors"][0]["message"]


def test_expired_and_revoked_tokens_are_refused(client, world):
    user = world.users["fed-pref13"]
    expired = auth.do_issue_analyst_token(user, "13", ttl_seconds=-1, actor=TEST_ACTOR)
    assert (
        "無効か期限切れ"
        in post(client, HTTP_AUTHORIZATION=f"Bearer {expired}").json()["errors"][0]["message"]
    )
    token = auth.do_issue_analyst_token(user, "13", actor=TEST_ACTOR)
    user.set_password("a-new-password")  # a password change revokes every token
    user.save()
    assert (
        "無効か期限切れ"
        in post(client, HTTP_AUTHORIZATION=f"Bearer {token}").json()["errors"][0]["message"]
    )


def test_a_token_stops_working_when_the_membership_goes(client, world):
    from renkei.accounts.models import Membership

    user = world.users["fed-pref13"]
    token = auth.do_issue_analyst_token(user, "13", actor=TEST_ACTOR)
    Membership.objects.filter(user=user).delete()
    body = post(client, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert "無効か期限切れ" in body["errors"][0]["message"]


def test_get_and_form_posts_are_refused(client, world):
    client.force_login(world.users["fed-pref13"])
    assert (
        client.get(URL, {"query": "{ metrics { name } }"}, HTTP_HOST="localhost").status_code == 405
    )
    form = client.post(URL, {"query": "{ metrics { name } }"}, HTTP_HOST="localhost")
    assert form.status_code == 415
    text = client.post(
        URL,
        data='{"query": "{ metrics { name } }"}',
        content_type="text/plain",
        HTTP_HOST="localhost",
    )
    assert text.status_code == 415


def test_cross_site_session_requests_are_refused(client, world):
    client.force_login(world.users["fed-pref13"])
    response = post(client, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert post(client, HTTP_ORIGIN="http://localhost").status_code == 200
    # a bearer token is never sent by a browser on its own: Origin does not matter
    token = auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR)
    assert (
        post(
            client, HTTP_ORIGIN="https://gateway.example", HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 200
    )


def test_service_sdl_over_http_without_credentials(client, db):
    body = post(client, "{ _service { sdl } }").json()
    assert "type Municipality @key" in body["data"]["_service"]["sdl"]


def test_the_subgraph_is_not_served_inside_a_tenant(client, world):
    client.force_login(world.users["fed-pref13"])
    response = client.post(
        f"/m/{TOKYO_A}{URL}",
        data=json.dumps({"query": "{ metrics { name } }"}),
        content_type="application/json",
        HTTP_HOST="localhost",
    )
    assert response.status_code == 404


# -- remote tenants over a real socket -------------------------------------------------------


def tenant_post(base, body, token):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{base}/federation/tenant", data=json.dumps(body), headers=headers, timeout=10
    )


def good_token(body, code=None, **kwargs):
    return service_tokens.issue_service_token(
        code or body["municipality"],
        prefecture_code="13",
        digest=service_tokens.request_digest(body),
        **kwargs,
    )


def test_remote_tenant_answers_a_valid_token_with_its_released_table(fed_server, world):
    body = fanout.tenant_request(TOKYO_B, "long_term_absence", SCHOOL_YEAR, ["grade"])
    response = tenant_post(fed_server, body, good_token(body))
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {
        "metric",
        "municipality_code",
        "school_year",
        "dimensions",
        "k",
        "unit",
        "cells",
    }
    from renkei.tenants.models import Municipality

    m = Municipality.objects.get(code=TOKYO_B)
    with in_tenant(m):
        own = metrics.compute("long_term_absence", m, school_year=SCHOOL_YEAR, breakdown=["grade"])
    assert data == json.loads(json.dumps(own.to_json()))
    for cell in data["cells"]:  # released cells only: a withheld cell carries no count
        if cell["suppressed"]:
            assert cell["value"] is None and cell["numerator"] is None
        assert set(cell) == {
            "key",
            "pupils",
            "value",
            "suppressed",
            "reason_code",
            "numerator",
            "denominator",
        }


def test_remote_tenant_never_answers_futoko(fed_server, world):
    # 不登校 is its municipality's own: a prefecture elsewhere gets a clear refusal, no table,
    # even with a valid token for exactly that question
    body = fanout.tenant_request(TOKYO_B, "futoko", SCHOOL_YEAR, ["grade"])
    response = tenant_post(fed_server, body, good_token(body))
    assert response.status_code == 400
    data = response.json()
    assert "教育委員会と学校だけに公開" in json.dumps(data, ensure_ascii=False)
    assert "cells" not in data


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "expired",
        "wrong_audience",
        "wrong_key",
        "other_question",
        "other_prefecture",
        "long_lived",
    ],
)
def test_remote_tenant_refuses_bad_tokens(fed_server, world, case):
    body = fanout.tenant_request(TOKYO_B, "long_term_absence", SCHOOL_YEAR, ["grade"])
    other = fanout.tenant_request(TOKYO_B, "attendance_rate", SCHOOL_YEAR, [])
    now = int(time.time())
    token = {
        "missing": None,
        "expired": good_token(body, ttl_seconds=-30),
        "wrong_audience": good_token(
            fanout.tenant_request(TOKYO_A, "long_term_absence", SCHOOL_YEAR, ["grade"])
        ),
        "wrong_key": jwt.encode(
            {
                "iss": service_tokens.SERVICE_TOKEN_ISSUER,
                "aud": TOKYO_B,
                "sub": "prefecture:13",
                "iat": now,
                "exp": now + 60,
                "req": service_tokens.request_digest(body),
            },
            "another-deployments-secret-key-0123456789",
            algorithm="HS256",
        ),
        "other_question": good_token(other, code=TOKYO_B),
        "other_prefecture": service_tokens.issue_service_token(
            TOKYO_B, prefecture_code="27", digest=service_tokens.request_digest(body)
        ),
        "long_lived": good_token(body, ttl_seconds=3600),
    }[case]
    response = tenant_post(fed_server, body, token)
    assert response.status_code == 401, (case, response.text)
    assert "cells" not in response.text
    [error] = response.json()["errors"]
    assert error["message"] and error["extensions"]["code"] == "UNAUTHENTICATED"


def test_remote_tenant_unknown_municipality_is_404(fed_server, world):
    body = fanout.tenant_request("131032", "long_term_absence", SCHOOL_YEAR, [])
    response = tenant_post(fed_server, body, good_token(body))
    assert response.status_code == 404
    [error] = response.json()["errors"]
    assert "登録されていません" in error["message"] and error["extensions"]["code"] == "NOT_FOUND"


def test_prefecture_query_with_a_remote_tenant(run, fed_server, world, settings):
    # given 連携テスト区B runs its own deployment, reached over HTTP
    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [
            {
                "code": TOKYO_B,
                "url": f"{fed_server}/federation/tenant",
                "name": "連携テスト区B（別環境）",
            }
        ]
    )
    # when the prefecture asks
    result = run(QUERY, world.users["fed-pref13"])
    # then it answered over HTTP, with the same figures as a local run
    assert result.errors is None, result.errors
    table = result.data["prefecture"]["longTermAbsence"]
    answers = {a["code"]: a for a in table["municipalities"]}
    assert answers[TOKYO_B]["remote"] is True and answers[TOKYO_B]["status"] == "OK"
    assert answers[TOKYO_A]["remote"] is False
    remote_cells = [c for c in table["cells"] if c["key"][0] == TOKYO_B]
    from renkei.tenants.models import Municipality

    m = Municipality.objects.get(code=TOKYO_B)
    with in_tenant(m):
        own = metrics.compute("long_term_absence", m, school_year=SCHOOL_YEAR)
    assert [(c["pupils"], c["suppressed"]) for c in remote_cells] == [
        (c.pupils, c.suppressed) for c in own.cells
    ]


def test_a_remote_tenant_that_refuses_our_token_is_reported_missing(
    run, fed_server, world, settings, monkeypatch
):
    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [{"code": TOKYO_B, "url": f"{fed_server}/federation/tenant"}]
    )
    original = service_tokens.issue_service_token
    monkeypatch.setattr(
        service_tokens,
        "issue_service_token",
        lambda *a, **k: original(*a, **{**k, "ttl_seconds": -60}),
    )
    table = run(QUERY, world.users["fed-pref13"]).data["prefecture"]["longTermAbsence"]
    answers = {a["code"]: a for a in table["municipalities"]}
    assert answers[TOKYO_B]["status"] == "FAILED"
    assert answers[TOKYO_B]["reason"] == "HTTP 401: サービス間トークンの有効期限が切れています。"
    assert answers[TOKYO_A]["status"] == "OK" and table["complete"] is False


def test_an_unreachable_remote_is_reported_missing(run, world, settings):
    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [{"code": TOKYO_B, "url": "http://127.0.0.1:9/federation/tenant"}]
    )
    table = run(QUERY, world.users["fed-pref13"]).data["prefecture"]["longTermAbsence"]
    answers = {a["code"]: a for a in table["municipalities"]}
    assert answers[TOKYO_B]["status"] == "FAILED"
    assert answers[TOKYO_B]["reason"].startswith("接続できませんでした")


def test_a_remote_that_releases_small_cells_is_not_trusted(world):
    table = metrics.MetricTable.from_json(
        {
            "metric": "long_term_absence",
            "municipality_code": TOKYO_B,
            "school_year": SCHOOL_YEAR,
            "dimensions": ["absence_category"],
            "k": 3,
            "unit": "%",
            "cells": [
                {
                    "key": {"absence_category": "long_term"},
                    "pupils": 4,
                    "value": 2.0,
                    "suppressed": False,
                    "reason_code": None,
                    "numerator": 4,
                    "denominator": 200,
                }
            ],
        }
    )
    checked = fanout._distrust(table)
    assert checked.k == 10
    assert checked.cells[0].suppressed and checked.cells[0].pupils is None
