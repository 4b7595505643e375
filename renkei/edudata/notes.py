"""Staff notes and support records (共有配慮事項, 日常所見, 支援記録): written and read by staff of
the pupil's school only, after step-up (sensitive, DESIGN rule 6), each read in the access
log, each write an action with an audit event. The event names the pupil by pseudonym and
the kind of record, never its text: 管理's trail is read by tenant admins, who are not the
pupil's school. None of it is in any rollup, metric, API field, widget or export; it is
deleted with the pupil (retention), and kept when a pupil opts out of analysis (it is the
school's record, not an analysis).

What the class board's 新着 shows is :func:`news`: notes of the last NEWS_DAYS days and
support cases whose follow-up is due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.edudata import access
from renkei.edudata.models import (
    StaffNote,
    Student,
    SupportAction,
    SupportCase,
    SurveyResponse,
)
from renkei.platform import audit

MAX_TEXT = 4000  # characters of one note or step
NEWS_DAYS = 7  # a note is 新着 this long; a follow-up due within this many days is shown
# 心の天気 answers that 新着 shows (the connector's mappings store the answer as "weather").
CHECKIN_SURVEY = "心の天気"
LOW_MOODS = ("あめ", "雨", "かみなり", "雷")


class NoteError(ValueError):
    """A note or support record that cannot be saved; the message says why (Japanese)."""


def _text(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise NoteError(_("%(what)s を書いてください（空では保存できません）。") % {"what": what})
    if len(text) > MAX_TEXT:
        raise NoteError(
            _("%(what)s は %(n)s 文字までです（%(len)s 文字あります）。")
            % {"what": what, "n": MAX_TEXT, "len": len(text)}
        )
    return text


def _pupil(
    principal, municipality, student_pk: int, records: policy.Records = policy.Records.SCHOOL
) -> Student:
    """The pupil, if the principal is staff of their school (or, to read, whoever the rule
    table lets read the pupil's ``records``) and stepped up (logged)."""
    return access.read_pupil(
        principal,
        municipality,
        student_pk,
        what="staff_notes",
        via="web",
        sensitive=True,
        records=records,
    )


def _record(principal, municipality, action: str, student: Student, **changes) -> None:
    audit.record(
        principal.actor(municipality),
        action,
        municipality_code=municipality.code,
        target=f"pupil {student.pseudonym}",
        changes=changes,
    )


@transaction.atomic
def do_add_staff_note(
    principal: policy.Principal, municipality, student_pk: int, kind: str, text: str
) -> StaffNote:
    student = _pupil(principal, municipality, student_pk)
    if kind not in StaffNote.Kind.values:
        raise NoteError(_("記録の種類「%(kind)s」はありません。") % {"kind": kind[:40]})
    note = StaffNote.objects.create(
        student=student,
        kind=kind,
        text=_text(text, StaffNote.Kind(kind).label),
        written_at=timezone.now(),
        written_by=principal.username[:150],
    )
    _record(principal, municipality, "note.add", student, kind=kind)
    return note


@transaction.atomic
def do_open_support_case(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    concern: str,
    follow_up_on: dt.date | None = None,
) -> SupportCase:
    student = _pupil(principal, municipality, student_pk)
    case = SupportCase.objects.create(
        student=student,
        concern=_text(concern, _("気になること")),
        follow_up_on=follow_up_on,
        opened_at=timezone.now(),
        opened_by=principal.username[:150],
    )
    _record(principal, municipality, "support.open", student, case=case.pk)
    return case


@transaction.atomic
def do_add_support_action(
    principal: policy.Principal,
    municipality,
    case_pk: int,
    *,
    done_on: dt.date,
    done_by: str,
    text: str,
    follow_up_on: dt.date | None = None,
    close: bool = False,
) -> SupportAction:
    """Record one step of a case, move its follow-up date, and close it if asked."""
    case = SupportCase.objects.select_for_update().filter(pk=case_pk).first()
    # A missing case and another school's get the same refusal.
    if case is None:
        raise policy.AccessDenied(policy.FORBIDDEN_PUPIL)
    student = _pupil(principal, municipality, case.student_id)
    if case.status == SupportCase.Status.CLOSED:
        raise NoteError(_("この支援記録は終結しています。新しい支援記録を始めてください。"))
    if done_on > timezone.localdate():
        raise NoteError(_("実施日 %(day)s は未来の日付です。") % {"day": done_on.isoformat()})
    step = SupportAction.objects.create(
        case=case,
        done_on=done_on,
        done_by=_text(done_by, _("実施者"))[:100],
        text=_text(text, _("対応の内容")),
        recorded_at=timezone.now(),
        recorded_by=principal.username[:150],
    )
    case.follow_up_on = None if close else follow_up_on
    case.status = SupportCase.Status.CLOSED if close else SupportCase.Status.OPEN
    case.save(update_fields=["follow_up_on", "status"])
    _record(principal, municipality, "support.action", student, case=case.pk, closed=close)
    return step


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PupilRecords:
    notes: list[StaffNote]
    cases: list[SupportCase]

    @property
    def considerations(self) -> list[StaffNote]:
        """共有配慮事項: shown first on the pupil board, before anything else."""
        return [n for n in self.notes if n.kind == StaffNote.Kind.CONSIDERATION]


def pupil_records(principal: policy.Principal, municipality, student_pk: int) -> PupilRecords:
    """Everything staff wrote about one pupil, for the pupil board and the SC's and SSW's
    page (a logged, sensitive read): whoever reads the pupil's care records (policy.READS).
    Writing stays with the staff of the school."""
    student = _pupil(principal, municipality, student_pk, policy.Records.CARE)
    notes = list(StaffNote.objects.filter(student=student))
    # 共有配慮事項 first: what every teacher must know before anything else
    notes.sort(key=lambda n: n.kind != StaffNote.Kind.CONSIDERATION)
    cases = list(
        SupportCase.objects.filter(student=student)
        .prefetch_related("actions")
        .order_by("-status", "-opened_at")  # "open" before "closed", newest first
    )
    return PupilRecords(notes, cases)


@dataclass(frozen=True)
class NewsEntry:
    """One line of 新着: what, which day, and the pupil (by name where the roster has one)."""

    day: dt.date
    what: str
    student_id: int
    name: str


@dataclass(frozen=True)
class News:
    notes: list[StaffNote]
    due: list[SupportCase]
    checkins: list[SurveyResponse]  # answers as the reader may see them (access.shown_answers)
    names: dict[int, str]  # pupil -> name, for the pupils named above

    def entries(self) -> list[NewsEntry]:
        """Everything new, newest first; follow-ups due first of all."""

        def entry(day, what, student) -> NewsEntry:
            return NewsEntry(day, what, student.pk, self.names.get(student.pk) or str(student))

        due = [entry(c.follow_up_on, _("支援記録の確認日"), c.student) for c in self.due]
        new = [
            *(
                entry(timezone.localtime(n.written_at).date(), n.get_kind_display(), n.student)
                for n in self.notes
            ),
            *(entry(c.answered_on, _checkin_line(c.answers), c.student) for c in self.checkins),
        ]
        return due + sorted(new, key=lambda e: e.day, reverse=True)


def _checkin_line(answers: dict) -> str:
    line = _("心の天気: %(weather)s") % {"weather": answers.get("weather", "")}
    if comment := answers.get(access.FREE_COMMENT):
        line += _("（ひとこと: %(comment)s）") % {"comment": comment}
    return line


def news(principal: policy.Principal, municipality, students, today: dt.date) -> News:
    """New notes (NEWS_DAYS), follow-ups due (by today + NEWS_DAYS) and 心の天気 check-ins
    of LOW_MOODS in the last NEWS_DAYS days, of ``students`` that the principal may see,
    after step-up (a check-in's comment only for those who may read it); the pupils named
    are logged as read."""
    if not principal.step_up:
        raise policy.StepUpRequired(policy.STEP_UP_NEEDED)
    visible = access.visible_students(principal, municipality).filter(
        pk__in=[s.pk for s in students]
    )
    since = timezone.now() - dt.timedelta(days=NEWS_DAYS)
    notes = list(
        StaffNote.objects.filter(student__in=visible, written_at__gte=since).select_related(
            "student"
        )
    )
    due = list(
        SupportCase.objects.filter(
            student__in=visible,
            status=SupportCase.Status.OPEN,
            follow_up_on__lte=today + dt.timedelta(days=NEWS_DAYS),
        )
        .select_related("student")
        .order_by("follow_up_on")
    )
    checkins = list(
        SurveyResponse.objects.filter(
            student__in=visible,
            survey=CHECKIN_SURVEY,
            answered_on__range=(today - dt.timedelta(days=NEWS_DAYS), today),
            answers__weather__in=LOW_MOODS,
        )
        .select_related("student")
        .order_by("-answered_on")
    )
    named = (
        {n.student_id: n.student for n in notes}
        | {c.student_id: c.student for c in due}
        | {c.student_id: c.student for c in checkins}
    )
    access.log_pupil_read(
        principal, named.values(), what="class_board_news", via="web", sensitive=True
    )
    # Free comments only for the pupils whose comments this reader may read (their 担任 and
    # the school's managers); the rows are not saved, so stripping them here is safe.
    readable = access.free_comment_readers(principal, municipality, named.values())
    for checkin in checkins:
        checkin.answers = access.shown_answers(
            checkin.answers, free_comment=checkin.student_id in readable
        )
    names = {pk: name for pk, (name, _kana) in access.pupil_names(named).items()}
    return News(notes, due, checkins, names)
