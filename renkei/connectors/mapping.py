"""Declarative column mappings for vendor CSV exports (C4th, スズキ校務, ...).

Vendor layouts vary by product version and municipality and are not public, so each export
kind is a YAML file: which column feeds which canonical field, code tables (欠・遅・早・停・忌),
date formats. A municipality copies a shipped file, adjusts the column names and passes the
directory with ``--config``; no code changes. ``docs/connectors.md`` documents the format.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticUndefined

from renkei.connectors import reading
from renkei.connectors.eras import DateParseError, normalize_width, parse_date
from renkei.connectors.records import RECORD_TYPES, Origin, Record
from renkei.connectors.sdk import CsvRow, RowError, SourceError, build
from renkei.connectors.textio import normalize_text

FieldType = Literal[
    "str",
    "int",
    "decimal",
    "date",
    "datetime",
    "timestamp_date",
    "code",
    "year_month",
    "const",
    "viewpoints",
    "format",
    "minutes",
]


class FieldSpec(BaseModel):
    """How one canonical field is read from a row."""

    model_config = ConfigDict(extra="forbid")
    column: str | None = None
    type: FieldType = "str"
    optional: bool = False
    formats: list[str] | None = None  # date: eras.FORMATS names; None = all
    time_column: str | None = None  # datetime: date in `column`, time (HH:MM) here
    codes: str | None = None  # code: name of a table under `codes:`
    value: Any = None  # const
    columns: dict[str, str] | None = None  # viewpoints: {観点名: 列名}
    template: str | None = None  # format: e.g. "{学年}年{組}組" from those columns

    @model_validator(mode="after")
    def _complete(self) -> FieldSpec:
        if self.type == "const":
            return self
        if self.type == "viewpoints":
            if not self.columns:
                raise ValueError("viewpoints には columns が必要です")
            return self
        if self.type == "format":
            if not self.template:
                raise ValueError("format には template が必要です")
            return self
        if not self.column:
            raise ValueError("column が必要です")
        if self.type == "code" and not self.codes:
            raise ValueError("code には codes（コード表の名前）が必要です")
        return self

    def source_columns(self) -> list[str]:
        if self.type == "viewpoints":
            return list((self.columns or {}).values())
        if self.type == "format":
            return [name for _, name, _, _ in string.Formatter().parse(self.template or "") if name]
        return [c for c in (self.column, self.time_column) if c]


class RecordSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream: str
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _known_stream(self) -> RecordSpec:
        if self.stream not in RECORD_TYPES:
            raise ValueError(f"stream「{self.stream}」はありません（{', '.join(RECORD_TYPES)}）")
        return self


class Mapping(BaseModel):
    """One export kind of one vendor: a CSV layout and the records each row gives."""

    model_config = ConfigDict(extra="forbid")
    vendor: str
    kind: str
    description: str = ""
    records: list[RecordSpec] = Field(min_length=1)
    codes: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Columns whose presence identifies this layout (default: every required column).
    identify_by: list[str] | None = None

    @model_validator(mode="after")
    def _codes_exist(self) -> Mapping:
        # Cells are width-normalized before lookup (Ｒ５ → R5, （ → (), so the keys are too.
        self.codes = {
            name: {normalize_width(k): v for k, v in table.items()}
            for name, table in self.codes.items()
        }
        for record in self.records:
            for name, spec in record.fields.items():
                if spec.codes and spec.codes not in self.codes:
                    raise ValueError(
                        f"{record.stream}.{name}: コード表「{spec.codes}」がありません"
                    )
        return self

    @classmethod
    def load(cls, path: Path) -> Mapping:
        try:
            return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as e:
            raise SourceError(f"マッピングファイル {path.name} が正しくありません: {e}") from e

    def required_columns(self) -> list[str]:
        columns: list[str] = []
        for record in self.records:
            for spec in record.fields.values():
                if not spec.optional:
                    columns += [c for c in spec.source_columns() if c not in columns]
        return columns

    def identifying_columns(self) -> list[str]:
        return self.identify_by or self.required_columns()

    def read(self, rows: Iterable[CsvRow], file: str) -> Iterator[Any]:
        """The records of one file's rows (RowErrors for the rows that give none). A row of
        a data stream (attendance, say) comes as COPY text in ``reading.CopyRows`` instead,
        when the mapping allows (``_copy_reader``): what a record would have been, for a
        fraction of the work per row."""
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return
        rows = itertools.chain([first], rows)
        read = self.reader(first.header, file)
        copy = _copy_reader(self, first.header)
        if copy is None:
            for row in rows:
                yield from read(row)
            return
        stream, columns = copy
        lines: list[int] = []
        texts: list[str] = []
        for row in rows:
            if row.problem is None:
                cells = row.cells
                parts = [column(cells) for column in columns]
                if None not in parts:
                    lines.append(row.line)
                    texts.append("\t".join(parts))
                    if len(lines) == COPY_ROWS:
                        yield reading.CopyRows(stream, file, lines, texts)
                        lines, texts = [], []
                    continue
            # A row with anything wrong goes the way of every row of other mappings: the
            # record, or the RowError that says what is wrong and where.
            if lines:
                yield reading.CopyRows(stream, file, lines, texts)
                lines, texts = [], []
            yield from read(row)
        if lines:
            yield reading.CopyRows(stream, file, lines, texts)

    def reader(self, header: list[str], file: str):
        """A function from a row of this header to its records or RowErrors, with the
        mapping compiled for the header: a row costs a few list lookups, no name lookups."""
        plan = self._plan(header)

        def read(row: CsvRow) -> Iterator[Record | RowError]:
            origin = Origin(file=file, line=row.line)
            if row.problem:
                yield RowError(origin, "", ",".join(row.cells)[:200], row.problem)
                return
            cells = row.cells
            for record_type, getters, columns in plan:
                fields: dict[str, Any] = {}
                try:
                    for name, getter in getters:
                        value = getter(cells)
                        if value is not None:
                            fields[name] = value
                except _CellError as e:
                    yield RowError(origin, e.column, e.value, e.reason)
                    continue
                yield build(record_type, origin, fields, columns)

        return read

    def _plan(self, header: list[str]) -> list[tuple[type[Record], list, dict[str, str]]]:
        """Compile the mapping for one header: per field a getter bound to column indexes,
        so a row costs a few list lookups instead of name lookups and dispatch."""
        index = {name: i for i, name in enumerate(header)}
        return [
            (
                RECORD_TYPES[record.stream],
                [(name, _getter(self, spec, index)) for name, spec in record.fields.items()],
                {name: spec.column or "" for name, spec in record.fields.items()},
            )
            for record in self.records
        ]


def _getter(mapping: Mapping, spec: FieldSpec, index: dict[str, int]):
    if spec.type == "const":
        return lambda cells: spec.value
    if spec.type == "viewpoints":
        pairs = [(label, index.get(column)) for label, column in (spec.columns or {}).items()]

        def viewpoints(cells):
            found = {label: normalize_text(cells[i]) for label, i in pairs if i is not None}
            return {label: value for label, value in found.items() if value}

        return viewpoints
    if spec.type == "format":
        parts = [(c, index.get(c)) for c in spec.source_columns()]

        def formatted(cells):
            values = {}
            for column, i in parts:
                value = normalize_width(normalize_text(cells[i])) if i is not None else ""
                if not value:
                    raise _CellError(column, "", "必須の値が空です")
                values[column] = value
            return (spec.template or "").format_map(values)

        return formatted
    i = index.get(spec.column or "")
    convert = _CONVERTERS[spec.type]
    times = index.get(spec.time_column or "")

    def value(cells):
        raw = _normalized(cells[i]) if i is not None else ""
        if raw == "" and spec.type != "code":
            if spec.optional:
                return None
            raise _CellError(spec.column, raw, "必須の値が空です")
        try:
            return convert(mapping, spec, raw, cells, times)
        except _CellError:
            raise
        except (ValueError, InvalidOperation) as e:
            raise _CellError(spec.column, raw, str(e)) from None

    if spec.type not in ("date", "code") or i is None:
        return value
    # A date or a code depends on its cell alone, and cells repeat (a day on every row of
    # an attendance export, a handful of marks): a cell read once is remembered.
    remembered: dict[str, Any] = {}

    def remembered_value(cells):
        cell = cells[i]
        found = remembered.get(cell)
        if found is None:
            found = value(cells)  # raises for a bad cell, which is never remembered
            if len(remembered) < _REMEMBERED_CELLS:
                remembered[cell] = found
        return found

    return remembered_value


_REMEMBERED_CELLS = 10_000  # per column of a file
COPY_ROWS = 1_000  # rows per reading.CopyRows
# Field types whose value depends on one cell alone (and the mapping): remembered per cell.
_ONE_CELL = frozenset(
    {"str", "int", "decimal", "date", "timestamp_date", "code", "year_month", "minutes"}
)


def _copy_reader(mapping: Mapping, header: list[str]) -> tuple[str, list[Callable]] | None:
    """For a mapping of one record of a data stream whose fields are validated each on its
    own (no validator looks at two fields), the stream and a function per field, in
    ``reading.copy_fields`` order, from a row's cells to the field's COPY text, or None when
    the cell gives no valid value (the row then goes the way of a record, which says why).
    Each field is validated by pydantic just as the record validates it; what a cell gives
    is remembered, so that most rows cost a few dictionary lookups. None for any other
    mapping."""
    if len(mapping.records) != 1:
        return None
    spec = mapping.records[0]
    record = RECORD_TYPES[spec.stream]
    decorators = record.__pydantic_decorators__
    if (
        record.stream in reading.ROSTER_STREAMS
        or not set(reading.PUPIL_REFERENCES) & set(record.model_fields)
        or decorators.field_validators
        or decorators.model_validators
        or decorators.validators
        or decorators.root_validators
        or not set(spec.fields) <= set(record.model_fields) - {"origin"}
        or any(f.is_required() and n not in spec.fields for n, f in record.model_fields.items())
    ):
        return None
    index = {name: i for i, name in enumerate(header)}
    getters = dict(next(getters for _, getters, _ in mapping._plan(header)))
    config = ConfigDict(str_strip_whitespace=bool(record.model_config.get("str_strip_whitespace")))
    columns = []
    for name in reading.copy_fields(record):
        info = record.model_fields[name]
        if name not in spec.fields:  # the record's default, as the record would have it
            default = reading.copy_value(info.get_default(call_default_factory=True))
            columns.append(lambda cells, default=default: default)
            continue
        field = spec.fields[name]
        kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        adapter = TypeAdapter(kind, config=config)
        text = _field_text(getters[name], adapter, info.get_default(call_default_factory=True))
        if field.type in _ONE_CELL and field.column in index:
            text = _remembered(text, index[field.column])
        columns.append(text)
    return record.stream, columns


def _field_text(getter, adapter: TypeAdapter, default: Any) -> Callable[[list[str]], str | None]:
    def text(cells: list[str]) -> str | None:
        try:
            value = getter(cells)
        except _CellError:
            return None
        if value is None:  # an empty optional cell leaves the field out of the record
            return None if default is PydanticUndefined else reading.copy_value(default)
        try:
            return reading.copy_value(adapter.validate_python(value))
        except ValidationError:
            return None

    return text


def _remembered(text: Callable[[list[str]], str | None], i: int):
    remembered: dict[str, str | None] = {}

    def remembered_text(cells: list[str]) -> str | None:
        cell = cells[i]
        if cell in remembered:
            return remembered[cell]
        found = text(cells)
        if len(remembered) < _REMEMBERED_CELLS:
            remembered[cell] = found
        return found

    return remembered_text


def _normalized(cell: str) -> str:
    # normalize_text, minus its character table for the ASCII cells of most rows (the
    # table only maps non-ASCII characters).
    return cell.strip() if cell.isascii() else normalize_text(cell)


class _CellError(Exception):
    def __init__(self, column: str | None, value: str, reason: str):
        super().__init__(reason)
        self.column, self.value, self.reason = column or "", value, reason


@lru_cache(maxsize=8192)
def _cached_date(raw: str, formats: tuple[str, ...] | None) -> dt.date:
    # Dates repeat on every row of a day's attendance: parse each distinct string once.
    return parse_date(raw, formats)


def _date(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> dt.date:
    try:
        return _cached_date(raw, tuple(spec.formats) if spec.formats else None)
    except DateParseError as e:
        raise _CellError(spec.column, raw, str(e)) from None


def _datetime(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> dt.datetime:
    from django.utils import timezone

    day = _date(mapping, spec, raw, cells)
    time_text = (
        normalize_width(normalize_text(cells[times] if times is not None else "")) or "00:00"
    )
    try:
        hour, minute = (int(p) for p in time_text.split(":")[:2])
        moment = dt.datetime.combine(day, dt.time(hour, minute))
    except ValueError:
        raise _CellError(spec.time_column, time_text, "時刻として読めません（HH:MM）") from None
    return timezone.make_aware(moment)


def _timestamp_date(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> dt.date:
    """The day of a timestamp cell as form tools write it (``2025/6/2 8:01:12``,
    ``2025-06-02T08:01:12``): the date before the time, in the exporter's local time."""
    return _date(
        mapping, spec, re.split(r"[ T]", normalize_width(raw).strip(), maxsplit=1)[0], cells
    )


def _code(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> str:
    table = mapping.codes[spec.codes or ""]
    key = normalize_width(raw)
    if key not in table:
        known = "、".join(f"「{k}」" for k in table)
        raise _CellError(
            spec.column,
            raw,
            f"コード「{raw}」はコード表 {spec.codes} にありません（使えるのは {known}）",
        )
    return table[key]


def _int(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> int:
    try:
        return int(normalize_width(raw))
    except ValueError:
        raise _CellError(spec.column, raw, "整数として読めません") from None


def _decimal(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> Decimal:
    try:
        return Decimal(normalize_width(raw))
    except InvalidOperation:
        raise _CellError(spec.column, raw, "数値として読めません") from None


def _minutes(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> int:
    """Minutes (``25``, ``12.5``) as whole seconds."""
    try:
        minutes = Decimal(normalize_width(raw))
    except InvalidOperation:
        raise _CellError(spec.column, raw, "分の数として読めません（例: 25 や 12.5）") from None
    if not minutes.is_finite() or minutes < 0 or minutes > 24 * 60:
        raise _CellError(spec.column, raw, "0 から 1440 分（1 日）までの値にしてください")
    return int(minutes * 60)


def _year_month(mapping: Mapping, spec: FieldSpec, raw: str, cells, times=None) -> str:
    text = normalize_width(raw)
    if (
        len(text) in (6, 7)
        and text.replace("/", "").replace("-", "").isdigit()
        and len(text.replace("/", "").replace("-", "")) == 6
    ):
        digits = text.replace("/", "").replace("-", "")
        return f"{digits[:4]}-{digits[4:]}"
    return _cached_date(text, None).strftime("%Y-%m")  # a full date: keep year and month only


_CONVERTERS = {
    "str": lambda mapping, spec, raw, cells, times: raw,
    "int": _int,
    "decimal": _decimal,
    "date": _date,
    "datetime": _datetime,
    "timestamp_date": _timestamp_date,
    "code": _code,
    "year_month": _year_month,
    "minutes": _minutes,
}


def load_mappings(default_dir: Path, override_dir: Path | None = None) -> list[Mapping]:
    """The shipped mappings, with any file of the same name in ``override_dir`` taking its
    place (a municipality's adjusted copy)."""
    files = {p.name: p for p in sorted(default_dir.glob("*.yaml"))}
    if override_dir is not None:
        if not override_dir.is_dir():
            raise SourceError(f"マッピングのディレクトリ {override_dir} がありません。")
        files |= {p.name: p for p in sorted(override_dir.glob("*.yaml"))}
    return [Mapping.load(p) for p in files.values()]


def choose_mapping(mappings: list[Mapping], header: list[str], file: str) -> Mapping:
    """The mapping whose identifying columns are all in the header; else a SourceError naming
    what the closest layout misses."""
    present = set(header)
    matching = [m for m in mappings if set(m.identifying_columns()) <= present]
    if matching:
        return max(matching, key=lambda m: len(m.identifying_columns()))
    closest = max(mappings, key=lambda m: len(set(m.identifying_columns()) & present))
    missing = [c for c in closest.identifying_columns() if c not in present]
    if len(mappings) == 1:  # the upload named its export kind
        raise SourceError(
            f"{file}: 「{closest.description or closest.kind}」のファイルではありません。"
            f"見出しに {'、'.join(closest.identifying_columns())} が必要ですが、"
            f"{'、'.join(missing)} がありません（見出し: {'、'.join(header) or 'なし'}）。"
        )
    raise SourceError(
        f"{file}: どの出力形式にも合いません。最も近い「{closest.description or closest.kind}」"
        f"には必須の列 {'、'.join(missing)} がありません（見出し: {'、'.join(header) or 'なし'}）。"
    )
