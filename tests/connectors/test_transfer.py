"""転校 between two municipalities through files only: 渋谷区 makes the package
(``do_export_transfer``), 新宿区 imports it with the ``transfer`` connector through the normal
pipeline. Every bad package is refused with a Japanese message and writes nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from decimal import Decimal

import pytest

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.connectors.builtin.transfer import TransferConnector, grade_at
from renkei.connectors.pipeline import do_import
from renkei.connectors.transfer import Consent, TransferError, do_export_transfer
from renkei.connectors.transfer_package import (
    HEADER,
    PAYLOAD,
    normalize_code,
    open_package,
    seal,
)
from renkei.edudata.models import (
    AccessLog,
    AssessmentResult,
    AttendanceDay,
    Enrollment,
    HealthObservation,
    Homeroom,
    LearningActivity,
    NurseVisit,
    School,
    Student,
    StudentIdentity,
    SubjectEvaluation,
    TransferOut,
)
from renkei.edudata.privacy import pseudonym_for
from renkei.platform.audit import Actor
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

SENDING_SCHOOL = "B113211300012"
RECEIVING_SCHOOL = "B113210400015"
OSAKA_SCHOOL = "B127210000019"
RECEIVER = Actor(username="admin-131041", via="web", role="tenant_admin")
CONSENT = Consent(given_by="渋谷 花子（母）", given_on=dt.date(2025, 9, 1))


def admin(code: str, *, step_up: bool = True) -> policy.Principal:
    grant = policy.Grant(Role.TENANT_ADMIN, code, None, frozenset())
    return policy.Principal(user_id=1, username=f"admin-{code}", grants=(grant,), step_up=step_up)


@pytest.fixture
def pupil(shibuya, home):
    """A pupil of 渋谷区立第一小学校 with a record of every kind that transfers (and a few that
    do not)."""
    with in_tenant(shibuya):
        school = School.objects.create(
            code=SENDING_SCHOOL, name="渋谷区立第一小学校", school_type="B1"
        )
        student = Student.objects.create(
            pseudonym=pseudonym_for(shibuya, "c4th", "C0001"),
            school=school,
            grade=3,
            birth_year_month="2017-05",
            sex="female",
        )
        StudentIdentity.objects.create(
            student=student,
            source_system="c4th",
            source_id="C0001",
            family_name="山田",
            given_name="花",
            family_name_kana="ヤマダ",
            given_name_kana="ハナ",
            principal_name="hana@m131130.example.ed.jp",
        )
        homeroom = Homeroom.objects.create(school=school, school_year=2025, grade=3, name="3年1組")
        Enrollment.objects.create(student=student, homeroom=homeroom, attendance_number=12)
        for day, status, reason in (
            (dt.date(2025, 6, 2), "present", ""),
            (dt.date(2025, 6, 3), "absent_illness", "発熱"),
            (dt.date(2025, 6, 4), "late", ""),
        ):
            AttendanceDay.objects.create(student=student, date=day, status=status, reason=reason)
        HealthObservation.objects.create(
            student=student, date=dt.date(2025, 6, 3), condition="poor", symptoms="熱"
        )
        NurseVisit.objects.create(
            student=student,
            visited_at=dt.datetime(2025, 6, 4, 10, 30, tzinfo=dt.UTC),
            reason_category="injury",
            note="膝をすりむいた（養護教諭のメモ）",
        )
        AssessmentResult.objects.create(
            student=student,
            school_year=2025,
            kind="unit",
            name="かけ算",
            subject="算数",
            taken_on=dt.date(2025, 6, 10),
            score=Decimal("87.5"),
            max_score=Decimal("100"),
        )
        SubjectEvaluation.objects.create(
            student=student,
            school_year=2025,
            term="1学期",
            subject="国語",
            rating=None,
            viewpoints={"知識・技能": "A", "思考・判断・表現": "B"},
        )
        LearningActivity.objects.create(
            student=student,
            verb="http://adlnet.gov/expapi/verbs/completed",
            object_id="https://eportal.example.jp/contents/0203",
            object_name="算数：かけ算",
            occurred_at=dt.datetime(2025, 6, 5, 7, 0, tzinfo=dt.UTC),
            duration_seconds=900,
            source_system="学習eポータル",
            subject="算数",
            items_attempted=10,
            items_correct=8,
            statement_id=str(uuid.UUID(int=7)),
        )
    return student


@pytest.fixture
def receiving_school(shinjuku):
    with in_tenant(shinjuku):
        return School.objects.create(
            code=RECEIVING_SCHOOL, name="新宿区立第一小学校", school_type="B1"
        )


def export(shibuya, pupil, tmp_path, destination="131041", **kwargs):
    with in_tenant(shibuya):
        exported = do_export_transfer(
            admin(shibuya.code),
            shibuya,
            Student.objects.select_related("school").get(pk=pupil.pk),
            destination_code=destination,
            consent=kwargs.pop("consent", CONSENT),
            **kwargs,
        )
        from renkei.platform.storage import get_storage

        with get_storage().open(shibuya.code, exported.transfer.package_path) as stored:
            data = stored.read()
    path = tmp_path / exported.filename
    path.write_bytes(data)
    return exported, path


def import_into(municipality, path, code, school=RECEIVING_SCHOOL):
    return do_import(
        TransferConnector,
        municipality,
        actor=RECEIVER,
        paths=[path],
        config={"transfer_code": code, "school_code": school},
    )


def records_of(municipality, student_filter):
    """Every transferred record of one pupil, as plain values (pupil and row ids left out)."""
    with in_tenant(municipality):
        student = Student.objects.get(**student_filter)
        return {
            "attendance": list(
                AttendanceDay.objects.filter(student=student)
                .order_by("date")
                .values_list("date", "status", "reason")
            ),
            "health": list(
                HealthObservation.objects.filter(student=student).values_list(
                    "date", "condition", "symptoms"
                )
            ),
            "nurse_visits": list(
                NurseVisit.objects.filter(student=student).values_list(
                    "visited_at", "reason_category"
                )
            ),
            "assessments": list(
                AssessmentResult.objects.filter(student=student).values_list(
                    "school_year", "kind", "name", "subject", "taken_on", "score", "max_score"
                )
            ),
            "evaluations": list(
                SubjectEvaluation.objects.filter(student=student).values_list(
                    "school_year", "term", "subject", "rating", "viewpoints"
                )
            ),
            "learning": list(
                LearningActivity.objects.filter(student=student).values_list(
                    "verb",
                    "object_id",
                    "object_name",
                    "occurred_at",
                    "duration_seconds",
                    "source_system",
                    "subject",
                    "items_attempted",
                    "items_correct",
                    "statement_id",
                )
            ),
            "pupil": (student.grade, student.birth_year_month, student.sex),
        }


def pupils_in(municipality) -> int:
    with in_tenant(municipality):
        return Student.objects.count()


# -- the whole way ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pupil_moves_from_shibuya_to_shinjuku_through_a_file(
    shibuya, shinjuku, pupil, receiving_school, tmp_path
):
    # given: 渋谷区 makes the package with the guardian's consent
    exported, path = export(shibuya, pupil, tmp_path)
    assert len(normalize_code(exported.code)) == 20
    # when: 新宿区 imports the file with the code from the paperwork
    run = import_into(shinjuku, path, exported.code.lower().replace("-", " "))
    # then
    assert run.status == "succeeded", run.message
    # users.csv 1 row, 3 attendance, 1 health, 1 nurse visit, 1 test, 1 evaluation, 1 statement
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (9, 9, 0)
    assert run.config["transfer_code"] == "********"
    transfer_id = str(exported.transfer.transfer_id)
    sent = records_of(shibuya, {"pk": pupil.pk})
    received = records_of(shinjuku, {"identities__source_system": "transfer"})
    assert received == sent
    with in_tenant(shinjuku):
        identity = StudentIdentity.objects.get(source_system="transfer")
        assert identity.source_id == transfer_id
        assert (identity.family_name, identity.given_name) == ("山田", "花")
        assert (identity.family_name_kana, identity.given_name_kana) == ("ヤマダ", "ハナ")
        assert identity.principal_name == ""  # 渋谷区's account means nothing in 新宿区
        assert identity.student.school.code == RECEIVING_SCHOOL
        assert NurseVisit.objects.get().note == ""  # the nurse's free text stays behind
        assert not School.objects.filter(code=SENDING_SCHOOL).exists()
        assert not Enrollment.objects.exists()  # the old homeroom is 渋谷区's
    # the sending side keeps the pupil, records the consent, the read and the event
    with in_tenant(shibuya):
        assert Student.objects.filter(pk=pupil.pk).exists()
        transfer = TransferOut.objects.get()
        assert (transfer.consent_given_by, transfer.consent_given_on) == (
            CONSENT.given_by,
            CONSENT.given_on,
        )
        assert transfer.destination_code == "131041"
        assert AccessLog.objects.filter(what="transfer_export", sensitive=True).count() == 1
    event = AuditEvent.objects.get(action="transfer.export")
    assert event.municipality_code == "131130" and event.changes["destination"] == "131041"
    assert "山田" not in json.dumps(event.changes, ensure_ascii=False) + event.target


@pytest.mark.django_db
def test_the_package_names_its_parts_and_the_consent(shibuya, pupil, tmp_path):
    exported, path = export(shibuya, pupil, tmp_path, destination_school_code="B113210400015")
    package = open_package(path.read_bytes(), exported.code, destination_code="131041")
    manifest = package.manifest
    assert manifest["sending_municipality"] == {"code": "131130", "name": "渋谷区"}
    assert manifest["destination_municipality"] == {"code": "131041"}
    assert manifest["destination_school"] == {"code": "B113210400015"}
    assert manifest["school_year"] == 2025
    assert manifest["consent"] == {
        "given_by": "渋谷 花子（母）",
        "given_on": "2025-09-01",
        "recorded_by": "admin-131130",
    }
    assert {
        "oneroster/manifest.csv",
        "oneroster/users.csv",
        "oneroster/enrollments.csv",
        "oneroster/orgs.csv",
        "oneroster/classes.csv",
        "oneroster/academicSessions.csv",
        "records/attendance.json",
        "xapi/statements.jsonl",
    } <= set(package.files)
    assert "膝" not in json.dumps(
        json.loads(package.files["records/nurse_visits.json"]), ensure_ascii=False
    )
    # The clear header carries no personal data, and the payload is not readable without the code
    raw = path.read_bytes()
    assert "山田".encode() not in raw and b"C0001" not in raw


@pytest.mark.django_db
def test_the_school_named_in_the_package_is_used_when_none_is_chosen(
    shibuya, shinjuku, pupil, receiving_school, tmp_path
):
    exported, path = export(shibuya, pupil, tmp_path, destination_school_code=RECEIVING_SCHOOL)
    run = import_into(shinjuku, path, exported.code, school="")
    assert run.status == "succeeded", run.message
    with in_tenant(shinjuku):
        assert Student.objects.get().school.code == RECEIVING_SCHOOL


# -- refused packages: a clear message, nothing written -------------------------------------------


def reseal(path, code, change):
    package = open_package(path.read_bytes(), code, destination_code="131041")
    manifest = dict(package.manifest)
    change(manifest)
    path.write_bytes(seal(manifest, package.files, code))


def flip_a_byte_of_the_payload(path):
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(PAYLOAD)
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def rezip(path, header=None, payload=None):
    """The package with a member changed and the zip's own checksums made right again, as
    someone who meant to change it would."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if header:
        members[HEADER] = header(json.loads(members[HEADER]))
    if payload:
        members[PAYLOAD] = payload(members[PAYLOAD])
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)


def flip_a_byte_and_fix_the_checksum(path):
    rezip(path, payload=lambda data: data[:50] + bytes([data[50] ^ 1]) + data[51:])


def readdress(path):
    def to_shinjuku(header):
        header["destination_municipality"] = {"code": "131041"}
        return json.dumps(header, ensure_ascii=False).encode()

    rezip(path, header=to_shinjuku)


def _no_consent(manifest):
    del manifest["consent"]


def _version_2(manifest):
    manifest["format_version"] = 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("spoil", "code", "message"),
    [
        (lambda path, code: flip_a_byte_of_the_payload(path), None, "壊れているか、書き換えられて"),
        (lambda path, code: flip_a_byte_and_fix_the_checksum(path), None, "書き換えられて"),
        (lambda path, code: None, "0000-0000-0000-0000-0000", "転校コードが違います"),
        (lambda path, code: reseal(path, code, _no_consent), None, "保護者の同意の記録"),
        (
            lambda path, code: reseal(path, code, _version_2),
            None,
            "バージョン 2 には対応していません",
        ),
    ],
    ids=["tampered", "tampered-rezipped", "wrong-code", "no-consent", "unknown-version"],
)
def test_a_bad_package_is_refused_and_nothing_is_written(
    shibuya, shinjuku, pupil, receiving_school, tmp_path, spoil, code, message
):
    exported, path = export(shibuya, pupil, tmp_path)
    spoil(path, exported.code)
    run = import_into(shinjuku, path, code or exported.code)
    assert run.status == "failed"
    assert message in run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (0, 0, 0)
    assert pupils_in(shinjuku) == 0


@pytest.mark.django_db
def test_a_package_for_another_municipality_is_refused(shibuya, osaka, pupil, tmp_path):
    exported, path = export(shibuya, pupil, tmp_path, destination="131041")
    with in_tenant(osaka):
        School.objects.create(code=OSAKA_SCHOOL, name="大阪市立小学校", school_type="B1")
    run = import_into(osaka, path, exported.code, school=OSAKA_SCHOOL)
    assert run.status == "failed"
    assert "自治体コード 131041 宛て" in run.message and "271004" in run.message
    assert pupils_in(osaka) == 0


@pytest.mark.django_db
def test_a_pupil_already_transferred_in_is_refused(
    shibuya, shinjuku, pupil, receiving_school, tmp_path
):
    exported, path = export(shibuya, pupil, tmp_path)
    assert import_into(shinjuku, path, exported.code).status == "succeeded"
    again = import_into(shinjuku, path, exported.code)
    assert again.status == "failed"
    assert "既に転入しています" in again.message
    assert pupils_in(shinjuku) == 1


@pytest.mark.django_db
def test_a_school_that_is_not_here_is_refused(shibuya, shinjuku, pupil, receiving_school, tmp_path):
    exported, path = export(shibuya, pupil, tmp_path)
    unnamed = import_into(shinjuku, path, exported.code, school="")
    assert unnamed.status == "failed" and "転入先の学校が決まっていません" in unnamed.message
    elsewhere = import_into(shinjuku, path, exported.code, school=SENDING_SCHOOL)
    assert elsewhere.status == "failed" and "登録されていません" in elsewhere.message
    assert pupils_in(shinjuku) == 0


# -- refused exports ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("consent", "destination", "message"),
    [
        (None, "131041", "保護者の同意が記録されていません"),
        (Consent(given_by="  ", given_on=dt.date(2025, 9, 1)), "131041", "保護者の同意"),
        (Consent(given_by="母", given_on=dt.date(2999, 1, 1)), "131041", "未来の日付"),
        (CONSENT, "131130", "転出先がこの自治体です"),
        (CONSENT, "131042", "転出先の自治体コード"),
    ],
    ids=["no-consent", "blank-consent", "future-consent", "same-municipality", "bad-code"],
)
def test_an_export_without_what_it_needs_is_refused(
    shibuya, pupil, tmp_path, consent, destination, message
):
    with pytest.raises(TransferError, match=message):
        export(shibuya, pupil, tmp_path, destination=destination, consent=consent)
    with in_tenant(shibuya):
        assert not TransferOut.objects.exists()
    assert not AuditEvent.objects.filter(action="transfer.export").exists()


@pytest.mark.django_db
def test_only_admins_and_the_schools_managers_after_step_up_may_export(shibuya, pupil):
    def principal(role, schools=(), step_up=True):
        grant = policy.Grant(role, shibuya.code, None, frozenset(schools))
        return policy.Principal(user_id=2, username="u", grants=(grant,), step_up=step_up)

    allowed = [
        principal(Role.TENANT_ADMIN),
        principal(Role.SCHOOL_MANAGER, [SENDING_SCHOOL]),
    ]
    refused = [
        principal(Role.TENANT_ADMIN, step_up=False),
        principal(Role.SCHOOL_MANAGER, [SENDING_SCHOOL], step_up=False),
        principal(Role.SCHOOL_MANAGER, ["B113211300023"]),
        principal(Role.TEACHER, [SENDING_SCHOOL]),
        principal(Role.BOARD_ANALYST),
    ]
    assert all(policy.may_transfer_pupil(p, shibuya, SENDING_SCHOOL) for p in allowed)
    assert not any(policy.may_transfer_pupil(p, shibuya, SENDING_SCHOOL) for p in refused)
    with in_tenant(shibuya), pytest.raises(policy.AccessDenied):
        do_export_transfer(
            refused[3],
            shibuya,
            Student.objects.select_related("school").get(pk=pupil.pk),
            destination_code="131041",
            consent=CONSENT,
        )


@pytest.mark.django_db
def test_a_package_readdressed_to_us_is_refused(
    shibuya, shinjuku, pupil, receiving_school, tmp_path
):
    # 大阪市's package, its clear header changed to name 新宿区: the header is authenticated
    exported, path = export(shibuya, pupil, tmp_path, destination="271004")
    readdress(path)
    run = import_into(shinjuku, path, exported.code)
    assert run.status == "failed"
    assert "書き換えられて" in run.message
    assert pupils_in(shinjuku) == 0


@pytest.mark.django_db
def test_a_package_without_its_code_points_to_the_transfer_page(
    shibuya, shinjuku, pupil, receiving_school, tmp_path
):
    _exported, path = export(shibuya, pupil, tmp_path)
    run = import_into(shinjuku, path, "")
    assert run.status == "failed" and "管理 › 転校" in run.message


@pytest.mark.parametrize(
    ("grade", "sent_from", "to", "expected"),
    [
        (3, "B1", "B1", 3),
        (1, "C1", "C2", 7),  # 中学校 1年 → 義務教育学校 7年
        (8, "C2", "C1", 2),
        (4, "D2", "D1", 1),  # 中等教育学校 4年 → 高等学校 1年
        (5, "C2", "B1", 5),
    ],
)
def test_the_grade_is_counted_as_the_receiving_school_counts(grade, sent_from, to, expected):
    assert grade_at(grade, sent_from, to) == expected


def test_the_package_file_goes_when_the_pupil_is_purged(
    shibuya, pupil, tmp_path, django_capture_on_commit_callbacks
):
    from renkei.edudata.privacy import do_purge_expired
    from renkei.platform.storage import get_storage

    exported, _path = export(shibuya, pupil, tmp_path)
    key = exported.transfer.package_path
    assert get_storage().exists(shibuya.code, key)
    with in_tenant(shibuya):
        Student.objects.filter(pk=pupil.pk).update(
            left_on=dt.date(2015, 7, 1), leaving_reason="transferred"
        )
        with django_capture_on_commit_callbacks(execute=True):
            report = do_purge_expired(shibuya, dt.date(2026, 12, 6), actor=admin("131130").actor())
    assert report.students == 1
    assert not get_storage().exists(shibuya.code, key)
