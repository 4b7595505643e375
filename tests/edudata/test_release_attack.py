"""An attacker who holds every table every role can read, across metrics, levels and time.

The world is a small prefecture (神奈川県 here) of four small municipalities, so most cells
are small. The attacker pulls every released table: each municipality's and each school's
(board analysts and school staff, through metrics.compute, which the tenant API serves as it
is) and the prefecture's with and without the municipality breakdown (prefecture analysts,
through compute_prefecture, which every federation field serves: see
tests/graphql/federation/test_federation_consistency.py), for every metric and breakdown.

Single snapshot: an integer program over the finest cells of every quantity - pupils by
absence bin, pupil-months by 10-day class, absence and required days, nurse visitors and
visits, Microsoft 365 users, pupil-months by learning-minutes bin, assessment bins - with every
released figure as an equation (at
its *exact* value: stronger than the real attacker, who sees perturbed figures) and the
relations between metrics as constraints (a pupil absent 10 days contributes at least 10
absence days, visits are at least visitors, a month's pupils are the year's, ...). No
withheld figure may be pinned: each must take at least two values over the integer
solutions. Zeros count.

Over time: the attacker records every table, one pupil opts out (or the school changes one
pupil's 不登校 classification), the attacker records them again and bounds that pupil's
contribution to every figure from the difference and the published tolerance; nothing about
the pupil may be decided.

不登校 (``futoko``) is released to each municipality's own board and schools only: the
attacker holds every municipality's and school's table of it (every board's together), with
the population and long-term absence figures it could be differenced against; no prefecture
table of it exists.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphql" / "federation"))
from differencing import LONG_TERM_BINS, absence_bin
from fed_world import SCHOOL_YEAR, _code, build_world, drop_world

from renkei.edudata import metrics
from renkei.edudata.metrics import METRICS, TOTAL, compute, compute_prefecture
from renkei.edudata.metrics.release import MEASURE_STEP, NOISE_BOUND, STICKY_BOUND
from renkei.tenants.context import in_tenant

np = pytest.importorskip("numpy")
optimize = pytest.importorskip("scipy.optimize")
sparse = pytest.importorskip("scipy.sparse")

pytestmark = pytest.mark.slow

# code -> (name, pupils, seed, pupils who opt out): small towns, most cells below k.
ATTACK_WORLD = {
    _code("14301"): ("攻撃テスト町A", 130, 31, 0),
    _code("14302"): ("攻撃テスト村B", 45, 32, 0),
    _code("14303"): ("攻撃テスト村C", 25, 33, 0),
    _code("14304"): ("攻撃テスト町D", 90, 34, 0),
}
DAYS = 45
ALL_BINS = ("0", "1-9", "10-29", "30+:illness", "30+:accident", "30+:other")
LONG_BINS = tuple(b for b in ALL_BINS if b.startswith("30+"))
# 不登校: every long-term absentee of a world is classified, 不登校 for two in three. The
# attack world's small towns have few, all withheld; so a second world (two larger towns of
# 新潟県, a sixth of whose pupils are long-term absent) has 不登校 figures released to attack.
FUTOKO_WORLD = {
    _code("15202"): ("不登校テスト市", 260, 41, 0),
    _code("15204"): ("不登校テスト町", 160, 42, 0),
}
FUTOKO_TOWN = _code("15202")
DIST_BINS = {
    "0": {"0"},
    "1-9": {"1-9"},
    "10-29": {"10-29"},
    "30+": {"30+:illness", "30+:accident", "30+:other"},
}
STANDARD_GRADES = {"B1": 6, "C1": 3}
SCORE_LEAVES = metrics._SCORE_LEAVES
SCORE_GROUPS = {"0-39": SCORE_LEAVES[:4], "40-69": SCORE_LEAVES[4:7], "70-100": SCORE_LEAVES[7:]}


@pytest.fixture(scope="module")
def attack_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        built = build_world(ATTACK_WORLD, days=DAYS, with_users=False)
        _classify_long_absences(built, ATTACK_WORLD)
    yield built
    with django_db_blocker.unblock():
        drop_world(ATTACK_WORLD, users=False)


@pytest.fixture
def prefecture(attack_world, db):
    return attack_world


@pytest.fixture(scope="module")
def futoko_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        built = build_world(FUTOKO_WORLD, days=DAYS, with_users=False)
        _classify_long_absences(built, FUTOKO_WORLD, every=6)
    yield built
    with django_db_blocker.unblock():
        drop_world(FUTOKO_WORLD, users=False)


@pytest.fixture
def futoko_prefecture(futoko_world, db):
    return futoko_world


def _classify_long_absences(world, spec, every=None):
    """Each long-term absentee classified as schools do; with ``every``, that share of the
    pupils made long-term absent first (all but their first 10 days)."""
    from renkei.edudata import rollups
    from renkei.edudata.models import (
        AbsenceClassification,
        AttendanceDay,
        AttendancePupilYear,
        Student,
    )

    first = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    for code in spec:
        with in_tenant(world.municipality(code)):
            if every:
                pks = list(Student.objects.order_by("pk").values_list("pk", flat=True))[::every]
                for pk in pks:
                    days = AttendanceDay.objects.filter(student_id=pk).order_by("date")
                    later = list(days.values_list("pk", flat=True)[10:])
                    AttendanceDay.objects.filter(pk__in=later).update(status="absent_other")
                rollups.refresh([SCHOOL_YEAR])
            long_term = AttendancePupilYear.objects.filter(
                school_year=SCHOOL_YEAR, absence_days__gte=30
            ).order_by("student_id")
            # A first decision, then the current one (the rollup must count the latest).
            AbsenceClassification.objects.bulk_create(
                AbsenceClassification(
                    student_id=row.student_id,
                    school_year=SCHOOL_YEAR,
                    reason=reason,
                    absence_days=row.absence_days,
                    decided_at=first + dt.timedelta(days=later),
                    decided_by="test",
                )
                for i, row in enumerate(long_term)
                for later, reason in enumerate(("other", "futoko" if i % 3 else "illness"))
            )
            rollups.refresh([SCHOOL_YEAR], sources=[AbsenceClassification._meta.db_table])


def _sql(sql, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# -- the truth, from each tenant's rollups ------------------------------------------------


class Truth:
    """The finest cells of every quantity, with their true values (variables of the
    attack), read straight from the rollups of each municipality."""

    def __init__(self, world, spec=ATTACK_WORLD):
        self.spec = spec
        self.prefecture = next(iter(spec))[:2]
        self.value: dict[tuple, int] = defaultdict(int)
        self.groups: dict[str, dict[int, str]] = {}  # municipality -> school id -> type
        self.school_ids: dict[str, dict[str, int]] = {}  # municipality -> 学校コード -> id
        self.months: set[str] = set()
        self.nurse_months: set[str] = set()
        self.m365_months: set[str] = set()
        self.learning_months: set[str] = set()
        self.subjects: set[str] = set()
        self.days_in: dict[str, int] = {}  # month -> most school days of any pupil
        for code in spec:
            with in_tenant(world.municipality(code)):
                self._read(code)
        self.grades = {
            (m, s): [f"{kind}-{g}" for g in range(1, STANDARD_GRADES[kind] + 1)]
            for m, schools in self.groups.items()
            for s, kind in schools.items()
        }

    def _read(self, m):
        self.school_ids[m] = dict(_sql("SELECT code, id FROM edudata_school"))
        schools = self.groups.setdefault(m, {})
        for s, kind, grade, ill, acc, oth, reason in _sql(
            """
                SELECT y.school_id, y.school_type, y.grade, y.absent_illness, y.absent_accident,
                       y.absent_other,
                       (SELECT c.reason FROM edudata_absenceclassification c
                        WHERE c.student_id = y.student_id AND c.school_year = y.school_year
                        ORDER BY c.decided_at DESC, c.id DESC LIMIT 1)
                FROM edudata_attendancepupilyear y JOIN edudata_student st ON st.id = y.student_id
                WHERE st.opted_out_at IS NULL AND y.school_year = %s""",
            [SCHOOL_YEAR],
        ):
            schools[s] = kind
            b = absence_bin({"ill": ill, "acc": acc, "oth": oth})
            self.value["pop", m, s, f"{kind}-{grade}", b] += 1
            if b in LONG_BINS and reason == "futoko":
                self.value["fu", m, s, f"{kind}-{grade}", b] += 1
        for s, kind, grade, month, days, excused, absent in _sql(
            """
                SELECT a.school_id, a.school_type, a.grade, a.month, a.school_days,
                       a.suspension + a.mourning,
                       a.absent_illness + a.absent_accident + a.absent_other
                FROM edudata_attendancepupilmonth a
                JOIN edudata_student st ON st.id = a.student_id
                WHERE st.opted_out_at IS NULL AND a.school_year = %s""",
            [SCHOOL_YEAR],
        ):
            mo, g = metrics.month_code(SCHOOL_YEAR, month), f"{kind}-{grade}"
            self.months.add(mo)
            self.days_in[mo] = max(self.days_in.get(mo, 0), days)
            self.value["mon", m, s, g, mo, "ge10" if absent >= 10 else "lt10"] += 1
            self.value["A", m, s, g, mo] += absent
            self.value["R", m, s, g, mo] += days - excused
        for s, kind, grade, month, reason, pupils, visits in _sql(
            """
                SELECT school_id, school_type, grade, month, reason_category, pupils, visits
                FROM edudata_nursevisitmonth WHERE school_year = %s""",
            [SCHOOL_YEAR],
        ):
            mo, g = metrics.month_code(SCHOOL_YEAR, month), f"{kind}-{grade}"
            self.nurse_months.add(mo)
            self.value["np", m, s, g, mo, reason] += pupils
            self.value["nv", m, s, g, mo, reason] += visits
        for s, kind, grade, month, app, n in _sql(
            """
                SELECT school_id, school_type, grade, month, app, active_pupils
                FROM edudata_m365appmonth WHERE school_year = %s AND app = ANY(%s)""",
            [SCHOOL_YEAR, list(metrics.M365_APPS)],
        ):
            mo = metrics.month_code(SCHOOL_YEAR, month)
            self.m365_months.add(mo)
            self.value["ms", m, s, f"{kind}-{grade}", mo, app] += n
        # The month's pupils by their learning minutes per week (no learning that month: "0").
        for s, kind, grade, month, weekly in _sql(
            """
                SELECT a.school_id, a.school_type, a.grade, a.month, l.weekly_minutes
                FROM edudata_attendancepupilmonth a
                JOIN edudata_student st ON st.id = a.student_id
                LEFT JOIN edudata_learningpupilmonth l ON l.student_id = a.student_id
                     AND l.school_year = a.school_year AND l.month = a.month
                WHERE st.opted_out_at IS NULL AND a.school_year = %s""",
            [SCHOOL_YEAR],
        ):
            mo = metrics.month_code(SCHOOL_YEAR, month)
            b = learning_bin(weekly)
            if b != "0":
                self.learning_months.add(mo)
            self.value["ln", m, s, f"{kind}-{grade}", mo, b] += 1
        for s, kind, grade, subject, score_bin, n in _sql(
            """
                SELECT school_id, school_type, grade, subject, score_bin, pupils
                FROM edudata_assessmentbin WHERE school_year = %s AND kind = 'survey'""",
            [SCHOOL_YEAR],
        ):
            self.subjects.add(subject)
            self.value[
                "as", m, s, f"{kind}-{grade}", subject, SCORE_LEAVES[min(max(score_bin, 0), 9)]
            ] += n

    # the finest cells -------------------------------------------------------------------
    def cells(self, area, grade):
        """(municipality, school, grade leaf) under an area and a grade code."""
        kind, m, s = area
        out = []
        for (mm, ss), grades in self.grades.items():
            if (kind == "muni" and mm != m) or (kind == "school" and (mm, ss) != (m, s)):
                continue
            out += [
                (mm, ss, g)
                for g in grades
                if grade in (TOTAL, g) or ("-" not in grade and g.startswith(grade + "-"))
            ]
        return out

    def variables(self):
        months = sorted(self.months)
        nurse = sorted(self.months | self.nurse_months)
        out = []
        for m, s, g in self.cells(("pref", None, None), TOTAL):
            out += [("pop", m, s, g, b) for b in ALL_BINS]
            out += [("fu", m, s, g, b) for b in LONG_BINS]  # 不登校 among them
            for mo in months:
                out += [("mon", m, s, g, mo, c) for c in ("lt10", "ge10")]
                out += [("A", m, s, g, mo), ("R", m, s, g, mo)]
            for mo in nurse:
                out += [(q, m, s, g, mo, r) for q in ("np", "nv") for r in metrics.NURSE_REASONS]
            for mo in sorted(self.m365_months):
                out += [("ms", m, s, g, mo, app) for app in metrics.M365_APPS]
            for mo in sorted(self.learning_months):
                out += [("ln", m, s, g, mo, b) for b in metrics.LEARNING_BINS]
            for subject in sorted(self.subjects):
                out += [("as", m, s, g, subject, b) for b in SCORE_LEAVES]
        return out


def learning_bin(weekly):
    if weekly is None:
        return "0"
    return (
        "1-29" if weekly < 30 else "30-59" if weekly < 60 else "60-119" if weekly < 120 else "120+"
    )


# -- what every role can pull -------------------------------------------------------------


def _subsets(dims):
    return [list(c) for n in range(len(dims) + 1) for c in itertools.combinations(dims, n)]


def pull_everything(world, truth, names=None):
    """(area, metric, cell) for every table every role can read, at every level: the
    prefecture's for the metrics released there, each municipality's and school's for all
    (or for the metrics ``names``)."""
    pulled = []
    for spec in METRICS.values():
        if names is not None and spec.name not in names:
            continue
        prefecture_wide = spec.scope == metrics.PREFECTURE_WIDE
        for breakdown in _subsets(spec.dimensions):
            if prefecture_wide:
                tables = compute_prefecture(
                    spec.name, truth.prefecture, school_year=SCHOOL_YEAR, breakdown=breakdown
                )
                pulled += [(("pref", None, None), spec.name, c) for c in tables[TOTAL].cells]
            for code in truth.spec:
                if prefecture_wide:
                    pulled += [(("muni", code, None), spec.name, c) for c in tables[code].cells]
                municipality = world.municipality(code)
                own = compute(spec.name, municipality, school_year=SCHOOL_YEAR, breakdown=breakdown)
                pulled += [(("muni", code, None), spec.name, c) for c in own.cells]
                for school_code, school_id in truth.school_ids[code].items():
                    if school_id not in truth.groups[code]:
                        continue
                    table = compute(
                        spec.name,
                        municipality,
                        school_year=SCHOOL_YEAR,
                        breakdown=breakdown,
                        school_code=school_code,
                    )
                    pulled += [(("school", code, school_id), spec.name, c) for c in table.cells]
    return pulled


def figures(truth, area, name, cell):
    """The cell's released or withheld figures as linear forms over the finest cells:
    [(what, {variable: coefficient}, released value or None)]."""
    key = cell.key
    g = key.get("grade", TOTAL)
    m = key.get("month", str(SCHOOL_YEAR))
    year = m == str(SCHOOL_YEAR)
    groups = truth.cells(area, g)

    def form(quantity, *rest_choices, months=None):
        out = {}
        for mm, s, gg in groups:
            for rest in itertools.product(*rest_choices):
                if months is None:
                    out[(quantity, mm, s, gg, *rest)] = 1
                else:
                    for mo in months:
                        out[(quantity, mm, s, gg, mo, *rest)] = 1
        return out

    def in_scope(months):
        return sorted(months) if year else [m]

    parts = []
    if name in ("long_term_absence", "absence_days_distribution"):
        dim = "absence_category" if name == "long_term_absence" else "absence_days"
        bins = LONG_TERM_BINS if name == "long_term_absence" else DIST_BINS
        c = key[dim]
        parts.append(("pupils", form("pop", ALL_BINS if c == TOTAL else sorted(bins[c]))))
        parts.append(("denominator", form("pop", ALL_BINS)))
    elif name == "futoko":
        parts.append(("pupils", form("fu", LONG_BINS)))
        parts.append(("denominator", form("pop", ALL_BINS)))
    elif name == "attendance_rate":
        months = in_scope(truth.months)
        parts.append(
            (
                "pupils",
                form("pop", ALL_BINS) if year else form("mon", ("lt10", "ge10"), months=months),
            )
        )
        required = form("R", months=months)
        attended = {**required, **{v: -1 for v in form("A", months=months)}}
        parts.append(("numerator", attended))
        parts.append(("denominator", required))
    elif name == "monthly_absence_10_days":
        c = key["monthly_absence"]
        months = in_scope(truth.months)
        parts.append(
            ("pupils", form("mon", ("lt10", "ge10") if c == TOTAL else (c,), months=months))
        )
        parts.append(("denominator", form("mon", ("lt10", "ge10"), months=months)))
    elif name == "nurse_visits_per_100":
        r = key["nurse_reason"]
        reasons = metrics.NURSE_REASONS if r == TOTAL else (r,)
        months = in_scope(truth.months | truth.nurse_months)
        parts.append(("pupils", form("np", reasons, months=months)))
        parts.append(("numerator", form("nv", reasons, months=months)))
        parts.append(
            (
                "denominator",
                form("pop", ALL_BINS) if year else form("mon", ("lt10", "ge10"), months=[m]),
            )
        )
    elif name == "m365_active_rate":
        months = in_scope(truth.m365_months)
        parts.append(("pupils", form("ms", (key["app"],), months=months)))
        parts.append(("denominator", form("mon", ("lt10", "ge10"), months=months)))
    elif name in ("learning_minutes_distribution", "learning_active_rate"):
        months = in_scope(truth.learning_months)
        b = key.get("learning_minutes", metrics.LEARNING_ACTIVE)
        population = form("mon", ("lt10", "ge10"), months=months)
        if b == TOTAL:
            parts.append(("pupils", population))
        else:
            bins = metrics.LEARNING_BINS[1:] if b == metrics.LEARNING_ACTIVE else (b,)
            parts.append(("pupils", form("ln", bins, months=months)))
        parts.append(("denominator", population))
    elif name == "assessment_score_distribution":
        b, subject = key["score_bin"], key["subject"]
        bins = SCORE_LEAVES if b == TOTAL else SCORE_GROUPS.get(b, (b,))
        parts.append(("pupils", form("as", (subject,), bins)))
        parts.append(("denominator", form("as", (subject,), SCORE_LEAVES)))
    value = {"pupils": cell.pupils, "numerator": cell.numerator, "denominator": cell.denominator}
    return [
        ((area, name, tuple(sorted(key.items())), field), f, value[field])
        for field, f in parts
        if f
    ]


def is_magnitude(what):
    """Days and visits: released within the published tolerance, and only so (their
    exact values are protected by the noise, not by suppression)."""
    name, field = what[1], what[3]
    return field != "pupils" and name in ("attendance_rate", "nurse_visits_per_100")


# -- the integer program -------------------------------------------------------------------


class Attack:
    """Integer solutions consistent with everything released, and the relations between
    metrics that hold for any data."""

    def __init__(self, truth, released):
        """``released``: {what: (form, served value)}. A count is an equation at its exact
        value (stronger than the perturbed figure served); days and visits are known within
        the published tolerance of the value served, as a real attacker knows them."""
        self.truth = truth
        self.names = truth.variables()
        self.index = {v: i for i, v in enumerate(self.names)}
        self.x_true = np.array([truth.value.get(v, 0) for v in self.names], dtype=float)
        rows, lower, upper = [], [], []

        def constrain(coefficients, lo, hi):
            rows.append(coefficients)
            lower.append(lo)
            upper.append(hi)

        seen = set()
        for what, (f, served) in released.items():
            if is_magnitude(what):
                tolerance = _tolerance(what, truth)
                constrain(f, served - tolerance, served + tolerance)
            elif frozenset(f.items()) not in seen:
                seen.add(frozenset(f.items()))
                constrain(f, self.at_truth(f), self.at_truth(f))
        self._relations(constrain)
        n = len(self.names)
        matrix = self.matrix(rows)
        self.constraints = optimize.LinearConstraint(matrix, lower, upper)
        self.integrality = np.ones(n)
        self.solves: list[float] = []
        # Known to anyone: no group is larger than the prefecture's pupils, no sum of days
        # larger than all of them for every school day.
        pupils = sum(v for k, v in truth.value.items() if k[0] == "pop")
        days = pupils * sum(truth.days_in.values())
        self.bounds = optimize.Bounds(
            np.zeros(n),
            np.array(
                [days if v[0] in ("A", "R", "nv") else pupils for v in self.names], dtype=float
            ),
        )
        residual = matrix @ self.x_true
        assert np.all(residual >= np.array(lower) - 1e-6), "the truth breaks a relation"
        assert np.all(residual <= np.array(upper) + 1e-6), "the truth breaks a relation"

    def matrix(self, forms):
        data, rows, cols = [], [], []
        for r, f in enumerate(forms):
            for v, c in f.items():
                rows.append(r)
                cols.append(self.index[v])
                data.append(c)
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(forms), len(self.names)))

    def _relations(self, constrain):
        t = self.truth
        inf = np.inf
        for m, s, g in t.cells(("pref", None, None), TOTAL):
            pupils = {("pop", m, s, g, b): 1 for b in ALL_BINS}
            for b in LONG_BINS:  # 不登校 are some of the long-term absentees
                constrain({("fu", m, s, g, b): 1, ("pop", m, s, g, b): -1}, -inf, 0)
            high = {("pop", m, s, g, b): 1 for b in ALL_BINS if b not in ("0", "1-9")}
            absences = {}
            for mo in sorted(t.months):
                days = t.days_in[mo]
                lt, ge = ("mon", m, s, g, mo, "lt10"), ("mon", m, s, g, mo, "ge10")
                a, r = ("A", m, s, g, mo), ("R", m, s, g, mo)
                absences[a] = 1
                constrain({a: 1, ge: -10}, 0, inf)  # 10+ days each
                constrain({a: 1, lt: -9, ge: -days}, -inf, 0)  # at most 9 / the month
                constrain({r: 1, lt: -days, ge: -days}, -inf, 0)  # required <= school days
                constrain({r: 1, a: -1}, 0, inf)  # absent <= required
                constrain({lt: 1, ge: 1, **{p: -1 for p in pupils}}, -inf, 0)  # in the year
                constrain({ge: 1, **{p: -1 for p in high}}, -inf, 0)  # 10+ in the year too
                for r_ in metrics.NURSE_REASONS:
                    visitors, visits = ("np", m, s, g, mo, r_), ("nv", m, s, g, mo, r_)
                    if visitors in self.index:
                        constrain({visits: 1, visitors: -1}, 0, inf)
                        constrain({visitors: 1, lt: -1, ge: -1}, -inf, 0)
                for app in metrics.M365_APPS:
                    if ("ms", m, s, g, mo, app) in self.index:
                        constrain({("ms", m, s, g, mo, app): 1, lt: -1, ge: -1}, -inf, 0)
                # The learning bins split exactly the month's pupils.
                bins = {("ln", m, s, g, mo, b): 1 for b in metrics.LEARNING_BINS}
                if all(v in self.index for v in bins):
                    constrain({**bins, lt: -1, ge: -1}, 0, 0)
            # yearly absence days against the absence bins of the year
            year_days = sum(t.days_in.values())
            low = {
                ("pop", m, s, g, "1-9"): -1,
                ("pop", m, s, g, "10-29"): -10,
                **{("pop", m, s, g, b): -30 for b in ALL_BINS if b.startswith("30+")},
            }
            constrain({**absences, **low}, 0, inf)
            top = {
                ("pop", m, s, g, "1-9"): -9,
                ("pop", m, s, g, "10-29"): -29,
                **{("pop", m, s, g, b): -year_days for b in ALL_BINS if b.startswith("30+")},
            }
            constrain({**absences, **top}, -inf, 0)
            for subject in t.subjects:
                took = {("as", m, s, g, subject, b): 1 for b in SCORE_LEAVES}
                constrain({**took, **{p: -1 for p in pupils}}, -inf, 0)

    def at_truth(self, f):
        return sum(c * self.truth.value.get(v, 0) for v, c in f.items())

    def vector(self, f):
        out = np.zeros(len(self.names))
        for v, c in f.items():
            out[self.index[v]] = c
        return out

    def bounds_of(self, objective):
        """The least value of ``objective`` over the real relaxation (linear programming)."""
        started = time.perf_counter()
        result = optimize.linprog(
            objective,
            bounds=np.column_stack([self.bounds.lb, self.bounds.ub]),
            method="highs",
            options={"time_limit": 60},
            **self._linear(),
        )
        self.solves.append(time.perf_counter() - started)
        assert result.status == 0, result.message
        return result

    def _linear(self):
        """The constraints as linprog's A_ub x <= b_ub and A_eq x = b_eq."""
        if not hasattr(self, "_cached"):
            matrix, lo, hi = self.constraints.A, self.constraints.lb, self.constraints.ub
            eq = lo == hi
            upper = np.isfinite(hi) & ~eq
            lower = np.isfinite(lo) & ~eq
            self._cached = {
                "A_eq": matrix[eq],
                "b_eq": lo[eq],
                "A_ub": sparse.vstack([matrix[upper], -matrix[lower]]).tocsr(),
                "b_ub": np.concatenate([hi[upper], -lo[lower]]),
            }
        return self._cached

    def integer_solution_with(self, vector, lo, hi, seconds=10.0):
        """An integer solution where ``vector @ x`` lies in [lo, hi], or None (with whether
        the search was conclusive)."""
        extra = optimize.LinearConstraint(vector.reshape(1, -1), [lo], [hi])
        result = optimize.milp(
            np.zeros(len(self.names)),
            integrality=self.integrality,
            bounds=self.bounds,
            constraints=[self.constraints, extra],
            options={"time_limit": seconds},
        )
        return result.x, result.status == 2

    def pinned(self, targets, integer_checks=30):
        """The withheld figures (of ``targets``, {what: form}) the attacker can decide.

        Linear programming first: a figure whose real range over everything released does
        not reach one more or one less than its true value is pinned (its integer range is
        a single value). Then, for the figures that are zero (the most telling) and a sample
        of the rest, an integer program looks for an integer solution one away: a proof of
        infeasibility pins the figure too.
        """
        rng = random.Random(7)
        whats = list(targets)
        forms = self.matrix([targets[w] for w in whats])
        truth = forms @ self.x_true
        low, high = truth.copy(), truth.copy()

        def record(x):
            values = forms @ x
            np.minimum(low, values, out=low)
            np.maximum(high, values, out=high)

        def open_():
            return np.flatnonzero((high < truth + 1 - 1e-6) & (low > truth - 1 + 1e-6))

        # Far-apart solutions first: each one clears every figure it moves.
        for _ in range(30):
            left = open_()
            if not len(left):
                break
            weights = np.zeros(len(whats))
            weights[left] = [rng.choice((-1.0, 1.0)) * rng.random() for _ in left]
            record(self.bounds_of(forms.T @ weights).x)
        # Then each figure left, down and up.
        for i in open_():
            for sign in (1.0, -1.0):
                if low[i] <= truth[i] - 1 + 1e-6 or high[i] >= truth[i] + 1 - 1e-6:
                    break
                record(self.bounds_of(sign * forms[i].toarray().ravel()).x)
        found = [whats[i] for i in open_()]
        # Integers: zeros first, then a sample of the others.
        cleared = [i for i in range(len(whats)) if whats[i] not in found]
        zeros = [i for i in cleared if truth[i] == 0]
        others = [i for i in cleared if truth[i] != 0]
        rng.shuffle(zeros)
        rng.shuffle(others)
        for i in (zeros[: integer_checks // 2] + others)[:integer_checks]:
            vec = forms[i].toarray().ravel()
            up, proven_up = self.integer_solution_with(vec, truth[i] + 1, np.inf)
            if up is not None:
                continue
            down, proven_down = self.integer_solution_with(vec, -np.inf, truth[i] - 1)
            if down is None and proven_up and proven_down:
                found.append(whats[i])
        return found


def _split(pulled, truth):
    """({what: (form, served value)} released, {what: form} withheld and not released as
    the same form elsewhere)."""
    released, withheld = {}, {}
    for area, name, cell in pulled:
        for what, f, value in figures(truth, area, name, cell):
            if value is None:
                withheld.setdefault(frozenset(f.items()), (what, f))
            else:
                released[what] = (f, value)
    forms = {frozenset(f.items()) for what, (f, _) in released.items() if not is_magnitude(what)}
    return released, {what: f for key, (what, f) in withheld.items() if key not in forms}


def test_no_withheld_figure_is_pinned_by_every_table_of_every_role(prefecture):
    # given every table every role can read, and the truth behind them
    truth = Truth(prefecture)
    pulled = pull_everything(prefecture, truth)
    released, withheld = _split(pulled, truth)
    attack = Attack(truth, released)
    zeros = [w for w, f in withheld.items() if attack.at_truth(f) == 0]
    # the world is small enough that the attack has much to try
    assert len(released) > 500 and len(withheld) > 300 and len(zeros) > 20
    # learning time among them: both metrics of the learning tables, released and withheld
    for name in ("learning_minutes_distribution", "learning_active_rate"):
        assert sum(w[1] == name for w in released) > 100, name
        assert sum(w[1] == name for w in withheld) > 100, name
    assert sum(w[1] == "learning_minutes_distribution" for w in zeros) > 20
    # when the attacker solves for every withheld figure, then none is pinned
    assert attack.pinned(withheld) == []


def test_the_attacker_pins_a_cell_that_a_naive_release_would_give_away(prefecture):
    # The attack is not toothless: with the prefecture total of each category released
    # beside all but one municipality's (what a municipality-by-municipality release plus a
    # sum would allow), the missing one is pinned.
    truth = Truth(prefecture)
    pulled = [
        (area, name, cell)
        for area, name, cell in pull_everything(prefecture, truth)
        if name == "long_term_absence"
    ]
    released, _ = _split(pulled, truth)
    codes = list(ATTACK_WORLD)
    naive = dict(released)
    for category in LONG_TERM_BINS:
        for area in [("pref", None, None)] + [("muni", c, None) for c in codes[1:]]:
            f = {
                ("pop", m, s, g, b): 1
                for m, s, g in truth.cells(area, TOTAL)
                for b in LONG_TERM_BINS[category]
            }
            naive[(area, "long_term_absence", category, "pupils")] = (f, None)
    target = {
        ("muni", codes[0], "long_term"): {
            ("pop", m, s, g, b): 1
            for m, s, g in truth.cells(("muni", codes[0], None), TOTAL)
            for b in LONG_TERM_BINS["long_term"]
        }
    }
    assert Attack(truth, naive).pinned(target) == list(target)


# -- over time -----------------------------------------------------------------------------


def _snapshot(prefecture, truth):
    return {
        what: (f, value)
        for area, name, cell in pull_everything(prefecture, truth)
        for what, f, value in figures(truth, area, name, cell)
    }


def test_a_pupils_opt_out_reveals_nothing_about_that_pupil(prefecture):
    from renkei.accounts import policy
    from renkei.edudata.models import (
        AttendancePupilYear,
        LearningPupilMonth,
        NurseVisit,
        Student,
    )
    from renkei.edudata.privacy import do_record_opt_out

    code = list(ATTACK_WORLD)[2]  # the smallest village: its figures move most
    municipality = prefecture.municipality(code)
    truth = Truth(prefecture)
    # Releases made by earlier tests were stored in their (rolled back) transactions: make
    # this one's anew, stored, as a deployment's would be.
    metrics.clear_cache()
    before = _snapshot(prefecture, truth)
    # the pupil: one with a nurse visit, learning-tool use and absences, if there is one
    with in_tenant(municipality):
        visited = set(NurseVisit.objects.values_list("student_id", flat=True))
        learned = set(LearningPupilMonth.objects.values_list("student_id", flat=True))
        pupil = AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR).order_by(
            "-absence_days", "student_id"
        )
        pupil = (
            pupil.filter(student_id__in=visited & learned)
            or pupil.filter(student_id__in=visited)
            or pupil
        ).first()
        assert pupil.student_id in learned
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
        do_record_opt_out(
            admin,
            municipality,
            Student.objects.get(pk=pupil.student_id),
            requested_at=dt.datetime(2025, 7, 1, tzinfo=dt.UTC),
        )
    contribution = assert_nothing_learned(
        before, _snapshot(prefecture, truth), truth, Truth(prefecture)
    )
    # the pupil used a learning tool: the learning figures are among those attacked
    assert any(c for what, c in contribution.items() if what[1] == "learning_active_rate")


def assert_nothing_learned(before, after, truth, after_truth, *, least=50):
    """Comparing every table before and after one pupil's change decides nothing about that
    pupil, and no released figure moved at all. ``least``: the figures the pupil is in."""
    # The pupil's contribution to each figure, which the attacker is after.
    contribution = {
        what: attack_value(truth, f) - attack_value(after_truth, f)
        for what, (f, _) in before.items()
    }
    assert sum(1 for c in contribution.values() if c) >= least  # the pupil is in them
    learned, moved = [], []
    for what, (f, value) in before.items():
        later = after.get(what, (f, None))[1]
        if value is None or later is None:
            continue
        if value != later:
            moved.append((what, value, later, contribution[what]))
        # What the attacker can say about the pupil's contribution: each figure is within
        # the published tolerance of its truth, so the difference is within twice that.
        tolerance = 2 * _tolerance(what, truth)
        low, high = value - later - tolerance, value - later + tolerance
        # Deciding anything means excluding "the pupil contributed nothing" or excluding
        # what the pupil did contribute (at least one, for a figure the pupil is not in).
        if not all(low <= c <= high for c in (0, max(1, contribution[what]))):
            learned.append((what, contribution[what], low, high))
    assert learned == []
    assert moved == []  # no released figure moved at all: nothing to compare
    return contribution


# -- 不登校, released to each municipality only --------------------------------------------


# 不登校 and the figures of the same pupils it could be differenced against. (The attack world
# above holds every metric with 不登校; here, where a sixth of the pupils are absent nearly
# every day, the attendance-day and month tables pin some pupil counts on their own, without
# 不登校: a finding about those tables, reported, not about this one.)
POPULATION_METRICS = {"long_term_absence", "absence_days_distribution", "futoko"}


def test_no_withheld_futoko_or_population_figure_is_pinned(futoko_prefecture):
    # given every table of every role in a world where 不登校 has released cells: each
    # municipality's and school's 不登校 (every board's and school's together) beside the
    # population and long-term absence of every level (prefecture, municipality, school)
    truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    pulled = pull_everything(futoko_prefecture, truth, POPULATION_METRICS)
    released, withheld = _split(pulled, truth)
    futoko = {w: f for w, f in released.items() if w[1] == "futoko" and w[3] == "pupils"}
    assert sum(1 for _f, v in futoko.values() if v) >= 2  # released, non-zero counts
    assert any(w[1] == "futoko" for w in withheld)
    # when the attacker solves for every withheld figure, then none is pinned
    assert Attack(truth, released).pinned(withheld) == []


def _futoko_pupil(municipality):
    """A pupil whose school's latest decision is 不登校 (the first by id)."""
    from renkei.edudata.models import LongAbsenceReasonYear, Student

    with in_tenant(municipality):
        return Student.objects.select_related("school").get(
            pk=LongAbsenceReasonYear.objects.filter(reason="futoko")
            .order_by("student_id")
            .values_list("student_id", flat=True)
            .first()
        )


def _principal(code, role, schools=(), step_up=False):
    from renkei.accounts import policy

    grant = policy.Grant(
        role=role, municipality_code=code, prefecture_code=None, school_codes=frozenset(schools)
    )
    return policy.Principal(user_id=1, username=f"test-{role}", grants=(grant,), step_up=step_up)


def _town_futoko(snapshot):
    """The town's released 不登校 count (all grades), as the board reads it."""
    return next(
        value
        for what, (_f, value) in snapshot.items()
        if what[:2] == (("muni", FUTOKO_TOWN, None), "futoko")
        and dict(what[2]) == {"grade": TOTAL}
        and what[3] == "pupils"
    )


def test_a_changed_futoko_classification_reveals_nothing_about_that_pupil(futoko_prefecture):
    from renkei.edudata import absence

    municipality = futoko_prefecture.municipality(FUTOKO_TOWN)
    truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    metrics.clear_cache()
    before = _snapshot(futoko_prefecture, truth)
    assert _town_futoko(before) is not None  # released: the change could show there
    # when the school reclassifies one 不登校 pupil as その他, through its action
    pupil = _futoko_pupil(municipality)
    teacher = _principal(FUTOKO_TOWN, "teacher", [pupil.school.code], step_up=True)
    with in_tenant(municipality):
        absence.do_classify_long_absence(teacher, municipality, pupil.pk, SCHOOL_YEAR, "other")
    after_truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    # then the truth lost one 不登校 pupil (the rollup followed the action) ...
    fu = {k: v for k, v in truth.value.items() if k[0] == "fu"}
    fu_after = {k: v for k, v in after_truth.value.items() if k[0] == "fu"}
    assert sum(fu.values()) - 1 == sum(fu_after.values())
    # ... and nothing released says so
    after = _snapshot(futoko_prefecture, truth)
    assert_nothing_learned(before, after, truth, after_truth, least=3)


def test_a_futoko_pupils_opt_out_reveals_nothing_about_that_pupil(futoko_prefecture):
    from renkei.edudata.models import Student
    from renkei.edudata.privacy import do_record_opt_out

    municipality = futoko_prefecture.municipality(FUTOKO_TOWN)
    truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    metrics.clear_cache()
    before = _snapshot(futoko_prefecture, truth)
    pupil = _futoko_pupil(municipality)
    with in_tenant(municipality):
        do_record_opt_out(
            _principal(FUTOKO_TOWN, "tenant_admin"),
            municipality,
            Student.objects.get(pk=pupil.pk),
            requested_at=dt.datetime(2025, 7, 1, tzinfo=dt.UTC),
        )
    after_truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    fu = {k: v for k, v in truth.value.items() if k[0] == "fu"}
    fu_after = {k: v for k, v in after_truth.value.items() if k[0] == "fu"}
    assert sum(fu.values()) - 1 == sum(fu_after.values())  # the pupil was a 不登校 one
    after = _snapshot(futoko_prefecture, truth)
    assert_nothing_learned(before, after, truth, after_truth)


def test_futoko_is_the_municipality_figure_and_no_prefecture_table_has_it(futoko_prefecture):
    truth = Truth(futoko_prefecture, FUTOKO_WORLD)
    municipality = futoko_prefecture.municipality(FUTOKO_TOWN)
    table = compute("futoko", municipality, school_year=SCHOOL_YEAR, breakdown=["grade"])
    long_term = compute("long_term_absence", municipality, school_year=SCHOOL_YEAR)
    # the board gets its 不登校 figure: released, near the truth (the latest decisions of
    # analyzable pupils), its rate over the same released denominator as long-term absence
    total = table.cell(grade=TOTAL)
    true = sum(v for k, v in truth.value.items() if k[0] == "fu" and k[1] == FUTOKO_TOWN)
    assert not total.suppressed and abs(total.pupils - true) <= NOISE_BOUND
    assert total.denominator == long_term.cell(absence_category=TOTAL).pupils
    assert total.value == pytest.approx(100.0 * total.pupils / total.denominator)
    # small cells are withheld, with a reason, never 0
    withheld = [c for c in table.cells if c.suppressed]
    assert withheld and all(c.value is None and c.reason for c in withheld)
    # a prefecture analyst gets no number for it, whatever the breakdown
    for breakdown in ([], ["grade"]):
        with pytest.raises(ValueError, match="市区町村の教育委員会と学校だけに公開"):
            compute_prefecture(
                "futoko", truth.prefecture, school_year=SCHOOL_YEAR, breakdown=breakdown
            )
    # and its rows are not a family a trusted aggregator may ask for
    with pytest.raises(ValueError, match="集計の種類「futoko」はありません"):
        metrics.exact_rows(municipality, "futoko", [FUTOKO_TOWN, SCHOOL_YEAR])


def attack_value(truth, f):
    return sum(c * truth.value.get(v, 0) for v, c in f.items())


def _tolerance(what, truth):
    """How far a served figure may be from the truth (docs/disclosure.md): a count 5, days
    the noise (3 x 8) plus one pupil's school days in the cell's months, a sum of n
    released cells n times its cells' tolerance."""
    name, field, key = what[1], what[3], dict(what[2])
    if name == "attendance_rate" and field != "pupils":
        m = key.get("month", str(SCHOOL_YEAR))
        days = sum(truth.days_in.values()) if m == str(SCHOOL_YEAR) else truth.days_in[m]
        step = MEASURE_STEP["attended"]
        return max(STICKY_BOUND * step, NOISE_BOUND * step + days)
    step = MEASURE_STEP["visits"] if name == "nurse_visits_per_100" and field != "pupils" else 1
    return STICKY_BOUND * step * _parts(what, truth)


def _parts(what, truth):
    """How many released cells a figure is the sum of (a year of a monthly metric)."""
    name, key = what[1], dict(what[2])
    if key.get("month", str(SCHOOL_YEAR)) != str(SCHOOL_YEAR) or name in (
        "long_term_absence",
        "futoko",
        "absence_days_distribution",
        "assessment_score_distribution",
    ):
        return 1
    if name == "attendance_rate":
        return 1  # days of the year are a released cell of their own
    if name.startswith("learning_"):
        return len(truth.learning_months)
    months = len(truth.months | truth.nurse_months)
    return months * (len(metrics.NURSE_REASONS) if key.get("nurse_reason") == TOTAL else 1)
