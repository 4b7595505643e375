"""OneRoster 1.2 CSV (Japan profile) connector: schools, homerooms, pupils and enrollments.

Input is the bulk CSV set a 校務支援システム or 学習eポータル exports: a folder or a zip holding
``manifest.csv`` and the files it declares. Japan profile specifics (PITFALLS "Identifiers"):
``orgs.identifier`` is the 学校コード of a school (the 6-digit board code of a district),
kana in ``metadata.jp.kanaGivenName``/``kanaFamilyName``, 出席番号 in
``enrollments.metadata.jp.ShussekiNo``, school years titled like ``2025年度``, grade codes
P1-P6 (小学校), J1-J3 (中学校), H1-H3 (高等学校). ``userIds`` (``{c4th:C0001234},{…}``) carries
the pupil's ids in other systems, which links this roster to C4th and スズキ校務 rows.

OneRoster 1.1 sets (a ``role`` and ``orgSourcedIds`` column in users.csv, no roles.csv) are read
as well. Delta files are refused: this connector replaces a roster, it does not patch one.

Leaving (卒業・転出, docs/connectors.md "Leaving"): a pupil whose homeroom enrollments all
ended (``endDate``) before the school year's end transferred out on that day; one in the last
grade of their school type whose enrollments end with the year graduated on that day; a pupil
with ``enabledUser=false`` or ``status=tobedeleted`` left (on that day, else the import's).
The set being bulk, it is the whole truth for its schools and school years: it declares so
(``RosterScopeRecord``) and the pipeline takes the pupils it no longer lists as left.

Every file's header and every row are checked against the Japan profile's rules
(``oneroster_jp``: JP-HEADER, JP-UUID, JP-GRADE, JP-SCHOOLCODE). The tenant's setting
``jp_profile`` decides what a violation does: ``lenient`` (the default) reads the row as usual
and lists the violation as a warning; ``strict`` rejects the row (and refuses a file whose
header is out of order).

Memory: orgs, classes, academic sessions and per-user facts (role, school, birth month) are kept
in dicts; enrollments, the largest file, are streamed.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import zipfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import Field

from renkei.connectors.builtin import oneroster_jp
from renkei.connectors.eras import normalize_width
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    Record,
    RosterScopeRecord,
    SchoolRecord,
    StudentRecord,
    leaving_horizon,
)
from renkei.connectors.sdk import (
    CheckResult,
    Connector,
    ConnectorConfig,
    CsvRow,
    RowError,
    RowWarning,
    RunState,
    SourceError,
    Stream,
    build,
    csv_rows,
)
from renkei.connectors.textio import normalize_text
from renkei.edudata.codes import LeavingReason, is_final_grade, school_year_of

MANIFEST = "manifest.csv"
# The files this connector reads, by manifest property (file.<name>).
_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "academicSessions": ("sourcedId",),
    "orgs": ("sourcedId", "name", "type", "identifier"),
    "classes": ("sourcedId", "title", "classType", "schoolSourcedId"),
    "demographics": ("sourcedId",),
    "roles": ("userSourcedId", "role", "orgSourcedId"),
    "users": ("sourcedId", "username", "givenName", "familyName"),
    "enrollments": ("classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
}
_GRADE_RE = re.compile(r"([PEJH])([1-9])")
_CEDS_GRADE_RE = re.compile(r"(0[1-9]|1[0-2])")
_USER_ID_RE = re.compile(r"\{([^{}:]+):([^{}]+)\}")
_SCHOOL_YEAR_TITLE_RE = re.compile(r"(\d{4})\s*年度")
_HOMEROOM_GRADE_RE = re.compile(r"(\d{1,2})\s*年")
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CEDS_OFFSETS = {"C1": (6, 3), "D1": (9, 3), "D2": (6, 6), "C2": (0, 9)}  # (offset, top grade)
_SEX = {
    "male": "male",
    "female": "female",
    "other": "other",
    "unspecified": "unspecified",
    "m": "male",
    "f": "female",
    "": "unspecified",
}


class OneRosterConfig(ConnectorConfig):
    """``paths``: a folder or a .zip with manifest.csv and the CSV files it declares (or the
    CSV files themselves, manifest.csv among them). ``jp_profile``: what a violation of the
    Japan profile does (the municipality sets it in 管理 › コネクタ設定)."""

    # Lenient by default: exports in use are often not fully conformant (ids from the school
    # system rather than UUIDs, E for 小学校), and strict would drop pupils that import today.
    jp_profile: Literal["lenient", "strict"] = Field(
        default="lenient",
        title="日本プロファイルの検査",
        description=(
            "OneRoster 日本プロファイルの規則（sourcedId は UUID、学年コード E1〜E3・P1〜P6・"
            "J1〜J3・H1〜H3、学校コードの検査数字、見出しの列の並び）に合わない箇所の扱いです。"
            "lenient: 行は取り込み、違反を取り込み結果に「警告」として残します（既定）。"
            "strict: 違反した行は取り込まずに除外し、見出しの並びが違うファイルは取り込みません。"
        ),
        json_schema_extra={
            "choice_labels": {
                "lenient": "lenient（警告して取り込む）",
                "strict": "strict（違反した行を除外する）",
            }
        },
    )


class OneRosterConnector(Connector):
    """Reads a OneRoster 1.2 CSV bulk set (Japan profile)."""

    name = "oneroster"
    version = "1"
    sdk_version = "1"
    title = "OneRoster 1.2 CSV（日本プロファイル）"
    Config = OneRosterConfig
    identity_system = "oneroster"

    def check(self, config: ConnectorConfig) -> CheckResult:
        """Only cheap checks: the inputs exist and a manifest is there."""
        if not config.paths:
            return CheckResult(
                False,
                "入力が指定されていません。OneRoster の zip ファイルかフォルダを指定してください。",
            )
        for path in config.paths:
            if not path.exists():
                return CheckResult(False, f"{path} がありません。パスを確認してください。")
        try:
            for source in _sources(config.paths):
                if not source.has_manifest():
                    return CheckResult(False, _no_manifest(source.label))
        except SourceError as e:
            return CheckResult(False, str(e))
        return CheckResult(True, "OneRoster CSV（manifest.csv あり）を確認しました。")

    def discover(self) -> list[Stream]:
        return [
            Stream("schools", "学校（orgs.csv の type=school、identifier の学校コード）"),
            Stream("homerooms", "学級（classes.csv の classType=homeroom）"),
            Stream("students", "児童生徒（users.csv と roles.csv・demographics.csv）"),
            Stream("enrollments", "学級への在籍と出席番号（enrollments.csv）"),
        ]

    def read(
        self, config: ConnectorConfig, state: RunState
    ) -> Iterator[Record | RowError | RowWarning]:
        if not config.paths:
            raise SourceError(
                "入力が指定されていません。OneRoster の zip ファイルかフォルダを指定してください。"
            )
        strict = getattr(config, "jp_profile", "lenient") == "strict"
        for source in _sources(config.paths):
            with source.files() as files:
                yield from _Reader(files, source.label, strict).read()


# ---------------------------------------------------------------------------------------------
# Finding the files: a folder, a zip, or loose CSV files


def _no_manifest(label: str) -> str:
    return (
        f"{label}: manifest.csv がありません。OneRoster CSV は manifest.csv と各 CSV を"
        "まとめた zip（またはフォルダ）で指定してください。"
    )


@dataclass
class _Source:
    label: str
    folder: Path | None = None
    archive: Path | None = None
    loose: dict[str, Path] | None = None

    def has_manifest(self) -> bool:
        if self.archive is not None:
            return any(PurePosixPath(n).name.lower() == MANIFEST for n in _zip_names(self.archive))
        if self.folder is not None:
            return _find_manifest_folder(self.folder) is not None
        return MANIFEST in (self.loose or {})

    @contextmanager
    def files(self) -> Iterator[dict[str, Path]]:
        """The CSV files by lower-case name. Zip members are extracted (streamed) to a temporary
        folder that lives as long as the reading does: the decoder needs a seekable file."""
        if self.loose is not None:
            yield self.loose
            return
        if self.folder is not None:
            folder = _find_manifest_folder(self.folder)
            if folder is None:
                raise SourceError(_no_manifest(self.label))
            yield {p.name.lower(): p for p in folder.iterdir() if p.suffix.lower() == ".csv"}
            return
        assert self.archive is not None
        with tempfile.TemporaryDirectory(prefix="renkei-oneroster-") as tmp:
            yield _extract(self.archive, Path(tmp), self.label)


def _sources(paths: list[Path]) -> list[_Source]:
    sources: list[_Source] = []
    loose: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            sources.append(_Source(path.name, folder=path))
        elif path.suffix.lower() == ".csv":
            name = path.name.lower()
            if name in loose:
                raise SourceError(
                    f"{path.name} が 2 つ指定されています。1 組の OneRoster CSV を指定してください。"
                )
            loose[name] = path
        elif path.is_file() and zipfile.is_zipfile(path):
            sources.append(_Source(path.name, archive=path))
        elif not path.exists():
            raise SourceError(f"{path} がありません。パスを確認してください。")
        else:
            raise SourceError(
                f"{path.name}: zip ファイルでも CSV でもフォルダでもありません。"
                "OneRoster CSV をまとめた zip を指定してください。"
            )
    if loose:
        sources.append(_Source(next(iter(loose.values())).parent.name or "CSV", loose=loose))
    return sources


def _find_manifest_folder(folder: Path) -> Path | None:
    """The folder itself, or its only sub-folder (zips of a folder unpack that way)."""
    if (folder / MANIFEST).is_file():
        return folder
    subfolders = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    return subfolders[0] if len(subfolders) == 1 else None


def _zip_names(archive: Path) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{archive.name}: zip ファイルとして読めません（{e}）。") from e


def _extract(archive: Path, target: Path, label: str) -> dict[str, Path]:
    """Extract the .csv members by base name only (no paths from the archive are trusted)."""
    files: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename.replace("\\", "/")).name
                if info.is_dir() or not name.lower().endswith(".csv") or name.startswith("."):
                    continue
                key = name.lower()
                if key in files:
                    raise SourceError(
                        f"{label}: zip の中に {name} が複数あります。1 組だけにしてください。"
                    )
                files[key] = target / key
                with zf.open(info) as src, open(files[key], "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{label}: zip ファイルとして読めません（{e}）。") from e
    if MANIFEST not in files:
        raise SourceError(_no_manifest(label))
    return files


# ---------------------------------------------------------------------------------------------
# Reading one set


def _cell(row: CsvRow, column: str) -> str:
    return normalize_text(row.values.get(column, ""))


def _ref(value: str) -> str:
    """A sourcedId reference; the Japan profile writes NULL for "none"."""
    return "" if value.upper() == "NULL" else value


def parse_grade(code: str, school_type: str = "") -> int:
    """A OneRoster grade code as the grade within the school.

    Japan profile codes P1-P6 (小学校), J1-J3 (中学校; 7-9 in a 義務教育学校 C2), H1-H3 (高等学校;
    4-6 in a 中等教育学校 D2). E1-E6 is read like P: some exports use E for elementary, though
    the profile reserves E1-E3 for 幼稚園. CEDS numbers 01-12 count from 小学1年 and are
    converted by the school type. Raises ValueError with a Japanese message.
    """
    text = normalize_width(code).strip().upper()
    if m := _GRADE_RE.fullmatch(text):
        level, n = m[1], int(m[2])
        if n <= {"P": 6, "E": 6, "J": 3, "H": 3}[level]:
            if level == "J" and school_type == "C2":
                return n + 6
            if level == "H" and school_type == "D2":
                return n + 3
            return n
    elif _CEDS_GRADE_RE.fullmatch(text):
        offset, top = _CEDS_OFFSETS.get(school_type, (0, 6))
        if 1 <= int(text) - offset <= top:
            return int(text) - offset
    raise ValueError(f"学年コード「{code}」は読めません（P1〜P6、J1〜J3、H1〜H3 のいずれか）")


def parse_user_ids(value: str) -> dict[str, str]:
    """``{c4th:C0001234},{suzuki:S0001234}`` → ``{"c4th": "C0001234", "suzuki": "S0001234"}``.
    Raises ValueError (Japanese message) for anything else."""
    ids: dict[str, str] = {}
    text = value.strip()
    position = 0
    for m in _USER_ID_RE.finditer(text):
        between = text[position : m.start()].strip()
        if between not in ("", ","):
            break
        ids[m[1].strip().lower()] = m[2].strip()
        position = m.end()
    else:
        if text[position:].strip() in ("", ","):
            return ids
    raise ValueError(
        f"userIds「{value}」の形が違います（{{種別:ID}} をカンマで区切って並べます。"
        "例: {c4th:C0001234},{suzuki:S0001234}）"
    )


def _birth_year_month(value: str) -> str:
    text = normalize_width(value).strip()
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"birthDate「{value}」は YYYY-MM-DD の日付ではありません")
    year, month, day = (int(g) for g in m.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"birthDate「{value}」は存在しない日付です") from None
    return f"{year:04d}-{month:02d}"  # the day is never kept


@dataclass(frozen=True, slots=True)
class _EnrollmentEnd:
    open: bool  # an enrollment without endDate: still enrolled
    last: dt.date  # the latest endDate (when none is open)
    year: int  # the school year of that enrollment's class


def _end_date(value: str) -> dt.date | None:
    """An enrollment's endDate, or None (empty, or not a date: then it ends nothing)."""
    m = _DATE_RE.fullmatch(normalize_width(value).strip())
    if m is None:
        return None
    try:
        return dt.date(*(int(g) for g in m.groups()))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _School:
    code: str


@dataclass(frozen=True, slots=True)
class _Homeroom:
    school_org: str
    school_code: str
    school_year: int
    title: str


class _Reader:
    """One pass over one OneRoster set, in dependency order: sessions, orgs (schools), classes
    (homerooms), demographics and roles, users (pupils), enrollments."""

    def __init__(self, files: dict[str, Path], label: str, strict: bool = False):
        self.files = files
        self.label = label
        self.strict = strict  # Japan profile violations reject (else they are warnings)
        self.header_warnings: list[RowWarning] = []
        self.modes: dict[str, str] = {}
        self.version = ""
        self.sessions: dict[str, int | None] = {}
        self.rejected_sessions: set[str] = set()
        self.orgs: dict[str, str] = {}  # sourcedId -> type, every org
        self.schools: dict[str, _School] = {}  # sourcedId -> school that became a record
        self.homerooms: dict[str, _Homeroom] = {}
        self.other_classes: set[str] = set()
        self.students: dict[str, str] = {}  # sourcedId -> school code (accepted pupils)
        self.rejected_students: set[str] = set()
        self.rejected_roles: set[str] = set()  # users whose roles.csv row was rejected
        self.other_users: set[str] = set()  # teachers and other staff
        self.listed_users: set[str] = set()  # every sourcedId of users.csv, read or not
        self.unreadable_user: CsvRow | None = None  # a users.csv row without a sure sourcedId
        self.enrollment_ends: dict[str, _EnrollmentEnd] = {}

    # -- files -------------------------------------------------------------------------------

    def _path(self, name: str) -> Path | None:
        """The file for manifest property ``file.<name>`` if the manifest declares it bulk."""
        mode = self.modes.get(name, "absent")
        if mode == "absent":
            return None
        if mode != "bulk":
            raise SourceError(
                f"{self.label}: manifest.csv の file.{name} が「{mode}」です。差分（delta）には"
                "対応していません。一括（bulk）で出力し直してください。"
            )
        path = self.files.get(f"{name}.csv".lower())
        if path is None:
            raise SourceError(
                f"{self.label}: manifest.csv で file.{name} が bulk になっていますが、"
                f"{name}.csv がありません。出力し直すか、{name}.csv を含めてください。"
            )
        return path

    def _rows(
        self, name: str, extra: tuple[str, ...] = (), keep_deleted: bool = False
    ) -> Iterator[CsvRow]:
        path = self._path(name)
        if path is None:
            return
        for row in csv_rows(path, required=[*_REQUIRED_COLUMNS[name], *extra]):
            if not keep_deleted and _cell(row, "status").lower() == "tobedeleted":
                continue  # a bulk file may still list records marked for deletion
            yield row

    def _origin(self, name: str, row: CsvRow) -> Origin:
        return Origin(file=f"{name}.csv", line=row.line)

    def _error(
        self, name: str, row: CsvRow, column: str, reason: str, value: str | None = None
    ) -> RowError:
        value = _cell(row, column) if value is None else value
        return RowError(self._origin(name, row), column, value, reason)

    def _warning(self, name: str, row: CsvRow, column: str, reason: str) -> RowWarning:
        return RowWarning(self._origin(name, row), column, _cell(row, column), reason)

    def _screen(self, name: str, row: CsvRow) -> Generator[RowError | RowWarning, None, bool]:
        """The one validation step every row goes through: its shape, then the Japan profile.
        Yields what it finds; returns True when the row is rejected (callers write
        ``if (yield from self._screen(name, row)): continue``)."""
        if row.problem:
            preview = ",".join(row.values.values())[:200]
            yield RowError(self._origin(name, row), "", preview, row.problem)
            return True
        findings = oneroster_jp.row_findings(name, row)
        kind = RowError if self.strict else RowWarning
        for f in findings:
            yield kind(self._origin(name, row), f.column, f.value, f.reason)
        return self.strict and bool(findings)

    # -- the pass ----------------------------------------------------------------------------

    def read(self) -> Iterator[Record | RowError | RowWarning]:
        self._read_manifest()
        yield from self.header_warnings
        yield from self._read_sessions()
        yield from self._read_orgs()
        yield from self._read_classes()
        birth: dict[str, tuple[str, str]] = {}
        yield from self._read_demographics(birth)
        roles: dict[str, tuple[str, str, str]] = {}
        yield from self._read_roles(roles)
        self._read_enrollment_ends()
        yield from self._read_users(roles, birth)
        del roles, birth
        yield from self._read_enrollments()
        yield from self._scope()

    def _scope(self) -> Iterator[Record | RowWarning]:
        """A bulk set is the whole truth for its schools and school years (the manifest
        declares users bulk: a delta is refused up front)."""
        years = sorted({h.school_year for h in self.homerooms.values()})
        if not self.schools or not years:
            return
        if self.unreadable_user is not None:
            yield self._warning(
                "users",
                self.unreadable_user,
                "",
                "この行が読めないため、今回は名簿に載らない児童生徒を離籍とはしていません",
            )
            return
        yield RosterScopeRecord(
            school_codes=sorted({s.code for s in self.schools.values()}),
            school_years=years,
            listed=sorted(self.listed_users),
        )

    def _read_enrollment_ends(self) -> None:
        """A first pass over enrollments.csv: when each pupil's homeroom enrollments end
        (nothing is yielded: the second pass reports what is wrong with the rows)."""
        for row in self._rows("enrollments"):
            if row.problem or _cell(row, "role").lower() != "student":
                continue
            homeroom = self.homerooms.get(_cell(row, "classSourcedId"))
            if homeroom is None:
                continue
            user_id = _cell(row, "userSourcedId")
            end = _end_date(_cell(row, "endDate"))
            known = self.enrollment_ends.get(user_id)
            if known is None or (not known.open and (end is None or end > known.last)):
                self.enrollment_ends[user_id] = _EnrollmentEnd(
                    end is None, end or dt.date.min, homeroom.school_year
                )

    def _leaving(self, user_id: str, school_type: str, grade: int, row: CsvRow) -> dict[str, Any]:
        """Whether the pupil of this users.csv row left: from the ends of their enrollments,
        ``enabledUser=false`` and ``status=tobedeleted``."""
        end = self.enrollment_ends.get(user_id)
        left: dict[str, Any] = {}
        if end is not None and not end.open:
            if end.last < dt.date(end.year + 1, 3, 1):  # ended before the year's last month
                left = {"left_on": end.last, "leaving_reason": LeavingReason.TRANSFERRED.value}
            elif end.last <= dt.date(end.year + 1, 3, 31) and is_final_grade(school_type, grade):
                left = {"left_on": end.last, "leaving_reason": LeavingReason.GRADUATED.value}
        if left and left["left_on"] > leaving_horizon():
            left = {}  # an end planned more than a year ahead is no leaving yet
        disabled = _cell(row, "enabledUser").lower() == "false"
        if left or not (disabled or _cell(row, "status").lower() == "tobedeleted"):
            return left
        # Left, on a day the set does not say (the import's day): graduated if in the last
        # grade at the end of the school year, else transferred.
        year = end.year if end is not None else school_year_of(dt.date.today())
        year_end = dt.date.today() >= dt.date(year + 1, 3, 1)
        final = is_final_grade(school_type, grade) and year_end
        return {
            "leaving_reason": (
                LeavingReason.GRADUATED if final else LeavingReason.TRANSFERRED
            ).value
        }

    def _read_manifest(self) -> None:
        path = self.files.get(MANIFEST)
        if path is None:
            raise SourceError(_no_manifest(self.label))
        for row in csv_rows(path, required=["propertyName", "value"]):
            key, value = _cell(row, "propertyName"), _cell(row, "value")
            if key.startswith("file."):
                self.modes[key.removeprefix("file.")] = value.lower()
            elif key == "oneroster.version":
                self.version = value
        if self.version and self.version not in ("1.1", "1.2"):
            raise SourceError(
                f"{self.label}: oneroster.version「{self.version}」には対応していません"
                "（1.2 と 1.1 に対応しています）。"
            )
        for name in ("orgs", "users"):
            if self.modes.get(name, "absent") == "absent":
                raise SourceError(
                    f"{self.label}: manifest.csv で file.{name} が bulk になっていません。"
                    f"{name}.csv のない OneRoster CSV は取り込めません。"
                )
            self._path(name)
        self._preflight()

    def _preflight(self) -> None:
        """Decode every declared file and check its header now, so that a broken file fails
        the run before the first record (SourceError is "up front")."""
        for name, columns in _REQUIRED_COLUMNS.items():
            path = self._path(name)
            if path is None:
                continue
            legacy = name == "users" and self._path("roles") is None
            rows = csv_rows(path, required=[*columns, *(("role",) if legacy else ())])
            try:
                if first := next(rows, None):
                    self._check_header(name, first.header)
            except SourceError as e:
                if legacy and "role" in str(e):
                    raise SourceError(
                        f"{e} 利用者の役割がわかりません: OneRoster 1.2 なら roles.csv を、"
                        "1.1 なら users.csv の role 列を含めてください。"
                    ) from e
                raise
            finally:
                rows.close()

    def _check_header(self, name: str, header: list[str]) -> None:
        """JP-HEADER: strict refuses the file (the whole set: its files hang together)."""
        finding = oneroster_jp.header_finding(name, header)
        if finding is None:
            return
        if self.strict:
            raise SourceError(
                f"{self.label}: {finding.reason}。列の並びを直して書き出し直すか、"
                "管理 › コネクタ設定で「日本プロファイルの検査」を lenient にしてください。"
            )
        origin = Origin(file=f"{name}.csv", line=1)
        self.header_warnings.append(
            RowWarning(origin, finding.column, finding.value, finding.reason)
        )

    def _read_sessions(self) -> Iterator[RowError | RowWarning]:
        """Sessions are not records: only what is wrong with them is yielded."""
        for row in self._rows("academicSessions"):
            if (yield from self._screen("academicSessions", row)):
                if not row.problem:
                    self.rejected_sessions.add(_cell(row, "sourcedId"))
                continue
            self.sessions[_cell(row, "sourcedId")] = _session_year(row)

    def _read_orgs(self) -> Iterator[Record | RowError | RowWarning]:
        for row in self._rows("orgs"):
            if not row.problem:  # known even if rejected below: what refers to it says why
                self.orgs[_cell(row, "sourcedId")] = _cell(row, "type").lower()
            if (yield from self._screen("orgs", row)):
                continue
            org_id, org_type = _cell(row, "sourcedId"), _cell(row, "type").lower()
            if org_type != "school":
                continue  # district (教育委員会) and other levels are not schools
            record = build(
                SchoolRecord,
                self._origin("orgs", row),
                {
                    "code": normalize_width(_cell(row, "identifier")).upper(),
                    "name": _cell(row, "name"),
                },
                {"code": "identifier", "name": "name"},
            )
            if isinstance(record, SchoolRecord):
                self.schools[org_id] = _School(record.code)
            yield record

    def _school_for(self, name: str, row: CsvRow, column: str, org_id: str) -> _School | RowError:
        if school := self.schools.get(org_id):
            return school
        if not org_id:
            return self._error(name, row, column, "学校の sourcedId がありません")
        org_type = self.orgs.get(org_id)
        if org_type is None:
            reason = f"学校 {org_id} が orgs.csv にありません"
        elif org_type == "school":
            reason = f"学校 {org_id} は orgs.csv の行に誤りがあり取り込めませんでした"
        else:
            reason = f"{org_id} は学校ではありません（orgs.csv の type は {org_type}）"
        return self._error(name, row, column, reason, value=org_id)

    def _read_classes(self) -> Iterator[Record | RowError | RowWarning]:
        for row in self._rows("classes"):
            if (yield from self._screen("classes", row)):
                continue
            class_id = _cell(row, "sourcedId")
            if _cell(row, "classType").lower() != "homeroom":
                self.other_classes.add(class_id)  # 教科の授業クラス: not a 学級
                continue
            school_org = _ref(_cell(row, "schoolSourcedId"))
            school = self._school_for("classes", row, "schoolSourcedId", school_org)
            if isinstance(school, RowError):
                yield school
                continue
            year = self._class_year(row)
            if isinstance(year, RowError):
                yield year
                continue
            title = _cell(row, "title")
            grade = self._class_grade(row, school, title)
            if isinstance(grade, RowError):
                yield grade
                continue
            record = build(
                HomeroomRecord,
                self._origin("classes", row),
                {"school_code": school.code, "school_year": year, "grade": grade, "name": title},
                {
                    "school_code": "schoolSourcedId",
                    "school_year": "termSourcedIds",
                    "grade": "grades",
                    "name": "title",
                },
            )
            if isinstance(record, HomeroomRecord):
                self.homerooms[class_id] = _Homeroom(school_org, school.code, year, record.name)
            yield record

    def _class_year(self, row: CsvRow) -> int | RowError:
        terms = [_ref(t.strip()) for t in _cell(row, "termSourcedIds").split(",") if t.strip()]
        for term in terms:
            if self.sessions.get(term):
                return self.sessions[term]  # type: ignore[return-value]
        if m := _SCHOOL_YEAR_TITLE_RE.search(normalize_width(_cell(row, "title"))):
            return int(m[1])
        rejected = [t for t in terms if t in self.rejected_sessions]
        if rejected:
            reason = (
                f"学期 {'、'.join(rejected)} は academicSessions.csv の行に誤りがあり"
                "取り込めませんでした"
            )
        elif not terms:
            reason = "年度がわかりません（termSourcedIds が空です）"
        elif any(t in self.sessions for t in terms):
            reason = "年度がわかりません（academicSessions.csv の学期に schoolYear がありません）"
        else:
            reason = f"学期 {'、'.join(terms)} が academicSessions.csv にありません"
        return self._error("classes", row, "termSourcedIds", reason)

    def _class_grade(self, row: CsvRow, school: _School, title: str) -> int | RowError:
        grades = [g.strip() for g in _cell(row, "grades").split(",") if g.strip()]
        if grades:
            try:
                return parse_grade(grades[0], school.code[:2])
            except ValueError as e:
                return self._error("classes", row, "grades", str(e))
        if m := _HOMEROOM_GRADE_RE.match(normalize_width(title)):
            return int(m[1])
        return self._error(
            "classes",
            row,
            "grades",
            "学年がわかりません（grades が空で、title も「3年1組」の形ではありません）",
        )

    def _read_demographics(
        self, birth: dict[str, tuple[str, str]]
    ) -> Iterator[RowError | RowWarning]:
        for row in self._rows("demographics"):
            if (yield from self._screen("demographics", row)):
                continue
            user_id = _cell(row, "sourcedId")
            year_month = ""
            if raw := _cell(row, "birthDate"):
                try:
                    year_month = _birth_year_month(raw)
                except ValueError as e:
                    # Reported here; the pupil is still read, without a birth month.
                    yield self._error("demographics", row, "birthDate", str(e))
            sex = _SEX.get(_cell(row, "sex").lower())
            if sex is None:
                yield self._error(
                    "demographics",
                    row,
                    "sex",
                    "性別は male、female、other、unspecified のいずれかです",
                )
                sex = "unspecified"
            birth[user_id] = (year_month, sex)

    def _read_roles(
        self, roles: dict[str, tuple[str, str, str]]
    ) -> Iterator[RowError | RowWarning]:
        """user -> (role, org, roleType) of the user's primary role (else the first one)."""
        for row in self._rows("roles"):
            if (yield from self._screen("roles", row)):
                if not row.problem:
                    self.rejected_roles.add(_cell(row, "userSourcedId"))
                continue
            user_id = _cell(row, "userSourcedId")
            role = (
                _cell(row, "role").lower(),
                _ref(_cell(row, "orgSourcedId")),
                _cell(row, "roleType").lower(),
            )
            previous = roles.get(user_id)
            if previous is None or (previous[2] != "primary" and role[2] == "primary"):
                roles[user_id] = role

    def _read_users(
        self, roles: dict[str, tuple[str, str, str]], birth: dict[str, tuple[str, str]]
    ) -> Iterator[Record | RowError | RowWarning]:
        legacy_role = self._path("roles") is None
        for row in self._rows("users", ("role",) if legacy_role else (), keep_deleted=True):
            if row.problem:
                self.unreadable_user = self.unreadable_user or row
            elif _cell(row, "status").lower() == "tobedeleted":
                yield from self._deleted_user(row, roles, birth, legacy_role)
                continue
            else:
                self.listed_users.add(_cell(row, "sourcedId"))  # read or rejected: listed
            if (yield from self._screen("users", row)):
                if not row.problem:
                    self.rejected_students.add(_cell(row, "sourcedId"))  # its enrollments say why
                continue
            user_id = _cell(row, "sourcedId")
            if legacy_role:
                orgs = [
                    _ref(o.strip()) for o in _cell(row, "orgSourcedIds").split(",") if o.strip()
                ]
                role, role_org = _cell(row, "role").lower(), (orgs[0] if orgs else "")
            elif user_id in roles:
                role, role_org, _ = roles[user_id]
            else:
                reason = (
                    "この利用者の役割は roles.csv の行に誤りがあり取り込めませんでした"
                    if user_id in self.rejected_roles
                    else "この利用者の役割が roles.csv にありません"
                )
                yield self._error("users", row, "sourcedId", reason)
                continue
            if role != "student":
                self.other_users.add(user_id)
                continue
            record = self._student(row, user_id, role_org, birth.pop(user_id, ("", "unspecified")))
            if isinstance(record, StudentRecord):
                self.students[user_id] = record.school_code
            else:
                self.rejected_students.add(user_id)
            yield record

    def _deleted_user(
        self,
        row: CsvRow,
        roles: dict[str, tuple[str, str, str]],
        birth: dict[str, tuple[str, str]],
        legacy_role: bool,
    ) -> Iterator[Record | RowWarning]:
        """A users.csv row marked ``tobedeleted``: a pupil's becomes their leaving. It does
        not list the user, so a row too sparse to read leaves the pupil to the rule for
        pupils no longer listed. Anything else about such a row is left alone, as before."""
        user_id = _cell(row, "sourcedId")
        if legacy_role:
            orgs = [_ref(o.strip()) for o in _cell(row, "orgSourcedIds").split(",") if o.strip()]
            role, role_org = _cell(row, "role").lower(), (orgs[0] if orgs else "")
        elif user_id in roles:
            role, role_org, _ = roles[user_id]
        else:
            return  # its role went with it
        if role != "student":
            self.other_users.add(user_id)
            return
        record = self._student(row, user_id, role_org, birth.pop(user_id, ("", "unspecified")))
        if isinstance(record, RowError):
            yield RowWarning(
                record.origin,
                record.column,
                record.value,
                f"削除予定（tobedeleted）の児童生徒の行を読めないため（{record.reason}）、"
                "この行からは離籍を記録していません（名簿に載らない児童生徒として扱います）",
            )
            return
        self.students[user_id] = record.school_code
        yield record

    def _student(
        self, row: CsvRow, user_id: str, role_org: str, birth: tuple[str, str]
    ) -> Record | RowError:
        primary = _ref(_cell(row, "primaryOrgSourcedId"))
        org_id = primary or role_org
        column = (
            "orgSourcedIds"
            if not primary and "orgSourcedIds" in row.values
            else "primaryOrgSourcedId"
        )
        if not org_id:
            return self._error(
                "users",
                row,
                column,
                "所属校がわかりません（primaryOrgSourcedId も役割の orgSourcedId も空です）",
            )
        school = self._school_for("users", row, column, org_id)
        if isinstance(school, RowError):
            return school
        grades = [g.strip() for g in _cell(row, "grades").split(",") if g.strip()]
        if not grades:
            return self._error("users", row, "grades", "学年がありません（grades が空です）")
        try:
            grade = parse_grade(grades[0], school.code[:2])
        except ValueError as e:
            return self._error("users", row, "grades", str(e))
        try:
            other_ids = parse_user_ids(_cell(row, "userIds"))
        except ValueError as e:
            return self._error("users", row, "userIds", str(e))
        leaving = self._leaving(user_id, school.code[:2], grade, row)
        username, email = _cell(row, "username"), _cell(row, "email")
        fields: dict[str, Any] = {
            "source_id": user_id,
            "school_code": school.code,
            "grade": grade,
            "birth_year_month": birth[0],
            "sex": birth[1],
            "family_name": _cell(row, "familyName"),
            "given_name": _cell(row, "givenName"),
            "family_name_kana": _cell(row, "metadata.jp.kanaFamilyName"),
            "given_name_kana": _cell(row, "metadata.jp.kanaGivenName"),
            "principal_name": username if "@" in username or not email else email,
            "other_ids": other_ids,
            **leaving,
        }
        return build(
            StudentRecord,
            self._origin("users", row),
            fields,
            {
                "source_id": "sourcedId",
                "school_code": column,
                "grade": "grades",
                "family_name": "familyName",
                "given_name": "givenName",
                "family_name_kana": "metadata.jp.kanaFamilyName",
                "given_name_kana": "metadata.jp.kanaGivenName",
                "principal_name": "username",
                "birth_year_month": "birthDate",
                "sex": "sex",
                "other_ids": "userIds",
                "left_on": "endDate",
                "leaving_reason": "enabledUser",
            },
        )

    def _read_enrollments(self) -> Iterator[Record | RowError | RowWarning]:
        for row in self._rows("enrollments"):
            if (yield from self._screen("enrollments", row)):
                continue
            class_id, user_id = _cell(row, "classSourcedId"), _cell(row, "userSourcedId")
            if class_id in self.other_classes:
                continue  # 授業クラスへの登録: only 学級 enrollments are records
            if _cell(row, "role").lower() != "student" or user_id in self.other_users:
                continue  # 担任 and other staff
            homeroom = self.homerooms.get(class_id)
            if homeroom is None:
                yield self._error(
                    "enrollments",
                    row,
                    "classSourcedId",
                    f"学級 {class_id} が classes.csv にない（または取り込めなかった）ため登録できません",
                )
                continue
            if user_id not in self.students:
                reason = (
                    f"児童生徒 {user_id} は users.csv の行に誤りがあり取り込めませんでした"
                    if user_id in self.rejected_students
                    else f"児童生徒 {user_id} が users.csv にありません"
                )
                yield self._error("enrollments", row, "userSourcedId", reason)
                continue
            school_org = _ref(_cell(row, "schoolSourcedId"))
            if school_org and school_org != homeroom.school_org:
                yield self._error(
                    "enrollments",
                    row,
                    "schoolSourcedId",
                    f"学校 {school_org} が学級 {class_id} の学校と違います",
                )
                continue
            if _end_date(raw := _cell(row, "endDate")) is None and raw:
                yield self._warning(
                    "enrollments",
                    row,
                    "endDate",
                    "endDate は YYYY-MM-DD の日付として読めないため、離籍の判断に使っていません",
                )
            number: Any = normalize_width(_cell(row, "metadata.jp.ShussekiNo")) or None
            yield build(
                EnrollmentRecord,
                self._origin("enrollments", row),
                {
                    "student_source_id": user_id,
                    "school_code": homeroom.school_code,
                    "school_year": homeroom.school_year,
                    "homeroom_name": homeroom.title,
                    "attendance_number": number,
                },
                {
                    "student_source_id": "userSourcedId",
                    "school_code": "schoolSourcedId",
                    "homeroom_name": "classSourcedId",
                    "attendance_number": "metadata.jp.ShussekiNo",
                },
            )


def _session_year(row: CsvRow) -> int | None:
    """schoolYear, else the title (「2025年度」), else the start date (April starts the year)."""
    text = normalize_width(_cell(row, "schoolYear"))
    if text.isdigit() and len(text) == 4:
        return int(text)
    if m := _SCHOOL_YEAR_TITLE_RE.search(normalize_width(_cell(row, "title"))):
        return int(m[1])
    if m := _DATE_RE.fullmatch(normalize_width(_cell(row, "startDate"))):
        year, month = int(m[1]), int(m[2])
        return year if month >= 4 else year - 1
    return None
