"""The OneRoster Japan profile's rules that the OneRoster connector checks on import.

One place for the rules (docs/connectors.md, "OneRoster 日本プロファイルの検査", has the table
with where each comes from): the reader asks ``header_finding`` about every file's header and
``row_findings`` about every row, then makes each finding a row error (strict) or a warning
(lenient). A finding's reason is Japanese and starts with the rule id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from renkei.connectors.eras import normalize_width
from renkei.connectors.sdk import CsvRow
from renkei.connectors.textio import normalize_text
from renkei.tenants.codes import CodeError, check_school_code_digit, validate_school_code

# The header of each file the connector reads: the OneRoster 1.2 CSV binding's columns in its
# order, then the Japan profile's metadata.jp.* columns. Further columns may follow only as
# metadata extensions (metadata.*), as the binding allows.
JP_HEADERS: dict[str, tuple[str, ...]] = {
    "academicSessions": (
        "sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
        "parentSourcedId", "schoolYear",
    ),
    "orgs": (
        "sourcedId", "status", "dateLastModified", "name", "type", "identifier",
        "parentSourcedId",
    ),
    "classes": (
        "sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
        "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects",
        "subjectCodes", "periods", "metadata.jp.specialNeeds",
    ),
    "demographics": (
        "sourcedId", "status", "dateLastModified", "birthDate", "sex",
        "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
        "cityOfBirth", "publicSchoolResidenceStatus",
    ),
    "roles": (
        "sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role",
        "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId",
    ),
    "users": (
        "sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds",
        "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
        "agentSourcedIds", "grades", "password", "userMasterIdentifier", "resourceSourcedIds",
        "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
        "primaryOrgSourcedId", "pronouns", "metadata.jp.kanaGivenName",
        "metadata.jp.kanaFamilyName", "metadata.jp.kanaMiddleName", "metadata.jp.homeClass",
    ),
    "enrollments": (
        "sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
        "userSourcedId", "role", "primary", "beginDate", "endDate", "metadata.jp.ShussekiNo",
        "metadata.jp.PublicFlg",
    ),
}  # fmt: skip

# Files whose own sourcedId the profile gives as a UUID (demographics reuses the user's).
UUID_FILES = frozenset({"academicSessions", "orgs", "classes", "roles", "users", "enrollments"})
GRADE_FILES = frozenset({"classes", "users"})
# 幼稚園 E1-E3 (年少・年中・年長), 小学校 P1-P6, 中学校 J1-J3, 高等学校 H1-H3.
JP_GRADES = (
    *(f"E{n}" for n in range(1, 4)),
    *(f"P{n}" for n in range(1, 7)),
    *(f"J{n}" for n in range(1, 4)),
    *(f"H{n}" for n in range(1, 4)),
)
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass(frozen=True)
class Finding:
    column: str
    value: str
    reason: str  # Japanese, ending with the rule id


def _reason(rule: str, text: str) -> str:
    return f"OneRoster 日本プロファイル {rule}: {text}"


def header_finding(name: str, header: list[str]) -> Finding | None:
    """JP-HEADER: the first column out of the profile's order, if any."""
    expected = JP_HEADERS[name]
    for position, column in enumerate(expected):
        found = header[position] if position < len(header) else None
        if found != column:
            where = f"{position + 1} 列目"
            text = (
                f"{name}.csv の見出しの {where}は「{column}」のはずが、"
                + (f"「{found}」です" if found is not None else "ありません")
                + "（列は OneRoster 1.2 と日本プロファイルの定める順に並べます）"
            )
            return Finding(found or "", ",".join(header)[:200], _reason("JP-HEADER", text))
    for position, column in enumerate(header[len(expected) :], start=len(expected)):
        if not column.startswith("metadata."):
            text = (
                f"{name}.csv の見出しの {position + 1} 列目「{column}」は日本プロファイルにない"
                "列です（追加の列は metadata. で始め、規定の列の後ろに置きます）"
            )
            return Finding(column, ",".join(header)[:200], _reason("JP-HEADER", text))
    return None


def row_findings(name: str, row: CsvRow) -> list[Finding]:
    """JP-UUID, JP-GRADE and JP-SCHOOLCODE on one row of ``name``.csv (its shape is fine)."""
    findings: list[Finding] = []
    values = row.values
    if name in UUID_FILES:
        sourced_id = normalize_text(values.get("sourcedId", ""))
        if not _UUID_RE.fullmatch(sourced_id):
            text = (
                f"sourcedId「{sourced_id}」は UUID ではありません"
                "（8-4-4-4-12 桁の 16 進数で書きます。例: 5f0c3a5e-8b1d-4c2a-9e47-1a2b3c4d5e6f）"
            )
            findings.append(Finding("sourcedId", sourced_id, _reason("JP-UUID", text)))
    if name in GRADE_FILES:
        grades = values.get("grades", "")
        bad = [g for g in (g.strip() for g in grades.split(",")) if g and g not in JP_GRADES]
        if bad:
            text = (
                f"学年コード「{'、'.join(bad)}」は日本プロファイルの学年コードではありません"
                "（E1〜E3、P1〜P6、J1〜J3、H1〜H3 を半角大文字で）"
            )
            findings.append(Finding("grades", grades, _reason("JP-GRADE", text)))
    if name == "orgs" and normalize_text(values.get("type", "")).lower() == "school":
        code = normalize_width(normalize_text(values.get("identifier", ""))).upper()  # as read
        try:
            validate_school_code(code)
        except CodeError:
            pass  # not a 学校コード at all: an error in either mode (the school's record says so)
        else:
            try:
                check_school_code_digit(code)
            except CodeError as e:
                findings.append(Finding("identifier", code, _reason("JP-SCHOOLCODE", str(e))))
    return findings
