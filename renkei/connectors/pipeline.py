"""The import pipeline: the action ``do_import``. Connectors only read; the pipeline does
the rest: archive the raw input → let the connector decode and parse it (``reading.py``) →
validate every record → pseudonymize and upsert the roster (``roster.py``) → bulk load the
data streams declared in ``streams.py`` (COPY into staging tables, then insert by natural
key: ``staging.py``) → refresh the rollups the run's rows can change → record the run.

Guarantees: rows read = accepted + rejected, always; a bad row is quarantined with file, line,
column, value and reason, never dropped (a warning on an accepted row is kept the same way, as
kind 警告, and counts towards neither); re-running the same input changes nothing (rows are
written only where values differ); all data of a run commits in one transaction, so a run
killed at any point leaves nothing half-applied and a re-run ends in the state of one clean run.

Data rows are loaded in chunks while the connector is still reading (reading.py: for file
connectors in a child process, so parsing and loading use a core each). A chunk is COPYed
into its own staging table and its new rows are inserted at once. Everything that must see
the whole run waits for the end: rows of pupils not (yet) on the roster, updates of rows
stored before, and duplicates (the first row of a key wins, wherever the others are).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from renkei.connectors import reading, registry
from renkei.connectors.reading import (
    Batch,
    Chunk,
    End,
    Rejected,
    Roster,
    Voided,
)
from renkei.connectors.roster import RosterWriter
from renkei.connectors.sdk import Connector, RunState, SourceError, japanese_reason
from renkei.connectors.staging import Quarantine, StreamWriter
from renkei.connectors.streams import DATA_STREAMS
from renkei.edudata import rollups
from renkei.edudata.models import (
    ConnectorSetting,
    ImportRun,
)
from renkei.platform import audit, telemetry
from renkei.platform.audit import Actor
from renkei.platform.storage import check_key, get_storage
from renkei.tenants.context import in_tenant, tenant_write_session

log = logging.getLogger(__name__)


class ImportFailed(Exception):
    """The run failed up front; ``run`` holds the message."""

    def __init__(self, run: ImportRun):
        super().__init__(run.message)
        self.run = run


# -- entry point ----------------------------------------------------------------------------


class Progress:
    """What a run reports while it goes: its phase and the rows read so far. The command
    line shows the rows; 管理 shows both, live (``jobs.LiveProgress``). Either may stop the
    run by raising ImportCancelled: the run's transaction is then rolled back."""

    def phase(self, phase: str) -> None:
        pass

    def rows(self, rows_read: int) -> None:
        pass


class ImportCancelled(Exception):
    """Someone cancelled the run while it ran: nothing of it is applied."""


def do_import(
    connector: str | type[Connector],
    municipality,
    *,
    actor: Actor,
    paths: Iterable[Path] = (),
    config: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ImportRun:
    """Run one import into ``municipality`` now. Returns the run; its status says how it
    ended. (Uploads and the push API queue theirs: ``jobs.do_queue_import``.)

    The run and its audit event ("import.start", naming the actor) commit before any row is
    read, so 管理 shows who started a run that is still going or that failed."""
    cls = registry.get(connector) if isinstance(connector, str) else connector
    paths = [Path(p) for p in paths]
    # One import at a time per tenant.
    with in_tenant(municipality), tenant_write_session(municipality.schema_name):
        _mark_interrupted()
        with transaction.atomic():
            run = ImportRun.objects.create(
                connector=cls.name,
                connector_version=cls.version,
                started_by=actor.username[:150],
                started_via=actor.via,
                status=ImportRun.Status.RUNNING,
                phase=ImportRun.Phase.VALIDATING,
                began_at=timezone.now(),
            )
            record_import_start(actor, municipality, run, [p.name for p in paths])
        return _execute(cls, municipality, run, paths, config or {}, progress or Progress())


def record_import_start(actor: Actor, municipality, run: ImportRun, names: list[str]) -> None:
    """The audit event of an import accepted: who, which run, which files (by name)."""
    audit.record(
        actor,
        "import.start",
        municipality_code=municipality.code,
        target=f"import {run.pk} ({run.connector})",
        changes={"files": names},
    )


def run_queued(run_id: int, municipality, progress: Progress | None = None) -> ImportRun:
    """Run an import queued by ``jobs.do_queue_import``, from the files it stored. A run
    cancelled while it waited is left as it is."""
    with in_tenant(municipality), tenant_write_session(municipality.schema_name):
        _mark_interrupted()
        with transaction.atomic():
            run = ImportRun.objects.select_for_update().get(pk=run_id)
            if run.status != ImportRun.Status.QUEUED:
                return run
            run.status, run.phase = ImportRun.Status.RUNNING, ImportRun.Phase.VALIDATING
            run.began_at = timezone.now()
            run.save(update_fields=["status", "phase", "began_at"])
        try:
            cls = registry.get(run.connector)
        except registry.UnknownConnector as e:
            return _failed(run, str(e))
        with tempfile.TemporaryDirectory(prefix="renkei-import-") as tmp:
            try:
                paths = fetch_stored(municipality.code, run.files, Path(tmp))
            except (OSError, ValueError) as e:
                log.warning("import #%s: stored files unreadable: %s", run.pk, type(e).__name__)
                return _failed(run, "受け付けたファイルを保管先から読めませんでした。")
            config = dict(run.config)  # the run's own values (the export kind), if any
            return _execute(cls, municipality, run, paths, config, progress or Progress())


def fetch_stored(tenant_code: str, keys: list[str], into: Path) -> list[Path]:
    """Copy stored files to a local directory (streamed), keeping their names."""
    storage = get_storage()
    paths = []
    for key in keys:
        target = into / check_key(tenant_code, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.open(tenant_code, key) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)
        paths.append(target)
    return paths


def _mark_interrupted() -> None:
    """Runs left running hold no lock any more: their process died (the lock is held now)."""
    ImportRun.objects.filter(status=ImportRun.Status.RUNNING).update(
        status=ImportRun.Status.INTERRUPTED,
        finished_at=timezone.now(),
        message="前回の取り込みは途中で止まりました。その変更は反映されていません。",
    )


def _failed(run: ImportRun, message: str, status: str = ImportRun.Status.FAILED) -> ImportRun:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.save()
    return run


@telemetry.traced_import  # every run, whoever started it: a span and the import metrics
def _execute(
    cls: type[Connector],
    municipality,
    run: ImportRun,
    paths: list[Path],
    config: dict[str, Any],
    progress: Progress,
) -> ImportRun:
    started = time.monotonic()
    try:
        _run(cls, municipality, run, paths, config, progress)
    except SourceError as e:
        log.info("import %s into %s failed up front", cls.name, municipality.code)
        return _failed(run, str(e))
    except ImportCancelled:
        log.info("import #%s into %s cancelled", run.pk, municipality.code)
        run.rows_read = run.rows_accepted = run.rows_rejected = run.rows_skipped = 0
        return _failed(
            run,
            "取り消されました。この取り込みの変更は反映されていません。",
            ImportRun.Status.CANCELLED,
        )
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
    if run.files:  # queued: its files were stored when it was queued, read from a temp copy
        for name in cls.Config.server_path_fields():
            run.config.pop(name, None)
    else:
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
        key = safe_key(f"imports/{run.pk}/fetched/{name}")
        storage.save(municipality.code, key, BytesIO(content))
        run.files.append(key)  # the key it is stored under, so it can be opened again

    state.archive = archive
    run.save()

    with transaction.atomic():
        loader = RunWriter(municipality, run, cls.source_system(cfg))
        clock = time.monotonic()
        with reading.read(cls, cfg, state, DATA_STREAMS) as batches:
            progress.phase(ImportRun.Phase.LOADING)
            loader.load(batches, progress.rows)
        loaded = time.monotonic()
        progress.phase(ImportRun.Phase.ROLLUPS)
        # Only the rollups of the tables the run wrote, for the months of its rows; all of
        # them for the run's years when it changed how stored pupils are labelled.
        relabelled = loader.roster.relabelled
        rollups.refresh(
            loader.school_years,
            sources=None if relabelled else loader.streams.written,
            days=None if relabelled else loader.streams.days,
            kind="import",
        )
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
        run.rows_skipped = loader.streams.skipped
        run.rows_accepted = run.rows_read - run.rows_rejected - run.rows_skipped
        run.warnings = loader.quarantine.warnings()
        run.state = state.data
        run.message = loader.roster.summary()  # leavings and re-enrolments, as counts
        if loader.streams.deleted:  # accepted voiding statements that removed stored rows
            run.message += (
                f"取り消しの statement により、以前に取り込んだ学習記録 "
                f"{loader.streams.deleted:,} 件を削除しました。"
            )
        run.status, run.phase = ImportRun.Status.SUCCEEDED, ImportRun.Phase.DONE
        run.progress_rows = run.rows_read
        run.finished_at = timezone.now()
        run.save()


def safe_key(key: str) -> str:
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
            key = safe_key(f"imports/{run.pk}/{relative.as_posix()}")
            with file.open("rb") as source:
                storage.save(municipality.code, key, source)
            keys.append(key)
    return keys


# -- the loader -----------------------------------------------------------------------------


@dataclass
class RunWriter:
    """Writes what the reader yields into the tenant: roster records before the first data
    rows that follow them (memory never grows with the data), data rows chunk by chunk, row
    errors straight to the quarantine; then what needs the whole run."""

    municipality: Any
    run: ImportRun
    system: str
    rows_read: int = 0
    school_years: set[int] = field(default_factory=set)
    waited: float = 0.0  # seconds spent waiting for the reader

    def __post_init__(self) -> None:
        self.quarantine = Quarantine(self.run.pk)
        self.roster = RosterWriter(
            self.municipality, self.system, self.quarantine.reject, self.school_years
        )
        self.streams = StreamWriter(self.run.pk, self.system, self.school_years)

    def load(self, batches: Iterable[Batch], progress=None) -> None:
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
                self.roster.write()
                self.streams.stage(DATA_STREAMS[batch.stream], batch)
            elif isinstance(batch, Roster):
                self.roster.add(batch.records)
            elif isinstance(batch, Rejected):
                self.quarantine.extend(batch.rows)
            elif isinstance(batch, Voided):
                self.streams.void(batch.statement_ids)
            elif isinstance(batch, End):
                self.rows_read = batch.rows_read
            if progress:
                progress(batch.rows_read)
        self.roster.write()  # a roster read after the data rows, or a roster alone
        self.roster.finish()
        self.streams.finish()
        self.quarantine.flush()

    def rejected_rows(self) -> int:
        return self.quarantine.rejected_rows()
