"""Creating a tenant schema fast, at a cost that stays flat as tenants grow.

Running every migration per new tenant reloads the migration graph and replays the history
(PITFALLS: django-tenants), and django-tenants' template cloning (``clone_schema``) walks the
catalog, which grows with every tenant: measured here it went from 0.17 s to 1.1 s per tenant
over 50 tenants. Instead the tenant apps' migrations are turned into their SQL once per
process (the same statements ``sqlmigrate`` prints) and replayed into the new schema, then the
migrations are recorded as applied. The "template" is thus the migration SQL of the running
code itself, so it cannot fall behind; ``tests/tenants/test_schema.py`` proves a replayed
schema is identical to a migrated one.

If a tenant-app migration ever needs Python (a data migration), replay is impossible and the
schema is migrated the ordinary way instead.

Migrating every tenant on a deploy (:func:`migrate_tenants`) works the same way: a few catalog
queries find the schemas behind the code (walking each schema through Django's executor cost
0.16 s per tenant even with nothing to do), the SQL of the missing migrations is collected once
per group of schemas missing the same ones, and bounded worker threads replay it, one
transaction per schema. A schema that is missing or inconsistent is named and left alone; the
others go on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.special import RunPython
from django.db.migrations.recorder import MigrationRecorder
from psycopg import sql

log = logging.getLogger(__name__)

_SCRATCH_SCHEMA = "tenant_ddl_collection"  # never created; only makes the router pick tenant apps


@dataclass(frozen=True)
class TenantDDL:
    statements: tuple[str, ...]
    migrations: tuple[tuple[str, str], ...]  # (app, name) to record as applied
    replayable: bool


def _needs_python(migration) -> bool:
    for operation in migration.operations:
        if isinstance(operation, RunPython):
            if operation.code is not RunPython.noop:
                return True
        elif not operation.reduces_to_sql:
            return True
    return False


@cache
def tenant_ddl() -> TenantDDL:
    """The SQL that migrating an empty tenant schema would run, collected once per process."""
    previous = connection.schema_name
    connection.set_schema(_SCRATCH_SCHEMA, include_public=True)
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
        tenant_apps = {c.label for c in apps.get_app_configs() if c.name in settings.TENANT_APPS}
        replayable = not any(_needs_python(m) for m, _ in plan if m.app_label in tenant_apps)
        collected = executor.loader.collect_sql(plan) if replayable else []
    finally:
        connection.set_schema(previous)
    statements = tuple(s for s in collected if s.strip() and not s.lstrip().startswith("--"))
    return TenantDDL(statements, tuple((m.app_label, m.name) for m, _ in plan), replayable)


def create_tenant_schema(schema_name: str) -> None:
    """Create and migrate ``schema_name`` (already validated: ``m`` + a checked code).

    Runs inside the caller's transaction, so a failure leaves no schema behind.
    """
    ddl = tenant_ddl()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_name)))
    if not ddl.replayable:
        log.warning("tenant migrations need Python; migrating %s the slow way", schema_name)
        call_command(
            "migrate_schemas", tenant=True, schema_name=schema_name, interactive=False, verbosity=0
        )
        connection.set_schema_to_public()
        return
    connection.set_schema(schema_name, include_public=False)
    try:
        with connection.cursor() as cursor:
            for statement in ddl.statements:
                cursor.execute(statement)
        recorder = MigrationRecorder(connection)
        # The schema is new, so its django_migrations is certainly absent: create it directly.
        # recorder.ensure_schema() would first list every table visible to the connection, a
        # scan of the whole catalog that grows with the tenants (86 ms at 300 of them).
        with connection.schema_editor() as editor:
            editor.create_model(recorder.Migration)
        recorder.migration_qs.bulk_create(
            recorder.Migration(app=app, name=name) for app, name in ddl.migrations
        )
    finally:
        connection.set_schema_to_public()


# -- Migrating every tenant schema (renkei migrate) ---------------------------------------------

DEFAULT_WORKERS = 4  # connections that replay DDL at once; PostgreSQL does the work
_SCHEMAS_PER_QUERY = 200  # each schema read locks its django_migrations and index until the end


class Problem(StrEnum):
    """Why a tenant schema was left alone."""

    MISSING_SCHEMA = "missing_schema"  # the tenant is registered, its schema does not exist
    NO_MIGRATION_TABLE = "no_migration_table"  # a schema without django_migrations
    INCONSISTENT_HISTORY = "inconsistent_history"  # a migration recorded before its dependency
    MISSING_TABLES = "missing_tables"  # recorded migrations whose tables are not there
    APPLY_FAILED = "apply_failed"  # a statement failed; the schema's transaction rolled back


@dataclass(frozen=True)
class TenantProblem:
    schema: str
    problem: Problem
    detail: str  # English, from the check or from PostgreSQL


@dataclass
class TenantMigrateReport:
    schemas: int = 0  # tenant schemas looked at
    up_to_date: int = 0  # already current before this run
    migrated: list[str] = field(default_factory=list)
    problems: list[TenantProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    """What one group of schemas (missing the same migrations) gets."""

    record: tuple[tuple[str, str], ...]  # (app, name) to record as applied
    statements: tuple[str, ...]
    replayable: bool


@cache
def _code_migrations() -> tuple[MigrationLoader, frozenset[tuple[str, str]], frozenset[str]]:
    """The migration graph of the running code, every node in it (a tenant schema records them
    all, shared apps' included, as django-tenants does), and the tenant app labels."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    tenant_apps = frozenset(
        c.label for c in apps.get_app_configs() if c.name in settings.TENANT_APPS
    )
    return loader, frozenset(loader.graph.nodes), tenant_apps


def forget_code_migrations() -> None:
    """For code that changes the migration modules at runtime (tests, bench/migrate.py)."""
    _code_migrations.cache_clear()
    tenant_ddl.cache_clear()


def tenant_schema_names() -> list[str]:
    from renkei.tenants.models import Municipality

    return list(
        Municipality.objects.exclude(schema_name="public")
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )


def migrate_all(verbosity: int = 1, workers: int = DEFAULT_WORKERS) -> TenantMigrateReport:
    """Bring the public schema and every tenant up to date (run on every deploy)."""
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    return migrate_tenants(workers=workers)


def migrate_tenants(
    schemas: Sequence[str] | None = None, *, workers: int = DEFAULT_WORKERS
) -> TenantMigrateReport:
    """Apply the code's missing migrations to every tenant schema (or to ``schemas``).

    Each schema is migrated in its own transaction, so a crash leaves each one migrated or
    not, and running this again finishes the rest. Problems are reported, never raised.
    """
    schemas = tenant_schema_names() if schemas is None else list(schemas)
    report = TenantMigrateReport(schemas=len(schemas))
    missing_by_schema = _find_missing_migrations(schemas, report.problems)
    groups: dict[frozenset[tuple[str, str]], list[str]] = {}
    for schema, missing in missing_by_schema.items():
        groups.setdefault(missing, []).append(schema)
    _check_groups(groups, report.problems)
    report.up_to_date = len(groups.pop(frozenset(), []))
    jobs, slow = [], []
    for missing, members in groups.items():
        batch = _collect_batch(members[0], missing)
        if batch.replayable:
            jobs += [(schema, batch) for schema in members]
        else:
            slow += members
    _replay_in_parallel(jobs, workers, report)
    for schema in slow:
        _migrate_the_django_way(schema, report)
    report.migrated.sort()
    report.problems.sort(key=lambda p: p.schema)
    return report


def _find_missing_migrations(
    schemas: Sequence[str], problems: list[TenantProblem]
) -> dict[str, frozenset[tuple[str, str]]]:
    """Which of the code's migrations each schema has not recorded: one query for which
    schemas can be read, then one per ``_SCHEMAS_PER_QUERY`` schemas."""
    _, expected, _ = _code_migrations()
    readable = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s, to_regnamespace(quote_ident(s)) IS NOT NULL, "
            "to_regclass(format('%%I.django_migrations', s)) IS NOT NULL "
            "FROM unnest(%s::text[]) s",
            [list(schemas)],
        )
        for schema, exists, has_table in cursor.fetchall():
            if not exists:
                problems.append(
                    TenantProblem(schema, Problem.MISSING_SCHEMA, "the schema does not exist")
                )
            elif not has_table:
                problems.append(
                    TenantProblem(schema, Problem.NO_MIGRATION_TABLE, "no django_migrations table")
                )
            else:
                readable.append(schema)
        found: dict[str, set[tuple[str, str]]] = {schema: set() for schema in readable}
        nodes = sorted(expected)
        for start in range(0, len(readable), _SCHEMAS_PER_QUERY):
            chunk = readable[start : start + _SCHEMAS_PER_QUERY]
            cursor.execute(
                _missing_rows_query(chunk).as_string(connection.connection),
                [[app for app, _ in nodes], [name for _, name in nodes]],
            )
            for schema, app, name in cursor.fetchall():
                found[schema].add((app, name))
    return {schema: frozenset(missing) for schema, missing in found.items()}


def _missing_rows_query(schemas: Iterable[str]) -> sql.Composed:
    """(schema, app, name) of each expected migration a schema has not recorded: nothing at
    all when every schema is current."""
    branch = sql.SQL(
        "SELECT {literal}::text, e.app, e.name FROM expected e WHERE NOT EXISTS "
        "(SELECT FROM {table} d WHERE d.app = e.app AND d.name = e.name)"
    )
    branches = sql.SQL(" UNION ALL ").join(
        branch.format(
            literal=sql.Literal(schema), table=sql.Identifier(schema, "django_migrations")
        )
        for schema in schemas
    )
    return sql.SQL(
        "WITH expected(app, name) AS (SELECT * FROM unnest(%s::text[], %s::text[])) {}"
    ).format(branches)


def _check_groups(
    groups: dict[frozenset[tuple[str, str]], list[str]], problems: list[TenantProblem]
) -> None:
    """Take out of ``groups`` the schemas whose record does not add up: a migration recorded
    while one it depends on is not, or tables its recorded migrations made that are gone."""
    loader, expected, tenant_apps = _code_migrations()
    for missing, members in list(groups.items()):
        applied = expected - missing
        out_of_order = sorted(
            f"{node[0]}.{node[1]} before {parent.key[0]}.{parent.key[1]}"
            for node in applied
            for parent in loader.graph.node_map[node].parents
            if parent.key not in applied
        )
        if out_of_order:
            detail = "recorded " + ", ".join(out_of_order[:3])
            problems += [TenantProblem(s, Problem.INCONSISTENT_HISTORY, detail) for s in members]
            del groups[missing]
            continue
        tables = _tables_of(applied, loader, tenant_apps)
        absent: dict[str, list[str]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s, t FROM unnest(%s::text[]) s, unnest(%s::text[]) t "
                "WHERE to_regclass(format('%%I.%%I', s, t)) IS NULL ORDER BY s, t",
                [members, tables],
            )
            for schema, table in cursor.fetchall():
                absent.setdefault(schema, []).append(table)
        for schema, gone in absent.items():
            detail = "tables missing: " + ", ".join(gone[:5]) + (" …" if len(gone) > 5 else "")
            problems.append(TenantProblem(schema, Problem.MISSING_TABLES, detail))
        groups[missing] = [s for s in members if s not in absent]


def _tables_of(
    applied: frozenset[tuple[str, str]], loader: MigrationLoader, tenant_apps: frozenset[str]
) -> list[str]:
    """The tenant tables that the migrations in ``applied`` create."""
    if not applied:
        return []
    state = loader.graph.make_state(sorted(applied), real_apps=loader.unmigrated_apps)
    return sorted(
        model._meta.db_table
        for model in state.apps.get_models(include_auto_created=True)
        if model._meta.app_label in tenant_apps and model._meta.managed and not model._meta.proxy
    )


def _collect_batch(representative: str, missing: frozenset[tuple[str, str]]) -> _Batch:
    """The SQL of the migrations ``representative`` lacks, collected as ``sqlmigrate`` would,
    inside that schema so that introspection (constraint names) sees a real one."""
    connection.set_schema(representative, include_public=False)
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        replayable = all(m.atomic and not _needs_python(m) for m, _ in plan)
        collected = executor.loader.collect_sql(plan) if replayable else []
    finally:
        connection.set_schema_to_public()
    statements = tuple(s for s in collected if s.strip() and not s.lstrip().startswith("--"))
    return _Batch(tuple(sorted(missing)), statements, replayable)


def _replay_in_parallel(
    jobs: list[tuple[str, _Batch]], workers: int, report: TenantMigrateReport
) -> None:
    """Each worker thread has its own connection (Django's are per thread)."""
    if not jobs:
        return
    todo: queue.SimpleQueue[tuple[str, _Batch]] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)

    def work() -> None:
        try:
            while True:
                try:
                    schema, batch = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    _replay(schema, batch)
                except Exception as e:  # any failure: this schema is named, the others go on
                    report.problems.append(_apply_failed(schema, e))
                else:
                    report.migrated.append(schema)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _replay(schema: str, batch: _Batch) -> None:
    """Run ``batch`` in ``schema`` and record it, in one transaction: all of it or nothing."""
    app_labels, names = [app for app, _ in batch.record], [name for _, name in batch.record]
    connection.set_schema(schema, include_public=False)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            current = cursor.fetchone()[0]
            if current != schema:  # the DDL below is unqualified: never into another schema
                raise RuntimeError(f"search_path points at {current}, not {schema}")
            # Two deploys migrating at once wait for each other here, schema by schema.
            cursor.execute("LOCK TABLE django_migrations IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(
                "SELECT count(*) FROM django_migrations "
                "JOIN unnest(%s::text[], %s::text[]) m(app, name) USING (app, name)",
                [app_labels, names],
            )
            if cursor.fetchone()[0]:  # another run migrated it since we looked
                return
            for statement in batch.statements:
                cursor.execute(statement)
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) "
                "SELECT app, name, now() FROM unnest(%s::text[], %s::text[]) m(app, name)",
                [app_labels, names],
            )
    finally:
        connection.set_schema_to_public()


def _migrate_the_django_way(schema: str, report: TenantMigrateReport) -> None:
    """A migration that needs Python (or runs outside a transaction) cannot be replayed:
    django-tenants migrates the schema, one migration per transaction."""
    log.warning("tenant migrations need Python; migrating %s the slow way", schema)
    try:
        call_command(
            "migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=0
        )
    except Exception as e:
        report.problems.append(_apply_failed(schema, e))
    else:
        report.migrated.append(schema)
    finally:
        connection.set_schema_to_public()


def _apply_failed(schema: str, error: Exception) -> TenantProblem:
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
    # PostgreSQL said what is wrong; anything else is a bug and gets its traceback.
    log.warning(
        "migrating %s failed: %s", schema, detail, exc_info=not isinstance(error, DatabaseError)
    )
    return TenantProblem(schema, Problem.APPLY_FAILED, detail)
