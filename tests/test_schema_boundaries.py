"""The rule Citus schema-based sharding needs (docs/scaling.md): no query joins two tenant
schemas, and a tenant's tables reference only their own schema or public (reference) tables.

Every statement sent to PostgreSQL while imports, tasks, pages and API queries run is
captured at the driver (psycopg ``execute``/``executemany``/``copy``: the ORM, raw SQL and
the pipeline's COPY alike, without the ``SET LOCAL search_path`` each statement carries)
together with the schema the connection was in. Then the catalog is checked: foreign keys, triggers, column defaults.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from pathlib import Path

import psycopg
import pytest
from citus_support import on_citus
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from renkei.connectors.pipeline import do_import
from renkei.demo.synth import generate
from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db

TENANT_SCHEMA = re.compile(r"\bm(\d{6})\b")
# The backend sends the connection's schema before each statement (renkei.tenants.postgresql_backend).
ROUTING = re.compile(r"^SET LOCAL search_path TO [^;]*; ")
# Public tables that tenant tables may reference. Under Citus each must be a reference table
# (docs/scaling.md); today there are none: edudata references only its own schema, and the
# access log keeps user ids without foreign keys.
REFERENCE_TABLES: set[str] = set()


class Captured(list):
    """(schema the connection was in, statement) for every statement sent; ``threads`` has
    the name of the thread that sent each."""

    threads: list[str]


@pytest.fixture
def captured(monkeypatch) -> Captured:
    log = Captured()
    log.threads = []

    def text(query) -> str:
        if isinstance(query, bytes):
            return query.decode()
        if isinstance(query, str):
            return query
        return query.as_string(None)  # psycopg.sql.Composed

    def wrap(name):
        original = getattr(psycopg.Cursor, name)

        def capture(self, query, *args, **kwargs):
            log.append((connection.schema_name, ROUTING.sub("", text(query))))
            log.threads.append(threading.current_thread().name)
            return original(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, capture)

    for name in ("execute", "executemany", "copy"):
        wrap(name)
    return log


def tenant_and_public_tables() -> tuple[set[str], set[str]]:
    """Tables only tenant schemas have, and tables only public has (shared apps)."""
    label = {config.name: config.label for config in apps.get_app_configs()}
    tenant = {label[a] for a in settings.TENANT_APPS}
    shared = {label[a] for a in settings.SHARED_APPS}

    def tables(labels):
        return {
            model._meta.db_table
            for app in labels
            for model in apps.get_app_config(app).get_models(include_auto_created=True)
        }

    return tables(tenant - shared), tables(shared - tenant)


def run_workload(tmp_path: Path, shibuya, shinjuku, make_user, client) -> None:
    """Imports into two tenants, the tenant tasks, pages, and the APIs that exist."""
    from renkei.connectors import tasks as connector_tasks
    from renkei.edudata import tasks as edudata_tasks

    for municipality in (shibuya, shinjuku):
        data = tmp_path / municipality.code
        generate(municipality.code, data, students=15, days=8)
        for connector, paths in (
            ("oneroster", [data / "oneroster"]),
            ("c4th", sorted((data / "c4th").glob("*.csv"))),
            ("msgraph", [data / "msgraph"]),
        ):
            run = do_import(connector, municipality, actor=TEST_ACTOR, paths=paths)
            assert run.status == "succeeded", run.message
    assert (
        connector_tasks.import_data.delay(
            "131041",
            "suzuki",
            paths=[str(p) for p in sorted((tmp_path / "131041" / "suzuki").glob("*.csv"))],
        ).get()["status"]
        == "succeeded"
    )
    edudata_tasks.refresh_rollups.delay("131130").get()
    edudata_tasks.schedule_retention_purges.delay(dry_run=True).get()
    edudata_tasks.schedule_rollup_refresh.delay().get()

    client.get("/m/131130/")
    client.get("/")
    tenant_api_query(shibuya, make_user, client)
    federation_query(make_user, client)


def tenant_api_query(municipality, make_user, client) -> None:
    """A student board through the tenant GraphQL API, when it exists."""
    if importlib.util.find_spec("renkei.graphql.tenant.views") is None:
        return
    from renkei.edudata.models import Student
    from renkei.tenants.context import in_tenant

    with in_tenant(municipality):
        pupil = Student.objects.select_related("school").order_by("pk").first()
    teacher = make_user(
        "teacher-boundaries", "teacher", municipality=municipality, schools=[pupil.school.code]
    )
    client.force_login(teacher)
    response = client.post(
        f"/m/{municipality.code}/graphql",
        content_type="application/json",
        data=json.dumps(
            {
                "query": "query($id: ID!) { studentBoard(studentId: $id, "
                'asOf: "2025-06-30") { pupil { id name } '
                'attendance(since: "2025-04-01") { date status } } }',
                "variables": {"id": pupil.pk},
            }
        ),
    )
    assert response.status_code == 200 and not response.json().get("errors"), response.content
    client.logout()


def federation_query(make_user, client) -> None:
    """A prefecture query through the federation, when it exists: one metric in every
    municipality of 東京都, each in its own schema (on the fan-out's own threads and
    connections, which the capture sees too)."""
    if importlib.util.find_spec("renkei.graphql.federation.views") is None:
        return
    from renkei.edudata import metrics
    from renkei.tenants.models import Prefecture

    # The fan-out's connections see committed data only, whose release an earlier test may
    # have made in this process: forget it, so that the tenants' rows are read again here.
    metrics.clear_cache()

    client.force_login(
        make_user("pref-boundaries", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    )
    response = client.post(
        "/federation/graphql",
        content_type="application/json",
        data=json.dumps(
            {
                "query": """{ prefecture(code: "13") {
                               attendanceRate(schoolYear: 2025, byMunicipality: true) {
                                 __typename } } }"""
            }
        ),
    )
    assert response.status_code == 200 and not response.json().get("errors"), response.content
    client.logout()


def violations(captured: Captured) -> list[str]:
    tenant_tables, public_tables = tenant_and_public_tables()
    table_name = re.compile(r"\b[a-z][a-z0-9_]*\b")
    found = []
    for schema, sql in captured:
        mentioned = {f"m{code}" for code in TENANT_SCHEMA.findall(sql)}
        if len(mentioned) > 1:
            found.append(f"two tenant schemas in one statement: {sql}")
        if TENANT_SCHEMA.fullmatch(schema):
            if not mentioned <= {schema}:
                found.append(f"in {schema}, a statement names {sorted(mentioned)}: {sql}")
            names = set(table_name.findall(sql))
            tenant, public = names & tenant_tables, names & (public_tables - REFERENCE_TABLES)
            if tenant and public:
                found.append(
                    f"in {schema}, tenant tables {sorted(tenant)} with public tables "
                    f"{sorted(public)}: {sql}"
                )
    return found


def test_no_statement_spans_two_tenant_schemas(
    tmp_path, captured, shibuya, shinjuku, make_user, client
):
    run_workload(tmp_path, shibuya, shinjuku, make_user, client)
    assert len(captured) > 200
    assert {schema for schema, _ in captured} >= {"public", "m131130", "m131041"}
    assert any(sql.lstrip().upper().startswith("COPY") for _, sql in captured)
    if importlib.util.find_spec("renkei.graphql.federation.views"):  # the fan-out was seen
        # The prefecture's release reads each tenant's rollups with one statement per
        # schema (named in it), all from the federation's thread.
        fanned = {
            f"m{code}"
            for (_, sql), thread in zip(captured, captured.threads, strict=True)
            if thread.startswith("federation")
            for code in TENANT_SCHEMA.findall(sql)
        }
        assert {"m131130", "m131041"} <= fanned, fanned
    tenant_tables, public_tables = tenant_and_public_tables()
    assert "edudata_student" in tenant_tables and "tenants_municipality" in public_tables
    assert violations(captured) == []


def test_the_check_sees_what_it_must_refuse(captured, shibuya):
    from renkei.tenants.context import in_tenant

    with in_tenant(shibuya), connection.cursor() as cursor:
        across = "SELECT count(*) FROM m131130.edudata_student a, m131041.edudata_student b"
        if on_citus():  # a coordinator refuses it itself: the two schemas live apart
            with pytest.raises(DatabaseError), transaction.atomic():
                cursor.execute(across)
        else:
            cursor.execute(across)
        cursor.execute('SELECT count(*) FROM "m271004"."edudata_school"')
        cursor.execute(
            "SELECT count(*) FROM edudata_student s JOIN tenants_municipality m ON m.id = s.id"
        )
    found = violations(captured)
    assert len(found) == 4, found
    assert sum("two tenant schemas" in f for f in found) == 1
    assert sum("with public tables ['tenants_municipality']" in f for f in found) == 1


def catalog(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_tenant_tables_reference_only_their_schema_or_public(shibuya):
    schemas = {s for (s,) in catalog("SELECT nspname FROM pg_namespace")}
    tenants = {s for s in schemas if TENANT_SCHEMA.fullmatch(s)}
    assert {"m131130", "m131041", "m271004"} <= tenants

    foreign_keys = catalog("""
        SELECT n.nspname, t.relname, c.conname, rn.nspname, r.relname
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE c.contype = 'f'""")
    in_tenants = [fk for fk in foreign_keys if fk[0] in tenants]
    assert len(in_tenants) >= 10 * len(tenants)  # edudata has many
    for schema, table, name, ref_schema, ref_table in in_tenants:
        assert ref_schema in (schema, "public"), (
            f"{schema}.{table} ({name}) references {ref_schema}.{ref_table}"
        )
    referenced_public = {
        ref_table for schema, _, _, ref_schema, ref_table in in_tenants if ref_schema == "public"
    }
    assert referenced_public == REFERENCE_TABLES, (
        "public tables referenced by tenant tables must become Citus reference tables: "
        f"update REFERENCE_TABLES and docs/scaling.md ({sorted(referenced_public)})"
    )
    into_tenants = [fk for fk in foreign_keys if fk[3] in tenants and fk[0] != fk[3]]
    assert not into_tenants, f"references into a tenant schema from outside: {into_tenants}"

    triggers = catalog("""
        SELECT n.nspname, t.relname, g.tgname, fn.nspname
        FROM pg_trigger g
        JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_proc f ON f.oid = g.tgfoid JOIN pg_namespace fn ON fn.oid = f.pronamespace
        WHERE NOT g.tgisinternal""")
    for schema, table, trigger, function_schema in triggers:
        if schema in tenants:
            assert function_schema in (schema, "public", "pg_catalog"), (
                f"{schema}.{table} trigger {trigger} calls a function in {function_schema}"
            )

    defaults = catalog("""
        SELECT n.nspname, t.relname, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attrdef d
        JOIN pg_class t ON t.oid = d.adrelid JOIN pg_namespace n ON n.oid = t.relnamespace""")
    for schema, table, expression in defaults:
        if schema in tenants:
            others = {f"m{c}" for c in TENANT_SCHEMA.findall(expression)} - {schema}
            assert not others, f"{schema}.{table} default {expression} names {others}"
