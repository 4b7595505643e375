"""History that stays true: closed school years keep their released figures; the open year's
revisions are recorded and shown to the prefecture's analysts (renkei.edudata.history,
docs/disclosure.md).

The world is a small prefecture (富山県 here, which no other test uses) of two
municipalities with synthetic data of 2025年度, committed (tests/graphql/federation/fed_world.py);
each test runs in a transaction that is rolled back, so every test starts from the same data
and no closing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphql" / "federation"))
from fed_world import SCHOOL_YEAR, _code, build_world, drop_world

from renkei.accounts import policy
from renkei.edudata import history, metrics, rollups
from renkei.edudata.history import ClosingError, do_close_school_year
from renkei.edudata.metrics import METRICS, PREFECTURE_WIDE, TOTAL, compute, compute_prefecture
from renkei.edudata.models import (
    AttendanceDay,
    AttendancePupilYear,
    FrozenCounts,
    School,
    Student,
)
from renkei.edudata.privacy import do_purge_expired, do_record_opt_out
from renkei.tenants.context import in_tenant
from renkei.tenants.models import ClosedSchoolYear, Release, Revision

HISTORY_WORLD = {
    _code("16201"): ("履歴テスト市", 160, 51, 0),
    _code("16202"): ("履歴テスト町", 90, 52, 0),
}
TOWN, VILLAGE = HISTORY_WORLD
PREFECTURE = "16"
TODAY = dt.date(2026, 12, 6)  # 2025年度 ended on 2026-03-31
ACTOR_NAME = "history-test"


@pytest.fixture(scope="module")
def history_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        built = build_world(HISTORY_WORLD, days=45, with_users=False)
    yield built
    with django_db_blocker.unblock():
        drop_world(HISTORY_WORLD, users=False)


@pytest.fixture
def world(history_world, db):
    metrics.clear_cache()
    yield history_world
    metrics.clear_cache()  # releases of this test's (rolled back) versions


def _admin(code: str) -> policy.Principal:
    return policy.Principal(
        user_id=1,
        username="history-admin",
        grants=(
            policy.Grant(
                role="tenant_admin",
                municipality_code=code,
                prefecture_code=None,
                school_codes=frozenset(),
            ),
        ),
    )


def _subsets(dims):
    return [c for n in range(len(dims) + 1) for c in itertools.combinations(dims, n)]


def everything(world) -> dict:
    """Every released answer of the school year, at every level: the prefecture's (every
    federation field serves compute_prefecture), each municipality's and each school's,
    for every metric and breakdown, the municipality-only ones included."""
    answers = {}
    for spec in METRICS.values():
        for breakdown in _subsets(spec.dimensions):
            if spec.scope == PREFECTURE_WIDE:
                tables = compute_prefecture(
                    spec.name, PREFECTURE, school_year=SCHOOL_YEAR, breakdown=breakdown
                )
                for code, table in tables.items():
                    answers[("pref", code, spec.name, breakdown)] = _cells(table)
            for code in HISTORY_WORLD:
                municipality = world.municipality(code)
                table = compute(
                    spec.name, municipality, school_year=SCHOOL_YEAR, breakdown=breakdown
                )
                answers[("muni", code, spec.name, breakdown)] = _cells(table)
                with in_tenant(municipality):
                    schools = list(School.objects.order_by("code").values_list("code", flat=True))
                for school in schools:
                    try:
                        table = compute(
                            spec.name,
                            municipality,
                            school_year=SCHOOL_YEAR,
                            breakdown=breakdown,
                            school_code=school,
                        )
                    except ValueError:  # a school without pupils that year
                        continue
                    answers[("school", school, spec.name, breakdown)] = _cells(table)
    return answers


def _cells(table) -> list:
    return [c.to_json() for c in table.cells]


def _change_everything(world) -> dict[str, int]:
    """A purge of pupils whose rows fed the figures, a late opt-out, a correction of the
    register and a re-import of the year: what a closed year must withstand. Returns how
    much the live rollups of the town changed."""
    town = world.municipality(TOWN)
    with in_tenant(town):
        before = AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR).count()
        # a third of the pupils, those with the most absences first, left long ago
        ids = list(
            AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR)
            .order_by("-absence_days", "student_id")
            .values_list("student_id", flat=True)[: before // 3]
        )
        Student.objects.filter(pk__in=ids).update(
            left_on=dt.date(2015, 3, 20), leaving_reason="graduated"
        )
        purged = do_purge_expired(town, TODAY, actor=_admin(TOWN).actor(town)).students
        # a late opt-out
        pupil = Student.objects.order_by("pk").first()
        do_record_opt_out(_admin(TOWN), town, pupil)
        # a correction of the register: another pupil absent every day, then refreshed
        other = Student.objects.analyzable().order_by("-pk").first()
        AttendanceDay.objects.filter(student=other).update(status="absent_other")
        rollups.refresh([SCHOOL_YEAR], kind="correction")
        after = AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR).count()
    village = world.municipality(VILLAGE)
    with in_tenant(village):
        # the village's year imported again: its rollups are rebuilt from the register
        AttendanceDay.objects.filter(student__in=Student.objects.order_by("pk")[:20]).update(
            status="absent_illness"
        )
        rollups.refresh([SCHOOL_YEAR], kind="import")
    return {"purged": purged, "rollup_rows_lost": before - after}


def _close_all(world) -> None:
    for code in HISTORY_WORLD:
        do_close_school_year(_admin(code), world.municipality(code), SCHOOL_YEAR, today=TODAY)


# -- closed years -----------------------------------------------------------------------------


def test_a_closed_years_figures_do_not_change_when_its_pupils_are_purged(world):
    # given the year closed by both boards and every released answer of it
    _close_all(world)
    released = everything(world)
    stored = set(Release.objects.filter(prefecture_id=PREFECTURE).values_list("pk", "version"))
    assert stored and Release.objects.filter(prefecture_id=PREFECTURE, closed=False).count() == 0
    # when pupils whose rows fed them are purged, one opts out late, the register is
    # corrected and the village's year is imported again
    changed = _change_everything(world)
    assert changed["purged"] >= 40 and changed["rollup_rows_lost"] >= 40  # the live data moved
    # then a cold process (nothing in memory) answers every question exactly as before,
    metrics.clear_cache()
    assert everything(world) == released
    # from the releases stored at closing (the year's version did not change), which are kept
    now = set(Release.objects.filter(prefecture_id=PREFECTURE).values_list("pk", "version"))
    assert now == stored
    # and even tables made anew are made from the counts kept at closing, not the live rollups
    Release.objects.filter(prefecture_id=PREFECTURE).delete()
    metrics.clear_cache()
    assert everything(world) == released
    # and no revision is recorded for a closed year
    assert not Revision.objects.filter(municipality__prefecture_id=PREFECTURE).exists()


def test_closing_itself_moves_no_released_figure(world):
    # given every answer released while the year is open
    released = everything(world)
    # when both boards close it (the year's releases are then made from the kept counts)
    _close_all(world)
    metrics.clear_cache()
    # then every answer is the same: comparing the releases before and after closing
    # tells nothing, and the releases are now the year's final, kept ones
    assert everything(world) == released
    assert set(
        Release.objects.filter(prefecture_id=PREFECTURE, school_year=SCHOOL_YEAR).values_list(
            "closed", flat=True
        )
    ) == {True}


def test_the_same_changes_revise_an_open_years_figures_and_are_recorded(world):
    from django.utils import timezone

    # given every released answer of the open year
    released = everything(world)
    # when the same changes happen without closing
    _change_everything(world)
    metrics.clear_cache()
    # then figures change (the control of the test above),
    assert everything(world) != released
    # and each municipality's revisions say what changed, and when (nothing personal)
    revisions = {
        (r.municipality.code, r.school_year, r.kind, r.revised_on)
        for r in Revision.objects.filter(municipality__prefecture_id=PREFECTURE)
    }
    today = timezone.localdate()  # the day of the change (Asia/Tokyo)
    assert revisions == {
        (TOWN, SCHOOL_YEAR, "purge", today),
        (TOWN, SCHOOL_YEAR, "opt_out", today),
        (TOWN, SCHOOL_YEAR, "correction", today),
        (VILLAGE, SCHOOL_YEAR, "import", today),
    }


def test_closing_one_municipality_keeps_its_own_figures_while_others_change(world):
    # given only the town closed its year
    do_close_school_year(_admin(TOWN), world.municipality(TOWN), SCHOOL_YEAR, today=TODAY)
    scope = metrics.release.scope_for(PREFECTURE)
    version = scope.version_for(SCHOOL_YEAR)
    assert not scope.closed(SCHOOL_YEAR)  # the village's year is open: releases not final
    # when the town's pupils are purged, its year's version (what releases are keyed by)
    # stays; the village's import makes a new one
    town = world.municipality(TOWN)
    with in_tenant(town):
        ids = list(Student.objects.order_by("pk").values_list("pk", flat=True)[:30])
        Student.objects.filter(pk__in=ids).update(
            left_on=dt.date(2015, 3, 20), leaving_reason="graduated"
        )
        do_purge_expired(town, TODAY, actor=_admin(TOWN).actor(town))
    assert metrics.release.scope_for(PREFECTURE).version_for(SCHOOL_YEAR) == version
    assert not Revision.objects.filter(municipality__code=TOWN).exists()
    # and the rows the town's tables are made of are the kept ones
    with in_tenant(town):
        kept = FrozenCounts.objects.get(school_year=SCHOOL_YEAR, family="population").rows
        live = AttendancePupilYear.objects.filter(school_year=SCHOOL_YEAR).count()
    assert sum(row[-1] for row in kept) == live + 30 - _opted_out(town)


def _opted_out(municipality) -> int:
    with in_tenant(municipality):
        return Student.objects.filter(opted_out_at__isnull=False).count()


def test_a_trusted_aggregator_is_sent_the_kept_counts_of_a_closed_year(world):
    town = world.municipality(TOWN)
    before = metrics.exact_rows(town, "population", [TOWN, SCHOOL_YEAR])
    do_close_school_year(_admin(TOWN), town, SCHOOL_YEAR, today=TODAY)
    with in_tenant(town):
        ids = list(Student.objects.order_by("pk").values_list("pk", flat=True)[:30])
        Student.objects.filter(pk__in=ids).update(
            left_on=dt.date(2015, 3, 20), leaving_reason="graduated"
        )
        do_purge_expired(town, TODAY, actor=_admin(TOWN).actor(town))
    town.refresh_from_db()
    assert sorted(map(list, metrics.exact_rows(town, "population", [TOWN, SCHOOL_YEAR]))) == sorted(
        map(list, before)
    )


# -- closing: who, when, bad input --------------------------------------------------------------


def test_closing_is_refused_with_a_clear_message_and_nothing_kept(world):
    town = world.municipality(TOWN)
    # a year not over yet
    with pytest.raises(ClosingError, match="2026年度はまだ終わっていません"):
        do_close_school_year(_admin(TOWN), town, 2026, today=TODAY)
    # a year without data
    with pytest.raises(ClosingError, match="2019年度の集計データがありません"):
        do_close_school_year(_admin(TOWN), town, 2019, today=TODAY)
    # someone who is not the municipality's admin (another municipality's)
    with pytest.raises(policy.AccessDenied):
        do_close_school_year(_admin(VILLAGE), town, SCHOOL_YEAR, today=TODAY)
    assert not ClosedSchoolYear.objects.filter(municipality=town).exists()
    with in_tenant(town):
        assert not FrozenCounts.objects.exists()
    # twice
    do_close_school_year(_admin(TOWN), town, SCHOOL_YEAR, today=TODAY)
    with pytest.raises(ClosingError, match="2025年度は既に締めています"):
        do_close_school_year(_admin(TOWN), town, SCHOOL_YEAR, today=TODAY)


def test_the_nightly_job_closes_years_past_their_deadline_only(world):
    from renkei.edudata import tasks

    assert history.closing_deadline(2025) == dt.date(2026, 10, 1)
    # before the deadline nothing is closed; on it, the year is
    assert tasks.close_school_years(TOWN, today="2026-09-30")["closed"] == []
    assert tasks.close_school_years(TOWN, today="2026-10-01")["closed"] == [SCHOOL_YEAR]
    closing = ClosedSchoolYear.objects.get(municipality__code=TOWN, school_year=SCHOOL_YEAR)
    assert closing.automatic
    assert tasks.close_school_years(TOWN, today="2026-10-02")["closed"] == []
    from renkei.platform.models import AuditEvent

    event = AuditEvent.objects.filter(action="schoolyear.close").latest("pk")
    assert event.municipality_code == TOWN and event.via == "schedule"


def test_kept_counts_hold_counts_never_a_pupil(world):
    town = world.municipality(TOWN)
    do_close_school_year(_admin(TOWN), town, SCHOOL_YEAR, today=TODAY)
    with in_tenant(town):
        pupils = set(Student.objects.values_list("pk", flat=True))
        pseudonyms = set(Student.objects.values_list("pseudonym", flat=True))
        kept = {f.family: f.rows for f in FrozenCounts.objects.filter(school_year=SCHOOL_YEAR)}
    assert set(kept) == {
        "population", "months", "nurse", "m365", "assessment", "learning", "futoko"
    }  # fmt: skip
    assert not any(p in repr(kept) for p in pseudonyms)
    # each row is (municipality, school, school type, grade, categories..., counts): the
    # second column is a school, never a pupil
    with in_tenant(town):
        schools = set(School.objects.values_list("pk", flat=True))
    for family, rows in kept.items():
        if family != "futoko":  # (school, type, grade, split, n)
            assert rows and {row[0] for row in rows} == {TOWN}, family
            assert {row[1] for row in rows} <= schools, family
    assert {row[0] for row in kept["futoko"]} <= schools
    assert len(kept["population"]) < len(pupils)


# -- revisions, as the prefecture sees them ------------------------------------------------------


REVISIONS = """query ($code: String!) { prefecture(code: $code) {
  revisions { municipalityCode municipalityName schoolYear kind kindLabel revisedOn } } }"""


def _analyst(prefecture: str) -> policy.Principal:
    return policy.Principal(
        user_id=2,
        username=f"history-pref{prefecture}",
        grants=(
            policy.Grant(
                role="prefecture_analyst",
                municipality_code=None,
                prefecture_code=prefecture,
                school_codes=frozenset(),
            ),
        ),
    )


def _run(query, principal, variables):
    from renkei.graphql.federation.schema import FederationContext, schema

    return schema.execute_sync(
        query, variable_values=variables, context_value=FederationContext(principal=principal)
    )


def test_a_prefecture_analyst_sees_the_revisions_of_their_prefecture_only(world):
    from django.utils import timezone

    # given released tables of the open year and a late opt-out in the town
    everything_before = compute_prefecture("long_term_absence", PREFECTURE, school_year=SCHOOL_YEAR)
    assert everything_before[TOTAL].cells
    town = world.municipality(TOWN)
    with in_tenant(town):
        do_record_opt_out(_admin(TOWN), town, Student.objects.order_by("pk").first())
    # and a revision of another prefecture's municipality (Tokyo's 渋谷区)
    Revision.objects.create(
        municipality=_shibuya(),
        school_year=SCHOOL_YEAR,
        kind="import",
        revised_on=timezone.localdate(),
    )
    # when 富山県's analyst asks
    result = _run(REVISIONS, _analyst(PREFECTURE), {"code": PREFECTURE})
    # then they see their prefecture's revision, and nothing of Tokyo's
    assert result.errors is None, result.errors
    assert result.data["prefecture"]["revisions"] == [
        {
            "municipalityCode": TOWN,
            "municipalityName": "履歴テスト市",
            "schoolYear": SCHOOL_YEAR,
            "kind": "opt_out",
            "kindLabel": "分析除外の申出",
            "revisedOn": timezone.localdate().isoformat(),
        }
    ]
    # and another prefecture's analyst cannot read 富山県's
    refused = _run(REVISIONS, _analyst("13"), {"code": PREFECTURE})
    assert refused.errors and refused.data["prefecture"] is None
    assert all(
        r["municipalityCode"].startswith("13")
        for r in _run(REVISIONS, _analyst("13"), {"code": "13"}).data["prefecture"]["revisions"]
    )


def _shibuya():
    from renkei.tenants.models import Municipality

    return Municipality.objects.get(code="131130")


def test_closed_years_are_listed_for_the_municipality(world):
    query = """query ($code: String!) { municipality(code: $code) { closedSchoolYears } }"""
    assert _run(query, _analyst(PREFECTURE), {"code": TOWN}).data == {
        "municipality": {"closedSchoolYears": []}
    }
    do_close_school_year(_admin(TOWN), world.municipality(TOWN), SCHOOL_YEAR, today=TODAY)
    assert _run(query, _analyst(PREFECTURE), {"code": TOWN}).data == {
        "municipality": {"closedSchoolYears": [SCHOOL_YEAR]}
    }
