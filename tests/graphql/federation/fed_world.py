"""A small committed world for the metric and federation tests.

The federation's fan-out threads and the HTTP server thread use their own database
connections, so they only see committed rows: this module onboards dedicated municipalities
(never the session's shibuya/shinjuku/osaka, which other tests expect empty), loads
synthetic data through the real connectors, commits, and removes everything again at the
end. Used by tests/graphql/federation/conftest.py and tests/edudata/test_metrics.py.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from renkei.tenants.codes import municipality_check_digit

SCHOOL_YEAR = 2025


def _code(first_five: str) -> str:
    return first_five + str(municipality_check_digit(first_five))


# code -> (name, pupils, seed, pupils who opt out)
WORLD = {
    _code("13101"): ("連携テスト区A", 300, 11, 6),
    _code("13102"): ("連携テスト区B", 200, 12, 0),
    _code("27102"): ("連携テスト市C", 200, 13, 0),
}
TOKYO_A, TOKYO_B, OSAKA_C = WORLD
# tests/edudata/test_metrics.py has its own municipality, so the two never step on each other.
METRICS_WORLD = {_code("13103"): ("指標テスト区", 400, 21, 8)}


@dataclass
class World:
    codes: list[str]
    users: dict[str, object] = field(default_factory=dict)
    opted_out: dict[str, list[int]] = field(default_factory=dict)

    def municipality(self, code: str):
        from renkei.tenants.models import Municipality

        return Municipality.objects.select_related("prefecture").get(code=code)


def build_world(spec: dict | None = None, *, days: int = 60, with_users: bool = True) -> World:
    """Onboard the municipalities of ``spec`` (default WORLD), import synthetic data, record
    opt-outs, create the test users; all committed."""
    from django.contrib.auth import get_user_model

    from renkei.accounts import policy
    from renkei.accounts.models import Membership
    from renkei.connectors.pipeline import do_import
    from renkei.demo import synth
    from renkei.edudata.models import ImportRun, Student
    from renkei.edudata.privacy import do_record_opt_out
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.context import in_tenant
    from renkei.tenants.models import Municipality, Prefecture

    spec = WORLD if spec is None else spec
    drop_world(spec, users=with_users)
    world = World(codes=list(spec))
    out = Path(tempfile.mkdtemp(prefix="renkei-fed-world-"))
    for code, (name, pupils, seed, opt_outs) in spec.items():
        municipality = do_onboard_municipality(code, name, actor=Actor.system("test"))
        synth.generate(
            code, out / code, students=pupils, days=days, seed=seed, school_year=SCHOOL_YEAR
        )
        steps = [
            ("oneroster", [out / code / "oneroster"]),
            ("c4th", sorted((out / code / "c4th").glob("*.csv"))),
            ("msgraph", [out / code / "msgraph"]),
        ]
        for connector, paths in steps:
            run = do_import(connector, municipality, actor=Actor.system("test"), paths=paths)
            assert run.status == ImportRun.Status.SUCCEEDED, (connector, run.message)
        add_learning(municipality, seed)
        if opt_outs:
            admin = policy.Principal(
                user_id=1,
                username="test-admin",
                grants=(
                    policy.Grant(
                        role="tenant_admin",
                        municipality_code=code,
                        prefecture_code=None,
                        school_codes=frozenset(),
                    ),
                ),
            )
            with in_tenant(municipality):
                # The pupils with the most absences: opting them out changes the figures.
                from renkei.edudata.models import AttendancePupilYear

                ids = list(
                    AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR)
                    .order_by("-absence_days", "student_id")
                    .values_list("student_id", flat=True)[:opt_outs]
                )
                for student in Student.objects.filter(pk__in=ids):
                    do_record_opt_out(
                        admin,
                        municipality,
                        student,
                        requested_at=dt.datetime(2025, 7, 1, tzinfo=dt.UTC),
                    )
            world.opted_out[code] = ids
    if with_users:
        users = get_user_model().objects
        a = Municipality.objects.get(code=next(iter(spec)))
        specs = {
            "fed-pref13": ("prefecture_analyst", None, "13"),
            "fed-pref27": ("prefecture_analyst", None, "27"),
            "fed-board": ("board_analyst", a, None),
            "fed-admin": ("tenant_admin", a, None),
            "fed-teacher": ("teacher", a, None),
            "fed-nobody": (None, None, None),
        }
        for username, (role, municipality, pref) in specs.items():
            user = users.create_user(username=username, password="pw-" + username)
            if role:
                Membership.objects.create(
                    user=user,
                    role=role,
                    municipality=municipality,
                    prefecture=Prefecture.for_code(pref) if pref else None,
                    school_codes=[],
                )
            world.users[username] = user
    return world


LEARNING_SUBJECTS = ("国語", "算数", "数学", "英語", "")


def add_learning(municipality, seed: int) -> int:
    """Learning-tool activity (as the xapi connector stores it) on school days of the world,
    for about two pupils in three each month, from a few minutes a week to hours; some
    statements without a duration. The synthetic generator has none yet. Refreshes the
    rollups; returns the number of rows."""
    import random

    from django.db import transaction

    from renkei.edudata import rollups
    from renkei.edudata.models import AttendanceDay, LearningActivity, Student
    from renkei.tenants.context import in_tenant

    rng = random.Random(seed * 7919)
    with in_tenant(municipality), transaction.atomic():
        days = sorted(set(AttendanceDay.objects.values_list("date", flat=True)))
        months: dict[tuple[int, int], list[dt.date]] = {}
        for day in days:
            months.setdefault((day.year, day.month), []).append(day)
        rows = []
        for student_id in Student.objects.order_by("pk").values_list("pk", flat=True):
            habit = rng.choice((0, 5, 15, 30, 60))  # usual minutes of a session
            for month_days in months.values():
                if not habit or rng.random() < 0.3:
                    continue
                picked = rng.sample(month_days, min(len(month_days), rng.randint(1, 12)))
                for n, day in enumerate(sorted(picked)):
                    when = dt.datetime.combine(day, dt.time(9 + n % 8), tzinfo=dt.UTC)
                    seconds = None if rng.random() < 0.1 else 60 * rng.randint(1, 2 * habit)
                    rows.append(
                        LearningActivity(
                            student_id=student_id,
                            verb="http://adlnet.gov/expapi/verbs/completed",
                            object_id=f"https://drill.example.jp/units/{n}",
                            occurred_at=when,
                            duration_seconds=seconds,
                            source_system="xapi",
                            subject=rng.choice(LEARNING_SUBJECTS),
                        )
                    )
        LearningActivity.objects.bulk_create(rows)
        rollups.refresh([SCHOOL_YEAR])
    return len(rows)


def drop_world(spec: dict | None = None, *, users: bool = True) -> None:
    """Remove the municipalities of ``spec`` (schemas, rows) and the test users."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from renkei.tenants.models import Domain, Municipality

    if users:
        get_user_model().objects.filter(username__startswith="fed-").delete()
    for municipality in Municipality.objects.filter(code__in=list(WORLD if spec is None else spec)):
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{municipality.schema_name}" CASCADE')
        Domain.objects.filter(tenant=municipality).delete()
        municipality.delete()
