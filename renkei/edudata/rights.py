"""Guardians' rights about one pupil (docs/rights.md): the register of requests (請求受付簿),
開示 (everything held about the pupil, as a document and as JSON), 訂正 and 削除.

Who answers: the municipality's admins and the managers (管理職) of the pupil's school
(``policy.may_answer_rights_requests``), after step-up. Opt-outs, which staff of the school
record too, are in :mod:`renkei.edudata.privacy` and go into the same register.

What is held about a pupil is worked out from the model, not listed by hand: every model
with a foreign key to ``Student`` (and the models that hang from those, like a support
case's steps), so a model added later is in the next 開示 without anyone remembering it.

Each answer is an action with an audit event that says what was done in counts and names of
kinds and fields, never contents; the reason staff give is kept in the register only. Log
lines carry counts.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.edudata import access, rollups
from renkei.edudata.models import (
    AccessLog,
    OptOut,
    RightsRequest,
    Student,
    StudentIdentity,
    school_year_of,
)
from renkei.platform import audit
from renkei.platform.models import AuditEvent
from renkei.tenants.context import tenant_write_lock, waiting_briefly

log = logging.getLogger(__name__)

EARLIEST_REQUEST = dt.date(2000, 4, 1)  # a request date before this is a typing mistake
MAX_REASON = 2000
# Fields a correction never changes: the pseudonym is the key everything else hangs on, and
# an opt-out changes only through its own actions (privacy.py), which keep the register.
NOT_CORRECTABLE = {"id", "pseudonym", "opted_out_at"}


class RightsError(ValueError):
    """A request that cannot be answered as asked; the message says why (Japanese)."""


# -- what is held about a pupil -----------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """One model that holds rows about a pupil, and the lookup from it to the pupil."""

    model: type[models.Model]
    lookup: str  # e.g. "student" or "case__student"
    derived: bool  # computed from the other records (a rollup): never corrected by hand
    parent_field: str  # the foreign key that links a row to the pupil ("" for Student)

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def title(self) -> str:
        return str(self.model._meta.verbose_name)

    @property
    def fields(self) -> list[models.Field]:
        """The fields a reader is shown: all but the link to the pupil."""
        return [f for f in self.model._meta.concrete_fields if f.name != self.parent_field]

    def rows_of(self, student: Student):
        if self.model is Student:
            return Student.objects.filter(pk=student.pk)
        return self.model.objects.filter(**{self.lookup: student}).order_by("pk")


def holdings() -> list[Holding]:
    """``Student`` and every model whose rows belong to a pupil, through the foreign keys
    that point at ``Student`` (hidden ones included: the rollups' ``related_name="+"``) and
    at those models in turn. This is the list 開示, 訂正 and 削除 work from."""
    found = [Holding(Student, "pk", derived=False, parent_field="")]
    seen = {Student}

    def walk(model, path: str, derived: bool) -> None:
        for rel in model._meta.get_fields(include_hidden=True):
            if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
                continue
            related = rel.related_model
            if related in seen:
                continue
            seen.add(related)
            lookup = f"{rel.field.name}__{path}" if path else rel.field.name
            # A hidden relation (related_name="+") is a rollup's: derived from the records.
            is_derived = derived or rel.hidden
            # The link to the pupil goes without saying; a link to a parent (the case of a
            # support step) is shown, as the parent's ID.
            parent = rel.field.name if model is Student else ""
            found.append(Holding(related, lookup, derived=is_derived, parent_field=parent))
            walk(related, lookup, is_derived)

    walk(Student, "", False)
    return found


def correctable_fields() -> list[tuple[Holding, models.Field]]:
    """(holding, field) pairs a correction may change: the fields a school or source system
    wrote, not keys, not links, not derived tables, not the opt-out's own records."""
    pairs = []
    for h in holdings():
        if h.derived or h.model is OptOut:
            continue
        for f in h.fields:
            if f.name in NOT_CORRECTABLE or f.is_relation or not f.editable:
                continue
            pairs.append((h, f))
    return pairs


def deletable_holdings() -> list[Holding]:
    """The kinds a 削除請求 may name one by one (the pupil as a whole takes everything)."""
    return [
        h for h in holdings() if h.model is not Student and not h.derived and h.model is not OptOut
    ]


# -- 開示: the document ---------------------------------------------------------------------------


@dataclass
class Section:
    label: str  # the model's label, "edudata.attendanceday"
    title: str  # its verbose name, the section's heading
    columns: list[tuple[str, str]]  # (field name, label)
    rows: list[dict]  # JSON values
    shown: list[list[str]]  # the same rows as the document shows them


@dataclass
class Disclosure:
    municipality_code: str
    municipality_name: str
    pseudonym: str
    school: str
    generated_at: dt.datetime
    request_pk: int
    sections: list[Section] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(s.rows) for s in self.sections)

    def as_json(self) -> dict:
        return {
            "format": "renkei-disclosure/1",
            "municipality": {"code": self.municipality_code, "name": self.municipality_name},
            "pupil": {"pseudonym": self.pseudonym, "school": self.school},
            "generated_at": self.generated_at.isoformat(),
            "request": self.request_pk,
            "sections": [
                {
                    "model": s.label,
                    "title": s.title,
                    "fields": [{"name": n, "label": label} for n, label in s.columns],
                    "rows": s.rows,
                }
                for s in self.sections
            ],
        }


def _named(related: models.Model | None) -> bool:
    """A row another row points at is shown by its name when it has one (a school, a
    homeroom), else by its ID (a support case: its own section lists it)."""
    return related is not None and type(related).__str__ is not models.Model.__str__


def _json_value(obj: models.Model, f: models.Field):
    value = getattr(obj, f.attname)
    if f.is_relation:
        related = getattr(obj, f.name)
        return str(related) if _named(related) else value
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _shown_value(obj: models.Model, f: models.Field) -> str:
    value = getattr(obj, f.attname)
    if value is None or value == "":
        return ""
    if f.is_relation:
        related = getattr(obj, f.name)
        return str(related) if _named(related) else str(value)
    if f.choices:
        return str(getattr(obj, f"get_{f.name}_display")())
    if isinstance(value, bool):
        return _("はい") if value else _("いいえ")
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _section(label: str, title: str, fields: list[models.Field], objects) -> Section:
    return Section(
        label=label,
        title=title,
        columns=[(f.name, str(f.verbose_name)) for f in fields],
        rows=[{f.name: _json_value(o, f) for f in fields} for o in objects],
        shown=[[_shown_value(o, f) for f in fields] for o in objects],
    )


def _records_of(student: Student) -> list[Section]:
    sections = []
    for h in holdings():
        objects = list(h.rows_of(student).select_related(*_forward(h)))
        sections.append(_section(h.label, h.title, h.fields, objects))
    return sections


def _forward(h: Holding) -> list[str]:
    return [f.name for f in h.fields if f.is_relation and f.many_to_one]


def _access_log_of(student: Student) -> Section:
    fields = [AccessLog._meta.get_field(n) for n in ("at", "username", "what", "via", "sensitive")]
    rows = AccessLog.objects.filter(student_pseudonym=student.pseudonym).order_by("at", "pk")
    return _section(
        "edudata.accesslog", str(AccessLog._meta.verbose_name), fields, list(rows.iterator())
    )


def _audit_of(municipality, student: Student) -> Section:
    """What was done about the pupil (opt-outs, notes written, requests answered): the audit
    events that name them. An event holds kinds and counts, never contents."""
    fields = [AuditEvent._meta.get_field(n) for n in ("at", "username", "action", "via")]
    events = AuditEvent.objects.filter(
        municipality_code=municipality.code, target=f"pupil {student.pseudonym}"
    ).order_by("at", "pk")
    section = _section("platform.auditevent", _("操作記録"), fields, list(events))
    for row in section.shown:  # the action's label, as 管理's trail shows it
        row[2] = str(audit.ACTIONS.get(row[2], row[2]))
    return section


def _register_of(student: Student) -> Section:
    fields = [
        RightsRequest._meta.get_field(n)
        for n in ("kind", "received_on", "status", "answered_at", "outcome")
    ]
    rows = RightsRequest.objects.filter(student_pseudonym=student.pseudonym).order_by(
        "received_on", "pk"
    )
    return _section(
        "edudata.rightsrequest", str(RightsRequest._meta.verbose_name), fields, list(rows)
    )


def disclosure_of(municipality, student: Student, request_pk: int) -> Disclosure:
    """Everything held about ``student`` in this tenant: every record of every model that
    belongs to them, who read their records and when, what was done about them, and their
    requests. The caller checked the reader (``access.pupil_for_rights_request``)."""
    found = Disclosure(
        municipality_code=municipality.code,
        municipality_name=municipality.name,
        pseudonym=student.pseudonym,
        school=student.school.name,
        generated_at=timezone.now(),
        request_pk=request_pk,
    )
    found.sections = [
        *_records_of(student),
        _access_log_of(student),
        _audit_of(municipality, student),
        _register_of(student),
    ]
    return found


# -- the register ---------------------------------------------------------------------------------


def _received_on(day: dt.date | None) -> dt.date:
    day = day or timezone.localdate()
    if day > timezone.localdate():
        raise RightsError(_("請求日に未来の日付は指定できません。"))
    if day < EARLIEST_REQUEST:
        raise RightsError(
            _("請求日は %(day)s 以降の日付にしてください。") % {"day": EARLIEST_REQUEST.isoformat()}
        )
    return day


def _reason(reason: str, *, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise RightsError(_("理由を書いてください（空では記録できません）。"))
    if len(reason) > MAX_REASON:
        raise RightsError(
            _("理由は %(n)s 文字までです（%(len)s 文字あります）。")
            % {"n": MAX_REASON, "len": len(reason)}
        )
    return reason


def answered_request(
    principal: policy.Principal,
    kind: str,
    student: Student,
    received_on: dt.date | None,
    *,
    reason: str = "",
    outcome: dict | None = None,
) -> RightsRequest:
    """The register row an answer goes in, unsaved (the action saves it): the oldest request
    of this kind for the pupil still open, or a new one received on ``received_on``."""
    now = timezone.now()
    request = (
        RightsRequest.objects.select_for_update()
        .filter(
            kind=kind, student_pseudonym=student.pseudonym, status=RightsRequest.Status.RECEIVED
        )
        .order_by("received_on", "pk")
        .first()
    )
    if request is None:
        request = RightsRequest(
            kind=kind,
            student_pseudonym=student.pseudonym,
            school_code=student.school.code,
            received_on=_received_on(received_on),
            recorded_at=now,
            recorded_by=principal.username[:150],
        )
    request.status = RightsRequest.Status.ANSWERED
    request.answered_at = now
    request.answered_by = principal.username[:150]
    if reason:
        request.reason = reason
    request.outcome = outcome or {}
    return request


def _record(principal, municipality, action: str, request: RightsRequest, **changes) -> None:
    audit.record(
        principal.actor(municipality),
        action,
        municipality_code=municipality.code,
        target=f"pupil {request.student_pseudonym}",
        changes={"request": request.pk, "kind": request.kind, **changes},
    )


@transaction.atomic
def do_receive_request(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    kind: str,
    received_on: dt.date | None = None,
) -> RightsRequest:
    """Enter a request in the register as received, to be answered later (開示 is answered
    by opening the document; the others by the action that does what was asked)."""
    student = access.pupil_for_rights_request(principal, municipality, student_pk)
    if kind not in RightsRequest.Kind.values:
        raise RightsError(_("請求の種類「%(kind)s」はありません。") % {"kind": kind[:40]})
    request = RightsRequest.objects.create(
        kind=kind,
        student_pseudonym=student.pseudonym,
        school_code=student.school.code,
        received_on=_received_on(received_on),
        recorded_at=timezone.now(),
        recorded_by=principal.username[:150],
    )
    _record(principal, municipality, "rights.receive", request)
    return request


def request_for_answer(principal: policy.Principal, municipality, request_pk: int):
    """A register row and its pupil (None once deleted on request), for those who may answer
    requests about the pupil's school (the school the row names)."""
    request = RightsRequest.objects.filter(pk=request_pk).first()
    allowed = request is not None and policy.may_answer_rights_requests(
        principal, municipality, request.school_code
    )
    policy.require(allowed, policy.FORBIDDEN_RIGHTS)
    student = Student.objects.filter(pseudonym=request.student_pseudonym).first()
    if student is None:
        if not principal.step_up:
            raise policy.StepUpRequired(policy.STEP_UP_NEEDED)
        return request, None
    return request, access.pupil_for_rights_request(principal, municipality, student.pk)


@transaction.atomic
def do_decline_request(
    principal: policy.Principal, municipality, request_pk: int, reason: str
) -> RightsRequest:
    """Close a received request without doing what it asks, with the reason (e.g. a
    correction the school's record shows to be right)."""
    request = request_for_answer(principal, municipality, request_pk)[0]
    request = RightsRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != RightsRequest.Status.RECEIVED:
        raise RightsError(_("この請求は既に対応済みです。"))
    request.status = RightsRequest.Status.DECLINED
    request.reason = _reason(reason)
    request.answered_at = timezone.now()
    request.answered_by = principal.username[:150]
    request.save()
    _record(principal, municipality, "rights.decline", request)
    return request


# -- 開示 -----------------------------------------------------------------------------------------


@transaction.atomic
def do_disclose(
    principal: policy.Principal, municipality, request_pk: int, *, fmt: str
) -> Disclosure:
    """Answer a 開示請求: everything held about the pupil, for the document (``fmt`` "html")
    or the JSON download ("json"). Each call is a read of everything (one access-log row,
    marked sensitive) and an audit event with the row count; the first answers the request."""
    request, student = request_for_answer(principal, municipality, request_pk)
    if request.kind != RightsRequest.Kind.DISCLOSURE:
        raise RightsError(_("この請求は開示請求ではありません。"))
    if request.status == RightsRequest.Status.DECLINED:
        raise RightsError(_("この開示請求は「対応しない」と記録されています。開示していません。"))
    if student is None:
        raise RightsError(_("この児童生徒の記録は削除されています。開示できる記録はありません。"))
    found = disclosure_of(municipality, student, request.pk)
    if request.status == RightsRequest.Status.RECEIVED:
        request.status = RightsRequest.Status.ANSWERED
        request.answered_at = timezone.now()
        request.answered_by = principal.username[:150]
        request.outcome = {"rows": found.rows}
        request.save()
    access.log_pupil_read(principal, [student], what=f"disclosure_{fmt}", via="web", sensitive=True)
    _record(principal, municipality, "rights.disclose", request, format=fmt, rows=found.rows)
    log.info("disclosure (%s) in %s: %d rows", fmt, municipality.code, found.rows)
    return found


# -- 訂正 -----------------------------------------------------------------------------------------


def _correctable(target: str) -> tuple[Holding, models.Field]:
    for h, f in correctable_fields():
        if f"{h.label}:{f.name}" == target:
            return h, f
    raise RightsError(_("訂正できる項目「%(target)s」はありません。") % {"target": target[:80]})


def _parse(f: models.Field, text: str):
    form_field = f.formfield()
    try:
        value = form_field.clean(text) if form_field is not None else text
    except ValidationError as e:
        raise RightsError(
            _("「%(label)s」の値が正しくありません: %(errors)s")
            % {"label": f.verbose_name, "errors": " ".join(e.messages)}
        ) from None
    if value in (None, "") and not f.null and not f.blank:
        raise RightsError(_("「%(label)s」は空にできません。") % {"label": f.verbose_name})
    if value is None and not f.null:
        value = ""
    return value


def _years_of(*values) -> set[int]:
    years = set()
    for value in values:
        if isinstance(value, dt.datetime):
            years.add(school_year_of(timezone.localdate(value)))
        elif isinstance(value, dt.date):
            years.add(school_year_of(value))
    return years


def _no_import_running() -> None:
    """Hold the tenant's write lock to the end of the transaction: no import writes the same
    rows meanwhile. Waited for briefly: a request says that an import is running rather
    than wait for its end."""
    with waiting_briefly(RightsError):
        tenant_write_lock()


@transaction.atomic
def do_correct_record(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    *,
    target: str,
    record_pk: int,
    value: str,
    reason: str,
    received_on: dt.date | None = None,
) -> RightsRequest:
    """Answer a 訂正請求: set one field (``target`` "app.model:field") of one of the pupil's
    records to ``value`` (as typed), with the reason. Rollups are refreshed in the same
    transaction. The audit event names the kind and the field, never the values."""
    _no_import_running()
    student = access.pupil_for_rights_request(principal, municipality, student_pk)
    h, f = _correctable(target)
    reason = _reason(reason)
    obj = h.rows_of(student).filter(pk=record_pk).first()
    if obj is None:
        raise RightsError(
            _("この児童生徒の「%(kind)s」に番号 %(pk)s の記録はありません。")
            % {"kind": h.title, "pk": record_pk}
        )
    new = _parse(f, value)
    old = getattr(obj, f.attname)
    if old == new:
        raise RightsError(_("「%(label)s」は既にその値です。") % {"label": f.verbose_name})
    setattr(obj, f.attname, new)
    try:
        with transaction.atomic():
            obj.save(update_fields=[f.name])
    except IntegrityError:
        raise RightsError(
            _(
                "「%(label)s」をその値にすると、同じ児童生徒の別の記録と重なるか、"
                "記録の決まり（範囲など）に反します。"
            )
            % {"label": f.verbose_name}
        ) from None
    request = answered_request(
        principal,
        RightsRequest.Kind.CORRECTION,
        student,
        received_on,
        reason=reason,
        outcome={"model": h.label, "field": f.name, "records": 1},
    )
    request.save()
    rollups.refresh(set(rollups.years_with_data()) | _years_of(old, new))
    _record(
        principal, municipality, "rights.correct", request, model=h.label, field=f.name, records=1
    )
    log.info("correction in %s: 1 record of %s", municipality.code, h.label)
    return request


# -- 削除 -----------------------------------------------------------------------------------------

SCOPE_RECORD, SCOPE_KIND, SCOPE_PUPIL = "record", "kind", "pupil"


@transaction.atomic
def do_delete_records(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    *,
    scope: str,
    reason: str,
    kind: str = "",
    record_pk: int | None = None,
    received_on: dt.date | None = None,
) -> RightsRequest:
    """Answer a 削除請求: delete one record (``scope`` "record", of ``kind``), every record
    of one kind ("kind") or the pupil with everything of theirs ("pupil"), with the reason.
    Rollups are refreshed in the same transaction. The audit event and the register keep
    the counts per kind; the access log and the register itself stay (pseudonyms only)."""
    _no_import_running()
    student = access.pupil_for_rights_request(principal, municipality, student_pk)
    reason = _reason(reason)
    if scope == SCOPE_PUPIL:
        rows = Student.objects.filter(pk=student.pk)
    elif scope in (SCOPE_RECORD, SCOPE_KIND):
        allowed = {h.label: h for h in deletable_holdings()}
        if kind not in allowed:
            raise RightsError(
                _("削除できる記録の種類「%(kind)s」はありません。") % {"kind": kind[:60]}
            )
        rows = allowed[kind].rows_of(student)
        if scope == SCOPE_RECORD:
            rows = rows.filter(pk=record_pk)
    else:
        raise RightsError(_("削除の範囲「%(scope)s」はありません。") % {"scope": scope[:20]})
    request = answered_request(
        principal, RightsRequest.Kind.DELETION, student, received_on, reason=reason
    )
    per_model = rows.delete()[1]
    deleted = {label.lower(): n for label, n in per_model.items() if n}
    if not deleted:
        raise RightsError(_("削除する記録がありません（番号と種類を確かめてください）。"))
    request.outcome = {"scope": scope, "deleted": deleted}
    request.save()
    rollups.refresh(rollups.years_with_data())
    _record(principal, municipality, "rights.delete", request, scope=scope, deleted=deleted)
    log.info("deletion on request in %s: %s", municipality.code, deleted)
    return request


def outcome_lines(request: RightsRequest) -> list[str]:
    """What was done, as the register's page says it: kinds by their names, with counts."""

    def title(label: str) -> str:
        try:
            return str(apps.get_model(label)._meta.verbose_name)
        except (LookupError, ValueError):
            return label

    outcome = request.outcome or {}
    lines = [
        _("%(kind)s: %(n)s 件削除") % {"kind": title(label), "n": n}
        for label, n in (outcome.get("deleted") or {}).items()
    ]
    if "field" in outcome:
        model = title(outcome.get("model", ""))
        try:
            field = apps.get_model(outcome["model"])._meta.get_field(outcome["field"]).verbose_name
        except (LookupError, ValueError):
            field = outcome["field"]
        lines.append(_("%(kind)s › %(field)s を訂正（1 件）") % {"kind": model, "field": field})
    if "rows" in outcome:
        lines.append(_("開示した記録: %(n)s 件") % {"n": outcome["rows"]})
    return lines


def identity_summary(student: Student) -> list[StudentIdentity]:
    """The pupil's identities (names, source ids), for the page that answers a request."""
    return list(StudentIdentity.objects.filter(student=student).order_by("source_system", "pk"))
