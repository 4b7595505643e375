"""Closed school years: released figures that stay true.

A school year runs from 1 April to 31 March. A municipality's year is *closed* once its
board closes it in 管理 (:func:`do_close_school_year`, any day after the year ended), and at
the latest on :func:`closing_deadline` (1 October after it ended, six months on), when the
nightly job closes every year past its deadline that has data
(:func:`do_close_due_school_years`). One rule, written down in docs/disclosure.md.

Closing keeps, in the municipality's schema, the de-identified counts every table of the
year is made of (``FrozenCounts``: the rows the release engine reads from the rollups -
counts per school, grade and category, never a pupil) and records the closing in the public
schema (``tenants.ClosedSchoolYear``). From then on the release engine reads the year's rows
from the kept counts (renkei.edudata.metrics.frozen) and keys the year's releases by "closed"
instead of the municipality's data version: a purge, a late opt-out, a re-import or a
correction changes none of the year's released figures, and no revision is recorded for it.
There is no reopening: a closed year is evidence.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.edudata import metrics, rollups
from renkei.edudata.metrics import release
from renkei.edudata.models import FrozenCounts, school_year_bounds
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant, tenant_write_lock
from renkei.tenants.models import ClosedSchoolYear, Revision

log = logging.getLogger(__name__)

#: Months after a school year's end (31 March) at which it is closed without the board.
CLOSE_AFTER_MONTHS = 6


class ClosingError(ValueError):
    """A school year that cannot be closed (Japanese message saying why)."""


def closing_deadline(school_year: int) -> dt.date:
    """The day a school year is closed at the latest: 1 October after its end."""
    return dt.date(school_year + 1, 4 + CLOSE_AFTER_MONTHS, 1)  # the year ends on 31 March


def closed_years(municipality) -> dict[int, ClosedSchoolYear]:
    """The municipality's closed school years, by year."""
    return {c.school_year: c for c in ClosedSchoolYear.objects.filter(municipality=municipality)}


def years_to_close(municipality, today: dt.date | None = None) -> list[int]:
    """School years with data that have ended and are not closed yet (the 管理 page offers
    these). Read in the municipality's schema."""
    today = today or timezone.localdate()
    with in_tenant(municipality):
        years = rollups.years_with_data()
    done = closed_years(municipality)
    return [y for y in years if y not in done and school_year_bounds(y)[1] < today]


@transaction.atomic
def do_close_school_year(
    principal: policy.Principal, municipality, school_year: int, today: dt.date | None = None
) -> ClosedSchoolYear:
    """The board closes a school year that has ended: its released figures are final."""
    policy.require(
        policy.may_administer_tenant(principal, municipality),
        _("年度を締める権限がありません（自治体管理者のみ）。"),
    )
    return do_freeze_school_year(
        principal.actor(municipality), municipality, school_year, today, automatic=False
    )


def do_close_due_school_years(
    municipality, today: dt.date | None = None, *, actor: Actor
) -> list[int]:
    """The nightly job: close every school year with data past its deadline that the board
    has not closed. Returns the years closed."""
    today = today or timezone.localdate()
    due = [y for y in years_to_close(municipality, today) if closing_deadline(y) <= today]
    for year in due:
        with transaction.atomic():
            do_freeze_school_year(actor, municipality, year, today, automatic=True)
    return due


def do_freeze_school_year(
    actor: Actor, municipality, school_year: int, today: dt.date | None, *, automatic: bool
) -> ClosedSchoolYear:
    """Close a school year for whoever decided it (the board, or the deadline): keep its
    counts and record the closing, in the caller's transaction. ClosingError (Japanese) for
    a year not ended, already closed or without data."""
    today = today or timezone.localdate()
    try:
        school_year = int(school_year)
        end = school_year_bounds(school_year)[1]
    except (TypeError, ValueError):
        raise ClosingError(_("年度は西暦の数字で指定してください（例: 2025）。")) from None
    if end >= today:
        raise ClosingError(
            _(
                "%(year)s年度はまだ終わっていません（%(end)s まで）。年度が終わってから締めてください。"
            )
            % {"year": school_year, "end": end.isoformat()}
        )
    done = ClosedSchoolYear.objects.filter(municipality=municipality, school_year=school_year)
    if done.exists():
        raise ClosingError(
            _("%(year)s年度は既に締めています（%(day)s）。締めた年度は開けません。")
            % {"year": school_year, "day": timezone.localdate(done.get().closed_at).isoformat()}
        )
    with in_tenant(municipality):
        tenant_write_lock()  # not while an import of this tenant runs
        if school_year not in rollups.years_with_data():
            raise ClosingError(
                _("%(year)s年度の集計データがありません。データのある年度だけ締められます。")
                % {"year": school_year}
            )
        kept = metrics.year_rows(municipality, school_year)
        for family, rows in kept.items():
            FrozenCounts.objects.update_or_create(
                school_year=school_year, family=family, defaults={"rows": rows}
            )
    closing = ClosedSchoolYear.objects.create(
        municipality=municipality, school_year=school_year, automatic=automatic
    )
    audit.record(
        actor,
        "schoolyear.close",
        municipality_code=municipality.code,
        target=f"{school_year}年度",
        changes={"automatic": automatic, "rows_kept": {f: len(r) for f, r in kept.items()}},
    )
    release.warm_after_commit(municipality.prefecture_id)
    log.info(
        "school year %s closed in %s (%s)", school_year, municipality.code,
        "automatic" if automatic else "by the board",
    )  # fmt: skip
    return closing


def revisions(prefecture_code: str, school_year: int | None = None, *, limit: int = 500):
    """The revisions of the prefecture's municipalities (local ones: a remote deployment
    keeps its own), newest first: what the prefecture's analysts see as 改訂履歴."""
    rows = Revision.objects.filter(municipality__prefecture_id=prefecture_code)
    if school_year is not None:
        rows = rows.filter(school_year=school_year)
    return list(
        rows.select_related("municipality").order_by(
            "-revised_on", "municipality__code", "-school_year", "kind"
        )[:limit]
    )


def closed_school_years(municipality_code: str) -> list[int]:
    """The school years a municipality held here has closed, in order."""
    return list(
        ClosedSchoolYear.objects.filter(municipality__code=municipality_code)
        .order_by("school_year")
        .values_list("school_year", flat=True)
    )
