"""Imports as background jobs: uploads, the push API and the inbox (``inbox.py``) queue a run
whose files are already in storage; a worker runs it with the same pipeline as
``renkei import``, and 管理 watches it live.

The queue of record is ``platform.Job`` (public schema). Who runs it:

* with a broker (``CELERY_BROKER_URL``): the Celery task ``renkei.run_import_jobs``, sent
  when a job is queued;
* in the embedded default: a thread that ``renkei serve`` / ``renkei demo`` start
  (:func:`start_embedded_worker`), woken when a job is queued; it also looks at the
  inboxes every ``inbox.SWEEP_EVERY`` seconds (with a broker, beat does).

Either way jobs of one tenant run one at a time (the tenant write lock), a page reload
loses nothing (the run and its progress are rows), and a run interrupted by a dying process
is marked so with nothing of it applied.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.connectors import pipeline
from renkei.connectors.sdk import Connector
from renkei.connectors.uploads import LineCounter, Upload
from renkei.edudata.models import ImportRun
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.platform.models import Job
from renkei.platform.storage import get_storage
from renkei.tenants.context import in_tenant, tenant_write_idle
from renkei.tenants.models import Municipality

log = logging.getLogger(__name__)

IMPORT = "import"
PROGRESS_EVERY = 0.5  # seconds between two writes of a run's progress
# A job claimed this long ago whose tenant runs no import lost its worker (a Celery worker's
# machine died): it is put back in the queue. Its run, if it had begun, is then marked
# interrupted (nothing of it was applied) when the job is taken again.
ABANDONED_AFTER = dt.timedelta(minutes=2)
WAKE = threading.Event()  # set when a job is queued: the embedded worker looks at once


class ImportStateError(ValueError):
    """The run is not in a state that allows this; the message says why (Japanese)."""


class UnknownKind(ValueError):
    """An export kind the connector does not have; the message lists those it has."""


def check_kind(connector: type[Connector], kind: str) -> None:
    kinds = connector.export_kinds()
    if kind and kind not in kinds:
        raise UnknownKind(
            _(
                "コネクタ %(connector)s に出力形式「%(kind)s」はありません（使えるもの: %(kinds)s）。"
            )
            % {"connector": connector.name, "kind": kind[:60], "kinds": "、".join(kinds) or "—"}
        )


def stored_name(name: str, taken: set[str]) -> str:
    """A safe storage name for an uploaded file: its last path part, unique in the run."""
    base = pipeline.safe_key(Path(name.replace("\\", "/")).name) or "upload"
    stem, dot, suffix = base.rpartition(".")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}.{suffix}" if dot and stem else f"{base}-{n}"
    taken.add(candidate)
    return candidate


def do_queue_import(
    connector: type[Connector],
    municipality,
    *,
    actor: Actor,
    uploads: list[Upload],
    kind: str = "",
    ingest_token_id: int | None = None,
    client_request_id: str = "",
    request_digest: str = "",
) -> ImportRun:
    """Accept an import: store its files, record the run as queued, put it in the queue.
    The audit event ("import.start") names the actor and the files. ``kind`` (one of the
    connector's export_kinds) makes every file of another layout fail the run. A push-API
    run also keeps its token and the client's Idempotency-Key (unique per token)."""
    check_kind(connector, kind)
    taken: set[str] = set()
    storage = get_storage()
    with in_tenant(municipality), transaction.atomic():
        run = ImportRun.objects.create(
            connector=connector.name,
            connector_version=connector.version,
            started_by=actor.username[:150],
            started_via=actor.via,
            status=ImportRun.Status.QUEUED,
            config={"kind": kind} if kind else {},  # what the worker passes to the connector
            ingest_token_id=ingest_token_id,
            client_request_id=client_request_id,
            request_digest=request_digest,
        )
        keys, rows = [], 0
        for upload in uploads:
            key = f"imports/{run.pk}/{stored_name(upload.name, taken)}"
            counted = LineCounter(upload.content)
            storage.save(municipality.code, key, counted)
            keys.append(key)
            rows += max(counted.lines - 1, 0)  # less a header line
        run.files, run.rows_expected = keys, rows
        run.save(update_fields=["files", "rows_expected"])
        Job.objects.create(kind=IMPORT, municipality_code=municipality.code, object_id=run.pk)
        pipeline.record_import_start(actor, municipality, run, [Path(k).name for k in keys])
        transaction.on_commit(_wake_a_worker)
    log.info("import #%s queued in %s: %d file(s)", run.pk, municipality.code, len(keys))
    return run


@transaction.atomic
def do_cancel_import(run_id: int, municipality, *, actor: Actor) -> ImportRun:
    """Cancel a queued run (it never starts) or a running one (it stops at its next progress
    report and its transaction is rolled back). Either way nothing of it is applied."""
    # NO KEY UPDATE: a running import holds KEY SHARE on its run (its quarantine rows point
    # at it) until it commits; a plain FOR UPDATE would wait for the whole import.
    run = ImportRun.objects.select_for_update(no_key=True).get(pk=run_id)
    if run.status == ImportRun.Status.QUEUED:
        run.status = ImportRun.Status.CANCELLED
        run.finished_at = timezone.now()
        run.message = "実行前に取り消されました。"
        run.save(update_fields=["status", "finished_at", "message"])
        Job.objects.filter(
            kind=IMPORT, municipality_code=municipality.code, object_id=run.pk
        ).delete()
    elif run.status == ImportRun.Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise ImportStateError(
            _("取り込み #%(n)s は既に終わっているため取り消せません（%(status)s）。")
            % {"n": run.pk, "status": run.get_status_display()}
        )
    audit.record(
        actor,
        "import.cancel",
        municipality_code=municipality.code,
        target=f"import {run.pk} ({run.connector})",
        changes={"status": run.status},
    )
    return run


def queue_position(run: ImportRun, municipality) -> int:
    """How many imports of this municipality run or wait before this queued one."""
    jobs = Job.objects.filter(kind=IMPORT, municipality_code=municipality.code)
    mine = jobs.filter(object_id=run.pk).values_list("pk", flat=True).first()
    if mine is None:
        return 0
    return jobs.filter(pk__lt=mine).count()


class LiveProgress(pipeline.Progress):
    """Writes a running import's phase and rows to its ImportRun from a connection of its
    own, so 管理 sees them while the import's transaction is still open; and stops the run
    when someone asked to cancel it."""

    def __init__(self, run_id: int, schema: str):
        self.run_id, self.table = run_id, f'"{schema}".edudata_importrun'
        self.connection = connections.create_connection("default")
        self.last = 0.0
        self.current_phase = ""

    def phase(self, phase: str) -> None:
        self.current_phase = phase
        self._write(rows=None)

    def rows(self, rows_read: int) -> None:
        if time.monotonic() - self.last >= PROGRESS_EVERY:
            self._write(rows=rows_read)

    def _write(self, rows: int | None) -> None:
        self.last = time.monotonic()
        with self.connection.cursor() as cursor:
            cursor.execute(
                # the schema name is the tenant's, derived from its validated code
                f"UPDATE {self.table} SET phase = coalesce(nullif(%s, ''), phase), "  # noqa: S608
                "progress_rows = coalesce(%s, progress_rows) WHERE id = %s "
                "RETURNING cancel_requested",
                [self.current_phase, rows, self.run_id],
            )
            row = cursor.fetchone()
        if row and row[0]:
            raise pipeline.ImportCancelled

    def close(self) -> None:
        self.connection.close()


def run_pending(limit: int | None = None) -> int:
    """Run queued jobs, oldest first, until none is left (or ``limit`` ran)."""
    reclaim_abandoned()
    done = 0
    while limit is None or done < limit:
        job = _claim()
        if job is None:
            break
        try:
            _run(job)
        except Exception as e:  # one broken job must not stop the queue
            # By type only: a database error's message can quote the row it failed on.
            log.error(
                "job %s (%s #%s) failed: %s", job.pk, job.kind, job.object_id, type(e).__name__
            )
        finally:
            Job.objects.filter(pk=job.pk).delete()
        done += 1
    return done


def reclaim_abandoned() -> int:
    """Put back the jobs whose worker died: claimed over ABANDONED_AFTER ago, and their
    municipality's write lock free (a worker that runs an import holds it)."""
    stale = Job.objects.filter(claimed_at__lt=timezone.now() - ABANDONED_AFTER)
    reclaimed = 0
    for job in stale:
        schema = Municipality.objects.filter(code=job.municipality_code).values_list(
            "schema_name", flat=True
        )
        if schema and tenant_write_idle(schema[0]):
            reclaimed += Job.objects.filter(pk=job.pk, claimed_at=job.claimed_at).update(
                claimed_at=None
            )
    if reclaimed:
        log.warning("%d import job(s) put back in the queue: their worker stopped", reclaimed)
    return reclaimed


def _claim() -> Job | None:
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True)
            .filter(claimed_at__isnull=True)
            .order_by("pk")
            .first()
        )
        if job is not None:
            job.claimed_at = timezone.now()
            job.save(update_fields=["claimed_at"])
    return job


def _run(job: Job) -> None:
    municipality = Municipality.objects.get(code=job.municipality_code)
    if job.kind != IMPORT:
        raise ValueError(f"unknown job kind {job.kind!r}")
    progress = LiveProgress(job.object_id, municipality.schema_name)
    try:
        pipeline.run_queued(job.object_id, municipality, progress)
    except Exception:
        with in_tenant(municipality):  # its transaction rolled back: say so on the run
            ImportRun.objects.filter(
                pk=job.object_id, status__in=[ImportRun.Status.QUEUED, ImportRun.Status.RUNNING]
            ).update(
                status=ImportRun.Status.FAILED,
                finished_at=timezone.now(),
                message="予期しないエラーで止まりました。この取り込みの変更は反映されていません。",
            )
        raise
    finally:
        progress.close()


def _wake_a_worker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: the embedded worker, if running
        WAKE.set()
    else:
        from renkei.connectors.tasks import run_import_jobs

        run_import_jobs.delay()


# -- the embedded worker ----------------------------------------------------------------------

_worker: threading.Thread | None = None


def start_embedded_worker(poll_seconds: float = 5.0) -> threading.Thread:
    """Start (once per process) the thread that runs queued jobs without a broker. Jobs a
    previous process claimed and never finished are put back first."""
    global _worker
    if _worker is None:
        Job.objects.filter(claimed_at__isnull=False).update(claimed_at=None)
        _worker = threading.Thread(
            target=_work, args=(poll_seconds,), name="renkei-jobs", daemon=True
        )
        _worker.start()
    return _worker


def _work(poll_seconds: float) -> None:
    next_sweep = 0.0
    while True:
        WAKE.clear()
        next_sweep = _look(next_sweep)
        WAKE.wait(poll_seconds)


def _look(next_sweep: float) -> float:
    """One round of the embedded worker: the inboxes when their time has come (what they
    queue runs at once), then the queue. Returns when to look at the inboxes next."""
    from renkei.connectors import inbox  # it queues through this module

    try:
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + inbox.SWEEP_EVERY
            inbox.sweep_all()
    except Exception as e:  # the database went away: try again at the next sweep
        log.error("the job worker could not look at the inboxes: %s", type(e).__name__)
    try:
        run_pending()
    except Exception:  # the database went away: try again at the next look
        log.exception("the job worker could not read the queue")
    finally:
        close_old_connections()
    return next_sweep
