"""Code lists of the education data model (choices). Plain enums with no model, so the
connector SDK can use them without a configured Django project."""

import datetime as dt

from django.db.models import TextChoices


class Sex(TextChoices):
    MALE = "male", "男"
    FEMALE = "female", "女"
    OTHER = "other", "その他"
    UNSPECIFIED = "unspecified", "未回答"


class LeavingReason(TextChoices):
    """Why a pupil left the municipality's schools (卒業・転出・退学). Retention counts from
    the day they left, whatever the reason."""

    GRADUATED = "graduated", "卒業"
    TRANSFERRED = "transferred", "転出"
    WITHDREW = "withdrew", "退学"


# The last grade of each school type (as grades are stored: within the school, so 1-9 in a
# 義務教育学校 and 1-6 in a 中等教育学校). A pupil who leaves from it at the end of the school
# year graduated; 特別支援学校 (E1) has departments with their own grades and is left out.
FINAL_GRADES = {"B1": 6, "C1": 3, "C2": 9, "D1": 3, "D2": 6}


def is_final_grade(school_type: str, grade: int) -> bool:
    return FINAL_GRADES.get(school_type) == grade


def school_year_of(day: dt.date) -> int:
    """年度: the school year starts in April, so 2026-03-31 belongs to 2025."""
    return day.year if day.month >= 4 else day.year - 1


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

# 長期欠席: absent (ABSENCE_STATUSES) on this many days or more in one school year.
LONG_TERM_DAYS = 30


class LongAbsenceReason(TextChoices):
    """The main reason of a pupil's long-term absence in one school year, as MEXT's annual
    児童生徒の問題行動・不登校等生徒指導上の諸課題に関する調査 asks it (its categories since
    令和2年度). The school decides it; attendance alone cannot tell 不登校 from illness."""

    ILLNESS = "illness", "病気"
    ECONOMIC = "economic", "経済的理由"
    FUTOKO = "futoko", "不登校"
    COVID = "covid", "新型コロナウイルスの感染回避"
    OTHER = "other", "その他"


class HealthCondition(TextChoices):
    GOOD = "good", "良い"
    FAIR = "fair", "ふつう"
    POOR = "poor", "よくない"


class NurseVisitReason(TextChoices):
    INJURY = "injury", "けが"
    ILLNESS = "illness", "体調不良"
    MENTAL = "mental", "心の相談"
    OTHER = "other", "その他"


# 心の相談 is sensitive (DESIGN rules 6 and 7: feelings stay in the school): those visits are
# shown to the pupil's school after step-up and counted in no figure at all.
SENSITIVE_NURSE_REASONS = frozenset({NurseVisitReason.MENTAL})
COUNTED_NURSE_REASONS = tuple(
    r for r in NurseVisitReason.values if r not in SENSITIVE_NURSE_REASONS
)


class AssessmentKind(TextChoices):
    PERIODIC = "periodic", "定期考査"
    UNIT = "unit", "単元テスト"
    SURVEY = "survey", "学力調査"
