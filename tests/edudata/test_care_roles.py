"""養護教諭, スクールカウンセラー and スクールソーシャルワーカー: each reads what the rule table
(policy.READS) gives their role and nothing else, through the functions, the pages and the
tenant API; SC and SSW only the pupils a manager of the pupil's school assigned to them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from renkei.accounts import policy
from renkei.accounts.models import SCHOOL_ROLES, SCHOOL_SCOPED_ROLES
from renkei.edudata import access, assignments, care, notes
from renkei.edudata.models import (
    AbsenceClassification,
    AssessmentResult,
    Enrollment,
    HealthObservation,
    Homeroom,
    NurseVisit,
    PupilAssignment,
    StudentIdentity,
    SurveyResponse,
)
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

SYMPTOM = "頭痛-SYMPTOM9"
NURSE_NOTE = "保健室の記録-NURSE9"
STAFF_NOTE = "共有配慮-NOTE9"
CONCERN = "支援の気がかり-CASE9"
COMMENT = "ひとこと-COMMENT9"
ABSENCE_NOTE = "欠席の補足-ABS9"
TEST_NAME = "漢字テスト-GRADE9"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(school_world, make_user):
    m, a, b = school_world["municipality"], school_world["A"].code, school_world["B"].code
    users = {
        "teacher_a": ("teacher", [a]),
        "manager_a": ("school_manager", [a]),
        "manager_b": ("school_manager", [b]),
        "nurse_a": ("school_nurse", [a]),
        "nurse_b": ("school_nurse", [b]),
        "sc_a": ("school_counselor", [a]),
        "ssw_ab": ("school_social_worker", [a, b]),
        "admin": ("tenant_admin", []),
    }
    for key, (role, schools) in users.items():
        school_world[key] = make_user(key.replace("_", "-"), role, municipality=m, schools=schools)
    with in_tenant(m):
        for tag in ("a1", "a2", "b1"):
            pupil = school_world[tag]
            school = pupil.school
            homeroom, _ = Homeroom.objects.get_or_create(
                school=school, school_year=2025, name="3年1組", grade=3
            )
            Enrollment.objects.create(student=pupil, homeroom=homeroom, attendance_number=1)
            StudentIdentity.objects.create(
                student=pupil,
                source_system="test",
                source_id=tag,
                family_name="名前",
                given_name=tag,
            )
            HealthObservation.objects.create(
                student=pupil, date=dt.date(2025, 6, 2), condition="poor", symptoms=SYMPTOM
            )
            NurseVisit.objects.create(
                student=pupil,
                visited_at=dt.datetime(2025, 6, 2, 2, 0, tzinfo=dt.UTC),
                reason_category="mental",
                note=NURSE_NOTE,
            )
            AssessmentResult.objects.create(
                student=pupil,
                school_year=2025,
                kind="unit",
                name=TEST_NAME,
                subject="国語",
                taken_on=dt.date(2025, 6, 3),
                score=80,
                max_score=100,
            )
            SurveyResponse.objects.create(
                student=pupil,
                survey="心の天気",
                answered_on=dt.date(2025, 6, 2),
                answers={"weather": "あめ", "comment": COMMENT},
            )
            AbsenceClassification.objects.create(
                student=pupil,
                school_year=2025,
                reason="futoko",
                note=ABSENCE_NOTE,
                absence_days=31,
                decided_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC),
                decided_by="manager-a",
            )
            staff = as_(school_world, "teacher_a" if tag != "b1" else "manager_b")
            notes.do_add_staff_note(staff, m, pupil.pk, "consideration", STAFF_NOTE)
            notes.do_open_support_case(staff, m, pupil.pk, CONCERN)
    return school_world


def as_(world, who: str, step_up: bool = True) -> policy.Principal:
    return policy.principal_for(world[who], step_up=step_up)


def assign(world, manager: str, pupil: str, username: str):
    m = world["municipality"]
    with in_tenant(m):
        return assignments.do_assign_pupil(as_(world, manager), m, world[pupil].pk, username)


# -- the rule table ----------------------------------------------------------------------------


def test_every_school_scoped_role_has_a_row_and_only_staff_read_school_records():
    assert set(policy.READS) == SCHOOL_SCOPED_ROLES
    readers = {r for r, reads in policy.READS.items() if policy.Records.SCHOOL in reads.records}
    assert readers == SCHOOL_ROLES
    assert policy.ASSIGNED_ROLES == {"school_counselor", "school_social_worker"}


# -- 養護教諭 -----------------------------------------------------------------------------------


def test_nurse_reads_own_schools_health_records_sensitive_after_step_up(world):
    m = world["municipality"]
    with in_tenant(m):
        full = care.health_records(as_(world, "nurse_a"), m, world["a1"].pk)
        assert [o["symptoms"] for o in full.observations] == [SYMPTOM]
        assert [(v["reason_category"], v["note"]) for v in full.visits] == [("mental", NURSE_NOTE)]
        plain = care.health_records(as_(world, "nurse_a", step_up=False), m, world["a1"].pk)
        assert [set(o) for o in plain.observations] == [
            {"id", "student", "date", "condition", "condition_label"}
        ]
        assert plain.visits == []  # 心の相談: not even that it happened
        pupils = care.homeroom_pupils(
            as_(world, "nurse_a"), m, world["a1"].enrollments.get().homeroom_id
        )
        assert [p.name for p in pupils] == ["名前 a1", "名前 a2"]


def test_nurse_reads_no_grades_notes_cases_checkins_or_absence_reasons(world):
    m, a1 = world["municipality"], world["a1"].pk
    nurse = as_(world, "nurse_a")
    with in_tenant(m):
        assert not access.visible_students(nurse, m).exists()
        for attempt in (
            lambda: access.read_pupil(nurse, m, a1, what="board", via="test"),
            lambda: notes.pupil_records(nurse, m, a1),
            lambda: care.care_records(nurse, m, a1),
            lambda: notes.do_add_staff_note(nurse, m, a1, "observation", "x"),
        ):
            with pytest.raises(policy.AccessDenied):
                attempt()
        assert access.free_comment_readers(nurse, m, [world["a1"]]) == set()


def test_nurse_of_school_a_does_not_read_school_b(world):
    m = world["municipality"]
    with in_tenant(m):
        with pytest.raises(policy.AccessDenied):
            care.health_records(as_(world, "nurse_a"), m, world["b1"].pk)
        homeroom_b = world["b1"].enrollments.get().homeroom_id
        assert care.homeroom_pupils(as_(world, "nurse_a"), m, homeroom_b) == []
        assert care.health_records(as_(world, "nurse_b"), m, world["b1"].pk).visits


# -- SC and SSW --------------------------------------------------------------------------------


def test_sc_reads_nothing_of_a_pupil_not_assigned(world):
    m = world["municipality"]
    sc = as_(world, "sc_a")
    with in_tenant(m):
        for pupil in ("a1", "a2", "b1"):
            with pytest.raises(policy.AccessDenied):
                care.care_records(sc, m, world[pupil].pk)
            with pytest.raises(policy.AccessDenied):
                notes.pupil_records(sc, m, world[pupil].pk)
        assert access.free_comment_readers(sc, m, [world["a1"], world["a2"]]) == set()
        assert care.assigned_pupils(sc, m) == []


def test_sc_reads_the_care_records_of_an_assigned_pupil_only(world):
    m = world["municipality"]
    assign(world, "manager_a", "a1", "sc-a")
    sc = as_(world, "sc_a")
    with in_tenant(m):
        records = care.care_records(sc, m, world["a1"].pk)
        assert [n.text for n in records.records.notes] == [STAFF_NOTE]
        assert [c.concern for c in records.records.cases] == [CONCERN]
        assert [c.answers["comment"] for c in records.checkins] == [COMMENT]
        assert [a.note for a in records.absences] == [ABSENCE_NOTE]
        assert [p.pk for p in care.assigned_pupils(sc, m)] == [world["a1"].pk]
        # still not the pupil's grades, board or health records, nor another pupil
        for attempt in (
            lambda: access.read_pupil(sc, m, world["a1"].pk, what="board", via="test"),
            lambda: care.health_records(sc, m, world["a1"].pk),
            lambda: care.care_records(sc, m, world["a2"].pk),
            lambda: notes.do_add_staff_note(sc, m, world["a1"].pk, "observation", "x"),
        ):
            with pytest.raises(policy.AccessDenied):
                attempt()
        with pytest.raises(policy.StepUpRequired):
            care.care_records(as_(world, "sc_a", step_up=False), m, world["a1"].pk)


def test_sc_of_school_a_reads_nothing_of_school_b_even_with_an_assignment_row(world):
    m = world["municipality"]
    with pytest.raises(assignments.AssignmentError, match="登録されていません"):
        assign(world, "manager_b", "b1", "sc-a")
    with in_tenant(m):
        # a row written around the action still opens nothing: the membership names A only
        PupilAssignment.objects.create(
            student=world["b1"],
            user_id=world["sc_a"].pk,
            username="sc-a",
            assigned_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            assigned_by="forged",
        )
        with pytest.raises(policy.AccessDenied):
            care.care_records(as_(world, "sc_a"), m, world["b1"].pk)
        assert access.free_comment_readers(as_(world, "sc_a"), m, [world["b1"]]) == set()


def test_ssw_reads_nothing_more_once_the_assignment_is_removed(world):
    m = world["municipality"]
    assignment = assign(world, "manager_b", "b1", "ssw-ab")
    ssw = as_(world, "ssw_ab")
    with in_tenant(m):
        assert care.care_records(ssw, m, world["b1"].pk).checkins
        with pytest.raises(policy.AccessDenied):  # manager of A may not undo B's
            assignments.do_unassign_pupil(as_(world, "manager_a"), m, world["b1"].pk, assignment.pk)
        assignments.do_unassign_pupil(as_(world, "manager_b"), m, world["b1"].pk, assignment.pk)
        with pytest.raises(policy.AccessDenied):
            care.care_records(ssw, m, world["b1"].pk)
        assert access.free_comment_readers(ssw, m, [world["b1"]]) == set()
        assert care.assigned_pupils(ssw, m) == []
    events = AuditEvent.objects.filter(
        action__startswith="assignment.", municipality_code="131130"
    ).order_by("id")
    assert [(e.action, e.target, e.changes) for e in events] == [
        ("assignment.add", f"pupil {world['b1'].pseudonym}", {"staff": "ssw-ab"}),
        ("assignment.remove", f"pupil {world['b1'].pseudonym}", {"staff": "ssw-ab"}),
    ]


@pytest.mark.parametrize("who", ["teacher_a", "manager_b", "admin", "sc_a", "nurse_a"])
def test_only_a_manager_of_the_pupils_school_assigns(world, who):
    m = world["municipality"]
    with in_tenant(m), pytest.raises(policy.AccessDenied, match="管理職だけ"):
        assignments.do_assign_pupil(as_(world, who), m, world["a1"].pk, "sc-a")
    with in_tenant(m):
        assert not PupilAssignment.objects.exists()
    assert not AuditEvent.objects.filter(
        action="assignment.add", municipality_code="131130"
    ).exists()


def test_bad_assignments_are_refused_with_why(world):
    assign(world, "manager_a", "a1", "sc-a")
    with pytest.raises(assignments.AssignmentError, match="既にこの児童生徒の担当"):
        assign(world, "manager_a", "a1", "sc-a")
    for who in ("teacher-a", "nurse-a", "nobody-here"):  # not an SC or SSW of the school
        with pytest.raises(assignments.AssignmentError, match="登録されていません"):
            assign(world, "manager_a", "a1", who)


# -- pages and the tenant API ------------------------------------------------------------------

BOARD = "/m/131130/boards"


def _graphql(client: Client, query: str, variables: dict) -> dict:
    response = client.post(
        "/m/131130/graphql",
        data=json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
    )
    return response.json()


def test_pages_and_api_for_the_nurse(world, verified_client):
    client = verified_client(world["nurse_a"])
    a1, b1 = world["a1"].pk, world["b1"].pk
    with in_tenant(world["municipality"]):
        homeroom = world["a1"].enrollments.get().homeroom_id
    home = client.get("/m/131130/").content.decode()
    assert f"{BOARD}/health/" in home and f"{BOARD}/classes/" not in home
    listing = client.get(f"{BOARD}/health/?homeroom={homeroom}").content.decode()
    assert "名前 a1" in listing and "名前 a2" in listing and "名前 b1" not in listing
    page = client.get(f"{BOARD}/health/students/{a1}/").content.decode()
    assert SYMPTOM in page and NURSE_NOTE in page
    assert TEST_NAME not in page and STAFF_NOTE not in page and COMMENT not in page
    for url in (
        f"{BOARD}/health/students/{b1}/",
        f"{BOARD}/students/{a1}/",
        f"{BOARD}/classes/",
        f"{BOARD}/classes/{homeroom}/",
        f"{BOARD}/assigned/",
        f"{BOARD}/assigned/{a1}/",
        f"{BOARD}/long-term-absence/",
    ):
        assert client.get(url).status_code == 403, url
    body = _graphql(
        client,
        "query($id: ID!) { studentBoard(studentId: $id) { assessments { name } } }",
        {"id": a1},
    )
    assert body["data"] == {"studentBoard": None} and TEST_NAME not in json.dumps(body)


def test_pages_for_the_sc_and_the_managers_assignment_form(world, verified_client):
    a1, a2 = world["a1"].pk, world["a2"].pk
    manager = verified_client(world["manager_a"])
    board = manager.get(f"{BOARD}/students/{a1}/").content.decode()
    assert 'data-testid="assignments"' in board and "sc-a" in board and "ssw-ab" in board
    response = manager.post(
        f"{BOARD}/students/{a1}/assignments/", {"username": "sc-a"}, follow=True
    )
    assert "担当にしました" in response.content.decode()
    board = response.content.decode()  # sc-a assigned, no longer offered; ssw-ab still is
    assert '<option value="sc-a">' not in board and '<option value="ssw-ab">' in board
    sc = verified_client(world["sc_a"])
    home = sc.get("/m/131130/").content.decode()
    assert f"{BOARD}/assigned/" in home and f"{BOARD}/health/" not in home
    listing = sc.get(f"{BOARD}/assigned/").content.decode()
    assert "名前 a1" in listing and "名前 a2" not in listing
    page = sc.get(f"{BOARD}/assigned/{a1}/").content.decode()
    assert STAFF_NOTE in page and CONCERN in page and COMMENT in page and ABSENCE_NOTE in page
    assert TEST_NAME not in page and SYMPTOM not in page and NURSE_NOTE not in page
    for url in (
        f"{BOARD}/assigned/{a2}/",
        f"{BOARD}/students/{a1}/",
        f"{BOARD}/health/",
        f"{BOARD}/health/students/{a1}/",
        f"{BOARD}/classes/",
    ):
        assert sc.get(url).status_code == 403, url
    # before the second factor: the way to step up, no record
    plain = Client()
    plain.force_login(world["sc_a"])
    page = plain.get(f"{BOARD}/assigned/{a1}/").content.decode()
    assert "二要素認証" in page and STAFF_NOTE not in page and COMMENT not in page
    assert plain.get(f"{BOARD}/assigned/{a2}/").status_code == 403
    body = _graphql(
        sc,
        "query($id: ID!) { studentBoard(studentId: $id) { surveys { answers } } }",
        {"id": a1},
    )
    assert body["data"] == {"studentBoard": None} and COMMENT not in json.dumps(body)
