"""Code lists of the education data model (choices). Plain enums with no model, so the
connector SDK can use them without a configured Django project."""

from django.db.models import TextChoices


class Sex(TextChoices):
    MALE = "male", "男"
    FEMALE = "female", "女"
    OTHER = "other", "その他"
    UNSPECIFIED = "unspecified", "未回答"


class AttendanceStatus(TextChoices):
    PRESENT = "present", "出席"
    ABSENT_ILLNESS = "absent_illness", "欠席（病気）"
    ABSENT_ACCIDENT = "absent_accident", "欠席（事故）"
    ABSENT_OTHER = "absent_other", "欠席（その他）"
    LATE = "late", "遅刻"
    EARLY_LEAVE = "early_leave", "早退"
    SUSPENSION = "suspension", "出席停止"
    MOURNING = "mourning", "忌引"


# 出席停止 and 忌引 are not absences; late and early leave are attendance.
ABSENCE_STATUSES = frozenset(
    {
        AttendanceStatus.ABSENT_ILLNESS,
        AttendanceStatus.ABSENT_ACCIDENT,
        AttendanceStatus.ABSENT_OTHER,
    }
)
NOT_COUNTED_STATUSES = frozenset({AttendanceStatus.SUSPENSION, AttendanceStatus.MOURNING})


class HealthCondition(TextChoices):
    GOOD = "good", "良い"
    FAIR = "fair", "ふつう"
    POOR = "poor", "よくない"


class NurseVisitReason(TextChoices):
    INJURY = "injury", "けが"
    ILLNESS = "illness", "体調不良"
    MENTAL = "mental", "心の相談"
    OTHER = "other", "その他"


class AssessmentKind(TextChoices):
    PERIODIC = "periodic", "定期考査"
    UNIT = "unit", "単元テスト"
    SURVEY = "survey", "学力調査"
