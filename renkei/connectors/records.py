"""Canonical records: what a connector yields, one pydantic model per edudata entity.

Pupils are referred to by their id in the connector's source system (``student_source_id``),
or for Microsoft 365 by user principal name; the pipeline resolves them through the roster
(``StudentIdentity``) and never stores those ids in analytics tables.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from renkei.edudata.codes import AttendanceStatus, HealthCondition, NurseVisitReason, Sex
from renkei.tenants.codes import CodeError, validate_school_code

_JAPAN = zoneinfo.ZoneInfo("Asia/Tokyo")


class Origin(BaseModel):
    """Where a record came from, for the quarantine and the error report."""

    model_config = ConfigDict(frozen=True)
    file: str
    line: int


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    stream: ClassVar[str]
    origin: Origin | None = Field(default=None, exclude=True)


def _school_code(value: str) -> str:
    try:
        return validate_school_code(value)
    except CodeError as e:
        raise ValueError(str(e)) from None


class SchoolRecord(Record):
    stream: ClassVar[str] = "schools"
    code: str
    name: str = Field(min_length=1, max_length=100)

    _check_code = field_validator("code")(_school_code)

    @property
    def school_type(self) -> str:
        return self.code[:2]


class HomeroomRecord(Record):
    stream: ClassVar[str] = "homerooms"
    school_code: str
    school_year: int = Field(ge=2000, le=2100)
    grade: int = Field(ge=1, le=12)
    name: str = Field(min_length=1, max_length=50)

    _check_code = field_validator("school_code")(_school_code)


class StudentRecord(Record):
    stream: ClassVar[str] = "students"
    source_id: str = Field(min_length=1, max_length=100)
    school_code: str
    grade: int = Field(ge=1, le=12)
    birth_year_month: str = ""
    sex: Literal["male", "female", "other", "unspecified"] = "unspecified"
    # Leaving (卒業・転出・退学): a reason with its day, or one of the per-reason days that
    # vendor rosters carry as columns (卒業日, 転出日, 退学日), which become the same two
    # fields. A reason without a day means "left, day not given": the import's day, unless a
    # day is known already. Nothing given says nothing: a known leaving is never erased.
    graduation_date: dt.date | None = Field(default=None, exclude=True)
    transfer_date: dt.date | None = Field(default=None, exclude=True)
    withdrawal_date: dt.date | None = Field(default=None, exclude=True)
    left_on: dt.date | None = None
    # "" (a movement code that is no leaving, such as 転入): the row says nothing about it.
    leaving_reason: Literal["graduated", "transferred", "withdrew", ""] | None = Field(
        default=None, validate_default=True
    )
    family_name: str = Field(default="", max_length=50)
    given_name: str = Field(default="", max_length=50)
    family_name_kana: str = Field(default="", max_length=50)
    given_name_kana: str = Field(default="", max_length=50)
    principal_name: str = Field(default="", max_length=254)
    # Ids of the same pupil in other systems (OneRoster userIds, e.g. {"c4th": "12345"}).
    other_ids: dict[str, str] = Field(default_factory=dict)

    _check_code = field_validator("school_code")(_school_code)

    @field_validator("birth_year_month")
    @classmethod
    def _year_month(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
            raise ValueError(f"生年月「{value}」は YYYY-MM の形ではありません")
        return value

    # Field validators (fields are validated in order, each sees those before it): an error
    # then names the column it is about.
    @field_validator("graduation_date", "transfer_date", "withdrawal_date", "left_on")
    @classmethod
    def _one_leaving_not_far_ahead(
        cls, day: dt.date | None, info: ValidationInfo
    ) -> dt.date | None:
        if day is None:
            return day
        label = _LEAVING_LABELS[info.field_name or ""]
        if day > leaving_horizon():
            raise ValueError(
                f"{label} {day.isoformat()} は 1 年以上先の日付です。予定日なら 1 年以内のもの"
                "だけを載せ、日付の誤りなら直してください"
            )
        earlier = [
            _LEAVING_LABELS[name]
            for name in ("graduation_date", "transfer_date", "withdrawal_date")
            if name != info.field_name and info.data.get(name) is not None
        ]
        if earlier:
            raise ValueError(
                f"{earlier[0]}と{label}の両方が入っています。離籍はどちらか一つにしてください"
            )
        return day

    @field_validator("leaving_reason")
    @classmethod
    def _day_has_a_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if reason is None and info.data.get("left_on") is not None:
            raise ValueError("離籍日がありますが、離籍の理由（卒業・転出・退学）がありません")
        return reason

    @model_validator(mode="after")
    def _per_reason_day(self) -> StudentRecord:
        if self.leaving_reason == "":
            object.__setattr__(self, "left_on", None)
            object.__setattr__(self, "leaving_reason", None)
        for name, reason in _PER_REASON_DAYS.items():
            if (day := getattr(self, name)) is not None:
                object.__setattr__(self, "left_on", day)  # (a frozen record, being built)
                object.__setattr__(self, "leaving_reason", reason)
        return self


_LEAVING_LABELS = {
    "graduation_date": "卒業日",
    "transfer_date": "転出日",
    "withdrawal_date": "退学日",
    "left_on": "離籍日",
}
_PER_REASON_DAYS = {
    "graduation_date": "graduated",
    "transfer_date": "transferred",
    "withdrawal_date": "withdrew",
}


def leaving_horizon() -> dt.date:
    """The latest leaving day a roster may give: a year from today (Japan). A roster made
    before 卒業式 gives the day ahead; a day further off is a typing error."""
    today = dt.datetime.now(_JAPAN).date()
    return (
        today.replace(year=today.year + 1)
        if (today.month, today.day) != (2, 29)
        else (today.replace(year=today.year + 1, day=28))
    )


class RosterScopeRecord(Record):
    """A roster that is the whole truth for some schools and school years (a OneRoster bulk
    set) says so with this declaration, once, after its pupils: a pupil of those schools whom
    this source knew and who is not in ``listed`` has left (privacy docs: leaving). It is
    not a row of the input and is not counted as one. ``listed``: every pupil id of the
    roster file, read or rejected, so that a row with an error is never taken for a
    leaving."""

    stream: ClassVar[str] = "roster_scope"
    school_codes: list[str] = Field(min_length=1)
    school_years: list[int] = Field(min_length=1)
    listed: list[str]


class EnrollmentRecord(Record):
    stream: ClassVar[str] = "enrollments"
    student_source_id: str = Field(min_length=1)
    school_code: str
    school_year: int = Field(ge=2000, le=2100)
    homeroom_name: str = Field(min_length=1, max_length=50)
    attendance_number: int | None = Field(default=None, ge=1, le=999)


class AttendanceRecord(Record):
    stream: ClassVar[str] = "attendance"
    student_source_id: str = Field(min_length=1)
    date: dt.date
    status: AttendanceStatus
    reason: str = Field(default="", max_length=200)


class HealthObservationRecord(Record):
    stream: ClassVar[str] = "health"
    student_source_id: str = Field(min_length=1)
    date: dt.date
    condition: HealthCondition
    symptoms: str = Field(default="", max_length=200)


class NurseVisitRecord(Record):
    stream: ClassVar[str] = "nurse_visits"
    student_source_id: str = Field(min_length=1)
    visited_at: dt.datetime
    reason_category: NurseVisitReason
    note: str = Field(default="", max_length=2000)


class AssessmentRecord(Record):
    stream: ClassVar[str] = "assessments"
    student_source_id: str = Field(min_length=1)
    school_year: int = Field(ge=2000, le=2100)
    kind: Literal["periodic", "unit", "survey"]
    name: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=40)
    taken_on: dt.date
    score: Decimal = Field(ge=0, max_digits=6, decimal_places=1)
    max_score: Decimal = Field(gt=0, max_digits=6, decimal_places=1)

    @model_validator(mode="after")
    def _score_within_max(self) -> AssessmentRecord:
        if self.score > self.max_score:
            raise ValueError(f"得点 {self.score} が満点 {self.max_score} を超えています")
        return self


class EvaluationRecord(Record):
    stream: ClassVar[str] = "evaluations"
    student_source_id: str = Field(min_length=1)
    school_year: int = Field(ge=2000, le=2100)
    term: str = Field(min_length=1, max_length=20)
    subject: str = Field(min_length=1, max_length=40)
    rating: int | None = Field(default=None, ge=1, le=5)
    viewpoints: dict[str, Literal["A", "B", "C"]] = Field(default_factory=dict)


class M365UsageRecord(Record):
    stream: ClassVar[str] = "m365_usage"
    principal_name: str = Field(min_length=3, max_length=254)
    date: dt.date
    app: str = Field(min_length=1, max_length=20)
    active: bool = True


class _LearningActivity(Record):
    """活動情報: one learning event (an xAPI statement, a drill session). The two records
    below add how it names its pupil."""

    verb: str = Field(min_length=1, max_length=100)
    object_id: str = Field(min_length=1, max_length=300)
    object_name: str = Field(default="", max_length=200)
    occurred_at: AwareDatetime
    duration_seconds: int | None = Field(default=None, ge=0, le=24 * 3600)
    source_system: str = Field(min_length=1, max_length=40)
    subject: str = Field(default="", max_length=40)
    items_attempted: int | None = Field(default=None, ge=0, le=100_000)
    items_correct: int | None = Field(default=None, ge=0, le=100_000)
    statement_id: str = Field(default="", max_length=36)

    # A field validator (items_attempted is validated before it): the error then names the
    # column of the correct answers.
    @field_validator("items_correct")
    @classmethod
    def _correct_within_attempted(cls, correct: int | None, info: ValidationInfo) -> int | None:
        attempted = info.data.get("items_attempted")
        if correct is not None and attempted is not None and correct > attempted:
            raise ValueError(f"正答数 {correct} が解答数 {attempted} より多くなっています")
        return correct


class LearningActivityRecord(_LearningActivity):
    """学習活動, its pupil named by the account they use (principal name), as xAPI
    statements and the Microsoft 365 reports do."""

    stream: ClassVar[str] = "learning_activity"
    principal_name: str = Field(min_length=1, max_length=254)


class LearningActivityByIdRecord(_LearningActivity):
    """学習活動, its pupil named by their id in a school system (``student_source_id``, of
    the connector's identity system), as a drill's export by 児童生徒ID does."""

    stream: ClassVar[str] = "learning_activity_by_id"
    student_source_id: str = Field(min_length=1)


class StatementVoidRecord(Record):
    """An xAPI voiding statement: the learning activity stored from the statement it names
    (``statement_id``, by an earlier import) is deleted. It names no pupil."""

    stream: ClassVar[str] = "voided_statements"
    statement_id: str = Field(min_length=36, max_length=36)


class SurveyRecord(Record):
    """A survey answer such as a 心の天気 check-in (sensitive: school-only, after step-up,
    in no figure), its pupil named by the account they answered with."""

    stream: ClassVar[str] = "surveys"
    principal_name: str = Field(min_length=1, max_length=254)
    survey: str = Field(min_length=1, max_length=100)
    answered_on: dt.date
    answers: dict[str, str] = Field(min_length=1)

    @field_validator("answers")
    @classmethod
    def _bounded(cls, answers: dict[str, str]) -> dict[str, str]:
        for key, value in answers.items():
            if len(value) > 2000:
                raise ValueError(f"「{key}」が長すぎます（2000 文字まで）")
        return answers


RECORD_TYPES: dict[str, type[Record]] = {
    r.stream: r
    for r in (
        SchoolRecord,
        HomeroomRecord,
        StudentRecord,
        RosterScopeRecord,
        EnrollmentRecord,
        AttendanceRecord,
        HealthObservationRecord,
        NurseVisitRecord,
        AssessmentRecord,
        EvaluationRecord,
        M365UsageRecord,
        LearningActivityRecord,
        LearningActivityByIdRecord,
        StatementVoidRecord,
        SurveyRecord,
    )
}
SEX_VALUES = tuple(Sex.values)
