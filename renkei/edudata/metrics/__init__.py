"""The metric registry and the release engine: every aggregate that may leave a tenant.

A :class:`Metric` says what it counts, in which units, from which rollup and by which
dimensions it may be broken down. :func:`compute` (a municipality or one of its schools) and
:func:`compute_prefecture` (a prefecture and its municipalities) return
:class:`MetricTable` objects cut from the prefecture's *releases* (:mod:`.release`): tables
protected once per data version and served to every entry point - the municipality API,
widgets and dashboards, every field of the federation. Nobody re-implements counting or
suppression, and each cell has one answer everywhere. docs/disclosure.md explains it to
users.

Why the tables are built the way they are
-----------------------------------------
Suppressing each answer on its own is not enough: the same figures appear in many answers
(a grade total is the denominator of several metrics, a yearly figure is the sum of the
monthly ones, a school is part of its municipality, a municipality of its prefecture), and a
cell hidden in one answer could be recovered from figures released in another. So every
answer is a *projection* of a few canonical tables per prefecture and school year, each
protected as a whole over its full cross-classification, with the area (prefecture >
municipality > school) as its first dimension:

* ``population`` (``AttendancePupilYear``): area x grade x absence days in the year. Its
  absence-day hierarchy (0 / 1-9 / 10-29 under "0-29"; 30+ split by the main absence
  category) serves the absence-day distribution, long-term absence (長期欠席) and the yearly
  pupil count, the denominator of every yearly rate: a count and its denominator are
  protected together.
* ``month:<month>`` (``AttendancePupilMonth``): area x grade x (fewer than / at least 10
  absence days). Its category total is the month's pupil count.
* ``attendance_days``: area x grade x month, absence days as magnitudes (days bound counts
  of pupils absent 10+ days, so they are protected on their own: see
  :meth:`_CanonicalTables.attendance_days_table`), with the days required and attended.
* ``nurse:<month>:<reason>`` (``NurseVisitMonth``), ``m365:<month>:<app>`` (the month's
  pupils split by use of the app) and ``assessment:<subject>`` (学力調査 only).
* ``learning:<month>`` (``LearningPupilMonth``): the month's pupils split by their average
  learning minutes per week (0 = no learning-tool use, 1-29, 30-59, 60-119, 120+; all but 0
  under "active"). The minutes distribution and the share of active pupils are both read
  from it, so one protection covers both.
* ``futoko:<municipality>`` (``LongAbsenceReasonYear``): one municipality's pupils of the
  year split into under 30 absence days and long-term absent by the school's classification
  (不登校 or not). Absence reasons are sensitive (DESIGN rule 6): the table is made from that
  municipality's rows alone, released to its own board and schools only (a metric of
  ``scope`` MUNICIPALITY_ONLY: :func:`compute_prefecture`, the federation and widget tokens
  refuse it), and it refines the population table, whose released and withheld cells it
  keeps as they are (:meth:`_CanonicalTables.futoko_table`).

Only dimensions that partition pupils go into one protected table, because *k* counts
pupils: a pupil is in every month and may visit the nurse for two reasons. Figures over
those dimensions - the year of a monthly count (pupil-months, 延べ人数), all reasons of
nurse visits - are sums of released cells, withheld when any part is (:func:`_sum`).

Dimensions come from fixed hierarchies only: school year > month ("2025-04" ... under
"2025"), school type > grade ("B1-3" = 小学校 3年 under "B1"), the area, and one fixed
category list per metric. No filter takes free values.

Every read goes through the rollups (never raw rows), of analyzable pupils only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from renkei.edudata.codes import (
    COUNTED_NURSE_REASONS,
    LONG_TERM_DAYS,
    AssessmentKind,
    LongAbsenceReason,
    NurseVisitReason,
)
from renkei.edudata.metrics import exact, frozen, release
from renkei.platform import disclosure, telemetry
from renkei.platform.disclosure import MIN_K, TOTAL, Dimension
from renkei.tenants.codes import SCHOOL_TYPES

__all__ = [
    "CATEGORY_LABELS",
    "DIMENSION_LABELS",
    "METRICS",
    "MUNICIPALITY",
    "MUNICIPALITY_ONLY",
    "PREFECTURE_WIDE_METRICS",
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
AREA = "area"  # internal: prefecture > municipality > school, one table per prefecture
ABSENCE_DAYS = "absence_days"
ABSENCE_CATEGORY = "absence_category"
MONTHLY_ABSENCE = "monthly_absence"
NURSE_REASON = "nurse_reason"
FUTOKO_SPLIT = "futoko_split"  # internal: the year's pupils by long-term absence and 不登校
APP = "app"
M365_USE = "m365_use"  # internal: whether a pupil of the month used the app
LEARNING_MINUTES = "learning_minutes"
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
    LEARNING_MINUTES: ("1週あたりの学習時間", "learning minutes per week"),
    SUBJECT: ("教科", "subject"),
    SCORE_BIN: ("得点率", "score (percent of maximum)"),
}

# Grades of each school type by law; other grades are used only when the data has them.
STANDARD_GRADES: Mapping[str, int] = {"B1": 6, "C1": 3, "C2": 9, "D1": 3, "D2": 6}

# Absence days in the year (population table). 長期欠席 = 30 days or more; a long-term absentee
# is classed by the category with the most days (ties: illness, then accident, then other).
_ABSENCE_LEAVES = ("0", "1-9", "10-29", "30+:illness", "30+:accident", "30+:other")
_ABSENCE_PARENTS = {
    "0": "0-29",
    "1-9": "0-29",
    "10-29": "0-29",
    "30+:illness": "30+",
    "30+:accident": "30+",
    "30+:other": "30+",
}
LONG_TERM_CODES = {
    "30+": "long_term",
    "30+:illness": "illness",
    "30+:accident": "accident",
    "30+:other": "other",
    "0-29": "not_long_term",
    TOTAL: TOTAL,
}
DISTRIBUTION_CODES = {"0": "0", "1-9": "1-9", "10-29": "10-29", "30+": "30+", TOTAL: TOTAL}
# The futoko table's split of the year's pupils: "0-29" and "30+" are the population table's
# cells of the same names, so its released and withheld cells carry over.
_FUTOKO_LEAVES = ("0-29", "30+:futoko", "30+:other")
_FUTOKO_PARENTS = {"30+:futoko": "30+", "30+:other": "30+"}
_FUTOKO_SHARED = ("0-29", "30+", TOTAL)
MONTHLY_ABSENCE_DAYS = 10
# Released absence days of a group bound its pupils absent 10+ days by days / 10: days are
# withheld where that bound would be below this many pupils (see attendance_days_table).
DAYS_BOUND_PUPILS = 3

NURSE_REASONS = COUNTED_NURSE_REASONS  # never 心の相談 (codes.SENSITIVE_NURSE_REASONS)
M365_APPS = ("teams", "word", "excel", "powerpoint", "onenote", "outlook")
ASSESSMENT_KIND = AssessmentKind.SURVEY
# Average learning minutes per week in a month; "0" is no learning activity at all (an
# activity without a duration counts as use, in "1-29").
LEARNING_BINS = ("0", "1-29", "30-59", "60-119", "120+")
LEARNING_ACTIVE = "active"
_LEARNING_PARENTS = {code: LEARNING_ACTIVE for code in LEARNING_BINS[1:]}
_SCORE_LEAVES = tuple(f"{10 * i}-{10 * i + 9}" if i < 9 else "90-100" for i in range(10))
_SCORE_PARENTS = {
    code: ("0-39" if i < 4 else "40-69" if i < 7 else "70-100")
    for i, code in enumerate(_SCORE_LEAVES)
}

CATEGORY_LABELS: Mapping[str, Mapping[str, str]] = {
    ABSENCE_CATEGORY: {
        "long_term": "長期欠席（30日以上）",
        "illness": "長期欠席（主に病気）",
        "accident": "長期欠席（主に事故）",
        "other": "長期欠席（主にその他）",
        "not_long_term": "長期欠席以外",
        TOTAL: "計",
    },
    ABSENCE_DAYS: {
        "0": "0日",
        "1-9": "1〜9日",
        "10-29": "10〜29日",
        "30+": "30日以上",
        TOTAL: "計",
    },
    MONTHLY_ABSENCE: {"ge10": "月10日以上欠席", "lt10": "月10日未満", TOTAL: "計"},
    NURSE_REASON: {
        **{r.value: r.label for r in NurseVisitReason if r.value in COUNTED_NURSE_REASONS},
        TOTAL: "計",
    },
    APP: {
        "teams": "Teams",
        "word": "Word",
        "excel": "Excel",
        "powerpoint": "PowerPoint",
        "onenote": "OneNote",
        "outlook": "Outlook",
    },
    LEARNING_MINUTES: {
        "0": "利用なし",
        "1-29": "30分未満（利用あり）",
        "30-59": "30〜59分",
        "60-119": "60〜119分",
        "120+": "120分以上",
        LEARNING_ACTIVE: "利用あり",
        TOTAL: "計",
    },
    SCORE_BIN: {
        **{code: f"{code}%" for code in _SCORE_LEAVES},
        "0-39": "0〜39%",
        "40-69": "40〜69%",
        "70-100": "70〜100%",
        TOTAL: "計",
    },
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
    ABSENCE_CATEGORY: {
        "long_term": "Long-term absence (30+ days)",
        "illness": "Long-term absence (mainly illness)",
        "accident": "Long-term absence (mainly accident)",
        "other": "Long-term absence (mainly other reasons)",
        "not_long_term": "Not long-term absent",
    },
    ABSENCE_DAYS: {"0": "0 days", "1-9": "1–9 days", "10-29": "10–29 days", "30+": "30+ days"},
    MONTHLY_ABSENCE: {"ge10": "Absent 10+ days in the month", "lt10": "Absent under 10 days"},
    NURSE_REASON: {
        "injury": "Injury",
        "illness": "Feeling unwell",
        "other": "Other",
    },
    SUBJECT: {
        "国語": "Japanese",
        "算数": "Arithmetic",
        "数学": "Mathematics",
        "理科": "Science",
        "社会": "Social studies",
        "英語": "English",
    },
    SCORE_BIN: {"0-39": "0–39%", "40-69": "40–69%", "70-100": "70–100%"},
    LEARNING_MINUTES: {
        "0": "Not used",
        "1-29": "Under 30 min (used)",
        "30-59": "30–59 min",
        "60-119": "60–119 min",
        "120+": "120 min or more",
        LEARNING_ACTIVE: "Used",
    },
}

# Reasons for a withheld value beyond disclosure.REASONS.
NO_DATA = "no_data"
PART_SUPPRESSED = "part_suppressed"
# A prefecture cell withheld because a remote municipality withheld a part of it.
REMOTE_PART = "municipality_suppressed"
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
    REMOTE_PART: "市区町村の数値に秘匿されたセルがあるため秘匿",
}

Key = tuple[str, ...]

#: Metric.scope: released at every entry point, or to the municipality's own users only.
PREFECTURE_WIDE = "prefecture"
MUNICIPALITY_ONLY = "municipality"
MUNICIPALITY_ONLY_MESSAGE = (
    "指標「{label}」は市区町村の教育委員会と学校だけに公開する指標です（長期欠席の理由は"
    "機微な情報のため、都道府県の集計・連携 API・ウィジェット用トークンでは扱いません）。"
)


# -- public types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric: what it counts, how it may be broken down, where it comes from.

    ``dimensions`` are the breakdowns a caller may ask for; ``categories`` are the
    metric-specific dimensions every answer is broken down by (they are part of what the
    metric means, e.g. the absence category of long-term absence). ``min_cell_size`` is the
    metric's own floor for *k*; the tenant's ``min_cell_size`` applies when it is larger.
    ``scope`` is who it is released to: PREFECTURE_WIDE (every entry point, the federation
    included) or MUNICIPALITY_ONLY (a sensitive item, DESIGN rule 6: the municipality's own
    API and dashboards, for its board and schools; no prefecture table, federation field or
    widget token).
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
    scope: str = PREFECTURE_WIDE
    _build: Callable[..., list[MetricCell]] | None = field(default=None, repr=False, compare=False)

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

    def with_key(self, key: dict[str, str]) -> MetricCell:
        """This cell under another key (``dataclasses.replace`` is slow for 13,000 cells)."""
        return MetricCell(
            key,
            self.pupils,
            self.value,
            self.suppressed,
            self.reason,
            self.reason_code,
            self.numerator,
            self.denominator,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "pupils": self.pupils,
            "value": self.value,
            "suppressed": self.suppressed,
            "reason_code": self.reason_code,
            "numerator": self.numerator,
            "denominator": self.denominator,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricCell:
        reason_code = data.get("reason_code")
        reason_code = PUBLIC_REASON.get(reason_code, reason_code)
        return cls(
            key={str(d): str(c) for d, c in dict(data["key"]).items()},
            pupils=_int_or_none(data.get("pupils")),
            value=None if data.get("value") is None else float(data["value"]),
            suppressed=bool(data["suppressed"]),
            reason=REASON_LABELS.get(reason_code) if reason_code else None,
            reason_code=reason_code,
            numerator=_int_or_none(data.get("numerator")),
            denominator=_int_or_none(data.get("denominator")),
        )


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
        return {
            "metric": self.metric,
            "municipality_code": self.municipality_code,
            "school_year": self.school_year,
            "dimensions": self.dimensions,
            "k": self.k,
            "unit": self.unit,
            "cells": [c.to_json() for c in self.cells],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricTable:
        return cls(
            metric=str(data["metric"]),
            municipality_code=str(data["municipality_code"]),
            school_year=int(data["school_year"]),
            dimensions=[str(d) for d in data["dimensions"]],
            k=int(data["k"]),
            cells=[MetricCell.from_json(c) for c in data["cells"]],
            unit=str(data.get("unit", "")),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# -- compute ------------------------------------------------------------------------------------


def compute(
    metric: str,
    municipality,
    *,
    school_year: int,
    breakdown: Sequence[str] = (),
    school_code: str | None = None,
) -> MetricTable:
    """``metric`` for ``municipality`` (or one of its schools), as released.

    The cells are those of the prefecture's release (:mod:`.release`): the municipality's
    or the school's part of tables protected for the whole prefecture, so the municipality
    API, the federation and every other entry point give each cell the same answer. Reads
    rollups of analyzable pupils only; k is the largest of the prefecture's municipalities.
    Raises ValueError (Japanese message) for an unknown metric, breakdown or school.
    """
    spec = _spec(metric)
    dims = check_breakdown(spec, breakdown)
    return _without_broken_remotes(
        lambda: _compute(spec, dims, municipality, int(school_year), school_code)
    )


def _compute(
    spec: Metric, dims: tuple[str, ...], municipality, school_year: int, school_code: str | None
) -> MetricTable:
    canonical = _CanonicalTables(
        release.scope_for(municipality.prefecture_id, include=municipality.code),
        school_year,
        spec.min_cell_size,
    )
    if school_code is None:
        area = municipality.code
    else:
        area = canonical.school_key(municipality.code, school_code)
        if area not in canonical.schools:
            raise ValueError(
                f"学校コード {school_code} の {school_year} 年度の集計対象の児童生徒はいません。"
            )
    table = _answer(spec, canonical, dims, area, municipality.code)
    table.school_code = school_code
    telemetry.record_suppressed_cells(
        sum(c.suppressed for c in table.cells), spec.name, tenant_code=municipality.code
    )
    return table


def compute_prefecture(
    metric: str,
    prefecture_code: str,
    *,
    school_year: int,
    breakdown: Sequence[str] = (),
    municipalities: Iterable[str] | None = None,
) -> dict[str, MetricTable]:
    """The prefecture's own table (key ``TOTAL``: its local municipalities together) and
    each local municipality's (all, or those named), from the same release. ``breakdown``
    must not name the municipality. A MUNICIPALITY_ONLY metric is refused (ValueError)."""
    spec = require_prefecture_wide(metric)
    dims = check_breakdown(spec, breakdown)
    wanted = None if municipalities is None else set(municipalities)

    def make() -> dict[str, MetricTable]:
        canonical = _canonical_tables(prefecture_code, school_year, spec.min_cell_size)
        tables = {TOTAL: _answer(spec, canonical, dims, TOTAL, prefecture_code)}
        for member in canonical.scope.members:
            if wanted is None or member.code in wanted:
                tables[member.code] = _answer(spec, canonical, dims, member.code, member.code)
        return tables

    return _without_broken_remotes(make)


def _without_broken_remotes(make: Callable[[], Any]) -> Any:
    """``make()``; once more if a trusted remote failed while its rows were read. It is then
    left out until its data changes (:func:`exact.rows`), and the rest of the prefecture
    answers without it (the federation reports it missing)."""
    try:
        return make()
    except exact.ExactError:
        return make()


def combine_prefecture(
    spec: Metric,
    breakdown: Sequence[str],
    local: MetricTable | None,
    remote: Sequence[MetricTable],
    municipalities: Sequence[MetricTable],
) -> tuple[list[str], list[MetricCell], int]:
    """The prefecture's released table: (dimensions, cells, k).

    The local municipalities' part is their joint release (``local``, from
    :func:`compute_prefecture`). A remote municipality releases its own table, so a
    prefecture cell adds its released cells to the local one and is withheld when any part
    is (the total minus the released parts would reveal the withheld one). With the
    municipality breakdown, every municipality's own cells come first, as it released them.
    """
    by_municipality = MUNICIPALITY in breakdown
    base_dims = check_breakdown(spec, [d for d in breakdown if d != MUNICIPALITY])
    order = {d: i for i, d in enumerate(spec.all_dimensions)}
    dims = sorted({*base_dims, *spec.categories}, key=order.__getitem__)
    cells: list[MetricCell] = []
    if by_municipality:
        for table in sorted(municipalities, key=lambda t: t.municipality_code):
            for cell in table.cells:
                cells.append(cell.with_key({MUNICIPALITY: table.municipality_code, **cell.key}))
    parts = [t for t in ([local] if local is not None else []) + list(remote) if t.cells]
    lookups = [{tuple(c.key[d] for d in dims): c for c in t.cells} for t in parts]
    for key in _ordered_keys(parts, dims):
        cell = _add_up([lookup[key] for lookup in lookups if key in lookup])
        cell.key = {
            **({MUNICIPALITY: TOTAL} if by_municipality else {}),
            **dict(zip(dims, key, strict=True)),
        }
        cells.append(cell)
    out_dims = [MUNICIPALITY, *dims] if by_municipality else list(dims)
    k = max((t.k for t in parts), default=max(MIN_K, spec.min_cell_size))
    return out_dims, cells, k


def _add_up(parts: Sequence[MetricCell]) -> MetricCell:
    """One prefecture cell from its parts (the local release and remote tables)."""
    if len(parts) == 1:
        return parts[0].with_key(parts[0].key)
    if any(p.suppressed for p in parts):
        return MetricCell(
            key={},
            pupils=None,
            value=None,
            suppressed=True,
            reason=REASON_LABELS[REMOTE_PART],
            reason_code=REMOTE_PART,
        )
    pupils = sum(p.pupils or 0 for p in parts)
    numerator = sum(p.numerator or 0 for p in parts)
    denominator = sum(p.denominator or 0 for p in parts)
    if denominator == 0:
        return MetricCell(
            key={},
            pupils=pupils,
            value=None,
            suppressed=True,
            reason=REASON_LABELS[disclosure.ZERO_DENOMINATOR],
            reason_code=disclosure.ZERO_DENOMINATOR,
        )
    return MetricCell(
        key={},
        pupils=pupils,
        value=100.0 * numerator / denominator,
        suppressed=False,
        reason=None,
        reason_code=None,
        numerator=numerator,
        denominator=denominator,
    )


def _ordered_keys(tables: Sequence[MetricTable], dims: Sequence[str]) -> list[tuple[str, ...]]:
    """Every key of any table, ordered per dimension (leaves, groups, total)."""
    seen: dict[tuple[str, ...], None] = {}
    first: dict[str, dict[str, int]] = {d: {} for d in dims}
    for table in tables:
        for cell in table.cells:
            key = tuple(cell.key[d] for d in dims)
            seen.setdefault(key)
            for d, code in zip(dims, key, strict=True):
                first[d].setdefault(code, len(first[d]))

    def rank(d: str, code: str) -> tuple:
        if code == TOTAL:
            return (3,)
        if d == GRADE:
            kind, _, grade = code.partition("-")
            return (0, kind, int(grade)) if grade else (0, kind, 99)
        if d == MONTH:
            return (0, code) if "-" in code else (1, code)
        return (0, first[d][code])

    return sorted(seen, key=lambda key: tuple(rank(d, c) for d, c in zip(dims, key, strict=True)))


def warm(prefecture_code: str) -> int:
    """Make the current releases of the tables the prefecture has stored (after a data
    change: see release.warm_after_commit). Returns how many tables were made or found."""
    done = 0
    for year, names in release.stored_tables(prefecture_code).items():
        canonical = _canonical_tables(prefecture_code, year)
        for name in names:
            kind, _, rest = name.partition(":")
            if kind == "population":
                canonical.population_table()
            elif kind == "attendance_days":
                canonical.attendance_days_table()
            elif kind == "month" and rest in canonical.months():
                canonical.month_table(rest)
            elif kind == "nurse":
                month, _, reason = rest.partition(":")
                canonical.nurse_table(month, reason)
            elif kind == "m365":
                month, _, app = rest.partition(":")
                canonical.m365_table(month, app)
            elif kind == "learning":
                canonical.learning_table(rest)
            elif kind == "assessment":
                canonical.assessment_tables()
            elif kind == "futoko" and canonical.scope.member(rest) is not None:
                canonical.futoko_table(rest)
            else:
                continue
            done += 1
    return done


def _spec(metric: str) -> Metric:
    spec = METRICS.get(metric)
    if spec is None:
        raise ValueError(f"指標「{metric}」はありません。使える指標: {', '.join(METRICS)}")
    return spec


def require_prefecture_wide(metric: str) -> Metric:
    """The metric, when it may leave the municipality (a prefecture table, the federation, a
    deployment elsewhere, a widget token); ValueError in Japanese for a MUNICIPALITY_ONLY
    one, before anything is computed."""
    spec = _spec(metric)
    if spec.scope != PREFECTURE_WIDE:
        raise ValueError(MUNICIPALITY_ONLY_MESSAGE.format(label=spec.label_ja))
    return spec


def _canonical_tables(
    prefecture_code: str, school_year: int, floor: int = MIN_K
) -> _CanonicalTables:
    return _CanonicalTables(release.scope_for(prefecture_code), int(school_year), floor)


def _answer(
    spec: Metric, canonical: _CanonicalTables, dims: Sequence[str], area: str, code: str
) -> MetricTable:
    """The cells of ``spec`` at ``area`` (TOTAL, a municipality or a school)."""
    order = {d: i for i, d in enumerate(spec.all_dimensions)}
    out_dims = sorted({*dims, *spec.categories}, key=order.__getitem__)
    cells: list[MetricCell] = []
    if area == TOTAL or area in canonical.schools or area in canonical.municipalities():
        assert spec._build is not None
        cells = spec._build(canonical, set(dims), area)
    for cell in cells:
        cell.key = {d: cell.key[d] for d in out_dims}
    return MetricTable(
        metric=spec.name,
        municipality_code=code,
        school_year=int(canonical.year),
        dimensions=out_dims,
        k=canonical.k,
        cells=cells,
        unit=spec.unit,
    )


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
            raise ValueError(
                f"指標「{spec.label_ja}」は「{dim}」で内訳できません（使える内訳: {allowed}）。"
            )
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
    return CATEGORY_LABELS_EN.get(dimension, {}).get(code) or code_label(
        dimension, code, school_year
    )


# -- canonical tables -------------------------------------------------------------------------


def month_code(school_year: int, month: int) -> str:
    """ "2025-04" for April of 2025年度, "2026-01" for its January."""
    return f"{school_year if month >= 4 else school_year + 1}-{month:02d}"


def _month_order(code: str) -> tuple[int, int]:
    year, month = code.split("-")
    return int(year), int(month)


def grade_code(school_type: str, grade: int) -> str:
    """ "B1-3" for 小学校 3年."""
    return f"{school_type}-{grade}"


def _grade_order(code: str) -> tuple[str, int]:
    kind, _, grade = code.partition("-")
    return kind, int(grade)


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


def clear_cache() -> None:
    """Forget the releases and rows this process remembers (tests and benchmarks that want a
    cold start; a data change never needs it, it makes a new version)."""
    release.forget()


def area_code(municipality_code: str, school_id: Any) -> str:
    """A school's code in the area dimension: "131130:42" (its row id in the tenant)."""
    return f"{municipality_code}:{school_id}"


def _union(
    members: Sequence[release.Member], family: str, params: Callable[[release.Member], list]
) -> list[tuple]:
    """The rows of one family (:data:`FAMILIES`) of every member, all together.

    Local members: the family's statement run in each member's schema (``{s}`` is its
    quoted name), one statement per tenant schema, never one that spans two (the rule
    schema-based sharding needs: tests/test_schema_boundaries.py), sent in one pipeline so
    that a prefecture's 180 tenants cost about one round trip, not 180. Trusted remote
    members run the same statement in their own database and send the rows (:mod:`.exact`).
    """
    local = [m for m in members if m.url is None]
    # A school year the member closed is read from the counts kept at closing (.frozen).
    closed = [m for m in local if family != "school" and params(m)[1] in m.closed]
    live = [m for m in local if m not in closed]
    rows = _local_rows(live, FAMILIES[family][0], params)
    if closed:
        rows += frozen.rows(closed, family, params(closed[0])[1])
    for m in members:
        if m.url is not None:
            with telemetry.tenant_span(m.code, "renkei.release.read", remote=True):
                rows += exact.rows(m.code, m.url, m.data_version, family, params(m))
    return rows


def _local_rows(
    members: Sequence[release.Member], select: str, params: Callable[[release.Member], list]
) -> list[tuple]:
    if not members:
        return []
    quote = connection.ops.quote_name
    connection.ensure_connection()
    raw = connection.connection
    cursors = []
    with raw.pipeline():
        for m in members:
            # Each tenant's statement is traced as that tenant's work.
            with telemetry.tenant_span(m.code, "renkei.release.read"):
                cursor = raw.cursor()
                cursor.execute(select.format(s=quote(m.schema_name)), params(m))
            cursors.append(cursor)
    rows = []
    for cursor in cursors:
        rows += cursor.fetchall()
        cursor.close()
    return rows


def exact_rows(municipality, family: str, params: Any) -> list[list]:
    """One family's rows of a municipality held here, for its prefecture's aggregator when
    this deployment trusts it (``/federation/tenant``; :mod:`.exact`). ValueError (Japanese)
    for an unknown family or parameters of the wrong shape."""
    if family not in FAMILIES:
        raise ValueError(
            f"集計の種類「{str(family)[:40]}」はありません。使える種類: {', '.join(FAMILIES)}"
        )
    types = FAMILIES[family][1]
    if not (
        isinstance(params, list)
        and len(params) == len(types)
        and all(
            type(p) is t and (t is not list or all(isinstance(v, str) for v in p))
            for p, t in zip(params, types, strict=False)
        )
    ):
        names = {str: "文字列", int: "整数", list: "文字列のリスト"}
        raise ValueError(f"「{family}」の params は [{', '.join(names[t] for t in types)}] です。")
    closed = frozenset(municipality.closed_school_years.values_list("school_year", flat=True))
    member = release.Member(municipality.code, municipality.schema_name, 0, 0, closed=closed)
    rows = _union([member], family, lambda m: params)
    # Sums arrive as Decimal; every figure here is a whole number.
    return [[int(v) if isinstance(v, Decimal) else v for v in row] for row in rows]


# Constants only are interpolated here; schema names are quoted by _union.
_POPULATION_SQL = f"""
    SELECT %s::text, y.school_id, y.school_type, y.grade,
           CASE WHEN y.absence_days >= {LONG_TERM_DAYS} AND y.absent_illness >= y.absent_accident
                     AND y.absent_illness >= y.absent_other THEN '30+:illness'
                WHEN y.absence_days >= {LONG_TERM_DAYS} AND y.absent_accident >= y.absent_other
                     THEN '30+:accident'
                WHEN y.absence_days >= {LONG_TERM_DAYS} THEN '30+:other'
                WHEN y.absence_days >= 10 THEN '10-29'
                WHEN y.absence_days >= 1 THEN '1-9' ELSE '0' END,
           count(*)
    FROM {{s}}.edudata_attendancepupilyear y
    JOIN {{s}}.edudata_student st ON st.id = y.student_id AND st.opted_out_at IS NULL
    WHERE y.school_year = %s
    GROUP BY 2, 3, 4, 5"""  # noqa: S608

_MONTHS_SQL = f"""
    SELECT %s::text, m.school_id, m.school_type, m.grade, m.month,
           CASE WHEN m.absent_illness + m.absent_accident + m.absent_other
                     >= {MONTHLY_ABSENCE_DAYS} THEN 'ge10' ELSE 'lt10' END,
           count(*), sum(m.school_days - m.suspension - m.mourning),
           sum(m.school_days - m.suspension - m.mourning
               - m.absent_illness - m.absent_accident - m.absent_other),
           max(m.school_days)
    FROM {{s}}.edudata_attendancepupilmonth m
    JOIN {{s}}.edudata_student st ON st.id = m.student_id AND st.opted_out_at IS NULL
    WHERE m.school_year = %s
    GROUP BY 2, 3, 4, 5, 6"""  # noqa: S608

_NURSE_SQL = """
    SELECT %s::text, school_id, school_type, grade, month, reason_category, sum(pupils),
           sum(visits)
    FROM {s}.edudata_nursevisitmonth
    WHERE school_year = %s AND reason_category = ANY(%s)
    GROUP BY 2, 3, 4, 5, 6"""

_M365_SQL = """
    SELECT %s::text, school_id, school_type, grade, month, app, sum(active_pupils)
    FROM {s}.edudata_m365appmonth
    WHERE school_year = %s AND app = ANY(%s)
    GROUP BY 2, 3, 4, 5, 6"""

_ASSESSMENT_SQL = """
    SELECT %s::text, school_id, school_type, grade, subject, score_bin, sum(pupils)
    FROM {s}.edudata_assessmentbin
    WHERE school_year = %s AND kind = %s
    GROUP BY 2, 3, 4, 5, 6"""


# The month's pupils (the month table's population) by their learning bin: a pupil with no
# learning row that month is "0".
_LEARNING_SQL = """
    SELECT %s::text, m.school_id, m.school_type, m.grade, m.month,
           CASE WHEN l.id IS NULL THEN '0' WHEN l.weekly_minutes < 30 THEN '1-29'
                WHEN l.weekly_minutes < 60 THEN '30-59' WHEN l.weekly_minutes < 120 THEN '60-119'
                ELSE '120+' END,
           count(*)
    FROM {s}.edudata_attendancepupilmonth m
    JOIN {s}.edudata_student st ON st.id = m.student_id AND st.opted_out_at IS NULL
    LEFT JOIN {s}.edudata_learningpupilmonth l
           ON l.student_id = m.student_id AND l.school_year = m.school_year AND l.month = m.month
    WHERE m.school_year = %s
    GROUP BY 2, 3, 4, 5, 6"""

_SCHOOL_SQL = "SELECT id FROM {s}.edudata_school WHERE code = %s"

# The population's pupils (same rows, same 30-day line) by the school's latest classification.
# Not one of the FAMILIES: these rows never leave their deployment, not even for a trusted
# aggregator (exact_rows serves FAMILIES only).
_FUTOKO_SQL = f"""
    SELECT y.school_id, y.school_type, y.grade,
           CASE WHEN y.absence_days < {LONG_TERM_DAYS} THEN '0-29'
                WHEN r.reason = '{LongAbsenceReason.FUTOKO.value}' THEN '30+:futoko'
                ELSE '30+:other' END,
           count(*)
    FROM {{s}}.edudata_attendancepupilyear y
    JOIN {{s}}.edudata_student st ON st.id = y.student_id AND st.opted_out_at IS NULL
    LEFT JOIN {{s}}.edudata_longabsencereasonyear r
           ON r.student_id = y.student_id AND r.school_year = y.school_year
    WHERE y.school_year = %s
    GROUP BY 1, 2, 3, 4"""  # noqa: S608

#: The rows a release reads from each municipality, by family: the statement and the types
#: of its parameters (a list is a list of strings).
FAMILIES: dict[str, tuple[str, tuple[type, ...]]] = {
    "population": (_POPULATION_SQL, (str, int)),
    "months": (_MONTHS_SQL, (str, int)),
    "nurse": (_NURSE_SQL, (str, int, list)),
    "m365": (_M365_SQL, (str, int, list)),
    "assessment": (_ASSESSMENT_SQL, (str, int, str)),
    "learning": (_LEARNING_SQL, (str, int)),
    "school": (_SCHOOL_SQL, (str,)),
}


def year_rows(municipality, school_year: int) -> dict[str, list[list]]:
    """Every family's rows of one municipality and school year as the engine reads them from
    the live rollups (the 不登校 rows as "futoko"): the de-identified counts closing a year
    keeps (renkei.edudata.history). Read in the municipality's schema."""
    member = release.Member(municipality.code, municipality.schema_name, 0, 0)
    # The parameters the _read_* methods of _CanonicalTables ask each family with.
    params = {
        "population": [member.code, school_year],
        "months": [member.code, school_year],
        "nurse": [member.code, school_year, list(NURSE_REASONS)],
        "m365": [member.code, school_year, list(M365_APPS)],
        "assessment": [member.code, school_year, ASSESSMENT_KIND],
        "learning": [member.code, school_year],
    }
    kept = {f: _local_rows([member], FAMILIES[f][0], lambda m, p=p: p) for f, p in params.items()}
    kept["futoko"] = _local_rows([member], _FUTOKO_SQL, lambda m: [school_year])
    # Sums arrive as Decimal; every figure here is a whole number.
    return {
        family: [[int(v) if isinstance(v, Decimal) else v for v in row] for row in rows]
        for family, rows in kept.items()
    }


class _CanonicalTables:
    """The canonical tables of one prefecture and school year.

    Every table has the area as its first dimension (prefecture > municipality > school, the
    school's code being ``area_code``) and the grade as its second; a municipality's figures
    are its cells at the municipality's code, a school's at the school's. Tables whose
    dimensions all partition pupils are protected as one (:mod:`.release`); months,
    nurse-visit reasons and apps are separate tables (see :func:`_sum`). The exact rows are
    read once per data version and kept in this process only; releases are served from
    :func:`release.released_table`.
    """

    def __init__(self, scope: release.Scope, school_year: int, floor: int = MIN_K):
        # A metric may ask for a larger k than the prefecture's: its tables are then
        # released apart ("population@k20"), never mixed with the others.
        self.scope, self.year, self.k = scope, school_year, max(scope.k, floor)
        self._suffix = "" if self.k == scope.k else f"@k{self.k}"
        self._memo: dict[Any, Any] = {}

    def _once(self, name: Any, make: Callable[[], Any]) -> Any:
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    def _read(self, family: str, make: Callable[[], Any]) -> Any:
        """Exact rows of a family of tables, once per version in this process."""
        key = (
            "rows",
            self.scope.prefecture_code,
            family,
            self.year,
            self.scope.version_for(self.year),
        )
        return self._once(("rows", family), lambda: release.remember(key, make))

    def _release(self, name: str, make: Callable[[], release.Protected]) -> release.Protected:
        return self._once(
            ("release", name),
            lambda: release.released_table(self.scope, name + self._suffix, self.year, make),
        )

    # population ---------------------------------------------------------------------------
    def population(self) -> tuple[dict[str, str], tuple[str, ...], dict[Key, int]]:
        """(school area code -> school type, grade leaves, (school, grade, absence leaf) -> n)."""
        return self._read("population", self._read_population)

    def _read_population(self):
        rows = _union(self.scope.members, "population", lambda m: [m.code, self.year])
        schools: dict[str, str] = {}
        counts: dict[Key, int] = {}
        pairs: set[tuple[str, int]] = set()
        for code, school_id, kind, grade, bin_code, n in rows:
            school = area_code(code, school_id)
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
        """School area code -> school type, for the schools of the population."""
        return self.population()[0]

    def municipalities(self) -> set[str]:
        """Codes of the municipalities with pupils this year."""
        return self._once("municipalities", lambda: {s.split(":")[0] for s in self.schools})

    def school_key(self, municipality_code: str, school_code: str) -> str:
        """The area code of a school given its 学校コード ("" when there is none)."""
        member = self.scope.member(municipality_code)
        if member is None:
            return ""
        rows = _union([member], "school", lambda m: [school_code])
        return area_code(municipality_code, rows[0][0]) if rows else ""

    def area_dim(self, schools: Iterable[str] | None = None) -> Dimension:
        leaves = tuple(sorted(self.schools if schools is None else schools))
        return Dimension(AREA, leaves, {s: s.split(":")[0] for s in leaves})

    def grade_dim(self, grades: Iterable[str] | None = None) -> Dimension:
        leaves = tuple(sorted(self.population()[1] if grades is None else grades, key=_grade_order))
        return Dimension(GRADE, leaves, {g: g.split("-")[0] for g in leaves})

    def _zeros(self, dims: Sequence[Dimension]) -> frozenset[Key]:
        """Leaves zero by definition: a grade of another school type than the school's
        (a 中学校 has no 小学校 3年). Dims are (area, grade, *rest)."""
        zeros: set[Key] = set()
        for school in dims[0].leaves:
            kind = self.schools[school]
            for grade in dims[1].leaves:
                if grade.split("-")[0] != kind:
                    for rest in itertools.product(*(d.leaves for d in dims[2:])):
                        zeros.add((school, grade, *rest))
        return frozenset(zeros)

    def _table(
        self,
        name: str,
        dims: Callable[[], Sequence[Dimension]],
        counts: Callable[[], Mapping[Key, int]],
        measures: Callable[[], Mapping[str, Mapping[Key, int]]] | None = None,
        *,
        structural: Iterable[Key] = (),
        insensitive: Iterable[Key] = (),
        k: int | None = None,
        published: Callable[[], Iterable[Key]] | None = None,
        one_pupil: Callable[[str, Key], int] | None = None,
        withheld: Callable[[], Iterable[Key]] | None = None,
    ) -> release.Protected:
        def make(previous: release.Protected | None) -> release.Protected:
            d = tuple(dims())
            with telemetry.span("renkei.release.protect", table=name):
                return release.protect(
                    name,
                    d,
                    k or self.k,
                    counts(),
                    measures() if measures else {},
                    self._zeros(d) | frozenset(structural),
                    frozenset(insensitive),
                    previous,
                    frozenset(published() if published else ()),
                    one_pupil,
                    frozenset(withheld() if withheld else ()),
                )

        return self._release(name, make)

    def population_table(self) -> release.Protected | None:
        """area x grade x absence days in the year (distinct pupils)."""
        if not self.schools:
            return None
        return self._table(
            "population",
            lambda: (
                self.area_dim(),
                self.grade_dim(),
                Dimension(ABSENCE_DAYS, _ABSENCE_LEAVES, _ABSENCE_PARENTS),
            ),
            lambda: self.population()[2],
        )

    # months ------------------------------------------------------------------------------------
    def _read_months(self):
        rows = _union(self.scope.members, "months", lambda m: [m.code, self.year])
        per_month: dict[str, tuple[dict, dict, dict, dict]] = {}
        for code, school_id, kind, grade, month, bin_code, n, req, att, days in rows:
            school = area_code(code, school_id)
            if school not in self.schools:
                continue  # not in the yearly rollup: not part of the population
            counts, req_days, att_days, most_days = per_month.setdefault(
                month_code(self.year, month), ({}, {}, {}, {})
            )
            key = (school, grade_code(kind, grade), bin_code)
            counts[key] = counts.get(key, 0) + n
            req_days[key] = req_days.get(key, 0) + int(req or 0)
            att_days[key] = att_days.get(key, 0) + int(att or 0)
            most_days[key[:2]] = max(most_days.get(key[:2], 0), int(days or 0))
        return per_month

    def months(self) -> tuple[str, ...]:
        """Months of the school year with attendance data, in order."""
        return tuple(sorted(self._read("months", self._read_months), key=_month_order))

    def month_table(self, month: str) -> release.Protected | None:
        """area x grade x (fewer than / at least 10 absence days) in one month."""
        data = self._read("months", self._read_months).get(month)
        if data is None:
            return None
        counts, _, _, most_days = data
        # Where no pupil had 10 school days this month (the first days of April, say),
        # nobody can be absent 10: a zero by the calendar, which is public.
        short = {
            (*group, "ge10") for group, days in most_days.items() if days < MONTHLY_ABSENCE_DAYS
        }
        return self._table(
            f"month:{month}",
            lambda: (
                self.area_dim(),
                self.grade_dim(self._grades(counts)),
                Dimension(MONTHLY_ABSENCE, ("lt10", "ge10")),
            ),
            lambda: counts,
            structural=short,
        )

    def attendance_days_table(self) -> release.Protected | None:
        """area x grade x month (under the school year): absence days, with the days
        required and attended, protected as magnitudes.

        A pupil absent 10 days or more in a month contributes at least 10 absence days, so
        a group's absence days A bound its number of such pupils by A / 10: released days
        could pin a withheld count of the month table ("fewer than 10 absence days, so
        nobody was absent 10"). Hence days are a table of their own, protected with a
        threshold of 10 x DAYS_BOUND_PUPILS days: no released A, and no A recovered from
        released ones (every relation's withheld cells hold that many days together),
        bounds a withheld count below DAYS_BOUND_PUPILS pupils, so none is pinned and none
        narrowed to "0 or 1". Days add up over months, so the year is this table's total
        and is released on its own. Groups whose every pupil had fewer than 10 school days
        in the month bound nothing and are never sensitive themselves.
        """
        per_month = self._read("months", self._read_months)
        if not per_month or not self.schools:
            return None
        absences: dict[Key, int] = {}
        required: dict[Key, int] = {}
        attended: dict[Key, int] = {}
        short: set[Key] = set()
        grades: set[str] = set()
        for month, (counts, req_days, att_days, most_days) in per_month.items():
            for school, grade, _bin in counts:
                key = (school, grade, month)
                grades.add(grade)
                required[key] = required.get(key, 0) + req_days[(school, grade, _bin)]
                attended[key] = attended.get(key, 0) + att_days[(school, grade, _bin)]
                absences[key] = required[key] - attended[key]
            short.update(
                (*group, month) for group, days in most_days.items() if days < MONTHLY_ABSENCE_DAYS
            )
        months = tuple(sorted(per_month, key=_month_order))
        # The calendar: a pupil adds at most the school days of a cell's months.
        calendar = {month: max(data[3].values(), default=0) for month, data in per_month.items()}

        def one_pupil(_measure: str, key: Key) -> int:
            return sum(calendar.values()) if key[2] == TOTAL else calendar.get(key[2], 0)

        return self._table(
            "attendance_days",
            lambda: (
                self.area_dim(),
                self.grade_dim(grades | set(self.population()[1])),
                Dimension(MONTH, months),
            ),
            lambda: absences,
            lambda: {"required": required, "attended": attended},
            insensitive=short,
            k=MONTHLY_ABSENCE_DAYS * DAYS_BOUND_PUPILS,
            one_pupil=one_pupil,
        )

    def _grades(self, counts: Mapping[Key, int]) -> set[str]:
        """The population's grades, plus any grade only this table has."""
        return set(self.population()[1]) | {key[1] for key in counts}

    # nurse visits --------------------------------------------------------------------------
    def _read_nurse(self):
        rows = _union(
            self.scope.members, "nurse", lambda m: [m.code, self.year, list(NURSE_REASONS)]
        )
        data: dict[tuple[str, str], tuple[dict, dict]] = {}
        for code, school_id, kind, grade, month, reason, p, v in rows:
            school = area_code(code, school_id)
            if school not in self.schools:
                continue
            counts, visits = data.setdefault((month_code(self.year, month), reason), ({}, {}))
            key = (school, grade_code(kind, grade))
            counts[key] = counts.get(key, 0) + int(p)
            visits[key] = visits.get(key, 0) + int(v)
        return data

    def nurse_months(self) -> tuple[str, ...]:
        """Months with attendance or nurse-visit data (a month with no visits is a zero)."""
        data = self._read("nurse", self._read_nurse)
        return tuple(sorted(set(self.months()) | {m for m, _ in data}, key=_month_order))

    def nurse_table(self, month: str, reason: str) -> release.Protected:
        """area x grade: pupils who visited the nurse for ``reason`` in ``month``."""
        counts, visits = self._read("nurse", self._read_nurse).get((month, reason), ({}, {}))
        return self._table(
            f"nurse:{month}:{reason}",
            lambda: (self.area_dim(), self.grade_dim(self._grades(counts))),
            lambda: counts,
            lambda: {"visits": visits},
        )

    # Microsoft 365 ----------------------------------------------------------------------------
    def _read_m365(self):
        rows = _union(self.scope.members, "m365", lambda m: [m.code, self.year, list(M365_APPS)])
        data: dict[tuple[str, str], dict] = {}
        for code, school_id, kind, grade, month, app, n in rows:
            school = area_code(code, school_id)
            if school not in self.schools:
                continue
            counts = data.setdefault((month_code(self.year, month), app), {})
            key = (school, grade_code(kind, grade))
            counts[key] = counts.get(key, 0) + int(n)
        return data

    def m365_months(self) -> tuple[str, ...]:
        """Months with any Microsoft 365 usage data (the reports cover recent days only)."""
        data = self._read("m365", self._read_m365)
        return tuple(sorted({m for m, _ in data}, key=_month_order))

    def m365_table(self, month: str, app: str) -> release.Protected:
        """area x grade x (used / did not use ``app``) in ``month``: the pupils of the
        month (the month table's totals) split by use.

        Users are at most the month's pupils, and when every pupil of a group used the app
        the two are equal: protected apart, a withheld count of users could be pinned by
        the released pupils ("all 9 used Teams"). So the non-users are a category of the
        same table, and the totals the month table released are kept released here
        (``published``): the protection works around them.
        """
        counts = self._read("m365", self._read_m365).get((month, app), {})
        data = self._read("months", self._read_months).get(month)
        month_table = self.month_table(month)
        if data is None or month_table is None:
            return self._table(
                f"m365:{month}:{app}",
                lambda: (
                    self.area_dim(),
                    self.grade_dim(self._grades(counts)),
                    Dimension(M365_USE, ("used",)),
                ),
                lambda: {(*key, "used"): n for key, n in counts.items()},
            )
        enrolled: dict[Key, int] = {}
        for (school, grade, _bin), n in data[0].items():
            enrolled[school, grade] = enrolled.get((school, grade), 0) + n
        split = {}
        for group, n in enrolled.items():
            used = min(counts.get(group, 0), n)  # users without attendance this month: none
            split[(*group, "used")], split[(*group, "unused")] = used, n - used
        dims = month_table.dims[:2]
        return self._table(
            f"m365:{month}:{app}",
            lambda: (*dims, Dimension(M365_USE, ("used", "unused"))),
            lambda: split,
            published=lambda: {key for key in month_table.released if key[-1] == TOTAL},
        )

    # learning tools ------------------------------------------------------------------------
    def _read_learning(self) -> dict[str, dict[Key, int]]:
        rows = _union(self.scope.members, "learning", lambda m: [m.code, self.year])
        per_month: dict[str, dict[Key, int]] = {}
        for code, school_id, kind, grade, month, bin_code, n in rows:
            school = area_code(code, school_id)
            if school not in self.schools:
                continue  # as the month table: only pupils of the population
            counts = per_month.setdefault(month_code(self.year, month), {})
            key = (school, grade_code(kind, grade), bin_code)
            counts[key] = counts.get(key, 0) + int(n)
        return per_month

    def learning_months(self) -> tuple[str, ...]:
        """Months of the attendance data in which some pupil used a learning tool."""
        data = self._read("learning", self._read_learning)
        used = {
            m for m, counts in data.items() if any(k[2] != "0" and n for k, n in counts.items())
        }
        return tuple(m for m in self.months() if m in used)

    def learning_table(self, month: str) -> release.Protected | None:
        """area x grade x learning minutes per week in ``month``: the month table's pupils
        split by their average weekly minutes ("0": no use).

        The bins add up to the month's pupils, which the month table releases: as for
        Microsoft 365, the released totals are kept released here (``published``), so that
        "all 12 used a tool" cannot pin a withheld count of non-users, and the share of
        active pupils ("active", the bins but 0) is protected with the bins it sums.
        """
        counts = self._read("learning", self._read_learning).get(month)
        month_table = self.month_table(month)
        if counts is None or month_table is None:
            return None
        dims = month_table.dims[:2]
        return self._table(
            f"learning:{month}",
            lambda: (*dims, Dimension(LEARNING_MINUTES, LEARNING_BINS, _LEARNING_PARENTS)),
            lambda: counts,
            published=lambda: {key for key in month_table.released if key[-1] == TOTAL},
        )

    # 不登校: one municipality's own table -------------------------------------------------
    def futoko_table(self, code: str) -> release.Protected | None:
        """area (the municipality's schools, their total being the municipality) x grade x
        (under 30 absence days / long-term absent as 不登校 / long-term absent otherwise).

        Made from that municipality's rows alone - absence reasons never meet another
        municipality's data (DESIGN rule 6) - and released to it only (MUNICIPALITY_ONLY).
        It refines the population table: its "0-29", "30+" and total cells are that table's,
        released or withheld here exactly as the population release has them (``published``
        and ``withheld``), and where "30+" is withheld so are its parts. So 不登校 is released
        only beside a released long-term count, the long-term absentees minus 不登校 are
        protected together with the counts they could be differenced against, and nothing the
        population table withholds is recovered or bounded here (a 不登校 count next to a
        withheld long-term one would bound it, and through the prefecture's relations, which
        this table does not hold, could pin another municipality's).
        """
        member = self.scope.member(code)
        pop = self.population_table()
        schools = tuple(s for s in self.schools if s.split(":")[0] == code)
        if member is None or member.url is not None or pop is None or not schools:
            return None  # a remote municipality answers for itself; its reasons stay there
        counts = self._read(f"futoko:{code}", lambda: self._read_futoko(member))

        def shared(released: bool) -> set[Key]:
            """The shared cells the population release released (or withheld); under a
            withheld "30+" both parts too, so that a released 不登校 count never bounds a
            long-term count the population table withholds."""
            keys = set()
            for area in (*schools, TOTAL):
                for g in self.grade_dim().codes:
                    for c in _FUTOKO_SHARED:
                        if ((code if area == TOTAL else area, g, c) in pop.released) == released:
                            keys.add((area, g, c))
                            if c == "30+" and not released:
                                keys.update((area, g, part) for part in _FUTOKO_PARENTS)
            return keys

        return self._table(
            f"futoko:{code}",
            lambda: (
                Dimension(AREA, schools),
                self.grade_dim(),
                Dimension(FUTOKO_SPLIT, _FUTOKO_LEAVES, _FUTOKO_PARENTS),
            ),
            lambda: counts,
            published=lambda: shared(True),
            withheld=lambda: shared(False),
        )

    def _read_futoko(self, member: release.Member) -> dict[Key, int]:
        counts: dict[Key, int] = {}
        if self.year in member.closed:  # kept at closing, as every family (.frozen)
            rows = frozen.rows([member], "futoko", self.year)
        else:
            rows = _local_rows([member], _FUTOKO_SQL, lambda m: [self.year])
        for school_id, kind, grade, split, n in rows:
            key = (area_code(member.code, school_id), grade_code(kind, grade), split)
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    # assessments -----------------------------------------------------------------------
    def assessment_tables(self) -> dict[str, release.Protected]:
        """Per subject: area x grade x score bin of the achievement survey (学力調査).

        Only 学力調査 (one sitting per subject and year): the rollup counts distinct pupils
        per bin, so with several tests per subject a pupil would be in several bins.
        """
        per_subject = self._read("assessment", self._read_assessment)
        tables = {}
        for subject, counts in sorted(per_subject.items()):
            # The schools and grades that sat this subject; the others did not take it.
            tables[subject] = self._table(
                f"assessment:{subject}",
                lambda counts=counts: (
                    self.area_dim({key[0] for key in counts}),
                    self.grade_dim({key[1] for key in counts}),
                    Dimension(SCORE_BIN, _SCORE_LEAVES, _SCORE_PARENTS),
                ),
                lambda counts=counts: counts,
            )
        return tables

    def _read_assessment(self) -> dict[str, dict[Key, int]]:
        rows = _union(
            self.scope.members, "assessment", lambda m: [m.code, self.year, ASSESSMENT_KIND]
        )
        per_subject: dict[str, dict[Key, int]] = {}
        for code, school_id, kind, grade, subject, score_bin, n in rows:
            school = area_code(code, school_id)
            if school not in self.schools:
                continue
            key = (school, grade_code(kind, grade), _SCORE_LEAVES[min(max(score_bin, 0), 9)])
            counts = per_subject.setdefault(subject, {})
            counts[key] = counts.get(key, 0) + int(n)
        return per_subject


# -- metric builders ---------------------------------------------------------------------------


def _pct(
    numerator: disclosure.Cell, denominator: disclosure.Cell, scale: float = 100.0
) -> disclosure.RateCell:
    """A rate from released counts only (disclosure.rate), scaled to percent or per 100."""
    result = disclosure.rate(numerator, denominator)
    if result.value is None:
        return result
    return disclosure.RateCell(result.key, result.value * scale, False, None)


def _cell(
    key: dict[str, str],
    pupils: disclosure.Cell,
    numerator: disclosure.Cell,
    denominator: disclosure.Cell,
) -> MetricCell:
    """A MetricCell; a withheld cell shows the first reason of: pupils, numerator, rate.

    The numerator and denominator are shown wherever their own table released them (a
    withheld rate does not hide a released figure: anyone could add it up from others).
    """
    rate = _pct(numerator, denominator)
    withheld = rate.value is None or pupils.suppressed
    reason = next((c.reason for c in (pupils, numerator) if c.suppressed), rate.reason)
    reason = PUBLIC_REASON.get(reason, reason)
    return MetricCell(
        key=key,
        pupils=pupils.value,
        value=None if withheld else rate.value,
        suppressed=withheld,
        reason=REASON_LABELS.get(reason) if withheld and reason else None,
        reason_code=reason if withheld else None,
        numerator=None if numerator.suppressed else numerator.value,
        denominator=None if denominator.suppressed else denominator.value,
    )


def _grade_codes(canonical: _CanonicalTables, wanted: bool) -> list[str]:
    """Every grade code (leaves, school types, total) with a breakdown, else the total."""
    return list(canonical.grade_dim().codes) if wanted else [TOTAL]


def _times(canonical: _CanonicalTables, months: Sequence[str], by_month: bool) -> list[str]:
    """Month codes then the year code with a month breakdown, else the year code alone."""
    year = str(canonical.year)
    return [*months, year] if by_month else [year]


def _monthly(
    canonical: _CanonicalTables,
    months: Sequence[str],
    m: str,
    key: Key,
    get: Callable[..., disclosure.Cell],
    *args: Any,
) -> disclosure.Cell:
    """``get(month, *args)`` for a month; for the year the sum of the months' released
    cells (withheld if any month's is)."""
    if m == str(canonical.year):
        return _sum(key, [get(month, *args) for month in months])
    return get(m, *args)


def _month_cell(canonical: _CanonicalTables, month: str, key: Key) -> disclosure.Cell:
    table = canonical.month_table(month)
    if table is None:
        return disclosure.Cell(key, None, True, NO_DATA)
    return table.count(key)


def _build_attendance_rate(
    canonical: _CanonicalTables, by: set[str], school: str
) -> list[MetricCell]:
    months = canonical.months()
    pop = canonical.population_table()
    days = canonical.attendance_days_table()
    if not months or pop is None or days is None:
        return []
    year = str(canonical.year)
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            key = (school, g, TOTAL)
            # Yearly pupils are distinct pupils: the population table's figure.
            pupils = pop.count(key) if m == year else _month_cell(canonical, m, key)
            at = (school, g, TOTAL if m == year else m)
            cells.append(
                _cell(
                    {MONTH: m, GRADE: g},
                    pupils,
                    days.measure("attended", at),
                    days.measure("required", at),
                )
            )
    return cells


def _shares(
    counts: Mapping[str, disclosure.Cell],
    codes: Mapping[str, str],
    out_dim: str,
    base: dict[str, str],
) -> list[MetricCell]:
    """Cells of a category whose total (same table) is the denominator, in percent."""
    total = counts[TOTAL]
    return [
        _cell({**base, out_dim: out_code}, counts[code], counts[code], total)
        for code, out_code in codes.items()
    ]


def _build_population_categories(
    codes: Mapping[str, str], out_dim: str
) -> Callable[[_CanonicalTables, set[str], str], list[MetricCell]]:
    def build(canonical: _CanonicalTables, by: set[str], school: str) -> list[MetricCell]:
        pop = canonical.population_table()
        if pop is None:
            return []
        cells = []
        for g in _grade_codes(canonical, GRADE in by):
            counts = {c: pop.count((school, g, c)) for c in codes}
            cells += _shares(counts, codes, out_dim, {GRADE: g})
        return cells

    return build


def _build_monthly_absence(
    canonical: _CanonicalTables, by: set[str], school: str
) -> list[MetricCell]:
    months = canonical.months()
    if not months:
        return []
    codes = {"ge10": "ge10", "lt10": "lt10", TOTAL: TOTAL}
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            counts = {}
            for c in codes:
                key = (school, g, c)
                counts[c] = _monthly(canonical, months, m, key, _month_cell_at, canonical, key)
            cells += _shares(counts, codes, MONTHLY_ABSENCE, {MONTH: m, GRADE: g})
    return cells


def _month_cell_at(month: str, canonical: _CanonicalTables, key: Key) -> disclosure.Cell:
    return _month_cell(canonical, month, key)


def _denominator(
    canonical: _CanonicalTables, school: str, m: str, g: str, months: Sequence[str] | None = None
) -> disclosure.Cell:
    """Pupils enrolled: the month's population for a month; for the year the yearly
    population, or with ``months`` (the months a source has data for) the sum of those
    months' released populations (pupil-months)."""
    key = (school, g, TOTAL)
    if m != str(canonical.year):
        return _month_cell(canonical, m, key)
    if months is not None:
        return _sum(key, [_month_cell(canonical, mm, key) for mm in months])
    pop = canonical.population_table()
    return pop.count(key) if pop is not None else disclosure.Cell(key, None, True, NO_DATA)


def _nurse_part(
    month: str, canonical: _CanonicalTables, reason: str, key: Key, measure: str | None
) -> disclosure.Cell:
    table = canonical.nurse_table(month, reason)
    return table.count(key) if measure is None else table.measure(measure, key)


def _build_nurse(canonical: _CanonicalTables, by: set[str], school: str) -> list[MetricCell]:
    months = canonical.nurse_months()
    if not months:
        return []
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            den = _denominator(canonical, school, m, g)
            key = (school, g)
            figures: dict[tuple[str, str | None], disclosure.Cell] = {}
            for measure in (None, "visits"):
                for reason in NURSE_REASONS:
                    figures[reason, measure] = _monthly(
                        canonical, months, m, key, _nurse_part, canonical, reason, key, measure
                    )
                # Reasons are not a partition of pupils: the total is a sum of released cells.
                figures[TOTAL, measure] = _sum(key, [figures[r, measure] for r in NURSE_REASONS])
            for reason in (*NURSE_REASONS, TOTAL):
                cells.append(
                    _cell(
                        {MONTH: m, GRADE: g, NURSE_REASON: reason},
                        figures[reason, None],
                        figures[reason, "visits"],
                        den,
                    )
                )
    return cells


def _m365_part(month: str, canonical: _CanonicalTables, app: str, key: Key) -> disclosure.Cell:
    return canonical.m365_table(month, app).count((*key, "used"))


def _build_m365(canonical: _CanonicalTables, by: set[str], school: str) -> list[MetricCell]:
    months = canonical.m365_months()
    if not months:
        return []
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            den = _denominator(canonical, school, m, g, months)
            key = (school, g)
            for app in M365_APPS:
                active = _monthly(canonical, months, m, key, _m365_part, canonical, app, key)
                cells.append(_cell({MONTH: m, GRADE: g, APP: app}, active, active, den))
    return cells


def _learning_part(month: str, canonical: _CanonicalTables, code: str, key: Key) -> disclosure.Cell:
    """A released count of the month's learning table. Non-users ("0") only where the
    month's pupils are released too: the bins add up to them, and a withheld total of the
    month table must not be the sum of released bins."""
    table = canonical.learning_table(month)
    if table is None:
        return disclosure.Cell(key, None, True, NO_DATA)
    if code == "0" and _month_cell(canonical, month, (*key, TOTAL)).suppressed:
        return disclosure.Cell(key, None, True, disclosure.COMPLEMENTARY)
    return table.count((*key, code))


def _build_learning_distribution(
    canonical: _CanonicalTables, by: set[str], school: str
) -> list[MetricCell]:
    months = canonical.learning_months()
    if not months:
        return []
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            key = (school, g)
            counts = {
                code: _monthly(canonical, months, m, key, _learning_part, canonical, code, key)
                for code in LEARNING_BINS
            }
            # The month table's pupils, as every other monthly rate's denominator.
            counts[TOTAL] = _denominator(canonical, school, m, g, months)
            codes = {code: code for code in counts}
            cells += _shares(counts, codes, LEARNING_MINUTES, {MONTH: m, GRADE: g})
    return cells


def _build_learning_active(
    canonical: _CanonicalTables, by: set[str], school: str
) -> list[MetricCell]:
    months = canonical.learning_months()
    if not months:
        return []
    cells = []
    for m in _times(canonical, months, MONTH in by):
        for g in _grade_codes(canonical, GRADE in by):
            key = (school, g)
            den = _denominator(canonical, school, m, g, months)
            active = _monthly(
                canonical, months, m, key, _learning_part, canonical, LEARNING_ACTIVE, key
            )
            cells.append(_cell({MONTH: m, GRADE: g}, active, active, den))
    return cells


def _build_futoko(canonical: _CanonicalTables, by: set[str], area: str) -> list[MetricCell]:
    """不登校 pupils over the year's pupils, at a municipality or one of its schools; never
    at the prefecture (MUNICIPALITY_ONLY: compute_prefecture refuses before this)."""
    if area == TOTAL:
        return []
    code = area.split(":")[0]
    table, pop = canonical.futoko_table(code), canonical.population_table()
    if table is None or pop is None:
        return []
    at = TOTAL if area == code else area  # the futoko table's total is the municipality
    cells = []
    for g in _grade_codes(canonical, GRADE in by):
        futoko = table.count((at, g, "30+:futoko"))
        cells.append(_cell({GRADE: g}, futoko, futoko, pop.count((area, g, TOTAL))))
    return cells


def _build_assessment(canonical: _CanonicalTables, by: set[str], school: str) -> list[MetricCell]:
    codes = {code: code for code in (*_SCORE_LEAVES, "0-39", "40-69", "70-100", TOTAL)}
    cells = []
    for subject, table in canonical.assessment_tables().items():
        if school not in table.dims[0].codes:
            continue
        for g in list(table.dims[1].codes) if GRADE in by else [TOTAL]:
            counts = {c: table.count((school, g, c)) for c in codes}
            cells += _shares(counts, codes, SCORE_BIN, {GRADE: g, SUBJECT: subject})
    return cells


# -- the registry -----------------------------------------------------------------------------

_METRICS = (
    Metric(
        name="attendance_rate",
        label_ja="出席率",
        label_en="Attendance rate",
        description_ja="出席すべき日数（授業日数から出席停止・忌引を除く）のうち出席した日数の割合。"
        "遅刻・早退は出席に数える。年度の値は月の合計から求める。",
        description_en="Days attended over days pupils were required to attend (school days "
        "minus suspension and mourning); late arrival and early leave count as "
        "attended. Yearly values are sums over months.",
        unit="%",
        dimensions=(MONTH, GRADE),
        source="edudata.AttendancePupilMonth, edudata.AttendancePupilYear",
        value_label_ja="出席率（%）",
        _build=_build_attendance_rate,
    ),
    Metric(
        name="absence_days_distribution",
        label_ja="年間欠席日数の分布",
        label_en="Distribution of absence days per pupil",
        description_ja="年度の欠席日数（病気・事故・その他。出席停止・忌引は含めない）で児童生徒を"
        "0日、1〜9日、10〜29日、30日以上に分けた人数と割合。",
        description_en="Pupils by absence days in the school year (illness, accident, other; "
        "not suspension or mourning): 0, 1-9, 10-29, 30+.",
        unit="%",
        dimensions=(GRADE,),
        categories=(ABSENCE_DAYS,),
        source="edudata.AttendancePupilYear",
        value_label_ja="割合（%）",
        _build=_build_population_categories(DISTRIBUTION_CODES, ABSENCE_DAYS),
    ),
    Metric(
        name="long_term_absence",
        label_ja="長期欠席",
        label_en="Long-term absence",
        description_ja="年度の欠席日数が30日以上の児童生徒の人数と割合。主な欠席区分（病気・事故・"
        "その他のうち日数が最も多いもの）別。分母は同じ表の「計」（児童生徒数）。",
        description_en="Pupils absent 30 days or more in the school year, count and rate, by "
        "main absence category; the denominator is the table's total.",
        unit="%",
        dimensions=(GRADE,),
        categories=(ABSENCE_CATEGORY,),
        source="edudata.AttendancePupilYear",
        value_label_ja="割合（%）",
        _build=_build_population_categories(LONG_TERM_CODES, ABSENCE_CATEGORY),
    ),
    Metric(
        name="futoko",
        label_ja="不登校",
        label_en="Futoko (school non-attendance)",
        description_ja="年度の欠席日数が30日以上で、学校が長期欠席の理由を「不登校」と分類した"
        "児童生徒の人数と割合（文部科学省「児童生徒の問題行動・不登校等生徒指導上の諸課題に関する"
        "調査」の区分。学校の最新の分類）。分母は年度の児童生徒数。市区町村の教育委員会と学校だけに"
        "公開し、都道府県には渡らない。",
        description_en="Pupils absent 30 days or more in the school year whose school classified "
        "the absence as futoko (non-attendance) for MEXT's annual survey (the latest "
        "classification), count and rate over the year's pupils. Released to the "
        "municipality's own board and schools only, never to the prefecture.",
        unit="%",
        dimensions=(GRADE,),
        source="edudata.LongAbsenceReasonYear, edudata.AttendancePupilYear",
        value_label_ja="割合（%）",
        scope=MUNICIPALITY_ONLY,
        _build=_build_futoko,
    ),
    Metric(
        name="monthly_absence_10_days",
        label_ja="月10日以上欠席した児童生徒",
        label_en="Pupils absent 10+ days in a month",
        description_ja="その月の欠席日数が10日以上の児童生徒の人数と割合。年度の値は月の延べ人数。",
        description_en="Pupils with 10 or more absence days in the month; yearly values are "
        "pupil-months.",
        unit="%",
        dimensions=(MONTH, GRADE),
        categories=(MONTHLY_ABSENCE,),
        source="edudata.AttendancePupilMonth",
        value_label_ja="割合（%）",
        _build=_build_monthly_absence,
    ),
    Metric(
        name="nurse_visits_per_100",
        label_ja="保健室来室（児童生徒100人あたり）",
        label_en="Nurse visits per 100 pupils",
        description_ja="保健室の来室回数を児童生徒100人あたりで、来室理由別に。月の値の分母はその月の"
        "児童生徒数、年度の値の分母は年度の児童生徒数。人数は来室した児童生徒の延べ人数。",
        description_en="Nurse visits per 100 pupils by reason; monthly values over the month's "
        "pupils, yearly values over the year's pupils.",
        unit="回/100人",
        dimensions=(MONTH, GRADE),
        categories=(NURSE_REASON,),
        source="edudata.NurseVisitMonth",
        value_label_ja="100人あたり来室回数",
        _build=_build_nurse,
    ),
    Metric(
        name="m365_active_rate",
        label_ja="Microsoft 365 利用率（アプリ別）",
        label_en="Microsoft 365 active-pupil rate by app",
        description_ja="その月にアプリを使った児童生徒の割合。年度の値は利用データのある月の延べ人数から"
        "求める（月平均）。",
        description_en="Share of pupils who used the app in the month; yearly values are "
        "pupil-months over the months with usage data.",
        unit="%",
        dimensions=(MONTH, GRADE),
        categories=(APP,),
        source="edudata.M365AppMonth",
        value_label_ja="利用率（%）",
        _build=_build_m365,
    ),
    Metric(
        name="learning_minutes_distribution",
        label_ja="1週あたりの学習時間の分布",
        label_en="Distribution of learning minutes per pupil per week",
        description_ja="学習ツール（学習eポータル等の xAPI の学習記録、デジタルドリル）で学習した"
        "時間の、その月の1週あたり平均（月の学習時間 ÷ 月の暦日数 × 7）で児童生徒を 利用なし・"
        "30分未満・30〜59分・60〜119分・120分以上に分けた人数と割合。時間の記録のない学習は"
        "利用ありの 0 分。分母はその月の児童生徒数。年度の値は学習データのある月の延べ人数。",
        description_en="Pupils by their average learning-tool minutes per week in the month "
        "(the month's minutes / its days x 7): not used, under 30, 30-59, 60-119, 120+; "
        "activity without a duration counts as use with 0 minutes. Over the month's pupils; "
        "yearly values are pupil-months over the months with learning data.",
        unit="%",
        dimensions=(MONTH, GRADE),
        categories=(LEARNING_MINUTES,),
        source="edudata.LearningPupilMonth",
        value_label_ja="割合（%）",
        _build=_build_learning_distribution,
    ),
    Metric(
        name="learning_active_rate",
        label_ja="学習ツールの利用率",
        label_en="Share of pupils active in learning tools",
        description_ja="その月に学習ツールの記録が1件以上ある児童生徒の割合。年度の値は学習データ"
        "のある月の延べ人数から求める（月平均）。",
        description_en="Share of pupils with any learning-tool activity in the month; yearly "
        "values are pupil-months over the months with learning data.",
        unit="%",
        dimensions=(MONTH, GRADE),
        source="edudata.LearningPupilMonth",
        value_label_ja="利用率（%）",
        _build=_build_learning_active,
    ),
    Metric(
        name="assessment_score_distribution",
        label_ja="学力調査の得点分布（教科別）",
        label_en="Assessment score distribution by subject",
        description_ja="学力調査の得点率（満点に対する割合、10%刻み。0〜39%・40〜69%・70〜100%に"
        "まとめた段階も）の分布。教科別。",
        description_en="Score distribution (percent of maximum in 10% bins, grouped 0-39, "
        "40-69, 70-100) of the achievement survey, by subject.",
        unit="%",
        dimensions=(GRADE,),
        categories=(SUBJECT, SCORE_BIN),
        source="edudata.AssessmentBin",
        value_label_ja="割合（%）",
        _build=_build_assessment,
    ),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}
#: The metrics released at every entry point: the federation's fields and catalogue, the
#: prefecture page and widget tokens offer these only.
PREFECTURE_WIDE_METRICS: dict[str, Metric] = {
    m.name: m for m in _METRICS if m.scope == PREFECTURE_WIDE
}
