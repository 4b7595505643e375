"""心の天気 check-ins from a form tool's CSV: answers of rostered pupils are stored (sensitive:
after step-up on the pupil board, 新着 on the class board for low moods), every other row
is quarantined with the reason, re-importing changes nothing, and no figure counts them."""

from __future__ import annotations

import datetime as dt

import pytest
from source_support import PACKAGE, names_used

from renkei.accounts import policy
from renkei.connectors import reading
from renkei.connectors.pipeline import do_import
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    SchoolRecord,
    StudentRecord,
    SurveyRecord,
)
from renkei.connectors.sdk import Connector
from renkei.edudata import notes
from renkei.edudata.models import (
    Enrollment,
    Homeroom,
    Student,
    StudentIdentity,
    SurveyResponse,
)
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
SCHOOL = "B113211300012"


@pytest.fixture
def roster(shibuya, synth_data, home):
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == "succeeded", run.message
    with in_tenant(shibuya):
        return list(
            StudentIdentity.objects.exclude(principal_name="").values_list(
                "principal_name", "student_id"
            )[:2]
        )


def test_a_google_forms_export_becomes_check_ins_and_bad_rows_say_why(
    shibuya, roster, tmp_path, make_user
):
    (first, first_pk), (second, _) = roster
    export = tmp_path / "心の天気.csv"
    export.write_text(
        "タイムスタンプ,メールアドレス,心の天気,ひとこと\n"
        f"2025/06/02 8:01:12,{first},あめ,ねむい\n"
        f"2025/06/02 8:03:40,{second},はれ,\n"
        "2025/06/02 8:04:00,nobody@example.jp,くもり,\n"  # not on the roster
        f"2025/13/40 8:05:00,{first},はれ,\n"  # no such day
        f"2025/06/03 8:06:00,{second},,\n",  # nothing answered
        encoding="utf-8",
    )
    run = do_import("checkin", shibuya, actor=ACTOR, paths=[export])
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (5, 2, 3)
    with in_tenant(shibuya):
        reasons = {q.line: q.reason for q in run.quarantine.all()}
        stored = SurveyResponse.objects.get(student_id=first_pk)
    assert stored.survey == "心の天気" and stored.answered_on == dt.date(2025, 6, 2)
    assert stored.answers == {"weather": "あめ", "comment": "ねむい"}
    assert "名簿にない" in reasons[4] and "日付" in reasons[5] and reasons[6]
    again = do_import("checkin", shibuya, actor=ACTOR, paths=[export])
    assert again.rows_accepted == 2
    with in_tenant(shibuya):
        assert SurveyResponse.objects.count() == 2

    # 新着 of the pupil's school, after step-up: the low mood, not the sunny one
    with in_tenant(shibuya):
        school = Student.objects.get(pk=first_pk).school
        teacher = make_user("t-c", "teacher", municipality=shibuya, schools=[school.code])
        news = notes.news(
            policy.principal_for(teacher, step_up=True),
            shibuya,
            Student.objects.filter(school=school),
            dt.date(2025, 6, 3),
        )
    assert [(c.student_id, c.answers["weather"]) for c in news.checkins] == [(first_pk, "あめ")]


def test_a_file_of_another_tool_names_the_header_it_needs(shibuya, roster, tmp_path):
    export = tmp_path / "answers.csv"
    export.write_text("日時,名前,気分\n2025/06/02 8:01,山田,はれ\n", encoding="utf-8")
    run = do_import("checkin", shibuya, actor=ACTOR, paths=[export])
    assert run.status == "failed" and "どの出力形式にも合いません" in run.message
    assert "タイムスタンプ" in run.message or "メール" in run.message, run.message


def test_no_figure_counts_check_ins():
    """Rollups, metrics, alerts, the federation and widgets never name survey answers."""
    aggregate_code = [
        PACKAGE / "edudata" / "rollups.py",
        PACKAGE / "edudata" / "alerts.py",
        PACKAGE / "edudata" / "absence.py",
        *(PACKAGE / "edudata" / "metrics").rglob("*.py"),
        *(PACKAGE / "graphql" / "federation").rglob("*.py"),
        *(PACKAGE / "graphql" / "widgets").rglob("*.py"),
    ]
    found = [
        str(path.relative_to(PACKAGE))
        for path in aggregate_code
        if names_used(path) & {"SurveyResponse", "surveys"}
        or "edudata_surveyresponse" in path.read_text(encoding="utf-8")
    ]
    assert found == []


def test_a_check_in_on_a_day_the_pupil_was_not_enrolled_is_quarantined_with_why(
    shibuya, roster, tmp_path
):
    """Enrolments are per school year (the roster's 2025年度 here) and end at graduation: a
    check-in before, after, between them or without any is a row error; the rest is kept."""
    (first, first_pk), (second, second_pk) = roster
    with in_tenant(shibuya):
        # first: also enrolled in 2023年度 (a gap in 2024), graduating on 2026-03-20
        school = Student.objects.get(pk=first_pk).school
        old = Homeroom.objects.create(school=school, school_year=2023, grade=1, name="1年1組")
        Enrollment.objects.create(student_id=first_pk, homeroom=old)
        Student.objects.filter(pk=first_pk).update(
            left_on=dt.date(2026, 3, 20), leaving_reason="graduated"
        )
        # second: on the roster, but in no homeroom at all
        Enrollment.objects.filter(student_id=second_pk).delete()
    export = tmp_path / "心の天気.csv"
    export.write_text(
        "タイムスタンプ,メールアドレス,心の天気,ひとこと\n"
        f"2025/06/02 8:01:12,{first},はれ,\n"  # 2: enrolled
        f"2023/03/31 8:01:12,{first},はれ,\n"  # 3: the day before 2023年度
        f"2024/06/03 8:01:12,{first},あめ,\n"  # 4: 2024年度, between enrolments
        f"2026/03/24 8:01:12,{first},くもり,\n"  # 5: 2025年度, after graduation
        f"2026/04/06 8:01:12,{first},くもり,\n"  # 6: after the last enrolment
        f"2025/06/02 8:01:12,{second},あめ,\n"  # 7: enrolled nowhere
        f"2023/04/01 8:01:12,{first},はれ,\n",  # 8: the first day of 2023年度
        encoding="utf-8",
    )
    run = do_import("checkin", shibuya, actor=ACTOR, paths=[export])
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (7, 2, 5)
    with in_tenant(shibuya):
        reasons = {q.line: (q.column, q.value, q.reason) for q in run.quarantine.all()}
        kept = sorted(SurveyResponse.objects.values_list("student_id", "answered_on"))
    assert kept == [(first_pk, dt.date(2023, 4, 1)), (first_pk, dt.date(2025, 6, 2))]
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert reasons[3] == (
        "回答日",
        "2023-03-31",
        "回答日 2023-03-31 は在籍の始まり（2023年度）より前です。在籍していない日の回答は"
        "取り込みません（日付か、名簿の学級の在籍を確かめてください）。",
    )
    assert "2024年度で、この年度には在籍（学級）がありません" in reasons[4][2]
    assert "卒業日 2026-03-20 より後です" in reasons[5][2]
    assert "在籍の終わり（2025年度）より後です" in reasons[6][2]
    assert "在籍（学級）がない日です" in reasons[7][2]
    # the same file again: the same rows kept, the same rows refused, nothing else changes
    again = do_import("checkin", shibuya, actor=ACTOR, paths=[export])
    assert (again.rows_accepted, again.rows_rejected) == (2, 5)
    with in_tenant(shibuya):
        assert SurveyResponse.objects.count() == 2


class _CheckinsThenRoster(Connector):
    """A vendor's export with the answers first and the roster after them."""

    name = "test-checkins-then-roster"
    parallel_read = False

    def read(self, config, state):
        def at(line):
            return Origin(file="mixed.csv", line=line)

        # the first waits for the end of the run (its pupil is not known when it is loaded)
        for line, day in ((2, dt.date(2024, 6, 3)), (3, dt.date(2025, 6, 2))):
            yield SurveyRecord(
                origin=at(line),
                principal_name="late@example.jp",
                survey="心の天気",
                answered_on=day,
                answers={"weather": "あめ"},
            )
        yield SchoolRecord(origin=at(4), code=SCHOOL, name="渋谷区立第一小学校")
        yield HomeroomRecord(
            origin=at(5), school_code=SCHOOL, school_year=2025, grade=3, name="3年1組"
        )
        yield StudentRecord(
            origin=at(6),
            source_id="late",
            school_code=SCHOOL,
            grade=3,
            principal_name="late@example.jp",
        )
        yield EnrollmentRecord(
            origin=at(7),
            student_source_id="late",
            school_code=SCHOOL,
            school_year=2025,
            homeroom_name="3年1組",
        )


def test_check_ins_of_a_pupil_on_a_roster_read_after_them_are_checked_too(
    shibuya, home, monkeypatch
):
    """Rows whose pupil is not yet known wait for the end of the run; the enrolment check
    applies to them there."""
    monkeypatch.setattr(reading, "FIRST_CHUNK_ROWS", 1)  # each answer its own chunk
    run = do_import(_CheckinsThenRoster, shibuya, actor=ACTOR)
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (6, 5, 1)
    with in_tenant(shibuya):
        (reason,) = run.quarantine.values_list("line", "reason")
        kept = list(SurveyResponse.objects.values_list("answered_on", flat=True))
    assert kept == [dt.date(2025, 6, 2)]
    assert reason[0] == 2 and "在籍の始まり（2025年度）より前" in reason[1]
