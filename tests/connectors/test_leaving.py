"""Leaving (卒業・転出・退学) from every roster source, end to end through the pipeline:
OneRoster (enrollment endDate, enabledUser, tobedeleted, a complete bulk set that no longer
lists a pupil; a delta is refused), C4th and スズキ校務 columns, re-enrolment, bad cells."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from renkei.connectors.builtin.oneroster import OneRosterConnector
from renkei.connectors.pipeline import do_import
from renkei.connectors.records import RosterScopeRecord
from renkei.connectors.sdk import RunState
from renkei.demo.synth import ONEROSTER_HEADERS
from renkei.edudata.models import QuarantinedRow, Student, StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
B1, C1 = "B113211300019", "C113211300017"  # 小学校, 中学校 (check digits right)
ORG = {B1: "0b000000-0000-4000-8000-0000000000b1", C1: "0c000000-0000-4000-8000-0000000000c1"}
NAMES = {B1: "渋谷区立第一小学校", C1: "渋谷区立第一中学校"}


def pupil_id(n: int) -> str:
    return f"7a000000-0000-4000-8000-{n:012d}"


# -- a small OneRoster bulk set ---------------------------------------------------------------


def oneroster_set(folder: Path, year: int, pupils: list[dict], *, users_mode="bulk") -> Path:
    """A OneRoster 1.2 set of ``year`` for 渋谷区: both schools, one homeroom per school and
    grade of the pupils. A pupil: {n, school, grade, end?, enabled?, status?, grade_code?}."""
    folder.mkdir(parents=True, exist_ok=True)
    session = f"5e0b1c2d-0000-4000-8000-00000000{year:04d}"
    rows: dict[str, list[dict]] = {name: [] for name in ONEROSTER_HEADERS}
    rows["academicSessions"].append(
        dict(
            sourcedId=session,
            title=f"{year}年度",
            type="schoolYear",
            startDate=f"{year}-04-01",
            endDate=f"{year + 1}-03-31",
            schoolYear=year,
        )
    )
    rows["orgs"] = [
        dict(sourcedId=ORG[code], name=NAMES[code], type="school", identifier=code)
        for code in (B1, C1)
    ]
    classes = {}
    for p in pupils:
        key = (p["school"], p["grade"])
        if key not in classes:
            classes[key] = f"c1a55000-0000-4000-8000-{year:04d}{len(classes):08d}"
            level = "P" if p["school"] == B1 else "J"
            rows["classes"].append(
                dict(
                    sourcedId=classes[key],
                    title=f"{p['grade']}年1組",
                    grades=f"{level}{p['grade']}",
                    classType="homeroom",
                    schoolSourcedId=ORG[p["school"]],
                    termSourcedIds=session,
                )
            )
        level = "P" if p["school"] == B1 else "J"
        rows["users"].append(
            dict(
                sourcedId=pupil_id(p["n"]),
                status=p.get("status", ""),
                enabledUser=p.get("enabled", "true"),
                username=f"s{p['n']:07d}@m131130.example.ed.jp",
                givenName="太郎",
                familyName="山田",
                grades=p.get("grade_code", f"{level}{p['grade']}"),
                primaryOrgSourcedId=ORG[p["school"]],
            )
        )
        rows["roles"].append(
            dict(
                sourcedId=f"4e000000-0000-4000-8000-{p['n']:012d}",
                userSourcedId=pupil_id(p["n"]),
                roleType="primary",
                role="student",
                orgSourcedId=ORG[p["school"]],
            )
        )
        rows["enrollments"].append(
            dict(
                sourcedId=f"e0000000-0000-4000-8000-{p['n']:012d}",
                classSourcedId=classes[key],
                schoolSourcedId=ORG[p["school"]],
                userSourcedId=pupil_id(p["n"]),
                role="student",
                primary="false",
                beginDate=f"{year}-04-01",
                endDate=p.get("end", f"{year + 1}-03-31"),
            )
        )
    files = ("academicSessions", "orgs", "classes", "users", "roles", "enrollments")
    for name in files:
        header = [c.replace("metadata_jp_", "metadata.jp.") for c in ONEROSTER_HEADERS[name]]
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows[name]:
                writer.writerow([row.get(c, "") for c in ONEROSTER_HEADERS[name]])
    modes = {name: "bulk" for name in files} | {"users": users_mode}
    (folder / "manifest.csv").write_text(
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\n"
        + "".join(f"file.{name},{mode}\n" for name, mode in modes.items()),
        encoding="utf-8",
    )
    return folder


def leavings(municipality, system="oneroster") -> dict[str, tuple]:
    """source id -> (left_on, leaving_reason) of every pupil known to ``system``."""
    with in_tenant(municipality):
        return {
            source_id: (left_on, reason)
            for source_id, left_on, reason in StudentIdentity.objects.filter(
                source_system=system
            ).values_list("source_id", "student__left_on", "student__leaving_reason")
        }


def import_oneroster(municipality, folder):
    run = do_import("oneroster", municipality, actor=ACTOR, paths=[folder])
    assert run.status == "succeeded", run.message
    return run


FOUR = [
    dict(n=1, school=B1, grade=3),
    dict(n=2, school=B1, grade=6),  # 6年: graduates at the end of 2025年度
    dict(n=3, school=C1, grade=3),  # 中3: graduates
    dict(n=4, school=C1, grade=1),
]


def test_a_complete_bulk_set_declares_its_schools_years_and_every_user_listed(tmp_path):
    folder = oneroster_set(tmp_path / "s", 2025, FOUR)
    connector = OneRosterConnector()
    items = list(connector.read(connector.Config(paths=[folder]), RunState()))
    [scope] = [i for i in items if isinstance(i, RosterScopeRecord)]
    assert scope.school_codes == [B1, C1] and scope.school_years == [2025]
    assert scope.listed == [pupil_id(n) for n in (1, 2, 3, 4)]
    assert items[-1] is scope  # after every pupil and enrollment


def test_year_end_of_the_last_grade_is_graduation_and_a_newer_roster_re_enrols(tmp_path, shibuya):
    # given 2025年度 whose enrollments end with the year (31 March 2026)
    first = import_oneroster(shibuya, oneroster_set(tmp_path / "2025", 2025, FOUR))
    end = dt.date(2026, 3, 31)
    # then the last grades (小6, 中3) graduated that day; the others just go up a grade
    assert leavings(shibuya) == {
        pupil_id(1): (None, ""),
        pupil_id(2): (end, "graduated"),
        pupil_id(3): (end, "graduated"),
        pupil_id(4): (None, ""),
    }
    assert first.message == ""
    # the set's declaration is no row: 2 schools, 4 homerooms, 4 pupils, 4 enrollments
    assert (first.rows_read, first.rows_accepted) == (14, 14)
    # when 2026年度 lists the 小6 at the 中学校 (進学), and no longer lists the 中3
    run = import_oneroster(
        shibuya,
        oneroster_set(
            tmp_path / "2026",
            2026,
            [
                dict(n=1, school=B1, grade=4, end=""),
                dict(n=2, school=C1, grade=1, end=""),
                dict(n=4, school=C1, grade=2, end=""),
            ],
        ),
    )
    # then the 小6 is enrolled again (re-enrolment), the graduate stays graduated
    assert leavings(shibuya) == {
        pupil_id(1): (None, ""),
        pupil_id(2): (None, ""),
        pupil_id(3): (end, "graduated"),
        pupil_id(4): (None, ""),
    }
    assert "1 人が新しい年度の名簿に在籍として載っていたため、再在籍として" in run.message


def test_a_bulk_set_that_no_longer_lists_a_pupil_means_they_left(tmp_path, shibuya):
    everyone = [dict(p, end="") for p in FOUR]  # enrollments without an end
    import_oneroster(shibuya, oneroster_set(tmp_path / "a", 2025, everyone))
    assert {v for v in leavings(shibuya).values()} == {(None, "")}
    # when the next 2025年度 bulk set no longer lists pupil 4 (中1, mid-year)
    run = import_oneroster(shibuya, oneroster_set(tmp_path / "b", 2025, everyone[:3]))
    # then pupil 4 transferred out, on the import's day (the set does not say when)
    today = timezone.localdate()
    assert leavings(shibuya)[pupil_id(4)] == (today, "transferred")
    assert {k: v for k, v in leavings(shibuya).items() if v[0]} == {
        pupil_id(4): (today, "transferred")
    }
    assert "名簿（一括）に載らなくなった児童生徒 1 人を離籍としました（転出 1 人）" in run.message
    # and a 2026年度 set without pupils 1 and 3: they left at the end of 2025年度, the 中3
    # graduated, the 小3 transferred (a newer year's set is the truth for 2026 only)
    run = import_oneroster(
        shibuya, oneroster_set(tmp_path / "c", 2026, [dict(n=2, school=C1, grade=1, end="")])
    )
    end = dt.date(2026, 3, 31)
    assert leavings(shibuya) == {
        pupil_id(1): (end, "transferred"),
        pupil_id(2): (None, ""),
        pupil_id(3): (end, "graduated"),
        pupil_id(4): (today, "transferred"),  # known already: kept
    }
    assert "2 人を離籍としました（卒業 1 人・転出 1 人）" in run.message


def test_an_older_bulk_set_re_imported_leaves_nobody_enrolled_later(tmp_path, shibuya):
    old = oneroster_set(tmp_path / "2025", 2025, [dict(n=1, school=B1, grade=3, end="")])
    import_oneroster(shibuya, old)
    newer = [dict(n=1, school=B1, grade=4, end=""), dict(n=5, school=B1, grade=1, end="")]
    import_oneroster(shibuya, oneroster_set(tmp_path / "2026", 2026, newer))
    # when last year's set comes again: it does not list pupil 5, enrolled in 2026年度
    import_oneroster(shibuya, old)
    assert leavings(shibuya) == {pupil_id(1): (None, ""), pupil_id(5): (None, "")}


def test_a_delta_set_omitting_pupils_is_refused_and_leaves_nobody(tmp_path, shibuya):
    import_oneroster(shibuya, oneroster_set(tmp_path / "bulk", 2025, FOUR))
    before = leavings(shibuya)
    delta = oneroster_set(tmp_path / "delta", 2025, FOUR[:1], users_mode="delta")
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[delta])
    assert run.status == "failed"
    assert "file.users が「delta」です。差分（delta）には対応していません" in run.message
    assert leavings(shibuya) == before  # nothing left, nothing lost


def test_a_user_row_with_an_error_is_not_taken_for_a_leaving(tmp_path, shibuya):
    everyone = [dict(p, end="") for p in FOUR]
    import_oneroster(shibuya, oneroster_set(tmp_path / "a", 2025, everyone))
    broken = [*everyone[:3], dict(everyone[3], grade_code="X9")]  # pupil 4's row is rejected
    run = import_oneroster(shibuya, oneroster_set(tmp_path / "b", 2025, broken))
    assert run.rows_rejected >= 1
    assert leavings(shibuya)[pupil_id(4)] == (None, "")


def test_a_pupil_marked_tobedeleted_left_even_when_the_row_is_too_sparse_to_read(tmp_path, shibuya):
    everyone = [dict(p, end="") for p in FOUR]
    import_oneroster(shibuya, oneroster_set(tmp_path / "a", 2025, everyone))
    # pupil 1's row is whole (小3), pupil 4's has nothing but its id and status
    marked = [dict(everyone[0], status="tobedeleted"), *everyone[1:]]
    folder = oneroster_set(tmp_path / "b", 2025, marked)
    users = folder / "users.csv"
    lines = users.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split(","))
    lines[-1] = ",".join([pupil_id(4), "tobedeleted"] + [""] * (width - 2))
    users.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = import_oneroster(shibuya, folder)
    today = timezone.localdate()
    assert leavings(shibuya)[pupil_id(1)] == (today, "transferred")
    assert leavings(shibuya)[pupil_id(4)] == (today, "transferred")  # no longer listed
    with in_tenant(shibuya):
        [warning] = QuarantinedRow.objects.filter(run=run, kind="warning", file="users.csv")
        rejected = list(QuarantinedRow.objects.filter(run=run, kind="error"))
    assert warning.line == 5
    assert warning.reason.startswith("削除予定（tobedeleted）の児童生徒の行を読めないため")
    # only pupil 4's enrollment, still in enrollments.csv, is refused
    assert [(q.file, q.column) for q in rejected] == [("enrollments.csv", "userSourcedId")]


def test_an_enrollment_ending_mid_year_is_a_transfer_on_that_day(tmp_path, shibuya):
    pupils = [dict(n=1, school=B1, grade=3, end="2025-10-15"), dict(n=2, school=B1, grade=6)]
    import_oneroster(shibuya, oneroster_set(tmp_path / "s", 2025, pupils))
    assert leavings(shibuya)[pupil_id(1)] == (dt.date(2025, 10, 15), "transferred")


def test_a_disabled_account_is_a_leaving_dated_once(tmp_path, shibuya):
    pupils = [dict(n=1, school=B1, grade=3, end="", enabled="false")]
    folder = oneroster_set(tmp_path / "s", 2025, pupils)
    import_oneroster(shibuya, folder)
    assert leavings(shibuya)[pupil_id(1)] == (timezone.localdate(), "transferred")
    # the day is set once: the nightly re-import does not move it (retention counts from it)
    with in_tenant(shibuya):
        Student.objects.filter(identities__source_id=pupil_id(1)).update(
            left_on=dt.date(2025, 9, 1)
        )
    import_oneroster(shibuya, folder)
    assert leavings(shibuya)[pupil_id(1)] == (dt.date(2025, 9, 1), "transferred")


# -- C4th and スズキ校務 -----------------------------------------------------------------------

C4TH_HEADER = [
    "年度",
    "学校コード",
    "学校名",
    "学年",
    "組",
    "出席番号",
    "児童生徒ID",
    "氏名（姓）",
    "氏名（名）",
    "性別",
]


def c4th_roster(path: Path, year: int, rows: list[tuple], leaving_columns=()) -> Path:
    """rows: (id, school, grade, *cells of ``leaving_columns``)."""
    with path.open("w", encoding="cp932", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*C4TH_HEADER, *leaving_columns])
        for n, (pid, school, grade, *cells) in enumerate(rows, 1):
            writer.writerow(
                [year, school, NAMES[school], grade, 1, n, pid, "山田", "太郎", "男", *cells]
            )
    return path


def import_vendor(municipality, vendor, path):
    return do_import(vendor, municipality, actor=ACTOR, paths=[path])


def test_c4th_columns_graduation_transfer_and_withdrawal(tmp_path, shibuya):
    path = c4th_roster(
        tmp_path / "名簿.csv",
        2025,
        [
            ("C1", C1, 3, "R8.3.19", "", ""),
            ("C2", C1, 2, "", "2025/10/1", ""),
            ("C3", C1, 2, "", "", "令和7年11月5日"),
            ("C4", C1, 2, "", "", ""),
        ],
        ("卒業日", "転出日", "退学日"),
    )
    run = import_vendor(shibuya, "c4th", path)
    assert (run.status, run.rows_rejected) == ("succeeded", 0)
    assert leavings(shibuya, "c4th") == {
        "C1": (dt.date(2026, 3, 19), "graduated"),
        "C2": (dt.date(2025, 10, 1), "transferred"),
        "C3": (dt.date(2025, 11, 5), "withdrew"),
        "C4": (None, ""),
    }
    # a roster without the columns, or with them empty, erases none of it
    import_vendor(shibuya, "c4th", c4th_roster(tmp_path / "毎晩.csv", 2025, [("C1", C1, 3)]))
    assert leavings(shibuya, "c4th")["C1"] == (dt.date(2026, 3, 19), "graduated")


def test_c4th_a_newer_years_roster_re_enrols_a_left_pupil(tmp_path, shibuya):
    import_vendor(
        shibuya,
        "c4th",
        c4th_roster(tmp_path / "2025.csv", 2025, [("C1", B1, 6, "R8.3.19")], ("卒業日",)),
    )
    assert leavings(shibuya, "c4th")["C1"] == (dt.date(2026, 3, 19), "graduated")
    # the same year again: still left (not a newer year)
    import_vendor(shibuya, "c4th", c4th_roster(tmp_path / "again.csv", 2025, [("C1", B1, 6)]))
    assert leavings(shibuya, "c4th")["C1"] == (dt.date(2026, 3, 19), "graduated")
    run = import_vendor(shibuya, "c4th", c4th_roster(tmp_path / "2026.csv", 2026, [("C1", C1, 1)]))
    assert leavings(shibuya, "c4th")["C1"] == (None, "")
    assert "離籍していた児童生徒 1 人が" in run.message


def quarantined(run, municipality):
    with in_tenant(municipality):
        return list(
            QuarantinedRow.objects.filter(run=run, kind="error").values_list(
                "file", "line", "column", "value", "reason"
            )
        )


def test_c4th_an_invalid_transfer_date_is_a_row_error_with_line_and_column(tmp_path, shibuya):
    path = c4th_roster(
        tmp_path / "名簿.csv",
        2025,
        [("C1", C1, 2, "", "R7.13.1"), ("C2", C1, 2, "", ""), ("C3", C1, 2, "R8.3.19", "R8.1.9")],
        ("卒業日", "転出日"),
    )
    run = import_vendor(shibuya, "c4th", path)
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (3, 1, 2)
    # (each bad row's enrollment is refused too: its pupil is not on the roster)
    found = {
        (line, column): (value, reason)
        for _, line, column, value, reason in quarantined(run, shibuya)
    }
    assert found[(2, "転出日")] == ("R7.13.1", found[(2, "転出日")][1])
    assert "R7.13.1" in found[(2, "転出日")][1]  # the reason names the bad date
    assert found[(4, "転出日")] == (
        "2026-01-09",
        "卒業日と転出日の両方が入っています。離籍はどちらか一つにしてください",
    )
    assert {line for line, _ in found} == {2, 4}
    # the bad rows change nobody (nothing half-written): only C2 is on the roster
    assert set(leavings(shibuya, "c4th")) == {"C2"}


def test_a_leaving_date_more_than_a_year_ahead_is_refused_a_closer_one_is_a_plan(tmp_path, shibuya):
    today = timezone.localdate()
    soon, far = today + dt.timedelta(days=100), today + dt.timedelta(days=400)
    path = c4th_roster(
        tmp_path / "名簿.csv",
        2025,
        [("C1", C1, 3, soon.strftime("%Y/%m/%d")), ("C2", C1, 3, far.strftime("%Y/%m/%d"))],
        ("卒業日",),
    )
    run = import_vendor(shibuya, "c4th", path)
    assert (run.rows_accepted, run.rows_rejected) == (1, 1)
    [(line, reason)] = [(q[1], q[4]) for q in quarantined(run, shibuya) if q[2] == "卒業日"]
    assert line == 3 and "1 年以上先の日付です" in reason
    assert leavings(shibuya, "c4th") == {"C1": (soon, "graduated")}


SUZUKI_HEADER = ["年度", "学校番号", "学校名称", "学年", "学級", "番号", "個人番号", "姓", "名"]


def test_suzuki_columns_in_japanese_era(tmp_path, shibuya):
    path = tmp_path / "名簿.csv"
    with path.open("w", encoding="cp932", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*SUZUKI_HEADER, "性別", "卒業年月日", "転出年月日"])
        writer.writerow([2025, C1, NAMES[C1], 3, 1, 1, "S1", "山田", "太郎", "1", "R8.3.19", ""])
        writer.writerow([2025, C1, NAMES[C1], 1, 1, 2, "S2", "山田", "花子", "2", "", "R7.9.30"])
    run = import_vendor(shibuya, "suzuki", path)
    assert (run.status, run.rows_rejected) == ("succeeded", 0)
    assert leavings(shibuya, "suzuki") == {
        "S1": (dt.date(2026, 3, 19), "graduated"),
        "S2": (dt.date(2025, 9, 30), "transferred"),
    }


def test_a_layout_with_a_movement_code_and_day(tmp_path, shibuya):
    # the documented alternative (renkei/connectors/mappings/c4th/roster.yaml): 異動区分 + 異動日
    mappings = tmp_path / "my-c4th"
    mappings.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "renkei/connectors/mappings/c4th/roster.yaml"
    text = shipped.read_text(encoding="utf-8")
    text = text.replace(
        "      graduation_date: {column: 卒業日, type: date, optional: true}\n"
        "      transfer_date: {column: 転出日, type: date, optional: true}\n"
        "      withdrawal_date: {column: 退学日, type: date, optional: true}\n",
        "      leaving_reason: {column: 異動区分, type: code, codes: leaving, optional: true}\n"
        "      left_on: {column: 異動日, type: date, optional: true}\n",
    ).replace(
        "codes:\n",
        'codes:\n  leaving: {卒業: graduated, 転出: transferred, 退学: withdrew, 転入: "", "": ""}\n',
    )
    (mappings / "roster.yaml").write_text(text, encoding="utf-8")
    path = c4th_roster(
        tmp_path / "名簿.csv",
        2025,
        [("C1", C1, 2, "転出", "R7.7.1"), ("C2", C1, 2, "転入", "R7.4.8"), ("C3", C1, 2, "", "")],
        ("異動区分", "異動日"),
    )
    run = do_import(
        "c4th", shibuya, actor=ACTOR, paths=[path], config={"mappings_dir": str(mappings)}
    )
    assert (run.status, run.rows_rejected) == ("succeeded", 0), quarantined(run, shibuya)
    assert leavings(shibuya, "c4th") == {
        "C1": (dt.date(2025, 7, 1), "transferred"),
        "C2": (None, ""),
        "C3": (None, ""),
    }
