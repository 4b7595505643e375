"""xAPI statements → learning activity (活動情報). xAPI is the format of learning logs that
学習eポータル, digital drills and learning record stores (LRS) export, and the one MEXT's
education data standard names for activity information.

Input: files, JSON Lines (``.jsonl`` / ``.ndjson``, one statement per line; best for large
exports) or JSON (``.json``: an array of statements, or an LRS ``StatementResult`` with
``statements``); or a pull from an LRS's statements resource (``endpoint``, see lrs.py),
whose pages are read as such JSON files. Each statement gives one record:

* the pupil: ``actor.mbox`` (``mailto:`` stripped) or ``actor.account.name``, matched to the
  roster's principal names (as the Microsoft 365 reports are); the actor itself is stored
  nowhere: a statement of someone not on the roster is quarantined;
* ``id``, ``verb.id``, ``object.id``, the object's name (``definition.name``, Japanese first),
  ``timestamp`` (with its time zone), ``result.duration`` in seconds, the system
  (``context.platform``, else "xapi");
* extensions named by the last segment of their IRI (any namespace: each tool has its own):
  ``…/subject`` (教科) in ``object.definition.extensions``, else ``context.extensions``;
  ``…/items-attempted`` and ``…/items-correct`` (a drill's questions) in ``result.extensions``.

A voiding statement (verb ``…/voided``, object a ``StatementRef``) is accepted as such: the
learning activity an earlier import stored from the statement it names is deleted; a statement
it voids in the same import is not imported but quarantined with the reason. Duplicate
statement ids, statements over MAX_STATEMENT bytes (huge ``result.extensions``) and statements
without a usable actor, verb, object or time are quarantined with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from renkei.connectors.builtin import lrs
from renkei.connectors.records import (
    LearningActivityRecord,
    Origin,
    Record,
    StatementVoidRecord,
)
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
# Extensions are recognised by the last segment of their IRI, whatever its namespace
# (https://example.jp/xapi/extensions/subject): each tool has its own.
SUBJECT, ATTEMPTED, CORRECT = "subject", "items-attempted", "items-correct"
_LAST_SEGMENT = re.compile(r"[/#]")
MAX_STATEMENT = 64 * 1024  # bytes of one statement's JSON
LINES = (".jsonl", ".ndjson")
_DURATION = TypeAdapter(dt.timedelta)  # ISO 8601 durations (PT25M30S), as xAPI writes them


class XapiConfig(ConnectorConfig):
    """Exported files (``paths``), or an LRS to pull from (``endpoint`` and credentials)."""

    endpoint: str = Field(
        default="",
        title="LRS の xAPI エンドポイント",
        description="例: https://lrs.example.jp/xapi/（statements はその下）",
    )
    auth: Literal["basic", "oauth2"] = Field(
        default="basic",
        title="認証方式",
        description="basic（HTTP Basic）か oauth2（クライアント資格情報）",
    )
    username: str = Field(default="", title="ユーザー名（basic）")
    password: str = Field(default="", title="パスワード（basic）")
    token_url: str = Field(default="", title="トークン エンドポイント（oauth2）")
    client_id: str = Field(default="", title="クライアント ID（oauth2）")
    client_secret: str = Field(default="", title="クライアント シークレット（oauth2）")
    scope: str = Field(default="", title="スコープ（oauth2、必要なら）")
    since: AwareDatetime | None = Field(
        default=None,
        title="最初の取り込みの開始日時",
        description="2 回目からは前回取り込んだ最新の statement の続きから取ります",
    )
    page_size: int = Field(default=500, ge=1, le=1000, title="1 ページの statement 数")
    timeout_seconds: float = Field(default=60.0, gt=0, le=600, title="応答を待つ秒数")
    ca_bundle: Path | None = None  # extra CA to trust (a proxy or a test server)

    @field_validator("endpoint", "token_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.query:
            raise ValueError(
                f"「{value}」は https:// で始まり、利用者名やクエリ（?…）を含まない URL にしてください"
            )
        return value

    @model_validator(mode="after")
    def _credentials_for_a_pull(self) -> XapiConfig:
        if self.paths or not self.endpoint:
            return self
        if self.auth == "basic" and not (self.username and self.password):
            raise ValueError("LRS から取り込むには username と password が必要です")
        if self.auth == "oauth2" and not (self.token_url and self.client_id and self.client_secret):
            raise ValueError(
                "LRS から oauth2 で取り込むには token_url・client_id・client_secret が必要です"
            )
        return self


class XapiConnector(Connector):
    name = "xapi"
    version = "1.1"
    title = "xAPI 学習記録（LRS から取得、または JSON / JSON Lines の出力）"
    Config = XapiConfig
    secret_fields = frozenset({"password", "client_secret"})
    secret_safe_fields = frozenset({"since", "page_size", "timeout_seconds"})
    parallel_read = True

    def discover(self) -> list[Stream]:
        return [
            Stream("learning_activity", "学習活動（xAPI の statement: 誰が・何を・いつ・何分）"),
            Stream("voided_statements", "取り消された statement（以前に取り込んだ学習活動を削除）"),
        ]

    def check(self, config: XapiConfig) -> CheckResult:
        try:
            if config.paths or not config.endpoint:
                for path in config.paths:
                    _kind(path)
                return CheckResult(True, f"{len(config.paths)} 件のファイルを読めます。")
            lrs.check(config)
        except SourceError as e:
            return CheckResult(False, str(e))
        return CheckResult(True, "LRS に接続し、statement を読めました。")

    def read(self, config: XapiConfig, state: RunState) -> Iterator[Record | RowError]:
        if config.paths or not config.endpoint:
            yield from _read_files(config.paths)
            return
        with tempfile.TemporaryDirectory(prefix="renkei-lrs-") as folder:
            yield from _read_files(lrs.pull(config, state, Path(folder)))


def _read_files(paths: list[Path]) -> Iterator[Record | RowError]:
    kinds = [(path, _kind(path)) for path in paths]
    # First pass: which statements this import voids (the voiding one may come later).
    voided: dict[str, str] = {}
    for path, lines in kinds:
        for _origin, item, _size in _statements(path, lines):
            target = _voided_target(item)
            if target:
                voided[_canonical(target)] = str(item.get("id", ""))
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
    """The id a voiding statement names (as written, lower case), else None."""
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
    if item is None or size > MAX_STATEMENT:
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
        statement_id = str(uuid.UUID(int=key))
    target = _voided_target(item)
    if target:
        return build(
            StatementVoidRecord,
            origin,
            {"statement_id": _canonical(target)},
            {"statement_id": "object.id"},
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
    subject, subject_column = _extension(
        item, SUBJECT, ("object", "definition", "extensions"), ("context", "extensions")
    )
    if isinstance(subject, dict):  # a language map
        subject = _name(subject)
    if subject is not None and not isinstance(subject, str):
        return RowError(origin, subject_column, str(subject)[:100], "教科は文字列で書いてください")
    attempted, attempted_column = _extension(item, ATTEMPTED, ("result", "extensions"))
    correct, correct_column = _extension(item, CORRECT, ("result", "extensions"))
    for value, column in ((attempted, attempted_column), (correct, correct_column)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return RowError(
                origin, column, str(value)[:100], "問題数は 0 以上の整数で書いてください"
            )
    fields = {
        "statement_id": statement_id,
        "principal_name": actor,
        "verb": _get(item, "verb", "id"),
        "object_id": _get(item, "object", "id"),
        "object_name": _name(_get(item, "object", "definition", "name")),
        "occurred_at": item.get("timestamp"),
        "duration_seconds": seconds,
        "source_system": str(_get(item, "context", "platform") or "xapi")[:40],
        "subject": subject,
        "items_attempted": attempted,
        "items_correct": correct,
    }
    columns = {
        "statement_id": "id",
        "principal_name": actor_column,
        "verb": "verb.id",
        "object_id": "object.id",
        "object_name": "object.definition.name",
        "occurred_at": "timestamp",
        "duration_seconds": "result.duration",
        "source_system": "context.platform",
        "subject": subject_column,
        # correct > attempted is a model error (loc empty): the message names both
        "items_attempted": attempted_column,
        "items_correct": correct_column,
    }
    return build(
        LearningActivityRecord, origin, {k: v for k, v in fields.items() if v is not None}, columns
    )


def _canonical(statement_id: str) -> str:
    """A UUID in its canonical form; anything else as it is (validation then names it)."""
    try:
        return str(uuid.UUID(statement_id))
    except ValueError:
        return statement_id


def _extension(item: Any, name: str, *places: tuple[str, ...]) -> tuple[Any, str]:
    """The value of the first extension whose IRI ends in ``/name`` in these places, and
    where it was (for the error report); (None, "") when there is none."""
    for place in places:
        extensions = _get(item, *place)
        if not isinstance(extensions, dict):
            continue
        for iri, value in extensions.items():
            if isinstance(iri, str) and _LAST_SEGMENT.split(iri.rstrip("/"))[-1] == name:
                return value, f"{'.'.join(place)}.{iri}"[:100]
    return None, ""


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
