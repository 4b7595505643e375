"""`renkei migrate` at national scale: onboard N municipalities (default 1,700), then time the
tenant half of a deploy's migrate with nothing to do and with one added SQL migration, against
django-tenants' `migrate_schemas` (what `renkei migrate` ran before) on a sample of the same
tenants in the same run, extrapolated to N.

    .venv/bin/python bench/migrate.py [--tenants 1700] [--sample 20] [--workers 4]

Targets at 1,700 tenants: no-op <= 10 s, one migration <= 3 min. Onboarding's per-tenant time
is printed first and last (flat is the target); since the machine's load drifts over the long
onboarding, ``--rounds`` more onboardings then take turns with onboardings into an empty
database on the same server, and their ratio is printed too.

The added migration (a column and an index on edudata_school, two RunSQL operations) lives in
a temporary migration package: the real edudata migrations plus one file, in a temporary
directory that is removed at the end; nothing is written into the source tree.

Database: with DATABASE_URL, a scratch database on that server (created here, dropped at the
end: the bench leaves no migration the code does not know); otherwise a fresh embedded
PostgreSQL in a temporary RENKEI_HOME.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from onboarding import embedded_home, fresh_codes, onboard, print_flatness

EXTRA_PACKAGE = "bench_edudata_migrations"
EXTRA_NAME = "0900_bench_migrate"
EXTRA_SQL = (
    "ALTER TABLE edudata_school ADD COLUMN bench_note text",
    "CREATE INDEX edudata_school_bench_note ON edudata_school (bench_note)",
)


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


@contextmanager
def scratch_database():
    """A database of its own: on DATABASE_URL's server if set, else embedded."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        with embedded_home("renkei-bench-migrate-"):
            yield
        return
    import psycopg

    parts = urlsplit(url)
    name = f"renkei_bench_migrate_{uuid.uuid4().hex[:8]}"
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def added_migration():
    """The code gains one edudata migration for as long as this lasts."""
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    import renkei.edudata.migrations
    from renkei.tenants.schema import forget_code_migrations

    real = Path(renkei.edudata.migrations.__file__).parent
    leaf = next(n for n in MigrationLoader(None).graph.leaf_nodes() if n[0] == "edudata")
    with tempfile.TemporaryDirectory(prefix="renkei-bench-migration-") as tmp:
        package = Path(tmp) / EXTRA_PACKAGE
        package.mkdir()
        (package / "__init__.py").write_text(f"__path__ = [{str(package)!r}, {str(real)!r}]\n")
        operations = ", ".join(
            f"migrations.RunSQL({s!r}, migrations.RunSQL.noop)" for s in EXTRA_SQL
        )
        (package / f"{EXTRA_NAME}.py").write_text(
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [{leaf!r}]\n"
            f"    operations = [{operations}]\n"
        )
        sys.path.insert(0, tmp)
        settings.MIGRATION_MODULES = {"edudata": EXTRA_PACKAGE}
        forget_code_migrations()
        try:
            yield
        finally:
            settings.MIGRATION_MODULES = {}
            sys.path.remove(tmp)
            for module in [m for m in sys.modules if m.split(".")[0] == EXTRA_PACKAGE]:
                del sys.modules[module]
            forget_code_migrations()


def onboarding_against_empty(rounds: int) -> tuple[list[float], list[float]]:
    """Onboarding here (N tenants) and into an empty database on the same server, taking
    turns, so that both see the same machine load: flatness without the load's drift."""
    from django.db import connection

    from renkei.tenants.schema import migrate_all

    here = connection.settings_dict["NAME"]
    empty = f"{here}_empty"

    def use(name: str) -> None:
        connection.close()
        connection.settings_dict["NAME"] = name

    def on_server(sql: str) -> None:
        """CREATE and DROP DATABASE run outside a transaction: not through Django's
        connection, which sends each statement with the tenant's schema in one message."""
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory")
        with psycopg.connect(**params, autocommit=True) as server:
            server.execute(sql)

    on_server(f'CREATE DATABASE "{empty}"')
    try:
        use(empty)
        migrate_all(verbosity=0)
        at_n, at_0 = [], []
        for _ in range(rounds):
            use(here)
            at_n += onboard(fresh_codes(1))
            use(empty)
            at_0 += onboard(fresh_codes(1))
    finally:
        use(here)
        on_server(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
    return at_n, at_0


def django_tenants_per_schema(schemas: list[str]) -> float:
    """Seconds per schema of `migrate_schemas --tenant` (the old path), schema by schema."""
    from django.core.management import call_command
    from django.db import connection

    start = time.perf_counter()
    for schema in schemas:
        call_command(
            "migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=0
        )
    connection.set_schema_to_public()
    return (time.perf_counter() - start) / len(schemas)


def timed_migrate(workers: int):
    from renkei.tenants.schema import migrate_tenants

    start = time.perf_counter()
    report = migrate_tenants(workers=workers)
    seconds = time.perf_counter() - start
    if report.problems:
        raise SystemExit(f"migrate reported problems: {report.problems[:3]}")
    return report, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1700)
    parser.add_argument("--sample", type=int, default=20, help="tenants the baseline migrates")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=20, help="onboardings compared with an empty database"
    )
    args = parser.parse_args()
    print(f"start: {load()} on {os.cpu_count()} cores")
    with scratch_database():
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
        import django

        django.setup()
        logging.getLogger("renkei.tenants").setLevel(logging.WARNING)  # a line per onboarding
        from renkei.tenants.models import Municipality
        from renkei.tenants.schema import migrate_all, tenant_schema_names

        migrate_all(verbosity=0)
        existing = Municipality.objects.count()
        start = time.perf_counter()
        times = onboard(fresh_codes(args.tenants))
        print(f"\n== onboarding {args.tenants} tenants: {time.perf_counter() - start:.0f} s")
        print_flatness(times, existing)
        at_n, at_0 = map(statistics.median, onboarding_against_empty(args.rounds))
        print(
            f"{args.rounds} more, taking turns with an empty database on the same server: "
            f"median {at_n:.3f} s here against {at_0:.3f} s there, ratio {at_n / at_0:.2f} "
            "(flat ≈ 1.0)"
        )
        print(load())

        schemas = tenant_schema_names()
        n = len(schemas)
        step = max(1, n // args.sample)
        sample = schemas[::step][: args.sample]

        print(f"\n== no-op migrate over {n} tenant schemas")
        report, new = timed_migrate(args.workers)
        assert report.up_to_date == n and not report.migrated
        old = django_tenants_per_schema(sample)
        print(f"renkei migrate (tenants): {new:.2f} s total, {new / n * 1000:.2f} ms per tenant")
        print(
            f"migrate_schemas --tenant, {len(sample)} sampled: {old * 1000:.0f} ms per tenant "
            f"-> {old * n:.0f} s for {n} (extrapolated); ratio old/new: {old * n / new:.0f}x"
        )
        print(load())

        print(f"\n== one added SQL migration ({len(EXTRA_SQL)} statements)")
        with added_migration():
            old = django_tenants_per_schema(sample)  # the sample is migrated the old way
            report, new = timed_migrate(args.workers)
            done = len(report.migrated)
            assert report.up_to_date == len(sample) and done == n - len(sample)
            print(
                f"renkei migrate (tenants), {args.workers} workers: {new:.1f} s for {done} "
                f"schemas, {new / done * 1000:.1f} ms per tenant -> {new / done * n:.1f} s for {n}"
            )
            print(
                f"migrate_schemas --tenant, {len(sample)} sampled: {old * 1000:.0f} ms per "
                f"tenant -> {old * n:.0f} s for {n} (extrapolated); "
                f"ratio old/new: {old * done / new:.0f}x"
            )
            report, after = timed_migrate(args.workers)
            assert report.up_to_date == n
            print(f"no-op again afterwards: {after:.2f} s, every schema current")
        print(load())


if __name__ == "__main__":
    main()
