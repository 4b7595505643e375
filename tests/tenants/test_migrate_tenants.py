"""`renkei migrate` over many tenants: which schemas are behind is decided by a few catalog
queries, the missing migrations are replayed in parallel, one transaction per schema, and a
schema that is missing, inconsistent or fails is named while the others go on.

The schemas here are scratch ones (m9998xx), committed so that the worker threads' own
connections see them, and dropped afterwards; the extra migration lives in a temporary
migration package (the real edudata migrations plus one file) that only these tests see.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext

import renkei.edudata.migrations as edudata_migrations
from renkei.tenants.schema import (
    Problem,
    create_tenant_schema,
    forget_code_migrations,
    migrate_tenants,
)

EXTRA_PACKAGE = "edudata_migrations_plus_one"
EXTRA = ("edudata", "0900_migrate_test")

# Database tests, so that pytest-django runs them with the others that use the database: a
# test it takes for one without runs after the browser tests, whose Playwright keeps an event
# loop running in this thread until the session ends (Django then refuses the connection).
pytestmark = pytest.mark.django_db(transaction=True)

# What the test migration does to a schema, one statement per operation.
ADD_COLUMN = "ALTER TABLE edudata_school ADD COLUMN migrate_probe text"
ADD_INDEX = "CREATE INDEX edudata_school_migrate_probe ON edudata_school (migrate_probe)"
ADD_TABLE = "CREATE TABLE edudata_migrate_probe (id bigint PRIMARY KEY, note text NOT NULL)"


@pytest.fixture
def schemas(django_db_blocker):
    """schemas(n): n freshly onboarded tenant schemas (committed), dropped afterwards."""
    made: list[str] = []

    def make(n: int) -> list[str]:
        names = [f"m9998{len(made) + i:02d}" for i in range(n)]
        with django_db_blocker.unblock():
            for name in names:
                with transaction.atomic():
                    create_tenant_schema(name)
                made.append(name)
        return names

    yield make
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        connection.set_schema_to_public()
        for name in made:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def extra_migration(tmp_path, monkeypatch, settings):
    """extra_migration(*statements): the code now has one more edudata migration, running
    ``statements`` (RunSQL, one each; or from one RunPython with ``python=True``)."""

    def add(*statements: str, python: bool = False) -> None:
        real = Path(edudata_migrations.__file__).parent
        leaf = next(n for n in MigrationLoader(None).graph.leaf_nodes() if n[0] == "edudata")
        package = tmp_path / EXTRA_PACKAGE
        package.mkdir()
        # The package's path is itself and the real migrations: Django lists and imports both.
        (package / "__init__.py").write_text(f"__path__ = [{str(package)!r}, {str(real)!r}]\n")
        if python:  # a data migration: runs the statements from Python
            source = f"def forwards(apps, schema_editor):\n    for s in {statements!r}:\n"
            source += "        schema_editor.execute(s)\n\n\n"
            operations = "migrations.RunPython(forwards, migrations.RunPython.noop)"
        else:
            source = ""
            operations = ", ".join(
                f"migrations.RunSQL({s!r}, migrations.RunSQL.noop)" for s in statements
            )
        (package / f"{EXTRA[1]}.py").write_text(
            "from django.db import migrations\n\n\n"
            f"{source}class Migration(migrations.Migration):\n"
            f"    dependencies = [{leaf!r}]\n"
            f"    operations = [{operations}]\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        settings.MIGRATION_MODULES = {"edudata": EXTRA_PACKAGE}
        forget_code_migrations()

    yield add
    for name in [m for m in sys.modules if m.split(".")[0] == EXTRA_PACKAGE]:
        del sys.modules[name]
    settings.MIGRATION_MODULES = {}
    forget_code_migrations()


def _catalog(schema: str) -> dict[str, list[tuple]]:
    """The schema's tables, columns, constraints, indexes and recorded migrations."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = %s::regnamespace",
        "indexes": "SELECT tablename, indexname, regexp_replace(indexdef, ' ON \\S+\\.', ' ON ') "
        "FROM pg_indexes WHERE schemaname = %s",
        "migrations": "SELECT app, name FROM {schema}.django_migrations",
    }
    described = {}
    with connection.cursor() as cursor:
        for what, query in queries.items():
            cursor.execute(query.format(schema=schema), [schema] if "%s" in query else [])
            described[what] = sorted(
                tuple(str(v).replace(schema + ".", "") for v in row) for row in cursor.fetchall()
            )
    return described


def _has_column(schema: str, column: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'edudata_school' AND column_name = %s",
            [schema, column],
        )
        return cursor.fetchone() is not None


def _recorded(schema: str, migration: tuple[str, str]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT 1 FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
            list(migration),
        )
        return cursor.fetchone() is not None


def test_a_schema_behind_is_found_and_current_ones_are_left_alone(
    schemas, extra_migration, django_db_blocker
):
    a, b, c = schemas(3)
    with django_db_blocker.unblock():
        # given: schemas onboarded from the running code are current
        report = migrate_tenants([a, b, c])
        assert (report.up_to_date, report.migrated, report.problems) == (3, [], [])
        # when the code gains a migration, and one schema already has it
        extra_migration(ADD_COLUMN)
        assert migrate_tenants([a]).migrated == [a]
        report = migrate_tenants([a, b, c])
        # then only the two behind are migrated, and afterwards nothing is behind
        assert report.up_to_date == 1 and report.migrated == [b, c] and not report.problems
        assert all(_has_column(s, "migrate_probe") and _recorded(s, EXTRA) for s in (a, b, c))
        again = migrate_tenants([a, b, c])
        assert (again.up_to_date, again.migrated) == (3, [])


def test_deciding_nothing_is_behind_takes_the_same_queries_for_one_or_many_tenants(
    schemas, django_db_blocker
):
    few, many = schemas(1), schemas(3)
    with django_db_blocker.unblock():
        with CaptureQueriesContext(connection) as one:
            assert migrate_tenants(few).up_to_date == 1
        with CaptureQueriesContext(connection) as three:
            assert migrate_tenants(many).up_to_date == 3
    assert len(one) == len(three)


def test_a_migration_applied_in_parallel_leaves_identical_schemas(
    schemas, extra_migration, django_db_blocker
):
    replayed = schemas(3)
    (by_django,) = schemas(1)
    extra_migration(ADD_COLUMN, ADD_INDEX, ADD_TABLE)
    with django_db_blocker.unblock():
        report = migrate_tenants(replayed, workers=3)
        assert sorted(report.migrated) == replayed and not report.problems
        # the reference: the same migration run by Django's executor (django-tenants)
        call_command(
            "migrate_schemas", tenant=True, schema_name=by_django, interactive=False, verbosity=0
        )
        connection.set_schema_to_public()
        reference = _catalog(by_django)
        assert ("edudata_school", "edudata_school_migrate_probe") in [
            row[:2] for row in reference["indexes"]
        ]
        assert EXTRA in reference["migrations"]
        for schema in replayed:
            assert _catalog(schema) == reference, schema


def test_a_migration_that_needs_python_goes_through_django_tenants(
    schemas, extra_migration, django_db_blocker
):
    a, b = schemas(2)
    extra_migration(ADD_COLUMN, python=True)
    with django_db_blocker.unblock():
        report = migrate_tenants([a, b])
        assert report.migrated == [a, b] and not report.problems
        assert all(_has_column(s, "migrate_probe") and _recorded(s, EXTRA) for s in (a, b))


def test_a_schema_whose_apply_fails_is_rolled_back_whole_and_a_rerun_finishes_it(
    schemas, extra_migration, django_db_blocker
):
    a, b, c = schemas(3)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # given: b already holds a table the migration's second statement creates
        cursor.execute(f'CREATE TABLE "{b}".edudata_migrate_probe (id int)')
        extra_migration(ADD_COLUMN, ADD_TABLE)
        # when
        report = migrate_tenants([a, b, c], workers=3)
        # then the others are migrated; b is named and has none of it (not the first statement)
        assert report.migrated == [a, c]
        assert [(p.schema, p.problem) for p in report.problems] == [(b, Problem.APPLY_FAILED)]
        assert "edudata_migrate_probe" in report.problems[0].detail
        assert not _has_column(b, "migrate_probe") and not _recorded(b, EXTRA)
        assert _has_column(a, "migrate_probe") and _recorded(c, EXTRA)
        # when the cause is gone, the next run migrates b only
        cursor.execute(f'DROP TABLE "{b}".edudata_migrate_probe')
        rerun = migrate_tenants([a, b, c])
        assert (rerun.up_to_date, rerun.migrated, rerun.problems) == (2, [b], [])
        assert _has_column(b, "migrate_probe") and _recorded(b, EXTRA)


def test_missing_and_half_migrated_schemas_are_named_and_the_others_migrated(
    schemas, extra_migration, django_db_blocker
):
    healthy, tables_gone, out_of_order, no_record = schemas(4)
    missing = "m999899"  # a tenant whose schema is not there
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{tables_gone}".edudata_inboxfile CASCADE')
        cursor.execute(
            f'DELETE FROM "{out_of_order}".django_migrations '
            "WHERE app = 'edudata' AND name = '0001_initial'"
        )
        cursor.execute(f'DROP TABLE "{no_record}".django_migrations')
        extra_migration(ADD_COLUMN)
        report = migrate_tenants([healthy, tables_gone, out_of_order, no_record, missing])
        assert report.migrated == [healthy] and _has_column(healthy, "migrate_probe")
        assert not any(_has_column(s, "migrate_probe") for s in (tables_gone, out_of_order))
    named = {p.schema: (p.problem, p.detail) for p in report.problems}
    assert named == {
        tables_gone: (Problem.MISSING_TABLES, "tables missing: edudata_inboxfile"),
        out_of_order: (Problem.INCONSISTENT_HISTORY, named[out_of_order][1]),
        no_record: (Problem.NO_MIGRATION_TABLE, "no django_migrations table"),
        missing: (Problem.MISSING_SCHEMA, "the schema does not exist"),
    }
    assert "before edudata.0001_initial" in named[out_of_order][1]


@pytest.mark.django_db  # (not transactional: the shibuya fixture lives in the test transaction)
def test_the_command_names_a_tenant_without_its_schema_and_exits_non_zero(
    db, shibuya, capsys, monkeypatch
):
    from cli_support import fresh_secrets

    from renkei.platform.keys import new_encrypted_tenant_key
    from renkei.site import cli
    from renkei.tenants.codes import municipality_check_digit
    from renkei.tenants.models import Municipality

    for name, value in fresh_secrets().items():  # a configured database wants real secrets
        monkeypatch.setenv(name, value)
    code = "13199" + str(municipality_check_digit("13199"))
    Municipality.objects.create(
        code=code,
        name="テスト町",
        prefecture=shibuya.prefecture,
        pseudonym_key=new_encrypted_tenant_key(),
    )
    assert cli.main(["migrate", "-v", "0"]) == 1
    err = capsys.readouterr().err
    assert f"エラー: m{code}: スキーマがありません（自治体は登録済み）" in err
    assert "・更新 0・問題 1" in err  # the session's tenants are current
