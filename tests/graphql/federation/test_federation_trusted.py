"""A remote municipality that trusts its prefecture's aggregator with exact counts: it is
protected jointly with the prefecture, over a real socket with signed service tokens."""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest
import requests
from django.db import connection
from fed_world import SCHOOL_YEAR, TOKYO_A, TOKYO_B

from renkei.edudata.metrics import exact, release
from renkei.platform import service_tokens
from renkei.tenants.models import Release

pytestmark = pytest.mark.slow

QUERY = (
    '{ prefecture(code: "13") { longTermAbsence(schoolYear: YEAR, byMunicipality: true, '
    "byGrade: true) { complete dimensions cells { key pupils value suppressed reasonCode } "
    "municipalities { code status reason remote } } } }"
).replace("YEAR", str(SCHOOL_YEAR))
MUNICIPALITY_QUERY = (
    '{ municipality(code: "CODE") { attendanceRate(schoolYear: YEAR, byGrade: true) '
    "{ cells { key pupils value suppressed } } } }"
).replace("YEAR", str(SCHOOL_YEAR))


def fresh_releases():
    """Nothing remembered or stored: the next question reads every member's rows. The
    stored releases were committed by the fan-out's own connections, so they are deleted on
    one of those too (a delete in the test's transaction would hold them until it ends)."""
    release.forget()

    def delete():
        try:
            Release.objects.filter(prefecture_id="13").delete()
        finally:
            connection.close()

    worker = threading.Thread(target=delete)
    worker.start()
    worker.join()


@pytest.fixture
def trusted(fed_server, settings):
    """連携テスト区B runs its own deployment, which names 東京都's aggregator as trusted."""
    settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset({"13"})
    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [{"code": TOKYO_B, "url": f"{fed_server}/federation/tenant", "trusted": True}]
    )
    settings.RENKEI_FEDERATION_TRUSTED_VERSION_TTL = 0  # asked with every question
    exact.forget()
    yield fed_server
    exact.forget()


def answers(result):
    assert result.errors is None, result.errors
    table = result.data["prefecture"]["longTermAbsence"]
    return table, {a["code"]: a for a in table["municipalities"]}


def test_a_trusted_remote_is_protected_with_the_prefecture_as_if_it_were_local(
    run, world, trusted, caplog
):
    # given the prefecture's answer with every municipality local
    fresh_releases()
    local, _ = answers(run(QUERY, world.users["fed-pref13"]))
    # when 連携テスト区B answers from its own deployment with exact counts
    fresh_releases()
    with caplog.at_level(logging.INFO, logger="renkei.graphql.federation.views"):
        table, by_code = answers(run(QUERY, world.users["fed-pref13"]))
    # then its rows came over HTTP, family by family, counts only in the log
    sent = [r.getMessage() for r in caplog.records if "exact" in r.getMessage()]
    assert any(f"exact population of {TOKYO_B}" in line for line in sent), sent
    shape = (
        rf"federation tenant endpoint: exact [a-z0-9]+ of {TOKYO_B} \(\d+ rows\) for prefecture:13"
    )
    assert all(re.fullmatch(shape, line) for line in sent), sent  # nothing of the rows
    # and the prefecture table is the joint release, cell for cell, not an add-up of parts
    assert by_code[TOKYO_B]["remote"] is True and by_code[TOKYO_B]["status"] == "OK"
    assert table["complete"] is True
    assert table["cells"] == local["cells"]
    assert not any(c["reasonCode"] == "remote_part" for c in table["cells"])


def test_the_municipality_field_of_a_trusted_remote_serves_the_joint_release(run, world, trusted):
    fresh_releases()
    query = MUNICIPALITY_QUERY.replace("CODE", TOKYO_B)
    with_remote = run(query, world.users["fed-pref13"])
    assert with_remote.errors is None, with_remote.errors
    fresh_releases()
    from django.conf import settings

    settings.RENKEI_FEDERATION_REMOTES = "[]"
    all_local = run(query, world.users["fed-pref13"])
    assert with_remote.data == all_local.data


def test_a_trusted_remote_that_goes_away_is_served_at_its_last_version(
    run, world, trusted, monkeypatch
):
    fresh_releases()
    before, _ = answers(run(QUERY, world.users["fed-pref13"]))

    def unreachable(*args, **kwargs):
        raise requests.ConnectionError("down")

    monkeypatch.setattr(exact.requests, "post", unreachable)
    after, by_code = answers(run(QUERY, world.users["fed-pref13"]))
    assert by_code[TOKYO_B]["status"] == "OK"
    assert after["cells"] == before["cells"]


def test_a_trusted_remote_is_not_asked_its_version_again_within_the_ttl(
    run, world, trusted, settings, monkeypatch
):
    settings.RENKEI_FEDERATION_TRUSTED_VERSION_TTL = 60
    answers(run(QUERY, world.users["fed-pref13"]))
    asked = []
    original = exact.requests.post
    monkeypatch.setattr(
        exact.requests, "post", lambda *a, **k: asked.append(a) or original(*a, **k)
    )
    _, by_code = answers(run(QUERY, world.users["fed-pref13"]))
    assert by_code[TOKYO_B]["status"] == "OK" and asked == []
    settings.RENKEI_FEDERATION_TRUSTED_VERSION_TTL = 0
    answers(run(QUERY, world.users["fed-pref13"]))
    assert asked  # once it is older than the TTL, the version is asked again


def test_a_trusted_remote_never_heard_from_is_missing_and_the_rest_answers(run, world, settings):
    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [{"code": TOKYO_B, "url": "http://127.0.0.1:9/federation/tenant", "trusted": True}]
    )
    exact.forget()
    fresh_releases()
    table, by_code = answers(run(QUERY, world.users["fed-pref13"]))
    assert by_code[TOKYO_B]["status"] == "FAILED"
    assert by_code[TOKYO_B]["reason"].startswith("正確な件数を受け取れませんでした")
    assert by_code[TOKYO_A]["status"] == "OK" and table["complete"] is False
    assert not any(c["key"][0] == TOKYO_B for c in table["cells"])


def test_a_trusted_remote_whose_rows_fail_is_left_out_and_the_rest_answers(
    run, world, trusted, monkeypatch
):
    fresh_releases()
    original = exact._post

    def malformed(code, url, body):
        data = original(code, url, body)
        return data if body["exact"] == exact.VERSION else {**data, "rows": "not rows"}

    monkeypatch.setattr(exact, "_post", malformed)
    table, by_code = answers(run(QUERY, world.users["fed-pref13"]))
    assert by_code[TOKYO_B]["status"] == "FAILED"
    assert by_code[TOKYO_A]["status"] == "OK" and table["complete"] is False
    assert not any(c["key"][0] == TOKYO_B for c in table["cells"])
    # it is tried again once its data changes, not before
    assert exact._BROKEN[TOKYO_B] == exact._SEEN[TOKYO_B][0]


def test_one_bad_remote_entry_leaves_the_others_as_they_are_everywhere(settings, caplog):
    # The release engine and the fan-out read the setting the same way: a bad entry does not
    # turn the good remote into a local member of the joint tables.
    from renkei.graphql.federation import fanout

    settings.RENKEI_FEDERATION_REMOTES = json.dumps(
        [
            {"url": "https://no-code.example/federation/tenant"},
            {"code": "999999", "url": "https://bad-code.example/federation/tenant"},
            {"code": TOKYO_B, "url": "https://b.example/federation/tenant", "trusted": True},
        ]
    )
    with caplog.at_level(logging.ERROR):
        assert release.remote_codes() == {TOKYO_B}
        assert set(fanout.remote_tenants()) == {TOKYO_B}
        assert exact.trusted_remotes("13") == {TOKYO_B: "https://b.example/federation/tenant"}
    assert sum("ignoring" in r.getMessage() for r in caplog.records) >= 2


# -- the remote side ---------------------------------------------------------------------------


def exact_post(base, body, token="good"):
    if token == "good":
        token = service_tokens.issue_service_token(
            body["municipality"], prefecture_code="13", digest=service_tokens.request_digest(body)
        )
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{base}/federation/tenant", data=json.dumps(body), headers=headers, timeout=10
    )


def test_exact_counts_go_only_to_a_prefecture_this_deployment_trusts(fed_server, world, settings):
    body = {"municipality": TOKYO_B, "exact": "population", "params": [TOKYO_B, SCHOOL_YEAR]}
    settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset()
    response = exact_post(fed_server, body)
    assert response.status_code == 403
    assert "RENKEI_FEDERATION_TRUSTED_AGGREGATORS" in response.json()["errors"][0]["message"]
    assert "rows" not in response.text
    settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset({"13"})
    response = exact_post(fed_server, body)
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert rows and all(row[0] == TOKYO_B and isinstance(row[-1], int) for row in rows)


@pytest.mark.parametrize(
    ("body", "token", "status", "says"),
    [
        (
            {"municipality": TOKYO_B, "exact": "population", "params": [TOKYO_B, SCHOOL_YEAR]},
            None,
            401,
            "サービス間トークン",
        ),
        (
            {"municipality": TOKYO_B, "exact": "pupils", "params": []},
            "good",
            400,
            "集計の種類「pupils」",
        ),
        (
            {"municipality": TOKYO_B, "exact": "population", "params": [TOKYO_B, "2025"]},
            "good",
            400,
            "[文字列, 整数]",
        ),
        (
            {"municipality": TOKYO_B, "exact": "nurse", "params": [TOKYO_B, SCHOOL_YEAR, [1]]},
            "good",
            400,
            "文字列のリスト",
        ),
        ({"municipality": TOKYO_B, "exact": 3}, "good", 400, "municipality, exact"),
        ({"municipality": "131032", "exact": "version"}, "good", 404, "登録されていません"),
    ],
)
def test_bad_exact_requests_get_a_clear_error(
    fed_server, world, settings, body, token, status, says
):
    settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset({"13"})
    if token == "good" and not isinstance(body.get("exact"), str):
        token = None  # refused before the token is read
    response = exact_post(fed_server, body, token)
    assert response.status_code == status, response.text
    assert says in response.json()["errors"][0]["message"]


def test_a_token_for_another_question_cannot_fetch_exact_counts(fed_server, world, settings):
    settings.RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset({"13"})
    asked = {"municipality": TOKYO_B, "exact": "version"}
    token = service_tokens.issue_service_token(
        TOKYO_B, prefecture_code="13", digest=service_tokens.request_digest(asked)
    )
    other = {"municipality": TOKYO_B, "exact": "population", "params": [TOKYO_B, SCHOOL_YEAR]}
    response = exact_post(fed_server, other, token)
    assert response.status_code == 401
    assert "rows" not in response.text
