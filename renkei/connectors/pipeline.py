"""The import pipeline, in one place. Connectors only read; this module does the rest:

archive the raw input → let the connector decode and parse it → validate every record →
pseudonymize → bulk load into the tenant schema (COPY into staging tables, then insert by
natural key) → refresh the rollups → record the run.

Guarantees: rows read = accepted + rejected, always; a bad row is quarantined with file, line,
column, value and reason, never dropped; re-running the same input changes nothing (rows are
written only where values differ); all data of a run commits in one transaction, so a run
killed at any point leaves nothing half-applied and a re-run ends in the state of one clean run.

Data rows are loaded in chunks while the connector is still reading (reading.py: for file
connectors in a child process, so parsing and loading use a core each). A chunk is COPYed
into its own staging table and its new rows are inserted at once. Everything that must see
the whole run waits for the end: rows of pupils not (yet) on the roster, updates of rows
stored before, and duplicates (the first row of a key wins, wherever the others are).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation
from pydantic import ValidationError

from renkei.connectors import reading, registry
from renkei.connectors.reading import (
    MAX_QUARANTINED_VALUE,
    UNKNOWN_ORIGIN,
    Batch,
    Chunk,
    End,
    Rejected,
    Roster,
)
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    Record,
    SchoolRecord,
    StudentRecord,
)
from renkei.connectors.sdk import Connector, RunState, SourceError, japanese_reason
from renkei.edudata import rollups
from renkei.edudata.models import (
    ConnectorSetting,
    Enrollment,
    Homeroom,
    ImportRun,
    School,
    Student,
    StudentIdentity,
    school_year_of,
)
from renkei.edudata.privacy import pseudonym_for
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.platform.storage import get_storage
from renkei.tenants.context import in_tenant, tenant_write_session

log = logging.getLogger(__name__)

BATCH_ROWS = 20_000  # quarantined rows per COPY
# PostgreSQL keeps up to 64 subtransactions of a transaction in shared memory; past that,
# every other session's snapshots get slower until COMMIT. Savepoints (one per chunk that
# bets on new rows, see Loader._insert_all) stay below.
MAX_SAVEPOINTS = 50


# -- the pupil-keyed data streams: staged with COPY, resolved and inserted in SQL -----------


@dataclass(frozen=True)
class DataStream:
    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (record attribute = target column, staging SQL type)
    key: tuple[str, ...]  # natural key besides student_id
    ref: str = "student_source_id"  # how the record names its pupil
    date_column: str | None = None  # for the school years to refresh
    label: str = ""  # Japanese name of the natural key, for messages

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "copy_text",
            reading.copy_text([self.ref, *self.names], ["text", *(t for _, t in self.columns)]),
        )

    # copy_text(record) -> the pupil reference and the column values as COPY text, set above
    # for speed: every row of every import goes through it.
    copy_text: Callable[[Record], str] = field(init=False, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def updated(self) -> list[str]:
        """The columns an import may change in a stored row (all but the key)."""
        return [name for name in self.names if name not in self.key]

    @property
    def resolver(self) -> str:
        """SQL: (ref, student_id) of every pupil a record of this stream can name."""
        if self.ref == "principal_name":
            return (
                "(SELECT DISTINCT ON (lower(principal_name)) lower(principal_name) AS ref,"
                " student_id FROM edudata_studentidentity WHERE principal_name <> '' "
                "ORDER BY lower(principal_name), student_id)"
            )
        return (
            "(SELECT source_id AS ref, student_id FROM edudata_studentidentity "
            "WHERE source_system = %(system)s)"
        )

    @property
    def ref_key(self) -> str:
        """SQL: a staged row's pupil reference (alias ``s``) as the resolver has it."""
        return "lower(s.ref)" if self.ref == "principal_name" else "s.ref"

    @property
    def unknown(self) -> tuple[str, str]:
        """The column and the reason for a row whose pupil is not on the roster."""
        if self.ref == "principal_name":
            return "ユーザープリンシパル名", "名簿にない利用者です"
        return "児童生徒ID", "名簿にない児童生徒です"


DATA_STREAMS = {
    s.name: s
    for s in (
        DataStream(
            "attendance",
            "edudata_attendanceday",
            (("date", "date"), ("status", "text"), ("reason", "text")),
            key=("date",),
            date_column="date",
            label="同じ児童生徒・日付",
        ),
        DataStream(
            "health",
            "edudata_healthobservation",
            (("date", "date"), ("condition", "text"), ("symptoms", "text")),
            key=("date",),
            date_column="date",
            label="同じ児童生徒・日付",
        ),
        DataStream(
            "nurse_visits",
            "edudata_nursevisit",
            (("visited_at", "timestamptz"), ("reason_category", "text"), ("note", "text")),
            key=("visited_at",),
            date_column="visited_at",
            label="同じ児童生徒・来室日時",
        ),
        DataStream(
            "assessments",
            "edudata_assessmentresult",
            (
                ("school_year", "int"),
                ("kind", "text"),
                ("name", "text"),
                ("subject", "text"),
                ("taken_on", "date"),
                ("score", "numeric"),
                ("max_score", "numeric"),
            ),
            key=("school_year", "kind", "name", "subject"),
            date_column="taken_on",
            label="同じ児童生徒・年度・種別・テスト名・教科",
        ),
        DataStream(
            "evaluations",
            "edudata_subjectevaluation",
            (
                ("school_year", "int"),
                ("term", "text"),
                ("subject", "text"),
                ("rating", "int"),
                ("viewpoints", "jsonb"),
            ),
            key=("school_year", "term", "subject"),
            label="同じ児童生徒・年度・学期・教科",
        ),
        DataStream(
            "m365_usage",
            "edudata_m365dailyusage",
            (("date", "date"), ("app", "text"), ("active", "boolean")),
            key=("date", "app"),
            ref="principal_name",
            date_column="date",
            label="同じ利用者・日付・アプリ",
        ),
    )
}


class ImportFailed(Exception):
    """The run failed up front; ``run`` holds the message."""

    def __init__(self, run: ImportRun):
        super().__init__(run.message)
        self.run = run


# -- entry point ----------------------------------------------------------------------------


def do_import(
    connector: str | type[Connector],
    municipality,
    *,
    actor: Actor,
    paths: Iterable[Path] = (),
    config: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """Run one import into ``municipality``. Returns the run; its status says how it ended.

    The run and its audit event ("import.start", naming the actor) commit before any row is
    read, so 管理 shows who started a run that is still going or that failed."""
    cls = registry.get(connector) if isinstance(connector, str) else connector
    paths = [Path(p) for p in paths]
    # One import at a time per tenant.
    with in_tenant(municipality), tenant_write_session(municipality.schema_name):
        ImportRun.objects.filter(status=ImportRun.Status.RUNNING).update(
            status=ImportRun.Status.INTERRUPTED,
            finished_at=timezone.now(),
            message="前回の取り込みは途中で止まりました。その変更は反映されていません。",
        )
        with transaction.atomic():
            run = ImportRun.objects.create(
                connector=cls.name, connector_version=cls.version, started_by=actor.username[:150]
            )
            audit.record(
                actor,
                "import.start",
                municipality_code=municipality.code,
                target=f"import {run.pk} ({cls.name})",
                changes={"files": [Path(p).name for p in paths]},
            )
        started = time.monotonic()
        try:
            _run(cls, municipality, run, paths, config or {}, progress)
        except SourceError as e:
            run.status, run.message = ImportRun.Status.FAILED, str(e)
            run.finished_at = timezone.now()
            run.save()
            log.info("import %s into %s failed up front", cls.name, municipality.code)
            return run
        log.info(
            "import %s into %s: read %d accepted %d rejected %d in %.1f s",
            cls.name,
            municipality.code,
            run.rows_read,
            run.rows_accepted,
            run.rows_rejected,
            time.monotonic() - started,
        )
        return run


def stored_config_values(cls: type[Connector], setting: ConnectorSetting) -> dict[str, Any]:
    """A saved setting as config values: secrets decrypted, server paths left out (the web
    pages never set them; see ConnectorConfig.server_path_fields)."""
    try:
        secrets = setting.secret_values()
    except InvalidToken as e:  # the master key changed since the setting was saved
        raise SourceError(
            f"コネクタ {cls.name} の保存された秘密の値を復号できません。"
            "管理 › コネクタ設定で入力し直してください。"
        ) from e
    server_paths = cls.Config.server_path_fields()
    return {**{k: v for k, v in setting.config.items() if k not in server_paths}, **secrets}


def _config_values(
    cls: type[Connector], config: dict[str, Any], paths: list[Path]
) -> dict[str, Any]:
    """The municipality's stored setting (管理 › コネクタ設定) when it is enabled (without
    server paths), then the values given for this run (a config file, the task) key by key,
    then the input paths."""
    values: dict[str, Any] = {}
    setting = ConnectorSetting.objects.filter(connector=cls.name, enabled=True).first()
    if setting is not None:
        values.update(stored_config_values(cls, setting))
    values.update(config)
    if paths:
        values["paths"] = paths
    return values


def _run(
    cls: type[Connector],
    municipality,
    run: ImportRun,
    paths: list[Path],
    config: dict[str, Any],
    progress,
) -> None:
    try:
        cfg = cls.Config(**_config_values(cls, config, paths))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '設定'}: {japanese_reason(err)}"
            for err in e.errors()
        )
        raise SourceError(
            f"コネクタ {cls.name} の設定が正しくありません（{problems}）。"
            "管理 › コネクタ設定、または渡した設定ファイルを確認してください。"
        ) from e
    run.config = cls.redacted(cfg)
    run.files = _archive(municipality, run, paths)
    previous = (
        ImportRun.objects.filter(connector=cls.name, status=ImportRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-started_at")
        .values_list("state", flat=True)
        .first()
    )
    state = RunState(data=dict(previous or {}))
    storage = get_storage()

    def archive(name: str, content: bytes) -> None:
        key = _safe_key(f"imports/{run.pk}/fetched/{name}")
        storage.save(municipality.code, key, BytesIO(content))
        run.files.append(key)  # the key it is stored under, so it can be opened again

    state.archive = archive
    run.save()

    with transaction.atomic():
        loader = Loader(municipality, run, cls.source_system())
        clock = time.monotonic()
        with reading.read(cls, cfg, state, DATA_STREAMS) as batches:
            loader.load(batches, progress)
        loaded = time.monotonic()
        rollups.refresh(loader.school_years)
        log.info(
            "import #%s phases: read and load %.1f s (%.1f s of it waiting for the "
            "reader), rollups %.1f s",
            run.pk,
            loaded - clock,
            loader.waited,
            time.monotonic() - loaded,
        )
        run.rows_read = loader.rows_read
        run.rows_rejected = loader.rejected_rows()
        run.rows_accepted = run.rows_read - run.rows_rejected
        run.state = state.data
        run.status = ImportRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()


def _safe_key(key: str) -> str:
    """A storage key (storage.check_key's alphabet) from a file or API call name."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-/") else "_" for c in key)


def _archive(municipality, run: ImportRun, paths: list[Path]) -> list[str]:
    """Copy every input file to storage before reading it (streamed, never held in memory)."""
    storage = get_storage()
    keys = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"入力 {path} がありません。")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(path.parent)
            key = _safe_key(f"imports/{run.pk}/{relative.as_posix()}")
            with file.open("rb") as source:
                storage.save(municipality.code, key, source)
            keys.append(key)
    return keys


# -- the loader -----------------------------------------------------------------------------


@dataclass
class Staged:
    """One data stream's staging in this run: chunk tables stg_<name>_1, _2, … (children of
    stg_<name>, which so holds every staged row of the run), and two tables of rows kept for
    the end: stg_<name>_set_aside and stg_<name>_changes."""

    chunks: int = 0
    set_aside: int = 0  # rows whose pupil was not on the roster when their chunk loaded
    met_stored: bool = False  # a row met a stored row: an update, or a duplicate in this run
    changes: int = 0  # rows with values for a stored row, applied at the end


@dataclass
class Loader:
    municipality: Any
    run: ImportRun
    system: str
    rows_read: int = 0
    school_years: set[int] = field(default_factory=set)
    waited: float = 0.0  # seconds spent waiting for the reader
    _roster: list[Record] = field(default_factory=list)  # read, not loaded yet
    _students_seen: dict[str, Origin | None] = field(default_factory=dict)
    _enrollments_seen: set[tuple] = field(default_factory=set)
    _files: list[str] = field(default_factory=list)  # staged rows' file numbers → names
    _staged: dict[str, Staged] = field(default_factory=dict)
    _immediate: list[str] = field(default_factory=list)  # constraints checked per statement
    _savepoints: int = 0
    _quarantine: list[tuple] = field(default_factory=list)

    def load(self, batches: Iterable[Batch], progress=None) -> None:
        """Consume the reader's batches: roster records are loaded before the first data rows
        that follow them (a city has ~100k pupils; memory never grows with the data), data
        rows chunk by chunk, row errors straight to the quarantine. Then finish every data
        stream with what needs the whole run."""
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # Each chunk's statements look big enough to JIT-compile, which costs more than
            # it saves, chunk after chunk.
            cursor.execute("SET LOCAL jit = off")
        batches = iter(batches)
        while True:
            clock = time.monotonic()
            batch = next(batches, None)
            self.waited += time.monotonic() - clock
            if batch is None:
                break
            if isinstance(batch, Chunk):
                self._load_roster()
                self._files = batch.files
                self._stage(DATA_STREAMS[batch.stream], batch)
            elif isinstance(batch, Roster):
                self._roster.extend(batch.records)
            elif isinstance(batch, Rejected):
                self._quarantine.extend((self.run.pk, *row) for row in batch.rows)
                self._flush_quarantine()
            elif isinstance(batch, End):
                self.rows_read = batch.rows_read
            if progress:
                progress(batch.rows_read)
        self._load_roster()  # a roster read after the data rows, or a roster alone
        for name, staged in self._staged.items():
            self._finish(DATA_STREAMS[name], staged)
        self._flush_quarantine()
        with connection.cursor() as cursor:
            for name in self._staged:
                cursor.execute(
                    f"DROP TABLE stg_{name}, stg_{name}_set_aside, stg_{name}_changes CASCADE"
                )
            if self._immediate:  # back to COMMIT, as declared, for the rest of the transaction
                cursor.execute(f"SET CONSTRAINTS {', '.join(self._immediate)} DEFERRED")

    def reject(self, origin: Origin | None, column: str, value: str, reason: str) -> None:
        origin = origin or UNKNOWN_ORIGIN
        self._quarantine.append(
            (
                self.run.pk,
                origin.file[:255],
                origin.line,
                column[:100],
                str(value)[:MAX_QUARANTINED_VALUE],
                reason,
            )
        )
        if len(self._quarantine) >= BATCH_ROWS:
            self._flush_quarantine()

    def rejected_rows(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT DISTINCT file, line FROM "
                "edudata_quarantinedrow WHERE run_id = %s) q",
                [self.run.pk],
            )
            return cursor.fetchone()[0]

    def _flush_quarantine(self) -> None:
        if not self._quarantine:
            return
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                'COPY edudata_quarantinedrow (run_id, file, line, "column", value, reason) '
                "FROM STDIN"
            ) as copy,
        ):
            for row in self._quarantine:
                copy.write_row(row)
        self._quarantine.clear()

    @property
    def _params(self) -> dict[str, Any]:
        return {"run": self.run.pk, "system": self.system, "files": self._files}

    # data rows, chunk by chunk ------------------------------------------------------------

    def _begin(self, stream: DataStream) -> Staged:
        name = stream.name
        columns = ", ".join(f"{c} {t}" for c, t in stream.columns)
        updated = ", ".join(f"{c} {t}" for c, t in stream.columns if c in stream.updated)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TABLE IF EXISTS stg_{name}, stg_{name}_set_aside, stg_{name}_changes CASCADE"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name} (seq bigint, file int, line int, "
                f"ref text, {columns}) ON COMMIT DROP"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name}_set_aside (LIKE stg_{name}) ON COMMIT DROP"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name}_changes (seq bigint, id bigint"
                f"{', ' if updated else ''}{updated}) ON COMMIT DROP"
            )
            # Check each chunk's references to pupils when it is inserted rather than all at
            # COMMIT: the same checks, made while the reader parses the next chunk.
            cursor.execute(
                """
                SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname)
                FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND c.condeferred""",
                [stream.table],
            )
            constraints = [row[0] for row in cursor.fetchall()]
            if constraints:
                cursor.execute(f"SET CONSTRAINTS {', '.join(constraints)} IMMEDIATE")
                self._immediate += constraints
        staged = self._staged[name] = Staged()
        return staged

    def _stage(self, stream: DataStream, chunk: Chunk) -> None:
        staged = self._staged.get(stream.name) or self._begin(stream)
        staged.chunks += 1
        table = f"stg_{stream.name}_{staged.chunks}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE {table} () INHERITS (stg_{stream.name}) ON COMMIT DROP"
            )
            with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(chunk.data)
        inserted = None if staged.met_stored else self._insert_all(stream, table)
        with connection.cursor() as cursor:
            if inserted is None:
                inserted = self._insert(cursor, stream, table)
            if inserted == chunk.rows:
                return
            # Some rows are not in: their pupil is not on the roster (it may be on one read
            # later: such rows wait for the end), or they met a stored row.
            cursor.execute(
                f"""
                INSERT INTO stg_{stream.name}_set_aside SELECT * FROM {table} s
                WHERE NOT EXISTS (SELECT 1 FROM {stream.resolver} r
                                  WHERE r.ref = {stream.ref_key})""",
                self._params,
            )
            staged.set_aside += cursor.rowcount
            if inserted < chunk.rows - cursor.rowcount:
                # A stored row was met: one stored before this run (to update if it differs),
                # or one this run inserted (a duplicate key). Either way nothing is written
                # now; the end of the run decides, knowing every duplicate.
                staged.met_stored = True
                staged.changes += self._collect_changes(cursor, stream, table)

    def _insert_all(self, stream: DataStream, table: str) -> int | None:
        """Insert the rows of ``table`` whose pupil is known, betting that no row meets a
        stored one (so far none has, in this run): a plain INSERT costs less than one that
        looks for a stored row first. Lost, the bet costs the statement (undone, back to its
        savepoint; returns None) and this stream goes the careful way from then on."""
        if self._savepoints == MAX_SAVEPOINTS:
            return None
        self._savepoints += 1
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(self._insert_sql(stream, table, ""), self._params)
                return cursor.rowcount
        except IntegrityError as e:
            if not isinstance(e.__cause__, UniqueViolation):
                raise
            self._staged[stream.name].met_stored = True
            return None

    def _insert(self, cursor, stream: DataStream, table: str) -> int:
        """Insert the rows of ``table`` whose pupil is known and whose key is new."""
        conflict = ", ".join(("student_id", *stream.key))
        cursor.execute(
            self._insert_sql(stream, table, f"ON CONFLICT ({conflict}) DO NOTHING"), self._params
        )
        return cursor.rowcount

    @staticmethod
    def _insert_sql(stream: DataStream, table: str, on_conflict: str) -> str:
        # In the order of the natural key: the indexes are then written page after page.
        return f"""
            INSERT INTO {stream.table} (student_id, {", ".join(stream.names)})
            SELECT r.student_id, {", ".join(f"s.{c}" for c in stream.names)}
            FROM {table} s JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
            ORDER BY r.student_id, {", ".join(f"s.{k}" for k in stream.key)}, s.seq
            {on_conflict}"""

    def _collect_changes(self, cursor, stream: DataStream, table: str) -> int:
        """Keep the rows of ``table`` whose stored row (same pupil and key) differs."""
        if not stream.updated:
            return 0
        updated = ", ".join(stream.updated)
        same_key = " AND ".join(f"{k} = s.{k}" for k in stream.key)
        # LIMIT 1 (the key is unique anyway) keeps it one index lookup per row, whatever
        # the planner makes of the sizes of the tables.
        cursor.execute(
            f"""
            INSERT INTO stg_{stream.name}_changes (seq, id, {updated})
            SELECT s.seq, t.id, {", ".join(f"s.{c}" for c in stream.updated)}
            FROM {table} s JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
            CROSS JOIN LATERAL (SELECT id, {updated} FROM {stream.table}
                                WHERE student_id = r.student_id AND {same_key} LIMIT 1) t
            WHERE ({", ".join(f"t.{c}" for c in stream.updated)}) IS DISTINCT FROM
                  ({", ".join(f"s.{c}" for c in stream.updated)})""",
            self._params,
        )
        return cursor.rowcount

    # what needs the whole run ---------------------------------------------------------------

    def _finish(self, stream: DataStream, staged: Staged) -> None:
        set_aside = f"stg_{stream.name}_set_aside"
        with connection.cursor() as cursor:
            if staged.set_aside:
                self._quarantine_unknown(cursor, stream)
            # Without a row meeting a stored one, only rows set aside can share a key.
            if staged.met_stored or staged.set_aside:
                self._quarantine_duplicates(
                    cursor, stream, f"stg_{stream.name}" if staged.met_stored else set_aside
                )
            if staged.set_aside:  # rows of pupils on a roster read after them
                cursor.execute(
                    f"""
                    SELECT count(*) FROM {set_aside} s WHERE EXISTS (
                        SELECT 1 FROM {stream.resolver} r WHERE r.ref = {stream.ref_key})""",
                    self._params,
                )
                known = cursor.fetchone()[0]
                if known and self._insert(cursor, stream, set_aside) < known:
                    staged.changes += self._collect_changes(cursor, stream, set_aside)
            if staged.changes:
                self._apply_changes(cursor, stream)
            self._note_school_years(cursor, stream)

    def _quarantine_unknown(self, cursor, stream: DataStream) -> None:
        column, who = stream.unknown
        cursor.execute(
            f"""
            INSERT INTO edudata_quarantinedrow (run_id, file, line, "column", value, reason)
            SELECT %(run)s, (%(files)s::text[])[s.file], s.line, %(column)s, s.ref,
                   %(reason)s || s.ref || '」）。先に名簿を取り込んでください。'
            FROM stg_{stream.name}_set_aside s WHERE NOT EXISTS (
                SELECT 1 FROM {stream.resolver} r WHERE r.ref = {stream.ref_key})""",
            {**self._params, "column": column, "reason": f"{who}（{column}「"},
        )

    def _quarantine_duplicates(self, cursor, stream: DataStream, scope: str) -> None:
        """Quarantine every staged row but the first of its key; none of them is applied."""
        key = ", ".join((stream.ref_key, *(f"s.{k}" for k in stream.key)))
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {scope} s GROUP BY {key} HAVING count(*) > 1)"
        )
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            f"""
            WITH ranked AS (
                SELECT seq, file, line, ref, row_number() OVER w AS n,
                       first_value(file) OVER w AS first_file,
                       first_value(line) OVER w AS first_line
                FROM {scope} s WINDOW w AS (PARTITION BY {key} ORDER BY seq)),
            later AS (SELECT * FROM ranked WHERE n > 1),
            quarantined AS (
                INSERT INTO edudata_quarantinedrow (run_id, file, line, "column", value, reason)
                SELECT %(run)s, (%(files)s::text[])[file], line, '', ref,
                       %(label)s || 'の行が ' || (%(files)s::text[])[first_file] || ' の '
                       || first_line || ' 行目にもあります（重複。最初の行を取り込みました）。'
                FROM later),
            not_changed AS (
                DELETE FROM stg_{stream.name}_changes WHERE seq IN (SELECT seq FROM later))
            DELETE FROM stg_{stream.name}_set_aside WHERE seq IN (SELECT seq FROM later)""",
            {**self._params, "label": stream.label},
        )

    def _apply_changes(self, cursor, stream: DataStream) -> None:
        # Two references to one pupil could name the same stored row: the first read wins.
        cursor.execute(f"""
            UPDATE {stream.table} AS t SET {", ".join(f"{c} = c.{c}" for c in stream.updated)}
            FROM (SELECT DISTINCT ON (id) * FROM stg_{stream.name}_changes ORDER BY id, seq) c
            WHERE t.id = c.id AND ({", ".join(f"t.{c}" for c in stream.updated)})
                  IS DISTINCT FROM ({", ".join(f"c.{c}" for c in stream.updated)})""")

    def _note_school_years(self, cursor, stream: DataStream) -> None:
        staging = f"stg_{stream.name}"
        if stream.date_column:
            cursor.execute(
                f"SELECT min({stream.date_column}), max({stream.date_column}) FROM {staging}"
            )
            first, last = cursor.fetchone()
            if first is not None:
                first, last = (
                    timezone.localdate(d) if isinstance(d, dt.datetime) else d
                    for d in (first, last)
                )
                self.school_years |= set(range(school_year_of(first), school_year_of(last) + 1))
        elif "school_year" in stream.names:
            cursor.execute(f"SELECT DISTINCT school_year FROM {staging}")
            self.school_years |= {row[0] for row in cursor.fetchall()}

    # the roster -----------------------------------------------------------------------------

    def _load_roster(self) -> None:
        """Upsert the roster records read so far: schools, homerooms, pupils, enrollments."""
        if not self._roster:
            return
        records: dict[str, list] = {}
        for record in self._roster:
            records.setdefault(record.stream, []).append(record)
        self._roster = []
        schools = self._load_schools(records.get("schools", []))
        homerooms = self._load_homerooms(records.get("homerooms", []), schools)
        self._load_students(records.get("students", []), schools)
        self._load_enrollments(records.get("enrollments", []), homerooms)

    def _load_schools(self, records: list[SchoolRecord]) -> dict[str, School]:
        wanted: dict[str, SchoolRecord] = {}
        for record in records:
            wanted[record.code] = record  # the same school on every roster row: last one wins
        existing = {s.code: s for s in School.objects.filter(code__in=wanted)}
        changed = []
        for code, record in wanted.items():
            school = existing.get(code)
            if school is None:
                existing[code] = School(code=code, name=record.name, school_type=record.school_type)
            elif (school.name, school.school_type) != (record.name, record.school_type):
                school.name, school.school_type = record.name, record.school_type
                changed.append(school)
        School.objects.bulk_create([s for s in existing.values() if s.pk is None])
        School.objects.bulk_update(changed, ["name", "school_type"])
        return {s.code: s for s in School.objects.all()}

    def _load_homerooms(
        self, records: list[HomeroomRecord], schools: dict[str, School]
    ) -> dict[tuple, Homeroom]:
        wanted: dict[tuple, HomeroomRecord] = {}
        for record in records:
            if record.school_code not in schools:
                self.reject(
                    record.origin,
                    "学校コード",
                    record.school_code,
                    f"学校コード「{record.school_code}」の学校が登録されていません。",
                )
                continue
            wanted[(record.school_code, record.school_year, record.name)] = record
            self.school_years.add(record.school_year)
        current = {
            (h.school.code, h.school_year, h.name): h
            for h in Homeroom.objects.select_related("school")
        }
        new, changed = [], []
        for key, record in wanted.items():
            homeroom = current.get(key)
            if homeroom is None:
                new.append(
                    Homeroom(
                        school=schools[key[0]], school_year=key[1], name=key[2], grade=record.grade
                    )
                )
            elif homeroom.grade != record.grade:
                homeroom.grade = record.grade
                changed.append(homeroom)
        Homeroom.objects.bulk_create(new)
        Homeroom.objects.bulk_update(changed, ["grade"])
        return {
            (h.school.code, h.school_year, h.name): h
            for h in Homeroom.objects.select_related("school")
        }

    def _load_students(self, records: list[StudentRecord], schools: dict[str, School]) -> None:
        """Create or update pupils and their identities in bulk (a city has 100k pupils)."""
        if not records:
            return
        identities = {(i.source_system, i.source_id): i for i in StudentIdentity.objects.all()}
        students = {s.pk: s for s in Student.objects.all()}
        by_pseudonym = {s.pseudonym: s for s in students.values()}
        owner_of: dict[tuple[str, str], Student] = {
            key: students[i.student_id] for key, i in identities.items()
        }
        seen = self._students_seen  # over the whole run, should its roster come in parts
        new_students: dict[str, Student] = {}
        changed_students: dict[int, Student] = {}
        identity_rows: list[tuple[Student, str, str, dict | None]] = []
        for record in records:
            if record.source_id in seen:
                first = seen[record.source_id]
                self.reject(
                    record.origin,
                    "児童生徒ID",
                    record.source_id,
                    f"同じ児童生徒IDの行が {first.file if first else '?'} の "
                    f"{first.line if first else '?'} 行目にもあります（重複）。",
                )
                continue
            if record.school_code not in schools:
                self.reject(
                    record.origin,
                    "学校コード",
                    record.school_code,
                    f"学校コード「{record.school_code}」の学校が登録されていません。",
                )
                continue
            keys = [(self.system, record.source_id), *record.other_ids.items()]
            owners = {id(owner_of[k]): owner_of[k] for k in keys if k in owner_of}
            if len(owners) > 1:
                self.reject(
                    record.origin,
                    "userIds",
                    ",".join(f"{s}:{i}" for s, i in keys),
                    "これらの ID は別々の児童生徒に紐付いています。名簿を確かめてください。",
                )
                continue
            seen[record.source_id] = record.origin
            student = next(iter(owners.values()), None)
            if student is None:
                pseudonym = pseudonym_for(self.municipality, self.system, record.source_id)
                student = by_pseudonym.get(pseudonym) or new_students.setdefault(
                    pseudonym, Student(pseudonym=pseudonym)
                )
            values = {
                "school_id": schools[record.school_code].pk,
                "grade": record.grade,
                "birth_year_month": record.birth_year_month,
                "sex": record.sex,
                "graduation_date": record.graduation_date,
            }
            if any(getattr(student, k, None) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(student, k, v)
                if student.pk is not None:
                    changed_students[student.pk] = student
            names = {
                "family_name": record.family_name,
                "given_name": record.given_name,
                "family_name_kana": record.family_name_kana,
                "given_name_kana": record.given_name_kana,
                "principal_name": record.principal_name,
            }
            for key in keys:
                owner_of.setdefault(key, student)
                identity_rows.append((student, *key, names if key == keys[0] else None))
        Student.objects.bulk_create(new_students.values(), batch_size=2000)
        Student.objects.bulk_update(
            changed_students.values(),
            ["school_id", "grade", "birth_year_month", "sex", "graduation_date"],
            batch_size=2000,
        )
        self._save_identities(identities, identity_rows)

    @staticmethod
    def _save_identities(
        identities: dict, rows: list[tuple[Student, str, str, dict | None]]
    ) -> None:
        new, changed = [], []
        for student, system, source_id, names in rows:
            identity = identities.get((system, source_id))
            if identity is None:
                identity = StudentIdentity(
                    student=student, source_system=system, source_id=source_id, **(names or {})
                )
                identities[(system, source_id)] = identity
                new.append(identity)
            elif names and any(getattr(identity, k) != v for k, v in names.items()):
                for k, v in names.items():
                    setattr(identity, k, v)
                changed.append(identity)
        StudentIdentity.objects.bulk_create(new, batch_size=2000)
        StudentIdentity.objects.bulk_update(
            changed,
            ["family_name", "given_name", "family_name_kana", "given_name_kana", "principal_name"],
            batch_size=2000,
        )

    def _load_enrollments(
        self, records: list[EnrollmentRecord], homerooms: dict[tuple, Homeroom]
    ) -> None:
        if not records:
            return
        owners = dict(
            StudentIdentity.objects.filter(source_system=self.system).values_list(
                "source_id", "student_id"
            )
        )
        current = {(e.student_id, e.homeroom_id): e for e in Enrollment.objects.all()}
        seen = self._enrollments_seen
        new, changed = [], []
        for record in records:
            student_id = owners.get(record.student_source_id)
            homeroom = homerooms.get((record.school_code, record.school_year, record.homeroom_name))
            if student_id is None:
                self.reject(
                    record.origin,
                    "児童生徒ID",
                    record.student_source_id,
                    "名簿にない児童生徒です。",
                )
                continue
            if homeroom is None:
                self.reject(
                    record.origin,
                    "学級",
                    record.homeroom_name,
                    f"{record.school_year}年度の学級「{record.homeroom_name}」が見つかりません。",
                )
                continue
            key = (student_id, homeroom.pk)
            if key in seen:
                continue  # the same enrollment restated (e.g. several source files)
            seen.add(key)
            enrollment = current.get(key)
            if enrollment is None:
                new.append(
                    Enrollment(
                        student_id=student_id,
                        homeroom=homeroom,
                        attendance_number=record.attendance_number,
                    )
                )
            elif enrollment.attendance_number != record.attendance_number:
                enrollment.attendance_number = record.attendance_number
                changed.append(enrollment)
        Enrollment.objects.bulk_create(new)
        Enrollment.objects.bulk_update(changed, ["attendance_number"])
