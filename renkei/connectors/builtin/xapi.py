"""xAPI statements → learning activity (活動情報). xAPI is the format of learning logs that
学習eポータル, digital drills and learning record stores (LRS) export, and the one MEXT's
education data standard names for activity information.

Files: JSON Lines (``.jsonl`` / ``.ndjson``, one statement per line; best for large exports)
or JSON (``.json``: an array of statements, or an LRS ``StatementResult`` with
``statements``). Each statement gives one record:

* the pupil: ``actor.mbox`` (``mailto:`` stripped) or ``actor.account.name``, matched to the
  roster's principal names (as the Microsoft 365 reports are); the actor itself is stored
  nowhere: a statement of someone not on the roster is quarantined;
* ``verb.id``, ``object.id``, the object's name (``definition.name``, Japanese first),
  ``timestamp`` (with its time zone), ``result.duration`` in seconds, and the system
  (``context.platform``, else "xapi").

Statements voided in the same import (a statement with verb ``…/voided`` whose object is a
``StatementRef``) are not imported: the voided statement and the voiding one are both listed
in the error report, so the counts still add up. Duplicate statement ids, statements over
MAX_STATEMENT bytes (huge ``result.extensions``) and statements without a usable actor,
verb, object or time are quarantined with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from renkei.connectors.records import LearningActivityRecord, Origin, Record
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

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
MAX_STATEMENT = 64 * 1024  # bytes of one statement's JSON
LINES = (".jsonl", ".ndjson")
_DURATION = TypeAdapter(dt.timedelta)  # ISO 8601 durations (PT25M30S), as xAPI writes them


class XapiConfig(ConnectorConfig):
    """Only the exported files (``paths``)."""


class XapiConnector(Connector):
    name = "xapi"
    version = "1.0"
    title = "xAPI 学習記録（LRS・学習eポータルの JSON / JSON Lines 出力）"
    Config = XapiConfig
    parallel_read = True

    def discover(self) -> list[Stream]:
        return [
            Stream("learning_activity", "学習活動（xAPI の statement: 誰が・何を・いつ・何分）")
        ]

    def check(self, config: XapiConfig) -> CheckResult:
        try:
            for path in config.paths:
                _kind(path)
        except SourceError as e:
            return CheckResult(False, str(e))
        return CheckResult(True, f"{len(config.paths)} 件のファイルを読めます。")

    def read(self, config: XapiConfig, state: RunState) -> Iterator[Record | RowError]:
        kinds = [(path, _kind(path)) for path in config.paths]
        # First pass: which statements this import voids (the voiding one may come later).
        voided: dict[str, str] = {}
        for path, lines in kinds:
            for _origin, item, _size in _statements(path, lines):
                target = _voided_target(item)
                if target:
                    voided[target] = str(item.get("id", ""))
        seen: set[int] = set()
        for path, lines in kinds:
            for origin, item, size in _statements(path, lines):
                yield _record(origin, item, size, voided, seen)


def _kind(path: Path) -> bool:
    """True for JSON Lines, False for JSON; a SourceError for anything else."""
    if not path.is_file():
        raise SourceError(f"ファイル {path.name} がありません。")
    if path.suffix.lower() in LINES:
        return True
    if path.suffix.lower() == ".json":
        return False
    raise SourceError(
        f"{path.name}: xAPI の statement は .jsonl（1 行に 1 件）か .json で渡してください。"
    )


def _statements(path: Path, lines: bool) -> Iterator[tuple[Origin, Any, int]]:
    """(where, the parsed statement or a RowError, its size in bytes) of every statement."""
    if lines:
        with path.open(encoding="utf-8-sig") as text:
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                origin = Origin(file=path.name, line=number)
                size = len(line.encode("utf-8"))
                if size > MAX_STATEMENT:  # not even parsed
                    yield origin, None, size
                    continue
                try:
                    yield origin, json.loads(line), size
                except json.JSONDecodeError as e:
                    yield (
                        origin,
                        RowError(origin, "", line[:200], f"JSON として読めません（{e.msg}）"),
                        size,
                    )
        return
    try:
        with path.open(encoding="utf-8-sig") as text:
            data = json.load(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path.name}: JSON として読めません（{e}）。") from None
    items = data.get("statements") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SourceError(
            f"{path.name}: statement の配列、または statements を持つオブジェクトが必要です。"
        )
    for number, item in enumerate(items, start=1):
        yield Origin(file=path.name, line=number), item, len(json.dumps(item, ensure_ascii=False))


def _voided_target(item: Any) -> str | None:
    if not isinstance(item, dict) or _get(item, "verb", "id") != VOIDED:
        return None
    target = item.get("object")
    if isinstance(target, dict) and target.get("objectType") == "StatementRef":
        return str(target.get("id", "")).lower() or None
    return None


def _get(item: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(item, dict):
            return None
        item = item.get(name)
    return item


def _record(
    origin: Origin, item: Any, size: int, voided: dict[str, str], seen: set[int]
) -> Record | RowError:
    if isinstance(item, RowError):
        return item
    if item is None:
        return RowError(
            origin,
            "",
            f"{size} バイト",
            f"statement が大きすぎます（{MAX_STATEMENT // 1024} KB まで）。"
            "result.extensions などを小さくして書き出してください",
        )
    if not isinstance(item, dict):
        return RowError(origin, "", str(item)[:200], "statement は JSON オブジェクトです")
    statement_id = str(item.get("id", "")).lower()
    if statement_id:
        try:
            key = uuid.UUID(statement_id).int
        except ValueError:
            return RowError(origin, "id", statement_id[:100], "id が UUID ではありません")
        if key in seen:
            return RowError(
                origin, "id", statement_id, "同じ id の statement がこの取り込みに既にあります"
            )
        seen.add(key)
    target = _voided_target(item)
    if target:
        return RowError(
            origin, "verb.id", VOIDED, f"取り消しの statement です（対象 {target}）。記録はしません"
        )
    if statement_id in voided:
        return RowError(
            origin,
            "id",
            statement_id,
            f"この取り込みの statement {voided[statement_id] or '（id なし）'} で取り消されています",
        )
    actor, actor_column = _actor(item.get("actor"))
    if not actor:
        return RowError(
            origin, "actor", "", "actor に mbox か account.name が必要です（グループは使えません）"
        )
    duration = _get(item, "result", "duration")
    seconds = None
    if duration is not None:
        try:
            seconds = int(_DURATION.validate_python(duration).total_seconds())
        except ValidationError:
            return RowError(
                origin,
                "result.duration",
                str(duration)[:100],
                "ISO 8601 の時間（例: PT15M）ではありません",
            )
    fields = {
        "principal_name": actor,
        "verb": _get(item, "verb", "id"),
        "object_id": _get(item, "object", "id"),
        "object_name": _name(_get(item, "object", "definition", "name")),
        "occurred_at": item.get("timestamp"),
        "duration_seconds": seconds,
        "source_system": str(_get(item, "context", "platform") or "xapi")[:40],
    }
    columns = {
        "principal_name": actor_column,
        "verb": "verb.id",
        "object_id": "object.id",
        "object_name": "object.definition.name",
        "occurred_at": "timestamp",
        "duration_seconds": "result.duration",
        "source_system": "context.platform",
    }
    return build(
        LearningActivityRecord, origin, {k: v for k, v in fields.items() if v is not None}, columns
    )


def _actor(actor: Any) -> tuple[str, str]:
    """The account the pupil uses, and the field it came from."""
    if not isinstance(actor, dict) or actor.get("objectType") == "Group":
        return "", "actor"
    mbox = actor.get("mbox")
    if isinstance(mbox, str) and mbox.lower().startswith("mailto:"):
        return mbox[7:].strip(), "actor.mbox"
    name = _get(actor, "account", "name")
    if isinstance(name, str) and name.strip():
        return name.strip(), "actor.account.name"
    return "", "actor"


def _name(names: Any) -> str:
    """A language map's Japanese entry, else its first; truncated to the column."""
    if not isinstance(names, dict) or not names:
        return ""
    for language in ("ja-JP", "ja"):
        if isinstance(names.get(language), str):
            return names[language][:200]
    first = next(iter(names.values()))
    return first[:200] if isinstance(first, str) else ""
