"""xAPI statements from an LRS export become learning activity of the rostered pupils (with
教科 and a drill's questions from extensions); every statement that cannot (unknown actor,
voided in the same export, duplicate id, no time zone, huge, not xAPI, bad extensions) is
quarantined with its reason; a voiding statement deletes what an earlier import stored; the
counts add up."""

from __future__ import annotations

import json
import uuid

import pytest

from renkei.connectors.builtin.xapi import MAX_STATEMENT, VOIDED
from renkei.connectors.pipeline import do_import
from renkei.edudata.models import LearningActivity, LearningPupilMonth, StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
DRILL = "https://drill.example.jp/units/fractions-1"


@pytest.fixture
def roster(shibuya, synth_data, home):
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == "succeeded", run.message
    with in_tenant(shibuya):
        names = list(
            StudentIdentity.objects.exclude(principal_name="").values_list(
                "principal_name", "student_id"
            )[:2]
        )
    assert len(names) == 2
    return names


def statement(actor: dict, *, minutes: int | None = 15, when="2025-06-02T09:00:00+09:00", **extra):
    item = {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"ja-JP": "完了"}},
        "object": {
            "id": DRILL,
            "definition": {"name": {"en-US": "Fractions 1", "ja-JP": "分数 1"}},
        },
        "timestamp": when,
        "context": {"platform": "ドリルアプリ"},
    }
    if minutes is not None:
        item["result"] = {"duration": f"PT{minutes}M", "score": {"scaled": 0.8}}
    item.update(extra)
    return item


def test_an_lrs_export_becomes_learning_activity_and_bad_statements_say_why(
    shibuya, roster, tmp_path
):
    (first, first_pk), (second, _second_pk) = roster
    good = [
        statement({"mbox": f"mailto:{first}"}),
        statement(
            {"account": {"homePage": "https://lms.example.jp", "name": second}}, minutes=None
        ),
        # out of order: an earlier time after a later one is fine
        statement({"mbox": f"mailto:{first}"}, when="2025-05-30T15:00:00+09:00", minutes=40),
    ]
    duplicate = dict(good[0])
    voided = statement({"mbox": f"mailto:{first}"}, when="2025-06-03T09:00:00+09:00")
    voiding = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{first}"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": voided["id"]},
        "timestamp": "2025-06-04T09:00:00+09:00",
    }
    bad = [
        duplicate,
        voiding,  # accepted: before the statement it voids, the import still knows
        voided,
        statement({"mbox": "mailto:nobody@example.jp"}),  # not on the roster
        statement({"mbox": f"mailto:{first}"}, when="2025-06-02T09:00:00"),  # no time zone
        statement({"objectType": "Group", "member": []}),
        statement({"mbox": f"mailto:{first}"}, minutes=None, result={"duration": "15 minutes"}),
        statement(
            {"mbox": f"mailto:{first}"},
            result={"extensions": {"https://x.example/blob": "x" * MAX_STATEMENT}},
        ),
    ]
    export = tmp_path / "statements.jsonl"
    export.write_text(
        "\n".join(json.dumps(s, ensure_ascii=False) for s in [*good, *bad]) + "\n{broken\n",
        encoding="utf-8",
    )
    run = do_import("xapi", shibuya, actor=ACTOR, paths=[export])
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (12, 4, 8)
    assert run.message == ""  # the voided statement was never stored: nothing deleted
    with in_tenant(shibuya):
        rows = list(
            LearningActivity.objects.order_by("occurred_at").values(
                "student_id",
                "verb",
                "object_id",
                "object_name",
                "duration_seconds",
                "source_system",
            )
        )
        reasons = {q.line: q.reason for q in run.quarantine.all()}
    assert [r["duration_seconds"] for r in rows] == [2400, 900, None]
    assert rows[0]["student_id"] == first_pk and rows[0]["object_name"] == "分数 1"
    assert {r["source_system"] for r in rows} == {"ドリルアプリ"}
    # the actor's address is stored nowhere but the roster
    with in_tenant(shibuya):
        assert not LearningActivity.objects.filter(object_name__contains="@").exists()
    assert "同じ id の statement" in reasons[4]
    assert 5 not in reasons  # the voiding statement
    assert f"statement {voiding['id']} で取り消されています" in reasons[6]
    assert "名簿にない" in reasons[7]
    assert "時差" in reasons[8]  # no time zone
    assert "mbox か account.name" in reasons[9]
    assert "ISO 8601" in reasons[10]
    assert "大きすぎます" in reasons[11]
    assert "JSON として読めません" in reasons[12]

    # the same export again changes nothing
    again = do_import("xapi", shibuya, actor=ACTOR, paths=[export])
    assert (again.rows_accepted, again.rows_rejected) == (4, 8)
    with in_tenant(shibuya):
        assert LearningActivity.objects.count() == 3


def test_an_lrs_statement_result_in_json_is_read_too(shibuya, roster, tmp_path):
    (first, _pk), _ = roster
    export = tmp_path / "page1.json"
    export.write_text(
        json.dumps({"statements": [statement({"mbox": f"mailto:{first}"})], "more": ""}),
        encoding="utf-8",
    )
    run = do_import("xapi", shibuya, actor=ACTOR, paths=[export])
    assert (run.status, run.rows_accepted) == ("succeeded", 1), run.message
    wrong = tmp_path / "statements.csv"
    wrong.write_text("id,actor\n", encoding="utf-8")
    failed = do_import("xapi", shibuya, actor=ACTOR, paths=[wrong])
    assert failed.status == "failed" and ".jsonl（1 行に 1 件）か .json" in failed.message


SUBJECT_IRI = "https://drill.example.jp/xapi/extensions/subject"
ATTEMPTED_IRI = "https://drill.example.jp/xapi/extensions/items-attempted"
CORRECT_IRI = "https://drill.example.jp/xapi/extensions/items-correct"


def drill(actor: dict, attempted, correct, *, subject="算数", **extra):
    item = statement(actor, **extra)
    item["object"]["definition"]["extensions"] = {SUBJECT_IRI: subject}
    item["result"]["extensions"] = {ATTEMPTED_IRI: attempted, CORRECT_IRI: correct}
    return item


def write_lines(path, statements):
    path.write_text("\n".join(json.dumps(s, ensure_ascii=False) for s in statements) + "\n")
    return path


def test_subject_and_questions_come_from_extensions_and_bad_ones_say_where(
    shibuya, roster, tmp_path
):
    (first, first_pk), _ = roster
    me = {"mbox": f"mailto:{first}"}
    good = drill(me, 10, 8)
    in_context = statement(me, when="2025-06-02T10:00:00+09:00")
    in_context["context"]["extensions"] = {
        "https://lms.example.jp/ext#subject": {"en": "Science", "ja": "理科"}
    }
    export = write_lines(
        tmp_path / "drill.jsonl",
        [
            good,
            in_context,
            drill(me, 5, 6, when="2025-06-03T09:00:00+09:00"),  # more right than answered
            drill(me, "十", 1, when="2025-06-04T09:00:00+09:00"),  # not a number
            drill(me, 3, 1, subject=["算数"], when="2025-06-05T09:00:00+09:00"),
            drill(me, 3, 1, subject="算" * 41, when="2025-06-06T09:00:00+09:00"),
        ],
    )
    run = do_import("xapi", shibuya, actor=ACTOR, paths=[export])
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (6, 2, 4), run.message
    with in_tenant(shibuya):
        stored = {
            a.statement_id: a
            for a in LearningActivity.objects.filter(student_id=first_pk).order_by("occurred_at")
        }
        problems = {q.line: (q.column, q.reason) for q in run.quarantine.all()}
    assert set(stored) == {good["id"], in_context["id"]}
    assert (stored[good["id"]].subject, stored[good["id"]].items_attempted) == ("算数", 10)
    assert stored[good["id"]].items_correct == 8
    assert stored[in_context["id"]].subject == "理科"
    assert stored[in_context["id"]].items_attempted is None
    assert problems[3] == (
        f"result.extensions.{CORRECT_IRI}",
        "正答数 6 が解答数 5 より多くなっています",
    )
    assert problems[4][0] == f"result.extensions.{ATTEMPTED_IRI}"
    assert "0 以上の整数" in problems[4][1]
    assert problems[5][0] == f"object.definition.extensions.{SUBJECT_IRI}"
    assert "文字列" in problems[5][1]
    assert "40 文字まで" in problems[6][1]


def voiding_of(statement_id: str, actor: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": statement_id.upper()},
        "timestamp": "2025-06-10T09:00:00+09:00",
    }


def test_a_voiding_statement_deletes_what_an_earlier_import_stored(shibuya, roster, tmp_path):
    (first, _first_pk), (second, second_pk) = roster
    kept = statement({"mbox": f"mailto:{second}"})
    wrong = statement({"mbox": f"mailto:{first}"})
    earlier = do_import(
        "xapi", shibuya, actor=ACTOR, paths=[write_lines(tmp_path / "june.jsonl", [kept, wrong])]
    )
    assert earlier.rows_accepted == 2
    # the LRS says later: that statement was a mistake (and names one it never sent)
    admin = {"account": {"homePage": "https://lrs.example.jp", "name": "teacher-admin"}}
    later = do_import(
        "xapi",
        shibuya,
        actor=ACTOR,
        paths=[
            write_lines(
                tmp_path / "july.jsonl",
                [voiding_of(wrong["id"], admin), voiding_of(str(uuid.uuid4()), admin)],
            )
        ],
    )
    assert later.status == "succeeded", later.message
    # both voiding statements are accepted (applied); one stored row is gone
    assert (later.rows_read, later.rows_accepted, later.rows_rejected) == (2, 2, 0)
    assert "学習記録 1 件を削除しました" in later.message
    with in_tenant(shibuya):
        assert list(LearningActivity.objects.values_list("student_id", "statement_id")) == [
            (second_pk, kept["id"])
        ]
        # and the deleted activity is gone from the figures too
        assert list(LearningPupilMonth.objects.values_list("student_id", flat=True)) == [second_pk]
    # the voiding statement itself names no pupil: the teacher's account is not on the roster
    # and is not reported as an unknown pupil
    with in_tenant(shibuya):
        assert not later.quarantine.exists()
