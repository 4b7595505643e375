"""管理 › 転校: 渋谷区's school manager makes a pupil's package (consent required, code shown
once), 新宿区's admin imports it; both after step-up, nobody else."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.edudata.models import ImportRun, School, Student, StudentIdentity, TransferOut
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

SHIBUYA, SHINJUKU = "/m/131130/manage/", "/m/131041/manage/"
RECEIVING_SCHOOL = "B113210400015"


@pytest.fixture(autouse=True)
def _fast_passwords(settings, home):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def signed_in(user, code: str, *, verified: bool = True) -> Client:
    client = Client()
    client.force_login(user)
    if verified:
        device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        token = f"{totp(device.bin_key):06d}"
        response = client.post(f"/m/{code}/accounts/verify/", {"otp_token": token})
        assert response.status_code == 302
    return client


@pytest.fixture
def world(school_world, shibuya, shinjuku, make_user):
    a, b = school_world["A"], school_world["B"]
    with in_tenant(shibuya):
        StudentIdentity.objects.create(
            student=school_world["a1"],
            source_system="c4th",
            source_id="C0001",
            family_name="髙橋",
            given_name="一郎",
        )
    with in_tenant(shinjuku):
        School.objects.create(code=RECEIVING_SCHOOL, name="新宿区立第一小学校", school_type="B1")
    return {
        **school_world,
        "manager_a": make_user(
            "manager-a", "school_manager", municipality=shibuya, schools=[a.code]
        ),
        "manager_b": make_user(
            "manager-b", "school_manager", municipality=shibuya, schools=[b.code]
        ),
        "teacher_a": make_user("teacher-a", "teacher", municipality=shibuya, schools=[a.code]),
        "shinjuku_admin": make_user("admin-j", "tenant_admin", municipality=shinjuku),
    }


def export_form(world, **changes):
    return {
        "school": world["A"].pk,
        "source_id": "C0001",
        "destination_code": "131041",
        "destination_school_code": "",
        "consent_given_by": "髙橋 花子（母）",
        "consent_given_on": "2025-09-01",
        "consent_confirmed": "on",
        **changes,
    }


def transfers_out(shibuya) -> int:
    with in_tenant(shibuya):
        return TransferOut.objects.count()


def test_a_pupil_goes_out_of_one_municipality_and_into_another(world, shibuya, shinjuku):
    # given: 第一小学校's manager, after step-up
    sender = signed_in(world["manager_a"], "131130")
    assert "転校パッケージを作る" in sender.get(SHIBUYA + "transfers/").content.decode()
    # when: the package is made with the guardian's consent
    done = sender.post(SHIBUYA + "transfers/", export_form(world))
    # then: the code is on the page, once, and the package can be downloaded
    assert done.status_code == 200, done.content.decode()
    code = done.context["exported"].code
    assert code in done.content.decode()
    assert "今だけ表示され" in done.content.decode()
    listing = sender.get(SHIBUYA + "transfers/").content.decode()
    assert code not in listing  # shown once, stored nowhere
    with in_tenant(shibuya):
        transfer = TransferOut.objects.get()
    download = sender.get(SHIBUYA + f"transfers/{transfer.pk}/package/")
    assert download.status_code == 200
    package = b"".join(download.streaming_content)
    assert zipfile.is_zipfile(io.BytesIO(package))
    # when: 新宿区's admin imports it, with the code from the paperwork
    receiver = signed_in(world["shinjuku_admin"], "131041")
    upload = io.BytesIO(package)
    upload.name = "transfer.zip"
    with in_tenant(shinjuku):
        school = School.objects.get(code=RECEIVING_SCHOOL)
    answer = receiver.post(
        SHINJUKU + "transfers/in/",
        {"package": upload, "transfer_code": code, "school": school.pk},
    )
    # then
    assert answer.status_code == 200, answer.content.decode()
    assert "取り込みました" in answer.content.decode()
    assert code not in answer.content.decode()
    with in_tenant(shinjuku):
        pupil = Student.objects.get()
        assert pupil.school.code == RECEIVING_SCHOOL
        assert pupil.identities.get().family_name == "髙橋"
        assert ImportRun.objects.get().config["transfer_code"] == "********"


def test_without_consent_nothing_is_made(world, shibuya):
    sender = signed_in(world["manager_a"], "131130")
    answer = sender.post(SHIBUYA + "transfers/", export_form(world, consent_confirmed=""))
    assert answer.status_code == 400
    assert "保護者の同意が記録されていません" in answer.content.decode()
    assert transfers_out(shibuya) == 0


def test_a_manager_of_another_school_can_neither_export_nor_download(world, shibuya):
    other = signed_in(world["manager_b"], "131130")
    answer = other.post(SHIBUYA + "transfers/", export_form(world))
    assert answer.status_code == 400
    assert transfers_out(shibuya) == 0
    signed_in(world["manager_a"], "131130").post(SHIBUYA + "transfers/", export_form(world))
    with in_tenant(shibuya):
        transfer = TransferOut.objects.select_related("student").get()
    listing = other.get(SHIBUYA + "transfers/").content.decode()
    assert transfer.student.pseudonym[:8] not in listing  # another school's transfer
    assert other.get(SHIBUYA + f"transfers/{transfer.pk}/package/").status_code == 404


def test_teachers_are_refused_and_step_up_is_asked_first(world, shibuya):
    teacher = signed_in(world["teacher_a"], "131130")
    assert teacher.get(SHIBUYA + "transfers/").status_code == 403
    assert teacher.post(SHIBUYA + "transfers/", export_form(world)).status_code == 403
    unverified = signed_in(world["manager_a"], "131130", verified=False)
    page = unverified.get(SHIBUYA + "transfers/")
    assert page.status_code == 200
    assert "二要素認証で本人確認する" in page.content.decode()
    assert "転校パッケージを作る</button>" not in page.content.decode()
    unverified.post(SHIBUYA + "transfers/", export_form(world))
    assert transfers_out(shibuya) == 0


def test_a_wrong_code_is_refused_on_the_page(world, shibuya, shinjuku):
    sender = signed_in(world["manager_a"], "131130")
    sender.post(SHIBUYA + "transfers/", export_form(world))
    with in_tenant(shibuya):
        transfer = TransferOut.objects.get()
    package = b"".join(sender.get(SHIBUYA + f"transfers/{transfer.pk}/package/").streaming_content)
    receiver = signed_in(world["shinjuku_admin"], "131041")
    upload = io.BytesIO(package)
    upload.name = "transfer.zip"
    with in_tenant(shinjuku):
        school = School.objects.get(code=RECEIVING_SCHOOL)
    answer = receiver.post(
        SHINJUKU + "transfers/in/",
        {"package": upload, "transfer_code": "0000-0000-0000-0000-0000", "school": school.pk},
    )
    assert answer.status_code == 400
    assert "転校コードが違います" in answer.content.decode()
    with in_tenant(shinjuku):
        assert not Student.objects.exists()


def test_a_school_manager_finds_requests_and_transfers_in_the_menu_and_nothing_of_the_admins(
    world,
):
    manager = signed_in(world["manager_a"], "131130")
    home = manager.get("/m/131130/").content.decode()
    assert f'href="{SHIBUYA}rights/"' in home and f'href="{SHIBUYA}transfers/"' in home
    page = manager.get(f"{SHIBUYA}transfers/").content.decode()
    assert f'href="{SHIBUYA}transfers/"' in page
    for admin_only in ("imports/", "connectors/", "members/", "settings/", "school-years/"):
        assert f'href="{SHIBUYA}{admin_only}"' not in page  # links that would answer 403
    teacher = signed_in(world["teacher_a"], "131130", verified=False)
    assert f'href="{SHIBUYA}transfers/"' not in teacher.get("/m/131130/").content.decode()
