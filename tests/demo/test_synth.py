"""The synthetic data generator: deterministic, realistic, and readable by our own connectors."""

from __future__ import annotations

import codecs
import collections
import csv
import datetime as dt
from pathlib import Path

import pytest

import renkei.connectors
from renkei.connectors.builtin.oneroster import OneRosterConnector
from renkei.connectors.eras import parse_date
from renkei.connectors.mapping import Mapping, choose_mapping, load_mappings
from renkei.connectors.records import StudentRecord
from renkei.connectors.sdk import RowError, RowWarning, RunState, csv_rows
from renkei.connectors.textio import detect_encoding
from renkei.demo.synth import (
    DRILL_HEADER,
    HOLIDAYS,
    LEARNING_DAYS,
    M365_HEADER,
    SUPPORTED_SCHOOL_YEARS,
    generate,
    school_codes,
    school_days,
    synthesize_c4th_attendance,
    write_c4th_attendance,
)
from renkei.demo.world import demo_school_codes

MAPPINGS = Path(renkei.connectors.__file__).parent / "mappings"
VENDOR_FILES = {
    "roster": "roster",
    "attendance": "attendance",
    "nurse_visits": "nurse_visits",
    "tests": "assessments",
    "evaluations": "evaluations",
}  # file -> mapping kind


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small but complete year: every term ends, every test happens."""
    out = tmp_path_factory.mktemp("synth-small")
    return out, generate("131130", out, students=90, days=250, seed=7)


@pytest.fixture(scope="module")
def plausible(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-2000")
    return out, generate("271004", out, students=2000, days=200, seed=3)


@pytest.fixture(scope="module")
def plausible_attendance(plausible):
    return read_csv(plausible[0] / "c4th" / "attendance.csv")[1:]


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def read_csv(path: Path, encoding: str = "cp932") -> list[list[str]]:
    with open(path, encoding=encoding, newline="") as f:
        return list(csv.reader(f))


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    first = generate("131041", tmp_path / "a", students=120, days=30, seed=1)
    generate("131041", tmp_path / "b", students=120, days=30, seed=1)
    generate("131041", tmp_path / "c", students=120, days=30, seed=2)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b
    assert set(a) == {str(p.relative_to(tmp_path / "a")) for p in first.files}
    assert a.keys() == c.keys()
    for name in (
        "oneroster/users.csv",
        "c4th/roster.csv",
        "c4th/attendance.csv",
        "suzuki/tests.csv",
        "xapi/statements.jsonl",
        "drill/ドリル学習履歴.csv",
    ):
        assert a[name] != c[name], name


def test_other_municipality_gives_other_pupils(tmp_path):
    generate("131130", tmp_path / "a", students=30, days=5)
    generate("131041", tmp_path / "b", students=30, days=5)
    assert tree(tmp_path / "a")["c4th/roster.csv"] != tree(tmp_path / "b")["c4th/roster.csv"]


# --- schools ---------------------------------------------------------------------------------


def test_demo_school_codes_come_first():
    codes = school_codes("131130", 9)
    assert codes[:3] == demo_school_codes("131130")
    assert [c[:2] for c in codes] == ["B1", "B1", "C1"] * 3
    assert len(set(codes)) == 9
    assert school_codes("131130", 2) == demo_school_codes("131130")[:2]


def test_schools_and_homerooms_scale_with_pupils(small, plausible):
    _, summary = small
    assert summary.schools == 3
    orgs = read_csv(small[0] / "oneroster" / "orgs.csv", "utf-8")
    assert [row[5] for row in orgs[2:]] == demo_school_codes("131130")
    assert orgs[1][4:6] == ["district", "131130"]
    _, big = plausible
    assert big.schools == 6
    assert big.students / big.homerooms == pytest.approx(30, abs=5)


# --- vendor files ----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["c4th", "suzuki"])
def test_vendor_files_are_cp932_with_the_mapping_columns_and_parse_without_errors(small, vendor):
    out, summary = small
    mappings = load_mappings(MAPPINGS / vendor)
    for file, kind in VENDOR_FILES.items():
        path = out / vendor / f"{file}.csv"
        assert detect_encoding(path) == "cp932"
        path.read_bytes().decode("cp932")  # strict
        header = read_csv(path)[0]
        mapping = choose_mapping(mappings, header, path.name)
        assert mapping.kind == kind
        assert set(mapping.required_columns()) <= set(header)
        assert set(header) <= known_columns(mapping), path
        records = collections.Counter()
        for row in csv_rows(path, required=mapping.required_columns()):
            for item in mapping.reader(row.header, path.name)(row):
                assert not isinstance(item, RowError), (path.name, item)
                records[item.stream] += 1
        assert records, path
    assert records["evaluations"] == summary.evaluation_rows


def known_columns(mapping: Mapping) -> set[str]:
    return {c for r in mapping.records for spec in r.fields.values() for c in spec.source_columns()}


def test_vendor_date_styles(small):
    out, _ = small
    c4th = read_csv(out / "c4th" / "attendance.csv")[1]
    suzuki = read_csv(out / "suzuki" / "attendance.csv")[1]
    assert c4th[1] == "R7.4.7" and suzuki[1] == "令和7年4月7日"
    assert read_csv(out / "c4th" / "nurse_visits.csv")[1][1].startswith("2025/")
    assert read_csv(out / "c4th" / "roster.csv")[1][12].count("/") == 2
    assert read_csv(out / "suzuki" / "roster.csv")[1][12].startswith(("平成", "令和"))


def test_same_story_in_c4th_and_suzuki(small):
    out, summary = small
    c4th = read_csv(out / "c4th" / "attendance.csv")[1:]
    suzuki = read_csv(out / "suzuki" / "attendance.csv")[1:]
    assert len(c4th) == len(suzuki) == summary.attendance_rows == 90 * summary.school_days
    to_suzuki = {
        "": "出席",
        "病": "欠席（病気）",
        "事": "欠席（事故）",
        "欠": "欠席（その他）",
        "遅": "遅刻",
        "早": "早退",
        "停": "出席停止",
        "忌": "忌引",
    }
    assert [to_suzuki[r[2]] for r in c4th] == [r[2] for r in suzuki]


# --- calendar --------------------------------------------------------------------------------


@pytest.mark.parametrize("year", SUPPORTED_SCHOOL_YEARS)
def test_school_calendar(year):
    days = school_days(year)
    assert 195 <= len(days) <= 205
    assert days[0].month == 4 and 7 <= days[0].day <= 9
    assert days[-1] <= dt.date(year + 1, 3, 24)
    assert all(d.weekday() < 5 and d not in HOLIDAYS for d in days)
    assert not [d for d in days if dt.date(year, 7, 21) <= d <= dt.date(year, 8, 31)]
    assert not [d for d in days if dt.date(year, 12, 26) <= d <= dt.date(year + 1, 1, 7)]
    assert dt.date(year, 5, 3) in HOLIDAYS and dt.date(year + 1, 1, 1) in HOLIDAYS


def test_unsupported_school_year_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2022"):
        generate("131130", tmp_path, students=10, days=5, school_year=2022)


def test_attendance_dates_are_school_days_from_april(small):
    out, summary = small
    dates = {parse_date(row[1]) for row in read_csv(out / "c4th" / "attendance.csv")[1:]}
    calendar = school_days(2025)
    assert sorted(dates) == calendar[: summary.school_days]
    assert min(dates) == dt.date(2025, 4, 7)


def test_days_limits_the_attendance(tmp_path):
    summary = generate("131130", tmp_path, students=40, days=12)
    dates = {parse_date(r[1]) for r in read_csv(tmp_path / "c4th" / "attendance.csv")[1:]}
    assert sorted(dates) == school_days(2025)[:12]
    assert summary.attendance_rows == 40 * 12


# --- plausibility ----------------------------------------------------------------------------


def test_attendance_rates_are_plausible(plausible, plausible_attendance):
    out, summary = plausible
    marks = collections.Counter()
    absences = collections.Counter()
    for pupil, _date, mark, _reason in plausible_attendance:
        marks[mark] += 1
        if mark in ("病", "事", "欠"):
            absences[pupil] += 1
    rows = sum(marks.values())
    assert rows == summary.attendance_rows == 2000 * 200
    attended = (marks[""] + marks["遅"] + marks["早"]) / rows
    assert 0.95 <= attended <= 0.99
    # some late arrivals, early leaves, 出席停止 and 忌引, all rare
    assert 0.002 < marks["遅"] / rows < 0.02
    assert 0.001 < marks["早"] / rows < 0.02
    assert 0 < marks["停"] / rows < 0.01
    assert 0 < marks["忌"] / rows < 0.002
    long_term = sum(1 for n in absences.values() if n >= 30)
    assert long_term == summary.long_term_absent
    assert 0.005 <= long_term / summary.students <= 0.06
    # most pupils are rarely absent
    pupils = {r[3] for r in read_csv(out / "c4th" / "roster.csv")[1:]}
    typical = sorted(absences.get(p, 0) for p in pupils)
    assert typical[len(typical) // 2] <= 6


def test_long_term_absence_is_concentrated_in_junior_high(plausible, plausible_attendance):
    out, _ = plausible
    junior = {r[3] for r in read_csv(out / "c4th" / "roster.csv")[1:] if r[1].startswith("C1")}
    absences = collections.Counter(r[0] for r in plausible_attendance if r[2] in ("病", "事", "欠"))
    long_term = {p for p, n in absences.items() if n >= 30}
    share_junior = len(long_term & junior) / len(junior)
    share_elementary = len(long_term - junior) / (2000 - len(junior))
    assert share_junior > 2 * share_elementary


def test_illness_comes_in_runs(plausible_attendance):
    by_pupil = collections.defaultdict(list)
    for pupil, _date, mark, _reason in plausible_attendance:
        by_pupil[pupil].append(mark == "病")
    runs = collections.Counter()
    for marks in by_pupil.values():
        current = 0
        for ill in [*marks, False]:
            if ill:
                current += 1
            elif current:
                runs[min(current, 5)] += 1
                current = 0
    assert runs[2] + runs[3] + runs[4] > 0.8 * runs[1]  # illness usually lasts 2-4 days


def test_scores_ratings_and_visits_are_in_range(plausible):
    out, summary = plausible
    tests = read_csv(out / "c4th" / "tests.csv")[1:]
    scores = [int(r[6]) for r in tests]
    assert all(0 <= s <= 100 for s in scores) and all(r[7] == "100" for r in tests)
    assert 60 < sum(scores) / len(scores) < 85
    assert {r[2] for r in tests} == {"定期考査", "単元テスト", "学力調査"}
    evaluations = read_csv(out / "c4th" / "evaluations.csv")[1:]
    junior = {r[3] for r in read_csv(out / "c4th" / "roster.csv")[1:] if r[1].startswith("C1")}
    ratings = collections.Counter(r[4] for r in evaluations if r[1] in junior)
    assert set(ratings) == {"1", "2", "3", "4", "5"} and ratings["3"] == max(ratings.values())
    assert {r[4] for r in evaluations if r[1] not in junior} == {""}
    assert {v for r in evaluations for v in r[5:8]} == {"A", "B", "C"}
    assert 1.5 < summary.nurse_visits / summary.students < 5


# --- OneRoster and M365 ----------------------------------------------------------------------


def test_oneroster_parses_with_zero_row_errors_and_links_every_pupil(small):
    out, summary = small
    connector = OneRosterConnector()
    items = list(connector.read(connector.Config(paths=[out / "oneroster"]), RunState()))
    assert [i for i in items if isinstance(i, RowError)] == []
    # The Japan profile finds only the demo's 学校コード: synthetic (renkei.demo.world), their
    # last digit is no check digit. Everything else follows the profile.
    findings = [i for i in items if isinstance(i, RowWarning)]
    assert {(w.origin.file, w.column) for w in findings} <= {("orgs.csv", "identifier")}
    assert all("JP-SCHOOLCODE" in w.reason for w in findings)
    items = [i for i in items if not isinstance(i, RowWarning)]
    streams = collections.Counter(i.stream for i in items)
    assert streams == {
        "schools": summary.schools,
        "homerooms": summary.homerooms,
        "students": summary.students,
        "enrollments": summary.students,
        "roster_scope": 1,  # a bulk set: the whole truth for its schools and year
    }
    pupils = [i for i in items if isinstance(i, StudentRecord)]
    c4th_ids = {r[3] for r in read_csv(out / "c4th" / "roster.csv")[1:]}
    suzuki_ids = {r[6] for r in read_csv(out / "suzuki" / "roster.csv")[1:]}
    for pupil in pupils:
        assert pupil.family_name_kana and pupil.given_name_kana
        assert pupil.principal_name.endswith("@m131130.example.ed.jp")
        assert set(pupil.other_ids) == {"c4th", "suzuki"}
        assert pupil.birth_year_month[:4].isdigit()
    assert {p.other_ids["c4th"] for p in pupils} == c4th_ids
    assert {p.other_ids["suzuki"] for p in pupils} == suzuki_ids


def test_birth_year_matches_grade(small):
    out, _ = small
    for row in read_csv(out / "c4th" / "roster.csv")[1:]:
        school, grade, birth = row[1], int(row[4]), dt.date(*map(int, row[12].split("/")))
        age_grade = grade + (6 if school.startswith("C1") else 0)
        assert dt.date(2019 - age_grade, 4, 2) <= birth <= dt.date(2020 - age_grade, 4, 1)


def test_m365_reports(small):
    out, summary = small
    files = sorted((out / "msgraph").glob("*.csv"))
    assert len(files) == 10
    upns = {
        r[4] for r in read_csv(out / "oneroster" / "users.csv", "utf-8")[1:] if r[4].startswith("s")
    }
    teams = rows = 0
    for path in files:
        assert path.read_bytes().startswith(codecs.BOM_UTF8)
        table = read_csv(path, "utf-8-sig")
        assert table[0] == M365_HEADER
        assert {r[1] for r in table[1:]} == upns
        assert {v for r in table[1:] for v in r[5:]} <= {"Yes", "No"}
        teams += sum(r[M365_HEADER.index("Teams")] == "Yes" for r in table[1:])
        rows += len(table) - 1
    assert rows == summary.m365_rows
    assert teams / rows > 0.5  # most pupils use Teams on a school day


# --- the benchmark helpers -------------------------------------------------------------------


def test_synthesize_c4th_attendance_writes_exactly_n_rows(tmp_path):
    path = tmp_path / "attendance.csv"
    assert synthesize_c4th_attendance(path, 12_345, seed=5) == 12_345
    mapping = choose_mapping(load_mappings(MAPPINGS / "c4th"), read_csv(path)[0], path.name)
    rows = list(csv_rows(path))
    assert len(rows) == 12_345
    assert not [
        i for r in rows for i in mapping.reader(r.header, path.name)(r) if isinstance(i, RowError)
    ]
    synthesize_c4th_attendance(tmp_path / "again.csv", 12_345, seed=5)
    assert path.read_bytes() == (tmp_path / "again.csv").read_bytes()


def test_write_c4th_attendance(tmp_path):
    path = tmp_path / "attendance.csv"
    rows = [
        ("C0000001", dt.date(2025, 4, 8), "", ""),
        ("C0000002", dt.date(2025, 4, 8), "病", "発熱"),
    ]
    assert write_c4th_attendance(path, rows) == 2
    assert path.read_bytes().decode("cp932") == (
        "児童生徒ID,日付,出欠,理由\r\nC0000001,R7.4.8,,\r\nC0000002,R7.4.8,病,発熱\r\n"
    )


def test_check_ins_read_with_zero_row_errors_for_pupils_of_the_roster(small):
    from renkei.connectors.builtin.vendor_csv import CheckinConnector

    out, summary = small
    connector = CheckinConnector()
    paths = sorted((out / "checkin").glob("*.csv"))
    items = list(connector.read(connector.Config(paths=paths), RunState()))
    assert [i for i in items if isinstance(i, RowError)] == []
    assert len(items) == summary.checkin_rows > 0
    report = sorted((out / "msgraph").glob("*.csv"))[0]
    upns = {r[1] for r in read_csv(report, encoding="utf-8-sig")[1:]}
    assert {i.principal_name for i in items} <= upns  # the accounts the roster knows
    moods = collections.Counter(i.answers["weather"] for i in items)
    assert moods["はれ"] > moods["あめ"] > 0 and set(moods) <= {
        "はれ",
        "くもり",
        "あめ",
        "かみなり",
    }


# --- learning logs -----------------------------------------------------------------------------


def roster_accounts(out: Path) -> dict[str, str]:
    """Pupils' accounts → their school's 学校コード, from the OneRoster users and orgs."""
    orgs = {r[0]: r[5] for r in read_csv(out / "oneroster" / "orgs.csv", "utf-8")[1:]}
    users = read_csv(out / "oneroster" / "users.csv", "utf-8")
    header = users[0]
    at = {name: header.index(name) for name in ("username", "primaryOrgSourcedId", "grades")}
    return {
        r[at["username"]]: orgs.get(r[at["primaryOrgSourcedId"]], "")
        for r in users[1:]
        if r[at["grades"]]
    }


def test_xapi_statements_read_with_zero_row_errors_for_the_last_weeks(small):
    from renkei.connectors.builtin.xapi import XapiConnector
    from renkei.connectors.records import LearningActivityRecord

    out, summary = small
    connector = XapiConnector()
    items = list(
        connector.read(connector.Config(paths=[out / "xapi" / "statements.jsonl"]), RunState())
    )
    assert [i for i in items if isinstance(i, RowError)] == []
    assert len(items) == summary.xapi_rows > 0
    assert all(isinstance(i, LearningActivityRecord) for i in items)
    schools = roster_accounts(out)
    assert {i.principal_name for i in items} <= set(schools)  # every actor is on the roster
    days = school_days(summary.school_year)[: summary.school_days][-LEARNING_DAYS:]
    assert {i.occurred_at.date() for i in items} == set(days)  # the last four weeks
    by_school = collections.defaultdict(set)
    for i in items:
        by_school[schools[i.principal_name][:2]].add(i.subject)
    assert by_school["B1"] == {"国語", "算数", "理科", "社会", "英語"}
    assert by_school["C1"] == {"国語", "数学", "理科", "社会", "英語"}
    minutes = [i.duration_seconds / 60 for i in items]
    assert 3 <= min(minutes) and max(minutes) <= 60 and 10 < sum(minutes) / len(minutes) < 25
    assert all(0 <= i.items_correct <= i.items_attempted for i in items)
    assert len({i.statement_id for i in items}) == len(items)


def test_drill_history_is_cp932_and_reads_with_zero_row_errors(small):
    from renkei.connectors.builtin.vendor_csv import DrillConnector

    out, summary = small
    path = out / "drill" / "ドリル学習履歴.csv"
    assert detect_encoding(path) == "cp932"
    assert read_csv(path)[0] == DRILL_HEADER
    connector = DrillConnector()
    items = list(connector.read(connector.Config(paths=[path]), RunState()))
    assert [i for i in items if isinstance(i, RowError)] == []
    assert len(items) == summary.drill_rows > 0
    assert {i.principal_name for i in items} <= set(roster_accounts(out))
    assert {i.subject for i in items} <= {"国語", "算数", "数学", "理科", "社会", "英語"}
    # one row per pupil, day and unit: nothing the import would call a duplicate
    keys = [(i.principal_name, i.occurred_at, i.object_id) for i in items]
    assert len(set(keys)) == len(keys)


# --- earlier school years --------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_years(tmp_path_factory):
    """2025 and the two years before: enough pupils for every grade of every school."""
    out = tmp_path_factory.mktemp("synth-three-years")
    return out, generate("131130", out, students=300, days=250, seed=5, past_years=2)


def roster_by_id(path: Path) -> dict[str, list[str]]:
    return {row[3]: row for row in read_csv(path)[1:]}


def level(row: list[str]) -> int:
    """Years at school of a C4th roster row: 1-6 小学校, 7-9 中学校."""
    return int(row[4]) + (6 if row[1].startswith("C1") else 0)


def test_earlier_years_have_the_same_pupils_a_grade_lower(three_years):
    out, summary = three_years
    assert [y.school_year for y in summary.past_years] == [2023, 2024]
    now = roster_by_id(out / "c4th" / "roster.csv")
    for back, year in ((1, 2024), (2, 2023)):
        then = roster_by_id(out / "past" / str(year) / "c4th" / "roster.csv")
        assert {row[0] for row in then.values()} == {str(year)}
        for pupil, row in now.items():
            if level(row) - back < 1:
                assert pupil not in then, (year, row)  # not at school yet: a new 1年生 since
                continue
            old = then[pupil]
            assert level(old) == level(row) - back, (year, row, old)
            assert old[7:13] == row[7:13], (year, row, old)  # the same child: name, sex, birth
            if row[1].startswith("B1") or level(old) >= 7:
                assert old[1] == row[1]  # the same school
            else:
                assert old[1].startswith("B1")  # a junior high pupil then at a primary school
        left = set(then) - set(now)
        assert left and all(level(then[p]) + back >= 10 for p in left)  # left junior high since
        # in 2025 each grade has its pupils; the year before, 1年 comes from nobody in 2025
        assert {level(r) for r in then.values()} == set(range(1, 10))


@pytest.mark.parametrize(("vendor", "grade_column"), [("c4th", 4), ("suzuki", 3)])
def test_leavers_have_a_graduation_date_on_their_last_roster(three_years, vendor, grade_column):
    # both default layouts carry 卒業 (column 13) and 転出 (column 14, empty: nobody moves)
    out, _ = three_years
    for year in (2023, 2024):
        rows = read_csv(out / "past" / str(year) / vendor / "roster.csv")[1:]
        last_day = school_days(year)[-1]
        graduating = [r for r in rows if r[13]]
        assert graduating and {r[1][:2] for r in graduating} == {"C1"}
        assert {r[grade_column] for r in graduating} == {"3"}
        assert {parse_date(r[13]) for r in graduating} == {last_day}
        assert len(graduating) == sum(
            1 for r in rows if r[1].startswith("C1") and r[grade_column] == "3"
        )
        assert not any(r[14] for r in rows)


@pytest.mark.parametrize("year", [2023, 2024])
@pytest.mark.parametrize("vendor", ["c4th", "suzuki"])
def test_earlier_years_parse_without_errors(three_years, vendor, year):
    out, summary = three_years
    [past] = [y for y in summary.past_years if y.school_year == year]
    mappings = load_mappings(MAPPINGS / vendor)
    records = collections.Counter()
    for file in VENDOR_FILES:
        path = out / "past" / str(year) / vendor / f"{file}.csv"
        assert path in past.files
        mapping = choose_mapping(mappings, read_csv(path)[0], path.name)
        for row in csv_rows(path, required=mapping.required_columns()):
            for item in mapping.reader(row.header, path.name)(row):
                assert not isinstance(item, RowError), (path, item)
                records[item.stream] += 1
    assert records["students"] == past.students
    assert records["attendance"] == past.attendance_rows == past.students * past.school_days
    assert records["assessments"] == past.test_rows
    assert records["evaluations"] == past.evaluation_rows


def test_earlier_years_are_whole_years_with_fewer_tests(three_years):
    out, summary = three_years
    current_tests = read_csv(out / "c4th" / "tests.csv")[1:]
    for past in summary.past_years:
        folder = out / "past" / str(past.school_year) / "c4th"
        dates = {parse_date(r[1]) for r in read_csv(folder / "attendance.csv")[1:]}
        assert sorted(dates) == school_days(past.school_year)  # the whole year, not `days`
        tests = read_csv(folder / "tests.csv")[1:]
        assert {r[0] for r in tests} == {str(past.school_year)}
        assert {r[2] for r in tests} == {"定期考査", "単元テスト", "学力調査"}
        assert {r[3] for r in tests if r[2] == "定期考査"} == {"1学期期末考査", "学年末考査"}
        assert len(tests) < len(current_tests) / 2
        terms = {r[2] for r in read_csv(folder / "evaluations.csv")[1:]}
        assert terms == {"1学期", "2学期", "3学期"}
        assert 0 < past.long_term_absent < past.students / 10
    # each year is drawn afresh, not a copy of another
    marks = [
        [r[2] for r in read_csv(out / "past" / str(y) / "c4th" / "attendance.csv")[1:]]
        for y in (2023, 2024)
    ]
    assert marks[0] != marks[1]


def test_past_years_do_not_change_the_current_year(tmp_path, three_years):
    out, _ = three_years
    generate("131130", tmp_path, students=300, days=250, seed=5)
    current = tree(tmp_path)
    assert {k: v for k, v in tree(out).items() if not k.startswith("past/")} == current


def test_past_years_before_the_known_calendar_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="2022"):
        generate("131130", tmp_path / "out", students=10, days=5, school_year=2024, past_years=2)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="past_years"):
        generate("131130", tmp_path / "out", students=10, days=5, past_years=-1)
