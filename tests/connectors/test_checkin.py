"""心の天気 check-ins from a form tool's CSV: answers of rostered pupils are stored (sensitive:
after step-up on the pupil board, 新着 on the class board for low moods), every other row
is quarantined with the reason, re-importing changes nothing, and no figure counts them."""

from __future__ import annotations

import datetime as dt

import pytest
from source_support import PACKAGE, names_used

from renkei.accounts import policy
from renkei.connectors.pipeline import do_import
from renkei.edudata import notes
from renkei.edudata.models import Student, StudentIdentity, SurveyResponse
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


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
