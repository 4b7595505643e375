"""A check-in's free comment (ひとこと) is read by the pupil's 担任 and the school's managers
only, after step-up; other staff of the school see the mood without it, and everyone else sees
nothing: through the API (the pupil board) and the class board's 新着 alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from tenant_api_support import AS_OF, YEAR, access_log_rows, step_up

from renkei.accounts import policy
from renkei.edudata import homerooms, notes
from renkei.edudata.models import Enrollment, Homeroom, Student, SurveyResponse
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

COMMENT = "ともだちとけんかした-ひとこと7Q"
SURVEYS = """query($id: ID!, $asOf: Date) { studentBoard(studentId: $id, asOf: $asOf) {
  surveys { survey answeredOn answers freeCommentWithheld } } }"""


@pytest.fixture
def classes(world, people, make_user, shibuya):
    """a1 in 3年1組 of school A (担任 teacher-a), a second class 3年2組 (担任 teacher-a2), a
    manager of A, and a low mood of a1 with a comment."""
    a = world["A"].code
    people["teacher_a2"] = make_user("teacher-a2", "teacher", municipality=shibuya, schools=[a])
    people["manager_a"] = make_user(
        "manager-a", "school_manager", municipality=shibuya, schools=[a]
    )
    manager = policy.principal_for(people["manager_a"], step_up=True)
    with in_tenant(shibuya):
        other = Homeroom.objects.create(school=world["A"], school_year=YEAR, grade=3, name="3年2組")
        Enrollment.objects.create(student=world["a3"], homeroom=other)
        Enrollment.objects.filter(student=world["a3"], homeroom=world["hA"]).delete()
        homerooms.do_set_homeroom_teachers(manager, shibuya, world["hA"].pk, ["teacher-a"])
        homerooms.do_set_homeroom_teachers(manager, shibuya, other.pk, ["teacher-a2"])
        SurveyResponse.objects.create(
            student=world["a1"],
            survey="心の天気",
            answered_on=AS_OF,
            answers={"weather": "あめ", "comment": COMMENT},
        )
    return people


def _board(gql, user, world, *, verified: bool = True):
    client = Client()
    if verified:
        step_up(client, user)
    else:
        client.force_login(user)
    return gql(client, SURVEYS, {"id": str(world["a1"].pk), "asOf": AS_OF.isoformat()})


def _checkin(response):
    (row,) = [
        r for r in response.data["studentBoard"]["surveys"] if r["answeredOn"] == "2025-06-05"
    ]
    return row


@pytest.mark.parametrize("who", ["teacher_a", "manager_a"])
def test_the_homeroom_teacher_and_the_managers_read_the_comment(gql, world, classes, who, shibuya):
    response = _board(gql, classes[who], world)
    assert not response.errors, response.text
    row = _checkin(response)
    assert row["answers"] == {"weather": "あめ", "comment": COMMENT}
    assert row["freeCommentWithheld"] is False
    # the read is in the access log, as a sensitive one
    assert access_log_rows(shibuya, username=classes[who].username) == [
        {
            "student_pseudonym": world["a1"].pseudonym,
            "username": classes[who].username,
            "what": "student_board",
            "via": "graphql",
            "sensitive": True,
        }
    ]


def test_a_teacher_of_another_class_sees_the_mood_not_the_comment(gql, world, classes):
    response = _board(gql, classes["teacher_a2"], world)
    assert not response.errors, response.text
    row = _checkin(response)
    assert row["answers"] == {"weather": "あめ"} and row["freeCommentWithheld"] is True
    assert COMMENT not in response.text


@pytest.mark.parametrize(
    ("who", "verified", "code"),
    [
        ("manager_b", True, "FORBIDDEN"),  # a manager, but of another school
        ("shinjuku_teacher", True, "FORBIDDEN"),  # another municipality's teacher
        ("admin", True, "FORBIDDEN"),  # the tenant's admin is not school staff
        ("teacher_a", False, "STEP_UP_REQUIRED"),  # the 担任, before step-up
    ],
)
def test_no_one_else_reads_anything_of_it(gql, world, classes, who, verified, code):
    response = _board(gql, classes[who], world, verified=verified)
    assert response.codes == [code], response.text
    assert COMMENT not in response.text and "あめ" not in response.text


def test_the_policy_answers_the_same_outside_the_api(world, classes, shibuya):
    school = world["A"].code

    def may(who, step_up=True, teachers=("teacher-a",)):
        principal = policy.principal_for(classes[who], step_up=step_up)
        return policy.may_read_free_comments(principal, shibuya, school, teachers)

    assert may("teacher_a") and may("manager_a")
    assert not may("teacher_a", step_up=False)
    assert not may("teacher_a2") and not may("admin") and not may("board")
    assert not may("manager_b")  # 管理職 of school B
    assert not may("shinjuku_teacher", teachers=("teacher-shinjuku",))  # another municipality


@pytest.mark.parametrize(
    ("who", "comment_shown"), [("teacher_a", True), ("manager_a", True), ("teacher_a2", False)]
)
def test_the_class_board_news_follows_the_same_rule(world, classes, shibuya, who, comment_shown):
    principal = policy.principal_for(classes[who], step_up=True)
    with in_tenant(shibuya):
        news = notes.news(principal, shibuya, Student.objects.all(), AS_OF + dt.timedelta(days=1))
    (line,) = [e.what for e in news.entries() if e.student_id == world["a1"].pk]
    assert line.startswith("心の天気: あめ")
    assert (COMMENT in line) is comment_shown
    assert all((COMMENT in str(c.answers)) is comment_shown for c in news.checkins)


def test_the_class_board_page_of_another_class_teacher_shows_no_comment(
    world, classes, shibuya, verified_client
):
    client = verified_client(classes["teacher_a2"])
    page = client.get(f"/m/131130/boards/classes/{world['hA'].pk}/?as_of=2025-06-06")
    assert page.status_code == 200
    html = page.content.decode()
    assert "心の天気: あめ" in html and COMMENT not in html


def test_only_the_schools_managers_set_its_homeroom_teachers(world, classes, shibuya):
    hA = world["hA"].pk
    with in_tenant(shibuya):
        for who in ("teacher_a", "manager_b", "admin"):
            principal = policy.principal_for(classes[who], step_up=True)
            with pytest.raises(policy.AccessDenied):
                homerooms.do_set_homeroom_teachers(principal, shibuya, hA, [classes[who].username])
        manager = policy.principal_for(classes["manager_a"], step_up=True)
        with pytest.raises(homerooms.HomeroomError, match=r"teacher-shinjuku は .*の教職員として"):
            homerooms.do_set_homeroom_teachers(manager, shibuya, hA, ["teacher-shinjuku"])
        assert Homeroom.objects.get(pk=hA).teachers == ["teacher-a"]  # unchanged by refusals
    events = AuditEvent.objects.filter(action="homeroom.teachers")
    assert [e.changes["teachers"] for e in events.order_by("id")] == [["teacher-a"], ["teacher-a2"]]


def test_a_manager_sets_them_on_the_class_board_and_a_teacher_cannot(
    world, classes, shibuya, verified_client
):
    url = f"/m/131130/boards/classes/{world['hA'].pk}/teachers/"
    teacher = verified_client(classes["teacher_a2"])
    assert "担任を設定する" not in teacher.get(url.replace("teachers/", "")).content.decode()
    assert teacher.post(url, {"teachers": "teacher-a2"}).status_code == 403
    manager = verified_client(classes["manager_a"])
    page = manager.post(url, {"teachers": "teacher-a2、 teacher-a"}, follow=True)
    assert "担任を設定しました" in page.content.decode()
    with in_tenant(shibuya):
        assert Homeroom.objects.get(pk=world["hA"].pk).teachers == ["teacher-a2", "teacher-a"]
    page = manager.post(url, {"teachers": "manager-b"}, follow=True)
    assert (
        "manager-b は 渋谷区立第一小学校 の教職員として登録されていません" in page.content.decode()
    )
