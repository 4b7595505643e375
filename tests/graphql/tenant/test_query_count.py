"""The class board costs the same number of SQL queries for 10 pupils as for 40 (DataLoaders
per request, announced by the board)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from renkei.edudata.models import (
    AttendanceDay,
    Enrollment,
    Homeroom,
    School,
    Student,
    StudentIdentity,
)
from renkei.edudata.privacy import pseudonym_for
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

FULL_CLASS_BOARD = """query($id: ID!) { classBoard(homeroomId: $id, asOf: "2025-06-30") {
  homeroom { name school { name } } asOf rules { rule threshold description }
  pupils {
    attendanceNumber
    pupil { id name nameKana grade sex optedOut school { code } }
    absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message }
    alertsExcludedReason
    recentAttendance(days: 10) { date status }
  }
  learningWeeks { weekStart pupils activePupils totalMinutes medianMinutes } } }"""

STATUSES = [
    "present",
    "present",
    "absent_illness",
    "late",
    "present",
    "absent_other",
    "mourning",
    "present",
    "absent_illness",
    "absent_illness",
]


def statements(queries) -> int:
    """SQL statements run, without django-tenants' ``SET search_path`` before each one."""
    return sum(not q["sql"].startswith("SET search_path") for q in queries.captured_queries)


def make_homeroom(municipality, school, name: str, size: int) -> Homeroom:
    homeroom = Homeroom.objects.create(school=school, school_year=2025, grade=4, name=name)
    days = [dt.date(2025, 6, 2) + dt.timedelta(days=n) for n in range(29)]
    days = [d for d in days if d.weekday() < 5]
    rows = []
    for n in range(size):
        student = Student.objects.create(
            pseudonym=pseudonym_for(municipality, "qc", f"{name}-{n}"),
            school=school,
            grade=4,
            opted_out_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC) if n % 7 == 0 else None,
        )
        Enrollment.objects.create(student=student, homeroom=homeroom, attendance_number=n + 1)
        StudentIdentity.objects.create(
            student=student,
            source_system="qc",
            source_id=f"{name}{n}",
            family_name="山田",
            given_name=f"{n}号",
        )
        rows += [
            AttendanceDay(student=student, date=d, status=STATUSES[(n + i) % len(STATUSES)])
            for i, d in enumerate(days)
        ]
    AttendanceDay.objects.bulk_create(rows)
    return homeroom


def test_class_board_query_count_does_not_grow_with_pupils(client, gql, make_user, shibuya):
    with in_tenant(shibuya):
        school = School.objects.create(
            code="B113211300034", name="渋谷区立第三小学校", school_type="B1"
        )
        small = make_homeroom(shibuya, school, "4年1組", 10)
        large = make_homeroom(shibuya, school, "4年2組", 40)
    client.force_login(
        make_user("teacher-c", "teacher", municipality=shibuya, schools=[school.code])
    )
    counts = {}
    for homeroom in (small, large, small):
        with CaptureQueriesContext(connection) as queries:
            r = gql(client, FULL_CLASS_BOARD, {"id": homeroom.pk})
        assert not r.errors, r.text
        counts.setdefault(len(r.data["classBoard"]["pupils"]), []).append(statements(queries))
    assert set(counts) == {10, 40}
    assert counts[10][0] == counts[40][0] == counts[10][1], counts
    # municipality, session, user, memberships, homeroom, enrollments+pupils, access log (one
    # INSERT), names, absence summary, recent attendance, learning weeks
    assert counts[40][0] == 11, counts


def test_student_board_query_count_does_not_grow_with_records(client, gql, make_user, shibuya):
    with in_tenant(shibuya):
        school = School.objects.create(
            code="B113211300034", name="渋谷区立第三小学校", school_type="B1"
        )
        homeroom = make_homeroom(shibuya, school, "4年1組", 3)
        # the first pupil opted out (no usage or learning queries for them): compare the others
        _, few, many = [e.student for e in homeroom.enrollments.order_by("attendance_number")]
        AttendanceDay.objects.filter(student=few, date__gt=dt.date(2025, 6, 3)).delete()
    client.force_login(
        make_user("teacher-c", "teacher", municipality=shibuya, schools=[school.code])
    )
    query = """query($id: ID!) { studentBoard(studentId: $id, asOf: "2025-06-30") {
      pupil { name school { name } } homeroom { name } attendanceNumber
      attendance { date status } health { date } nurseVisits { visitedAt }
      assessments { name } evaluations { subject } m365Usage { app }
      learningWeeks { minutes subjects { subject } }
      absenceSummary { consecutive } alerts { message } } }"""
    counts = []
    for student in (few, many):
        with CaptureQueriesContext(connection) as queries:
            r = gql(client, query, {"id": student.pk})
        assert not r.errors, r.text
        counts.append(statements(queries))
    assert counts[0] == counts[1], counts
