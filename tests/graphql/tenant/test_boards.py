"""The boards as a teacher uses them: student board, class board with alerts, schools."""

import pytest
from tenant_api_support import AS_OF, access_log_rows, step_up

pytestmark = pytest.mark.django_db

STUDENT_BOARD = """
query Board($id: ID!, $asOf: Date) {
  studentBoard(studentId: $id, asOf: $asOf) {
    pupil { id name nameKana grade optedOut school { code name } }
    asOf
    homeroom { name schoolYear }
    attendanceNumber
    attendance(since: "2025-06-01") { date status statusLabel }
    health(since: "2025-06-01") { date condition }
    nurseVisits(since: "2025-06-01") { visitedAt reasonCategory }
    assessments { name subject score maxScore kind }
    evaluations { term subject rating viewpoints { name grade } }
    m365Usage(since: "2025-06-01") { date app active }
    absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message }
    alertsExcludedReason
  }
}"""

CLASS_BOARD = """
query Class($id: ID!, $asOf: Date) {
  classBoard(homeroomId: $id, asOf: $asOf) {
    homeroom { name grade schoolYear school { code } }
    asOf
    rules { rule threshold description }
    pupils {
      attendanceNumber
      pupil { id name grade optedOut }
      absenceSummary { thisMonth thisSchoolYear consecutive }
      alerts { rule days message }
      alertsExcludedReason
      recentAttendance(days: 7) { date status }
    }
  }
}"""


def test_student_board_for_the_pupils_teacher(client, gql, people, world, shibuya):
    # given
    client.force_login(people["teacher_a"])
    # when
    r = gql(client, STUDENT_BOARD, {"id": world["a1"].pk, "asOf": str(AS_OF)})
    # then
    assert r.status == 200 and not r.errors, r.text
    board = r.data["studentBoard"]
    assert board["pupil"]["name"] == "髙橋 一郎"
    assert board["pupil"]["school"]["code"] == world["A"].code
    assert board["homeroom"] == {"name": "3年1組", "schoolYear": 2025}
    assert board["attendanceNumber"] == 1
    assert [d["status"] for d in board["attendance"]] == [
        "PRESENT",
        "ABSENT_ILLNESS",
        "ABSENT_ILLNESS",
        "ABSENT_ILLNESS",
    ]
    assert board["attendance"][1]["statusLabel"] == "欠席（病気）"
    assert board["health"] == [{"date": "2025-06-03", "condition": "POOR"}]
    assert board["nurseVisits"][0]["reasonCategory"] == "ILLNESS"
    assert board["assessments"] == [
        {"name": "単元テスト1", "subject": "国語", "score": 80.0, "maxScore": 100.0, "kind": "UNIT"}
    ]
    assert board["evaluations"][0]["viewpoints"] == [{"name": "知識・技能", "grade": "A"}]
    assert board["m365Usage"] == [{"date": "2025-06-02", "app": "Teams", "active": True}]
    assert board["absenceSummary"] == {
        "thisMonth": 3,
        "thisSchoolYear": 3,
        "consecutive": 3,
        "consecutiveFrom": "2025-06-03",
        "consecutiveTo": "2025-06-05",
    }
    assert board["alerts"] == [
        {
            "rule": "CONSECUTIVE_ABSENCE",
            "days": 3,
            "threshold": 3,
            "firstDate": "2025-06-03",
            "lastDate": "2025-06-05",
            "message": "3 日連続で欠席しています（6/3〜6/5）",
        }
    ]
    assert board["alertsExcludedReason"] is None
    rows = access_log_rows(shibuya)
    assert rows == [
        {
            "student_pseudonym": world["a1"].pseudonym,
            "username": "teacher-a",
            "what": "student_board",
            "via": "graphql",
            "sensitive": False,
        }
    ]


def test_sensitive_fields_refuse_the_board_without_step_up(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    for selection in (
        "attendance { reason }",
        "health { symptoms }",
        "nurseVisits { note }",
        "surveys { survey answers }",
        "surveys { answeredOn }",
    ):
        r = gql(
            client,
            f"query($id: ID!) {{ studentBoard(studentId: $id) {{ {selection} }} }}",
            {"id": world["a1"].pk},
        )
        assert r.data == {"studentBoard": None}, selection
        assert r.codes == ["STEP_UP_REQUIRED"], r.text
        assert "二要素認証" in r.errors[0]["message"]
        assert "発熱" not in r.text and "頭痛" not in r.text and "くもり" not in r.text
    assert access_log_rows(shibuya) == []  # refused before reading: nothing read, nothing logged


def test_sensitive_fields_hidden_in_a_fragment_are_refused_too(client, gql, people, world):
    client.force_login(people["teacher_a"])
    query = """query($id: ID!) { studentBoard(studentId: $id) { ...B } }
      fragment B on StudentBoard { attendance { ... on AttendanceDay { why: reason } } }"""
    r = gql(client, query, {"id": world["a1"].pk})
    assert r.codes == ["STEP_UP_REQUIRED"] and "発熱" not in r.text


def test_sensitive_fields_after_step_up(client, gql, people, world, shibuya):
    step_up(client, people["teacher_a"])
    r = gql(
        client,
        """query($id: ID!) { me { stepUp } studentBoard(studentId: $id, asOf: "2025-06-05") {
        attendance(since: "2025-06-03") { reason } health { symptoms } nurseVisits { note }
        surveys { survey answers } } }""",
        {"id": world["a1"].pk},
    )
    assert not r.errors, r.text
    board = r.data["studentBoard"]
    assert r.data["me"]["stepUp"] is True
    assert board["attendance"][0]["reason"] == "発熱"
    assert board["health"][0]["symptoms"] == "頭痛"
    assert board["nurseVisits"][0]["note"] == "腹痛で来室"
    assert board["surveys"] == [{"survey": "心の天気", "answers": {"weather": "くもり"}}]
    assert [row["sensitive"] for row in access_log_rows(shibuya)] == [True]


def test_class_board_lists_own_class_with_transparent_alerts(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    r = gql(client, CLASS_BOARD, {"id": world["hA"].pk, "asOf": str(AS_OF)})
    assert r.status == 200 and not r.errors, r.text
    board = r.data["classBoard"]
    assert board["homeroom"]["school"]["code"] == world["A"].code
    assert [rule["threshold"] for rule in board["rules"]] == [3, 10, 30]
    assert "連続" in board["rules"][0]["description"]
    pupils = {p["pupil"]["name"]: p for p in board["pupils"]}
    assert list(pupils) == ["髙橋 一郎", "山﨑 花子", "佐藤 三郎"]  # by 出席番号
    a1, a2, a3 = pupils.values()
    assert a1["alerts"] == [
        {
            "rule": "CONSECUTIVE_ABSENCE",
            "days": 3,
            "message": "3 日連続で欠席しています（6/3〜6/5）",
        }
    ]
    # Opted out: records stay visible to the school, but no alert at all.
    assert a2["pupil"]["optedOut"] is True
    assert a2["alerts"] == [] and "分析除外" in a2["alertsExcludedReason"]
    assert a2["absenceSummary"]["consecutive"] == 3
    # 忌引 is not an absence and ends a run: absent, 忌引, absent is not "3 days in a row".
    assert a3["alerts"] == []
    assert a3["absenceSummary"] == {"thisMonth": 2, "thisSchoolYear": 2, "consecutive": 1}
    assert [m["status"] for m in a3["recentAttendance"]] == [
        "PRESENT",
        "ABSENT_OTHER",
        "MOURNING",
        "ABSENT_OTHER",
    ]
    rows = access_log_rows(shibuya)
    assert sorted(r["student_pseudonym"] for r in rows) == sorted(
        world[k].pseudonym for k in ("a1", "a2", "a3")
    )
    assert {(r["what"], r["via"], r["sensitive"]) for r in rows} == {
        ("class_board", "graphql", False)
    }


def test_thresholds_are_the_municipalitys(client, gql, people, world, shibuya):
    shibuya.alert_consecutive_absence_days = 4
    shibuya.alert_monthly_absence_days = 2
    shibuya.alert_yearly_absence_days = 3
    shibuya.save()
    client.force_login(people["teacher_a"])
    r = gql(client, CLASS_BOARD, {"id": world["hA"].pk, "asOf": str(AS_OF)})
    pupils = {p["pupil"]["name"]: p for p in r.data["classBoard"]["pupils"]}
    assert [a["message"] for a in pupils["髙橋 一郎"]["alerts"]] == [
        "今月（6 月）の欠席が 3 日になりました（6/1〜6/5）",
        "今年度（2025 年度）の欠席が 3 日になりました（4/1〜6/5）",
    ]
    assert [a["rule"] for a in pupils["佐藤 三郎"]["alerts"]] == ["MONTHLY_ABSENCE"]
    assert pupils["山﨑 花子"]["alerts"] == []
    assert [rule["threshold"] for rule in r.data["classBoard"]["rules"]] == [4, 2, 3]


def test_schools_are_scoped_by_role(client, gql, people, world):
    query = "{ schools { code homerooms(schoolYear: 2025) { name } } }"
    seen = {}
    for who in ("teacher_a", "manager_b", "board", "admin"):
        client.force_login(people[who])
        r = gql(client, query)
        assert not r.errors, r.text
        seen[who] = [s["code"] for s in r.data["schools"]]
    a, b = world["A"].code, world["B"].code
    assert seen == {"teacher_a": [a], "manager_b": [b], "board": [a, b], "admin": [a, b]}


def test_me_and_municipality(client, gql, people):
    client.force_login(people["teacher_a"])
    r = gql(
        client,
        "{ me { username auth stepUp grants { role roleLabel schoolCodes } } "
        "municipality { code name prefectureName alertRules { rule threshold } } }",
    )
    assert not r.errors, r.text
    assert r.data["me"]["grants"] == [
        {"role": "TEACHER", "roleLabel": "教員", "schoolCodes": ["B113211300012"]}
    ]
    assert r.data["me"]["auth"] == "session"
    assert r.data["municipality"]["code"] == "131130"


def test_a_counselling_visit_shows_only_after_step_up(client, gql, people, world, shibuya):
    """心の相談 is sensitive: before the second factor the board does not even say it happened."""
    import datetime as dt

    from renkei.edudata.models import NurseVisit
    from renkei.tenants.context import in_tenant

    with in_tenant(shibuya):
        NurseVisit.objects.create(
            student=world["a1"],
            visited_at=dt.datetime(2025, 6, 4, 10, 0, tzinfo=dt.UTC),
            reason_category="mental",
        )
    query = '{ studentBoard(studentId: %d, asOf: "2025-06-05") { nurseVisits { reasonCategory } } }'
    client.force_login(people["teacher_a"])
    before = gql(client, query % world["a1"].pk)
    assert not before.errors, before.text
    assert "MENTAL" not in {v["reasonCategory"] for v in before.data["studentBoard"]["nurseVisits"]}
    step_up(client, people["teacher_a"])
    after = gql(client, query % world["a1"].pk)
    assert "MENTAL" in {v["reasonCategory"] for v in after.data["studentBoard"]["nurseVisits"]}
