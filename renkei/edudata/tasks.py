"""Celery tasks on one tenant's education data: rollup refresh (what the federation reads),
retention purge, and their fan-outs over every tenant.

Every tenant task takes the tenant code as its first argument and runs inside that tenant
(:func:`in_task_tenant`); nothing runs in public by accident. Arguments and results are JSON:
codes, years, counts, never personal data (the worker logs results).

    from renkei.edudata import tasks
    tasks.refresh_rollups.delay("131130")            # every school year with data
    tasks.purge_expired.delay("131130", dry_run=True)

With no broker (the embedded default) ``delay`` runs the task at once, in-process.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import shared_task
from django.db import transaction
from django.db.models import Max, Min

from renkei.edudata import rollups
from renkei.edudata.history import do_close_due_school_years
from renkei.edudata.models import AttendanceDay, Homeroom, school_year_of
from renkei.edudata.privacy import do_purge_expired
from renkei.platform import telemetry
from renkei.platform.audit import Actor
from renkei.tenants.codes import CodeError
from renkei.tenants.context import UnknownTenant, in_tenant, tenant_write_lock
from renkei.tenants.models import Municipality

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """What a task raises instead of an unexpected error: its type and where it happened,
    never its message. The worker logs a failed task's exception and the result backend
    keeps it, and a database error quotes row values (``Key (source_id)=(…)``)."""


# Exceptions whose messages are ours and name only codes, paths or settings: kept as they are.
PLAIN_ERRORS: tuple[type[BaseException], ...] = (UnknownTenant, CodeError, TypeError)


@contextmanager
def in_task_tenant(code: str) -> Iterator[Municipality]:
    """Enter the tenant a task was given (validated code, known municipality) and tag the
    task's span with it; the previous schema is restored on exit. An unexpected error leaves
    as :class:`TaskFailed` with its type and place only: its message is dropped, not logged."""
    if not isinstance(code, str):
        raise TypeError(f"tasks take the tenant code as a string, not {type(code).__name__}")
    try:
        with in_tenant(code) as municipality:
            telemetry.mark_tenant(municipality.code)
            yield municipality
    except PLAIN_ERRORS:
        raise
    except Exception as e:
        raise TaskFailed(describe_error(e, code)) from None


def describe_error(error: BaseException, code: str) -> str:
    """``<type> at <file>:<line> (tenant <code>)``: enough to find it, nothing from the data."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__module__}.{type(error).__qualname__}{where} (tenant {code})"


def tenant_codes() -> list[str]:
    """Every onboarded municipality, for the fan-out jobs (run in public)."""
    return list(Municipality.objects.order_by("code").values_list("code", flat=True))


def fan_out(task, codes: Iterable[str], **kwargs) -> list[str]:
    """One ``task`` per tenant (its own message, retried and failing on its own)."""
    codes = list(codes)
    for code in codes:
        task.delay(code, **kwargs)
    log.info("%s queued for %d tenant(s)", task.name, len(codes))
    return codes


def school_years_with_data() -> list[int]:
    """School years the current tenant has rollups, homerooms or attendance for."""
    years = set(rollups.years_with_data())
    years |= set(Homeroom.objects.values_list("school_year", flat=True).distinct())
    dates = AttendanceDay.objects.aggregate(first=Min("date"), last=Max("date"))
    if dates["first"] is not None:
        years |= set(range(school_year_of(dates["first"]), school_year_of(dates["last"]) + 1))
    return sorted(years)


def _refresh(school_years: Iterable[int] | None) -> list[int]:
    with transaction.atomic():
        tenant_write_lock()  # not while an import of this tenant runs
        years = sorted(set(school_years)) if school_years is not None else school_years_with_data()
        rollups.refresh(years)
    return years


@shared_task(name="renkei.refresh_rollups")
def refresh_rollups(tenant_code: str, school_years: list[int] | None = None) -> dict:
    """Recompute the rollups of ``school_years`` (default: every year with data) in one
    transaction: readers see the old rollups until the new ones are complete."""
    with in_task_tenant(tenant_code):
        years = _refresh(school_years)
    return {"tenant": tenant_code, "school_years": years}


@shared_task(name="renkei.purge_expired")
def purge_expired(tenant_code: str, dry_run: bool = False, today: str | None = None) -> dict:
    """Retention purge in one tenant: delete pupils who left (卒業・転出・退学) longer ago than
    the tenant's retention period (``today``: ISO date, default today in Asia/Tokyo). The
    result, like the log, holds counts only."""
    day = dt.date.fromisoformat(today) if today else None
    with in_task_tenant(tenant_code) as municipality:
        report = do_purge_expired(
            municipality, day, actor=Actor.schedule("nightly purge"), dry_run=dry_run
        )
    return {
        "tenant": tenant_code,
        "cutoff": report.cutoff.isoformat(),
        "dry_run": dry_run,
        "deleted": report.deleted,
        "pupils_by_reason": report.pupils_by_reason,
    }


@shared_task(name="renkei.close_school_years")
def close_school_years(tenant_code: str, today: str | None = None) -> dict:
    """Close the tenant's school years past their deadline (renkei.edudata.history): their
    released figures are final from then on. Runs before the purge."""
    day = dt.date.fromisoformat(today) if today else None
    with in_task_tenant(tenant_code) as municipality:
        closed = do_close_due_school_years(
            municipality, day, actor=Actor.schedule("nightly school-year closing")
        )
    return {"tenant": tenant_code, "closed": closed}


@shared_task(name="renkei.schedule_school_year_closing")
def schedule_school_year_closing() -> list[str]:
    """Nightly (beat), before the purge: one ``renkei.close_school_years`` per tenant."""
    return fan_out(close_school_years, tenant_codes())


@shared_task(name="renkei.schedule_retention_purges")
def schedule_retention_purges(dry_run: bool = False) -> list[str]:
    """Nightly (beat): one ``renkei.purge_expired`` per tenant."""
    return fan_out(purge_expired, tenant_codes(), dry_run=dry_run)


@shared_task(name="renkei.schedule_rollup_refresh")
def schedule_rollup_refresh() -> list[str]:
    """One ``renkei.refresh_rollups`` per tenant (not scheduled by default: imports and
    opt-outs refresh the rollups they touch; use it after changing a rollup definition)."""
    return fan_out(refresh_rollups, tenant_codes())


__all__ = [
    "TaskFailed",
    "close_school_years",
    "fan_out",
    "in_task_tenant",
    "purge_expired",
    "refresh_rollups",
    "schedule_retention_purges",
    "schedule_rollup_refresh",
    "schedule_school_year_closing",
    "tenant_codes",
]
