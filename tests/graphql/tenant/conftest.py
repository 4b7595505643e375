"""Fixtures of the tenant API tests: a small 渋谷区 with two schools, homerooms, a week of
records around June 2025, one user per role, and a GraphQL client helper."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from tenant_api_support import YEAR, post

from renkei.edudata.models import (
    AssessmentResult,
    AttendanceDay,
    Enrollment,
    HealthObservation,
    Homeroom,
    M365DailyUsage,
    NurseVisit,
    Student,
    StudentIdentity,
    SubjectEvaluation,
    SurveyResponse,
)
from renkei.edudata.privacy import pseudonym_for
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Prefecture


@pytest.fixture
def gql():
    return post


def _day(n: int) -> dt.date:
    return dt.date(2025, 6, n)


def _attendance(student, marks: dict[int, str], reason: str = "") -> None:
    AttendanceDay.objects.bulk_create(
        [
            AttendanceDay(
                student=student,
                date=_day(d),
                status=s,
                reason=reason if s.startswith("absent") else "",
            )
            for d, s in marks.items()
        ]
    )


@pytest.fixture
def world(school_world, shibuya):
    """school_world plus homerooms, names and records.

    a1 (A): absent 6/3–6/5 (reason 発熱) → 3 consecutive days on 6/5; health, nurse visit,
        survey, test, evaluation, Microsoft 365.
    a2 (A): the same absences, but opted out of analysis → no alerts.
    a3 (A): absent 6/3, 忌引 6/4, absent 6/5 → no consecutive-absence alert.
    b1 (B): absent 6/3–6/5 (another school).
    """
    w = dict(school_world)
    with in_tenant(shibuya):
        a, b = w["A"], w["B"]
        w["a3"] = Student.objects.create(
            pseudonym=pseudonym_for(shibuya, "test", "a3"), school=a, grade=3
        )
        Student.objects.filter(pk=w["a2"].pk).update(opted_out_at=timezone.now())
        w["a2"].refresh_from_db()
        w["hA"] = Homeroom.objects.create(school=a, school_year=YEAR, grade=3, name="3年1組")
        w["hB"] = Homeroom.objects.create(school=b, school_year=YEAR, grade=3, name="3年1組")
        names = {
            "a1": ("髙橋", "一郎"),
            "a2": ("山﨑", "花子"),
            "a3": ("佐藤", "三郎"),
            "b1": ("鈴木", "次郎"),
            "b2": ("田中", "四郎"),
        }
        for n, key in enumerate(("a1", "a2", "a3"), 1):
            Enrollment.objects.create(student=w[key], homeroom=w["hA"], attendance_number=n)
        for n, key in enumerate(("b1", "b2"), 1):
            Enrollment.objects.create(student=w[key], homeroom=w["hB"], attendance_number=n)
        for key, (family, given) in names.items():
            StudentIdentity.objects.create(
                student=w[key],
                source_system="test",
                source_id=key,
                family_name=family,
                given_name=given,
                family_name_kana="かな",
                given_name_kana="なまえ",
            )
        absent = {2: "present", 3: "absent_illness", 4: "absent_illness", 5: "absent_illness"}
        _attendance(w["a1"], absent, reason="発熱")
        _attendance(w["a2"], absent, reason="発熱")
        _attendance(
            w["a3"],
            {2: "present", 3: "absent_other", 4: "mourning", 5: "absent_other"},
            reason="家庭の事情",
        )
        _attendance(w["b1"], absent, reason="発熱")
        _attendance(w["b2"], {2: "present", 3: "present", 4: "present", 5: "present"})
        HealthObservation.objects.create(
            student=w["a1"], date=_day(3), condition="poor", symptoms="頭痛"
        )
        NurseVisit.objects.create(
            student=w["a1"],
            visited_at=dt.datetime(2025, 6, 2, 10, 0, tzinfo=dt.UTC),
            reason_category="illness",
            note="腹痛で来室",
        )
        SurveyResponse.objects.create(
            student=w["a1"], survey="心の天気", answered_on=_day(2), answers={"weather": "くもり"}
        )
        AssessmentResult.objects.create(
            student=w["a1"],
            school_year=YEAR,
            kind="unit",
            name="単元テスト1",
            subject="国語",
            taken_on=_day(2),
            score=80,
            max_score=100,
        )
        SubjectEvaluation.objects.create(
            student=w["a1"],
            school_year=YEAR,
            term="1学期",
            subject="国語",
            rating=4,
            viewpoints={"知識・技能": "A"},
        )
        M365DailyUsage.objects.create(student=w["a1"], date=_day(2), app="Teams")
    return w


@pytest.fixture
def people(make_user, world, shibuya, shinjuku, osaka):
    a, b = world["A"].code, world["B"].code
    return {
        "teacher_a": make_user("teacher-a", "teacher", municipality=shibuya, schools=[a]),
        "manager_b": make_user("manager-b", "school_manager", municipality=shibuya, schools=[b]),
        "board": make_user("board", "board_analyst", municipality=shibuya),
        "admin": make_user("admin-s", "tenant_admin", municipality=shibuya),
        "pref_tokyo": make_user(
            "pref-13", "prefecture_analyst", prefecture=Prefecture.for_code("13")
        ),
        "shinjuku_teacher": make_user(
            "teacher-shinjuku", "teacher", municipality=shinjuku, schools=[a]
        ),
        "osaka_admin": make_user("admin-osaka", "tenant_admin", municipality=osaka),
        "nobody": make_user("nobody"),
    }
