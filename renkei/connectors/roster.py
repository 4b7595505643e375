"""The roster of an import (schools, homerooms, pupils with their identities, enrollments),
upserted through the ORM in bulk: a city has ~100k pupils, so records are kept until the
first data rows that need them, then written at once. Pupils get their pseudonym here; their
names stay in StudentIdentity, never in the analysis tables.

All of it runs inside the import's one transaction (``pipeline.do_import``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    Record,
    RosterScopeRecord,
    SchoolRecord,
    StudentRecord,
)
from renkei.edudata.codes import LeavingReason, is_final_grade, school_year_of
from renkei.edudata.models import Enrollment, Homeroom, School, Student, StudentIdentity
from renkei.edudata.privacy import pseudonym_for


def insert_rows(
    model: type[models.Model], fields: tuple[str, ...], rows: list[tuple], returning: str = ""
) -> list[tuple]:
    """Insert new rows of ``model``, their values in ``fields`` order (attribute names, every
    column but the id): COPYed into a temporary table, then one INSERT … SELECT; the
    ``returning`` columns of each row inserted. For plain values (text, numbers, dates).
    psycopg adapts COPY rows in C: passing one array per column instead (``unnest``) cost
    5 times as much, in Python, and the ORM's bulk_create more (about 6 s of a 100k-pupil
    roster's first import)."""
    meta = model._meta
    missing = {f.attname for f in meta.concrete_fields if not f.primary_key} - set(fields)
    if missing:  # a column left out would get no default: Django keeps defaults in Python
        raise ImproperlyConfigured(f"insert_rows({model.__name__}): no value for {missing}")
    if not rows:
        return []
    columns = [meta.get_field(name) for name in fields]
    # Table, column and type names come from the model, never from input. The temporary
    # table has the types of the model's columns (the staging tables' pattern: on a Citus
    # coordinator, rows move from it to the tenant's node).
    names = ", ".join(f.column for f in columns)
    typed = ", ".join(f"{f.column} {f.db_type(connection)}" for f in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE new_rows ({typed}) ON COMMIT DROP")
        with cursor.cursor.copy("COPY new_rows FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        sql = f"INSERT INTO {meta.db_table} ({names}) SELECT * FROM new_rows"  # noqa: S608
        cursor.execute(sql + (f" RETURNING {returning}" if returning else ""))
        answered = cursor.fetchall() if returning else []
        cursor.execute("DROP TABLE new_rows")
    return answered


# What a pupil's identity says of them, as both the roster record and the model name it.
_IDENTITY_NAMES = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "principal_name",
)


@dataclass
class RosterWriter:
    municipality: Any
    system: str
    reject: Callable[[Origin | None, str, str, str], None]  # the run's quarantine
    school_years: set[int]  # the run's, shared with the data streams
    _pending: list[Record] = field(default_factory=list)  # read, not written yet
    _students_seen: dict[str, Origin | None] = field(default_factory=dict)
    _enrollments_seen: set[tuple] = field(default_factory=set)
    # Pupils whose row said nothing about leaving: a left one enrolled in a later school year
    # came back (finish()).
    _listed_as_enrolled: list[Student] = field(default_factory=list)
    _scopes: list[RosterScopeRecord] = field(default_factory=list)
    today: dt.date = field(default_factory=timezone.localdate)
    re_enrolled: int = 0
    left_unlisted: Counter = field(default_factory=Counter)  # reason -> pupils
    # Whether a stored pupil's school or grade, or a stored school's type, changed: every
    # rollup row of theirs is labelled with them, so every rollup of the run's years follows.
    relabelled: bool = False

    def add(self, records: list[Record]) -> None:
        self._pending.extend(records)

    def write(self) -> None:
        """Upsert the roster records read so far: schools, homerooms, pupils, enrollments."""
        if not self._pending:
            return
        records: dict[str, list] = {}
        for record in self._pending:
            records.setdefault(record.stream, []).append(record)
        self._pending = []
        schools = self._load_schools(records.get("schools", []))
        homerooms = self._load_homerooms(records.get("homerooms", []), schools)
        self._load_students(records.get("students", []), schools)
        self._load_enrollments(records.get("enrollments", []), homerooms)
        self._scopes += records.get("roster_scope", [])

    def _load_schools(self, records: list[SchoolRecord]) -> dict[str, School]:
        wanted: dict[str, SchoolRecord] = {}
        for record in records:
            wanted[record.code] = record  # the same school on every roster row: last one wins
        existing = {s.code: s for s in School.objects.filter(code__in=wanted)}
        changed = []
        for code, record in wanted.items():
            school = existing.get(code)
            if school is None:
                existing[code] = School(code=code, name=record.name, school_type=record.school_type)
            elif (school.name, school.school_type) != (record.name, record.school_type):
                self.relabelled |= school.school_type != record.school_type
                school.name, school.school_type = record.name, record.school_type
                changed.append(school)
        School.objects.bulk_create([s for s in existing.values() if s.pk is None])
        School.objects.bulk_update(changed, ["name", "school_type"])
        return {s.code: s for s in School.objects.all()}

    def _load_homerooms(
        self, records: list[HomeroomRecord], schools: dict[str, School]
    ) -> dict[tuple, Homeroom]:
        wanted: dict[tuple, HomeroomRecord] = {}
        for record in records:
            if record.school_code not in schools:
                self.reject(
                    record.origin,
                    "学校コード",
                    record.school_code,
                    f"学校コード「{record.school_code}」の学校が登録されていません。",
                )
                continue
            wanted[(record.school_code, record.school_year, record.name)] = record
            self.school_years.add(record.school_year)
        current = {
            (h.school.code, h.school_year, h.name): h
            for h in Homeroom.objects.select_related("school")
        }
        new, changed = [], []
        for key, record in wanted.items():
            homeroom = current.get(key)
            if homeroom is None:
                new.append(
                    Homeroom(
                        school=schools[key[0]], school_year=key[1], name=key[2], grade=record.grade
                    )
                )
            elif homeroom.grade != record.grade:
                homeroom.grade = record.grade
                changed.append(homeroom)
        Homeroom.objects.bulk_create(new)
        Homeroom.objects.bulk_update(changed, ["grade"])
        return {
            (h.school.code, h.school_year, h.name): h
            for h in Homeroom.objects.select_related("school")
        }

    def _load_students(self, records: list[StudentRecord], schools: dict[str, School]) -> None:
        """Create or update pupils and their identities in bulk (a city has 100k pupils)."""
        if not records:
            return
        # Stored identities as plain values (a city's 100,000 cost a second as objects): by
        # key, their id, their pupil's and their names.
        identities = {
            (system, source_id): (pk, student_id, tuple(names))
            for pk, student_id, system, source_id, *names in StudentIdentity.objects.values_list(
                "pk", "student_id", "source_system", "source_id", *_IDENTITY_NAMES
            )
        }
        students = {s.pk: s for s in Student.objects.all()}
        by_pseudonym = {s.pseudonym: s for s in students.values()}
        owner_of: dict[tuple[str, str], Student] = {
            key: students[student_id] for key, (_, student_id, _) in identities.items()
        }
        seen = self._students_seen  # over the whole run, should its roster come in parts
        new_students: dict[str, Student] = {}
        changed_students: dict[int, Student] = {}
        identity_rows: list[tuple[Student, str, str, dict | None]] = []
        for record in records:
            if record.source_id in seen:
                first = seen[record.source_id]
                self.reject(
                    record.origin,
                    "児童生徒ID",
                    record.source_id,
                    f"同じ児童生徒IDの行が {first.file if first else '?'} の "
                    f"{first.line if first else '?'} 行目にもあります（重複）。",
                )
                continue
            if record.school_code not in schools:
                self.reject(
                    record.origin,
                    "学校コード",
                    record.school_code,
                    f"学校コード「{record.school_code}」の学校が登録されていません。",
                )
                continue
            keys = [(self.system, record.source_id), *record.other_ids.items()]
            owners = {id(owner_of[k]): owner_of[k] for k in keys if k in owner_of}
            if len(owners) > 1:
                self.reject(
                    record.origin,
                    "userIds",
                    ",".join(f"{s}:{i}" for s, i in keys),
                    "これらの ID は別々の児童生徒に紐付いています。名簿を確かめてください。",
                )
                continue
            seen[record.source_id] = record.origin
            student = next(iter(owners.values()), None)
            if student is None:
                pseudonym = pseudonym_for(self.municipality, self.system, record.source_id)
                student = by_pseudonym.get(pseudonym) or new_students.setdefault(
                    pseudonym, Student(pseudonym=pseudonym)
                )
            values = {
                "school_id": schools[record.school_code].pk,
                "grade": record.grade,
                "birth_year_month": record.birth_year_month,
                "sex": record.sex,
                **self._leaving(record, student),
            }
            if any(getattr(student, k, None) != v for k, v in values.items()):
                self.relabelled |= student.pk is not None and (
                    (student.school_id, student.grade) != (values["school_id"], values["grade"])
                )
                for k, v in values.items():
                    setattr(student, k, v)
                if student.pk is not None:
                    changed_students[student.pk] = student
            names = {name: getattr(record, name) for name in _IDENTITY_NAMES}
            for key in keys:
                owner_of.setdefault(key, student)
                identity_rows.append((student, *key, names if key == keys[0] else None))
        self._insert_students(list(new_students.values()))
        Student.objects.bulk_update(
            changed_students.values(),
            ["school_id", "grade", "birth_year_month", "sex", "left_on", "leaving_reason"],
            batch_size=2000,
        )
        self._save_identities(identities, identity_rows)

    @staticmethod
    def _insert_students(new: list[Student]) -> None:
        fields = tuple(f.attname for f in Student._meta.concrete_fields if not f.primary_key)
        rows = [tuple(getattr(student, name) for name in fields) for student in new]
        ids = dict(insert_rows(Student, fields, rows, returning="pseudonym, id"))
        for student in new:  # as bulk_create leaves them: saved, with their id
            student.pk = ids[student.pseudonym]
            student._state.adding, student._state.db = False, connection.alias

    def _leaving(self, record: StudentRecord, student: Student) -> dict[str, Any]:
        """When and why the pupil left, after this row. A row without a leaving (no column,
        or an empty cell) says nothing about it: a known leaving, from which retention counts,
        is never erased (a later school year's enrolment clears it: finish()). A reason
        without a day (OneRoster's enabledUser=false) is dated the import's day the first
        time only: re-imports must not move the day, or retention would never come."""
        if record.leaving_reason is None:
            self._listed_as_enrolled.append(student)
            return {"left_on": student.left_on, "leaving_reason": student.leaving_reason}
        if record.left_on is None and student.left_on is not None:
            return {"left_on": student.left_on, "leaving_reason": record.leaving_reason}
        return {"left_on": record.left_on or self.today, "leaving_reason": record.leaving_reason}

    @staticmethod
    def _save_identities(
        identities: dict, rows: list[tuple[Student, str, str, dict | None]]
    ) -> None:
        new: dict[tuple[str, str], dict[str, Any]] = {}  # key -> the new row's values
        changed = []
        for student, system, source_id, names in rows:
            key = (system, source_id)
            stored = identities.get(key)
            if stored is None:
                if key not in new:
                    new[key] = dict.fromkeys(_IDENTITY_NAMES, "") | {
                        "student_id": student.pk,
                        "source_system": system,
                        "source_id": source_id,
                    }
                new[key].update(names or {})
            elif names and tuple(names[k] for k in _IDENTITY_NAMES) != stored[2]:
                changed.append(StudentIdentity(pk=stored[0], **names))
        fields = ("student_id", "source_system", "source_id", *_IDENTITY_NAMES)
        insert_rows(
            StudentIdentity, fields, [tuple(row[f] for f in fields) for row in new.values()]
        )
        StudentIdentity.objects.bulk_update(
            changed,
            list(_IDENTITY_NAMES),
            batch_size=2000,
        )

    def _load_enrollments(
        self, records: list[EnrollmentRecord], homerooms: dict[tuple, Homeroom]
    ) -> None:
        if not records:
            return
        owners = dict(
            StudentIdentity.objects.filter(source_system=self.system).values_list(
                "source_id", "student_id"
            )
        )
        current = {  # (pupil, homeroom) -> id, attendance number
            (student_id, homeroom_id): (pk, number)
            for pk, student_id, homeroom_id, number in Enrollment.objects.values_list(
                "pk", "student_id", "homeroom_id", "attendance_number"
            )
        }
        seen = self._enrollments_seen
        new, changed = [], []
        for record in records:
            student_id = owners.get(record.student_source_id)
            homeroom = homerooms.get((record.school_code, record.school_year, record.homeroom_name))
            if student_id is None:
                self.reject(
                    record.origin,
                    "児童生徒ID",
                    record.student_source_id,
                    "名簿にない児童生徒です。",
                )
                continue
            if homeroom is None:
                self.reject(
                    record.origin,
                    "学級",
                    record.homeroom_name,
                    f"{record.school_year}年度の学級「{record.homeroom_name}」が見つかりません。",
                )
                continue
            key = (student_id, homeroom.pk)
            if key in seen:
                continue  # the same enrollment restated (e.g. several source files)
            seen.add(key)
            stored = current.get(key)
            if stored is None:
                new.append((student_id, homeroom.pk, record.attendance_number))
            elif stored[1] != record.attendance_number:
                changed.append(Enrollment(pk=stored[0], attendance_number=record.attendance_number))
        insert_rows(Enrollment, ("student_id", "homeroom_id", "attendance_number"), new)
        Enrollment.objects.bulk_update(changed, ["attendance_number"])

    # -- at the end of the run ------------------------------------------------------------

    def finish(self) -> None:
        """What needs the whole roster of the run: re-enrolments, then the pupils a complete
        roster no longer lists."""
        self._clear_re_enrolled()
        for scope in self._scopes:
            self._leave_unlisted(scope)

    def _clear_re_enrolled(self) -> None:
        """A left pupil whom this roster lists as enrolled in a school year after the one
        they left in came back (a 小学校 graduate at the municipality's 中学校, a return
        after 転出): the leaving is cleared."""
        left = {s.pk: s for s in self._listed_as_enrolled if s.left_on is not None}
        if not left:
            return
        years = dict(Homeroom.objects.values_list("pk", "school_year"))
        back = []
        for student_id, homeroom_id in self._enrollments_seen:
            student = left.get(student_id)
            if student is not None and years[homeroom_id] > school_year_of(student.left_on):
                student.left_on, student.leaving_reason = None, ""
                back.append(left.pop(student_id))
        Student.objects.bulk_update(back, ["left_on", "leaving_reason"], batch_size=2000)
        self.re_enrolled += len(back)

    def _leave_unlisted(self, scope: RosterScopeRecord) -> None:
        """A complete roster (a OneRoster bulk set) is the whole truth for its schools and
        school years: a pupil this source knew at one of those schools, still on the books
        there, enrolled last in one of those years or before, and not listed, has left.

        - last enrolled in an earlier year: left when that year ended (31 March); graduated
          if they were in the last grade of their school type, else transferred;
        - last enrolled in the roster's latest year: left now (the import's day);
          graduated if in the last grade and the year is at its end (March), else
          transferred.
        A pupil enrolled in a later year than the roster's is left alone (an old file)."""
        latest = max(scope.school_years)
        listed = set(scope.listed)
        known, seen = set(), set()  # pupils this source knows; those it lists now
        for source_id, student_id in StudentIdentity.objects.filter(
            source_system=self.system
        ).values_list("source_id", "student_id"):
            (seen if source_id in listed else known).add(student_id)
        unlisted = known - seen
        if not unlisted:
            return
        last_year = (
            Enrollment.objects.filter(student=OuterRef("pk"))
            .values("student")
            .annotate(year=Max("homeroom__school_year"))
            .values("year")
        )
        candidates = (
            Student.objects.filter(
                pk__in=unlisted, left_on__isnull=True, school__code__in=scope.school_codes
            )
            .annotate(last_year=Subquery(last_year))
            .filter(last_year__lte=latest)
            .select_related("school")
        )
        year_end = dt.date(latest + 1, 3, 1)
        changed = []
        for student in candidates:
            final = is_final_grade(student.school.school_type, student.grade)
            if student.last_year < latest:
                student.left_on = dt.date(student.last_year + 1, 3, 31)
            else:
                student.left_on = self.today
                final = final and self.today >= year_end
            student.leaving_reason = LeavingReason.GRADUATED if final else LeavingReason.TRANSFERRED
            self.left_unlisted[student.leaving_reason] += 1
            changed.append(student)
        Student.objects.bulk_update(changed, ["left_on", "leaving_reason"], batch_size=2000)

    def summary(self) -> str:
        """What the roster changed about leaving, for the run's message (counts only)."""
        parts = []
        if self.left_unlisted:
            reasons = "・".join(
                f"{LeavingReason(r).label} {n:,} 人" for r, n in sorted(self.left_unlisted.items())
            )
            parts.append(
                f"名簿（一括）に載らなくなった児童生徒 {sum(self.left_unlisted.values()):,} 人を"
                f"離籍としました（{reasons}）。"
            )
        if self.re_enrolled:
            parts.append(
                f"離籍していた児童生徒 {self.re_enrolled:,} 人が新しい年度の名簿に在籍として"
                "載っていたため、再在籍として離籍を取り消しました。"
            )
        return "".join(parts)
