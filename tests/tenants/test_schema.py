"""A tenant schema created by replaying collected migration SQL is identical to one created
by running the migrations."""

import pytest
from django.core.management import call_command
from django.db import connection

from renkei.tenants.schema import create_tenant_schema, tenant_ddl

pytestmark = pytest.mark.django_db

CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default,
                         character_maximum_length, is_identity
                  FROM information_schema.columns WHERE table_schema = %s""",
    "constraints": """SELECT conrelid::regclass::text, conname, contype,
                             pg_get_constraintdef(oid)
                      FROM pg_constraint WHERE connamespace = %s::regnamespace""",
    "indexes": """SELECT tablename, indexname, regexp_replace(indexdef, ' ON \\S+\\.', ' ON ')
                  FROM pg_indexes WHERE schemaname = %s""",
    "triggers": """SELECT tgrelid::regclass::text, tgname, tgtype FROM pg_trigger
                   WHERE tgrelid::regclass::text LIKE %s || '.%%' AND NOT tgisinternal""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations",
}


def _describe(schema):
    described = {}
    with connection.cursor() as c:
        for what, query in CATALOG.items():
            c.execute(query.format(schema=schema), [schema] if "%s" in query else [])
            described[what] = sorted(
                tuple(str(v).replace(schema + ".", "") for v in row) for row in c.fetchall()
            )
    return described


def test_replayed_schema_equals_migrated_schema(db):
    assert tenant_ddl().replayable
    create_tenant_schema("m999990")
    with connection.cursor() as c:
        c.execute('CREATE SCHEMA "m999991"')
    call_command(
        "migrate_schemas", tenant=True, schema_name="m999991", interactive=False, verbosity=0
    )
    connection.set_schema_to_public()
    replayed, migrated = _describe("m999990"), _describe("m999991")
    assert len(replayed["columns"]) >= 90 and replayed["triggers"]
    for what in CATALOG:
        assert replayed[what] == migrated[what], what


def test_tenant_ddl_has_no_public_tables():
    statements = " ".join(tenant_ddl().statements)
    assert '"tenants_' not in statements and '"auth_' not in statements
    assert '"edudata_student"' in statements
