"""Guardians' rights (renkei.edudata.rights, docs/rights.md): the register, 開示 of everything
held, 訂正 and 削除 with rollups refreshed, opt-outs by school staff, and what "analysis"
covers for an opted-out pupil (usage and learning logs are not imported)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from renkei.accounts import policy
from renkei.connectors.builtin.msgraph import MicrosoftGraphConnector
from renkei.connectors.builtin.vendor_csv import DrillConnector
from renkei.connectors.pipeline import do_import
from renkei.connectors.streams import DATA_STREAMS
from renkei.edudata import rights
from renkei.edudata.models import (
    AccessLog,
    AttendanceDay,
    AttendancePupilMonth,
    LearningActivity,
    M365DailyUsage,
    RightsRequest,
    StaffNote,
    Student,
    StudentIdentity,
    SupportAction,
    SupportCase,
)
from renkei.edudata.privacy import do_record_opt_out, do_withdraw_opt_out
from renkei.edudata.rollups import refresh
from renkei.platform.audit import Actor
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant, tenant_write_session

pytestmark = pytest.mark.django_db

TEST_ACTOR = Actor.system("test")
NOTE_TEXT = "家庭の事情で配慮が必要（テスト用の本文）"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def principal(user, step_up=True):
    return policy.principal_for(user, step_up=step_up)


@pytest.fixture
def people(make_user, school_world, shibuya):
    a, b = school_world["A"].code, school_world["B"].code
    return {
        "admin": principal(make_user("admin-s", "tenant_admin", municipality=shibuya)),
        "manager_a": principal(
            make_user("manager-a", "school_manager", municipality=shibuya, schools=[a])
        ),
        "teacher_a": principal(
            make_user("teacher-a", "teacher", municipality=shibuya, schools=[a])
        ),
        "teacher_b": principal(
            make_user("teacher-b", "teacher", municipality=shibuya, schools=[b])
        ),
        "manager_b": principal(
            make_user("manager-b", "school_manager", municipality=shibuya, schools=[b])
        ),
    }


@pytest.fixture
def records(school_world, shibuya):
    """a1 (school A) with a name, attendance, a note and a support case with a step."""
    pupil = school_world["a1"]
    with in_tenant(shibuya):
        StudentIdentity.objects.create(
            student=pupil,
            source_system="c4th",
            source_id="S-a1",
            family_name="髙橋",
            given_name="一郎",
            principal_name="a1@example.ed.jp",
        )
        for day, status in (
            (dt.date(2025, 6, 2), "present"),
            (dt.date(2025, 6, 3), "absent_illness"),
        ):
            AttendanceDay.objects.create(student=pupil, date=day, status=status)
        StaffNote.objects.create(
            student=pupil,
            kind="consideration",
            text=NOTE_TEXT,
            written_at=timezone.now(),
            written_by="teacher-a",
        )
        case = SupportCase.objects.create(
            student=pupil, concern="気になること", opened_at=timezone.now(), opened_by="teacher-a"
        )
        SupportAction.objects.create(
            case=case,
            done_on=dt.date(2025, 6, 4),
            done_by="担任",
            text="面談",
            recorded_at=timezone.now(),
            recorded_by="teacher-a",
        )
        AccessLog.objects.create(
            user_id=9,
            username="teacher-a",
            student_pseudonym=pupil.pseudonym,
            what="student_board",
            via="web",
        )
        refresh([2025])
    return pupil


def _received(who, shibuya, pupil, kind="disclosure"):
    with in_tenant(shibuya):
        return rights.do_receive_request(who, shibuya, pupil.pk, kind, dt.date(2025, 7, 1))


# -- 開示 -------------------------------------------------------------------------------------------


def _reverse_relations(model):
    return [
        f
        for f in model._meta.get_fields(include_hidden=True)
        if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)
    ]


def test_every_relation_of_a_pupil_is_in_the_disclosure(people, records, shibuya):
    # given: every model that points at Student, and at those models in turn
    expected, todo = {Student._meta.label_lower}, [Student]
    while todo:
        for rel in _reverse_relations(todo.pop()):
            label = rel.related_model._meta.label_lower
            if label not in expected:
                expected.add(label)
                todo.append(rel.related_model)
    assert {"edudata.supportaction", "edudata.attendancepupilmonth", "edudata.optout"} <= expected
    request = _received(people["manager_a"], shibuya, records)
    # when
    with in_tenant(shibuya):
        found = rights.do_disclose(people["manager_a"], shibuya, request.pk, fmt="json")
    # then: a section for each, with every concrete field labelled
    sections = {s["model"]: s for s in found.as_json()["sections"]}
    assert expected <= set(sections)
    assert {"edudata.accesslog", "platform.auditevent", "edudata.rightsrequest"} <= set(sections)
    attendance = sections["edudata.attendanceday"]
    assert {f["label"] for f in attendance["fields"]} >= {"日付", "出欠", "欠席等の理由"}


def test_the_disclosure_holds_everything_and_is_logged_and_audited(people, records, shibuya):
    request = _received(people["manager_a"], shibuya, records)
    with in_tenant(shibuya):
        found = rights.do_disclose(people["manager_a"], shibuya, request.pk, fmt="json")
        data = found.as_json()
        sections = {s["model"]: s["rows"] for s in data["sections"]}
        assert sections["edudata.studentidentity"][0]["family_name"] == "髙橋"
        assert [r["status"] for r in sections["edudata.attendanceday"]] == [
            "present",
            "absent_illness",
        ]
        assert sections["edudata.staffnote"][0]["text"] == NOTE_TEXT
        assert sections["edudata.supportaction"][0]["text"] == "面談"
        assert (
            sections["edudata.supportaction"][0]["case"] == sections["edudata.supportcase"][0]["id"]
        )
        assert sections["edudata.student"][0]["school"] == "渋谷区立第一小学校"
        assert sections["edudata.attendancepupilmonth"][0]["absent_illness"] == 1
        assert sections["edudata.accesslog"][0]["username"] == "teacher-a"
        # the request is answered; the read is in the access log, marked sensitive
        request.refresh_from_db()
        assert request.status == "answered" and request.answered_by == "manager-a"
        log = AccessLog.objects.filter(student_pseudonym=records.pseudonym, what="disclosure_json")
        assert log.get().sensitive
    event = AuditEvent.objects.get(action="rights.disclose")
    assert event.changes["rows"] == found.rows and event.target == f"pupil {records.pseudonym}"
    assert NOTE_TEXT not in str(event.changes) and "髙橋" not in str(event.changes)


def test_a_teacher_of_another_school_is_refused_a_disclosure(people, records, shibuya):
    for who in ("teacher_b", "manager_b", "teacher_a"):
        with in_tenant(shibuya), pytest.raises(policy.AccessDenied) as refused:
            rights.do_receive_request(people[who], shibuya, records.pk, "disclosure")
        assert str(refused.value) == str(policy.FORBIDDEN_RIGHTS)
    request = _received(people["admin"], shibuya, records)
    with in_tenant(shibuya), pytest.raises(policy.AccessDenied):
        rights.do_disclose(people["teacher_b"], shibuya, request.pk, fmt="html")
    with in_tenant(shibuya):
        assert not AccessLog.objects.filter(what__startswith="disclosure").exists()
    assert not AuditEvent.objects.filter(action="rights.disclose").exists()


def test_answering_needs_the_second_factor(make_user, records, shibuya):
    admin = principal(
        make_user("admin-nostep", "tenant_admin", municipality=shibuya), step_up=False
    )
    with in_tenant(shibuya), pytest.raises(policy.StepUpRequired):
        rights.do_receive_request(admin, shibuya, records.pk, "disclosure")


# -- 訂正 -------------------------------------------------------------------------------------------


def test_a_correction_changes_one_field_refreshes_rollups_and_audits_no_values(
    people, records, shibuya
):
    with in_tenant(shibuya):
        day = AttendanceDay.objects.get(student=records, date=dt.date(2025, 6, 3))
        assert AttendancePupilMonth.objects.get(student=records).absent_illness == 1
        request = rights.do_correct_record(
            people["manager_a"],
            shibuya,
            records.pk,
            target="edudata.attendanceday:status",
            record_pk=day.pk,
            value="present",
            reason="保護者から、6月3日は出席していたとの指摘",
            received_on=dt.date(2025, 7, 1),
        )
        day.refresh_from_db()
        assert day.status == "present"
        month = AttendancePupilMonth.objects.get(student=records)
        assert (month.absent_illness, month.present) == (0, 2)  # same transaction
        assert request.kind == "correction" and request.status == "answered"
        assert request.reason.startswith("保護者から")
    event = AuditEvent.objects.get(action="rights.correct")
    assert event.changes["field"] == "status" and event.changes["records"] == 1
    assert "present" not in str(event.changes) and "指摘" not in str(event.changes)


def test_a_correction_during_an_import_says_so_and_is_made_once_it_has_ended(
    people, records, shibuya, settings
):
    """An import holds the tenant's write lock to its end, minutes for a city: a correction
    asked for from a page meanwhile says that an import is running, within
    RENKEI_LOCK_WAIT_SECONDS, and changes nothing."""
    settings.RENKEI_LOCK_WAIT_SECONDS = 0.2
    correction = {
        "target": "edudata.attendanceday:status",
        "value": "present",
        "reason": "保護者から、6月3日は出席していたとの指摘",
    }
    with in_tenant(shibuya):
        with connection.cursor() as cursor:  # waiting to the end fails the test, not hangs it
            cursor.execute("SET LOCAL statement_timeout = '30s'")
        day = AttendanceDay.objects.get(student=records, date=dt.date(2025, 6, 3))
        with (
            tenant_write_session(shibuya.schema_name),
            pytest.raises(rights.RightsError, match="取り込み中"),
        ):
            rights.do_correct_record(
                people["manager_a"], shibuya, records.pk, record_pk=day.pk, **correction
            )
        day.refresh_from_db()
        assert day.status == "absent_illness"
        assert not RightsRequest.objects.exists()

        rights.do_correct_record(
            people["manager_a"], shibuya, records.pk, record_pk=day.pk, **correction
        )
        day.refresh_from_db()
        assert day.status == "present"


@pytest.mark.parametrize(
    ("target", "value", "reason", "message"),
    [
        ("edudata.attendanceday:status", "present", "", "理由を書いてください"),
        ("edudata.attendanceday:status", "sleeping", "誤り", "「出欠」の値が正しくありません"),
        ("edudata.student:pseudonym", "x", "誤り", "訂正できる項目"),
        ("edudata.attendanceday:date", "2025-06-02", "誤り", "重なる"),
    ],
)
def test_a_bad_correction_is_refused_and_changes_nothing(
    people, records, shibuya, target, value, reason, message
):
    with in_tenant(shibuya):
        day = AttendanceDay.objects.get(student=records, date=dt.date(2025, 6, 3))
        with pytest.raises(rights.RightsError, match=message):
            rights.do_correct_record(
                people["admin"],
                shibuya,
                records.pk,
                target=target,
                record_pk=day.pk,
                value=value,
                reason=reason,
            )
        day.refresh_from_db()
        assert (day.date, day.status) == (dt.date(2025, 6, 3), "absent_illness")
        assert not RightsRequest.objects.exists()


def test_a_record_of_another_pupil_cannot_be_corrected_through_this_one(
    people, records, school_world, shibuya
):
    with in_tenant(shibuya):
        other = AttendanceDay.objects.create(
            student=school_world["a2"], date=dt.date(2025, 6, 3), status="present"
        )
        with pytest.raises(rights.RightsError, match="番号"):
            rights.do_correct_record(
                people["admin"],
                shibuya,
                records.pk,
                target="edudata.attendanceday:status",
                record_pk=other.pk,
                value="absent_other",
                reason="誤り",
            )


# -- 削除 -------------------------------------------------------------------------------------------


def test_deleting_one_record_one_kind_and_the_whole_pupil(people, records, shibuya):
    with in_tenant(shibuya):
        note = StaffNote.objects.get(student=records)
        open_request = rights.do_receive_request(
            people["admin"], shibuya, records.pk, "deletion", dt.date(2025, 7, 1)
        )
        first = rights.do_delete_records(
            people["admin"],
            shibuya,
            records.pk,
            scope="record",
            kind="edudata.staffnote",
            record_pk=note.pk,
            reason="保護者の請求",
        )
        assert first.pk == open_request.pk  # the received request is the one answered
        assert first.outcome["deleted"] == {"edudata.staffnote": 1}
        second = rights.do_delete_records(
            people["manager_a"],
            shibuya,
            records.pk,
            scope="kind",
            kind="edudata.attendanceday",
            reason="保護者の請求",
        )
        assert second.outcome["deleted"] == {"edudata.attendanceday": 2}
        assert not AttendancePupilMonth.objects.filter(student=records).exists()
        last = rights.do_delete_records(
            people["admin"], shibuya, records.pk, scope="pupil", reason="保護者の請求"
        )
        assert last.outcome["deleted"]["edudata.student"] == 1
        assert last.outcome["deleted"]["edudata.supportaction"] == 1
        assert not Student.objects.filter(pk=records.pk).exists()
        # the register and the access log stay, by pseudonym
        assert RightsRequest.objects.filter(student_pseudonym=records.pseudonym).count() == 3
        assert AccessLog.objects.filter(student_pseudonym=records.pseudonym).exists()
    events = AuditEvent.objects.filter(action="rights.delete").order_by("pk")
    assert [e.changes["scope"] for e in events] == ["record", "kind", "pupil"]
    assert NOTE_TEXT not in str([e.changes for e in events])


def test_a_deletion_without_reason_or_of_nothing_is_refused(people, records, shibuya):
    with in_tenant(shibuya):
        with pytest.raises(rights.RightsError, match="理由"):
            rights.do_delete_records(
                people["admin"], shibuya, records.pk, scope="pupil", reason=" "
            )
        with pytest.raises(rights.RightsError, match="削除する記録がありません"):
            rights.do_delete_records(
                people["admin"],
                shibuya,
                records.pk,
                scope="record",
                kind="edudata.staffnote",
                record_pk=999_999,
                reason="請求",
            )
        with pytest.raises(rights.RightsError, match="種類"):
            rights.do_delete_records(
                people["admin"],
                shibuya,
                records.pk,
                scope="kind",
                kind="edudata.optout",
                reason="請求",
            )
        assert Student.objects.filter(pk=records.pk).exists()
        assert AttendanceDay.objects.filter(student=records).count() == 2
        assert not RightsRequest.objects.exists()


# -- opt-outs by school staff, and what analysis covers ---------------------------------------------


def test_a_teacher_of_the_school_records_an_opt_out_and_its_withdrawal_in_the_register(
    people, records, shibuya
):
    asked = timezone.make_aware(dt.datetime(2025, 6, 10))
    with in_tenant(shibuya):
        do_record_opt_out(people["teacher_a"], shibuya, records, requested_at=asked)
        do_withdraw_opt_out(people["teacher_a"], shibuya, records, dt.date(2025, 9, 1))
        register = list(
            RightsRequest.objects.filter(student_pseudonym=records.pseudonym)
            .order_by("pk")
            .values_list("kind", "received_on", "status", "recorded_by")
        )
    assert register == [
        ("opt_out", dt.date(2025, 6, 10), "answered", "teacher-a"),
        ("opt_out_withdrawal", dt.date(2025, 9, 1), "answered", "teacher-a"),
    ]
    with in_tenant(shibuya), pytest.raises(policy.AccessDenied):
        do_record_opt_out(people["teacher_b"], shibuya, records)


REPORT_HEADER = (
    "Report Refresh Date,User Principal Name,Last Activation Date,Last Activity Date,"
    "Report Period,Windows,Mac,Mobile,Web,Outlook,Word,Excel,PowerPoint,OneNote,Teams"
)


def test_usage_logs_of_an_opted_out_pupil_are_skipped_not_imported(
    people, records, school_world, shibuya, tmp_path, home
):
    # given: two pupils in the report, one of them opted out
    with in_tenant(shibuya):
        StudentIdentity.objects.create(
            student=school_world["a2"],
            source_system="c4th",
            source_id="S-a2",
            principal_name="a2@example.ed.jp",
        )
        do_record_opt_out(people["admin"], shibuya, records)
    report = tmp_path / "M365AppUserDetail_2025-06-09.csv"
    report.write_text(
        REPORT_HEADER
        + "\n2025-06-09,a1@example.ed.jp,,2025-06-09,1,Yes,No,No,No,No,Yes,No,No,No,Yes\n"
        + "2025-06-09,a2@example.ed.jp,,2025-06-09,1,Yes,No,No,No,No,Yes,No,No,No,No\n",
        encoding="utf-8",
    )
    # when
    run = do_import(MicrosoftGraphConnector, shibuya, actor=TEST_ACTOR, paths=[report])
    # then: the opted-out pupil's rows are counted as skipped, not as errors, and not stored
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected, run.rows_skipped) == (2, 1, 0, 1)
    with in_tenant(shibuya):
        assert not M365DailyUsage.objects.filter(student=records).exists()
        assert M365DailyUsage.objects.filter(student=school_world["a2"]).count() == 1
        # after the withdrawal the next report is imported again
        do_withdraw_opt_out(people["admin"], shibuya, records)
    again = do_import(MicrosoftGraphConnector, shibuya, actor=TEST_ACTOR, paths=[report])
    assert again.rows_skipped == 0
    with in_tenant(shibuya):
        assert M365DailyUsage.objects.filter(student=records).count() == 2


def test_learning_logs_of_an_opted_out_pupil_are_skipped_while_school_records_import(
    people, records, school_world, shibuya, tmp_path, home
):
    with in_tenant(shibuya):
        do_record_opt_out(people["admin"], shibuya, records)
    drill = tmp_path / "ドリル学習履歴.csv"
    drill.write_text(
        "日付,アカウント,教科,単元名,学習時間（分）,解答数,正答数\r\n"
        "2025/06/02,a1@example.ed.jp,算数,分数のたし算,25,20,18\r\n"
        "2025/06/03,nobody@example.ed.jp,算数,小数,10,5,5\r\n",
        encoding="utf-8",
    )
    run = do_import(DrillConnector, shibuya, actor=TEST_ACTOR, paths=[drill])
    assert run.status == "succeeded", run.message
    # the unknown account is still an error; the opted-out pupil's row is only skipped
    assert (run.rows_read, run.rows_accepted, run.rows_rejected, run.rows_skipped) == (2, 0, 1, 1)
    with in_tenant(shibuya):
        assert not LearningActivity.objects.exists()


def test_only_usage_and_learning_logs_are_analysis_only():
    """School records (attendance, health, tests, check-ins) are imported for every pupil."""
    assert {s.table for s in DATA_STREAMS.values() if s.analysis_only} == {
        "edudata_m365dailyusage",
        "edudata_learningactivity",
    }


def test_a_declined_request_keeps_its_reason_and_discloses_nothing(people, records, shibuya):
    request = _received(people["admin"], shibuya, records)
    with in_tenant(shibuya):
        with pytest.raises(rights.RightsError, match="理由"):
            rights.do_decline_request(people["admin"], shibuya, request.pk, "")
        rights.do_decline_request(people["admin"], shibuya, request.pk, "本人確認ができなかった")
        request.refresh_from_db()
        assert (request.status, request.reason) == ("declined", "本人確認ができなかった")
        with pytest.raises(rights.RightsError, match="対応しない"):
            rights.do_disclose(people["admin"], shibuya, request.pk, fmt="html")
        with pytest.raises(rights.RightsError, match="既に対応済み"):
            rights.do_decline_request(people["admin"], shibuya, request.pk, "二度目")
    assert "本人確認" not in str(AuditEvent.objects.get(action="rights.decline").changes)
