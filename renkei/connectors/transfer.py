"""転校 transfer out: the action that makes one pupil's transfer package (docs/transfer.md).

With the guardian's consent recorded, the sending municipality exports the pupil's roster entry
(OneRoster 1.2 CSV), the records that follow a pupil to the next school (JSON) and their
learning logs (xAPI), sealed for one destination municipality under a one-time transfer code
(``transfer_package``). The receiving Renkei imports it with the ``transfer`` connector. The
pupil stays here: leaving is the roster's business.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from renkei.accounts import policy
from renkei.connectors.builtin.oneroster_jp import JP_HEADERS
from renkei.connectors.transfer_package import FORMAT, FORMAT_VERSION, new_transfer_code, seal
from renkei.edudata import access
from renkei.edudata.models import (
    AssessmentResult,
    AttendanceDay,
    Enrollment,
    HealthObservation,
    LearningActivity,
    NurseVisit,
    Student,
    StudentIdentity,
    SubjectEvaluation,
    TransferOut,
    school_year_bounds,
    school_year_of,
)
from renkei.platform import audit
from renkei.platform.storage import get_storage
from renkei.tenants.codes import CodeError, validate_municipality_code, validate_school_code

# The records that go with the pupil, as (file in the package, model, fields). The rule
# (docs/transfer.md): what the law sends to the next school anyway (指導要録の写し: 学籍,
# 出欠, 評定・観点別評価; 健康診断票 and the school's health records) and the pupil's own test
# results and learning logs (data portability). Staff's own writing stays: 共有配慮事項・
# 日常所見, 支援記録, 長期欠席の理由の分類, 保健室の記録欄 (free text), and answers about feelings
# (心の天気). Microsoft 365 use belongs to the old municipality's accounts.
RECORDS: tuple[tuple[str, type, tuple[str, ...]], ...] = (
    ("attendance", AttendanceDay, ("date", "status", "reason")),
    ("health", HealthObservation, ("date", "condition", "symptoms")),
    ("nurse_visits", NurseVisit, ("visited_at", "reason_category")),
    (
        "assessments",
        AssessmentResult,
        ("school_year", "kind", "name", "subject", "taken_on", "score", "max_score"),
    ),
    ("evaluations", SubjectEvaluation, ("school_year", "term", "subject", "rating", "viewpoints")),
)
NOT_INCLUDED = (
    "共有配慮事項・日常所見",
    "支援記録",
    "長期欠席の理由の分類",
    "保健室利用の記録欄（自由記述）",
    "アンケート回答（心の天気など）",
    "Microsoft 365 の利用状況",
    "閲覧記録",
)
ONEROSTER_FILES = (
    "academicSessions",
    "orgs",
    "classes",
    "demographics",
    "roles",
    "users",
    "enrollments",
)
XAPI_FILE = "xapi/statements.jsonl"
XAPI_ACCOUNT_HOME = "https://renkei.example/transfer"
XAPI_EXTENSION = "https://renkei.example/xapi/extensions/"
FORBIDDEN_TRANSFER = gettext_lazy(
    "転校パッケージを作れるのは、自治体管理者か、その児童生徒の学校の管理職だけです"
    "（二要素認証での本人確認が必要です）。"
)


class TransferError(ValueError):
    """A transfer that cannot be made as asked (Japanese message, nothing was written)."""


@dataclass(frozen=True)
class Consent:
    given_by: str  # the guardian, as the consent form names them (氏名・続柄)
    given_on: dt.date


@dataclass(frozen=True)
class Exported:
    transfer: TransferOut
    code: str  # the one-time transfer code: shown once, never stored
    filename: str


def grade_code(school_type: str, grade: int) -> str:
    """The OneRoster Japan profile's grade code for a grade within a school of that type."""
    if school_type == "C1":
        return f"J{grade}"
    if school_type == "D1":
        return f"H{grade}"
    if school_type == "C2" and grade > 6:
        return f"J{grade - 6}"
    if school_type == "D2":
        return f"J{grade}" if grade <= 3 else f"H{grade - 3}"
    return f"P{grade}"


def do_export_transfer(
    principal: policy.Principal,
    municipality,
    student: Student,
    *,
    destination_code: str,
    consent: Consent | None,
    destination_school_code: str = "",
) -> Exported:
    """Make the transfer package of ``student`` for ``destination_code``: checks, then one
    transaction writes the record of it (with the consent) and its audit event, and the
    package goes to the tenant's storage. Raises AccessDenied or TransferError."""
    policy.require(
        policy.may_transfer_pupil(principal, municipality, student.school.code),
        str(FORBIDDEN_TRANSFER),
    )
    consent = _checked_consent(consent)
    destination_code = (destination_code or "").strip()
    try:
        validate_municipality_code(destination_code)
    except CodeError as e:
        raise TransferError(_("転出先の自治体コード: %(error)s") % {"error": e}) from None
    if destination_code == municipality.code:
        raise TransferError(
            _("転出先がこの自治体です。同じ自治体の中での転校は名簿の取り込みで扱います。")
        )
    destination_school_code = (destination_school_code or "").strip().upper()
    if destination_school_code:
        try:
            validate_school_code(destination_school_code)
        except CodeError as e:
            raise TransferError(_("転出先の学校コード: %(error)s") % {"error": e}) from None

    transfer_id = uuid.uuid4()
    now = timezone.now()
    code = new_transfer_code()
    manifest, files = _contents(
        municipality, student, transfer_id, now, principal.username, consent
    )
    manifest["destination_municipality"] = {"code": destination_code}
    if destination_school_code:
        manifest["destination_school"] = {"code": destination_school_code}
    package = seal(manifest, files, code)
    filename = f"transfer-{str(transfer_id)[:8]}.zip"
    key = f"transfers/{transfer_id}/{filename}"
    with transaction.atomic():
        transfer = TransferOut.objects.create(
            student=student,
            transfer_id=transfer_id,
            destination_code=destination_code,
            destination_school_code=destination_school_code,
            consent_given_by=consent.given_by,
            consent_given_on=consent.given_on,
            exported_at=now,
            exported_by=principal.username[:150],
            package_path=key,
            package_sha256=hashlib.sha256(package).hexdigest(),
        )
        access.log_pupil_read(
            principal, [student], what="transfer_export", via="web", sensitive=True
        )
        audit.record(
            principal.actor(municipality),
            "transfer.export",
            municipality_code=municipality.code,
            target=f"児童生徒 {student.pseudonym}",
            changes={
                "transfer_id": str(transfer_id),
                "destination": destination_code,
                "records": manifest["contents"]["records"],
                "statements": manifest["contents"]["xapi_statements"],
            },
        )
        get_storage().save(municipality.code, key, io.BytesIO(package))
    return Exported(transfer=transfer, code=code, filename=filename)


def _checked_consent(consent: Consent | None) -> Consent:
    if consent is None or not consent.given_by.strip() or consent.given_on is None:
        raise TransferError(
            _(
                "保護者の同意が記録されていません。同意した保護者（氏名・続柄）と同意日を"
                "入力してから作成してください。転校パッケージは作成していません。"
            )
        )
    if consent.given_on > timezone.localdate():
        raise TransferError(_("同意日に未来の日付は指定できません。"))
    return Consent(given_by=consent.given_by.strip()[:100], given_on=consent.given_on)


# -- what goes in -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def _contents(
    municipality, student: Student, transfer_id: uuid.UUID, now, username: str, consent: Consent
) -> tuple[dict[str, Any], dict[str, bytes]]:
    school = student.school
    enrollment = (
        Enrollment.objects.filter(student=student)
        .select_related("homeroom")
        .order_by("-homeroom__school_year", "-pk")
        .first()
    )
    school_year = enrollment.homeroom.school_year if enrollment else school_year_of(now.date())
    files = _oneroster(municipality, student, transfer_id, enrollment, school_year, now)
    counts: dict[str, int] = {}
    for name, model, fields in RECORDS:
        rows = list(model.objects.filter(student=student).order_by("pk").values(*fields))
        counts[name] = len(rows)
        files[f"records/{name}.json"] = json.dumps(
            rows, ensure_ascii=False, default=_json, indent=1
        ).encode("utf-8")
    statements = [
        _statement(a, transfer_id)
        for a in LearningActivity.objects.filter(student=student).order_by("occurred_at", "pk")
    ]
    if statements:
        files[XAPI_FILE] = "".join(
            json.dumps(s, ensure_ascii=False) + "\n" for s in statements
        ).encode("utf-8")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "transfer_id": str(transfer_id),
        "sending_municipality": {"code": municipality.code, "name": municipality.name},
        "destination_municipality": {},
        "created_at": now.isoformat(),
        "created_by": username,
        "sending_school": {"code": school.code, "name": school.name},
        "school_year": school_year,
        "pupil": {"grade": student.grade},
        "consent": {
            "given_by": consent.given_by,
            "given_on": consent.given_on.isoformat(),
            "recorded_by": username,
        },
        "contents": {
            "oneroster": [f"oneroster/{n}.csv" for n in ("manifest", *ONEROSTER_FILES)],
            "records": counts,
            "xapi_statements": len(statements),
        },
        "not_included": list(NOT_INCLUDED),
    }
    return manifest, files


def _csv(header: tuple[str, ...] | list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue().encode("utf-8")


def _oneroster(
    municipality, student: Student, transfer_id: uuid.UUID, enrollment, school_year: int, now
) -> dict[str, bytes]:
    """The pupil as a OneRoster 1.2 CSV bulk set (Japan profile): the sending school and its
    board, the school year, the pupil's homeroom of that year (if any) and their enrollment."""

    def sid(part: str) -> str:  # stable ids within the package, UUIDs as the profile asks
        return str(uuid.uuid5(transfer_id, part))

    school = student.school
    modified = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    identities = StudentIdentity.objects.filter(student=student).order_by("source_system", "pk")
    identity = (
        identities.exclude(family_name="").first()
        or identities.first()
        or StudentIdentity(student=student)
    )
    start, end = school_year_bounds(school_year)
    grade = grade_code(school.school_type, student.grade)
    common = {"status": "active", "dateLastModified": modified}
    files = {
        "academicSessions": [
            {
                **common,
                "sourcedId": sid("session"),
                "title": f"{school_year}年度",
                "type": "schoolYear",
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "parentSourcedId": "NULL",
                "schoolYear": school_year,
            }
        ],
        "orgs": [
            {
                **common,
                "sourcedId": sid("district"),
                "name": f"{municipality.name}教育委員会",
                "type": "district",
                "identifier": municipality.code,
                "parentSourcedId": "NULL",
            },
            {
                **common,
                "sourcedId": sid("school"),
                "name": school.name,
                "type": "school",
                "identifier": school.code,
                "parentSourcedId": sid("district"),
            },
        ],
        "classes": [],
        "demographics": [
            {
                **common,
                "sourcedId": str(transfer_id),
                # The day is not held (年月 only): the first of the month, as docs/transfer.md says.
                "birthDate": f"{student.birth_year_month}-01" if student.birth_year_month else "",
                "sex": student.sex,
            }
        ],
        "roles": [
            {
                **common,
                "sourcedId": sid("role"),
                "userSourcedId": str(transfer_id),
                "roleType": "primary",
                "role": "student",
                "orgSourcedId": sid("school"),
            }
        ],
        "users": [
            {
                **common,
                "sourcedId": str(transfer_id),
                "enabledUser": "true",
                "username": identity.principal_name,
                "givenName": identity.given_name,
                "familyName": identity.family_name,
                "grades": grade,
                "primaryOrgSourcedId": sid("school"),
                "metadata.jp.kanaGivenName": identity.given_name_kana,
                "metadata.jp.kanaFamilyName": identity.family_name_kana,
            }
        ],
        "enrollments": [],
    }
    if enrollment is not None:
        homeroom = enrollment.homeroom
        files["classes"].append(
            {
                **common,
                "sourcedId": sid("homeroom"),
                "title": homeroom.name,
                "grades": grade_code(school.school_type, homeroom.grade),
                "courseSourcedId": sid("course"),
                "classType": "homeroom",
                "schoolSourcedId": sid("school"),
                "termSourcedIds": sid("session"),
                "metadata.jp.specialNeeds": "false",
            }
        )
        files["enrollments"].append(
            {
                **common,
                "sourcedId": sid("enrollment"),
                "classSourcedId": sid("homeroom"),
                "schoolSourcedId": sid("school"),
                "userSourcedId": str(transfer_id),
                "role": "student",
                "primary": "true",
                "metadata.jp.ShussekiNo": enrollment.attendance_number or "",
            }
        )
    out = {f"oneroster/{name}.csv": _csv(JP_HEADERS[name], rows) for name, rows in files.items()}
    manifest = [
        ("manifest.version", "1.0"),
        ("oneroster.version", "1.2"),
        *((f"file.{name}", "bulk") for name in ONEROSTER_FILES),
        ("source.systemName", "Renkei 転校パッケージ"),
        ("source.systemCode", "renkei-transfer"),
    ]
    out["oneroster/manifest.csv"] = _csv(
        ["propertyName", "value"], [{"propertyName": k, "value": v} for k, v in manifest]
    )
    return out


def _statement(activity: LearningActivity, transfer_id: uuid.UUID) -> dict[str, Any]:
    """A stored learning activity as the xAPI statement the xapi connector reads back."""
    definition: dict[str, Any] = {}
    if activity.object_name:
        definition["name"] = {"ja-JP": activity.object_name}
    if activity.subject:
        definition["extensions"] = {f"{XAPI_EXTENSION}subject": activity.subject}
    statement: dict[str, Any] = {
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": XAPI_ACCOUNT_HOME, "name": str(transfer_id)},
        },
        "verb": {"id": activity.verb},
        "object": {"objectType": "Activity", "id": activity.object_id},
        "timestamp": activity.occurred_at.isoformat(),
        "context": {"platform": activity.source_system},
    }
    if activity.statement_id:
        statement["id"] = activity.statement_id
    if definition:
        statement["object"]["definition"] = definition
    result: dict[str, Any] = {}
    if activity.duration_seconds is not None:
        result["duration"] = f"PT{activity.duration_seconds}S"
    extensions = {
        f"{XAPI_EXTENSION}{name}": value
        for name, value in (
            ("items-attempted", activity.items_attempted),
            ("items-correct", activity.items_correct),
        )
        if value is not None
    }
    if extensions:
        result["extensions"] = extensions
    if result:
        statement["result"] = result
    return statement
