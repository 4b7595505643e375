"""Indexes and constraints of the tables an import writes: every row it writes pays for each
of them."""

import pytest
from django.apps import apps
from django.db import connection, models

from renkei.connectors.streams import DATA_STREAMS
from renkei.edudata import rollups

pytestmark = pytest.mark.django_db


def keyed_by_pupil(model: type[models.Model]) -> bool:
    """Its natural key (a unique constraint) leads with the pupil."""
    return any(
        isinstance(c, models.UniqueConstraint) and c.fields and c.fields[0] == "student"
        for c in model._meta.constraints
    )


def test_no_table_an_import_writes_has_an_index_of_the_pupil_alone(shibuya):
    """The natural key's unique index serves every lookup by pupil (migrations 0021, 0022)."""
    written = {s.model._meta.db_table for s in DATA_STREAMS.values()}
    written |= {r.table for r in rollups._REFRESH}  # the rollups an import refreshes
    tables = sorted(
        m._meta.db_table
        for m in apps.get_app_config("edudata").get_models()
        if m._meta.db_table in written and keyed_by_pupil(m)
    )
    assert {"edudata_attendanceday", "edudata_attendancepupilmonth"} <= set(tables)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT tablename, indexname FROM pg_indexes
               WHERE schemaname = %s AND tablename = ANY(%s)
                 AND indexdef LIKE '%%(student_id)'""",
            [f"m{shibuya.code}", tables],
        )
        assert cursor.fetchall() == []


def test_rollups_check_their_pupil_but_not_their_school(shibuya):
    """A refresh writes each rollup row from a join with the school, and no code deletes a
    school: the school's constraint and index only cost the refresh (migration 0023). The
    pupil's constraint stays: a refresh racing a purge of that pupil fails rather than leave
    the purged pupil's rows behind."""
    tables = sorted(r.table for r in rollups._REFRESH)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
               WHERE c.contype = 'f' AND t.relnamespace = %s::regnamespace
                 AND t.relname = ANY(%s)""",
            [f"m{shibuya.code}", tables],
        )
        references = {(table.split(".")[-1], target.split(".")[-1]) for table, target in cursor}
        cursor.execute(
            """SELECT tablename, indexname FROM pg_indexes
               WHERE schemaname = %s AND tablename = ANY(%s) AND indexdef LIKE '%%(school_id)'""",
            [f"m{shibuya.code}", tables],
        )
        school_indexes = cursor.fetchall()
    assert {target for _, target in references} == {"edudata_student"}
    pupil_keyed = {
        m._meta.db_table
        for m in apps.get_app_config("edudata").get_models()
        if m._meta.db_table in tables and keyed_by_pupil(m)
    }
    assert {"edudata_attendancepupilmonth", "edudata_attendancepupilyear"} <= pupil_keyed
    assert {table for table, _ in references} == pupil_keyed
    assert school_indexes == []


def test_every_rollup_table_has_an_index_that_leads_with_the_school_year(shibuya):
    """``rollups.years_with_data`` (every opt-out asks it) probes these indexes for the
    first, the last and each year's first row: without one, it reads the whole table."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT tablename FROM pg_indexes
               WHERE schemaname = %s AND indexdef LIKE '%%USING btree (school_year%%'""",
            [f"m{shibuya.code}"],
        )
        indexed = {row[0] for row in cursor.fetchall()}
    assert {r.table for r in rollups._REFRESH} - indexed == set()
