"""The metric registry: every aggregate that may leave a tenant, defined once.

A :class:`Metric` says what it counts, in which units, from which rollup and by which
dimensions it may be broken down. :func:`compute` runs one metric inside the current tenant
and returns a :class:`MetricTable` that has already been through disclosure control
(:mod:`renkei.platform.disclosure`): the municipality API and the prefecture federation both
call it, so nobody re-implements counting or suppression.

Why the tables are built the way they are
-----------------------------------------
Suppressing each answer on its own is not enough: the same figures appear in many answers
(a grade total is the denominator of several metrics, a yearly figure is the sum of the
monthly ones, a school is a part of its municipality), and a cell hidden in one answer could
be recovered by subtracting figures released in another. So every answer is a *projection*
of a few canonical tables per tenant and school year, each protected once
(``disclosure.protect_table``, cached while its inputs are unchanged) over the full
cross-classification of what it can be broken down by, with the school as a dimension (a
municipality is the total over its schools, so school and municipality answers come from the
same protected table):

* ``population`` (rollup ``AttendancePupilYear``): school x grade x absence days in the year.
  Its absence-day hierarchy (0 / 1-9 / 10-29 under "0-29"; 30+ split by the main absence
  category) serves the absence-day distribution, long-term absence (長期欠席) and the yearly
  pupil count, the denominator of every yearly rate. Long-term absence is therefore a
  categorical table whose category total is the pupil count: the count and its denominator
  are protected together, and "pupils minus long-term absentees" is a cell of the same table
  ("0-29"), released only if it covers k pupils and protected like any other.
* ``month:<month>`` (``AttendancePupilMonth``): school x grade x (fewer than / at least 10
  absence days), one table per month. Its category total is the month's pupil count (the
  denominator of monthly rates); the attendance day sums follow its suppression pattern.
* ``nurse:<month>:<reason>`` (``NurseVisitMonth``), ``m365:<month>:<app>``
  (``M365AppMonth``) and ``assessment:<subject>`` (``AssessmentBin``, 学力調査 only): school
  x grade (x score bin), the numerators of their metrics.

Only dimensions that partition pupils go into one protected table, because *k* counts
pupils: a pupil is in every month and may visit the nurse for two reasons, so a sum over
months or reasons is not a number of pupils. Figures over those dimensions - the year of a
monthly metric (pupil-months, 延べ人数), all reasons of nurse visits - are sums of released
cells, withheld when any part is withheld (:func:`_sum`). A sum of released figures discloses
nothing the parts do not, so no cell hidden in one table can be recovered through them. (The
price: a yearly figure of a monthly metric is withheld as soon as one month's is. Rollups
with a yearly distinct-pupil count - nurse visits and Microsoft 365 per year - would let
those yearly figures be protected directly.)

Dimensions come from fixed hierarchies only: school year > month ("2025-04" ... under
"2025"), school type > grade ("B1-3" = 小学校 3年 under "B1"), the school, and one fixed
category list per metric. No filter takes free values.

Every read goes through the rollups (never raw rows) and through
``Student.objects.analyzable()`` where the rollup has a pupil key, so an opt-out is honoured
even before the next rollup refresh.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, Q, Sum, Value, When

from renkei.edudata.codes import AssessmentKind, NurseVisitReason
from renkei.platform import disclosure, telemetry
from renkei.platform.disclosure import MIN_K, TOTAL, Dimension
from renkei.tenants.codes import SCHOOL_TYPES

__all__ = [
    "CATEGORY_LABELS",
    "DIMENSION_LABELS",
    "METRICS",
    "MUNICIPALITY",
    "TOTAL",
    "Metric",
    "MetricCell",
    "MetricTable",
    "code_label",
    "code_label_en",
    "compute",
]

# -- dimensions ---------------------------------------------------------------------------------

MONTH = "month"
GRADE = "grade"
MUNICIPALITY = "municipality"  # only at the prefecture level (renkei.graphql.federation)
SCHOOL = "school"  # internal: a municipality is the total over its schools
ABSENCE_DAYS = "absence_days"
ABSENCE_CATEGORY = "absence_category"
MONTHLY_ABSENCE = "monthly_absence"
NURSE_REASON = "nurse_reason"
APP = "app"
SUBJECT = "subject"
SCORE_BIN = "score_bin"

DIMENSION_LABELS: Mapping[str, tuple[str, str]] = {
    MONTH: ("年度・月", "school year / month"),
    GRADE: ("学校種・学年", "school type / grade"),
    MUNICIPALITY: ("市区町村", "municipality"),
    ABSENCE_DAYS: ("年間欠席日数", "absence days in the year"),
    ABSENCE_CATEGORY: ("長期欠席の区分", "long-term absence category"),
    MONTHLY_ABSENCE: ("月の欠席日数", "absence days in the month"),
    NURSE_REASON: ("来室理由", "reason of the visit"),
    APP: ("アプリ", "app"),
    SUBJECT: ("教科", "subject"),
    SCORE_BIN: ("得点率", "score (percent of maximum)"),
}

# Grades of each school type by law; other grades are used only when the data has them.
STANDARD_GRADES: Mapping[str, int] = {"B1": 6, "C1": 3, "C2": 9, "D1": 3, "D2": 6}

# Absence days in the year (population table). 長期欠席 = 30 days or more; a long-term absentee
# is classed by the category with the most days (ties: illness, then accident, then other).
_ABSENCE_LEAVES = ("0", "1-9", "10-29", "30+:illness", "30+:accident", "30+:other")
_ABSENCE_PARENTS = {"0": "0-29", "1-9": "0-29", "10-29": "0-29",
                    "30+:illness": "30+", "30+:accident": "30+", "30+:other": "30+"}
LONG_TERM_CODES = {"30+": "long_term", "30+:illness": "illness", "30+:accident": "accident",
                   "30+:other": "other", "0-29": "not_long_term", TOTAL: TOTAL}
DISTRIBUTION_CODES = {"0": "0", "1-9": "1-9", "10-29": "10-29", "30+": "30+", TOTAL: TOTAL}
LONG_TERM_DAYS = 30
MONTHLY_ABSENCE_DAYS = 10

NURSE_REASONS = tuple(NurseVisitReason.values)
M365_APPS = ("teams", "word", "excel", "powerpoint", "onenote", "outlook")
ASSESSMENT_KIND = AssessmentKind.SURVEY
_SCORE_LEAVES = tuple(f"{10 * i}-{10 * i + 9}" if i < 9 else "90-100" for i in range(10))
_SCORE_PARENTS = {code: ("0-39" if i < 4 else "40-69" if i < 7 else "70-100")
                  for i, code in enumerate(_SCORE_LEAVES)}

CATEGORY_LABELS: Mapping[str, Mapping[str, str]] = {
    ABSENCE_CATEGORY: {"long_term": "長期欠席（30日以上）", "illness": "長期欠席（主に病気）",
                       "accident": "長期欠席（主に事故）", "other": "長期欠席（主にその他）",
                       "not_long_term": "長期欠席以外", TOTAL: "計"},
    ABSENCE_DAYS: {"0": "0日", "1-9": "1〜9日", "10-29": "10〜29日", "30+": "30日以上",
                   TOTAL: "計"},
    MONTHLY_ABSENCE: {"ge10": "月10日以上欠席", "lt10": "月10日未満", TOTAL: "計"},
    NURSE_REASON: {**{r.value: r.label for r in NurseVisitReason}, TOTAL: "計"},
    APP: {"teams": "Teams", "word": "Word", "excel": "Excel", "powerpoint": "PowerPoint",
          "onenote": "OneNote", "outlook": "Outlook"},
    SCORE_BIN: {**{code: f"{code}%" for code in _SCORE_LEAVES},
                "0-39": "0〜39%", "40-69": "40〜69%", "70-100": "70〜100%", TOTAL: "計"},
}

# English labels, for pages and widgets shown in English (codes without one keep their own).
SCHOOL_TYPES_EN: Mapping[str, str] = {
    "A1": "Kindergarten", "A2": "Integrated centre for early childhood",
    "B1": "Elementary", "C1": "Junior high", "C2": "Compulsory education school",
    "D1": "High school", "D2": "Secondary school", "E1": "Special needs school",
    "F1": "University", "F2": "Junior college", "G1": "College of technology",
    "H1": "Specialised training college", "H2": "Miscellaneous school",
}  # fmt: skip
CATEGORY_LABELS_EN: Mapping[str, Mapping[str, str]] = {
    ABSENCE_CATEGORY: {"long_term": "Long-term absence (30+ days)",
                       "illness": "Long-term absence (mainly illness)",
                       "accident": "Long-term absence (mainly accident)",
                       "other": "Long-term absence (mainly other reasons)",
                       "not_long_term": "Not long-term absent"},
    ABSENCE_DAYS: {"0": "0 days", "1-9": "1–9 days", "10-29": "10–29 days", "30+": "30+ days"},
    MONTHLY_ABSENCE: {"ge10": "Absent 10+ days in the month", "lt10": "Absent under 10 days"},
    NURSE_REASON: {"injury": "Injury", "illness": "Feeling unwell", "mental": "Counselling",
                   "other": "Other"},
    SUBJECT: {"国語": "Japanese", "算数": "Arithmetic", "数学": "Mathematics", "理科": "Science",
              "社会": "Social studies", "英語": "English"},
    SCORE_BIN: {"0-39": "0–39%", "40-69": "40–69%", "70-100": "70–100%"},
}

# Reasons for a withheld value beyond disclosure.REASONS.
NO_DATA = "no_data"
PART_SUPPRESSED = "part_suppressed"
# Whether a cell was withheld for being small (primary: 0..k-1 pupils) or to protect another
# (complementary: >= k) is not released: an attacker can use the distinction as bounds and
# pin cells with linear programming (found by the disclosure tests' LP attack). Both are
# released as one code, as e-Stat shows one "X".
SUPPRESSED = "suppressed"
PUBLIC_REASON = {disclosure.PRIMARY: SUPPRESSED, disclosure.COMPLEMENTARY: SUPPRESSED}
REASON_LABELS: Mapping[str, str] = {
    **disclosure.REASONS,
    SUPPRESSED: "秘匿（少人数のため、または他のセルからの逆算を防ぐため）",
    NO_DATA: "集計対象のデータがないため算出不可",
    PART_SUPPRESSED: "内訳に秘匿されたセルがあるため秘匿",
}

Key = tuple[str, ...]


# -- public types -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One metric: what it counts, how it may be broken down, where it comes from.

    ``dimensions`` are the breakdowns a caller may ask for; ``categories`` are the
    metric-specific dimensions every answer is broken down by (they are part of what the
    metric means, e.g. the absence category of long-term absence). ``min_cell_size`` is the
    metric's own floor for *k*; the tenant's ``min_cell_size`` applies when it is larger.
    """

    name: str
    label_ja: str
    label_en: str
    description_ja: str
    description_en: str
    unit: str
    dimensions: tuple[str, ...]
    source: str
    categories: tuple[str, ...] = ()
    min_cell_size: int = MIN_K
    value_label_ja: str = ""
    _build: Callable[..., list[MetricCell]] | None = field(default=None, repr=False,
                                                           compare=False)

    @property
    def all_dimensions(self) -> tuple[str, ...]:
        """Breakdowns and categories, in the order of a cell key."""
        return (*self.dimensions, *self.categories)


@dataclass
class MetricCell:
    """One released cell. ``value`` is None exactly when it is withheld, with a reason.

    ``key`` maps each dimension of the table to a code (``TOTAL`` for "all"). ``pupils`` is
    the number of pupils the cell counts (pupil-months for yearly cells of monthly metrics;
    visiting pupils for nurse visits). ``numerator`` and ``denominator`` are the released
    counts ``value`` is computed from, so that a prefecture can add municipalities up.
    """

    key: dict[str, str]
    pupils: int | None
    value: float | None
    suppressed: bool
    reason: str | None
    reason_code: str | None = None
    numerator: int | None = None
    denominator: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "pupils": self.pupils, "value": self.value,
                "suppressed": self.suppressed, "reason_code": self.reason_code,
                "numerator": self.numerator, "denominator": self.denominator}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricCell:
        reason_code = data.get("reason_code")
        reason_code = PUBLIC_REASON.get(reason_code, reason_code)
        return cls(key={str(d): str(c) for d, c in dict(data["key"]).items()},
                   pupils=_int_or_none(data.get("pupils")),
                   value=None if data.get("value") is None else float(data["value"]),
                   suppressed=bool(data["suppressed"]),
                   reason=REASON_LABELS.get(reason_code) if reason_code else None,
                   reason_code=reason_code,
                   numerator=_int_or_none(data.get("numerator")),
                   denominator=_int_or_none(data.get("denominator")))


@dataclass
class MetricTable:
    """A metric for one municipality and school year, as released (already protected)."""

    metric: str
    municipality_code: str
    school_year: int
    dimensions: list[str]
    k: int
    cells: list[MetricCell]
    unit: str = ""
    school_code: str | None = None

    def cell(self, **codes: str) -> MetricCell:
        """The cell with these codes; dimensions not named are at their total."""
        wanted = {d: codes.get(d, TOTAL) for d in self.dimensions}
        for cell in self.cells:
            if cell.key == wanted:
                return cell
        raise KeyError(wanted)

    def to_json(self) -> dict[str, Any]:
        """What crosses a deployment boundary: released cells only, nothing else."""
        return {"metric": self.metric, "municipality_code": self.municipality_code,
                "school_year": self.school_year, "dimensions": self.dimensions, "k": self.k,
                "unit": self.unit, "cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricTable:
        return cls(metric=str(data["metric"]), municipality_code=str(data["municipality_code"]),
                   school_year=int(data["school_year"]),
                   dimensions=[str(d) for d in data["dimensions"]], k=int(data["k"]),
                   cells=[MetricCell.from_json(c) for c in data["cells"]],
                   unit=str(data.get("unit", "")))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# -- compute ------------------------------------------------------------------------------------

def compute(metric: str, municipality, *, school_year: int, breakdown: Sequence[str] = (),
            school_code: str | None = None) -> MetricTable:
    """Run ``metric`` for ``municipality`` and return its released table.

    Call it inside the municipality's schema (``in_tenant``). Reads rollups only, counts
    analyzable pupils only and applies disclosure control with k = the larger of the
    tenant's ``min_cell_size`` and the metric's. ``school_code`` narrows the answer to one
    school (the same protected table, so school and municipality answers agree).
    Raises ValueError (Japanese message) for an unknown metric or breakdown.
    """
    spec = METRICS.get(metric)
    if spec is None:
        raise ValueError(f"指標「{metric}」はありません。使える指標: {', '.join(METRICS)}")
    dims = check_breakdown(spec, breakdown)
    tenant = getattr(connection, "tenant", None)
    if getattr(tenant, "code", None) != municipality.code:
        raise ValueError(f"自治体 {municipality.code} のスキーマの中で呼び出してください（in_tenant）。")
    k = max(MIN_K, spec.min_cell_size, int(municipality.min_cell_size))
    loader = _Loader(municipality.schema_name, int(school_year), k)
    school = TOTAL if school_code is None else loader.school_key(school_code)
    if school not in (TOTAL, *loader.schools):
        raise ValueError(f"学校コード {school_code} の {school_year} 年度の集計対象の児童生徒はいません。")
    assert spec._build is not None
    cells = spec._build(loader, set(dims), school)
    order = {d: i for i, d in enumerate(spec.all_dimensions)}
    out_dims = sorted({*dims, *spec.categories}, key=order.__getitem__)
    for cell in cells:
        cell.key = {d: cell.key[d] for d in out_dims}
    telemetry.record_suppressed_cells(sum(c.suppressed for c in cells), spec.name,
                                      tenant_code=municipality.code)
    return MetricTable(metric=spec.name, municipality_code=municipality.code,
                       school_year=int(school_year), dimensions=out_dims, k=k, cells=cells,
                       unit=spec.unit, school_code=school_code)


def check_breakdown(spec: Metric, breakdown: Iterable[str]) -> tuple[str, ...]:
    """The breakdown, checked against the metric; ValueError in Japanese otherwise."""
    if isinstance(breakdown, str):
        breakdown = (breakdown,)
    wanted = tuple(dict.fromkeys(breakdown))
    for dim in wanted:
        if dim == MUNICIPALITY:
            raise ValueError("市区町村別の内訳は都道府県の集計（連携 API）でのみ使えます。")
        if dim not in spec.all_dimensions:
            allowed = "、".join(spec.dimensions) or "なし"
            raise ValueError(f"指標「{spec.label_ja}」は「{dim}」で内訳できません（使える内訳: {allowed}）。")
    return wanted


def code_label(dimension: str, code: str, school_year: int | None = None) -> str:
    """The Japanese label of a code, e.g. ("grade", "B1-3") -> "小学校 3年"."""
    if code == TOTAL:
        return "計"
    if dimension == GRADE:
        kind, _, grade = code.partition("-")
        name = SCHOOL_TYPES.get(kind, kind)
        return f"{name} {grade}年" if grade else name
    if dimension == MONTH:
        if "-" in code:
            year, month = code.split("-")
            return f"{int(year)}年{int(month)}月"
        return f"{code}年度"
    return CATEGORY_LABELS.get(dimension, {}).get(code, code)


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def code_label_en(dimension: str, code: str, school_year: int | None = None) -> str:
    """The English label of a code, e.g. ("grade", "B1-3") -> "Elementary grade 3"."""
    if code == TOTAL:
        return "Total"
    if dimension == GRADE:
        kind, _, grade = code.partition("-")
        name = SCHOOL_TYPES_EN.get(kind, kind)
        return f"{name} grade {grade}" if grade else name
    if dimension == MONTH:
        if "-" in code:
            year, month = code.split("-")
            return f"{_MONTHS_EN[int(month) - 1]} {int(year)}"  # not strftime: locale-free
        return f"FY{code}"
    return CATEGORY_LABELS_EN.get(dimension, {}).get(code) or code_label(dimension, code,
                                                                         school_year)


# -- canonical tables -------------------------------------------------------------------------

def month_code(school_year: int, month: int) -> str:
    """"2025-04" for April of 2025年度, "2026-01" for its January."""
    return f"{school_year if month >= 4 else school_year + 1}-{month:02d}"


def _month_order(code: str) -> tuple[int, int]:
    year, month = code.split("-")
    return int(year), int(month)


def grade_code(school_type: str, grade: int) -> str:
    """"B1-3" for 小学校 3年."""
    return f"{school_type}-{grade}"


def _grade_order(code: str) -> tuple[str, int]:
    kind, _, grade = code.partition("-")
    return kind, int(grade)


@dataclass(frozen=True)
class _Protected:
    """One protected table: which cells are released, and their real figures.

    ``values`` and ``measures`` hold every cell, suppressed ones too: this object never
    leaves the tenant; only :class:`MetricCell` values built from released cells do.
    """

    dims: tuple[Dimension, ...]
    reasons: Mapping[Key, str | None]
    values: Mapping[Key, int]
    measures: Mapping[str, Mapping[Key, int]]

    def count(self, key: Key) -> disclosure.Cell:
        return self._cell(key, self.values.get(key))

    def measure(self, name: str, key: Key) -> disclosure.Cell:
        return self._cell(key, self.measures[name].get(key))

    def _cell(self, key: Key, value: int | None) -> disclosure.Cell:
        if key not in self.reasons:
            # Not a cell of this table: a code the table does not have (its school did
            # not take part). Nothing to release.
            return disclosure.Cell(key, None, True, NO_DATA)
        reason = self.reasons[key]
        if reason is None:
            return disclosure.Cell(key, int(value or 0), False, None)
        return disclosure.Cell(key, None, True, reason)


def _sum(key: Key, parts: Sequence[disclosure.Cell]) -> disclosure.Cell:
    """A figure derived from released cells only: their sum, withheld if any part is.

    Yearly figures of monthly tables and totals over categories that are not a partition of
    pupils (nurse-visit reasons) are made this way, so they disclose nothing that the
    released parts do not: every released figure is a sum of released cells.
    """
    if not parts:
        return disclosure.Cell(key, None, True, NO_DATA)
    if any(p.suppressed for p in parts):
        return disclosure.Cell(key, None, True, PART_SUPPRESSED)
    return disclosure.Cell(key, sum(p.value or 0 for p in parts), False, None)


_CACHE: OrderedDict[tuple, _Protected] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8192


def clear_cache() -> None:
    """Forget protected tables (the cache is keyed by the input counts, so this is only
    for tests and benchmarks that want a cold start)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _protect(name: str, schema: str, k: int, dims: Sequence[Dimension],
             counts: Mapping[Key, int], measures: Mapping[str, Mapping[Key, int]],
             structural: Iterable[Key]) -> _Protected:
    """protect_table for one canonical table, reused while its inputs are unchanged.

    The cache key holds the input counts, so a rollup refresh (an import, an opt-out) is a
    different key and nothing stale is ever served. Protection is the CPU-heavy part of a
    metric; reading the rollup aggregates that form the key is cheap.
    """
    counts = {key: int(v) for key, v in counts.items() if v}
    structural = frozenset(structural)
    cache_key = (name, schema, k, tuple((d.name, d.leaves) for d in dims),
                 tuple(sorted(counts.items())),
                 tuple(sorted((m, tuple(sorted(v.items()))) for m, v in measures.items())))
    with _CACHE_LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None:
            _CACHE.move_to_end(cache_key)
            return hit
    table = disclosure.protect_table(counts, dims, k, structural_zeros=structural)
    result = _Protected(tuple(dims), {cell.key: cell.reason for cell in table},
                        _margins(counts, dims),
                        {m: _margins(v, dims) for m, v in measures.items()})
    with _CACHE_LOCK:
        _CACHE[cache_key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def _margins(counts: Mapping[Key, int], dims: Sequence[Dimension]) -> dict[Key, int]:
    """Every cell's sum over its leaves (all codes of every dimension)."""
    values = dict.fromkeys(itertools.product(*(d.codes for d in dims)), 0)
    for leaf, value in counts.items():
        if not value:
            continue
        chains = (d.ancestors(code) for code, d in zip(leaf, dims, strict=True))
        for key in itertools.product(*chains):
            values[key] += value
    return values


_COMPILED: dict[tuple[str, int], tuple[str, tuple]] = {}


def _rows(name: str, year: int, queryset: Callable[[], Any]) -> list[tuple]:
    """Run a rollup query, compiled by the ORM once per process and school year.

    The SQL names tables without a schema (the tenant's search_path picks them), so the same
    statement serves every tenant; compiling it is most of a small query's cost.
    """
    compiled = _COMPILED.get((name, year))
    if compiled is None:
        sql, params = queryset().query.sql_with_params()
        compiled = _COMPILED[name, year] = (sql, tuple(params))
    with connection.cursor() as cursor:
        cursor.execute(*compiled)
        return cursor.fetchall()


class _Loader:
    """The canonical tables of one tenant and school year.

    Rollups are read once per call (a few GROUP BY queries); each table is protected once
    per process while its inputs are unchanged. Every table has the school as its first
    dimension and the grade as its second: a municipality is the total over its schools.
    Tables whose dimensions are all partitions of pupils go through protect_table; months,
    nurse-visit reasons and apps are separate tables (see :func:`_sum`).
    """

    def __init__(self, schema: str, school_year: int, k: int):
        self.schema, self.year, self.k = schema, school_year, k
        self._memo: dict[Any, Any] = {}

    def _once(self, name: Any, make: Callable[[], Any]) -> Any:
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    # population ---------------------------------------------------------------------------
    def population(self) -> tuple[dict[str, str], tuple[str, ...], dict[Key, int]]:
        """(school code -> school type, grade leaves, (school, grade, absence leaf) -> n)."""
        return self._once("population_rows", self._read_population)

    def _read_population(self):
        from renkei.edudata.models import AttendancePupilYear, Student

        long_term = Q(absence_days__gte=LONG_TERM_DAYS)
        bin_ = Case(
            When(long_term & Q(absent_illness__gte=F("absent_accident"))
                 & Q(absent_illness__gte=F("absent_other")), then=Value("30+:illness")),
            When(long_term & Q(absent_accident__gte=F("absent_other")),
                 then=Value("30+:accident")),
            When(long_term, then=Value("30+:other")),
            When(absence_days__gte=10, then=Value("10-29")),
            When(absence_days__gte=1, then=Value("1-9")),
            default=Value("0"))
        rows = _rows("population", self.year, lambda: (
            AttendancePupilYear.objects
            .filter(school_year=self.year, student__in=Student.objects.analyzable())
            .annotate(bin=bin_)
            .values_list("school_id", "school_type", "grade", "bin")
            .annotate(n=Count("id")).order_by()))
        schools: dict[str, str] = {}
        counts: dict[Key, int] = {}
        pairs: set[tuple[str, int]] = set()
        for school_id, kind, grade, bin_code, n in rows:
            school = str(school_id)
            schools[school] = kind
            pairs.add((kind, grade))
            key = (school, grade_code(kind, grade), bin_code)
            counts[key] = counts.get(key, 0) + n
        for kind in set(schools.values()):
            pairs.update((kind, g) for g in range(1, STANDARD_GRADES.get(kind, 0) + 1))
        grades = tuple(grade_code(kind, g) for kind, g in sorted(pairs))
        return dict(sorted(schools.items())), grades, counts

    @property
    def schools(self) -> dict[str, str]:
        """School key -> school type, for the schools of the population."""
        return self.population()[0]

    def school_key(self, school_code: str) -> str:
        """The school's code in the tables (its row id: the rollups carry it, so no query
        has to join the school table just for the 学校コード)."""
        from renkei.edudata.models import School

        pk = School.objects.filter(code=school_code).values_list("pk", flat=True).first()
        return "" if pk is None else str(pk)

    def school_dim(self, schools: Iterable[str] | None = None) -> Dimension:
        return Dimension(SCHOOL, tuple(sorted(self.schools if schools is None else schools)))

    def grade_dim(self, grades: Iterable[str] | None = None) -> Dimension:
        leaves = tuple(sorted(self.population()[1] if grades is None else grades,
                              key=_grade_order))
        return Dimension(GRADE, leaves, {g: g.split("-")[0] for g in leaves})

    def _zeros(self, dims: Sequence[Dimension]) -> set[Key]:
        """Leaves zero by definition: a grade of another school type than the school's
        (a 中学校 has no 小学校 3年). Dims are (school, grade, *rest)."""
        zeros: set[Key] = set()
        for school in dims[0].leaves:
            kind = self.schools[school]
            for grade in dims[1].leaves:
                if grade.split("-")[0] != kind:
                    for rest in itertools.product(*(d.leaves for d in dims[2:])):
                        zeros.add((school, grade, *rest))
        return zeros

    def _table(self, name: str, dims: Sequence[Dimension], counts: Mapping[Key, int],
               measures: Mapping[str, Mapping[Key, int]] | None = None) -> _Protected:
        return _protect(name, self.schema, self.k, dims, counts, measures or {},
                        self._zeros(dims))

    def population_table(self) -> _Protected | None:
        """school x grade x absence days in the year (distinct pupils)."""
        def make():
            schools, _, counts = self.population()
            if not schools:
                return None
            dims = (self.school_dim(), self.grade_dim(),
                    Dimension(ABSENCE_DAYS, _ABSENCE_LEAVES, _ABSENCE_PARENTS))
            return self._table("population", dims, counts)
        return self._once("population", make)

    # months ------------------------------------------------------------------------------------
    def _read_months(self):
        from renkei.edudata.models import AttendancePupilMonth, Student

        absences = F("absent_illness") + F("absent_accident") + F("absent_other")
        required = F("school_days") - F("suspension") - F("mourning")
        rows = _rows("months", self.year, lambda: (
            AttendancePupilMonth.objects
            .filter(school_year=self.year, student__in=Student.objects.analyzable())
            .annotate(absences=absences)
            .annotate(bin=Case(When(absences__gte=MONTHLY_ABSENCE_DAYS, then=Value("ge10")),
                               default=Value("lt10")))
            .values_list("school_id", "school_type", "grade", "month", "bin")
            .annotate(n=Count("id"), required=Sum(required),
                      attended=Sum(required - absences)).order_by()))
        per_month: dict[str, tuple[dict, dict, dict]] = {}
        for school_id, kind, grade, month, bin_code, n, req, att in rows:
            school = str(school_id)
            if school not in self.schools:
                continue  # not in the yearly rollup: not part of the population
            counts, req_days, att_days = per_month.setdefault(
                month_code(self.year, month), ({}, {}, {}))
            key = (school, grade_code(kind, grade), bin_code)
            counts[key] = counts.get(key, 0) + n
            req_days[key] = req_days.get(key, 0) + int(req or 0)
            att_days[key] = att_days.get(key, 0) + int(att or 0)
        return per_month

    def months(self) -> tuple[str, ...]:
        """Months of the school year with attendance data, in order."""
        return tuple(sorted(self._once("months_rows", self._read_months), key=_month_order))

    def month_table(self, month: str) -> _Protected | None:
        """school x grade x (fewer than / at least 10 absence days) in one month."""
        def make():
            data = self._once("months_rows", self._read_months).get(month)
            if data is None:
                return None
            counts, req_days, att_days = data
            dims = (self.school_dim(), self.grade_dim(self._grades(counts)),
                    Dimension(MONTHLY_ABSENCE, ("lt10", "ge10")))
            return self._table(f"month:{month}", dims, counts,
                               {"required": req_days, "attended": att_days})
        return self._once(("month", month), make)

    def _grades(self, counts: Mapping[Key, int]) -> set[str]:
        """The population's grades, plus any grade only this table has."""
        return set(self.population()[1]) | {key[1] for key in counts}

    # nurse visits --------------------------------------------------------------------------
    def _read_nurse(self):
        from renkei.edudata.models import NurseVisitMonth

        rows = _rows("nurse", self.year, lambda: (
            NurseVisitMonth.objects.filter(school_year=self.year,
                                           reason_category__in=NURSE_REASONS)
            .values_list("school_id", "school_type", "grade", "month", "reason_category")
            .annotate(p=Sum("pupils"), v=Sum("visits")).order_by()))
        data: dict[tuple[str, str], tuple[dict, dict]] = {}
        for school_id, kind, grade, month, reason, p, v in rows:
            school = str(school_id)
            if school not in self.schools:
                continue
            counts, visits = data.setdefault((month_code(self.year, month), reason), ({}, {}))
            key = (school, grade_code(kind, grade))
            counts[key] = counts.get(key, 0) + int(p)
            visits[key] = visits.get(key, 0) + int(v)
        return data

    def nurse_months(self) -> tuple[str, ...]:
        """Months with attendance or nurse-visit data (a month with no visits is a zero)."""
        data = self._once("nurse_rows", self._read_nurse)
        return tuple(sorted(set(self.months()) | {m for m, _ in data}, key=_month_order))

    def nurse_table(self, month: str, reason: str) -> _Protected:
        """school x grade: pupils who visited the nurse for ``reason`` in ``month``."""
        def make():
            counts, visits = self._once("nurse_rows", self._read_nurse).get(
                (month, reason), ({}, {}))
            dims = (self.school_dim(), self.grade_dim(self._grades(counts)))
            return self._table(f"nurse:{month}:{reason}", dims, counts, {"visits": visits})
        return self._once(("nurse", month, reason), make)

    # Microsoft 365 ----------------------------------------------------------------------------
    def _read_m365(self):
        from renkei.edudata.models import M365AppMonth

        rows = _rows("m365", self.year, lambda: (
            M365AppMonth.objects.filter(school_year=self.year, app__in=M365_APPS)
            .values_list("school_id", "school_type", "grade", "month", "app")
            .annotate(n=Sum("active_pupils")).order_by()))
        data: dict[tuple[str, str], dict] = {}
        for school_id, kind, grade, month, app, n in rows:
            school = str(school_id)
            if school not in self.schools:
                continue
            counts = data.setdefault((month_code(self.year, month), app), {})
            key = (school, grade_code(kind, grade))
            counts[key] = counts.get(key, 0) + int(n)
        return data

    def m365_months(self) -> tuple[str, ...]:
        """Months with any Microsoft 365 usage data (the reports cover recent days only)."""
        data = self._once("m365_rows", self._read_m365)
        return tuple(sorted({m for m, _ in data}, key=_month_order))

    def m365_table(self, month: str, app: str) -> _Protected:
        """school x grade: pupils active in ``app`` in ``month``."""
        def make():
            counts = self._once("m365_rows", self._read_m365).get((month, app), {})
            dims = (self.school_dim(), self.grade_dim(self._grades(counts)))
            return self._table(f"m365:{month}:{app}", dims, counts)
        return self._once(("m365", month, app), make)

    # assessments -----------------------------------------------------------------------
    def assessment_tables(self) -> dict[str, _Protected]:
        """Per subject: school x grade x score bin of the achievement survey (学力調査).

        Only 学力調査 (one sitting per subject and year): the rollup counts distinct pupils
        per bin, so with several tests per subject a pupil would be in several bins.
        """
        return self._once("assessment", self._read_assessment)

    def _read_assessment(self) -> dict[str, _Protected]:
        from renkei.edudata.models import AssessmentBin

        rows = _rows("assessment", self.year, lambda: (
            AssessmentBin.objects.filter(school_year=self.year, kind=ASSESSMENT_KIND)
            .values_list("school_id", "school_type", "grade", "subject", "score_bin")
            .annotate(n=Sum("pupils")).order_by()))
        per_subject: dict[str, dict[Key, int]] = {}
        for school_id, kind, grade, subject, score_bin, n in rows:
            school = str(school_id)
            if school not in self.schools:
                continue
            key = (school, grade_code(kind, grade), _SCORE_LEAVES[min(max(score_bin, 0), 9)])
            counts = per_subject.setdefault(subject, {})
            counts[key] = counts.get(key, 0) + int(n)
        tables = {}
        for subject, counts in sorted(per_subject.items()):
            # The schools and grades that sat this subject; the others did not take it.
            dims = (self.school_dim({key[0] for key in counts}),
                    self.grade_dim({key[1] for key in counts}),
                    Dimension(SCORE_BIN, _SCORE_LEAVES, _SCORE_PARENTS))
            tables[subject] = self._table(f"assessment:{subject}", dims, counts)
        return tables


# -- metric builders ---------------------------------------------------------------------------

def _pct(numerator: disclosure.Cell, denominator: disclosure.Cell, scale: float = 100.0
         ) -> disclosure.RateCell:
    """A rate from released counts only (disclosure.rate), scaled to percent or per 100."""
    result = disclosure.rate(numerator, denominator)
    if result.value is None:
        return result
    return disclosure.RateCell(result.key, result.value * scale, False, None)


def _cell(key: dict[str, str], pupils: disclosure.Cell, numerator: disclosure.Cell,
          denominator: disclosure.Cell) -> MetricCell:
    """A MetricCell; a withheld cell shows the first reason of: pupils, numerator, rate."""
    rate = _pct(numerator, denominator)
    withheld = rate.value is None or pupils.suppressed
    reason = next((c.reason for c in (pupils, numerator) if c.suppressed), rate.reason)
    reason = PUBLIC_REASON.get(reason, reason)
    return MetricCell(key=key, pupils=pupils.value, value=None if withheld else rate.value,
                      suppressed=withheld,
                      reason=REASON_LABELS.get(reason) if withheld and reason else None,
                      reason_code=reason if withheld else None,
                      numerator=None if withheld else numerator.value,
                      denominator=denominator.value)


def _grade_codes(loader: _Loader, wanted: bool) -> list[str]:
    """Every grade code (leaves, school types, total) with a breakdown, else the total."""
    return list(loader.grade_dim().codes) if wanted else [TOTAL]


def _times(loader: _Loader, months: Sequence[str], by_month: bool) -> list[str]:
    """Month codes then the year code with a month breakdown, else the year code alone."""
    year = str(loader.year)
    return [*months, year] if by_month else [year]


def _monthly(loader: _Loader, months: Sequence[str], m: str, key: Key,
             get: Callable[..., disclosure.Cell], *args: Any) -> disclosure.Cell:
    """``get(month, *args)`` for a month; for the year the sum of the months' released
    cells (withheld if any month's is)."""
    if m == str(loader.year):
        return _sum(key, [get(month, *args) for month in months])
    return get(m, *args)


def _month_cell(loader: _Loader, month: str, key: Key, measure: str | None = None
                ) -> disclosure.Cell:
    table = loader.month_table(month)
    if table is None:
        return disclosure.Cell(key, None, True, NO_DATA)
    return table.count(key) if measure is None else table.measure(measure, key)


def _build_attendance_rate(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
    months = loader.months()
    pop = loader.population_table()
    if not months or pop is None:
        return []
    year = str(loader.year)

    def month_part(mm: str, key: Key, measure: str | None) -> disclosure.Cell:
        return _month_cell(loader, mm, key, measure)

    cells = []
    for m in _times(loader, months, MONTH in by):
        for g in _grade_codes(loader, GRADE in by):
            key = (school, g, TOTAL)
            # Yearly pupils are distinct pupils: the population table's figure.
            pupils = pop.count(key) if m == year else _month_cell(loader, m, key)
            attended = _monthly(loader, months, m, key, month_part, key, "attended")
            required = _monthly(loader, months, m, key, month_part, key, "required")
            cells.append(_cell({MONTH: m, GRADE: g}, pupils, attended, required))
    return cells


def _shares(counts: Mapping[str, disclosure.Cell], codes: Mapping[str, str], out_dim: str,
            base: dict[str, str]) -> list[MetricCell]:
    """Cells of a category whose total (same table) is the denominator, in percent."""
    total = counts[TOTAL]
    return [_cell({**base, out_dim: out_code}, counts[code], counts[code], total)
            for code, out_code in codes.items()]


def _build_population_categories(codes: Mapping[str, str], out_dim: str
                                 ) -> Callable[[_Loader, set[str], str], list[MetricCell]]:
    def build(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
        pop = loader.population_table()
        if pop is None:
            return []
        cells = []
        for g in _grade_codes(loader, GRADE in by):
            counts = {c: pop.count((school, g, c)) for c in codes}
            cells += _shares(counts, codes, out_dim, {GRADE: g})
        return cells
    return build


def _build_monthly_absence(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
    months = loader.months()
    if not months:
        return []
    codes = {"ge10": "ge10", "lt10": "lt10", TOTAL: TOTAL}
    cells = []
    for m in _times(loader, months, MONTH in by):
        for g in _grade_codes(loader, GRADE in by):
            counts = {}
            for c in codes:
                key = (school, g, c)
                counts[c] = _monthly(loader, months, m, key, _month_cell_at, loader, key)
            cells += _shares(counts, codes, MONTHLY_ABSENCE, {MONTH: m, GRADE: g})
    return cells


def _month_cell_at(month: str, loader: _Loader, key: Key) -> disclosure.Cell:
    return _month_cell(loader, month, key)


def _denominator(loader: _Loader, school: str, m: str, g: str,
                 months: Sequence[str] | None = None) -> disclosure.Cell:
    """Pupils enrolled: the month's population for a month; for the year the yearly
    population, or with ``months`` (the months a source has data for) the sum of those
    months' released populations (pupil-months)."""
    key = (school, g, TOTAL)
    if m != str(loader.year):
        return _month_cell(loader, m, key)
    if months is not None:
        return _sum(key, [_month_cell(loader, mm, key) for mm in months])
    pop = loader.population_table()
    return pop.count(key) if pop is not None else disclosure.Cell(key, None, True, NO_DATA)


def _nurse_part(month: str, loader: _Loader, reason: str, key: Key, measure: str | None
                ) -> disclosure.Cell:
    table = loader.nurse_table(month, reason)
    return table.count(key) if measure is None else table.measure(measure, key)


def _build_nurse(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
    months = loader.nurse_months()
    if not months:
        return []
    cells = []
    for m in _times(loader, months, MONTH in by):
        for g in _grade_codes(loader, GRADE in by):
            den = _denominator(loader, school, m, g)
            key = (school, g)
            figures: dict[tuple[str, str | None], disclosure.Cell] = {}
            for measure in (None, "visits"):
                for reason in NURSE_REASONS:
                    figures[reason, measure] = _monthly(loader, months, m, key, _nurse_part,
                                                        loader, reason, key, measure)
                # Reasons are not a partition of pupils: the total is a sum of released cells.
                figures[TOTAL, measure] = _sum(key, [figures[r, measure] for r in NURSE_REASONS])
            for reason in (*NURSE_REASONS, TOTAL):
                cells.append(_cell({MONTH: m, GRADE: g, NURSE_REASON: reason},
                                   figures[reason, None], figures[reason, "visits"], den))
    return cells


def _m365_part(month: str, loader: _Loader, app: str, key: Key) -> disclosure.Cell:
    return loader.m365_table(month, app).count(key)


def _build_m365(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
    months = loader.m365_months()
    if not months:
        return []
    cells = []
    for m in _times(loader, months, MONTH in by):
        for g in _grade_codes(loader, GRADE in by):
            den = _denominator(loader, school, m, g, months)
            key = (school, g)
            for app in M365_APPS:
                active = _monthly(loader, months, m, key, _m365_part, loader, app, key)
                cells.append(_cell({MONTH: m, GRADE: g, APP: app}, active, active, den))
    return cells


def _build_assessment(loader: _Loader, by: set[str], school: str) -> list[MetricCell]:
    codes = {code: code for code in (*_SCORE_LEAVES, "0-39", "40-69", "70-100", TOTAL)}
    cells = []
    for subject, table in loader.assessment_tables().items():
        if school != TOTAL and school not in table.dims[0].leaves:
            continue
        for g in (list(table.dims[1].codes) if GRADE in by else [TOTAL]):
            counts = {c: table.count((school, g, c)) for c in codes}
            cells += _shares(counts, codes, SCORE_BIN, {GRADE: g, SUBJECT: subject})
    return cells


# -- the registry -----------------------------------------------------------------------------

_METRICS = (
    Metric(
        name="attendance_rate", label_ja="出席率", label_en="Attendance rate",
        description_ja="出席すべき日数（授業日数から出席停止・忌引を除く）のうち出席した日数の割合。"
                       "遅刻・早退は出席に数える。年度の値は月の合計から求める。",
        description_en="Days attended over days pupils were required to attend (school days "
                       "minus suspension and mourning); late arrival and early leave count as "
                       "attended. Yearly values are sums over months.",
        unit="%", dimensions=(MONTH, GRADE),
        source="edudata.AttendancePupilMonth, edudata.AttendancePupilYear",
        value_label_ja="出席率（%）", _build=_build_attendance_rate),
    Metric(
        name="absence_days_distribution", label_ja="年間欠席日数の分布",
        label_en="Distribution of absence days per pupil",
        description_ja="年度の欠席日数（病気・事故・その他。出席停止・忌引は含めない）で児童生徒を"
                       "0日、1〜9日、10〜29日、30日以上に分けた人数と割合。",
        description_en="Pupils by absence days in the school year (illness, accident, other; "
                       "not suspension or mourning): 0, 1-9, 10-29, 30+.",
        unit="%", dimensions=(GRADE,), categories=(ABSENCE_DAYS,),
        source="edudata.AttendancePupilYear", value_label_ja="割合（%）",
        _build=_build_population_categories(DISTRIBUTION_CODES, ABSENCE_DAYS)),
    Metric(
        name="long_term_absence", label_ja="長期欠席", label_en="Long-term absence",
        description_ja="年度の欠席日数が30日以上の児童生徒の人数と割合。主な欠席区分（病気・事故・"
                       "その他のうち日数が最も多いもの）別。分母は同じ表の「計」（児童生徒数）。",
        description_en="Pupils absent 30 days or more in the school year, count and rate, by "
                       "main absence category; the denominator is the table's total.",
        unit="%", dimensions=(GRADE,), categories=(ABSENCE_CATEGORY,),
        source="edudata.AttendancePupilYear", value_label_ja="割合（%）",
        _build=_build_population_categories(LONG_TERM_CODES, ABSENCE_CATEGORY)),
    Metric(
        name="monthly_absence_10_days", label_ja="月10日以上欠席した児童生徒",
        label_en="Pupils absent 10+ days in a month",
        description_ja="その月の欠席日数が10日以上の児童生徒の人数と割合。年度の値は月の延べ人数。",
        description_en="Pupils with 10 or more absence days in the month; yearly values are "
                       "pupil-months.",
        unit="%", dimensions=(MONTH, GRADE), categories=(MONTHLY_ABSENCE,),
        source="edudata.AttendancePupilMonth", value_label_ja="割合（%）",
        _build=_build_monthly_absence),
    Metric(
        name="nurse_visits_per_100", label_ja="保健室来室（児童生徒100人あたり）",
        label_en="Nurse visits per 100 pupils",
        description_ja="保健室の来室回数を児童生徒100人あたりで、来室理由別に。月の値の分母はその月の"
                       "児童生徒数、年度の値の分母は年度の児童生徒数。人数は来室した児童生徒の延べ人数。",
        description_en="Nurse visits per 100 pupils by reason; monthly values over the month's "
                       "pupils, yearly values over the year's pupils.",
        unit="回/100人", dimensions=(MONTH, GRADE), categories=(NURSE_REASON,),
        source="edudata.NurseVisitMonth", value_label_ja="100人あたり来室回数",
        _build=_build_nurse),
    Metric(
        name="m365_active_rate", label_ja="Microsoft 365 利用率（アプリ別）",
        label_en="Microsoft 365 active-pupil rate by app",
        description_ja="その月にアプリを使った児童生徒の割合。年度の値は利用データのある月の延べ人数から"
                       "求める（月平均）。",
        description_en="Share of pupils who used the app in the month; yearly values are "
                       "pupil-months over the months with usage data.",
        unit="%", dimensions=(MONTH, GRADE), categories=(APP,),
        source="edudata.M365AppMonth", value_label_ja="利用率（%）", _build=_build_m365),
    Metric(
        name="assessment_score_distribution", label_ja="学力調査の得点分布（教科別）",
        label_en="Assessment score distribution by subject",
        description_ja="学力調査の得点率（満点に対する割合、10%刻み。0〜39%・40〜69%・70〜100%に"
                       "まとめた段階も）の分布。教科別。",
        description_en="Score distribution (percent of maximum in 10% bins, grouped 0-39, "
                       "40-69, 70-100) of the achievement survey, by subject.",
        unit="%", dimensions=(GRADE,), categories=(SUBJECT, SCORE_BIN),
        source="edudata.AssessmentBin", value_label_ja="割合（%）",
        _build=_build_assessment),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}

