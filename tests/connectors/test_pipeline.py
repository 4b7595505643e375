"""The pipeline end to end with the C4th connector on small hand-written exports."""

import csv
import datetime as dt
import os
from pathlib import Path

import pytest
from django.db import connection

from renkei.connectors import reading
from renkei.connectors.error_report import error_report_lines
from renkei.connectors.pipeline import do_import
from renkei.edudata.models import (
    AttendanceDay,
    AttendancePupilMonth,
    AttendancePupilYear,
    Enrollment,
    Homeroom,
    ImportRun,
    QuarantinedRow,
    School,
    Student,
    StudentIdentity,
)
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db

SCHOOL = "B113211300012"
ROSTER_HEADER = [
    "年度",
    "学校コード",
    "学校名",
    "学年",
    "組",
    "出席番号",
    "児童生徒ID",
    "氏名（姓）",
    "氏名（名）",
    "ふりがな（姓）",
    "ふりがな（名）",
    "性別",
    "生年月日",
]
ATTENDANCE_HEADER = ["学校コード", "児童生徒ID", "日付", "出欠", "理由"]


def write_csv(path: Path, header, rows, encoding="cp932") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def roster(
    tmp_path, pupils=(("C001", "髙橋", "一郎"), ("C002", "山﨑", "花子"), ("C003", "佐藤", "①太"))
):
    rows = [
        [
            "2025",
            SCHOOL,
            "渋谷区立第一小学校",
            "3",
            "1",
            str(n),
            pid,
            fam,
            giv,
            "たかはし",
            "いちろう",
            "男" if n % 2 else "女",
            "H29.5.10",
        ]
        for n, (pid, fam, giv) in enumerate(pupils, 1)
    ]
    return write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows)


def attendance(tmp_path, rows, name="attendance.csv", encoding="cp932"):
    return write_csv(tmp_path / name, ATTENDANCE_HEADER, rows, encoding)


def import_c4th(municipality, *paths):
    return do_import("c4th", municipality, actor=TEST_ACTOR, paths=paths)


def snapshot():
    return {
        "students": sorted(Student.objects.values_list("pseudonym", "grade", "school__code")),
        "identities": sorted(
            StudentIdentity.objects.values_list(
                "source_system", "source_id", "family_name", "given_name"
            )
        ),
        "attendance": sorted(
            AttendanceDay.objects.values_list("student__pseudonym", "date", "status", "reason")
        ),
        "homerooms": sorted(Homeroom.objects.values_list("school__code", "school_year", "name")),
        "enrollments": Enrollment.objects.count(),
        "rollup": sorted(
            AttendancePupilMonth.objects.values_list(
                "student__pseudonym", "month", "school_days", "absent_illness"
            )
        ),
    }


def test_roster_and_attendance_load_and_roll_up(tmp_path, shibuya):
    days = [["", "C001", f"R7.4.{d}", mark, ""] for d, mark in ((7, ""), (8, "病"), (9, "遅"))]
    days += [
        ["", "C002", "2025/04/07", "停", "インフルエンザ"],
        ["", "C002", "2025-04-08", "忌", ""],
    ]
    run = import_c4th(shibuya, roster(tmp_path), attendance(tmp_path, days))
    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (8, 8, 0)
    with in_tenant(shibuya):
        assert School.objects.get(code=SCHOOL).name == "渋谷区立第一小学校"
        assert Homeroom.objects.get().name == "3年1組"
        assert Student.objects.count() == 3 and Enrollment.objects.count() == 3
        identity = StudentIdentity.objects.get(source_system="c4th", source_id="C001")
        assert (identity.family_name, identity.given_name) == ("髙橋", "一郎")
        assert StudentIdentity.objects.get(source_id="C002").family_name == "山﨑"
        assert StudentIdentity.objects.get(source_id="C003").given_name == "①太"
        pupil = identity.student
        assert pupil.birth_year_month == "2017-05"  # the day is never kept
        assert dict(AttendanceDay.objects.filter(student=pupil).values_list("date", "status")) == {
            dt.date(2025, 4, 7): "present",
            dt.date(2025, 4, 8): "absent_illness",
            dt.date(2025, 4, 9): "late",
        }
        month = AttendancePupilMonth.objects.get(student=pupil)
        assert (month.school_days, month.present, month.absent_illness, month.late) == (3, 1, 1, 1)
        other = AttendancePupilYear.objects.get(student__identities__source_id="C002")
        assert other.absence_days == 0  # 出席停止 and 忌引 are not absences
        assert run.files == [f"imports/{run.pk}/roster.csv", f"imports/{run.pk}/attendance.csv"]


def test_reimport_changes_nothing(tmp_path, shibuya):
    files = (roster(tmp_path), attendance(tmp_path, [["", "C001", "R7.4.7", "病", "発熱"]]))
    import_c4th(shibuya, *files)
    with in_tenant(shibuya):
        before = snapshot()
        xmin_before = sorted(
            AttendanceDay.objects.extra(select={"x": "xmin::text"}).values_list("id", "x")
        )
    second = import_c4th(shibuya, *files)
    assert second.status == "succeeded"
    with in_tenant(shibuya):
        assert snapshot() == before
        # Not even rewritten with the same values: the rows were not touched.
        assert (
            sorted(AttendanceDay.objects.extra(select={"x": "xmin::text"}).values_list("id", "x"))
            == xmin_before
        )


def test_a_roster_without_leaving_dates_keeps_the_known_ones(tmp_path, shibuya):
    with_date = write_csv(
        tmp_path / "卒業.csv",
        [*ROSTER_HEADER, "卒業日"],
        [[*row, "R8.3.20" if row[6] == "C001" else ""] for row in read_rows(roster(tmp_path))],
    )
    import_c4th(shibuya, with_date)
    # The usual nightly roster has no 卒業日 column; another has it empty for everyone.
    import_c4th(shibuya, roster(tmp_path))
    emptied = write_csv(
        tmp_path / "空欄.csv",
        [*ROSTER_HEADER, "卒業日"],
        [[*row, ""] for row in read_rows(roster(tmp_path))],
    )
    assert import_c4th(shibuya, emptied).status == "succeeded"
    with in_tenant(shibuya):
        dates = {
            source_id: (left_on, reason)
            for source_id, left_on, reason in StudentIdentity.objects.filter(
                source_system="c4th"
            ).values_list("source_id", "student__left_on", "student__leaving_reason")
        }
    assert dates == {
        "C001": (dt.date(2026, 3, 20), "graduated"),
        "C002": (None, ""),
        "C003": (None, ""),
    }


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="cp932", newline="") as f:
        return list(csv.reader(f))[1:]


def test_changed_mark_updates_in_place(tmp_path, shibuya):
    import_c4th(shibuya, roster(tmp_path), attendance(tmp_path, [["", "C001", "R7.4.7", "病", ""]]))
    import_c4th(shibuya, attendance(tmp_path, [["", "C001", "R7.4.7", "事", ""]], "fix.csv"))
    with in_tenant(shibuya):
        assert list(AttendanceDay.objects.values_list("status", flat=True)) == ["absent_accident"]
        assert AttendancePupilMonth.objects.get().absent_accident == 1


def quarantine(run, municipality):
    with in_tenant(municipality):
        return sorted(
            QuarantinedRow.objects.filter(run=run).values_list(
                "file", "line", "column", "value", "reason"
            )
        )


def test_bad_rows_are_quarantined_and_good_rows_load(tmp_path, shibuya):
    rows = [
        ["", "C001", "R7.4.7", "", ""],  # line 2: good
        ["", "C001", "R7.13.1", "", ""],  # line 3: impossible month
        ["", "C002", "平成31年5月1日", "", ""],  # line 4: a date that never existed
        ["", "C999", "R7.4.7", "", ""],  # line 5: unknown pupil
        ["", "C002", "R7.4.7", "X", ""],  # line 6: unknown mark
        ["", "C001", "2025/4/7", "病", ""],  # line 7: duplicate of line 2
        ["", "C003", "R7.4.7", "遅", "x" * 300],  # line 8: reason too long
        ["", "C002", "R7.4.8"],  # line 9: too few columns
    ]
    run = import_c4th(shibuya, roster(tmp_path), attendance(tmp_path, rows))
    assert run.status == "succeeded"
    assert run.rows_read == 3 + 8
    assert run.rows_rejected == 7 and run.rows_accepted == 4
    rejected = quarantine(run, shibuya)
    assert [r[1] for r in rejected] == [3, 4, 5, 6, 7, 8, 9]
    by_line = {r[1]: r for r in rejected}
    assert by_line[3][2:4] == ("日付", "R7.13.1") and "月が 13" in by_line[3][4]
    assert "存在しない和暦日付" in by_line[4][4]
    assert by_line[5][2:4] == ("児童生徒ID", "C999") and "名簿にない" in by_line[5][4]
    assert by_line[6][2] == "出欠" and "コード「X」" in by_line[6][4]
    assert "attendance.csv の 2 行目" in by_line[7][4]
    assert by_line[8][2] == "理由" and "200" in by_line[8][4]
    assert "列の数が足りません" in by_line[9][4]
    with in_tenant(shibuya):
        assert AttendanceDay.objects.count() == 1
        report = "".join(error_report_lines(run))
    assert report.startswith("\ufeffファイル,行,列,値,理由")
    assert report.count("\n") == 1 + 7


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "空です"),
        ("学校コード,児童生徒ID\n1,2\n".encode("cp932"), "どの出力形式にも合いません"),
        (b"\xff\xfe" + "学校コード".encode("utf-16-le"), "UTF-16"),
        ("学校コード,児童生徒ID,日付,出欠\n,C1,R7.4.7,\n".encode() + b"\x82\xff\n", "3 行目"),
    ],
)
def test_unreadable_files_fail_the_run_up_front(tmp_path, shibuya, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    run = import_c4th(shibuya, roster(tmp_path), bad)
    assert run.status == "failed" and message in run.message, run.message
    with in_tenant(shibuya):
        assert Student.objects.count() == 0  # the roster of the same run is not half-loaded
        assert ImportRun.objects.get(pk=run.pk).rows_accepted == 0


def test_a_bad_byte_far_into_a_big_file_fails_the_run_at_its_line(tmp_path, shibuya, monkeypatch):
    """The encoding is told from the file's start (textio.DECISIVE_NON_ASCII): a bad byte
    past it is found by the reading, after chunks of the run were loaded, and those go too."""
    monkeypatch.setattr(reading, "FIRST_CHUNK_ROWS", 500)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 500)
    import_c4th(shibuya, roster(tmp_path, pupils=(("C001", "髙橋", "一郎"),)))
    days = [dt.date(2025, 4, 7) + dt.timedelta(days=n) for n in range(3000)]
    rows = [["", "C001", d.isoformat(), "病", "発熱のため"] for d in days]
    path = write_csv(tmp_path / "a.csv", ATTENDANCE_HEADER, rows)
    with path.open("ab") as f:
        f.write(b",C001,2034-01-01,\x82\xff,\n")  # line 3002
    run = import_c4th(shibuya, path)
    assert run.status == "failed" and "3002 行目" in run.message, run.message
    with in_tenant(shibuya):
        assert AttendanceDay.objects.count() == 0
        assert ImportRun.objects.get(pk=run.pk).rows_accepted == 0


def test_each_chunk_is_written_grouped_by_pupil(tmp_path, shibuya, monkeypatch):
    """A file day by day (as C4th writes it) is inserted pupil by pupil within each chunk,
    each pupil's days in the file's order: what keeps the insert's index writes together."""
    monkeypatch.setattr(reading, "FIRST_CHUNK_ROWS", 6)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 6)
    import_c4th(shibuya, roster(tmp_path))
    days = ["R7.4.7", "R7.4.8", "R7.4.9", "R7.4.10"]
    rows = [["", pupil, day, "", ""] for day in days for pupil in ("C003", "C001", "C002")]
    run = import_c4th(shibuya, write_csv(tmp_path / "a.csv", ATTENDANCE_HEADER, rows))
    assert (run.status, run.rows_accepted) == ("succeeded", 12)
    with in_tenant(shibuya):
        ids = dict(StudentIdentity.objects.values_list("student_id", "source_id"))
        with connection.cursor() as cursor:  # the rows in the order they were written
            cursor.execute("SELECT student_id, date FROM edudata_attendanceday ORDER BY ctid")
            written = [(ids[student], date.day) for student, date in cursor.fetchall()]
    assert written == [
        *[("C001", 7), ("C001", 8), ("C002", 7), ("C002", 8), ("C003", 7), ("C003", 8)],
        *[("C001", 9), ("C001", 10), ("C002", 9), ("C002", 10), ("C003", 9), ("C003", 10)],
    ]


def test_roster_files_alone_are_read_in_this_process(tmp_path, shibuya, monkeypatch):
    """A child process pays off only with data files to load while it reads; roster records
    are written once all are read. A reading child that dies at once shows which path ran."""
    monkeypatch.setattr(reading, "_child", lambda *args: os._exit(1))
    alone = import_c4th(shibuya, roster(tmp_path))
    assert alone.status == "succeeded", alone.message
    marks = attendance(tmp_path, [["", "C001", "R7.4.7", "", ""]])
    with pytest.raises(RuntimeError, match="読み込み用のプロセスが途中で終了しました"):
        import_c4th(shibuya, roster(tmp_path), marks)


def test_missing_required_column_is_named(tmp_path, shibuya):
    path = write_csv(
        tmp_path / "a.csv",
        ["学校コード", "児童生徒ID", "日付", "理由"],
        [["", "C001", "R7.4.7", ""]],
    )
    run = import_c4th(shibuya, path)
    assert run.status == "failed" and "出欠" in run.message


def test_utf8_with_bom_and_extra_columns_are_fine(tmp_path, shibuya):
    import_c4th(shibuya, roster(tmp_path))
    path = write_csv(
        tmp_path / "a.csv",
        [*ATTENDANCE_HEADER, "担任メモ"],
        [["", "C001", "Ｒ７．４．７", "欠", "", "メモ"]],
        encoding="utf-8-sig",
    )
    run = import_c4th(shibuya, path)
    assert (run.status, run.rows_accepted, run.rows_rejected) == ("succeeded", 1, 0)


def test_truncated_last_line_and_enormous_field(tmp_path, shibuya):
    import_c4th(shibuya, roster(tmp_path))
    path = tmp_path / "a.csv"
    big = "長" * 2_000_000
    path.write_bytes(
        (
            ",".join(ATTENDANCE_HEADER) + f"\n,C001,R7.4.7,,\n,C002,R7.4.7,,{big}\n,C003,R7.4"
        ).encode()
    )
    run = import_c4th(shibuya, path)
    assert run.status == "succeeded"
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (3, 1, 2)
    rejected = quarantine(run, shibuya)
    assert [r[1] for r in rejected] == [3, 4]
    assert len(rejected[0][3]) <= 1000


def test_opted_out_pupils_are_stored_but_not_rolled_up(tmp_path, shibuya, make_user):
    from renkei.accounts import policy
    from renkei.edudata.privacy import do_record_opt_out

    admin = policy.principal_for(make_user("adm", "tenant_admin", municipality=shibuya))
    import_c4th(shibuya, roster(tmp_path))
    with in_tenant(shibuya):
        pupil = StudentIdentity.objects.get(source_id="C001").student
        do_record_opt_out(admin, shibuya, pupil)
    import_c4th(
        shibuya,
        attendance(tmp_path, [["", "C001", "R7.4.7", "病", ""], ["", "C002", "R7.4.7", "", ""]]),
    )
    with in_tenant(shibuya):
        assert AttendanceDay.objects.filter(student=pupil).count() == 1  # a school record
        assert not AttendancePupilMonth.objects.filter(student=pupil).exists()
        assert AttendancePupilMonth.objects.count() == 1


def test_tenants_do_not_see_each_others_imports(tmp_path, shibuya, shinjuku):
    import_c4th(shibuya, roster(tmp_path), attendance(tmp_path, [["", "C001", "R7.4.7", "", ""]]))
    with in_tenant(shinjuku):
        assert Student.objects.count() == 0 and ImportRun.objects.count() == 0


def test_suzuki_era_kanji_and_codes(tmp_path, shibuya):
    header = [
        "年度",
        "学校番号",
        "学校名称",
        "学年",
        "学級",
        "番号",
        "個人番号",
        "姓",
        "名",
        "姓カナ",
        "名カナ",
        "性別",
        "生年月日",
    ]
    roster_path = write_csv(
        tmp_path / "名簿.csv",
        header,
        [
            [
                "2025",
                SCHOOL,
                "渋谷区立第一小学校",
                "3",
                "1",
                "1",
                "S1",
                "髙橋",
                "一郎",
                "タカハシ",
                "イチロウ",
                "1",
                "平成29年5月10日",
            ]
        ],
    )
    attendance_path = write_csv(
        tmp_path / "出欠.csv",
        ["個人番号", "年月日", "出欠区分", "事由"],
        [
            ["S1", "令和7年4月7日", "欠席（病気）", "発熱～頭痛"],
            ["S1", "令和７年４月８日", "出席", ""],
        ],
    )
    run = do_import("suzuki", shibuya, actor=TEST_ACTOR, paths=[roster_path, attendance_path])
    assert (run.status, run.rows_rejected) == ("succeeded", 0), quarantine(run, shibuya)
    with in_tenant(shibuya):
        statuses = dict(AttendanceDay.objects.values_list("date", "status"))
        assert statuses == {dt.date(2025, 4, 7): "absent_illness", dt.date(2025, 4, 8): "present"}
        assert AttendanceDay.objects.get(date=dt.date(2025, 4, 7)).reason == "発熱～頭痛"
