"""Declarative column mappings for vendor CSV exports (C4th, スズキ校務, ...).

Vendor layouts vary by product version and municipality and are not public, so each export
kind is a YAML file: which column feeds which canonical field, code tables (欠・遅・早・停・忌),
date formats. A municipality copies a shipped file, adjusts the column names and passes the
directory with ``--config``; no code changes. ``docs/connectors.md`` documents the format.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from renkei.connectors.eras import DateParseError, normalize_width, parse_date
from renkei.connectors.records import RECORD_TYPES, Origin, Record
from renkei.connectors.sdk import CsvRow, RowError, SourceError, build
from renkei.connectors.textio import normalize_text

FieldType = Literal["str", "int", "decimal", "date", "datetime", "code", "year_month", "const",
                    "viewpoints", "format"]


class FieldSpec(BaseModel):
    """How one canonical field is read from a row."""

    model_config = ConfigDict(extra="forbid")
    column: str | None = None
    type: FieldType = "str"
    optional: bool = False
    formats: list[str] | None = None         # date: eras.FORMATS names; None = all
    time_column: str | None = None           # datetime: date in `column`, time (HH:MM) here
    codes: str | None = None                 # code: name of a table under `codes:`
    value: Any = None                        # const
    columns: dict[str, str] | None = None    # viewpoints: {観点名: 列名}
    template: str | None = None              # format: e.g. "{学年}年{組}組" from those columns

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
        self.codes = {name: {normalize_width(k): v for k, v in table.items()}
                      for name, table in self.codes.items()}
        for record in self.records:
            for name, spec in record.fields.items():
                if spec.codes and spec.codes not in self.codes:
                    raise ValueError(f"{record.stream}.{name}: コード表「{spec.codes}」がありません")
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

    def apply(self, row: CsvRow, file: str) -> Iterator[Record | RowError]:
        """The records of one CSV row, or RowErrors saying which column is wrong and why."""
        origin = Origin(file=file, line=row.line)
        if row.problem:
            yield RowError(origin, "", _preview(row.values), row.problem)
            return
        for record in self.records:
            fields: dict[str, Any] = {}
            columns: dict[str, str] = {}
            error = None
            for name, spec in record.fields.items():
                columns[name] = spec.column or ""
                try:
                    value = self._value(spec, row.values)
                except _CellError as e:
                    error = RowError(origin, e.column, e.value, e.reason)
                    break
                if value is not None:
                    fields[name] = value
            yield error or build(RECORD_TYPES[record.stream], origin, fields, columns)

    def _value(self, spec: FieldSpec, values: dict[str, str]) -> Any:
        if spec.type == "const":
            return spec.value
        if spec.type == "viewpoints":
            return {label: normalize_text(values.get(col, "")) for label, col in
                    (spec.columns or {}).items() if normalize_text(values.get(col, ""))}
        if spec.type == "format":
            parts = {c: normalize_width(normalize_text(values.get(c, "")))
                     for c in spec.source_columns()}
            if not all(parts.values()):
                empty = next(c for c, v in parts.items() if not v)
                raise _CellError(empty, "", "必須の値が空です")
            return (spec.template or "").format_map(parts)
        raw = normalize_text(values.get(spec.column or "", ""))
        if raw == "" and spec.type != "code":
            if spec.optional:
                return None
            raise _CellError(spec.column, raw, "必須の値が空です")
        try:
            return _CONVERTERS[spec.type](self, spec, raw, values)
        except _CellError:
            raise
        except (ValueError, InvalidOperation) as e:
            raise _CellError(spec.column, raw, str(e)) from None


class _CellError(Exception):
    def __init__(self, column: str | None, value: str, reason: str):
        super().__init__(reason)
        self.column, self.value, self.reason = column or "", value, reason


def _preview(values: dict[str, str]) -> str:
    return ",".join(values.values())[:200]


@lru_cache(maxsize=8192)
def _cached_date(raw: str, formats: tuple[str, ...] | None) -> dt.date:
    # Dates repeat on every row of a day's attendance: parse each distinct string once.
    return parse_date(raw, formats)


def _date(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> dt.date:
    try:
        return _cached_date(raw, tuple(spec.formats) if spec.formats else None)
    except DateParseError as e:
        raise _CellError(spec.column, raw, str(e)) from None


def _datetime(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> dt.datetime:
    from django.utils import timezone

    day = _date(mapping, spec, raw, values)
    time_text = normalize_width(normalize_text(values.get(spec.time_column or "", ""))) or "00:00"
    try:
        hour, minute = (int(p) for p in time_text.split(":")[:2])
        moment = dt.datetime.combine(day, dt.time(hour, minute))
    except ValueError:
        raise _CellError(spec.time_column, time_text, "時刻として読めません（HH:MM）") from None
    return timezone.make_aware(moment)


def _code(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> str:
    table = mapping.codes[spec.codes or ""]
    key = normalize_width(raw)
    if key not in table:
        known = "、".join(f"「{k}」" for k in table)
        raise _CellError(spec.column, raw, f"コード「{raw}」はコード表 {spec.codes} にありません（使えるのは {known}）")
    return table[key]


def _int(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> int:
    try:
        return int(normalize_width(raw))
    except ValueError:
        raise _CellError(spec.column, raw, "整数として読めません") from None


def _decimal(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> Decimal:
    try:
        return Decimal(normalize_width(raw))
    except InvalidOperation:
        raise _CellError(spec.column, raw, "数値として読めません") from None


def _year_month(mapping: Mapping, spec: FieldSpec, raw: str, values: dict) -> str:
    text = normalize_width(raw)
    if len(text) in (6, 7) and text.replace("/", "").replace("-", "").isdigit() and len(
            text.replace("/", "").replace("-", "")) == 6:
        digits = text.replace("/", "").replace("-", "")
        return f"{digits[:4]}-{digits[4:]}"
    return _cached_date(text, None).strftime("%Y-%m")  # a full date: keep year and month only


_CONVERTERS = {
    "str": lambda mapping, spec, raw, values: raw,
    "int": _int,
    "decimal": _decimal,
    "date": _date,
    "datetime": _datetime,
    "code": _code,
    "year_month": _year_month,
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
    raise SourceError(
        f"{file}: どの出力形式にも合いません。最も近い「{closest.description or closest.kind}」"
        f"には必須の列 {'、'.join(missing)} がありません（見出し: {'、'.join(header) or 'なし'}）。")
