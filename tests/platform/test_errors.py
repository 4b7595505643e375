"""Requests refused before any view (NUL characters) and the error pages: each says what
happened, in the reader's language, instead of a bare status or a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.template.loader import render_to_string


@pytest.fixture
def admin(client, make_user, shibuya):
    client.force_login(make_user("err-admin", "tenant_admin", municipality=shibuya))
    return client


@pytest.mark.parametrize(
    "path, data",
    [
        ("/m/131130/analysis/schools/a%00b/", None),  # PostgreSQL cannot compare text with NUL
        ("/m/131130/manage/access-log/", {"username": "te\x00acher"}),
        ("/prefecture/", {"metric": "\x00"}),
    ],
)
def test_a_nul_character_in_the_address_is_refused_with_a_message(admin, path, data):
    response = admin.get(path, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "使えない制御文字（NUL）が含まれています" in html and "トップページへ戻る" in html


def test_a_nul_character_in_a_form_is_refused_and_nothing_is_written(admin, shibuya):
    from renkei.accounts.models import ApiToken

    form = urlencode(
        {
            "name": "portal\x00",
            "metrics": ["attendance_rate"],
            "allowed_origins": "https://example.jp",
            "expires_in_days": "30",
        },
        doseq=True,
    )
    # as a browser posts our forms (urlencoded)
    response = admin.post(
        "/m/131130/manage/widgets/", form, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "使えない制御文字（NUL）" in response.content.decode()
    assert not ApiToken.objects.filter(municipality=shibuya).exists()


def test_a_get_on_an_action_says_to_use_the_button(admin):
    response = admin.get("/m/131130/manage/widgets/1/revoke/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "画面のボタンから送信したときだけ使えます" in response.content.decode()


def test_the_server_error_page_needs_no_context_and_speaks_both_languages():
    # Django renders 500.html without a request or context processors.
    html = render_to_string("500.html")
    assert "サーバーで問題が起きたため" in html and "Something went wrong" in html
