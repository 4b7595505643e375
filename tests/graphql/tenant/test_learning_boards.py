"""Learning-tool time on the boards: a pupil's minutes per ISO week and subject, the class's
weeks without opted-out pupils; school-scoped and access-logged like every board field."""

import datetime as dt

import pytest
from tenant_api_support import AS_OF, access_log_rows

from renkei.edudata.models import LearningActivity
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))

STUDENT_LEARNING = """query($id: ID!, $asOf: Date, $weeks: Int) {
  studentBoard(studentId: $id, asOf: $asOf) {
    learningWeeks(weeks: $weeks) { weekStart minutes activities
                                   subjects { subject minutes activities } } } }"""

CLASS_LEARNING = """query($id: ID!, $asOf: Date) {
  classBoard(homeroomId: $id, asOf: $asOf) {
    pupils { pupil { id } }
    learningWeeks(weeks: 2) { weekStart pupils activePupils totalMinutes medianMinutes } } }"""


def _activity(student, when, minutes, subject, n=0):
    return LearningActivity(
        student=student,
        verb="http://adlnet.gov/expapi/verbs/completed",
        object_id=f"https://drill.example.jp/units/{n}",
        occurred_at=when,
        duration_seconds=None if minutes is None else 60 * minutes,
        source_system="xapi",
        subject=subject,
    )


@pytest.fixture
def learning(world, shibuya):
    """AS_OF is Thursday 6/5, in the week of Monday 6/2.

    a1: 6/2 国語 20 min; Monday 6/2 08:00 in Japan (still Sunday in UTC) 英語 5 min; 6/4 算数
        15 min and 算数 without a duration; 5/27 国語 10 min; 6/6 (after AS_OF) 国語 90 min.
    a2 (opted out): 6/3 国語 60 min - on their own board, never in the class's figures.
    a3: nothing.
    """
    a1, a2 = world["a1"], world["a2"]
    with in_tenant(shibuya):
        LearningActivity.objects.bulk_create(
            [
                _activity(a1, dt.datetime(2025, 6, 2, 10, tzinfo=JST), 20, "国語", 1),
                _activity(a1, dt.datetime(2025, 6, 2, 8, tzinfo=JST), 5, "英語", 2),
                _activity(a1, dt.datetime(2025, 6, 4, 10, tzinfo=JST), 15, "算数", 3),
                _activity(a1, dt.datetime(2025, 6, 4, 11, tzinfo=JST), None, "算数", 4),
                _activity(a1, dt.datetime(2025, 5, 27, 10, tzinfo=JST), 10, "国語", 5),
                _activity(a1, dt.datetime(2025, 6, 6, 10, tzinfo=JST), 90, "国語", 6),
                _activity(a2, dt.datetime(2025, 6, 3, 10, tzinfo=JST), 60, "国語", 7),
            ]
        )
    return world


def test_the_pupil_board_shows_minutes_per_iso_week_and_subject(
    client, gql, people, learning, shibuya
):
    # given
    client.force_login(people["teacher_a"])
    # when
    r = gql(client, STUDENT_LEARNING, {"id": learning["a1"].pk, "asOf": str(AS_OF), "weeks": 3})
    # then
    assert not r.errors, r.text
    weeks = r.data["studentBoard"]["learningWeeks"]
    assert weeks == [
        {"weekStart": "2025-05-19", "minutes": 0, "activities": 0, "subjects": []},
        {
            "weekStart": "2025-05-26",
            "minutes": 10,
            "activities": 1,
            "subjects": [{"subject": "国語", "minutes": 10, "activities": 1}],
        },
        {
            "weekStart": "2025-06-02",
            "minutes": 40,
            "activities": 4,
            "subjects": [
                {"subject": "国語", "minutes": 20, "activities": 1},
                {"subject": "算数", "minutes": 15, "activities": 2},
                {"subject": "英語", "minutes": 5, "activities": 1},
            ],
        },
    ]
    assert access_log_rows(shibuya) == [
        {
            "student_pseudonym": learning["a1"].pseudonym,
            "username": "teacher-a",
            "what": "student_board",
            "via": "graphql",
            "sensitive": False,
        }
    ]


def test_an_opted_out_pupils_own_board_shows_no_learning(client, gql, people, learning):
    """Learning logs are analysis (docs/rights.md): not charted for an opted-out pupil, even
    those imported before the opt-out."""
    client.force_login(people["teacher_a"])
    r = gql(client, STUDENT_LEARNING, {"id": learning["a2"].pk, "asOf": str(AS_OF), "weeks": 1})
    assert not r.errors, r.text
    assert r.data["studentBoard"]["learningWeeks"] == []
    r = gql(client, STUDENT_LEARNING, {"id": learning["a2"].pk, "asOf": str(AS_OF), "weeks": 99})
    assert r.errors  # a bad argument is still refused


def test_the_class_board_counts_the_class_without_opted_out_pupils(
    client, gql, people, learning, shibuya
):
    client.force_login(people["teacher_a"])
    r = gql(client, CLASS_LEARNING, {"id": learning["hA"].pk, "asOf": str(AS_OF)})
    assert not r.errors, r.text
    board = r.data["classBoard"]
    assert len(board["pupils"]) == 3  # a2 is on the board, but not in its learning figures
    assert board["learningWeeks"] == [
        {
            "weekStart": "2025-05-26",
            "pupils": 2,
            "activePupils": 1,
            "totalMinutes": 10,
            "medianMinutes": 5.0,
        },
        {
            "weekStart": "2025-06-02",
            "pupils": 2,
            "activePupils": 1,
            "totalMinutes": 40,
            "medianMinutes": 20.0,
        },
    ]
    assert sorted(row["student_pseudonym"] for row in access_log_rows(shibuya)) == sorted(
        learning[k].pseudonym for k in ("a1", "a2", "a3")
    )


def test_another_schools_staff_get_the_same_refusal_as_for_other_records(
    client, gql, people, learning, shibuya
):
    client.force_login(people["manager_b"])
    pupil = learning["a1"].pk
    other = gql(
        client,
        "query($id: ID!) { studentBoard(studentId: $id) { attendance { date } } }",
        {"id": pupil},
    )
    mine = gql(client, STUDENT_LEARNING, {"id": pupil, "asOf": str(AS_OF), "weeks": 3})
    assert other.codes == mine.codes == ["FORBIDDEN"]
    assert mine.errors[0]["message"] == other.errors[0]["message"]
    assert mine.data == {"studentBoard": None}
    refused = gql(client, CLASS_LEARNING, {"id": learning["hA"].pk, "asOf": str(AS_OF)})
    assert refused.codes == ["FORBIDDEN"] and refused.data == {"classBoard": None}
    # the board of education sees no pupil at all
    client.force_login(people["board"])
    assert gql(client, STUDENT_LEARNING, {"id": pupil, "weeks": 3}).codes == ["FORBIDDEN"]
    assert access_log_rows(shibuya) == []  # nothing read, nothing logged


@pytest.mark.parametrize("weeks", [0, 27, -1])
def test_weeks_out_of_range_are_refused_in_japanese(client, gql, people, learning, weeks):
    client.force_login(people["teacher_a"])
    r = gql(client, STUDENT_LEARNING, {"id": learning["a1"].pk, "asOf": str(AS_OF), "weeks": weeks})
    assert r.codes == ["BAD_USER_INPUT"], r.text
    assert "週の数は 1〜26" in r.errors[0]["message"] and str(weeks) in r.errors[0]["message"]
