"""Onboarding time as tenants grow: onboard N municipalities into a scratch database and print
the per-tenant time of the first 5 and the last 5. Flat is the target (the tenant schema is
replayed from migration SQL collected once; no tenant runs its migrations from scratch).

    .venv/bin/python bench/onboarding.py [--tenants 50]

Uses a fresh embedded PostgreSQL in a temporary RENKEI_HOME unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from renkei.platform.audit import Actor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=50)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["RENKEI_HOME"] = tempfile.mkdtemp(prefix="renkei-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django

    django.setup()
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.codes import municipality_check_digit
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=0)
    existing = Municipality.objects.count()
    codes = []
    local = 500
    while len(codes) < args.tenants:
        five = f"13{local:03d}"
        code = five + str(municipality_check_digit(five))
        if not Municipality.objects.filter(code=code).exists():
            codes.append(code)
        local += 1

    times = []
    for code in codes:
        start = time.perf_counter()
        do_onboard_municipality(code, f"ベンチ{code}", actor=Actor.system("bench"))
        times.append(time.perf_counter() - start)

    first, last = times[:5], times[-5:]
    print(
        f"tenants before: {existing}, onboarded: {len(times)} "
        "(the first also collects the tenant migration SQL, once per process)"
    )
    print("first 5 (s): " + " ".join(f"{t:.3f}" for t in first))
    print("last 5  (s): " + " ".join(f"{t:.3f}" for t in last))
    ratio = statistics.median(last) / statistics.median(first)
    print(
        f"median first 5: {statistics.median(first):.3f} s, median last 5: "
        f"{statistics.median(last):.3f} s, ratio last/first: {ratio:.2f} (flat ≈ 1.0)"
    )


if __name__ == "__main__":
    main()
