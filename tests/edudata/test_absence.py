"""長期欠席の理由 (不登校 and the MEXT survey's other reasons): staff of the pupil's school
classify, after step-up, only pupils absent 30 days or more; each decision is kept; the trail
never names the reason; the board gets its survey table and nobody else does."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client

from renkei.accounts import policy
from renkei.edudata import absence
from renkei.edudata.models import (
    AbsenceClassification,
    AccessLog,
    AttendanceDay,
    Enrollment,
    Homeroom,
    LongAbsenceReasonYear,
    Student,
    StudentIdentity,
)
from renkei.edudata.privacy import do_record_opt_out, do_withdraw_opt_out
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

YEAR = 2025
PAGE = "/m/131130/boards/long-term-absence/"
CSV = "/m/131130/analysis/long-term-absence/survey.csv"
LONG_TERM = "/m/131130/analysis/long-term-absence/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def absent(student, days: int, status: str = "absent_other", year: int = YEAR) -> None:
    first = dt.date(year, 4, 7)
    AttendanceDay.objects.bulk_create(
        AttendanceDay(student=student, date=first + dt.timedelta(days=n), status=status)
        for n in range(days)
    )


@pytest.fixture
def world(school_world, make_user):
    """a1 absent 31 days (other), a2 12 days, b1 40 days (illness): in 2025."""
    with in_tenant(school_world["municipality"]):
        absent(school_world["a1"], 31)
        absent(school_world["a2"], 12)
        absent(school_world["b1"], 40, "absent_illness")
        StudentIdentity.objects.create(
            student=school_world["a1"], source_system="test", source_id="a1",
            family_name="山田", given_name="花子",
        )  # fmt: skip
    municipality = school_world["municipality"]
    school_world["teacher_a"] = make_user(
        "t-a", "teacher", municipality=municipality, schools=[school_world["A"].code]
    )
    school_world["teacher_b"] = make_user(
        "t-b", "teacher", municipality=municipality, schools=[school_world["B"].code]
    )
    school_world["board"] = make_user("board", "board_analyst", municipality=municipality)
    school_world["prefecture"] = make_user(
        "pref", "prefecture_analyst", prefecture=municipality.prefecture
    )
    return school_world


def stepped_up(user):
    return policy.principal_for(user, step_up=True)


def classify(world, user, pupil: str, reason: str = "futoko", **kwargs):
    with in_tenant(world["municipality"]):
        return absence.do_classify_long_absence(
            stepped_up(user), world["municipality"], world[pupil].pk, YEAR, reason, **kwargs
        )


def test_staff_of_the_school_classify_and_every_decision_is_kept(world):
    first = classify(world, world["teacher_a"], "a1", "other")
    latest = classify(world, world["teacher_a"], "a1", "futoko", note="家庭訪問を継続")
    assert first.absence_days == latest.absence_days == 31
    with in_tenant(world["municipality"]):
        (a1,) = absence.long_absences(Student.objects.filter(pk=world["a1"].pk), YEAR)
        assert a1.current.pk == latest.pk and a1.current.reason == "futoko"
        assert [h.reason for h in a1.history] == ["futoko", "other"]
        assert AbsenceClassification.objects.count() == 2  # a change is a new row
        # each decision read the pupil: logged as a sensitive read
        logs = AccessLog.objects.filter(what="absence_classification")
        assert logs.count() == 2 and all(log.sensitive for log in logs)
    events = AuditEvent.objects.filter(action="absence.classify").order_by("pk")
    assert [e.username for e in events] == ["t-a", "t-a"]
    for event in events:  # the trail, read by tenant admins, never says the reason
        text = f"{event.target} {event.changes}"
        assert "futoko" not in text and "不登校" not in text and "other" not in text
        assert event.changes == {"school_year": YEAR}


@pytest.mark.parametrize(
    ("who", "pupil", "step_up", "refusal"),
    [
        ("teacher_b", "a1", True, policy.AccessDenied),  # another school's pupil
        ("board", "a1", True, policy.AccessDenied),  # the board sees no pupil
        ("teacher_a", "a1", False, policy.StepUpRequired),  # sensitive: second factor first
    ],
)
def test_only_the_pupils_school_after_step_up(world, who, pupil, step_up, refusal):
    principal = policy.principal_for(world[who], step_up=step_up)
    with in_tenant(world["municipality"]), pytest.raises(refusal):
        absence.do_classify_long_absence(
            principal, world["municipality"], world[pupil].pk, YEAR, "futoko"
        )
    with in_tenant(world["municipality"]):
        assert not AbsenceClassification.objects.exists()
    assert not AuditEvent.objects.filter(action="absence.classify").exists()


def test_a_pupil_under_30_days_or_an_unknown_reason_is_refused_with_why(world):
    with pytest.raises(absence.ClassificationError, match="欠席は 12 日で、30 日未満"):
        classify(world, world["teacher_a"], "a2")
    with pytest.raises(absence.ClassificationError, match="「truancy」はありません"):
        classify(world, world["teacher_a"], "a1", "truancy")
    # a year outside the calendar (a forged form): refused, not a crash
    with in_tenant(world["municipality"]), pytest.raises(absence.ClassificationError):
        absence.do_classify_long_absence(
            stepped_up(world["teacher_a"]), world["municipality"], world["a1"].pk, 99999, "futoko"
        )
    # another year: the 31 days were in 2025, not in 2024
    with in_tenant(world["municipality"]), pytest.raises(absence.ClassificationError):
        absence.do_classify_long_absence(
            stepped_up(world["teacher_a"]), world["municipality"], world["a1"].pk, 2024, "futoko"
        )
    with in_tenant(world["municipality"]):
        assert not AbsenceClassification.objects.exists()
        assert not LongAbsenceReasonYear.objects.exists()
    assert not AuditEvent.objects.filter(action="absence.classify").exists()


def test_the_futoko_rollup_holds_the_latest_decision_of_analyzable_pupils(world, make_user):
    municipality = world["municipality"]
    a1, b1 = world["a1"].pk, world["b1"].pk

    def rollup():
        with in_tenant(municipality):
            return dict(
                LongAbsenceReasonYear.objects.filter(school_year=YEAR).values_list(
                    "student_id", "reason"
                )
            )

    def data_version():
        municipality.refresh_from_db()
        return municipality.data_version

    # each decision refreshes the rollup and makes a new data version (new releases)
    versions = [data_version()]
    classify(world, world["teacher_a"], "a1", "futoko")
    assert rollup() == {a1: "futoko"}
    versions.append(data_version())
    classify(world, world["teacher_a"], "a1", "illness")  # the latest decision counts
    classify(world, world["teacher_b"], "b1", "futoko")
    assert rollup() == {a1: "illness", b1: "futoko"}
    versions.append(data_version())
    assert len(set(versions)) == 3
    # a pupil left out of analysis is out of the 不登校 count, and back when withdrawn
    admin = policy.principal_for(make_user("admin", "tenant_admin", municipality=municipality))
    with in_tenant(municipality):
        do_record_opt_out(admin, municipality, Student.objects.get(pk=b1))
    assert rollup() == {a1: "illness"}
    with in_tenant(municipality):
        do_withdraw_opt_out(admin, municipality, Student.objects.get(pk=b1))
    assert rollup() == {a1: "illness", b1: "futoko"}


def test_the_survey_table_counts_each_long_absence_once_by_current_reason(world):
    classify(world, world["teacher_a"], "a1", "illness")
    classify(world, world["teacher_a"], "a1", "futoko")  # the latest counts
    with in_tenant(world["municipality"]):
        # b1's grade in 2025 comes from the homeroom of that year, not the current grade
        homeroom = Homeroom.objects.create(
            school=world["B"], school_year=YEAR, grade=2, name="2年1組"
        )
        Enrollment.objects.create(student=world["b1"], homeroom=homeroom)
        # opted out of analysis: still in the school's statutory report
        Student.objects.filter(pk=world["a1"].pk).update(opted_out_at=dt.datetime.now(dt.UTC))
        table = absence.survey_table(YEAR)
    assert [(r.school_type, r.grade, r.counts) for r in table] == [
        ("B1", 2, {absence.UNCLASSIFIED: 1}),
        ("B1", 3, {"futoko": 1}),
    ]


# -- pages ----------------------------------------------------------------------------------------


def test_the_school_page_lists_its_long_absences_after_step_up(world, verified_client):
    plain = Client()
    plain.force_login(world["teacher_a"])
    before = plain.get(PAGE).content.decode()
    assert "二要素認証" in before and "山田" not in before  # nothing before the second factor
    client = verified_client(world["teacher_a"])
    page = client.get(f"{PAGE}?year={YEAR}").content.decode()
    assert "山田 花子" in page and ">31<" in page
    assert "二小学校" not in page  # school B's pupil b1 is not listed for teacher A
    with in_tenant(world["municipality"]):
        assert AccessLog.objects.filter(what="absence_classification", sensitive=True).count() == 1
    prefix = f"p{world['a1'].pk}"
    response = client.post(
        PAGE,
        {
            "prefix": prefix,
            f"{prefix}-student": world["a1"].pk,
            f"{prefix}-school_year": YEAR,
            f"{prefix}-reason": "futoko",
            f"{prefix}-note": "",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith(f"?year={YEAR}")
    page = client.get(response["Location"]).content.decode()
    assert "記録しました" in page and "不登校 — t-a" in page


def test_the_board_downloads_the_survey_table_and_teachers_cannot(world):
    classify(world, world["teacher_a"], "a1", "futoko")
    board = Client()
    board.force_login(world["board"])
    assert board.get(PAGE).status_code == 403  # the board classifies no pupil
    response = board.get(f"{CSV}?year={YEAR}")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["年度", "学校種", "学年", "病気"]
    assert rows[1:] == [
        [str(YEAR), "小学校", "3", "0", "0", "1", "0", "0", "1", "2"],
    ]
    assert 'data-testid="absence-survey-csv"' in board.get(LONG_TERM).content.decode()
    # the school's staff, and the prefecture (released tables only): neither link nor table
    for who in ("teacher_a", "prefecture"):
        other = Client()
        other.force_login(world[who])
        assert other.get(f"{CSV}?year={YEAR}").status_code == 403
    # even one the policy lets see the municipality's aggregates (released tables)
    with in_tenant(world["municipality"]):
        prefecture = policy.principal_for(world["prefecture"])
        assert policy.may_see_tenant_aggregates(prefecture, world["municipality"])
        assert not policy.is_own_board(prefecture, world["municipality"])
