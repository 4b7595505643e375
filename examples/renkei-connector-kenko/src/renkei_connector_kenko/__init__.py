"""けんこう観察 (health observation) JSON Lines export → Renkei health observations."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pydantic import ValidationError

from renkei.connectors.records import HealthObservationRecord, Origin, Record
from renkei.connectors.sdk import (
    CheckResult,
    Connector,
    ConnectorConfig,
    RowError,
    RunState,
    SourceError,
    Stream,
    build,
)

FIELDS = {
    "student_source_id": "sourcedId",
    "date": "date",
    "condition": "condition",
    "symptoms": "symptoms",
}


class KenkoConfig(ConnectorConfig):
    """Only the exported files (``paths``); nothing secret."""


class KenkoConnector(Connector):
    name = "kenko"
    version = "1.0.0"
    sdk_version = "1"
    title = "けんこう観察アプリ（JSON Lines 出力）"
    Config = KenkoConfig
    identity_system = "oneroster"  # rows name pupils by their OneRoster sourcedId

    def check(self, config: KenkoConfig) -> CheckResult:
        missing = [str(p) for p in config.paths if not p.is_file()]
        if missing:
            return CheckResult(False, f"ファイルがありません: {', '.join(missing)}")
        return CheckResult(True, f"{len(config.paths)} 件のファイルを読めます。")

    def discover(self) -> list[Stream]:
        return [Stream("health", "毎朝の健康観察（体調・症状）")]

    def read(self, config: KenkoConfig, state: RunState) -> Iterator[Record | RowError]:
        for path in config.paths:
            if not path.is_file():
                raise SourceError(f"ファイル {path} がありません。")
            with path.open(encoding="utf-8-sig") as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        yield self._record(line, Origin(file=path.name, line=number))

    @staticmethod
    def _record(line: str, origin: Origin) -> Record | RowError:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            return RowError(origin, "", line[:200], f"JSON として読めません（{e.msg}）")
        if not isinstance(item, dict):
            return RowError(origin, "", line[:200], "1 行に 1 つの JSON オブジェクトが必要です")
        fields = {name: item[key] for name, key in FIELDS.items() if item.get(key) is not None}
        try:
            return build(HealthObservationRecord, origin, fields, FIELDS)
        except ValidationError as e:  # build() already turns these into RowError
            return RowError(origin, "", line[:200], str(e))
