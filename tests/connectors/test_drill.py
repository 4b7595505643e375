"""Digital drills' learning histories (CSV, often Shift_JIS) become learning activity through
the declarative drill mappings: pupils named by account or by a school system's 児童生徒ID;
every bad row (minutes not a number, more right than answered, unknown pupil, empty 教科) is
quarantined naming its line and column; the counts add up; re-importing changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from renkei.connectors.builtin.vendor_csv import DrillConnector
from renkei.connectors.pipeline import do_import
from renkei.edudata.models import LearningActivity, StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
HEADER = "日付,{who},教科,単元名,学習時間（分）,解答数,正答数\r\n"


@pytest.fixture
def pupils(shibuya, synth_data, home):
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == "succeeded", run.message
    with in_tenant(shibuya):
        pupil = StudentIdentity.objects.filter(source_system="oneroster").first().student_id
        ids = dict(
            StudentIdentity.objects.filter(student_id=pupil).values_list(
                "source_system", "source_id"
            )
        )
        account = StudentIdentity.objects.get(student_id=pupil, source_system="oneroster")
    return pupil, account.principal_name, ids["c4th"]


def test_a_shift_jis_export_by_account_and_its_bad_rows(shibuya, pupils, tmp_path) -> None:
    pupil, account, _ = pupils
    export = tmp_path / "ドリル学習履歴.csv"
    export.write_bytes(
        (
            HEADER.format(who="アカウント")
            + f"2025/06/02,{account},算数,分数のたし算①,25,20,18\r\n"
            + f"R7.6.3,{account},国語,漢字（髙・﨑）,12.5,,\r\n"  # era date, no questions
            + f"2025/06/04,{account},理科,てこ,十分,10,5\r\n"  # minutes not a number
            + f"2025/06/05,{account},算数,小数,10,5,7\r\n"  # more right than answered
            + "2025/06/05,nobody@example.jp,算数,小数,10,5,5\r\n"  # not on the roster
            + f"2025/06/06,{account},,小数,10,5,5\r\n"  # no 教科
            + f"2025/06/02,{account},算数,分数のたし算①,30,20,19\r\n"  # the same day and unit
        ).encode("cp932")
    )
    run = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[export])
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (7, 2, 5)
    with in_tenant(shibuya):
        stored = list(
            LearningActivity.objects.filter(student_id=pupil)
            .order_by("occurred_at")
            .values(
                "occurred_at",
                "subject",
                "object_id",
                "object_name",
                "duration_seconds",
                "items_attempted",
                "items_correct",
                "source_system",
            )
        )
        problems = {q.line: (q.column, q.reason) for q in run.quarantine.all()}
    assert [r["subject"] for r in stored] == ["算数", "国語"]
    assert stored[0]["duration_seconds"] == 1500 and stored[1]["duration_seconds"] == 750
    assert (stored[0]["items_attempted"], stored[0]["items_correct"]) == (20, 18)
    assert stored[1]["items_attempted"] is None
    assert stored[1]["object_name"] == "漢字（髙・﨑）"  # CP932-only characters survive
    assert stored[0]["object_id"] == "drill:算数/分数のたし算①"
    assert stored[0]["source_system"] == "デジタルドリル"
    assert stored[1]["occurred_at"].astimezone(dt.timezone(dt.timedelta(hours=9))).date() == (
        dt.date(2025, 6, 3)
    )
    assert problems[4] == ("学習時間（分）", "分の数として読めません（例: 25 や 12.5）")
    assert problems[5] == ("正答数", "正答数 7 が解答数 5 より多くなっています")
    assert problems[6][0] == "ユーザープリンシパル名" and "名簿にない利用者" in problems[6][1]
    assert problems[7] == ("教科", "必須の値が空です")
    assert "重複" in problems[8][1] and "2 行目" in problems[8][1]

    again = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[export])
    assert (again.rows_accepted, again.rows_rejected) == (2, 5)
    with in_tenant(shibuya):
        assert LearningActivity.objects.count() == 2


def test_pupils_named_by_the_school_systems_id(shibuya, pupils, tmp_path) -> None:
    pupil, _, c4th_id = pupils
    export = tmp_path / "drill.csv"
    export.write_text(
        HEADER.format(who="児童生徒ID")
        + f"2025/06/02,{c4th_id},英語,アルファベット,15,10,10\r\n"
        + "2025/06/02,C9999999,英語,アルファベット,15,10,10\r\n",
        encoding="utf-8",
    )
    run = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[export])  # id_system c4th
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (2, 1, 1), run.message
    with in_tenant(shibuya):
        assert LearningActivity.objects.get().student_id == pupil
        (problem,) = run.quarantine.all()
    assert (problem.line, problem.column) == (3, "児童生徒ID")
    assert "名簿にない児童生徒" in problem.reason and "C9999999" in problem.reason

    # the same ids read as another system's: none of them is a pupil there
    other = do_import(
        DrillConnector, shibuya, actor=ACTOR, paths=[export], config={"id_system": "suzuki"}
    )
    assert (other.rows_accepted, other.rows_rejected) == (0, 2)


def test_a_missing_column_or_an_undecodable_file_fails_up_front(shibuya, pupils, tmp_path) -> None:
    _, account, _ = pupils
    missing = tmp_path / "no-minutes.csv"
    missing.write_text(
        f"日付,アカウント,教科,単元名,解答数,正答数\n2025/06/02,{account},算数,小数,5,5\n",
        encoding="utf-8",
    )
    run = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[missing])
    assert run.status == "failed"
    assert "必須の列がありません: 学習時間（分）" in run.message, run.message

    # UTF-8 with one row pasted in from a Shift_JIS file: neither encoding reads it whole
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        HEADER.format(who="アカウント").encode("utf-8")
        + f"2025/06/02,{account},算数,小数,5,5,5\r\n".encode()
        + f"2025/06/03,{account},算数,分数,5,5,5\r\n".encode("cp932")
    )
    run = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[mixed])
    assert run.status == "failed" and "3 行目" in run.message, run.message
    # saved as EUC-JP: named, with what to do
    euc = tmp_path / "euc.csv"
    euc.write_bytes(
        (HEADER.format(who="アカウント") + f"2025/06/02,{account},算数,小数,5,5,5\r\n").encode(
            "euc_jp"
        )
    )
    run = do_import(DrillConnector, shibuya, actor=ACTOR, paths=[euc])
    assert run.status == "failed" and "1 行目" in run.message
    assert "UTF-8 か Shift_JIS(CP932) にして保存し直してください" in run.message
    with in_tenant(shibuya):
        assert not LearningActivity.objects.exists()
