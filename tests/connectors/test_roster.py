"""The roster writer's own inserts (roster.insert_rows): new pupils, identities and
enrollments written in one statement per batch, next to stored ones that are updated."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured

from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    SchoolRecord,
    StudentRecord,
)
from renkei.connectors.roster import RosterWriter, insert_rows
from renkei.edudata.models import Enrollment, Student, StudentIdentity
from renkei.edudata.privacy import pseudonym_for
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

SCHOOL = "B113211300012"


def _writer(municipality, rejected: list) -> RosterWriter:
    return RosterWriter(municipality, "c4th", lambda *a: rejected.append(a), set())


def _pupil(n: int, line: int, **fields) -> list:
    origin = Origin(file="roster.csv", line=line)
    homeroom = f"{fields.get('grade', 1)}年1組"
    return [
        SchoolRecord(code=SCHOOL, name="渋谷区立第一小学校", origin=origin),
        HomeroomRecord(
            school_code=SCHOOL, school_year=2025, grade=fields.get("grade", 1), name=homeroom,
            origin=origin,
        ),
        StudentRecord(source_id=f"P{n}", school_code=SCHOOL, origin=origin, **fields),
        EnrollmentRecord(
            student_source_id=f"P{n}", school_code=SCHOOL, school_year=2025,
            homeroom_name=homeroom, attendance_number=n, origin=origin,
        ),
    ]  # fmt: skip


def test_new_and_stored_pupils_in_one_roster(shibuya):
    rejected: list = []
    with in_tenant(shibuya):
        first = _writer(shibuya, rejected)
        first.add(_pupil(1, 2, grade=1, family_name="山田"))
        first.write()
        stored = Student.objects.get()

        again = _writer(shibuya, rejected)
        again.add(_pupil(1, 2, grade=2, family_name="山田"))  # moved up a grade
        again.add(
            _pupil(
                2, 3, grade=2, family_name="佐藤", given_name="花子", sex="female",
                birth_year_month="2017-05", left_on=dt.date(2025, 7, 31),
                leaving_reason="transferred",
            )
        )  # fmt: skip
        again.add(_pupil(3, 4, grade=2))  # nothing but the required cells
        again.write()

        assert rejected == []
        assert again.relabelled  # the stored pupil's grade changed
        pupils = {s.pseudonym: s for s in Student.objects.all()}
        assert len(pupils) == 3 and pupils[stored.pseudonym].pk == stored.pk
        assert pupils[stored.pseudonym].grade == 2
        new = pupils[pseudonym_for(shibuya, "c4th", "P2")]
        assert (new.grade, new.sex, new.birth_year_month) == (2, "female", "2017-05")
        assert (new.left_on, new.leaving_reason) == (dt.date(2025, 7, 31), "transferred")
        bare = pupils[pseudonym_for(shibuya, "c4th", "P3")]
        assert (bare.sex, bare.birth_year_month, bare.left_on, bare.opted_out_at) == (
            "unspecified",
            "",
            None,
            None,
        )
        identities = {i.source_id: i for i in StudentIdentity.objects.all()}
        assert {k: (i.student_id, i.family_name) for k, i in identities.items()} == {
            "P1": (stored.pk, "山田"),
            "P2": (new.pk, "佐藤"),
            "P3": (bare.pk, ""),
        }
        assert identities["P2"].given_name == "花子"
        enrolled = Enrollment.objects.filter(homeroom__name="2年1組").values_list(
            "student_id", "attendance_number"
        )
        assert sorted(enrolled) == sorted([(stored.pk, 1), (new.pk, 2), (bare.pk, 3)])


def test_an_id_named_first_as_another_pupils_other_id_gets_the_names_of_its_own_row(shibuya):
    """Row 2 says its pupil is also P9 in this system; row 3 is P9 itself, with names: one
    pupil, and the identity P9 carries row 3's names."""
    rejected: list = []
    with in_tenant(shibuya):
        writer = _writer(shibuya, rejected)
        origin = Origin(file="roster.csv", line=2)
        writer.add(
            [
                SchoolRecord(code=SCHOOL, name="渋谷区立第一小学校", origin=origin),
                StudentRecord(
                    source_id="P8", school_code=SCHOOL, grade=3, other_ids={"c4th": "P9"},
                    family_name="鈴木", origin=origin,
                ),
                StudentRecord(
                    source_id="P9", school_code=SCHOOL, grade=3, family_name="鈴木",
                    given_name="一郎", origin=Origin(file="roster.csv", line=3),
                ),
            ]
        )  # fmt: skip
        writer.write()
        assert rejected == []
        [pupil] = Student.objects.all()
        names = dict(StudentIdentity.objects.values_list("source_id", "given_name"))
        assert names == {"P8": "", "P9": "一郎"}
        assert set(StudentIdentity.objects.values_list("student_id", flat=True)) == {pupil.pk}


def test_a_roster_again_updates_only_the_names_and_numbers_that_changed(shibuya):
    """Stored identities and enrolments are compared as values: a renamed pupil and a new
    attendance number are written, an unchanged pupil's rows are not touched."""
    rejected: list = []

    def rows(model, **filters) -> dict:
        """source id -> (where the row version lies, which an update moves; the value
        compared)"""
        field = "student__identities__source_id" if model is Enrollment else "source_id"
        compared = "attendance_number" if model is Enrollment else "family_name"
        ctid = f"{model._meta.db_table}.ctid::text"
        written = model.objects.filter(**filters).extra(select={"x": ctid})
        return {k: (x, v) for k, x, v in written.values_list(field, "x", compared)}

    with in_tenant(shibuya):
        first = _writer(shibuya, rejected)
        first.add(_pupil(1, 2, grade=1, family_name="山田"))
        first.add(_pupil(2, 3, grade=1, family_name="佐藤"))
        first.write()
        identities, enrolments = rows(StudentIdentity), rows(Enrollment)

        again = _writer(shibuya, rejected)
        again.add(_pupil(1, 2, grade=1, family_name="山﨑"))  # renamed
        pupil = _pupil(2, 3, grade=1, family_name="佐藤")
        pupil[-1] = pupil[-1].model_copy(update={"attendance_number": 7})  # renumbered
        again.add(pupil)
        again.write()

        assert rejected == []
        assert {k: v for k, (_, v) in rows(StudentIdentity).items()} == {"P1": "山﨑", "P2": "佐藤"}
        assert {k: v for k, (_, v) in rows(Enrollment).items()} == {"P1": 1, "P2": 7}
        assert rows(StudentIdentity)["P2"] == identities["P2"]  # not rewritten
        assert rows(StudentIdentity)["P1"][0] != identities["P1"][0]
        assert rows(Enrollment)["P1"] == enrolments["P1"]
        assert rows(Enrollment)["P2"][0] != enrolments["P2"][0]


def test_insert_rows_wants_a_value_for_every_column(shibuya):
    """Django keeps defaults in Python, not in the table: a column left out would be NULL or
    refused, so a field list that misses one is a programming error, said at once."""
    with in_tenant(shibuya), pytest.raises(ImproperlyConfigured, match="attendance_number"):
        insert_rows(Enrollment, ("student_id", "homeroom_id"), [(1, 1)])


def test_insert_rows_keeps_every_value_as_given(shibuya):
    """The rows travel as COPY text: a backslash, a tab, a line break or the text ``\\N`` in a
    name must come back as written, an empty name stay empty and a missing day stay NULL;
    the ids come back for each row."""
    names = ["C:\\\\名簿", "山田\t太郎", "一行目\n二行目", "\\N", ""]
    with in_tenant(shibuya):
        school = RosterWriter(shibuya, "c4th", lambda *a: None, set())._load_schools(
            [SchoolRecord(code=SCHOOL, name="渋谷区立第一小学校")]
        )[SCHOOL]
        fields = tuple(f.attname for f in Student._meta.concrete_fields if not f.primary_key)
        values = {"school_id": school.pk, "grade": 1, "birth_year_month": "", "sex": "male",
                  "leaving_reason": "", "opted_out_at": None}  # fmt: skip
        pupils = [
            {**values, "pseudonym": "A", "left_on": None},
            {
                **values,
                "pseudonym": "B",
                "left_on": dt.date(2026, 3, 31),
                "leaving_reason": "transferred",
            },
        ]
        ids = dict(
            insert_rows(
                Student, fields, [tuple(p[f] for f in fields) for p in pupils], "pseudonym, id"
            )
        )
        assert dict(Student.objects.values_list("pseudonym", "id")) == ids
        assert dict(Student.objects.values_list("pseudonym", "left_on")) == {
            "A": None,
            "B": dt.date(2026, 3, 31),
        }
        identity = ("student_id", "source_system", "source_id", "family_name", "given_name",
                    "family_name_kana", "given_name_kana", "principal_name")  # fmt: skip
        rows = [(ids["A"], "c4th", f"P{n}", name, "", "", "", "") for n, name in enumerate(names)]
        assert insert_rows(StudentIdentity, identity, rows) == []
        stored = dict(StudentIdentity.objects.values_list("source_id", "family_name"))
        assert stored == {f"P{n}": name for n, name in enumerate(names)}
        assert insert_rows(StudentIdentity, identity, []) == []
