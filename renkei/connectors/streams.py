"""The pupil-keyed data streams, each declared once: the record class gives the columns (its
fields, in order), the model gives the table, the staging types and the natural key (its
``*_natural_key`` unique constraint, less the pupil). Only what neither can say is written
here: the Japanese name of the key, and the date that places a row in a school year.

The roster streams (schools, homerooms, pupils, enrollments) are not here: they are upserted
through the ORM (``roster.py``), these are staged with COPY and inserted in SQL
(``staging.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from renkei.connectors import reading
from renkei.connectors.records import (
    AssessmentRecord,
    AttendanceRecord,
    EvaluationRecord,
    HealthObservationRecord,
    LearningActivityByIdRecord,
    LearningActivityRecord,
    M365UsageRecord,
    NurseVisitRecord,
    Record,
    SurveyRecord,
)
from renkei.edudata.models import (
    AssessmentResult,
    AttendanceDay,
    Enrollment,
    HealthObservation,
    Homeroom,
    LearningActivity,
    M365DailyUsage,
    NurseVisit,
    School,
    Student,
    StudentIdentity,
    SubjectEvaluation,
    SurveyResponse,
)

# The staging table's column type for a model field (reading.COPY_FORMAT writes each).
STAGING_TYPES = {
    "BooleanField": "boolean",
    "CharField": "text",
    "DateField": "date",
    "DateTimeField": "timestamptz",
    "DecimalField": "numeric",
    "IntegerField": "int",
    "JSONField": "jsonb",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "SmallIntegerField": "int",
    "TextField": "text",
}


@dataclass(frozen=True)
class StreamSpec:
    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (record attribute = target column, staging type)
    key: tuple[str, ...]  # natural key besides student_id
    ref: str = "student_source_id"  # how the record names its pupil
    date_column: str | None = None  # for the school years to refresh
    label: str = ""  # Japanese name of the natural key, for messages
    # Rows dated on a day the pupil was not enrolled are quarantined (staging.py): for records
    # a pupil makes (a check-in), which cannot exist outside their enrolment.
    only_enrolled_days: bool = False
    date_label: str = ""  # Japanese name of date_column, for messages
    # Rows that exist only for analysis (usage and learning logs): a pupil who opted out of
    # analysis has none imported; their rows are counted as skipped (docs/rights.md).
    analysis_only: bool = False
    model: type[models.Model] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "copy_text",
            reading.copy_text([self.ref, *self.names], ["text", *(t for _, t in self.columns)]),
        )

    # copy_text(record) -> the pupil reference and the column values as COPY text, set above
    # for speed: every row of every import goes through it.
    copy_text: Callable[[Record], str] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        record: type[Record],
        model: type[models.Model],
        *,
        label: str,
        date_column: str | None = None,
        only_enrolled_days: bool = False,
        analysis_only: bool = False,
    ) -> StreamSpec:
        """The stream of ``record`` rows stored as ``model``. A record field the model lacks,
        or a model without its natural key, fails here, when the module loads."""
        ref, *names = reading.copy_fields(record)
        try:
            columns = tuple(
                (name, STAGING_TYPES[model._meta.get_field(name).get_internal_type()])
                for name in names
            )
        except FieldDoesNotExist as e:
            raise ImproperlyConfigured(
                f"{record.__name__} has a field that {model.__name__} does not store: {e}"
            ) from None
        if only_enrolled_days and dict(columns).get(date_column) != "date":
            raise ImproperlyConfigured(
                f"{record.__name__}: only_enrolled_days needs date_column to name a DateField"
            )
        return cls(
            name=record.stream,
            table=model._meta.db_table,
            columns=columns,
            key=natural_key(model),
            ref=ref,
            date_column=date_column,
            label=label,
            only_enrolled_days=only_enrolled_days,
            analysis_only=analysis_only,
            date_label=str(model._meta.get_field(date_column).verbose_name) if date_column else "",
            model=model,
        )

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def updated(self) -> list[str]:
        """The columns an import may change in a stored row (all but the key)."""
        return [name for name in self.names if name not in self.key]

    @property
    def resolver(self) -> str:
        """SQL: (ref, student_id) of every pupil a record of this stream can name."""
        if self.ref == "principal_name":
            return (
                "(SELECT DISTINCT ON (lower(principal_name)) lower(principal_name) AS ref,"
                " student_id FROM edudata_studentidentity WHERE principal_name <> '' "
                "ORDER BY lower(principal_name), student_id)"
            )
        return (
            "(SELECT source_id AS ref, student_id FROM edudata_studentidentity "
            "WHERE source_system = %(system)s)"
        )

    @property
    def ref_key(self) -> str:
        """SQL: a staged row's pupil reference (alias ``s``) as the resolver has it."""
        return "lower(s.ref)" if self.ref == "principal_name" else "s.ref"

    @property
    def unknown(self) -> tuple[str, str]:
        """The column and the reason for a row whose pupil is not on the roster."""
        if self.ref == "principal_name":
            return "ユーザープリンシパル名", "名簿にない利用者です"
        return "児童生徒ID", "名簿にない児童生徒です"


def natural_key(model: type[models.Model]) -> tuple[str, ...]:
    """The fields of ``model``'s natural-key constraint, less the pupil (student_id)."""
    found = [
        c
        for c in model._meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.name.endswith("_natural_key")
    ]
    if len(found) != 1 or "student" not in found[0].fields:
        raise ImproperlyConfigured(
            f"{model.__name__} needs one UniqueConstraint named *_natural_key on the pupil "
            "and the fields that identify a row (the import inserts and updates by it)"
        )
    return tuple(f for f in found[0].fields if f != "student")


DATA_STREAMS = {
    s.name: s
    for s in (
        StreamSpec.of(
            AttendanceRecord, AttendanceDay, date_column="date", label="同じ児童生徒・日付"
        ),
        StreamSpec.of(
            HealthObservationRecord,
            HealthObservation,
            date_column="date",
            label="同じ児童生徒・日付",
        ),
        StreamSpec.of(
            NurseVisitRecord,
            NurseVisit,
            date_column="visited_at",
            label="同じ児童生徒・来室日時",
        ),
        StreamSpec.of(
            AssessmentRecord,
            AssessmentResult,
            date_column="taken_on",
            label="同じ児童生徒・年度・種別・テスト名・教科",
        ),
        StreamSpec.of(EvaluationRecord, SubjectEvaluation, label="同じ児童生徒・年度・学期・教科"),
        StreamSpec.of(
            M365UsageRecord,
            M365DailyUsage,
            date_column="date",
            label="同じ利用者・日付・アプリ",
            analysis_only=True,
        ),
        StreamSpec.of(
            LearningActivityRecord,
            LearningActivity,
            date_column="occurred_at",
            label="同じ利用者・動詞・対象・日時",
            analysis_only=True,
        ),
        StreamSpec.of(  # the same table, its pupils named by a school system's ids
            LearningActivityByIdRecord,
            LearningActivity,
            date_column="occurred_at",
            label="同じ児童生徒・動詞・対象・日時",
            analysis_only=True,
        ),
        StreamSpec.of(
            SurveyRecord,
            SurveyResponse,
            date_column="answered_on",
            label="同じ児童生徒・アンケート・回答日",
            only_enrolled_days=True,
        ),
    )
}

# Where the roster streams land (roster.py upserts them).
ROSTER_MODELS: dict[str, tuple[type[models.Model], ...]] = {
    "schools": (School,),
    "homerooms": (Homeroom,),
    "students": (Student, StudentIdentity),
    "enrollments": (Enrollment,),
}


def models_filled_by(stream: str) -> tuple[type[models.Model], ...]:
    """The models a stream's records are stored as (none for a stream that only removes
    rows, such as voided xAPI statements)."""
    if stream in DATA_STREAMS:
        return (DATA_STREAMS[stream].model,)
    return ROSTER_MODELS.get(stream, ())
