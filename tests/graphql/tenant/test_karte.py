"""個人カルテ on the student board: the pupil's earlier school years (homeroom, 出欠の記録) and
each year's tests and evaluations, through the query the widget sends; scoped to the pupil's
current school and access-logged like the rest of the board."""

import datetime as dt
import re

import pytest
from tenant_api_support import AS_OF, access_log_rows

from renkei.edudata.models import (
    AssessmentResult,
    AttendanceDay,
    Enrollment,
    Homeroom,
    SubjectEvaluation,
)
from renkei.graphql.widgets.bundle import ROOT
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

BOARDS_JS = (ROOT / "src" / "boards.js").read_text(encoding="utf-8")
KARTE_QUERY = re.search(r"export const STUDENT_KARTE_QUERY = `([^`]*)`;", BOARDS_JS).group(1)


def karte_variables(student_id, as_of=AS_OF, year=2025) -> dict:
    return {
        "studentId": student_id,
        "asOf": str(as_of),
        "year": year,
        "lastYear": year - 1,
        "yearBefore": year - 2,
    }


@pytest.fixture
def past(world, shibuya):
    """a1 (now 3年 at school A) was in 2年1組 of A in 2024 and in 1年1組 of school B in 2023
    (moved from B to A); 2024 has a week of register days, a test and an evaluation."""
    with in_tenant(shibuya):
        a, b, a1 = world["A"], world["B"], world["a1"]
        h2024 = Homeroom.objects.create(school=a, school_year=2024, grade=2, name="2年1組")
        h2023 = Homeroom.objects.create(school=b, school_year=2023, grade=1, name="1年1組")
        Enrollment.objects.create(student=a1, homeroom=h2024, attendance_number=7)
        Enrollment.objects.create(student=a1, homeroom=h2023, attendance_number=4)
        marks = [
            "present",
            "present",
            "absent_illness",
            "absent_other",
            "mourning",
            "suspension",
            "late",
        ]
        AttendanceDay.objects.bulk_create(
            AttendanceDay(student=a1, date=dt.date(2024, 10, 1 + n), status=status)
            for n, status in enumerate(marks)
        )
        # a day of March 2025 still belongs to 2024年度
        AttendanceDay.objects.create(student=a1, date=dt.date(2025, 3, 24), status="absent_illness")
        AssessmentResult.objects.create(
            student=a1,
            school_year=2024,
            kind="unit",
            name="単元テスト（11月）",
            subject="算数",
            taken_on=dt.date(2024, 11, 12),
            score=45,
            max_score=50,
        )
        SubjectEvaluation.objects.create(
            student=a1,
            school_year=2024,
            term="3学期",
            subject="国語",
            viewpoints={"知識・技能": "B"},
        )
    return world


def test_the_karte_of_a_pupil_who_moved_schools(client, gql, people, past, shibuya):
    # given
    client.force_login(people["teacher_a"])
    # when: the widget's own query
    r = gql(client, KARTE_QUERY, karte_variables(past["a1"].pk))
    # then
    assert r.status == 200 and not r.errors, r.text
    board = r.data["studentBoard"]
    assert board["schoolYears"] == [
        {
            "schoolYear": 2025,
            "attendanceNumber": 1,
            "homeroom": {"name": "3年1組", "grade": 3, "school": {"name": "渋谷区立第一小学校"}},
            # 6/2 present, 6/3-6/5 absent (conftest)
            "attendance": {
                "schoolDays": 4,
                "excusedDays": 0,
                "requiredDays": 4,
                "absenceDays": 3,
                "attendedDays": 1,
            },
        },
        {
            "schoolYear": 2024,
            "attendanceNumber": 7,
            "homeroom": {"name": "2年1組", "grade": 2, "school": {"name": "渋谷区立第一小学校"}},
            # 8 days: 忌引 and 出席停止 are not required, 病欠 twice and 欠席（その他）once
            "attendance": {
                "schoolDays": 8,
                "excusedDays": 2,
                "requiredDays": 6,
                "absenceDays": 3,
                "attendedDays": 3,
            },
        },
        {
            "schoolYear": 2023,
            "attendanceNumber": 4,
            "homeroom": {"name": "1年1組", "grade": 1, "school": {"name": "渋谷区立第二小学校"}},
            "attendance": None,  # no register days that year
        },
    ]
    assert board["year"] == [
        {
            "name": "単元テスト1",
            "subject": "国語",
            "takenOn": "2025-06-02",
            "kind": "UNIT",
            "score": 80.0,
            "maxScore": 100.0,
        }
    ]
    assert [(t["subject"], t["score"], t["maxScore"]) for t in board["lastYear"]] == [
        ("算数", 45.0, 50.0)
    ]
    assert board["yearBefore"] == [] and board["yearBeforeEvaluations"] == []
    assert board["lastYearEvaluations"] == [
        {
            "term": "3学期",
            "subject": "国語",
            "rating": None,
            "viewpoints": [{"name": "知識・技能", "grade": "B"}],
        }
    ]
    assert [e["term"] for e in board["yearEvaluations"]] == ["1学期"]
    # one read of one pupil's board, logged as every board read is
    assert access_log_rows(shibuya) == [
        {
            "student_pseudonym": past["a1"].pseudonym,
            "username": "teacher-a",
            "what": "student_board",
            "via": "graphql",
            "sensitive": False,
        }
    ]


def test_a_year_without_any_record_is_left_out(client, gql, people, past):
    client.force_login(people["teacher_a"])
    query = "query($id: ID!) { studentBoard(studentId: $id, asOf: %s) { schoolYears(count: %d) { schoolYear } } }"
    r = gql(client, query % ('"2025-06-05"', 6), {"id": past["a1"].pk})
    assert [y["schoolYear"] for y in r.data["studentBoard"]["schoolYears"]] == [2025, 2024, 2023]
    r = gql(client, query % ('"2025-06-05"', 1), {"id": past["a1"].pk})
    assert [y["schoolYear"] for y in r.data["studentBoard"]["schoolYears"]] == [2025]
    # seen from 2024年度, 2025 is the future: not listed
    r = gql(client, query % ('"2025-03-24"', 3), {"id": past["a1"].pk})
    assert [y["schoolYear"] for y in r.data["studentBoard"]["schoolYears"]] == [2024, 2023]


@pytest.mark.parametrize("count", [0, -1, 13])
def test_a_count_out_of_range_is_a_clear_error(client, gql, people, past, shibuya, count):
    client.force_login(people["teacher_a"])
    r = gql(
        client,
        "query($id: ID!, $n: Int) { studentBoard(studentId: $id) { schoolYears(count: $n) { schoolYear } } }",
        {"id": past["a1"].pk, "n": count},
    )
    assert r.codes == ["BAD_USER_INPUT"], r.text
    assert "年数は 1〜12 で指定してください" in r.errors[0]["message"]
    assert str(count) in r.errors[0]["message"]


def test_the_former_school_does_not_see_the_pupil_who_left_it(client, gql, people, past, shibuya):
    # given: a1 was at school B in 2023; manager-b is staff of B
    client.force_login(people["manager_b"])
    # when
    r = gql(client, KARTE_QUERY, karte_variables(past["a1"].pk))
    # then: refused as any other school's pupil; nothing of a1 in the answer, nothing logged
    assert r.data == {"studentBoard": None}
    assert r.codes == ["FORBIDDEN"], r.text
    assert "1年1組" not in r.text and "単元テスト" not in r.text
    assert access_log_rows(shibuya) == []


def test_the_karte_is_for_school_staff_only(client, gql, people, past, shibuya):
    for who in ("board", "admin", "shinjuku_teacher"):
        client.force_login(people[who])
        r = gql(client, KARTE_QUERY, karte_variables(past["a1"].pk))
        assert r.data in (None, {"studentBoard": None}), (who, r.text)
        assert r.errors and "2年1組" not in r.text, who
    assert access_log_rows(shibuya) == []


def test_an_opted_out_pupil_keeps_the_register(client, gql, people, world, shibuya):
    # the register is the school's record (rule 3): the karte still counts its days
    client.force_login(people["teacher_a"])
    r = gql(client, KARTE_QUERY, karte_variables(world["a2"].pk))
    assert not r.errors, r.text
    [year] = r.data["studentBoard"]["schoolYears"]
    assert year["attendance"]["absenceDays"] == 3
