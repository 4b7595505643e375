"""Widget tokens used from other sites: CORS and frame-ancestors honour the token's allowed
origins, and every other origin is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from tenant_api_support import post

from renkei.accounts import tokens
from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

ALLOWED = "http://127.0.0.1:8765"
OTHER = "http://127.0.0.1:9999"
QUERY = "{ metrics { name } }"


@pytest.fixture
def widget(make_user, shibuya):
    admin = make_user("cors-admin", "tenant_admin", municipality=shibuya)
    return tokens.do_issue_token(
        admin,
        shibuya,
        name="portal",
        role="board_analyst",
        widget=True,
        metrics=["attendance_rate"],
        allowed_origins=[ALLOWED + "/"],
        actor=TEST_ACTOR,
    )


def test_origins_are_normalised_and_checked_when_issued(make_user, shibuya):
    admin = make_user("cors-admin2", "tenant_admin", municipality=shibuya)
    issued = tokens.do_issue_token(
        admin,
        shibuya,
        name="x",
        role="board_analyst",
        widget=True,
        metrics=["attendance_rate"],
        allowed_origins=["HTTPS://Portal.Example.JP/", "http://[::1]:81"],
        actor=TEST_ACTOR,
    )
    assert issued.token.allowed_origins == ["http://[::1]:81", "https://portal.example.jp"]
    # an internationalised name is kept as browsers send it in Origin (punycode)
    assert tokens.normalize_origin("https://例え.jp") == "https://xn--r8jz45g.jp"
    with pytest.raises(tokens.TokenError, match="長すぎます"):
        tokens.normalize_origin("https://" + ".".join(["a" * 50] * 4) + ".jp")
    with pytest.raises(tokens.TokenError, match="ドメイン名として正しくありません"):
        tokens.normalize_origin("https://" + "a" * 250 + ".jp")
    for bad in (
        "https://example.jp/path",
        "ftp://example.jp",
        "https://*.example.jp",
        "example.jp",
        "https://example.jp?x=1",
    ):
        with pytest.raises(tokens.TokenError, match="オリジン"):
            tokens.do_issue_token(
                admin,
                shibuya,
                name="y",
                role="board_analyst",
                widget=True,
                metrics=["attendance_rate"],
                allowed_origins=[bad],
                actor=TEST_ACTOR,
            )


def test_preflight_is_approved_only_for_a_listed_origin(client, widget):
    ok = client.options(
        "/m/131130/graphql",
        HTTP_ORIGIN=ALLOWED,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == ALLOWED
    assert "Authorization" in ok["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in ok
    refused = client.options(
        "/m/131130/graphql", HTTP_ORIGIN=OTHER, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    # The token's origins are not approved in another municipality.
    elsewhere = client.options(
        "/m/131041/graphql", HTTP_ORIGIN=ALLOWED, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert elsewhere.status_code == 403


def _preflight_status(client) -> int:
    return client.options(
        "/m/131130/graphql", HTTP_ORIGIN=ALLOWED, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    ).status_code


def test_a_revoked_token_no_longer_opens_its_origin(client, widget):
    tokens.do_revoke_token(widget.token, actor=TEST_ACTOR)
    assert _preflight_status(client) == 403


def test_an_expired_token_no_longer_opens_its_origin(client, widget):
    assert _preflight_status(client) == 204
    widget.token.expires_at = widget.token.created_at - dt.timedelta(seconds=1)
    widget.token.save()
    assert _preflight_status(client) == 403


def test_token_from_its_origin_answers_with_cors_header(client, widget):
    r = client.post(
        "/m/131130/graphql",
        data={"query": QUERY},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {widget.secret}",
        HTTP_ORIGIN=ALLOWED,
    )
    assert r.status_code == 200, r.content
    assert r.json()["data"]["metrics"] == [{"name": "attendance_rate"}]
    assert r["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in r["Vary"]


def test_token_from_another_origin_is_refused(client, widget):
    for origin in (OTHER, "null", "http://127.0.0.1:8765.evil.example"):
        r = post(client, QUERY, token=widget.secret, HTTP_ORIGIN=origin)
        assert r.status == 403, origin
        assert r.codes == ["ORIGIN_NOT_ALLOWED"]
        assert "使えません" in r.errors[0]["message"]


def test_server_side_use_and_own_origin_need_no_listing(client, widget):
    assert post(client, QUERY, token=widget.secret).status == 200
    assert post(client, QUERY, token=widget.secret, HTTP_ORIGIN="http://testserver").status == 200


def test_widget_frame_lets_only_the_allowed_origins_frame_it(client, widget):
    url = f"/m/131130/widgets/frame/{widget.token.pk}/?metric=attendance_rate&school-year=2025"
    r = client.get(url)
    assert r.status_code == 200
    assert r["Content-Security-Policy"] == f"frame-ancestors 'self' {ALLOWED}"
    assert "X-Frame-Options" not in r
    body = r.content.decode()
    assert 'metric="attendance_rate"' in body and widget.secret not in body
    # The frame of a token is not served by another municipality.
    assert client.get(url.replace("131130", "131041")).status_code == 404
    tokens.do_revoke_token(widget.token, actor=TEST_ACTOR)
    assert client.get(url).status_code == 404


def test_expired_widget_frame_is_gone(client, widget):
    widget.token.expires_at = widget.token.created_at - dt.timedelta(seconds=1)
    widget.token.save()
    assert client.get(f"/m/131130/widgets/frame/{widget.token.pk}/").status_code == 404


def test_other_pages_may_not_be_framed(client, shibuya):
    for url in ("/", "/m/131130/accounts/login/"):
        r = client.get(url)
        assert r["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert r["X-Frame-Options"] == "DENY"
