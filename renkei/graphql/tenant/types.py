"""GraphQL types of the tenant API.

Fields are listed explicitly (never ``fields = "__all__"``): a type exposes only what a board
shows, so adding a model field never widens the API by accident. Pupils are reachable only
through the student board and the class board (root fields that go through the policy);
no school or homeroom type has a path to a pupil.

Sensitive items (``Sensitive`` markers on the models) are checked twice: the board resolvers
refuse the whole board up front when the query selects one without step-up
(``selection.sensitive_requested``), and each sensitive field's resolver checks again -
resolvers generated from the markers (:func:`guard_sensitive_fields`), none written by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import graphene
from django.db.models import TextChoices
from graphene.types.generic import GenericScalar
from graphene_django import DjangoObjectType

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.edudata import access, alerts, karte, learning
from renkei.edudata.codes import (
    SENSITIVE_NURSE_REASONS,
    AssessmentKind,
    AttendanceStatus,
    HealthCondition,
    LeavingReason,
    NurseVisitReason,
    Sex,
)
from renkei.edudata.models import (
    AssessmentResult,
    AttendanceDay,
    HealthObservation,
    Homeroom,
    M365DailyUsage,
    NurseVisit,
    School,
    SubjectEvaluation,
    SurveyResponse,
)
from renkei.tenants.codes import SCHOOL_TYPES


def _enum(name: str, choices: type[TextChoices], description: str) -> type[graphene.Enum]:
    """A GraphQL enum from a code list, each value documented with its Japanese label."""
    labels = {member.value: str(member.label) for member in choices}

    def describe(value) -> str:
        return description if value is None else labels.get(value.value, "")

    return graphene.Enum(
        name, [(member.name, member.value) for member in choices], description=describe
    )


AttendanceStatusEnum = _enum("AttendanceStatus", AttendanceStatus, "出欠の区分")
HealthConditionEnum = _enum("HealthCondition", HealthCondition, "健康観察の体調")
NurseVisitReasonEnum = _enum("NurseVisitReason", NurseVisitReason, "保健室の来室理由")
AssessmentKindEnum = _enum("AssessmentKind", AssessmentKind, "テストの種別")
SexEnum = _enum("Sex", Sex, "性別")
LeavingReasonEnum = _enum("LeavingReason", LeavingReason, "離籍の理由（卒業・転出・退学）")
RoleEnum = _enum("Role", Role, "役割")
AlertRuleEnum = graphene.Enum.from_enum(
    alerts.Rule, name="AlertRule", description="アラートの規則（しきい値は自治体の設定）"
)


def guard_sensitive_fields() -> None:
    """Give every field that the ``Sensitive`` marker of its model names a resolver that
    refuses it without step-up (``policy.check_fields``), on every DjangoObjectType: the
    marker is the one list of sensitive fields, and a field marked later is guarded without
    a resolver written by hand. A type's own resolver for such a field runs after the check.
    Called once, before the schema is built (schema.py)."""
    pending = list(DjangoObjectType.__subclasses__())
    while pending:
        object_type = pending.pop()
        pending += object_type.__subclasses__()
        model = object_type._meta.model
        for name in policy.sensitive_fields(model) & set(object_type._meta.fields):
            resolver_name = f"resolve_{name}"
            own = getattr(object_type, resolver_name, None)
            if getattr(own, "guarded", False):
                continue
            setattr(object_type, resolver_name, staticmethod(_guarded(model, name, own)))


def _guarded(model, name: str, own):
    def resolve(root, info, **arguments):
        policy.check_fields(info.context.principal, model, [name])
        return own(root, info, **arguments) if own is not None else getattr(root, name)

    resolve.guarded = True
    return resolve


# -- schools and homerooms ------------------------------------------------------------------


class SchoolType(DjangoObjectType):
    class Meta:
        model = School
        name = "School"
        fields = ("code", "name")
        convert_choices_to_enum = False

    school_type = graphene.String(required=True, description="学校種コード（B1 小学校など）")
    school_type_label = graphene.String(required=True)
    homerooms = graphene.List(
        graphene.NonNull(lambda: HomeroomType),
        required=True,
        school_year=graphene.Int(description="年度（省略時はすべて）"),
        description="学級（児童生徒の一覧は含みません。学級ボードを使います）",
    )

    @staticmethod
    def resolve_school_type_label(school: School, info) -> str:
        return SCHOOL_TYPES.get(school.school_type, school.school_type)

    @staticmethod
    def resolve_homerooms(school: School, info, school_year: int | None = None):
        return info.context.loaders.homerooms.load((school.pk, school_year))


class HomeroomType(DjangoObjectType):
    class Meta:
        model = Homeroom
        name = "Homeroom"
        fields = ("id", "school_year", "grade", "name")

    school = graphene.Field(SchoolType, required=True)

    @staticmethod
    def resolve_school(homeroom: Homeroom, info):
        return info.context.loaders.school.load(homeroom.school_id)


# -- a pupil's records (student board) --------------------------------------------------------


class AttendanceDayType(DjangoObjectType):
    class Meta:
        model = AttendanceDay
        name = "AttendanceDay"
        fields = ("date", "reason")
        convert_choices_to_enum = False

    status = graphene.Field(AttendanceStatusEnum, required=True)
    status_label = graphene.String(required=True)
    reason = graphene.String(description="欠席等の理由（要配慮情報: 二要素認証の後のみ）")

    @staticmethod
    def resolve_status_label(row: AttendanceDay, info) -> str:
        return AttendanceStatus(row.status).label


class HealthObservationType(DjangoObjectType):
    class Meta:
        model = HealthObservation
        name = "HealthObservation"
        fields = ("date", "symptoms")
        convert_choices_to_enum = False

    condition = graphene.Field(HealthConditionEnum, required=True)
    symptoms = graphene.String(description="症状（要配慮情報: 二要素認証の後のみ）")


class NurseVisitType(DjangoObjectType):
    class Meta:
        model = NurseVisit
        name = "NurseVisit"
        fields = ("visited_at", "note")
        convert_choices_to_enum = False

    reason_category = graphene.Field(NurseVisitReasonEnum, required=True)
    note = graphene.String(description="記録（要配慮情報: 二要素認証の後のみ）")


class AssessmentResultType(DjangoObjectType):
    class Meta:
        model = AssessmentResult
        name = "AssessmentResult"
        fields = ("school_year", "name", "subject", "taken_on")
        convert_choices_to_enum = False

    kind = graphene.Field(AssessmentKindEnum, required=True)
    score = graphene.Float(required=True)
    max_score = graphene.Float(required=True)

    @staticmethod
    def resolve_score(row: AssessmentResult, info) -> float:
        return float(row.score)

    @staticmethod
    def resolve_max_score(row: AssessmentResult, info) -> float:
        return float(row.max_score)


class ViewpointType(graphene.ObjectType):
    class Meta:
        name = "Viewpoint"

    name = graphene.String(required=True, description="観点")
    grade = graphene.String(required=True, description="A / B / C")


class SubjectEvaluationType(DjangoObjectType):
    class Meta:
        model = SubjectEvaluation
        name = "SubjectEvaluation"
        fields = ("school_year", "term", "subject", "rating")

    viewpoints = graphene.List(graphene.NonNull(ViewpointType), required=True)

    @staticmethod
    def resolve_viewpoints(row: SubjectEvaluation, info):
        return [
            ViewpointType(name=str(k), grade=str(v))
            for k, v in sorted((row.viewpoints or {}).items())
        ]


class M365UsageType(DjangoObjectType):
    class Meta:
        model = M365DailyUsage
        name = "M365DailyUsage"
        fields = ("date", "app", "active")


class SurveyResponseType(DjangoObjectType):
    """Whole model sensitive (心の天気 and the like): step-up only, never aggregated."""

    class Meta:
        model = SurveyResponse
        name = "SurveyResponse"
        fields = ("survey", "answered_on")
        description = (
            "アンケート回答（心の天気など）。全体が要配慮情報: 二要素認証の後のみ、集計もしません。"
        )

    answers = GenericScalar(
        required=True,
        description="回答（JSON）。自由記述（comment）は担任と管理職にだけ含まれます。",
    )
    free_comment_withheld = graphene.Boolean(
        required=True,
        description="自由記述があるが、閲覧者が担任・管理職でないため answers から除いたとき true",
    )

    @staticmethod
    def resolve_answers(row: SurveyResponse, info):
        return access.shown_answers(row.answers, free_comment=_free_comment(row))

    @staticmethod
    def resolve_free_comment_withheld(row: SurveyResponse, info) -> bool:
        policy.check_fields(info.context.principal, SurveyResponse, ["answers"])
        return bool(
            isinstance(row.answers, dict)
            and row.answers.get(access.FREE_COMMENT)
            and not _free_comment(row)
        )


def _free_comment(row: SurveyResponse) -> bool:
    # Set by StudentBoardType.resolve_surveys, the only way to a SurveyResponse; unset means no.
    return getattr(row, "free_comment_readable", False)


# -- learning tools (not sensitive: DESIGN rule 6, docs/school-records.md) ------------------


def _weeks_arg() -> graphene.Int:
    return graphene.Int(
        default_value=learning.DEFAULT_WEEKS,
        description=f"基準日の週までの ISO 週（月曜始まり）の数（1〜{learning.MAX_WEEKS}）",
    )


def _learning(count, *args):
    from renkei.graphql.tenant.errors import UserInputError

    try:
        return count(*args)
    except ValueError as e:  # weeks out of range: a Japanese message
        raise UserInputError(str(e)) from None


class LearningSubjectType(graphene.ObjectType):
    class Meta:
        name = "LearningSubject"

    subject = graphene.String(
        required=True, description="教科（学習ツールの記録のまま。記録がなければ空）"
    )
    minutes = graphene.Int(required=True, description="学習時間（分。時間の記録がない活動は 0）")
    activities = graphene.Int(required=True, description="活動の数（xAPI ステートメント・ドリル）")


class LearningWeekType(graphene.ObjectType):
    class Meta:
        name = "LearningWeek"
        description = "児童生徒の 1 週間（月曜〜日曜、基準日まで）の学習ツールの利用"

    week_start = graphene.Date(required=True, description="週の初め（月曜日）")
    minutes = graphene.Int(required=True)
    activities = graphene.Int(required=True)
    subjects = graphene.List(
        graphene.NonNull(LearningSubjectType), required=True, description="教科別（時間の多い順）"
    )


class ClassLearningWeekType(graphene.ObjectType):
    class Meta:
        name = "ClassLearningWeek"
        description = (
            "学級の 1 週間（月曜〜日曜、基準日まで）の学習時間。分析除外の申出がある児童生徒は"
            "含みません。"
        )

    week_start = graphene.Date(required=True, description="週の初め（月曜日）")
    pupils = graphene.Int(required=True, description="対象の児童生徒数")
    active_pupils = graphene.Int(required=True, description="学習ツールを使った児童生徒数")
    total_minutes = graphene.Int(required=True, description="学習時間の合計（分）")
    median_minutes = graphene.Float(
        required=True, description="1 人あたり学習時間の中央値（分。使わなかった児童生徒は 0）"
    )


# -- alerts ---------------------------------------------------------------------------------


class AlertRuleType(graphene.ObjectType):
    class Meta:
        name = "AlertRuleDescription"
        description = "アラートの規則としきい値（自治体の設定）。点数や予測は使いません。"

    rule = graphene.Field(AlertRuleEnum, required=True)
    threshold = graphene.Int(required=True, description="しきい値（日）")
    description = graphene.String(required=True)


class AlertType(graphene.ObjectType):
    class Meta:
        name = "Alert"
        description = "規則に当てはまった事実。message はそのまま教員に見せる日本語の文です。"

    rule = graphene.Field(AlertRuleEnum, required=True)
    days = graphene.Int(required=True, description="数えた欠席日数")
    threshold = graphene.Int(required=True)
    first_date = graphene.Date()
    last_date = graphene.Date()
    message = graphene.String(required=True)


class AbsenceSummaryType(graphene.ObjectType):
    class Meta:
        name = "AbsenceSummary"
        description = "出欠記録から数えた欠席日数（出席停止・忌引は含みません）"

    as_of = graphene.Date(required=True)
    this_month = graphene.Int(required=True)
    this_school_year = graphene.Int(required=True)
    consecutive = graphene.Int(required=True, description="直近の連続欠席日数（授業日）")
    consecutive_from = graphene.Date()
    consecutive_to = graphene.Date()

    @staticmethod
    def from_summary(s: alerts.AbsenceSummary) -> AbsenceSummaryType:
        return AbsenceSummaryType(
            as_of=s.as_of,
            this_month=s.month_days,
            this_school_year=s.year_days,
            consecutive=s.run_days,
            consecutive_from=s.run_first,
            consecutive_to=s.run_last,
        )


# -- pupils -----------------------------------------------------------------------------------


class PupilType(graphene.ObjectType):
    """One pupil as their school's staff see them. Reached only through the boards, whose
    resolvers obtained the pupil from the policy (and logged the read)."""

    class Meta:
        name = "Pupil"
        description = (
            "児童生徒（所属校の教職員が見るもの）。ボードからだけ取得でき、閲覧は記録されます。"
        )

    id = graphene.ID(required=True)
    name = graphene.String(required=True, description="氏名（識別情報。空の場合あり）")
    name_kana = graphene.String(required=True)
    grade = graphene.Int(required=True)
    sex = graphene.Field(SexEnum, required=True)
    left_on = graphene.Date(description="離籍日（卒業・転出・退学。在籍中は空、予定日は先の日付）")
    leaving_reason = graphene.Field(LeavingReasonEnum, description="離籍の理由（在籍中は空）")
    opted_out = graphene.Boolean(required=True, description="分析除外の申出があるか")
    school = graphene.Field(SchoolType, required=True)

    @staticmethod
    def resolve_id(student, info) -> int:
        return student.pk

    @staticmethod
    def resolve_name(student, info) -> str:
        return info.context.loaders.name.load(student.pk)[0]

    @staticmethod
    def resolve_name_kana(student, info) -> str:
        return info.context.loaders.name.load(student.pk)[1]

    @staticmethod
    def resolve_leaving_reason(student, info) -> str | None:
        return student.leaving_reason or None

    @staticmethod
    def resolve_opted_out(student, info) -> bool:
        return student.opted_out_at is not None

    @staticmethod
    def resolve_school(student, info):
        return info.context.loaders.school.load(student.school_id)


def _alerts_excluded_reason(student) -> str | None:
    return alerts.OPTED_OUT_NO_ALERTS if student.opted_out_at is not None else None


@dataclass
class ClassBoardRow:
    student: object
    attendance_number: int | None
    as_of: dt.date
    # Every pupil id on the board: a child field announces them all to its loader, so the
    # first pupil's load fetches the whole class in one query.
    board_ids: tuple[int, ...] = ()


class AttendanceMarkType(graphene.ObjectType):
    class Meta:
        name = "AttendanceMark"
        description = "出欠の区分だけ（理由は含みません）"

    date = graphene.Date(required=True)
    status = graphene.Field(AttendanceStatusEnum, required=True)


class ClassBoardPupilType(graphene.ObjectType):
    class Meta:
        name = "ClassBoardPupil"

    pupil = graphene.Field(PupilType, required=True)
    attendance_number = graphene.Int(description="出席番号")
    absence_summary = graphene.Field(AbsenceSummaryType, required=True)
    alerts = graphene.List(graphene.NonNull(AlertType), required=True)
    alerts_excluded_reason = graphene.String(
        description="アラートの対象外である理由（分析除外の申出など）。対象なら null"
    )
    recent_attendance = graphene.List(
        graphene.NonNull(AttendanceMarkType),
        required=True,
        days=graphene.Int(default_value=14, description="基準日までの暦日数（1〜31）"),
    )

    @staticmethod
    def resolve_pupil(row: ClassBoardRow, info):
        return row.student

    @staticmethod
    def resolve_absence_summary(row: ClassBoardRow, info):
        loader = info.context.loaders.absence_summary
        loader.expect((pk, row.as_of) for pk in row.board_ids)
        return AbsenceSummaryType.from_summary(loader.load((row.student.pk, row.as_of)))

    @staticmethod
    def resolve_alerts(row: ClassBoardRow, info):
        loader = info.context.loaders.alerts
        loader.expect((pk, row.as_of) for pk in row.board_ids)
        return loader.load((row.student.pk, row.as_of))

    @staticmethod
    def resolve_alerts_excluded_reason(row: ClassBoardRow, info):
        return _alerts_excluded_reason(row.student)

    @staticmethod
    def resolve_recent_attendance(row: ClassBoardRow, info, days: int = 14):
        from renkei.graphql.tenant.errors import UserInputError

        if not 1 <= days <= 31:
            raise UserInputError("days は 1〜31 で指定してください。")
        start = row.as_of - dt.timedelta(days=days - 1)
        loader = info.context.loaders.recent_attendance
        loader.expect((pk, start, row.as_of) for pk in row.board_ids)
        return [
            AttendanceMarkType(date=r["date"], status=r["status"])
            for r in loader.load((row.student.pk, start, row.as_of))
        ]


class ClassBoardType(graphene.ObjectType):
    class Meta:
        name = "ClassBoard"
        description = "学級ボード: 学級の児童生徒と、規則によるアラート"

    homeroom = graphene.Field(HomeroomType, required=True)
    as_of = graphene.Date(required=True, description="基準日")
    rules = graphene.List(graphene.NonNull(AlertRuleType), required=True)
    pupils = graphene.List(graphene.NonNull(ClassBoardPupilType), required=True)
    learning_weeks = graphene.List(
        graphene.NonNull(ClassLearningWeekType),
        required=True,
        weeks=_weeks_arg(),
        description="学級の学習時間（週ごと、古い週から。分析除外の児童生徒は含みません）",
    )

    @staticmethod
    def resolve_learning_weeks(board: ClassBoardType, info, weeks: int = learning.DEFAULT_WEEKS):
        # An aggregate of the class: opted-out pupils are left out (DESIGN rule 3).
        ids = [row.student.pk for row in board.pupils if row.student.opted_out_at is None]
        return _learning(learning.class_weeks, ids, board.as_of, weeks)


# -- aggregates (metrics.compute, disclosure applied there) ---------------------------------


class MetricDefinitionType(graphene.ObjectType):
    class Meta:
        name = "MetricDefinition"

    name = graphene.String(required=True)
    label_ja = graphene.String(required=True)
    label_en = graphene.String(required=True)
    description_ja = graphene.String(required=True)
    description_en = graphene.String(required=True)
    unit = graphene.String(required=True)
    dimensions = graphene.List(
        graphene.NonNull(graphene.String), required=True, description="breakdown に指定できる次元"
    )
    categories = graphene.List(
        graphene.NonNull(graphene.String),
        required=True,
        description="常に内訳として付く、指標固有の区分",
    )


class MetricKeyPartType(graphene.ObjectType):
    class Meta:
        name = "MetricKeyPart"

    dimension = graphene.String(required=True)
    value = graphene.String(required=True, description="コード（_total は計）")
    label = graphene.String(required=True, description="日本語の表示名")
    label_en = graphene.String(required=True, description="英語の表示名（English label）")


class MetricCellType(graphene.ObjectType):
    class Meta:
        name = "MetricCell"
        description = "秘匿されたセルは suppressed = true、値は null（0 ではありません）と理由"

    key = graphene.List(graphene.NonNull(MetricKeyPartType), required=True)
    pupils = graphene.Int(description="セルの児童生徒数（秘匿時は null）")
    value = graphene.Float()
    suppressed = graphene.Boolean(required=True)
    reason = graphene.String(description="秘匿・算出不可の理由")
    reason_code = graphene.String()
    numerator = graphene.Int(description="value の分子（公開された値のみ）")
    denominator = graphene.Int(description="value の分母（公開された値のみ）")


class MetricTableType(graphene.ObjectType):
    class Meta:
        name = "MetricTable"
        description = "自治体内で秘匿処理（最小セルサイズ k、補完秘匿）を済ませた集計表"

    metric = graphene.String(required=True)
    municipality_code = graphene.String(required=True)
    school_code = graphene.String(description="学校別の集計のとき、その学校コード")
    school_year = graphene.Int(required=True)
    unit = graphene.String(required=True)
    dimensions = graphene.List(graphene.NonNull(graphene.String), required=True)
    k = graphene.Int(required=True, description="最小セルサイズ")
    cells = graphene.List(graphene.NonNull(MetricCellType), required=True)


# -- who asks, and where --------------------------------------------------------------------


class GrantType(graphene.ObjectType):
    class Meta:
        name = "Grant"

    role = graphene.Field(RoleEnum, required=True)
    role_label = graphene.String(required=True)
    school_codes = graphene.List(graphene.NonNull(graphene.String), required=True)


class TokenInfoType(graphene.ObjectType):
    class Meta:
        name = "TokenInfo"
        description = "使用中の API トークン（秘密の値は含みません）"

    name = graphene.String(required=True)
    prefix = graphene.String(required=True)
    kind = graphene.String(required=True)
    metrics = graphene.List(graphene.NonNull(graphene.String), required=True)
    expires_at = graphene.DateTime(required=True)


class ViewerType(graphene.ObjectType):
    class Meta:
        name = "Viewer"

    username = graphene.String(required=True)
    grants = graphene.List(
        graphene.NonNull(GrantType), required=True, description="この自治体での役割"
    )
    step_up = graphene.Boolean(
        required=True, description="二要素認証済みか（要配慮情報の表示に必要）"
    )
    auth = graphene.String(required=True, description="session または token")
    token = graphene.Field(TokenInfoType)


class MunicipalityType(graphene.ObjectType):
    class Meta:
        name = "Municipality"

    code = graphene.String(required=True)
    name = graphene.String(required=True)
    prefecture_name = graphene.String(required=True)
    min_cell_size = graphene.Int(required=True, description="集計の最小セルサイズ k")
    alert_rules = graphene.List(graphene.NonNull(AlertRuleType), required=True)

    @staticmethod
    def resolve_prefecture_name(m, info) -> str:
        return m.prefecture.name

    @staticmethod
    def resolve_alert_rules(m, info):
        return alerts.describe_rules(alerts.Thresholds.of(m))


# -- the student board ----------------------------------------------------------------------


class AttendanceRecordType(graphene.ObjectType):
    class Meta:
        name = "AttendanceRecord"
        description = "1 年度の出欠の記録（指導要録の欄）。出欠簿の記録から数えた日数です。"

    school_days = graphene.Int(required=True, description="授業日数（出欠簿に記録のある日）")
    excused_days = graphene.Int(required=True, description="出席停止・忌引等の日数")
    required_days = graphene.Int(required=True, description="出席しなければならない日数")
    absence_days = graphene.Int(required=True, description="欠席日数")
    attended_days = graphene.Int(required=True, description="出席日数")


class PupilSchoolYearType(graphene.ObjectType):
    class Meta:
        name = "PupilSchoolYear"
        description = (
            "個人カルテの 1 年度: その年度の学級（前の学校のものを含む）と出欠の記録。"
            "テストと評価は StudentBoard の assessments / evaluations に schoolYear を指定します。"
        )

    school_year = graphene.Int(required=True)
    homeroom = graphene.Field(HomeroomType, description="その年度の学級（名簿にない年度は null）")
    attendance_number = graphene.Int()
    attendance = graphene.Field(
        AttendanceRecordType, description="出欠の記録（出欠簿にその年度の記録がなければ null）"
    )


MAX_RANGE_DAYS = 400


@dataclass
class StudentBoardData:
    student: object
    as_of: dt.date

    @cached_property
    def enrollment(self):
        """The pupil's enrollment in the school year of ``as_of`` (one query, if asked)."""
        from renkei.edudata.models import Enrollment, school_year_of

        return (
            Enrollment.objects.filter(
                student=self.student, homeroom__school_year=school_year_of(self.as_of)
            )
            .select_related("homeroom")
            .order_by("-id")
            .first()
        )


def _range(
    board: StudentBoardData, since: dt.date | None, until: dt.date | None
) -> tuple[dt.date, dt.date]:
    from renkei.edudata.models import school_year_bounds, school_year_of
    from renkei.graphql.tenant.errors import UserInputError

    start = since or school_year_bounds(school_year_of(board.as_of))[0]
    end = until or board.as_of
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise UserInputError(f"期間は開始日 ≦ 終了日、{MAX_RANGE_DAYS} 日以内で指定してください。")
    return start, end


def _range_args() -> dict:
    return {
        "since": graphene.Date(description="開始日（省略時は基準日の年度の 4 月 1 日）"),
        "until": graphene.Date(description="終了日（省略時は基準日）"),
    }


class StudentBoardType(graphene.ObjectType):
    class Meta:
        name = "StudentBoard"
        description = (
            "児童生徒ボード（所属校の教員・管理職のみ。閲覧は記録されます）。"
            "要配慮情報（欠席等の理由・症状・保健室の記録・アンケート）を選ぶと、"
            "二要素認証をしていない場合はボード全体が STEP_UP_REQUIRED で拒否されます。"
        )

    pupil = graphene.Field(PupilType, required=True)
    as_of = graphene.Date(required=True)
    homeroom = graphene.Field(HomeroomType, description="基準日の年度の学級")
    attendance_number = graphene.Int()
    attendance = graphene.List(graphene.NonNull(AttendanceDayType), required=True, **_range_args())
    health = graphene.List(graphene.NonNull(HealthObservationType), required=True, **_range_args())
    nurse_visits = graphene.List(graphene.NonNull(NurseVisitType), required=True, **_range_args())
    assessments = graphene.List(
        graphene.NonNull(AssessmentResultType), required=True, school_year=graphene.Int()
    )
    evaluations = graphene.List(
        graphene.NonNull(SubjectEvaluationType), required=True, school_year=graphene.Int()
    )
    m365_usage = graphene.List(graphene.NonNull(M365UsageType), required=True, **_range_args())
    learning_weeks = graphene.List(
        graphene.NonNull(LearningWeekType),
        required=True,
        weeks=_weeks_arg(),
        description="学習ツールの利用（週ごと、古い週から）",
    )
    school_years = graphene.List(
        graphene.NonNull(PupilSchoolYearType),
        required=True,
        count=graphene.Int(
            default_value=3, description=f"基準日の年度からさかのぼる年数（1〜{karte.MAX_YEARS}）"
        ),
        description="個人カルテ: 基準日の年度から新しい順に、記録のある年度だけ",
    )
    surveys = graphene.List(graphene.NonNull(SurveyResponseType), required=True, **_range_args())
    absence_summary = graphene.Field(AbsenceSummaryType, required=True)
    alerts = graphene.List(graphene.NonNull(AlertType), required=True)
    alerts_excluded_reason = graphene.String()

    @staticmethod
    def resolve_pupil(board: StudentBoardData, info):
        return board.student

    @staticmethod
    def resolve_homeroom(board: StudentBoardData, info):
        return board.enrollment.homeroom if board.enrollment else None

    @staticmethod
    def resolve_attendance_number(board: StudentBoardData, info):
        return board.enrollment.attendance_number if board.enrollment else None

    @staticmethod
    def resolve_attendance(board: StudentBoardData, info, since=None, until=None):
        start, end = _range(board, since, until)
        return board.student.attendance.filter(date__range=(start, end)).order_by("date")

    @staticmethod
    def resolve_health(board: StudentBoardData, info, since=None, until=None):
        start, end = _range(board, since, until)
        return board.student.health.filter(date__range=(start, end)).order_by("date")

    @staticmethod
    def resolve_nurse_visits(board: StudentBoardData, info, since=None, until=None):
        start, end = _range(board, since, until)
        visits = board.student.nurse_visits.filter(visited_at__date__range=(start, end))
        if not info.context.principal.step_up:  # 心の相談 is sensitive: not even that it happened
            visits = visits.exclude(reason_category__in=SENSITIVE_NURSE_REASONS)
        return visits.order_by("visited_at")

    @staticmethod
    def resolve_assessments(board: StudentBoardData, info, school_year=None):
        from renkei.edudata.models import school_year_of

        year = school_year or school_year_of(board.as_of)
        return board.student.assessments.filter(school_year=year).order_by("taken_on", "subject")

    @staticmethod
    def resolve_evaluations(board: StudentBoardData, info, school_year=None):
        from renkei.edudata.models import school_year_of

        year = school_year or school_year_of(board.as_of)
        return board.student.evaluations.filter(school_year=year).order_by("term", "subject")

    @staticmethod
    def resolve_school_years(board: StudentBoardData, info, count: int = 3):
        from renkei.edudata.models import school_year_of
        from renkei.graphql.tenant.errors import UserInputError

        try:
            years = karte.pupil_years(board.student, school_year_of(board.as_of), count)
        except ValueError as e:
            raise UserInputError(str(e)) from None
        for year in years:
            if year.homeroom is not None:
                info.context.loaders.school.prime(year.homeroom.school_id, year.homeroom.school)
        return years

    # Usage and learning logs are analysis (docs/rights.md): none for an opted-out pupil,
    # whatever was imported before the opt-out (the board says why: pupil.optedOut).
    @staticmethod
    def resolve_m365_usage(board: StudentBoardData, info, since=None, until=None):
        start, end = _range(board, since, until)
        if board.student.opted_out_at is not None:
            return []
        return board.student.m365_usage.filter(date__range=(start, end)).order_by("date", "app")

    @staticmethod
    def resolve_learning_weeks(board: StudentBoardData, info, weeks: int = learning.DEFAULT_WEEKS):
        if board.student.opted_out_at is not None:
            _learning(learning.week_starts, board.as_of, weeks)  # the same refusal of bad weeks
            return []
        return _learning(learning.pupil_weeks, board.student.pk, board.as_of, weeks)

    @staticmethod
    def resolve_surveys(board: StudentBoardData, info, since=None, until=None):
        policy.check_fields(info.context.principal, SurveyResponse, ["answers"])
        start, end = _range(board, since, until)
        principal, municipality = info.context.principal, info.context.municipality
        readable = board.student.pk in access.free_comment_readers(
            principal, municipality, [board.student]
        )
        rows = list(
            board.student.surveys.filter(answered_on__range=(start, end)).order_by("answered_on")
        )
        for row in rows:
            row.free_comment_readable = readable
        return rows

    @staticmethod
    def resolve_absence_summary(board: StudentBoardData, info):
        summary = info.context.loaders.absence_summary.load((board.student.pk, board.as_of))
        return AbsenceSummaryType.from_summary(summary)

    @staticmethod
    def resolve_alerts(board: StudentBoardData, info):
        info.context.loaders.student.prime(board.student.pk, board.student)
        return info.context.loaders.alerts.load((board.student.pk, board.as_of))

    @staticmethod
    def resolve_alerts_excluded_reason(board: StudentBoardData, info):
        return _alerts_excluded_reason(board.student)
