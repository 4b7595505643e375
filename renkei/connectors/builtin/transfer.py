"""転入: the ``transfer`` connector imports a pupil from another municipality's transfer
package (docs/transfer.md; written by renkei.connectors.transfer).

The package is checked before anything is read: a Renkei transfer package of a format version
this connector reads, meant for this municipality, opened with the transfer code from the 転学
paperwork (a wrong code and a changed byte are told apart), with the guardian's consent
recorded, of a pupil not imported here before, for a school of this municipality. Any of these
failing fails the run up front: nothing is written.

Then the parts are read by the connectors made for their formats: the roster part by the
OneRoster connector, the learning logs by the xAPI connector, the records as JSON here. The
pupil joins the receiving school (the one the officer chose, else the one the package names);
the sending school, its homeroom and the old enrollment stay out of this municipality's roster
(the manifest names them). The pupil's id here is the transfer id (identity system
``transfer``): a roster of the new school that lists ``{transfer:<id>}`` in ``userIds`` joins
the same pupil.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from django.db import connection
from pydantic import Field

from renkei.connectors.builtin.oneroster import OneRosterConfig, OneRosterConnector
from renkei.connectors.builtin.xapi import XapiConfig, XapiConnector
from renkei.connectors.records import (
    AssessmentRecord,
    AttendanceRecord,
    EvaluationRecord,
    HealthObservationRecord,
    LearningActivityByIdRecord,
    LearningActivityRecord,
    NurseVisitRecord,
    Origin,
    Record,
    StudentRecord,
)
from renkei.connectors.sdk import (
    CheckResult,
    Connector,
    ConnectorConfig,
    RowError,
    RowWarning,
    RunState,
    SourceError,
    Stream,
    build,
)
from renkei.connectors.transfer_package import (
    Package,
    PackageError,
    check_consent,
    open_package,
    read_header,
)
from renkei.edudata.models import School, StudentIdentity

SYSTEM = "transfer"
# The record files a version-1 package may hold, and the record each item becomes.
RECORD_FILES: dict[str, type[Record]] = {
    "attendance": AttendanceRecord,
    "health": HealthObservationRecord,
    "nurse_visits": NurseVisitRecord,
    "assessments": AssessmentRecord,
    "evaluations": EvaluationRecord,
}
XAPI_FILE = "xapi/statements.jsonl"
# School years before a school type's first grade (中学1年 is the 7th year of school), so a
# grade can be counted again at a school of another type (中学校 → 義務教育学校: 1 → 7).
_YEARS_BEFORE = {"C1": 6, "D1": 9, "D2": 6}


def grade_at(grade: int, from_type: str, to_type: str) -> int:
    """The grade at a school of ``to_type`` of a pupil in ``grade`` at one of ``from_type``."""
    moved = grade + _YEARS_BEFORE.get(from_type, 0) - _YEARS_BEFORE.get(to_type, 0)
    return moved if 1 <= moved <= 12 else grade


class TransferConfig(ConnectorConfig):
    """``paths``: the one package file. The code and the school are given with each package."""

    per_run_fields: ClassVar[frozenset[str]] = frozenset({"transfer_code", "school_code"})
    transfer_code: str = Field(
        default="",
        title="転校コード",
        description="転学の書類に記された 4 文字 × 5 組のコード（送付元で一度だけ表示されたもの）",
    )
    school_code: str = Field(
        default="",
        title="転入先の学校コード",
        description="空欄なら、パッケージに記された転入先の学校に入れます",
    )


class TransferConnector(Connector):
    name = "transfer"
    version = "1"
    sdk_version = "1"
    title = "転入（他の自治体の Renkei からの転校パッケージ）"
    Config = TransferConfig
    secret_fields = frozenset({"transfer_code"})
    identity_system = SYSTEM

    def discover(self) -> list[Stream]:
        return [
            Stream("students", "転入する児童生徒（パッケージの OneRoster users.csv）"),
            *(Stream(name, f"{name}.json の記録") for name in RECORD_FILES),
            Stream("learning_activity_by_id", "学習記録（パッケージの xAPI statement）"),
        ]

    def check(self, config: TransferConfig) -> CheckResult:
        try:
            header = read_header(_one_file(config).read_bytes())
        except (SourceError, PackageError, OSError) as e:
            return CheckResult(False, str(e))
        sender = header.get("sending_municipality") or {}
        return CheckResult(
            True, f"{sender.get('name', '')}（{sender.get('code', '')}）からの転校パッケージです。"
        )

    def read(
        self, config: TransferConfig, state: RunState
    ) -> Iterator[Record | RowError | RowWarning]:
        path = _one_file(config)
        tenant = getattr(connection, "tenant", None)
        here = getattr(tenant, "code", "")
        try:
            package = open_package(path.read_bytes(), config.transfer_code, destination_code=here)
            check_consent(package.manifest)
        except PackageError as e:
            raise SourceError(str(e)) from None
        transfer_id = _transfer_id(package)
        school = _receiving_school(config, package)
        sent_from = str((package.manifest.get("sending_school") or {}).get("code", ""))[:2]
        if StudentIdentity.objects.filter(source_system=SYSTEM, source_id=transfer_id).exists():
            raise SourceError(
                f"この転校パッケージ（転校ID {transfer_id[:8]}…）の児童生徒は既に転入しています。"
                "同じパッケージは 2 度取り込めません。記録を改めるには送付元に新しい"
                "パッケージを作ってもらってください。"
            )
        with tempfile.TemporaryDirectory(prefix="renkei-transfer-") as tmp:
            folder = Path(tmp)
            for name, content in package.files.items():
                if name.startswith("records/") and name[8:-5] not in RECORD_FILES:
                    raise SourceError(
                        f"転校パッケージの {name} は、この形式のバージョンにない記録の種類です。"
                    )
                target = _inner(folder, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            yield from _roster(folder / "oneroster", transfer_id, school, sent_from)
            for name, record_type in RECORD_FILES.items():
                yield from _records(package, name, record_type, transfer_id)
            if (folder / XAPI_FILE).is_file():
                yield from _statements(folder / XAPI_FILE, transfer_id)


def _one_file(config: ConnectorConfig) -> Path:
    if len(config.paths) != 1 or not config.paths[0].is_file():
        raise SourceError("転校パッケージのファイルを 1 つだけ指定してください。")
    return config.paths[0]


def _inner(folder: Path, name: str) -> Path:
    """A member path of the package under ``folder`` (the package is authenticated, but a path
    never leaves the folder all the same)."""
    target = (folder / name).resolve()
    if folder.resolve() not in target.parents:
        raise SourceError(f"転校パッケージの中のファイル名「{name}」が不正です。")
    return target


def _transfer_id(package: Package) -> str:
    value = package.manifest.get("transfer_id")
    if not isinstance(value, str) or not value:
        raise SourceError("転校パッケージに転校ID がありません。")
    return value


def _receiving_school(config: TransferConfig, package: Package) -> School:
    named = (package.manifest.get("destination_school") or {}).get("code", "")
    code = (config.school_code or named or "").strip().upper()
    if not code:
        raise SourceError(
            "転入先の学校が決まっていません。転入先の学校を選んでから取り込んでください"
            "（パッケージにも転入先の学校は記されていません）。"
        )
    school = School.objects.filter(code=code).first()
    if school is None:
        raise SourceError(
            f"転入先の学校コード {code} の学校がこの自治体に登録されていません。"
            "名簿を取り込んで学校を登録するか、学校を選び直してください。"
        )
    return school


def _roster(
    folder: Path, transfer_id: str, school: School, sent_from: str
) -> Iterator[Record | RowError]:
    """The pupil from the OneRoster part, moved to the receiving school (the grade counted as
    that school counts). The sending school's org, class and enrollment rows give no records
    here (they are another municipality's)."""
    lenient = OneRosterConfig(paths=[folder], jp_profile="lenient")
    for item in OneRosterConnector().read(lenient, RunState()):
        if isinstance(item, (RowError, RowWarning)):
            yield item
        elif isinstance(item, StudentRecord):
            if item.source_id != transfer_id:
                yield RowError(
                    item.origin,
                    "sourcedId",
                    item.source_id,
                    "このパッケージの児童生徒ではありません",
                )
                continue
            # The old municipality's account (principal name) means nothing here.
            grade = grade_at(item.grade, sent_from, school.school_type)
            yield item.model_copy(
                update={"school_code": school.code, "grade": grade, "principal_name": ""}
            )


def _records(
    package: Package, name: str, record_type: type[Record], transfer_id: str
) -> Iterator[Record | RowError]:
    content = package.files.get(f"records/{name}.json")
    if content is None:
        return
    try:
        items = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{name}.json: JSON として読めません（{e}）。") from None
    if not isinstance(items, list):
        raise SourceError(f"{name}.json: 記録の配列ではありません。")
    for number, item in enumerate(items, start=1):
        origin = Origin(file=f"{name}.json", line=number)
        if not isinstance(item, dict):
            yield RowError(origin, "", str(item)[:200], "記録は JSON オブジェクトです")
            continue
        fields: dict[str, Any] = {**item, "student_source_id": transfer_id}
        yield build(record_type, origin, fields)


def _statements(path: Path, transfer_id: str) -> Iterator[Record | RowError]:
    """The learning logs, read by the xAPI connector, as learning activity of this pupil."""
    for item in XapiConnector().read(XapiConfig(paths=[path]), RunState()):
        if isinstance(item, RowError):
            yield item
        elif isinstance(item, LearningActivityRecord) and item.principal_name == transfer_id:
            fields = item.model_dump(exclude={"principal_name"})
            yield LearningActivityByIdRecord(
                origin=item.origin, student_source_id=transfer_id, **fields
            )
        else:
            yield RowError(
                item.origin or Origin(file=path.name, line=0),
                "actor",
                "",
                "このパッケージの児童生徒の学習記録ではありません",
            )
