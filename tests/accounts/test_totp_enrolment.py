"""Each user enrols their own authenticator (QR code or typed secret, confirmed by a code),
receives one-time recovery codes that work at step-up, and cannot have a confirmed device
replaced without step-up; a tenant admin resets a member's second factor. Driven through the
pages with Django's test client; codes computed with django_otp.oath.totp."""

from __future__ import annotations

import base64
import logging
import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.accounts import second_factor as sf
from renkei.platform.models import AuditEvent

pytestmark = pytest.mark.django_db

ACCOUNT = "/m/131130/accounts/second-factor/"
VERIFY = "/m/131130/accounts/verify/"
HOME = "/m/131130/"
RESETS = "/m/131130/manage/second-factors/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def teacher(make_user, shibuya):
    return make_user("teacher-enrol", "teacher", municipality=shibuya, schools=["B113211300012"])


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The device's code now (or ``steps_ahead`` 30-second steps later: django-otp accepts
    one step of drift and never the same step twice)."""
    return f"{totp(device.bin_key, drift=steps_ahead):06d}"


def recovery_codes(response) -> list[str]:
    return re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", response.content.decode())


def is_stepped_up(client) -> bool:
    return "二要素認証で本人確認" not in client.get(HOME).content.decode()


def enrol(client, user) -> tuple[TOTPDevice, list[str]]:
    assert client.post(ACCOUNT + "start/").status_code == 302
    device = sf.pending_authenticator(user)
    response = client.post(ACCOUNT + "confirm/", {"otp_token": code(device)})
    assert response.status_code == 200
    device.refresh_from_db()
    return device, recovery_codes(response)


def test_a_user_enrols_their_authenticator_by_qr_code_and_confirms_it(teacher, caplog):
    caplog.set_level(logging.DEBUG)
    client = signed_in(teacher)
    # given: nothing enrolled
    page = client.get(ACCOUNT).content.decode()
    assert "まだ登録されていません" in page
    assert client.get(VERIFY).content.decode().count(ACCOUNT) >= 1  # step-up points here

    # when: enrolment starts, the page shows a QR code and the secret to type in
    assert client.post(ACCOUNT + "start/").status_code == 302
    pending = sf.pending_authenticator(teacher)
    assert pending is not None and not pending.confirmed
    response = client.get(ACCOUNT)
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert '<div class="qr" role="img"' in page and "<svg" in page and "<path" in page
    secret = base64.b32encode(pending.bin_key).decode().rstrip("=")
    shown = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    assert shown.replace(" ", "") == secret
    # an unconfirmed device is no second factor yet
    assert "認証アプリが登録されていません" in client.get(VERIFY).content.decode()
    assert client.post(VERIFY, {"otp_token": code(pending)}).status_code == 200
    assert not is_stepped_up(client)
    pending.refresh_from_db()
    pending.throttle_reset()

    # a wrong code is refused, and nothing is confirmed
    wrong = client.post(ACCOUNT + "confirm/", {"otp_token": "000000"})
    assert wrong.status_code == 400
    assert "コードが違います" in wrong.content.decode()
    assert sf.authenticator(teacher) is None
    assert not StaticDevice.objects.filter(user=teacher).exists()
    pending.refresh_from_db()
    pending.throttle_reset()

    # the right code confirms it, shows ten recovery codes once, and steps the session up
    done = client.post(ACCOUNT + "confirm/", {"otp_token": code(pending)})
    assert done.status_code == 200
    assert done["Cache-Control"] == "no-store"
    codes = recovery_codes(done)
    assert len(set(codes)) == sf.RECOVERY_CODE_COUNT == 10
    assert sf.authenticator(teacher).pk == pending.pk
    assert sf.recovery_codes_left(teacher) == 10
    assert is_stepped_up(client)
    again = client.get(ACCOUNT).content.decode()
    assert "登録済み" in again and not any(c in again for c in codes)  # shown once only

    # then: the trail has the enrolment, never the secret or a code; no log line has them
    events = AuditEvent.objects.filter(target="user teacher-enrol").order_by("pk")
    assert [e.action for e in events] == [
        "second_factor.start",
        "second_factor.enrol",
        "second_factor.recovery_codes",
    ]
    assert {e.municipality_code for e in events} == {"131130"}
    trail = " ".join(str(e.changes) for e in events)
    for secret_text in [secret, pending.key, *codes, *(c.replace("-", "") for c in codes)]:
        assert secret_text not in trail
        assert secret_text.lower() not in caplog.text.lower()


def test_a_recovery_code_steps_up_once_and_is_used_up(teacher):
    _device, codes = enrol(signed_in(teacher), teacher)
    # A new session (the phone is lost): a recovery code, as shown, passes step-up.
    client = signed_in(teacher)
    ok = client.post(VERIFY + "?next=/m/131130/", {"otp_token": codes[0]})
    assert ok.status_code == 302
    assert is_stepped_up(client)
    assert sf.recovery_codes_left(teacher) == 9
    # The same code does not work twice; typed without the hyphen and in capitals, another does.
    other = signed_in(teacher)
    reused = other.post(VERIFY, {"otp_token": codes[0]})
    assert reused.status_code == 200
    assert "回復コード" in reused.content.decode()
    StaticDevice.objects.get(user=teacher).throttle_reset()
    assert other.post(VERIFY, {"otp_token": codes[1].replace("-", "").upper()}).status_code == 302
    assert sf.recovery_codes_left(teacher) == 8


def test_a_confirmed_authenticator_is_not_replaced_without_step_up(teacher):
    device, _codes = enrol(signed_in(teacher), teacher)
    # A session that has not passed step-up (a stolen password) cannot start a new device.
    thief = signed_in(teacher)
    page = thief.get(ACCOUNT).content.decode()
    assert "認証アプリを登録し直す" not in page and "本人確認をする" in page
    refused = thief.post(ACCOUNT + "start/")
    assert refused.status_code == 403
    assert "登録し直すには、先に今の認証アプリ" in refused.content.decode()
    assert sf.pending_authenticator(teacher) is None
    assert thief.post(ACCOUNT + "recovery-codes/").status_code == 403
    assert sf.recovery_codes_left(teacher) == 10

    # After step-up with the current device, the user re-enrols; the old device works until
    # the new one is confirmed, then stops.
    owner = signed_in(teacher)
    assert owner.post(VERIFY, {"otp_token": code(device, 1)}).status_code == 302
    assert owner.post(ACCOUNT + "start/").status_code == 302
    new = sf.pending_authenticator(teacher)
    assert sf.authenticator(teacher).pk == device.pk
    done = owner.post(ACCOUNT + "confirm/", {"otp_token": code(new)})
    assert done.status_code == 200 and len(recovery_codes(done)) == 10
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert sf.authenticator(teacher).pk == new.pk
    enrol_event = AuditEvent.objects.filter(action="second_factor.enrol").latest("pk")
    assert enrol_event.changes == {"replaced_earlier": True}


def test_an_enrolment_left_pending_is_no_way_around_step_up(teacher):
    device, _codes = enrol(signed_in(teacher), teacher)
    owner = signed_in(teacher)
    assert owner.post(VERIFY, {"otp_token": code(device, 1)}).status_code == 302
    assert owner.post(ACCOUNT + "start/").status_code == 302  # then the owner walks away
    pending = sf.pending_authenticator(teacher)
    secret = base64.b32encode(pending.bin_key).decode().rstrip("=")
    # A session with the password only neither sees the pending secret nor confirms it.
    thief = signed_in(teacher)
    page = thief.get(ACCOUNT).content.decode()
    assert "totp-secret" not in page and secret not in page.replace(" ", "")
    refused = thief.post(ACCOUNT + "confirm/", {"otp_token": code(pending)})
    assert refused.status_code == 400
    assert "先に今の認証アプリ" in refused.content.decode()
    assert sf.authenticator(teacher).pk == device.pk
    pending.refresh_from_db()
    assert not pending.confirmed


def test_recovery_codes_are_renewed_after_step_up_and_the_old_ones_stop(teacher):
    client = signed_in(teacher)
    _device, old = enrol(client, teacher)
    assert is_stepped_up(client)
    renewed = client.post(ACCOUNT + "recovery-codes/")
    assert renewed.status_code == 200
    new = recovery_codes(renewed)
    assert len(new) == 10 and not set(new) & set(old)
    assert StaticToken.objects.filter(device__user=teacher).count() == 10
    assert signed_in(teacher).post(VERIFY, {"otp_token": old[0]}).status_code == 200
    StaticDevice.objects.get(user=teacher).throttle_reset()  # the failure above throttles
    assert signed_in(teacher).post(VERIFY, {"otp_token": new[0]}).status_code == 302


# -- reset by a tenant admin ----------------------------------------------------------------


@pytest.fixture
def admin(make_user, shibuya):
    return make_user("admin-reset", "tenant_admin", municipality=shibuya)


def test_a_tenant_admin_resets_a_members_second_factor_after_step_up(
    teacher, admin, verified_client
):
    device, _codes = enrol(signed_in(teacher), teacher)
    member_session = signed_in(teacher)
    assert member_session.post(VERIFY, {"otp_token": code(device, 1)}).status_code == 302
    assert is_stepped_up(member_session)

    # Without step-up the admin is sent to the step-up page first.
    plain = signed_in(admin)
    to_verify = plain.get(RESETS)
    assert to_verify.status_code == 302 and "/accounts/verify/" in to_verify["Location"]
    assert plain.post(f"{RESETS}{teacher.pk}/reset/").status_code == 302
    assert sf.authenticator(teacher) is not None

    client = verified_client(admin)
    page = client.get(RESETS).content.decode()
    assert "teacher-enrol" in page and "登録済み" in page
    response = client.post(f"{RESETS}{teacher.pk}/reset/", follow=True)
    assert "二要素認証を解除しました" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=teacher).exists()
    assert not StaticDevice.objects.filter(user=teacher).exists()
    # The member's verified session ends with the device; they enrol again.
    assert not is_stepped_up(member_session)
    event = AuditEvent.objects.get(action="second_factor.reset")
    assert (event.username, event.municipality_code, event.target) == (
        "admin-reset",
        "131130",
        "user teacher-enrol",
    )
    assert event.changes == {"devices_removed": 2}
    again, codes = enrol(member_session, teacher)
    assert again.confirmed and len(codes) == 10


def test_a_reset_is_refused_for_oneself_others_and_members_elsewhere(
    teacher, admin, make_user, verified_client, shibuya, shinjuku
):
    from renkei.accounts.models import Membership

    client = verified_client(admin)
    # The admin's own second factor: the account page, not a reset.
    own = client.post(f"{RESETS}{admin.pk}/reset/", follow=True)
    assert "自分の二要素認証はここでは解除できません" in own.content.decode()
    assert sf.authenticator(admin) is not None
    # A member who also works for 新宿区: 新宿区's admins did not agree.
    both = make_user("both-places", "teacher", municipality=shibuya, schools=["B113211300012"])
    Membership.objects.create(user=both, role="board_analyst", municipality=shinjuku)
    TOTPDevice.objects.create(user=both, name="phone", confirmed=True)
    refused = client.post(f"{RESETS}{both.pk}/reset/", follow=True)
    assert "この利用者の二要素認証は解除できません" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=both).exists()
    # Someone with no role here is not found at all.
    stranger = make_user("stranger", "teacher", municipality=shinjuku)
    assert client.post(f"{RESETS}{stranger.pk}/reset/").status_code == 404
    # A teacher is no tenant admin, step-up or not.
    teacher_client = verified_client(teacher)
    assert teacher_client.post(f"{RESETS}{both.pk}/reset/").status_code == 403
    assert not AuditEvent.objects.filter(action="second_factor.reset").exists()


def test_a_prefecture_analyst_enrols_on_the_public_site(make_user):
    from renkei.tenants.models import Prefecture

    analyst = make_user("pref-enrol", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    client = signed_in(analyst)
    assert "まだ登録されていません" in client.get("/accounts/second-factor/").content.decode()
    assert client.post("/accounts/second-factor/start/").status_code == 302
    pending = sf.pending_authenticator(analyst)
    done = client.post("/accounts/second-factor/confirm/", {"otp_token": code(pending)})
    assert done.status_code == 200 and len(recovery_codes(done)) == 10
    events = AuditEvent.objects.filter(target="user pref-enrol")
    assert events.count() == 3 and {e.municipality_code for e in events} == {""}
