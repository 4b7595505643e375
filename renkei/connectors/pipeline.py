"""The import pipeline, in one place. Connectors only read; this module does the rest:

archive the raw input → let the connector decode and parse it → validate every record →
pseudonymize → bulk load into the tenant schema (COPY into staging tables, then upsert by
natural key) → refresh the rollups → record the run.

Guarantees: rows read = accepted + rejected, always; a bad row is quarantined with file, line,
column, value and reason, never dropped; re-running the same input changes nothing (upserts
touch only rows whose values differ); all data of a run commits in one transaction, so a run
killed at any point leaves nothing half-applied and a re-run ends in the state of one clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from operator import attrgetter
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from renkei.connectors import registry
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    Record,
    SchoolRecord,
    StudentRecord,
)
from renkei.connectors.sdk import Connector, RowError, RunState, SourceError
from renkei.edudata import rollups
from renkei.edudata.models import (
    Enrollment,
    Homeroom,
    ImportRun,
    School,
    Student,
    StudentIdentity,
    school_year_of,
)
from renkei.edudata.privacy import pseudonym_for
from renkei.platform.storage import get_storage
from renkei.tenants.context import in_tenant

log = logging.getLogger(__name__)

BATCH_ROWS = 20_000
MAX_QUARANTINED_VALUE = 1_000  # characters kept of an enormous field


# -- the pupil-keyed data streams: staged with COPY, resolved and upserted in SQL -----------

@dataclass(frozen=True)
class DataStream:
    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (record attribute = target column, staging SQL type)
    key: tuple[str, ...]                  # natural key besides student_id
    ref: str = "student_source_id"        # how the record names its pupil
    date_column: str | None = None        # for the school years to refresh
    label: str = ""                       # Japanese name of the natural key, for messages

    def __post_init__(self) -> None:
        getter = attrgetter(self.ref, *(name for name, _ in self.columns))
        json_at = [i + 1 for i, (_, t) in enumerate(self.columns) if t == "jsonb"]
        if json_at:
            def values(record: Record) -> tuple:
                row = list(getter(record))
                for i in json_at:
                    row[i] = json.dumps(row[i], ensure_ascii=False)
                return tuple(row)
            object.__setattr__(self, "values", values)
        else:
            object.__setattr__(self, "values", getter)

    # values(record) -> (pupil reference, *column values), set above for speed: every row
    # of every import goes through it.
    values: Callable[[Record], tuple] = field(init=False, repr=False, compare=False)


DATA_STREAMS = {s.name: s for s in (
    DataStream("attendance", "edudata_attendanceday",
               (("date", "date"), ("status", "text"), ("reason", "text")),
               key=("date",), date_column="date", label="同じ児童生徒・日付"),
    DataStream("health", "edudata_healthobservation",
               (("date", "date"), ("condition", "text"), ("symptoms", "text")),
               key=("date",), date_column="date", label="同じ児童生徒・日付"),
    DataStream("nurse_visits", "edudata_nursevisit",
               (("visited_at", "timestamptz"), ("reason_category", "text"), ("note", "text")),
               key=("visited_at",), date_column="visited_at", label="同じ児童生徒・来室日時"),
    DataStream("assessments", "edudata_assessmentresult",
               (("school_year", "int"), ("kind", "text"), ("name", "text"), ("subject", "text"),
                ("taken_on", "date"), ("score", "numeric"), ("max_score", "numeric")),
               key=("school_year", "kind", "name", "subject"), date_column="taken_on",
               label="同じ児童生徒・年度・種別・テスト名・教科"),
    DataStream("evaluations", "edudata_subjectevaluation",
               (("school_year", "int"), ("term", "text"), ("subject", "text"),
                ("rating", "int"), ("viewpoints", "jsonb")),
               key=("school_year", "term", "subject"), label="同じ児童生徒・年度・学期・教科"),
    DataStream("m365_usage", "edudata_m365dailyusage",
               (("date", "date"), ("app", "text"), ("active", "boolean")),
               key=("date", "app"), ref="principal_name", date_column="date",
               label="同じ利用者・日付・アプリ"),
)}
ROSTER_STREAMS = ("schools", "homerooms", "students", "enrollments")
_UNKNOWN = Origin(file="?", line=0)  # a record a connector yielded without its origin


class ImportFailed(Exception):
    """The run failed up front; ``run`` holds the message."""

    def __init__(self, run: ImportRun):
        super().__init__(run.message)
        self.run = run


# -- entry point ----------------------------------------------------------------------------

def run_import(connector: str | type[Connector], municipality, *, paths: Iterable[Path] = (),
               config: dict[str, Any] | None = None, started_by: str = "",
               progress: Callable[[int], None] | None = None) -> ImportRun:
    """Run one import into ``municipality``. Returns the run; its status says how it ended."""
    cls = registry.get(connector) if isinstance(connector, str) else connector
    paths = [Path(p) for p in paths]
    with in_tenant(municipality):
        with connection.cursor() as cursor:
            # One import at a time per tenant; the lock dies with the session (kill -9 too).
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))",
                           [f"renkei-import:{municipality.schema_name}"])
        try:
            ImportRun.objects.filter(status=ImportRun.Status.RUNNING).update(
                status=ImportRun.Status.INTERRUPTED, finished_at=timezone.now(),
                message="前回の取り込みは途中で止まりました。その変更は反映されていません。")
            run = ImportRun.objects.create(connector=cls.name, connector_version=cls.version,
                                           started_by=started_by)
            started = time.monotonic()
            try:
                _run(cls, municipality, run, paths, config or {}, progress)
            except SourceError as e:
                run.status, run.message = ImportRun.Status.FAILED, str(e)
                run.finished_at = timezone.now()
                run.save()
                log.info("import %s into %s failed up front", cls.name, municipality.code)
                return run
            log.info("import %s into %s: read %d accepted %d rejected %d in %.1f s", cls.name,
                     municipality.code, run.rows_read, run.rows_accepted, run.rows_rejected,
                     time.monotonic() - started)
            return run
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))",
                               [f"renkei-import:{municipality.schema_name}"])


def _run(cls: type[Connector], municipality, run: ImportRun, paths: list[Path],
         config: dict[str, Any], progress) -> None:
    try:
        cfg = cls.Config(**config, paths=paths) if paths else cls.Config(**config)
    except ValidationError as e:
        raise SourceError(f"コネクタ {cls.name} の設定が正しくありません: {e}") from e
    run.config = cls.redacted(cfg)
    run.files = _archive(municipality, run, paths)
    previous = (ImportRun.objects.filter(connector=cls.name, status=ImportRun.Status.SUCCEEDED)
                .exclude(pk=run.pk).order_by("-started_at").values_list("state", flat=True)
                .first())
    state = RunState(data=dict(previous or {}))
    storage = get_storage()

    def archive(name: str, content: bytes) -> None:
        key = f"imports/{run.pk}/fetched/{name}"
        storage.save(municipality.code, _safe_key(key), BytesIO(content))
        run.files.append(key)

    state.archive = archive
    run.save()

    with transaction.atomic():
        loader = Loader(municipality, run, cls.source_system())
        clock = time.monotonic()
        loader.stage(cls().read(cfg, state), progress)
        staged = time.monotonic()
        loader.load()
        loaded = time.monotonic()
        rollups.refresh(loader.school_years)
        log.info("import #%s phases: read and stage %.1f s, load %.1f s, rollups %.1f s", run.pk,
                 staged - clock, loaded - staged, time.monotonic() - loaded)
        run.rows_read = loader.rows_read
        run.rows_rejected = loader.rejected_rows()
        run.rows_accepted = run.rows_read - run.rows_rejected
        run.state = state.data
        run.status = ImportRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()


def _safe_key(key: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-/()=") else "_" for c in key)


def _archive(municipality, run: ImportRun, paths: list[Path]) -> list[str]:
    """Copy every input file to storage before reading it (streamed, never held in memory)."""
    storage = get_storage()
    keys = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"入力 {path} がありません。")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(path.parent)
            key = _safe_key(f"imports/{run.pk}/{relative.as_posix()}")
            with file.open("rb") as source:
                storage.save(municipality.code, key, source)
            keys.append(key)
    return keys


# -- the loader -----------------------------------------------------------------------------

@dataclass
class Loader:
    municipality: Any
    run: ImportRun
    system: str
    rows_read: int = 0
    school_years: set[int] = field(default_factory=set)
    _roster: dict[str, list[Record]] = field(default_factory=dict)
    _batches: dict[str, list[tuple]] = field(default_factory=dict)
    _quarantine: list[tuple] = field(default_factory=list)
    _staged: set[str] = field(default_factory=set)
    _seq: int = 0

    # staging ------------------------------------------------------------------------------

    def stage(self, items: Iterator[Record | RowError], progress=None) -> None:
        """Consume the connector's output: roster records are kept (bounded by the number of
        pupils), data records are COPYed into staging tables in batches, row errors go to
        the quarantine. Memory does not grow with the size of the input."""
        last: Origin | None = None
        for item in items:
            origin = item.origin
            # Records of one input row share its origin; count rows, not records.
            if origin is None or last is None or (
                    origin is not last and (origin.line != last.line or origin.file != last.file)):
                self.rows_read += 1
                last = origin
                if progress and self.rows_read % 10_000 == 0:
                    progress(self.rows_read)
            if type(item) is RowError:
                self.reject(origin, item.column, item.value, item.reason)
                continue
            stream = DATA_STREAMS.get(item.stream)
            if stream is not None:
                self._seq += 1
                batch = self._batches.setdefault(item.stream, [])
                origin = origin or _UNKNOWN
                batch.append((self._seq, origin.file, origin.line, *stream.values(item)))
                if len(batch) >= BATCH_ROWS:
                    self._flush(item.stream)
            elif item.stream in ROSTER_STREAMS:
                self._roster.setdefault(item.stream, []).append(item)
            else:
                raise SourceError(f"未知のストリーム {item.stream} です。")
        for stream in list(self._batches):
            self._flush(stream)
        self._flush_quarantine()
        if progress:
            progress(self.rows_read)

    def reject(self, origin: Origin | None, column: str, value: str, reason: str) -> None:
        origin = origin or _UNKNOWN
        self._quarantine.append((self.run.pk, origin.file[:255], origin.line, column[:100],
                                 str(value)[:MAX_QUARANTINED_VALUE], reason))
        if len(self._quarantine) >= BATCH_ROWS:
            self._flush_quarantine()

    def _flush_quarantine(self) -> None:
        if not self._quarantine:
            return
        with connection.cursor() as cursor, cursor.cursor.copy(
                'COPY edudata_quarantinedrow (run_id, file, line, "column", value, reason) '
                "FROM STDIN") as copy:
            for row in self._quarantine:
                copy.write_row(row)
        self._quarantine.clear()

    def _flush(self, name: str) -> None:
        stream, rows = DATA_STREAMS[name], self._batches.get(name)
        if not rows:
            return
        staging = f"stg_{name}"
        with connection.cursor() as cursor:
            if name not in self._staged:
                columns = ", ".join(f"{c} {t}" for c, t in stream.columns)
                cursor.execute(f"DROP TABLE IF EXISTS {staging}")
                cursor.execute(f"CREATE TEMP TABLE {staging} (seq bigint, file text, line int, "
                               f"ref text, {columns}) ON COMMIT DROP")
                self._staged.add(name)
            names = ", ".join(c for c, _ in stream.columns)
            with cursor.cursor.copy(f"COPY {staging} (seq, file, line, ref, {names}) "
                                    "FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        rows.clear()

    # loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Upsert everything staged, roster first, then the data streams."""
        if any(self._roster.values()):
            schools = self._load_schools()
            homerooms = self._load_homerooms(schools)
            self._load_students(schools)
            self._load_enrollments(homerooms)
        for name in DATA_STREAMS:
            if name in self._staged:
                self._load_data(DATA_STREAMS[name])
        self._flush_quarantine()
        with connection.cursor() as cursor:
            for name in self._staged:
                cursor.execute(f"DROP TABLE stg_{name}")

    def rejected_rows(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM (SELECT DISTINCT file, line FROM "
                           "edudata_quarantinedrow WHERE run_id = %s) q", [self.run.pk])
            return cursor.fetchone()[0]

    def _load_data(self, stream: DataStream) -> None:
        staging, table = f"stg_{stream.name}", stream.table
        if stream.ref == "principal_name":
            resolver = ("(SELECT DISTINCT ON (lower(principal_name)) lower(principal_name) AS ref,"
                        " student_id FROM edudata_studentidentity WHERE principal_name <> '' "
                        "ORDER BY lower(principal_name), student_id)")
            ref_expr, column, who = "lower(s.ref)", "ユーザープリンシパル名", "名簿にない利用者です"
        else:
            resolver = ("(SELECT source_id AS ref, student_id FROM edudata_studentidentity "
                        "WHERE source_system = %(system)s)")
            ref_expr, column, who = "s.ref", "児童生徒ID", "名簿にない児童生徒です"
        params = {"run": self.run.pk, "system": self.system, "column": column,
                  "reason": f"{who}（{column}「", "label": stream.label}
        names = [c for c, _ in stream.columns]
        key = ", ".join(("ref", *stream.key))
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute(f"""
                INSERT INTO edudata_quarantinedrow (run_id, file, line, "column", value, reason)
                SELECT %(run)s, s.file, s.line, %(column)s, s.ref,
                       %(reason)s || s.ref || '」）。先に名簿を取り込んでください。'
                FROM {staging} s WHERE NOT EXISTS (
                    SELECT 1 FROM {resolver} r WHERE r.ref = {ref_expr})""", params)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {staging} GROUP BY {key} "
                           "HAVING count(*) > 1)")
            if cursor.fetchone()[0]:
                cursor.execute(f"""
                    WITH ranked AS (
                        SELECT seq, file, line, ref, row_number() OVER w AS n,
                               first_value(file) OVER w AS first_file,
                               first_value(line) OVER w AS first_line
                        FROM {staging} WINDOW w AS (PARTITION BY {key} ORDER BY seq)),
                    dropped AS (
                        INSERT INTO edudata_quarantinedrow
                            (run_id, file, line, "column", value, reason)
                        SELECT %(run)s, file, line, '', ref,
                               %(label)s || 'の行が ' || first_file || ' の ' || first_line
                               || ' 行目にもあります（重複。最初の行を取り込みました）。'
                        FROM ranked WHERE n > 1 RETURNING line)
                    DELETE FROM {staging} WHERE seq IN (SELECT seq FROM ranked WHERE n > 1)""",
                               params)
            conflict = ", ".join(("student_id", *stream.key))
            updated = [c for c in names if c not in stream.key]
            assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
            changed = (f"({', '.join(f't.{c}' for c in updated)}) IS DISTINCT FROM "
                       f"({', '.join(f'EXCLUDED.{c}' for c in updated)})")
            selected = ", ".join(f"s.{c}" for c in names)
            action = (f"DO UPDATE SET {assignments} WHERE {changed}" if updated else "DO NOTHING")
            cursor.execute(f"""
                INSERT INTO {table} AS t (student_id, {", ".join(names)})
                SELECT r.student_id, {selected}
                FROM {staging} s JOIN {resolver} r ON r.ref = {ref_expr}
                ON CONFLICT ({conflict}) {action}""", params)
            if stream.date_column:
                cursor.execute(f"SELECT min({stream.date_column}), max({stream.date_column}) "
                               f"FROM {staging}")
                first, last = cursor.fetchone()
                if first is not None:
                    first, last = (timezone.localdate(d) if isinstance(d, dt.datetime) else d
                                   for d in (first, last))
                    self.school_years |= set(range(school_year_of(first),
                                                   school_year_of(last) + 1))
            elif "school_year" in names:
                cursor.execute(f"SELECT DISTINCT school_year FROM {staging}")
                self.school_years |= {row[0] for row in cursor.fetchall()}

    def _load_schools(self) -> dict[str, School]:
        wanted: dict[str, SchoolRecord] = {}
        for record in self._roster.get("schools", []):
            wanted[record.code] = record  # the same school on every roster row: last one wins
        existing = {s.code: s for s in School.objects.filter(code__in=wanted)}
        changed = []
        for code, record in wanted.items():
            school = existing.get(code)
            if school is None:
                existing[code] = School(code=code, name=record.name,
                                        school_type=record.school_type)
            elif (school.name, school.school_type) != (record.name, record.school_type):
                school.name, school.school_type = record.name, record.school_type
                changed.append(school)
        School.objects.bulk_create([s for s in existing.values() if s.pk is None])
        School.objects.bulk_update(changed, ["name", "school_type"])
        return {s.code: s for s in School.objects.all()}

    def _load_homerooms(self, schools: dict[str, School]) -> dict[tuple, Homeroom]:
        wanted: dict[tuple, HomeroomRecord] = {}
        for record in self._roster.get("homerooms", []):
            if record.school_code not in schools:
                self.reject(record.origin, "学校コード", record.school_code,
                            f"学校コード「{record.school_code}」の学校が登録されていません。")
                continue
            wanted[(record.school_code, record.school_year, record.name)] = record
            self.school_years.add(record.school_year)
        current = {(h.school.code, h.school_year, h.name): h
                   for h in Homeroom.objects.select_related("school")}
        new, changed = [], []
        for key, record in wanted.items():
            homeroom = current.get(key)
            if homeroom is None:
                new.append(Homeroom(school=schools[key[0]], school_year=key[1], name=key[2],
                                    grade=record.grade))
            elif homeroom.grade != record.grade:
                homeroom.grade = record.grade
                changed.append(homeroom)
        Homeroom.objects.bulk_create(new)
        Homeroom.objects.bulk_update(changed, ["grade"])
        return {(h.school.code, h.school_year, h.name): h
                for h in Homeroom.objects.select_related("school")}

    def _load_students(self, schools: dict[str, School]) -> None:
        """Create or update pupils and their identities in bulk (a city has 100k pupils)."""
        records: list[StudentRecord] = self._roster.get("students", [])
        if not records:
            return
        identities = {(i.source_system, i.source_id): i for i in StudentIdentity.objects.all()}
        students = {s.pk: s for s in Student.objects.all()}
        by_pseudonym = {s.pseudonym: s for s in students.values()}
        owner_of: dict[tuple[str, str], Student] = {
            key: students[i.student_id] for key, i in identities.items()}
        seen: dict[str, Origin | None] = {}
        new_students: dict[str, Student] = {}
        changed_students: dict[int, Student] = {}
        identity_rows: list[tuple[Student, str, str, dict | None]] = []
        for record in records:
            if record.source_id in seen:
                first = seen[record.source_id]
                self.reject(record.origin, "児童生徒ID", record.source_id,
                            f"同じ児童生徒IDの行が {first.file if first else '?'} の "
                            f"{first.line if first else '?'} 行目にもあります（重複）。")
                continue
            if record.school_code not in schools:
                self.reject(record.origin, "学校コード", record.school_code,
                            f"学校コード「{record.school_code}」の学校が登録されていません。")
                continue
            keys = [(self.system, record.source_id), *record.other_ids.items()]
            owners = {id(owner_of[k]): owner_of[k] for k in keys if k in owner_of}
            if len(owners) > 1:
                self.reject(record.origin, "userIds", ",".join(f"{s}:{i}" for s, i in keys),
                            "これらの ID は別々の児童生徒に紐付いています。名簿を確かめてください。")
                continue
            seen[record.source_id] = record.origin
            student = next(iter(owners.values()), None)
            if student is None:
                pseudonym = pseudonym_for(self.municipality, self.system, record.source_id)
                student = by_pseudonym.get(pseudonym) or new_students.setdefault(
                    pseudonym, Student(pseudonym=pseudonym))
            values = {"school_id": schools[record.school_code].pk, "grade": record.grade,
                      "birth_year_month": record.birth_year_month, "sex": record.sex,
                      "graduation_date": record.graduation_date}
            if any(getattr(student, k, None) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(student, k, v)
                if student.pk is not None:
                    changed_students[student.pk] = student
            names = {"family_name": record.family_name, "given_name": record.given_name,
                     "family_name_kana": record.family_name_kana,
                     "given_name_kana": record.given_name_kana,
                     "principal_name": record.principal_name}
            for key in keys:
                owner_of.setdefault(key, student)
                identity_rows.append((student, *key, names if key == keys[0] else None))
        Student.objects.bulk_create(new_students.values(), batch_size=2000)
        Student.objects.bulk_update(changed_students.values(), [
            "school_id", "grade", "birth_year_month", "sex", "graduation_date"], batch_size=2000)
        self._save_identities(identities, identity_rows)

    @staticmethod
    def _save_identities(identities: dict, rows: list[tuple[Student, str, str, dict | None]]
                         ) -> None:
        new, changed = [], []
        for student, system, source_id, names in rows:
            identity = identities.get((system, source_id))
            if identity is None:
                identity = StudentIdentity(student=student, source_system=system,
                                           source_id=source_id, **(names or {}))
                identities[(system, source_id)] = identity
                new.append(identity)
            elif names and any(getattr(identity, k) != v for k, v in names.items()):
                for k, v in names.items():
                    setattr(identity, k, v)
                changed.append(identity)
        StudentIdentity.objects.bulk_create(new, batch_size=2000)
        StudentIdentity.objects.bulk_update(changed, ["family_name", "given_name",
                                                      "family_name_kana", "given_name_kana",
                                                      "principal_name"], batch_size=2000)

    def _load_enrollments(self, homerooms: dict[tuple, Homeroom]) -> None:
        records: list[EnrollmentRecord] = self._roster.get("enrollments", [])
        if not records:
            return
        owners = dict(StudentIdentity.objects.filter(source_system=self.system)
                      .values_list("source_id", "student_id"))
        current = {(e.student_id, e.homeroom_id): e for e in Enrollment.objects.all()}
        seen: set[tuple] = set()
        new, changed = [], []
        for record in records:
            student_id = owners.get(record.student_source_id)
            homeroom = homerooms.get((record.school_code, record.school_year,
                                      record.homeroom_name))
            if student_id is None:
                self.reject(record.origin, "児童生徒ID", record.student_source_id,
                            "名簿にない児童生徒です。")
                continue
            if homeroom is None:
                self.reject(record.origin, "学級", record.homeroom_name,
                            f"{record.school_year}年度の学級「{record.homeroom_name}」が見つかりません。")
                continue
            key = (student_id, homeroom.pk)
            if key in seen:
                continue  # the same enrollment restated (e.g. several source files)
            seen.add(key)
            enrollment = current.get(key)
            if enrollment is None:
                new.append(Enrollment(student_id=student_id, homeroom=homeroom,
                                      attendance_number=record.attendance_number))
            elif enrollment.attendance_number != record.attendance_number:
                enrollment.attendance_number = record.attendance_number
                changed.append(enrollment)
        Enrollment.objects.bulk_create(new)
        Enrollment.objects.bulk_update(changed, ["attendance_number"])
