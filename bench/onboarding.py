"""Onboarding time as tenants grow: onboard N municipalities into a scratch database and print
the per-tenant time of the first 5 and the last 5. Flat is the target (the tenant schema is
replayed from migration SQL collected once; no tenant runs its migrations from scratch).

    .venv/bin/python bench/onboarding.py [--tenants 50]

Uses a fresh embedded PostgreSQL in a temporary RENKEI_HOME unless DATABASE_URL is set.
bench/migrate.py onboards its 1,700 tenants with the functions here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def embedded_home(prefix: str) -> Iterator[None]:
    """A fresh RENKEI_HOME (its embedded PostgreSQL) for the block; then the server stopped
    and the directory removed (a 1,700-tenant one holds 4 GB)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["RENKEI_HOME"] = str(home)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        stop_embedded_server(home)
        shutil.rmtree(home, ignore_errors=True)


def stop_embedded_server(home: Path) -> None:
    """Stop the embedded PostgreSQL of ``home``: pgserver stops it with the last process that
    used it, and a process killed by a signal never says it is gone."""
    pid_file = home / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def fresh_codes(count: int) -> list[str]:
    """``count`` valid municipality codes not onboarded yet, spread over the 47 prefectures
    (local numbers 500-999, which real municipalities rarely use)."""
    from renkei.tenants.codes import municipality_check_digit
    from renkei.tenants.models import Municipality

    taken = set(Municipality.objects.values_list("code", flat=True))
    codes = []
    for local in range(500, 1000):
        for prefecture in range(1, 48):
            five = f"{prefecture:02d}{local:03d}"
            code = five + str(municipality_check_digit(five))
            if code not in taken:
                codes.append(code)
            if len(codes) == count:
                return codes
    raise ValueError(f"at most {len(codes)} new codes in the bench's range")


def onboard(codes: list[str]) -> list[float]:
    """Onboard each code through the real action; the seconds each took."""
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import do_onboard_municipality

    times = []
    for code in codes:
        start = time.perf_counter()
        do_onboard_municipality(code, f"ベンチ{code}", actor=Actor.system("bench"))
        times.append(time.perf_counter() - start)
    return times


def print_flatness(times: list[float], existing: int) -> None:
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
    if len(times) >= 400:  # five single samples are noisy on a shared machine
        head, tail = statistics.median(times[1:101]), statistics.median(times[-100:])
        print(
            f"median of tenants 2-101: {head:.3f} s, of the last 100: {tail:.3f} s, "
            f"ratio: {tail / head:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=50)
    args = parser.parse_args()
    if "DATABASE_URL" in os.environ:
        measure(args.tenants)
    else:
        with embedded_home("renkei-bench-"):
            measure(args.tenants)


def measure(tenants: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django

    django.setup()
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=0)
    existing = Municipality.objects.count()
    print_flatness(onboard(fresh_codes(tenants)), existing)


if __name__ == "__main__":
    main()
