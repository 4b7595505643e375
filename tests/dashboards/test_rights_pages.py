"""管理 › 請求受付簿 (renkei/dashboards/manage/rights.py): behind step-up, the 開示 document and
JSON for those who answer, opt-outs from the pupil board for the school's staff, a clear
refusal for everyone else, and nothing written by a refused request."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from renkei.accounts import policy
from renkei.edudata.models import (
    AccessLog,
    AttendanceDay,
    RightsRequest,
    Student,
    StudentIdentity,
)
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

BASE = "/m/131130/manage/rights/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(make_user, school_world, shibuya):
    a, b = school_world["A"].code, school_world["B"].code
    return {
        "admin": make_user("admin-s", "tenant_admin", municipality=shibuya),
        "manager_a": make_user("manager-a", "school_manager", municipality=shibuya, schools=[a]),
        "teacher_a": make_user("teacher-a", "teacher", municipality=shibuya, schools=[a]),
        "teacher_b": make_user("teacher-b", "teacher", municipality=shibuya, schools=[b]),
    }


@pytest.fixture
def pupil(school_world, shibuya):
    p = school_world["a1"]
    with in_tenant(shibuya):
        StudentIdentity.objects.create(
            student=p, source_system="c4th", source_id="S-a1", family_name="髙橋", given_name="一郎"
        )
        AttendanceDay.objects.create(
            student=p, date=dt.date(2025, 6, 3), status="absent_illness", reason="発熱"
        )
    return p


def test_without_the_second_factor_the_pages_send_to_step_up(client, people, pupil):
    client.force_login(people["admin"])
    for path in ("", f"pupils/{pupil.pk}/"):
        response = client.get(BASE + path)
        assert response.status_code == 302 and "/accounts/verify/" in response["Location"]


def test_the_admin_answers_a_disclosure_as_a_document_and_json(
    verified_client, people, pupil, shibuya
):
    client = verified_client(people["admin"])
    # the register finds the pupil by school and the school system's id
    found = client.get(BASE, {"school": pupil.school_id, "source_id": "S-a1"})
    assert found.status_code == 302 and found["Location"].endswith(f"/pupils/{pupil.pk}/")
    page = client.get(found["Location"])
    assert page.status_code == 200 and "髙橋" in page.content.decode()
    # receive the request, then open the document and the JSON
    received = client.post(
        BASE + f"pupils/{pupil.pk}/receive/",
        {"receive-kind": "disclosure", "receive-received_on": "2025-07-01"},
    )
    assert received.status_code == 302
    with in_tenant(shibuya):
        request = RightsRequest.objects.get()
    assert request.received_on == dt.date(2025, 7, 1) and request.status == "received"
    html = client.get(BASE + f"requests/{request.pk}/disclosure/")
    assert html.status_code == 200 and html["Cache-Control"] == "no-store"
    text = html.content.decode()
    assert "保有個人情報の開示" in text and "@page { size: A4" in text
    assert "髙橋" in text and "発熱" in text and "欠席等の理由" in text  # values and labels
    download = client.get(BASE + f"requests/{request.pk}/disclosure.json")
    assert download["Content-Disposition"].startswith('attachment; filename="disclosure-131130-')
    data = json.loads(download.content)
    assert data["pupil"]["pseudonym"] == pupil.pseudonym
    with in_tenant(shibuya):
        assert RightsRequest.objects.get().status == "answered"
        reads = AccessLog.objects.filter(
            student_pseudonym=pupil.pseudonym, what__startswith="disclosure"
        )
        assert sorted(reads.values_list("what", flat=True)) == [
            "disclosure_html",
            "disclosure_json",
        ]
    assert AuditEvent.objects.filter(action="rights.disclose").count() == 2


def test_a_teacher_of_another_school_gets_a_clear_refusal(verified_client, people, pupil, shibuya):
    # given: a request the admin received
    admin = verified_client(people["admin"])
    admin.post(BASE + f"pupils/{pupil.pk}/receive/", {"receive-kind": "disclosure"})
    with in_tenant(shibuya):
        request = RightsRequest.objects.get()
    # when: a teacher of school B asks for the pupil of school A
    client = verified_client(people["teacher_b"])
    for method, path in (
        ("get", f"pupils/{pupil.pk}/"),
        ("post", f"pupils/{pupil.pk}/receive/"),
        ("get", f"requests/{request.pk}/disclosure/"),
        ("get", f"requests/{request.pk}/disclosure.json"),
        ("post", f"pupils/{pupil.pk}/opt-out/"),
        ("post", f"pupils/{pupil.pk}/delete/"),
    ):
        response = getattr(client, method)(BASE + path, {"receive-kind": "disclosure"})
        # then: refused, with the reason, and nothing of the pupil in the answer
        assert response.status_code == 403, path
        body = response.content.decode()
        refusal = (
            policy.FORBIDDEN_PUPIL
            if "/opt-out/" in path or path.endswith(f"{pupil.pk}/")
            else policy.FORBIDDEN_RIGHTS
        )
        assert str(refusal) in body and "髙橋" not in body and "発熱" not in body
    register = client.get(BASE)  # school B's register does not list school A's request
    assert register.status_code == 200 and pupil.pseudonym[:12] not in register.content.decode()
    with in_tenant(shibuya):
        assert RightsRequest.objects.count() == 1
        assert not AccessLog.objects.filter(username="teacher-b").exists()
        assert Student.objects.get(pk=pupil.pk).opted_out_at is None


def test_a_teacher_of_the_school_records_an_opt_out_but_not_a_disclosure(
    verified_client, people, pupil, shibuya
):
    client = verified_client(people["teacher_a"])
    board = client.get(f"/m/131130/boards/students/{pupil.pk}/")
    assert f'href="{BASE}pupils/{pupil.pk}/"' in board.content.decode()
    page = client.get(BASE + f"pupils/{pupil.pk}/").content.decode()
    assert "分析除外を記録" in page and "訂正する" not in page
    response = client.post(
        BASE + f"pupils/{pupil.pk}/opt-out/", {"optout-requested_on": "2025-06-10"}
    )
    assert response.status_code == 302
    board = client.get(f"/m/131130/boards/students/{pupil.pk}/").content.decode()
    assert 'data-testid="opted-out-note"' in board
    response = client.post(BASE + f"pupils/{pupil.pk}/receive/", {"receive-kind": "disclosure"})
    assert response.status_code == 403
    assert str(policy.FORBIDDEN_RIGHTS) in response.content.decode()
    with in_tenant(shibuya):
        assert list(RightsRequest.objects.values_list("kind", "received_on")) == [
            ("opt_out", dt.date(2025, 6, 10))
        ]


def test_a_manager_corrects_and_deletes_from_the_pupil_page(
    verified_client, people, pupil, shibuya
):
    client = verified_client(people["manager_a"])
    with in_tenant(shibuya):
        day = AttendanceDay.objects.get(student=pupil)
    # a correction without a reason is refused with the field named, nothing written
    response = client.post(
        BASE + f"pupils/{pupil.pk}/correct/",
        {
            "correct-target": "edudata.attendanceday:status",
            "correct-record_id": day.pk,
            "correct-value": "present",
        },
        follow=True,
    )
    assert "理由（必須）" in response.content.decode()
    response = client.post(
        BASE + f"pupils/{pupil.pk}/correct/",
        {
            "correct-target": "edudata.attendanceday:status",
            "correct-record_id": day.pk,
            "correct-value": "present",
            "correct-reason": "保護者の指摘",
        },
        follow=True,
    )
    assert "訂正しました" in response.content.decode()
    # deleting the whole pupil needs the confirmation, then leaves the register
    data = {"delete-scope": "pupil", "delete-reason": "保護者の請求"}
    response = client.post(BASE + f"pupils/{pupil.pk}/delete/", data, follow=True)
    assert "削除の確認にチェックを入れてください" in response.content.decode()
    response = client.post(
        BASE + f"pupils/{pupil.pk}/delete/", {**data, "delete-confirm": "on"}, follow=True
    )
    assert response.status_code == 200 and "削除しました" in response.content.decode()
    with in_tenant(shibuya):
        assert not Student.objects.filter(pk=pupil.pk).exists()
        assert list(RightsRequest.objects.order_by("pk").values_list("kind", "status")) == [
            ("correction", "answered"),
            ("deletion", "answered"),
        ]
    with in_tenant(shibuya):
        deletion = RightsRequest.objects.get(kind="deletion")
    detail = client.get(BASE + f"requests/{deletion.pk}/").content.decode()
    assert "出欠: 1 件削除" in detail and "児童生徒: 1 件削除" in detail
    # the register lists the school's requests for the manager
    register = client.get(BASE).content.decode()
    assert register.count("対応済み") >= 2


def test_the_admins_opt_out_page_records_both_dates_in_the_register(client, people, pupil, shibuya):
    client.force_login(people["admin"])  # the admin's own opt-out page needs no step-up
    manage = "/m/131130/manage/"
    client.post(
        manage + "opt-outs/",
        {"school": pupil.school_id, "source_id": "S-a1", "requested_on": "2025-06-02"},
    )
    with in_tenant(shibuya):
        opt_out = pupil.opt_outs.get()
    response = client.post(
        manage + f"opt-outs/{opt_out.pk}/withdraw/", {"requested_on": "2099-01-01"}, follow=True
    )
    assert "未来の日付" in response.content.decode()  # refused, nothing changed
    client.post(manage + f"opt-outs/{opt_out.pk}/withdraw/", {"requested_on": "2025-09-01"})
    with in_tenant(shibuya):
        assert list(
            RightsRequest.objects.order_by("pk").values_list("kind", "received_on", "status")
        ) == [
            ("opt_out", dt.date(2025, 6, 2), "answered"),
            ("opt_out_withdrawal", dt.date(2025, 9, 1), "answered"),
        ]
    overview = client.get(manage).content.decode()
    assert 'data-testid="open-requests">未対応 0 件' in overview
