"""The canonical education data model of one municipality (tenant schema).

Aligned with OneRoster 1.2 (Japan profile) for the roster and with the MEXT education data
standard's split into subject / content / activity information. Analytics tables key pupils by
``Student`` (pseudonymous id); names and source ids live only in ``StudentIdentity``, which
only school-scoped views read. Every table has a natural key so a re-import updates instead of
duplicating.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.fields import ArrayField
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from renkei.edudata.codes import (  # noqa: F401 - re-exported for callers of models
    ABSENCE_STATUSES,
    NOT_COUNTED_STATUSES,
    AssessmentKind,
    AttendanceStatus,
    HealthCondition,
    LeavingReason,
    LongAbsenceReason,
    NurseVisitReason,
    Sex,
    school_year_of,
)
from renkei.tenants.codes import SCHOOL_TYPES


def school_year_bounds(year: int) -> tuple[dt.date, dt.date]:
    """First and last day of 年度 ``year`` (April 1 – March 31)."""
    return dt.date(year, 4, 1), dt.date(year + 1, 3, 31)


# The school years a question may name. Anything outside is a mistake in the request, not a
# question (and dates like 0001-01-01 or 9999-12-31 overflow the date arithmetic of the boards).
FIRST_SCHOOL_YEAR, LAST_SCHOOL_YEAR = 2000, 2100


class OutOfCalendar(ValueError):
    """A school year or day outside FIRST_SCHOOL_YEAR..LAST_SCHOOL_YEAR (message in Japanese)."""


def check_school_year(year: int) -> int:
    if not FIRST_SCHOOL_YEAR <= year <= LAST_SCHOOL_YEAR:
        raise OutOfCalendar(
            gettext("年度 %(year)s は範囲外です（%(first)s〜%(last)s 年度）。")
            % {"year": year, "first": FIRST_SCHOOL_YEAR, "last": LAST_SCHOOL_YEAR}
        )
    return year


def check_school_day(day: dt.date) -> dt.date:
    first, _last = school_year_bounds(FIRST_SCHOOL_YEAR)
    _first, last = school_year_bounds(LAST_SCHOOL_YEAR)
    if not first <= day <= last:
        raise OutOfCalendar(
            gettext("日付 %(day)s は範囲外です（%(first)s〜%(last)s）。")
            % {"day": day.isoformat(), "first": first.isoformat(), "last": last.isoformat()}
        )
    return day


class Sensitive:
    """Marks fields (or whole models) as sensitive: school-only, never aggregated across
    tenants, readable only after step-up authentication. The policy module reads this."""

    def __init__(self, *fields: str, whole_model: bool = False):
        self.fields = frozenset(fields)
        self.whole_model = whole_model


class School(models.Model):
    code = models.CharField(_("学校コード"), max_length=13, unique=True)
    name = models.CharField(_("学校名"), max_length=100)
    school_type = models.CharField(_("学校種"), max_length=2, choices=sorted(SCHOOL_TYPES.items()))

    class Meta:
        verbose_name = _("学校")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Homeroom(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="homerooms")
    school_year = models.PositiveSmallIntegerField(_("年度"))
    grade = models.PositiveSmallIntegerField(_("学年"))
    name = models.CharField(_("学級名"), max_length=50)
    # 担任: user names of the public schema's accounts, not foreign keys (nothing in a tenant
    # schema references the public one). Set by the school (homerooms.do_set_homeroom_teachers);
    # a roster import leaves it alone.
    teachers = ArrayField(
        models.CharField(max_length=150),
        default=list,
        blank=True,
        verbose_name=_("担任（利用者名）"),
    )

    class Meta:
        verbose_name = _("学級")
        constraints = [
            models.UniqueConstraint(
                fields=["school", "school_year", "name"], name="homeroom_natural_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.school_year}年度 {self.name}"


class StudentQuerySet(models.QuerySet):
    def analyzable(self) -> StudentQuerySet:
        """The only entry point for aggregates: pupils who have not opted out of analysis."""
        return self.filter(opted_out_at__isnull=True)


class Student(models.Model):
    """A pupil, keyed by a pseudonymous id. No name, no source id here."""

    Sex = Sex

    pseudonym = models.CharField(_("仮名ID"), max_length=32, unique=True)
    school = models.ForeignKey(
        School, on_delete=models.PROTECT, related_name="students", verbose_name=_("学校")
    )
    grade = models.PositiveSmallIntegerField(_("学年"))
    birth_year_month = models.CharField(
        _("生年月"), max_length=7, blank=True, help_text="YYYY-MM（日は保持しない）"
    )
    sex = models.CharField(_("性別"), max_length=12, choices=Sex.choices, default=Sex.UNSPECIFIED)
    # When and why the pupil left the municipality's schools, as the rosters say (卒業・転出・
    # 退学); empty while enrolled. Retention counts from ``left_on`` (privacy.py). A day in
    # the future is a leaving the roster announces (卒業予定日).
    left_on = models.DateField(_("離籍日"), null=True, blank=True)
    leaving_reason = models.CharField(
        _("離籍の理由"), max_length=12, choices=LeavingReason.choices, blank=True
    )
    opted_out_at = models.DateTimeField(_("分析除外の申出日時"), null=True, blank=True)

    objects = StudentQuerySet.as_manager()

    class Meta:
        verbose_name = _("児童生徒")
        indexes = [
            models.Index(fields=["school", "grade"]),
            models.Index(fields=["left_on"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(birth_year_month="")
                | Q(birth_year_month__regex=r"^\d{4}-(0[1-9]|1[0-2])$"),
                name="student_birth_year_month_format",
            ),
            models.CheckConstraint(
                condition=Q(left_on__isnull=True, leaving_reason="")
                | Q(left_on__isnull=False) & ~Q(leaving_reason=""),
                name="student_left_with_a_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"児童生徒 {self.pseudonym[:8]}"


class StudentIdentity(models.Model):
    """Who a pupil is in one source system. Read only through school-scoped views."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="identities")
    source_system = models.CharField(_("連携元"), max_length=40)
    source_id = models.CharField(_("連携元ID"), max_length=100)
    family_name = models.CharField(_("姓"), max_length=50, blank=True)
    given_name = models.CharField(_("名"), max_length=50, blank=True)
    family_name_kana = models.CharField(_("姓（かな）"), max_length=50, blank=True)
    given_name_kana = models.CharField(_("名（かな）"), max_length=50, blank=True)
    principal_name = models.CharField(_("ユーザープリンシパル名"), max_length=254, blank=True)

    class Meta:
        verbose_name = _("児童生徒の識別情報")
        constraints = [
            models.UniqueConstraint(
                fields=["source_system", "source_id"], name="identity_natural_key"
            )
        ]
        indexes = [models.Index(fields=["principal_name"])]


class Enrollment(models.Model):
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="enrollments")
    homeroom = models.ForeignKey(
        Homeroom, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("学級")
    )
    attendance_number = models.PositiveSmallIntegerField(_("出席番号"), null=True, blank=True)

    class Meta:
        verbose_name = _("在籍")
        constraints = [
            models.UniqueConstraint(fields=["student", "homeroom"], name="enrollment_natural_key")
        ]


class AttendanceDay(models.Model):
    """One row per pupil per school day (出席簿, a legal record: kept even after opt-out)."""

    # No index of its own, here and on every table the import fills: the natural key's unique
    # index leads with the pupil and serves the same lookups; each imported row writes one
    # index fewer.
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="attendance", db_index=False
    )
    date = models.DateField(_("日付"))
    status = models.CharField(_("出欠"), max_length=16, choices=AttendanceStatus.choices)
    reason = models.CharField(_("欠席等の理由"), max_length=200, blank=True)

    sensitive = Sensitive("reason")

    class Meta:
        verbose_name = _("出欠")
        constraints = [
            models.UniqueConstraint(fields=["student", "date"], name="attendance_natural_key")
        ]
        indexes = [models.Index(fields=["date"])]


class HealthObservation(models.Model):
    """健康観察: the morning check."""

    Condition = HealthCondition

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="health", db_index=False
    )
    date = models.DateField(_("日付"))
    condition = models.CharField(_("体調"), max_length=8, choices=Condition.choices)
    symptoms = models.CharField(_("症状"), max_length=200, blank=True)

    sensitive = Sensitive("symptoms")

    class Meta:
        verbose_name = _("健康観察")
        constraints = [
            models.UniqueConstraint(fields=["student", "date"], name="health_natural_key")
        ]


class NurseVisit(models.Model):
    """保健室利用."""

    Reason = NurseVisitReason

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="nurse_visits", db_index=False
    )
    visited_at = models.DateTimeField(_("来室日時"))
    reason_category = models.CharField(_("来室理由"), max_length=8, choices=Reason.choices)
    note = models.TextField(_("記録"), blank=True)

    sensitive = Sensitive("note")

    class Meta:
        verbose_name = _("保健室利用")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "visited_at"], name="nurse_visit_natural_key"
            )
        ]


class AssessmentResult(models.Model):
    Kind = AssessmentKind

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="assessments", db_index=False
    )
    school_year = models.PositiveSmallIntegerField(_("年度"))
    kind = models.CharField(_("種別"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("テスト名"), max_length=100)
    subject = models.CharField(_("教科"), max_length=40)
    taken_on = models.DateField(_("実施日"))
    score = models.DecimalField(_("得点"), max_digits=6, decimal_places=1)
    max_score = models.DecimalField(_("満点"), max_digits=6, decimal_places=1)

    class Meta:
        verbose_name = _("テスト結果")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_year", "kind", "name", "subject"],
                name="assessment_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=models.F("max_score")),
                name="assessment_score_within_max",
            ),
        ]


class SubjectEvaluation(models.Model):
    """評定 (1–5) and 観点別評価 (A/B/C per viewpoint)."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="evaluations", db_index=False
    )
    school_year = models.PositiveSmallIntegerField(_("年度"))
    term = models.CharField(_("学期"), max_length=20)
    subject = models.CharField(_("教科"), max_length=40)
    rating = models.PositiveSmallIntegerField(_("評定"), null=True, blank=True)
    viewpoints = models.JSONField(_("観点別評価"), default=dict, blank=True)

    class Meta:
        verbose_name = _("評価")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_year", "term", "subject"], name="evaluation_natural_key"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__range=(1, 5)),
                name="evaluation_rating_1_to_5",
            ),
        ]


class LearningActivity(models.Model):
    """Activity information (xAPI-like): actor, verb, object, time, duration."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    verb = models.CharField(_("動詞"), max_length=100)
    object_id = models.CharField(_("対象ID"), max_length=300)
    object_name = models.CharField(_("対象"), max_length=200, blank=True)
    occurred_at = models.DateTimeField(_("日時"))
    duration_seconds = models.PositiveIntegerField(_("時間（秒）"), null=True, blank=True)
    source_system = models.CharField(_("連携元"), max_length=40)
    # 教科 as the tool names it (国語, 算数, ...); empty when the statement does not say.
    subject = models.CharField(_("教科"), max_length=40, blank=True, default="")
    # A drill's questions answered and answered right (xAPI result.score, a drill's CSV).
    items_attempted = models.PositiveIntegerField(_("解答数"), null=True, blank=True)
    items_correct = models.PositiveIntegerField(_("正答数"), null=True, blank=True)
    # The xAPI statement id (empty for CSV sources): a later voiding statement names it.
    statement_id = models.CharField(
        _("statement ID"), max_length=36, blank=True, default="", db_index=True
    )

    class Meta:
        verbose_name = _("学習活動")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "verb", "object_id", "occurred_at"], name="activity_natural_key"
            )
        ]


class M365DailyUsage(models.Model):
    """Microsoft 365 app use per pupil per day, from the Graph usage reports. No UPN here."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="m365_usage", db_index=False
    )
    date = models.DateField(_("日付"))
    app = models.CharField(_("アプリ"), max_length=20)
    active = models.BooleanField(_("利用あり"), default=True)

    class Meta:
        verbose_name = _("Microsoft 365 利用")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "date", "app"], name="m365_usage_natural_key"
            )
        ]


class SurveyResponse(models.Model):
    """Survey answers (e.g. 心の天気): sensitive as a whole, school-only, never aggregated
    across tenants."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="surveys", db_index=False
    )
    survey = models.CharField(_("アンケート"), max_length=100)
    answered_on = models.DateField(_("回答日"))
    answers = models.JSONField(_("回答"), default=dict)

    sensitive = Sensitive(whole_model=True)

    class Meta:
        verbose_name = _("アンケート回答")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "survey", "answered_on"], name="survey_natural_key"
            )
        ]


class AbsenceClassification(models.Model):
    """The school's classification of one pupil's long-term absence (30 days or more) in one
    school year: the reason MEXT's annual survey asks for. Append-only: a change is a new
    row and the latest is the current one, so who decided what, and when, stays readable.
    Absence reasons are sensitive (school-only, after step-up); deleted with the pupil."""

    Reason = LongAbsenceReason

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="absence_classifications"
    )
    school_year = models.PositiveSmallIntegerField(_("年度"))
    reason = models.CharField(_("長期欠席の理由"), max_length=12, choices=Reason.choices)
    note = models.TextField(_("補足"), blank=True)
    absence_days = models.PositiveSmallIntegerField(_("分類時の欠席日数"))
    decided_at = models.DateTimeField(_("分類日時"))
    decided_by = models.CharField(_("分類した人"), max_length=150)

    sensitive = Sensitive(whole_model=True)

    class Meta:
        verbose_name = _("長期欠席の理由")
        indexes = [models.Index(fields=["school_year", "student"])]
        ordering = ["-decided_at", "-pk"]


class StaffNote(models.Model):
    """What staff of the pupil's school write down and share: 共有配慮事項 (what every teacher of
    the pupil must know: an allergy, a family situation) and 日常所見 (a daily observation).
    Sensitive as a whole: school-only, after step-up, never in any aggregate; deleted with the
    pupil. Written only through renkei.edudata.notes (corrected or deleted on a guardian's
    request through renkei.edudata.rights)."""

    class Kind(models.TextChoices):
        CONSIDERATION = "consideration", "共有配慮事項"
        OBSERVATION = "observation", "日常所見"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="staff_notes")
    kind = models.CharField(_("種類"), max_length=16, choices=Kind.choices)
    text = models.TextField(_("内容"))
    written_at = models.DateTimeField(_("記入日時"))
    written_by = models.CharField(_("記入者"), max_length=150)

    sensitive = Sensitive(whole_model=True)

    class Meta:
        verbose_name = _("共有配慮事項・日常所見")
        indexes = [models.Index(fields=["student", "written_at"])]
        ordering = ["-written_at", "-pk"]


class SupportCase(models.Model):
    """支援記録: a concern about a pupil that staff act on, with a follow-up date, until it is
    closed. Its steps are SupportAction rows. Sensitive as a whole, like StaffNote."""

    class Status(models.TextChoices):
        OPEN = "open", "対応中"
        CLOSED = "closed", "終結"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="support_cases")
    concern = models.TextField(_("気になること"))
    status = models.CharField(_("状態"), max_length=8, choices=Status.choices, default=Status.OPEN)
    follow_up_on = models.DateField(_("次に確認する日"), null=True, blank=True)
    opened_at = models.DateTimeField(_("開始日時"))
    opened_by = models.CharField(_("記入者"), max_length=150)

    sensitive = Sensitive(whole_model=True)

    class Meta:
        verbose_name = _("支援記録")
        indexes = [models.Index(fields=["status", "follow_up_on"])]
        ordering = ["-opened_at", "-pk"]


class SupportAction(models.Model):
    """One thing done for a support case: when, by whom (as the staff wrote it), what."""

    case = models.ForeignKey(
        SupportCase,
        on_delete=models.CASCADE,
        related_name="actions",
        verbose_name=_("支援記録（ID）"),
    )
    done_on = models.DateField(_("実施日"))
    done_by = models.CharField(_("実施者"), max_length=100)
    text = models.TextField(_("内容"))
    recorded_at = models.DateTimeField(_("記入日時"))
    recorded_by = models.CharField(_("記入者"), max_length=150)

    sensitive = Sensitive(whole_model=True)

    class Meta:
        verbose_name = _("支援記録の対応")
        ordering = ["done_on", "pk"]


class PupilAssignment(models.Model):
    """A pupil assigned to a スクールカウンセラー or スクールソーシャルワーカー by a manager (管理職) of
    the pupil's school: what lets them read the pupil's sensitive records (the rule table,
    renkei.accounts.policy.READS), as long as their membership also names the school. Written
    only through renkei.edudata.assignments; deleted with the pupil."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="assignments")
    # The public schema's account, by id (nothing in a tenant schema references the public one);
    # the name as it was, for the list.
    user_id = models.BigIntegerField(_("担当者"))
    username = models.CharField(_("担当者（利用者名）"), max_length=150)
    assigned_at = models.DateTimeField(_("担当にした日時"))
    assigned_by = models.CharField(_("担当にした人"), max_length=150)

    class Meta:
        verbose_name = _("SC・SSW の担当")
        verbose_name_plural = "SC・SSW の担当"
        constraints = [
            models.UniqueConstraint(fields=["student", "user_id"], name="assignment_natural_key")
        ]
        indexes = [models.Index(fields=["user_id"])]


class OptOut(models.Model):
    """A request to be left out of analysis (分析を望まない児童生徒), and its withdrawal."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="opt_outs")
    requested_at = models.DateTimeField(_("申出日時"))
    recorded_by_user_id = models.BigIntegerField(_("記録者"))
    withdrawn_at = models.DateTimeField(_("取下げ日時"), null=True, blank=True)
    withdrawn_by_user_id = models.BigIntegerField(_("取下げ記録者"), null=True, blank=True)

    class Meta:
        verbose_name = _("分析除外の申出")
        constraints = [
            models.UniqueConstraint(
                fields=["student"],
                condition=Q(withdrawn_at__isnull=True),
                name="one_open_opt_out_per_student",
            )
        ]


class TransferOut(models.Model):
    """A 転校 transfer package made for one pupil (renkei.connectors.transfer): the guardian's
    consent it rests on, where it goes, who made it. The transfer code is never stored; the
    package (encrypted under it) is kept in the tenant's storage for download."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="transfers_out")
    transfer_id = models.UUIDField(_("転校ID"), unique=True)
    destination_code = models.CharField(_("転出先の自治体コード"), max_length=6)
    destination_school_code = models.CharField(_("転出先の学校コード"), max_length=13, blank=True)
    consent_given_by = models.CharField(_("同意した保護者"), max_length=100)
    consent_given_on = models.DateField(_("同意日"))
    exported_at = models.DateTimeField(_("作成日時"))
    exported_by = models.CharField(_("作成した職員（同意を記録した職員）"), max_length=150)
    package_path = models.CharField(_("保管先"), max_length=200)
    package_sha256 = models.CharField(_("パッケージの SHA-256"), max_length=64)

    class Meta:
        verbose_name = _("転校パッケージ")
        ordering = ["-exported_at", "-pk"]


@receiver(post_delete, sender=TransferOut)
def _delete_transfer_package(sender, instance: TransferOut, **kwargs) -> None:
    """The package file goes with its row, however the row goes (the retention purge, a
    削除請求): encrypted or not, it holds the pupil's records. Once the deletion commits."""
    from renkei.platform.storage import get_storage

    tenant_code, key = connection.tenant.code, instance.package_path
    transaction.on_commit(lambda: get_storage().delete(tenant_code, key))


class RightsRequest(models.Model):
    """請求受付簿: one request of a pupil or guardian (開示, 訂正, 削除, 分析除外 and its
    withdrawal), when it was made, who recorded it and when it was answered, so the
    municipality can show that it answered each one. No foreign key: the register outlives a
    pupil deleted on request (削除請求) and keys the pupil by pseudonym, as the access log does.
    Written only through renkei.edudata.rights and renkei.edudata.privacy."""

    class Kind(models.TextChoices):
        DISCLOSURE = "disclosure", "開示"
        CORRECTION = "correction", "訂正"
        DELETION = "deletion", "削除"
        OPT_OUT = "opt_out", "分析除外"
        OPT_OUT_WITHDRAWAL = "opt_out_withdrawal", "分析除外の取下げ"

    class Status(models.TextChoices):
        RECEIVED = "received", "受付"
        ANSWERED = "answered", "対応済み"
        DECLINED = "declined", "対応しない（理由あり）"

    kind = models.CharField(_("請求の種類"), max_length=20, choices=Kind.choices)
    student_pseudonym = models.CharField(_("児童生徒（仮名ID）"), max_length=32)
    school_code = models.CharField(_("学校コード"), max_length=13)
    received_on = models.DateField(_("請求日"))
    recorded_at = models.DateTimeField(_("記録日時"))
    recorded_by = models.CharField(_("記録者"), max_length=150)
    status = models.CharField(
        _("状態"), max_length=10, choices=Status.choices, default=Status.RECEIVED
    )
    answered_at = models.DateTimeField(_("対応日時"), null=True, blank=True)
    answered_by = models.CharField(_("対応者"), max_length=150, blank=True)
    # Why a correction or deletion was made (required for those), or why a request was
    # declined: written by staff, kept here, never in the audit trail or a log line.
    reason = models.TextField(_("理由"), blank=True)
    # What was done, in counts and names of kinds and fields, never contents.
    outcome = models.JSONField(_("対応の内容（件数）"), default=dict, blank=True)

    class Meta:
        verbose_name = _("請求受付簿")
        ordering = ["-received_on", "-pk"]
        indexes = [
            models.Index(fields=["student_pseudonym", "received_on"]),
            models.Index(fields=["status", "received_on"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="received") | Q(answered_at__isnull=False),
                name="rights_request_answered_has_time",
            )
        ]


class AccessLog(models.Model):
    """Every read of individual data. Append-only in the database itself (a trigger rejects
    UPDATE, DELETE and TRUNCATE). No foreign keys: the log outlives purged pupils and
    deleted users, and keys only pseudonyms."""

    at = models.DateTimeField(_("日時"), auto_now_add=True)
    user_id = models.BigIntegerField(_("利用者ID"))
    username = models.CharField(_("利用者"), max_length=150)
    student_pseudonym = models.CharField(_("児童生徒（仮名ID）"), max_length=32)
    what = models.CharField(_("閲覧内容"), max_length=100)
    via = models.CharField(_("経路"), max_length=40)
    sensitive = models.BooleanField(_("要配慮情報"), default=False)

    class Meta:
        verbose_name = _("閲覧記録")
        indexes = [models.Index(fields=["student_pseudonym", "at"]), models.Index(fields=["at"])]


# -- imports ------------------------------------------------------------------------------------


class ImportRun(models.Model):
    """One run of a connector into this tenant. rows_read = rows_accepted + rows_rejected +
    rows_skipped (rows of pupils who opted out of analysis, in streams that exist only for
    analysis: docs/rights.md)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "待機中"
        RUNNING = "running", "実行中"
        SUCCEEDED = "succeeded", "完了"
        FAILED = "failed", "失敗"
        INTERRUPTED = "interrupted", "中断"
        CANCELLED = "cancelled", "取り消し"

    class Phase(models.TextChoices):
        RECEIVED = "received", "受付"
        VALIDATING = "validating", "検証"
        LOADING = "loading", "取り込み"
        ROLLUPS = "rollups", "集計"
        DONE = "done", "完了"

    connector = models.CharField(_("コネクタ"), max_length=60)
    connector_version = models.CharField(_("バージョン"), max_length=30)
    status = models.CharField(
        _("状態"), max_length=12, choices=Status.choices, default=Status.RUNNING
    )
    message = models.TextField(_("メッセージ"), blank=True)
    started_at = models.DateTimeField(_("開始"), auto_now_add=True)
    finished_at = models.DateTimeField(_("終了"), null=True, blank=True)
    started_by = models.CharField(_("実行者"), max_length=150, blank=True)
    # How it was started (platform.audit.VIA_LABELS: web, api, cli, schedule, ...).
    started_via = models.CharField(_("経路"), max_length=20, blank=True)
    files = models.JSONField(_("取り込んだファイル（保管先）"), default=list, blank=True)
    config = models.JSONField(_("設定（秘密の値は伏せ字）"), default=dict, blank=True)
    state = models.JSONField(_("コネクタの状態"), default=dict, blank=True)
    rows_read = models.PositiveBigIntegerField(_("読んだ行"), default=0)
    rows_accepted = models.PositiveBigIntegerField(_("取り込んだ行"), default=0)
    rows_rejected = models.PositiveBigIntegerField(_("除外した行"), default=0)
    # Valid rows not stored because their pupil opted out of analysis (M365 usage, learning
    # logs: renkei.connectors.streams.StreamSpec.analysis_only). Not errors.
    rows_skipped = models.PositiveBigIntegerField(_("分析除外で取り込まなかった行"), default=0)
    # Findings on rows that were accepted (QuarantinedRow.Kind.WARNING); not a row count.
    warnings = models.PositiveBigIntegerField(_("警告"), default=0)
    # Live while it runs (written from outside the run's transaction, see connectors/jobs.py).
    phase = models.CharField(
        _("段階"), max_length=12, choices=Phase.choices, default=Phase.RECEIVED
    )
    progress_rows = models.PositiveBigIntegerField(_("読んだ行（途中）"), default=0)
    # Counted from the line breaks of the files when they were received: for "time left".
    rows_expected = models.PositiveBigIntegerField(_("見込みの行数"), null=True, blank=True)
    began_at = models.DateTimeField(_("実行開始"), null=True, blank=True)
    cancel_requested = models.BooleanField(_("取り消しの依頼"), default=False)
    # Push API (renkei.connectors.api): the token that created the run (only it reads the run
    # back), and the client's Idempotency-Key with a digest of what was sent under it.
    ingest_token_id = models.BigIntegerField(_("取り込み用トークン"), null=True, blank=True)
    client_request_id = models.CharField(_("Idempotency-Key"), max_length=200, blank=True)
    request_digest = models.CharField(_("送信内容の SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("取り込み")
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="succeeded")
                | Q(
                    rows_read=models.F("rows_accepted")
                    + models.F("rows_rejected")
                    + models.F("rows_skipped")
                ),
                name="import_run_counts_add_up",
            ),
            models.UniqueConstraint(
                fields=["ingest_token_id", "client_request_id"],
                condition=~Q(client_request_id=""),
                name="import_run_client_request_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connector} #{self.pk}"

    @property
    def live(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def starter(self) -> str:
        """Who started the run and how, as 管理 shows it: "admin-131130（画面）"."""
        from renkei.platform.audit import VIA_LABELS

        via = VIA_LABELS.get(self.started_via)
        if not via or str(via) == self.started_by:  # 受信箱 names itself
            return self.started_by
        return f"{self.started_by}（{via}）"

    @property
    def rows_so_far(self) -> int:
        """Rows read: counted live while the run goes, the final count once it ended."""
        return self.progress_rows if self.live else self.rows_read


class QuarantinedRow(models.Model):
    """What a run found wrong in an input row, with where it was and why (Japanese): an error
    (the row was not accepted) or a warning (the row was accepted but breaks a rule of a
    standard the source follows, e.g. the OneRoster Japan profile in lenient mode)."""

    class Kind(models.TextChoices):
        ERROR = "error", "エラー"
        WARNING = "warning", "警告"

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="quarantine")
    file = models.CharField(_("ファイル"), max_length=255)
    line = models.PositiveIntegerField(_("行"))
    column = models.CharField(_("列"), max_length=100, blank=True)
    value = models.TextField(_("値"), blank=True)
    reason = models.TextField(_("理由"))
    kind = models.CharField(
        _("種別"), max_length=7, choices=Kind.choices, default=Kind.ERROR, db_default=Kind.ERROR
    )

    class Meta:
        verbose_name = _("除外した行・警告")
        indexes = [models.Index(fields=["run", "file", "line"])]


# -- rollups: what dashboards and aggregates read; opted-out pupils are never in them ---------


class RollupCell(models.Model):
    """What every rollup row is broken down by: the school (and its type) and the grade, in
    a school year. Rows only ever aggregate analyzable pupils."""

    # No constraint and no index in the database (migration 0023): a refresh writes its rows
    # from a join with edudata_school, schools are never deleted, and every reader filters by
    # school_year first. The constraint's check cost each of a refresh's rows as much as its
    # insert (a big import's refresh writes about 100,000).
    school = models.ForeignKey(
        School,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("学校"),
        db_constraint=False,
        db_index=False,
    )
    school_type = models.CharField(_("学校種"), max_length=2)
    grade = models.PositiveSmallIntegerField(_("学年"))
    school_year = models.PositiveSmallIntegerField(_("年度"))

    class Meta:
        abstract = True


class AttendancePupilMonth(RollupCell):
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # (the natural key leads with the pupil)
    month = models.PositiveSmallIntegerField(_("月"))
    school_days = models.PositiveSmallIntegerField(_("授業日数"))
    present = models.PositiveSmallIntegerField(_("出席"))
    late = models.PositiveSmallIntegerField(_("遅刻"))
    early_leave = models.PositiveSmallIntegerField(_("早退"))
    absent_illness = models.PositiveSmallIntegerField(_("欠席（病気）"))
    absent_accident = models.PositiveSmallIntegerField(_("欠席（事故）"))
    absent_other = models.PositiveSmallIntegerField(_("欠席（その他）"))
    suspension = models.PositiveSmallIntegerField(_("出席停止"))
    mourning = models.PositiveSmallIntegerField(_("忌引"))

    class Meta:
        verbose_name = _("出欠の月集計（集計用）")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_year", "month"], name="rollup_pupil_month_key"
            )
        ]
        indexes = [models.Index(fields=["school_year", "month"])]


class AttendancePupilYear(RollupCell):
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # (the natural key leads with the pupil)
    school_days = models.PositiveSmallIntegerField(_("授業日数"))
    absence_days = models.PositiveSmallIntegerField(_("欠席日数"))
    absent_illness = models.PositiveSmallIntegerField(_("欠席（病気）"))
    absent_accident = models.PositiveSmallIntegerField(_("欠席（事故）"))
    absent_other = models.PositiveSmallIntegerField(_("欠席（その他）"))

    class Meta:
        verbose_name = _("出欠の年集計（集計用）")
        constraints = [
            models.UniqueConstraint(fields=["student", "school_year"], name="rollup_pupil_year_key")
        ]
        indexes = [models.Index(fields=["school_year"])]


class LongAbsenceReasonYear(models.Model):
    """The current (latest) classification of each analyzable pupil's long-term absence in a
    school year: what the 不登校 metric counts, beside AttendancePupilYear (which says who is
    long-term absent). Opted-out pupils are not in it. Refreshed with the rollups and when a
    classification is recorded (absence.do_classify_long_absence)."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # (the natural key leads with the pupil)
    school_year = models.PositiveSmallIntegerField(_("年度"))
    reason = models.CharField(_("長期欠席の理由"), max_length=12, choices=LongAbsenceReason.choices)

    sensitive = Sensitive(whole_model=True)  # a pupil's reason: read by the release engine only

    class Meta:
        verbose_name = _("長期欠席の理由の年集計（集計用）")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_year"], name="rollup_long_absence_reason_key"
            )
        ]
        indexes = [models.Index(fields=["school_year"])]


class NurseVisitMonth(RollupCell):
    month = models.PositiveSmallIntegerField()
    reason_category = models.CharField(max_length=8)
    visits = models.PositiveIntegerField()
    pupils = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["school_year"])]


class M365AppMonth(RollupCell):
    month = models.PositiveSmallIntegerField()
    app = models.CharField(max_length=20)
    active_pupils = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["school_year"])]


class LearningPupilMonth(RollupCell):
    """A pupil's learning-tool use in one month (pupils with any learning activity only)."""

    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # (the natural key leads with the pupil)
    month = models.PositiveSmallIntegerField(_("月"))
    activities = models.PositiveIntegerField(_("活動数"))
    minutes = models.PositiveIntegerField(
        _("学習時間（分）"), help_text="月の学習時間（分、記録のない活動は 0 分）"
    )
    weekly_minutes = models.PositiveIntegerField(
        _("週あたりの学習時間（分）"),
        help_text="1 週あたりの平均（月の学習時間 ÷ 月の暦日数 × 7、分）",
    )

    class Meta:
        verbose_name = _("学習時間の月集計（集計用）")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_year", "month"], name="rollup_learning_month_key"
            )
        ]
        indexes = [models.Index(fields=["school_year", "month"])]


class AssessmentBin(RollupCell):
    kind = models.CharField(max_length=8)
    subject = models.CharField(max_length=40)
    score_bin = models.PositiveSmallIntegerField(help_text="0–9: 得点率の 10% 刻み（100% は 9）")
    pupils = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["school_year"])]


class FrozenCounts(models.Model):
    """The de-identified counts one family of a closed school year's tables is made of
    (the rows the release engine reads from the rollups: counts per school, grade and
    category, never a pupil), kept when the year is closed (renkei.edudata.history). Every
    release of a closed year is made from these, not from the live rollups, so its figures
    stay as released whatever happens to the pupils' rows later."""

    school_year = models.PositiveSmallIntegerField()
    family = models.CharField(max_length=20)
    rows = models.JSONField()
    frozen_at = models.DateTimeField(auto_now_add=True)

    # 不登校 counts are among them: read by the release engine only.
    sensitive = Sensitive(whole_model=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["school_year", "family"], name="frozen_counts_once")
        ]


# -- connector settings -------------------------------------------------------------------------


class ConnectorSetting(models.Model):
    """How this municipality configured one installed connector (the 管理 pages edit it).

    ``config`` holds the non-secret values as JSON; the values of the connector's
    ``secret_fields`` are kept only in ``secrets``, a JSON object encrypted with the platform's
    master key (Fernet, the key of renkei.platform.keys), so a dump of the tenant schema does
    not carry them in clear. Read and write them only through ``secret_values`` /
    ``set_secret_values``.
    """

    connector = models.CharField(_("コネクタ"), max_length=60, unique=True)
    config = models.JSONField(_("設定（秘密の値を除く）"), default=dict, blank=True)
    secrets = models.TextField(_("秘密の値（暗号化）"), blank=True)
    enabled = models.BooleanField(_("有効"), default=True)
    # Files dropped into inbox/<connector>/ of the tenant's storage are imported
    # (renkei.connectors.inbox).
    inbox_enabled = models.BooleanField(_("受信箱から取り込む"), default=False)
    updated_at = models.DateTimeField(_("更新日時"), auto_now=True)
    updated_by = models.CharField(_("更新者"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("コネクタ設定")
        ordering = ["connector"]

    def __str__(self) -> str:
        return self.connector

    def secret_values(self) -> dict[str, str]:
        """The stored secret values, decrypted (never render them)."""
        from renkei.platform.keys import decrypt_json

        return decrypt_json(self.secrets) if self.secrets else {}

    def set_secret_values(self, values: dict[str, str]) -> None:
        """Encrypt and keep ``values`` (empty values are dropped)."""
        from renkei.platform.keys import encrypt_json

        kept = {k: v for k, v in sorted(values.items()) if v}
        self.secrets = encrypt_json(kept) if kept else ""


class InboxFile(models.Model):
    """A file seen in a connector's inbox and not yet taken: its size at the look that first
    saw that size. A file is complete once a later look, at least a while after, finds the
    same size (renkei.connectors.inbox); the row goes when the file does."""

    connector = models.CharField(_("コネクタ"), max_length=60)
    name = models.CharField(_("ファイル名"), max_length=255)
    size = models.PositiveBigIntegerField(_("大きさ（バイト）"))
    seen_at = models.DateTimeField(_("この大きさで最初に見た日時"))

    class Meta:
        verbose_name = _("受信箱のファイル")
        constraints = [
            models.UniqueConstraint(fields=["connector", "name"], name="inbox_file_once"),
        ]

    def __str__(self) -> str:
        return f"{self.connector}/{self.name}"
