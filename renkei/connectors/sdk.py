"""The connector SDK: the whole supported API for vendors (docs/connectors.md names it).

A connector is a small class: a name and version, a pydantic ``Config``, which config fields
are secret, ``check(config)``, ``discover()`` and ``read(config, state)``. The SDK owns the
rest of the pipeline (archive, decode, validate, pseudonymize, load, rollups, the run record).
"""

from __future__ import annotations

import csv
import io
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.connectors.records import RECORD_TYPES, Origin, Record
from renkei.connectors.textio import DecodeError, open_text

SDK_VERSION = "1.0"  # a connector declares the major version it was written for


class SourceError(Exception):
    """The source cannot be read at all (unreachable, wrong encoding, missing columns): the
    whole run fails up front with this message (Japanese, says what to do)."""


@dataclass(frozen=True)
class RowError:
    """One input row that cannot become a record. It is quarantined, never dropped."""

    origin: Origin
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class RowWarning:
    """A row that is read as usual but breaks a rule of a standard the source follows (the
    OneRoster Japan profile, in lenient mode). It is listed in the run's report as 警告; it
    neither counts as a row read nor as one rejected (accepted + rejected = read still holds)."""

    origin: Origin
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class Stream:
    """A kind of record a connector produces."""

    name: str
    description: str = ""

    @property
    def record_type(self) -> type[Record]:
        return RECORD_TYPES[self.name]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


@dataclass
class RunState:
    """What a connector may keep between runs (``data``, e.g. the last day fetched), and
    where it archives raw input it fetched itself (files given on the command line are
    archived by the pipeline)."""

    data: dict[str, Any] = field(default_factory=dict)
    archive: Any = None  # callable(name: str, content: bytes) -> None, set by the pipeline


class ConnectorConfig(BaseModel):
    """Base of connector configs. File connectors get the input ``paths`` from the pipeline."""

    model_config = ConfigDict(extra="forbid")
    paths: list[Path] = []
    # Fields that describe one run's input (an export kind): given with the upload, never
    # part of the setting saved in 管理 › コネクタ設定.
    per_run_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def server_path_fields(cls) -> frozenset[str]:
        """Fields that name files or folders on the server (any type built on ``Path``).

        Only the operator sets them (command line, config file); the 管理 pages neither show
        nor store them, so a municipality's admin cannot point an import, or a check, at
        files outside their own data (another tenant's archive, say).
        """
        return frozenset(
            name for name, info in cls.model_fields.items() if _mentions_path(info.annotation)
        )


def _mentions_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    return any(_mentions_path(arg) for arg in typing.get_args(annotation))


class Connector:
    name: ClassVar[str]
    version: ClassVar[str] = "0"
    sdk_version: ClassVar[str] = "1"
    title: ClassVar[str] = ""
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # Config fields an admin may change while keeping the stored secrets (they do not change
    # where a secret is sent). Changing any other field asks for the secrets again, so a
    # stored secret can never be sent to a host the admin has just typed in.
    secret_safe_fields: ClassVar[frozenset[str]] = frozenset()
    # Namespace of ``student_source_id`` in this connector's records (StudentIdentity).
    identity_system: ClassVar[str | None] = None
    # True: the pipeline runs ``read`` in a forked process, parsing while the database loads
    # what was parsed before. ``read`` must then not use the database; ``state`` (``data`` and
    # ``archive``) works as usual. Worth it for large inputs parsed in Python (files).
    parallel_read: ClassVar[bool] = False

    @classmethod
    def reads_in_parallel(cls, config: ConnectorConfig) -> bool:
        """Whether this run's ``read`` goes to a forked process: ``parallel_read``, unless a
        connector knows the run gains nothing from it (roster files alone: the roster is
        written once all of it is read, so the records would only be sent across)."""
        return cls.parallel_read

    @classmethod
    def export_kinds(cls) -> dict[str, str]:
        """The layouts a file for this connector may have (kind → description), when it has
        several: an upload may name one, and a file of another layout is then refused."""
        return {}

    def check(self, config: ConnectorConfig) -> CheckResult:
        return CheckResult(True, "OK")

    def discover(self) -> list[Stream]:
        raise NotImplementedError

    def read(
        self, config: ConnectorConfig, state: RunState
    ) -> Iterator[Record | RowError | RowWarning]:
        raise NotImplementedError

    # -- helpers connectors may use ----------------------------------------------------------

    @classmethod
    def source_system(cls, config: ConnectorConfig | None = None) -> str:
        """Whose ids ``student_source_id`` holds in this run (a connector whose files may
        carry several systems' ids lets its config say which)."""
        return cls.identity_system or cls.name

    @classmethod
    def redacted(cls, config: ConnectorConfig) -> dict[str, Any]:
        """The config with secret fields masked, for logs and the UI."""
        return {
            k: ("********" if k in cls.secret_fields and v else v)
            for k, v in config.model_dump(mode="json").items()
        }


def build(
    record_type: type[Record],
    origin: Origin,
    fields: Mapping[str, Any],
    columns: Mapping[str, str] | None = None,
) -> Record | RowError:
    """Validate ``fields`` into a record, or a RowError naming the column and the reason.

    ``columns`` maps record field names to the source's column names for the message.
    """
    try:
        return record_type(origin=origin, **fields)
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        column = (columns or {}).get(name, name)
        value = fields.get(name, "")
        return RowError(origin, column, "" if value is None else str(value), japanese_reason(first))


_BOUNDS = {
    "less_than_equal": ("le", "以下にしてください"),
    "greater_than_equal": ("ge", "以上にしてください"),
    "less_than": ("lt", "未満にしてください"),
    "greater_than": ("gt", "より大きい値にしてください"),
}


def japanese_reason(error: dict) -> str:
    """A pydantic error as a short Japanese reason (quarantined rows, connector settings)."""
    kind, message = error.get("type", ""), error.get("msg", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", message)).removeprefix("Value error, ")
    if kind == "missing":
        return "必須の値がありません"
    if kind in ("string_too_short",):
        return "値が空です"
    if kind == "string_too_long":
        return f"長すぎます（{ctx.get('max_length')} 文字まで）"
    if kind == "string_pattern_mismatch":
        return f"使えない文字が含まれています（形式: {ctx.get('pattern', '')}）"
    if kind in ("int_parsing", "decimal_parsing", "float_parsing"):
        return "数値として読めません"
    if kind in ("int_from_float", "int_parsing_size"):
        return "整数で指定してください"
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        return f"範囲外の値です（{ctx.get(key)} {text}）"
    if kind == "bool_parsing":
        return "はい／いいえで指定してください"
    if kind == "extra_forbidden":
        return "この設定項目はありません"
    if kind in ("path_type", "list_type"):
        return "形式が正しくありません"
    if kind == "enum" or kind == "literal_error":
        return f"使えない値です（{ctx.get('expected', '')}）"
    if kind == "timezone_aware":
        return "時差（+09:00 や Z）のない日時です"
    if kind.startswith("date") or kind.startswith("datetime"):
        return "日付として読めません"
    return message


# A field may be large (a free-text note) but not unbounded: a row over this is quarantined.
MAX_FIELD_CHARS = 1_000_000
csv.field_size_limit(MAX_FIELD_CHARS)


@dataclass
class CsvRow:
    line: int
    cells: list[str]
    header: list[str]
    problem: str | None = None  # set when the row's shape is wrong; cells may be partial

    @cached_property
    def values(self) -> dict[str, str]:
        """The row by column name."""
        return dict(zip(self.header, self.cells, strict=False))


def csv_rows(
    path: Path, required: list[str] | tuple[str, ...] = (), encoding: str | None = None
) -> Iterator[CsvRow]:
    """Stream a CSV file row by row, decoding as PITFALLS says (BOM, UTF-8, CP932).

    Raises SourceError up front for an undecodable file, an empty file or missing required
    columns. A row with too few or too many cells, or an oversized field, comes back with a
    ``problem`` so the caller quarantines it. ``line`` is the physical line where the row ends.
    ``encoding``: what ``detect_encoding`` found for this file, if the caller ran it already
    (it reads the whole file); decoding stays strict either way.
    """
    name = path.name
    try:
        with open_text(path, encoding) as text:
            reader = csv.reader(_lines(text))
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise SourceError(f"{name}: ファイルが空です（見出し行がありません）。") from None
            missing = [c for c in required if c not in header]
            if missing:
                raise SourceError(
                    f"{name}: 必須の列がありません: {'、'.join(missing)}"
                    f"（見出し行にあるのは {'、'.join(header) or '（なし）'}）。"
                )
            width = len(header)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    yield CsvRow(reader.line_num, [], header, f"CSV として読めない行です（{e}）")
                    continue
                if not any(row):
                    continue  # a blank line, or one of empty cells (Excel leaves those)
                problem = None
                if len(row) != width:
                    if len(row) < width:
                        problem = f"列の数が足りません（{width} 列のはずが {len(row)} 列。行が途中で切れていませんか）"
                    else:
                        problem = f"列の数が多すぎます（{width} 列のはずが {len(row)} 列）"
                yield CsvRow(reader.line_num, row, header, problem)
    except DecodeError as e:
        raise SourceError(f"{name}: {e}") from e


def _lines(text: TextIO, block: int = 1 << 16) -> Iterator[str]:
    """The lines of ``text`` as iterating over it gives them (each with its end: LF, CRLF or
    CR), read a block at a time: far cheaper per line than the checked stream's iteration."""
    start: list[str] = []  # the start of a line that goes on in the next block
    while data := text.read(block):
        if start and "\n" not in data and "\r" not in data:
            start.append(data)  # a very long line
            continue
        lines = io.StringIO("".join(start) + data, newline="").readlines()
        # The last line may go on in the next block (a CR may be the first half of a CRLF).
        start = [] if lines[-1].endswith("\n") else [lines.pop()]
        yield from lines
    if start:
        yield "".join(start)
