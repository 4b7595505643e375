"""C4th, スズキ校務, form tools' check-ins and digital drills' learning histories: CSV exports
read through declarative mappings (renkei/connectors/mappings/<vendor>/*.yaml). A municipality with a different layout copies those files, edits
the column names or codes, and points ``mappings_dir`` at its copies."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from renkei.connectors.mapping import Mapping, choose_mapping, load_mappings
from renkei.connectors.reading import ROSTER_STREAMS, CopyRows
from renkei.connectors.records import RECORD_TYPES, Record
from renkei.connectors.sdk import (
    CheckResult,
    Connector,
    ConnectorConfig,
    RowError,
    RunState,
    SourceError,
    Stream,
    csv_rows,
)
from renkei.connectors.textio import DecodeError, detect_encoding, open_text

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


class VendorCsvConfig(ConnectorConfig):
    mappings_dir: Path | None = None
    # One export kind (a mapping's ``kind``): then every file must have that layout.
    kind: str | None = None
    per_run_fields = frozenset({"kind"})


class VendorCsvConnector(Connector):
    vendor: ClassVar[str]
    Config = VendorCsvConfig
    parallel_read = True

    @classmethod
    def mappings(cls, config: VendorCsvConfig | None = None) -> list[Mapping]:
        mappings = load_mappings(MAPPINGS / cls.vendor, config.mappings_dir if config else None)
        if config is None or not config.kind:
            return mappings
        chosen = [m for m in mappings if m.kind == config.kind]
        if not chosen:
            kinds = "、".join(m.kind for m in mappings)
            raise SourceError(f"出力形式「{config.kind}」はありません（{kinds} のどれか）。")
        return chosen

    @classmethod
    def export_kinds(cls) -> dict[str, str]:
        return {m.kind: m.description or m.kind for m in cls.mappings()}

    @classmethod
    def reads_in_parallel(cls, config: VendorCsvConfig) -> bool:
        """Not for roster files alone: sending a 100,000-pupil roster's records from a
        child process cost a fifth of its import (their pickling, 2 s of reading)."""
        try:
            mappings = cls.mappings(config)
            layouts = [cls._layout(path, mappings, whole_file=False)[0] for path in config.paths]
        except SourceError:
            return True  # (read says what is wrong)
        return any(r.stream not in ROSTER_STREAMS for m in layouts for r in m.records)

    def discover(self) -> list[Stream]:
        streams = {r.stream for m in self.mappings() for r in m.records}
        return [
            Stream(name, RECORD_TYPES[name].__doc__ or "")
            for name in RECORD_TYPES
            if name in streams
        ]

    def check(self, config: VendorCsvConfig) -> CheckResult:
        try:
            mappings = self.mappings(config)
            for path in config.paths:
                self._mapping_for(path, mappings)
        except SourceError as e:
            return CheckResult(False, str(e))
        return CheckResult(True, f"{len(config.paths)} 件のファイルを読めます。")

    def read(
        self, config: VendorCsvConfig, state: RunState
    ) -> Iterator[Record | RowError | CopyRows]:
        mappings = self.mappings(config)
        # Decide every file's layout before reading any row: a file that fits no layout
        # fails the run up front. Its encoding is told from its start, as the reading that
        # follows checks every byte (a bad one fails the run at its line, before the run's
        # one transaction commits): checking the whole file first would read it twice.
        plan = [(path, *self._layout(path, mappings, whole_file=False)) for path in config.paths]
        for path, mapping, encoding in plan:
            yield from mapping.read(csv_rows(path, mapping.required_columns(), encoding), path.name)

    @classmethod
    def _mapping_for(cls, path: Path, mappings: list[Mapping]) -> Mapping:
        return cls._layout(path, mappings)[0]

    @staticmethod
    def _layout(
        path: Path, mappings: list[Mapping], whole_file: bool = True
    ) -> tuple[Mapping, str]:
        """The file's mapping, and its encoding (checked over the whole file, unless not
        ``whole_file``: see detect_encoding)."""
        if not path.is_file():
            raise SourceError(f"ファイル {path} がありません。")
        try:
            encoding = detect_encoding(path, whole_file=whole_file)
            with open_text(path, encoding) as text:
                header = [h.strip() for h in next(csv.reader(text), [])]
        except DecodeError as e:
            raise SourceError(f"{path.name}: {e}") from e
        if not header:
            raise SourceError(f"{path.name}: ファイルが空です（見出し行がありません）。")
        return choose_mapping(mappings, header, path.name), encoding


class C4thConnector(VendorCsvConnector):
    name = "c4th"
    vendor = "c4th"
    version = "1.0"
    title = "EDUCOM Manager C4th（CSV 出力）"
    identity_system = "c4th"


class CheckinConnector(VendorCsvConnector):
    """心の天気 and similar check-ins from form tools' CSV (sensitive: see
    docs/school-records.md). Pupils are named by the account they answered with."""

    name = "checkin"
    vendor = "checkin"
    version = "1.0"
    title = "心の天気などのチェックイン（Google フォーム・Microsoft Forms の CSV）"


class SuzukiConnector(VendorCsvConnector):
    name = "suzuki"
    vendor = "suzuki"
    version = "1.0"
    title = "スズキ校務シリーズ（CSV 出力）"
    identity_system = "suzuki"


class DrillConfig(VendorCsvConfig):
    id_system: str = Field(
        default="c4th",
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        title="児童生徒ID の連携元",
        description="児童生徒ID で児童生徒を示すファイルのとき、その ID を振ったシステム"
        "（c4th・suzuki・oneroster）。アカウントで示すファイルには使いません",
    )


class DrillConnector(VendorCsvConnector):
    """Digital drills' learning histories (one row a day and unit: minutes, questions answered
    and answered right). Pupils named by account, or by a school system's 児童生徒ID."""

    name = "drill"
    vendor = "drill"
    version = "1.0"
    title = "デジタルドリルの学習履歴（CSV）"
    Config = DrillConfig

    @classmethod
    def source_system(cls, config: ConnectorConfig | None = None) -> str:
        return config.id_system if isinstance(config, DrillConfig) else DrillConfig().id_system
