"""The class board through the tenant GraphQL API: p50/p95 over warm runs, and SQL statements.

    .venv/bin/python bench/class_board.py [--pupils 40] [--runs 50] [--students 600] [--days 200]

Loads one municipality with synthetic data through the real connectors (OneRoster roster and
C4th exports: ``--students`` pupils × ``--days`` school days), puts ``--pupils`` of its pupils
(full records) in one homeroom, and POSTs the full class board query (names, absence summary,
alerts, the last two weeks of marks) as their teacher, through the whole Django stack
(tenant routing, session, CSRF-free test client, policy, access log). Prints p50/p95 of the
request time over ``--runs`` warm runs and the SQL statements of one request (with and
without django-tenants' ``SET search_path`` before each). Uses a fresh embedded PostgreSQL in
a temporary RENKEI_HOME unless DATABASE_URL is set. ``BENCH_SHOW_SQL=1`` lists the statements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

QUERY = """query($id: ID!, $asOf: Date!) { classBoard(homeroomId: $id, asOf: $asOf) {
  homeroom { name schoolYear school { name } } asOf rules { rule threshold description }
  pupils {
    attendanceNumber
    pupil { id name nameKana grade sex optedOut }
    absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message }
    alertsExcludedReason
    recentAttendance(days: 14) { date status }
  } } }"""

CODE = "131130"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pupils", type=int, default=40)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--students", type=int, default=600)
    parser.add_argument("--days", type=int, default=200)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["RENKEI_HOME"] = tempfile.mkdtemp(prefix="renkei-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from renkei.accounts.models import Membership
    from renkei.connectors.pipeline import do_import
    from renkei.demo import synth
    from renkei.edudata.models import (
        AttendanceDay,
        Enrollment,
        Homeroom,
        ImportRun,
        School,
        Student,
    )
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.context import in_tenant
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=0)
    municipality = Municipality.objects.filter(code=CODE).first() or do_onboard_municipality(
        CODE, "渋谷区", actor=Actor.system("bench")
    )
    out = Path(tempfile.mkdtemp(prefix="renkei-bench-synth-"))
    started = time.perf_counter()
    synth.generate(CODE, out, students=args.students, days=args.days, seed=1)
    for connector, paths in (
        ("oneroster", [out / "oneroster"]),
        ("c4th", sorted((out / "c4th").glob("*.csv"))),
    ):
        run = do_import(connector, municipality, actor=Actor.system("bench"), paths=paths)
        if run.status != ImportRun.Status.SUCCEEDED:
            raise SystemExit(f"import {connector} failed: {run.message}")
    with in_tenant(municipality):
        # The lower secondary school (C1 sorts after B1): more absences, so alerts show up.
        school = School.objects.order_by("-code").first()
        pupils = list(Student.objects.filter(school=school).order_by("pk")[: args.pupils])
        if len(pupils) < args.pupils:
            raise SystemExit(f"only {len(pupils)} pupils in {school.code}; raise --students")
        homeroom, _ = Homeroom.objects.get_or_create(
            school=school, school_year=2025, grade=9, name=f"ベンチ{args.pupils}人学級"
        )
        Enrollment.objects.filter(homeroom=homeroom).delete()
        Enrollment.objects.bulk_create(
            Enrollment(student=p, homeroom=homeroom, attendance_number=n)
            for n, p in enumerate(pupils, 1)
        )
        as_of = AttendanceDay.objects.filter(student__in=pupils).latest("date").date
        rows = AttendanceDay.objects.count()
    print(
        f"data: {args.students} pupils × {args.days} school days ({rows:,} attendance rows) "
        f"loaded in {time.perf_counter() - started:.1f} s; class of {args.pupils}, "
        f"as of {as_of}"
    )

    user, _ = get_user_model().objects.get_or_create(username="bench-teacher")
    Membership.objects.get_or_create(
        user=user,
        role="teacher",
        municipality=municipality,
        defaults={"school_codes": [school.code]},
    )
    client = Client()
    client.force_login(user)
    body = json.dumps({"query": QUERY, "variables": {"id": homeroom.pk, "asOf": str(as_of)}})

    def request() -> dict:
        response = client.post(f"/m/{CODE}/graphql", data=body, content_type="application/json")
        payload = response.json()
        if response.status_code != 200 or payload.get("errors"):
            raise SystemExit(f"class board failed: {response.status_code} {payload}")
        return payload

    for _ in range(3):  # warm up: connections, caches, the schema
        request()
    with CaptureQueriesContext(connection) as queries:
        payload = request()
    shown = len(payload["data"]["classBoard"]["pupils"])
    alerts = sum(len(p["alerts"]) for p in payload["data"]["classBoard"]["pupils"])
    statements = [q["sql"] for q in queries.captured_queries]
    real = [s for s in statements if not s.startswith("SET search_path")]
    data_queries = [s for s in real if s not in ("BEGIN", "COMMIT")]
    if os.environ.get("BENCH_SHOW_SQL"):
        print("\n".join(s[:120].replace("\n", " ") for s in real))
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        request()
        times.append((time.perf_counter() - start) * 1000)
    print(f"class board: {shown} pupils, {alerts} alerts")
    print(
        f"SQL per request: {len(data_queries)} queries (+ BEGIN/COMMIT around the access-log "
        f"INSERT = {len(real)}; {len(statements)} with django-tenants' SET search_path)"
    )
    print(
        f"over {args.runs} warm runs: p50 {statistics.median(times):.1f} ms, "
        f"p95 {percentile(times, 95):.1f} ms, min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
