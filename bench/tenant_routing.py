"""What sending the tenant's schema with every statement costs (renkei.tenants.postgresql_backend)
against django-tenants' own backend (one ``SET search_path`` per cursor), measured in the same
run on the same server, without a pooler: small ORM reads in a tenant, alone (autocommit) and
five to a transaction. Prints each backend's median time per read and the ratio.

    .venv/bin/python bench/tenant_routing.py [--reads 2000] [--rounds 7]

Uses a fresh embedded PostgreSQL in a temporary RENKEI_HOME unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

BACKENDS = {
    "default": "renkei.tenants.postgresql_backend (schema with each statement)",
    "baseline": "django_tenants.postgresql_backend (SET search_path per cursor)",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=2000, help="reads per round and backend")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["RENKEI_HOME"] = tempfile.mkdtemp(prefix="renkei-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["baseline"] = {
        **settings.DATABASES["default"],
        "ENGINE": "django_tenants.postgresql_backend",
    }
    from django.db import connections, transaction

    from renkei.edudata.models import School
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=0)
    municipality = Municipality.objects.filter(code="131130").first() or do_onboard_municipality(
        "131130", "渋谷区", actor=Actor.system("bench")
    )
    for alias in BACKENDS:
        connections[alias].set_tenant(municipality)
    if not School.objects.filter(code="B113211300012").exists():
        connections["default"].set_tenant(municipality)
        School.objects.create(code="B113211300012", name="ベンチ小学校", school_type="B1")
    pk = School.objects.using("default").get(code="B113211300012").pk

    def alone(alias: str) -> None:
        for _ in range(args.reads):
            School.objects.using(alias).filter(pk=pk).first()

    def in_transactions(alias: str) -> None:
        for _ in range(args.reads // 5):
            with transaction.atomic(using=alias):
                for _ in range(5):
                    School.objects.using(alias).filter(pk=pk).first()

    for workload in (alone, in_transactions):
        times: dict[str, list[float]] = {alias: [] for alias in BACKENDS}
        for _ in range(args.rounds):  # alternate, so that load on the machine hits both alike
            for alias in BACKENDS:
                start = time.perf_counter()
                workload(alias)
                times[alias].append((time.perf_counter() - start) / args.reads)
        median = {alias: statistics.median(t) for alias, t in times.items()}
        print(f"{workload.__name__.replace('_', ' ')}:")
        for alias, label in BACKENDS.items():
            print(f"  {label}: {median[alias] * 1e6:.0f} µs per read")
        print(f"  ratio (schema with each statement / baseline): "
              f"{median['default'] / median['baseline']:.2f}")  # fmt: skip
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
