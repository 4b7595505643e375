"""Privacy actions inside one tenant: opt-out and its withdrawal, and the retention purge.

Each is one transaction and the only way that change happens. Logs carry counts and
pseudonymous ids at most, never names.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from renkei.accounts import policy
from renkei.edudata import access, rollups
from renkei.edudata.models import LeavingReason, OptOut, RightsRequest, Student
from renkei.edudata.rights import RightsError, answered_request
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.platform.keys import pseudonym
from renkei.tenants.context import tenant_write_lock, waiting_briefly

log = logging.getLogger(__name__)


def pseudonym_for(municipality, source_system: str, source_id: str) -> str:
    """The pseudonymous id of a pupil of ``municipality`` known by a source system's id."""
    return pseudonym(municipality.pseudonym_key, source_system, source_id)


class OptOutError(ValueError):
    pass


def _require_may_record(principal: policy.Principal, municipality, student: Student) -> None:
    allowed = policy.may_administer_tenant(principal, municipality) or access.may_see_pupil(
        principal, municipality, student
    )
    policy.require(
        allowed, "分析除外の申出を記録する権限がありません（自治体管理者または所属校の教職員）。"
    )


@transaction.atomic
def do_record_opt_out(
    principal: policy.Principal,
    municipality,
    student: Student,
    requested_at: dt.datetime | None = None,
) -> OptOut:
    """Record that a pupil (or guardian) asked, at ``requested_at``, to be left out of
    analysis (docs/rights.md says what analysis covers). From now on the pupil is outside
    ``Student.objects.analyzable()``; school records stay. The request goes into the
    register (請求受付簿) as answered."""
    _require_may_record(principal, municipality, student)
    student = _locked(student)
    if student.opted_out_at is not None:
        raise OptOutError("この児童生徒は既に分析除外の申出が記録されています。")
    requested_at = requested_at or timezone.now()
    _in_register(
        principal, RightsRequest.Kind.OPT_OUT, student, timezone.localdate(requested_at)
    ).save()
    opt_out = OptOut.objects.create(
        student=student, requested_at=requested_at, recorded_by_user_id=principal.user_id or 0
    )
    student.opted_out_at = requested_at
    student.save(update_fields=["opted_out_at"])
    rollups.refresh(rollups.years_with_data(), kind="opt_out", pupils=[student.pk])
    audit.record(
        principal.actor(municipality),
        "optout.record",
        municipality_code=municipality.code,
        target=f"pupil {student.pseudonym}",
        changes={"requested_at": requested_at.isoformat()},
    )
    log.info("opt-out recorded in %s", municipality.code)
    return opt_out


@transaction.atomic
def do_withdraw_opt_out(
    principal: policy.Principal,
    municipality,
    student: Student,
    requested_on: dt.date | None = None,
) -> OptOut:
    """Withdraw an opt-out (asked for on ``requested_on``, today if not given): the pupil is
    analyzable again from now on. The withdrawal goes into the register as answered."""
    _require_may_record(principal, municipality, student)
    student = _locked(student)
    opt_out = OptOut.objects.filter(student=student, withdrawn_at__isnull=True).first()
    if opt_out is None:
        raise OptOutError("取り下げる分析除外の申出がありません。")
    _in_register(principal, RightsRequest.Kind.OPT_OUT_WITHDRAWAL, student, requested_on).save()
    opt_out.withdrawn_at = timezone.now()
    opt_out.withdrawn_by_user_id = principal.user_id or 0
    opt_out.save(update_fields=["withdrawn_at", "withdrawn_by_user_id"])
    student.opted_out_at = None
    student.save(update_fields=["opted_out_at"])
    rollups.refresh(rollups.years_with_data(), kind="opt_out_withdrawal", pupils=[student.pk])
    audit.record(
        principal.actor(municipality),
        "optout.withdraw",
        municipality_code=municipality.code,
        target=f"pupil {student.pseudonym}",
    )
    log.info("opt-out withdrawn in %s", municipality.code)
    return opt_out


def _locked(student: Student) -> Student:
    """The pupil, their row locked to the end of the transaction: one opt-out change of a
    pupil at a time. FOR NO KEY UPDATE, which an import's checks of its rows' pupils pass
    (tenants.context.tenant_rollup_lock says why that matters); an import whose roster
    changes the pupil holds the row to its end, so the wait is brief (waiting_briefly)."""
    with waiting_briefly(OptOutError):
        return (
            Student.objects.select_related("school")
            .select_for_update(of=("self",), no_key=True)
            .get(pk=student.pk)
        )


def _in_register(principal, kind: str, student: Student, received_on: dt.date | None):
    """The opt-out (or its withdrawal) as an answered request of the register (unsaved)."""
    try:
        return answered_request(principal, kind, student, received_on)
    except RightsError as e:
        raise OptOutError(str(e)) from None


@dataclass
class PurgeReport:
    municipality_code: str
    cutoff: dt.date
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)  # rows per model label
    # Pupils per leaving reason (LeavingReason values, every reason present, 0 if none).
    pupils_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def students(self) -> int:
        return self.deleted.get("edudata.Student", 0)


def expired_students(municipality, today: dt.date):
    """Pupils who left (卒業・転出・退学, whatever the reason) more than the tenant's retention
    period ago: those whose ``left_on`` is before the cutoff."""
    cutoff = _years_before(today, municipality.retention_years)
    return Student.objects.filter(left_on__lt=cutoff), cutoff


def _pupils_by_reason(students) -> dict[str, int]:
    counts = dict(
        students.order_by()
        .values_list("leaving_reason")
        .annotate(n=Count("pk"))
        .values_list("leaving_reason", "n")
    )
    return {reason: counts.get(reason, 0) for reason in LeavingReason.values}


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def do_purge_expired(
    municipality, today: dt.date | None = None, *, actor: Actor, dry_run: bool = False
) -> PurgeReport:
    """Delete pupils (and every row of theirs) past retention. A dry run counts only.

    Waits for a running import of the tenant and holds off the next one until it commits,
    whoever calls it (the nightly task, ``renkei purge``). The access log is kept: it holds
    pseudonyms, not foreign keys, and is append-only.
    """
    today = today or timezone.localdate()
    with transaction.atomic():
        tenant_write_lock()
        students, cutoff = expired_students(municipality, today)
        report = PurgeReport(municipality.code, cutoff, dry_run)
        report.pupils_by_reason = _pupils_by_reason(students)
        if dry_run:
            report.deleted = _count_cascade(students)
        else:
            years = rollups.years_of(students)
            _, per_model = students.delete()
            rollups.bump_data_version("purge", years)  # pupil-keyed rollup rows went with them
            report.deleted = {label: n for label, n in per_model.items() if n}
            if report.deleted:
                audit.record(
                    actor,
                    "retention.purge",
                    municipality_code=municipality.code,
                    target=f"left before {cutoff.isoformat()}",
                    changes={"deleted": report.deleted, "pupils": report.pupils_by_reason},
                )
    log.info(  # counts only, never a name or a pseudonym
        "retention purge %s in %s: left before %s, pupils by reason %s, rows %s",
        "dry run" if dry_run else "done",
        municipality.code,
        cutoff,
        report.pupils_by_reason,
        report.deleted or "nothing to delete",
    )
    return report


def _count_cascade(students) -> dict[str, int]:
    """What a real purge would delete, counted in SQL (nothing loaded into memory)."""
    counts = {Student._meta.label: students.count()}
    for relation in Student._meta.related_objects:
        model = relation.related_model
        counts[model._meta.label] = model.objects.filter(
            **{f"{relation.field.name}__in": students}
        ).count()
    return {label: n for label, n in counts.items() if n}
