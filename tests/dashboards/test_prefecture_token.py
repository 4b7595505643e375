"""連携用トークン: a prefecture analyst issues a federation API token from the page, and the
token reads that prefecture's aggregates only, until it expires or the password changes."""

from __future__ import annotations

import html as html_module
import json
import logging
import re
import time

import pytest
from django.core import signing
from django.test import Client

from renkei.graphql.federation import auth
from renkei.tenants.models import Prefecture


@pytest.fixture
def analyst(make_user):
    return make_user("tok-pref", "prefecture_analyst", prefecture=Prefecture.for_code("13"))


def issue(client: Client, days: str = "7"):
    response = client.post("/prefecture/token/", {"days": days})
    assert response.status_code == 200
    found = re.search(r'data-testid="analyst-token">([^<]+)</textarea>', response.content.decode())
    return response, found.group(1) if found else None


def ask(token: str, prefecture_code: str) -> dict:
    """The federation endpoint as a gateway calls it: bearer token, no session."""
    response = Client().post(
        "/federation/graphql",
        data=json.dumps(
            {
                "query": "query($code: String!) { prefecture(code: $code) { name } }",
                "variables": {"code": prefecture_code},
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return response.json()


def test_an_analyst_issues_a_token_that_reads_their_prefecture(client, analyst, caplog):
    client.force_login(analyst)
    page = client.get("/prefecture/token/")
    assert page.status_code == 200 and 'data-testid="analyst-token"' not in page.content.decode()

    with caplog.at_level(logging.INFO):
        response, token = issue(client, "7")
    assert token and token.startswith(auth.ANALYST_TOKEN_PREFIX)
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "Authorization: Bearer " + token in html and "/federation/graphql" in html
    assert token not in caplog.text  # logged who and for how long, never the token

    payload = signing.loads(token[len(auth.ANALYST_TOKEN_PREFIX) :], salt=auth.ANALYST_TOKEN_SALT)
    assert abs(payload["exp"] - (time.time() + 7 * 86400)) < 600

    # the curl example on the page is a query the federation answers
    example = re.search(r"-d '(.+)'</textarea>", html_module.unescape(html)).group(1)
    answered = (
        Client()
        .post(
            "/federation/graphql",
            data=example,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        .json()
    )
    assert "errors" not in answered, answered
    assert answered["data"]["prefecture"]["longTermAbsence"]["cells"] is not None

    answer = ask(token, "13")
    assert answer.get("errors") is None and answer["data"]["prefecture"]["name"] == "東京都"
    other = ask(token, "27")
    assert other["data"] == {"prefecture": None}
    assert "大阪府（27）のデータを見る権限がありません" in other["errors"][0]["message"]


def test_a_changed_password_revokes_the_token(client, analyst):
    client.force_login(analyst)
    _, token = issue(client)
    assert ask(token, "13")["data"]["prefecture"]["name"] == "東京都"
    analyst.set_password("a-new-password-" + "x" * 8)
    analyst.save()
    refused = ask(token, "13")
    assert refused["data"] == {"prefecture": None}
    assert "無効か期限切れ" in refused["errors"][0]["message"]


def test_only_the_offered_lifetimes_are_issued(client, analyst):
    client.force_login(analyst)
    response, token = issue(client, "365")
    assert token is None
    assert "有効期間は 1・7・30 日のどれかを選んでください" in response.content.decode()


def test_others_cannot_issue_one(client, make_user, shibuya):
    board = make_user("tok-board", "board_analyst", municipality=shibuya)
    client.force_login(board)
    for response in (
        client.get("/prefecture/token/"),
        client.post("/prefecture/token/", {"days": "1"}),
    ):
        assert response.status_code == 403
        assert "都道府県の分析担当者だけ" in response.content.decode()
        assert auth.ANALYST_TOKEN_PREFIX not in response.content.decode()
    client.logout()
    assert client.post("/prefecture/token/", {"days": "1"}).status_code == 302  # to sign-in


def test_issuing_needs_the_pages_csrf_token(analyst):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(analyst)
    assert browser.post("/prefecture/token/", {"days": "1"}).status_code == 403
