"""The statements that run on a Citus coordinator as they do on PostgreSQL (docs/scaling.md).

Citus cannot be installed here, so every statement sent while an import (with a pupil
missing from the roster), a re-import with changed marks, an opt-out, a purge and a rollup
refresh run is captured at the driver and checked for the shapes a coordinator refuses or
miscounts; and the migrations for several statements in one operation. Tried on a real
Citus 13.2 cluster, each shape below failed an import, an opt-out or onboarding:

- an INSERT…SELECT into a tenant table whose own SELECT joins ("the query contains a join
  that requires repartitioning"): the joins go in a subquery, ``SELECT * FROM (…) q``;
- a correlated EXISTS / NOT EXISTS against a tenant table from a query on the (local)
  staging tables ("direct joins between distributed and local tables are not supported"):
  anti-joins instead;
- a count taken from ``cursor.rowcount`` of INSERT…SELECT…ON CONFLICT: the coordinator
  reports the rows selected, not inserted (citus#3377), so changed rows went unapplied:
  counts come from RETURNING;
- a migration operation holding several statements ("cannot insert multiple commands into a
  prepared statement").
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import psycopg
import pytest
import sqlparse
from citus_support import on_citus
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunSQL, SeparateDatabaseAndState

from renkei.accounts import policy
from renkei.connectors.pipeline import do_import
from renkei.connectors.staging import is_unique_violation
from renkei.demo.synth import generate
from renkei.edudata.models import AttendanceDay, Student
from renkei.edudata.privacy import do_purge_expired, do_record_opt_out
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant
from renkei.tenants.schema import tenant_ddl

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db

RENKEI = Path(__file__).resolve().parent.parent / "renkei"


# the check ---------------------------------------------------------------------------------


def _plain(sql: str) -> str:
    """``sql`` without comments, string literals and dollar-quoted bodies (their text could
    look like SQL), whitespace collapsed."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"\$(\w*)\$.*?\$\1\$", "''", sql, flags=re.S)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return " ".join(sql.split())


def _group_end(sql: str, start: int) -> int:
    """The end of the parenthesized group ``start`` is in (or of the text)."""
    depth = 0
    for i in range(start, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            if depth == 0:
                return i
            depth -= 1
    return len(sql)


def _top_level(sql: str) -> str:
    """``sql`` with every parenthesized group emptied: what is left is its own level."""
    out, depth = [], 0
    for c in sql:
        if c == ")":
            depth -= 1
        if depth == 0:
            out.append(c)
        if c == "(":
            depth += 1
    return "".join(out)


INSERT = re.compile(r'\bINSERT\s+INTO\s+(?:"?\w+"?\.)?"?(\w+)"?', re.I)
FROM_CLAUSE = re.compile(
    r"\bFROM\b(.*?)(?=\bWHERE\b|\bGROUP\b|\bHAVING\b|\bWINDOW\b|\bORDER\b|\bLIMIT\b"
    r"|\bON CONFLICT\b|\bRETURNING\b|$)",
    re.I,
)
EXISTS = re.compile(r"\bEXISTS\s*\(", re.I)
TABLE_READ = re.compile(r'\b(?:FROM|JOIN)\s+"?(\w+)', re.I)


def citus_refuses(sql: str) -> list[str]:
    """What in ``sql`` a Citus coordinator refuses or miscounts (empty: nothing)."""
    sql = _plain(sql)
    found = []
    for insert in INSERT.finditer(sql):
        table = insert.group(1)
        if table.startswith("stg_"):  # a temporary table: local to the coordinator
            continue
        own = _top_level(sql[insert.end() : _group_end(sql, insert.end())])
        own = re.sub(r"^\s*\(\)", "", own)  # the column list
        if not re.match(r"\s*SELECT\b", own, re.I):
            continue  # INSERT … VALUES
        from_clause = FROM_CLAUSE.search(own)
        if from_clause and re.search(r"\bJOIN\b|,", from_clause.group(1), re.I):
            found.append(f"INSERT…SELECT into {table} joins in its own SELECT: {sql}")
        if re.search(r"\bON CONFLICT\b", own, re.I) and not re.search(r"\bRETURNING\b", own, re.I):
            found.append(f"INSERT…SELECT…ON CONFLICT into {table} counted without RETURNING: {sql}")
    if "stg_" in sql:
        for exists in EXISTS.finditer(sql):
            inside = sql[exists.end() : _group_end(sql, exists.end())]
            tenant = [t for t in TABLE_READ.findall(inside) if not t.startswith("stg_")]
            if tenant:
                found.append(f"EXISTS on {tenant} from a query on staging tables: {sql}")
    return found


def test_the_shape_check_sees_what_it_must_refuse():
    refused = [
        # the rollup as it was
        "INSERT INTO edudata_nursevisitmonth (school_id, visits) SELECT st.school_id, "
        "count(*) FROM edudata_nursevisit v JOIN edudata_student st ON st.id = v.student_id "
        "GROUP BY 1",
        "INSERT INTO edudata_m365appmonth (app) SELECT u.app FROM edudata_m365dailyusage u, "
        "edudata_student st WHERE st.id = u.student_id",
        # the set-aside and the quarantine of unknown pupils as they were
        "INSERT INTO stg_attendance_set_aside SELECT * FROM stg_attendance_1 s WHERE NOT EXISTS"
        " (SELECT 1 FROM (SELECT source_id AS ref, student_id FROM edudata_studentidentity "
        "WHERE source_system = 'c4th') r WHERE r.ref = s.ref)",
        "SELECT count(*) FROM stg_attendance_set_aside s WHERE EXISTS (SELECT 1 FROM "
        "edudata_studentidentity r WHERE r.source_id = s.ref)",
        # counted from rowcount
        "INSERT INTO edudata_attendanceday (student_id, date) SELECT * FROM (SELECT "
        "r.student_id, s.date FROM stg_attendance_1 s JOIN edudata_studentidentity r "
        "ON r.source_id = s.ref) q ON CONFLICT (student_id, date) DO NOTHING",
    ]
    for sql in refused:
        assert len(citus_refuses(sql)) == 1, sql
    accepted = [
        "INSERT INTO edudata_nursevisitmonth (school_id, visits) SELECT * FROM (SELECT "
        "st.school_id, count(*) FROM edudata_nursevisit v JOIN edudata_student st "
        "ON st.id = v.student_id GROUP BY 1) q",
        "INSERT INTO stg_attendance_set_aside SELECT s.* FROM stg_attendance_1 s LEFT JOIN "
        "edudata_studentidentity r ON r.source_id = s.ref WHERE r.source_id IS NULL RETURNING 1",
        "WITH inserted AS (INSERT INTO edudata_attendanceday (student_id, date) SELECT * FROM "
        "(SELECT r.student_id, s.date FROM stg_attendance_1 s JOIN edudata_studentidentity r "
        "ON r.source_id = s.ref) q ON CONFLICT (student_id, date) DO NOTHING RETURNING 1) "
        "SELECT count(*) FROM inserted",
        "SELECT EXISTS (SELECT 1 FROM stg_attendance s GROUP BY s.ref HAVING count(*) > 1)",
        "INSERT INTO edudata_quarantinedrow (reason) VALUES ('a JOIN b, c') RETURNING id",
        "DROP TABLE IF EXISTS stg_attendance, stg_attendance_set_aside CASCADE",
    ]
    for sql in accepted:
        assert citus_refuses(sql) == [], sql


# the statements the pipeline and the rollups send ------------------------------------------


@pytest.fixture
def captured(monkeypatch) -> list[str]:
    """Every statement sent through psycopg (the ORM's, raw SQL, COPY) while the test runs."""
    log: list[str] = []

    def wrap(name):
        original = getattr(psycopg.Cursor, name)

        def capture(self, query, *args, **kwargs):
            if not isinstance(query, (str, bytes)):
                query = query.as_string(None)  # psycopg.sql.Composed
            log.append(query.decode() if isinstance(query, bytes) else query)
            return original(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, capture)

    for name in ("execute", "executemany", "copy"):
        wrap(name)
    return log


ROSTER_HEADER = "年度 学校コード 学校名 学年 組 出席番号 児童生徒ID 氏名（姓） 氏名（名） ふりがな（姓） ふりがな（名） 性別 生年月日"
PUPIL = (
    "2025 B113211300012 渋谷区立第一小学校 3 1 {n} C00{n} 髙橋 一郎 たかはし いちろう 男 H29.5.10"
)
ROSTER = [ROSTER_HEADER.split(), *(PUPIL.format(n=n).split() for n in range(1, 4))]
DAYS = [(pupil, day) for pupil in ("C001", "C002", "C003") for day in range(7, 12)]


def _csv(path: Path, rows) -> Path:
    with path.open("w", encoding="cp932", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _attendance(path: Path, marks: dict[tuple[str, int], str], unknown: bool = False) -> Path:
    rows = [["学校コード", "児童生徒ID", "日付", "出欠", "理由"]]
    rows += [["", pupil, f"R7.4.{day}", marks.get((pupil, day), ""), ""] for pupil, day in DAYS]
    if unknown:  # a pupil on no roster
        rows.append(["", "C999", "R7.4.7", "病", ""])
    return _csv(path, rows)


def _import(municipality, *paths):
    run = do_import("c4th", municipality, actor=TEST_ACTOR, paths=list(paths))
    assert run.status == "succeeded", run.message
    return run


def test_a_reimport_with_changed_marks_applies_exactly_those(tmp_path, shibuya, captured):
    roster = _csv(tmp_path / "roster.csv", ROSTER)
    first = _import(shibuya, roster, _attendance(tmp_path / "a.csv", {}, unknown=True))
    assert (first.rows_rejected, first.rows_accepted) == (1, len(DAYS) + 3)
    with in_tenant(shibuya):
        before = dict(AttendanceDay.objects.values_list("id", "status"))
    assert set(before.values()) == {"present"}
    changed = {DAYS[0]: "病", DAYS[4]: "遅", DAYS[9]: "事"}

    _import(shibuya, _attendance(tmp_path / "b.csv", changed))

    with in_tenant(shibuya):
        after = dict(AttendanceDay.objects.values_list("id", "status"))
    assert sorted(after) == sorted(before)  # updated in place
    assert sorted(v for k, v in after.items() if before[k] != v) == sorted(
        ["absent_illness", "late", "absent_accident"]
    )
    # The count that decided the changes were applied came from RETURNING.
    on_conflict = [sql for sql in captured if "ON CONFLICT" in sql and "stg_attendance" in sql]
    assert on_conflict and all("RETURNING" in sql for sql in on_conflict)
    assert [found for sql in captured for found in citus_refuses(sql)] == []


# Citus's unique violation: SQLSTATE XX000, the constraint named as on the shard, as the
# coordinator passes a worker's error on. A trigger raises it here the first time a row meets
# a stored one (a sequence, which no rollback resets, makes it once).
SHARD_DUPLICATE = 'duplicate key value violates unique constraint "attendance_natural_key_102127"'
CITUS_DUPLICATE = f"""
CREATE SEQUENCE citus_like_raised;
CREATE FUNCTION citus_like_duplicate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM edudata_attendanceday
               WHERE student_id = NEW.student_id AND date = NEW.date)
       AND nextval('citus_like_raised') = 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = '{SHARD_DUPLICATE}';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER citus_like_duplicate BEFORE INSERT ON edudata_attendanceday
    FOR EACH ROW EXECUTE FUNCTION citus_like_duplicate();
"""


def test_a_duplicate_reported_as_citus_does_is_recognised(tmp_path, shibuya):
    roster = _csv(tmp_path / "roster.csv", ROSTER)
    _import(shibuya, roster, _attendance(tmp_path / "a.csv", {}))
    with in_tenant(shibuya), connection.cursor() as cursor:
        if not on_citus():  # a coordinator raises it itself
            cursor.execute(CITUS_DUPLICATE)
    _import(shibuya, _attendance(tmp_path / "b.csv", {DAYS[2]: "病"}))
    with in_tenant(shibuya):
        assert list(AttendanceDay.objects.exclude(status="present").values_list("status")) == [
            ("absent_illness",)
        ]
        if not on_citus():
            with connection.cursor() as cursor:
                cursor.execute("SELECT is_called FROM citus_like_raised")
                assert cursor.fetchone()[0]  # it was raised, and the import went on


@pytest.mark.parametrize(
    "sqlstate,message,recognised",
    [
        ("XX000", SHARD_DUPLICATE, True),
        ("XX000", SHARD_DUPLICATE.replace("_102127", ""), True),
        # another table's key; another error
        ("XX000", SHARD_DUPLICATE.replace("attendance", "identity"), False),
        ("XX000", "connection to the remote node worker-1:5432 failed", False),
        ("23505", "whatever the wording", True),
    ],
)
def test_unique_violations_are_known_by_sqlstate_or_constraint(
    shibuya, sqlstate, message, recognised
):
    with in_tenant(shibuya):
        with pytest.raises(DatabaseError) as raised, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(  # test constants, no quote in them
                    f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', "
                    f"MESSAGE = '{message}'; END $$"
                )
        assert is_unique_violation(raised.value, "edudata_attendanceday") is recognised


def test_long_constraint_names_are_known_as_citus_clips_them():
    from renkei.connectors.staging import _on_shard

    key = "a_unique_constraint_whose_name_is_long_enough_to_be_clipped_x"
    assert _on_shard(key[:40] + "_1a2b3c4d_102127", key)
    assert not _on_shard("another_constraint_1a2b3c4d_102127", key)


@pytest.mark.slow
def test_pipeline_opt_out_purge_and_rollups_keep_to_shapes_citus_runs(
    tmp_path, shibuya, make_user, captured
):
    data = tmp_path / "data"
    generate(shibuya.code, data, students=15, days=8)
    for connector, paths in (
        ("oneroster", [data / "oneroster"]),
        ("c4th", sorted((data / "c4th").glob("*.csv"))),
        ("msgraph", [data / "msgraph"]),
    ):
        run = do_import(connector, shibuya, actor=TEST_ACTOR, paths=paths)
        assert run.status == "succeeded", run.message
    # roster last: attendance rows wait for it, one pupil never comes
    roster = _csv(tmp_path / "roster.csv", ROSTER)
    _import(shibuya, _attendance(tmp_path / "a.csv", {}, unknown=True), roster)
    _import(shibuya, _attendance(tmp_path / "b.csv", {DAYS[1]: "病"}))
    admin = policy.principal_for(make_user("admin-citus", "tenant_admin", municipality=shibuya))
    with in_tenant(shibuya):
        do_record_opt_out(admin, shibuya, Student.objects.order_by("pk").first())
        do_purge_expired(shibuya, actor=TEST_ACTOR)

    sent = " ".join(captured)
    for shape in (
        "stg_attendance_set_aside",
        "ON CONFLICT",
        "edudata_quarantinedrow",
        "INSERT INTO edudata_nursevisitmonth",
        "INSERT INTO edudata_m365appmonth",
        "INSERT INTO edudata_assessmentbin",
        "INSERT INTO edudata_learningpupilmonth",
    ):
        assert shape in sent, shape  # the workload reached it
    assert [found for sql in captured for found in citus_refuses(sql)] == []


# migrations and code ------------------------------------------------------------------------


def _statements(sql: str) -> list[str]:
    return [s for s in sqlparse.split(sql) if sqlparse.format(s, strip_comments=True).strip()]


def _run_sql(operations):
    for operation in operations:
        if isinstance(operation, SeparateDatabaseAndState):
            yield from _run_sql(operation.database_operations)
        elif isinstance(operation, RunSQL):
            yield operation


def test_every_migration_operation_holds_one_statement():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    checked = 0
    for (app, name), migration in loader.disk_migrations.items():
        for operation in _run_sql(migration.operations):
            for sql in (operation.sql, operation.reverse_sql):
                if sql in (None, RunSQL.noop):
                    continue
                items = sql if isinstance(sql, (list, tuple)) else [sql]
                for item in items:  # a statement, or (statement, parameters)
                    text = item[0] if isinstance(item, (list, tuple)) else item
                    assert len(_statements(text)) == 1, f"{app}.{name}: {text}"
                    checked += 1
    assert checked >= 6  # the access log's and the audit trail's triggers at least
    for statement in tenant_ddl().statements:  # what onboarding replays
        assert len(_statements(statement)) == 1, statement


def test_no_count_is_taken_from_rowcount():
    """``cursor.rowcount`` of INSERT…SELECT through a coordinator counts rows selected."""
    users = [
        f"{path.relative_to(RENKEI)}:{n}"
        for path in sorted(RENKEI.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.rowcount\b", line)
    ]
    assert users == [], "count from RETURNING instead (tests/test_citus_shapes.py)"
