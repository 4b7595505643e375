"""The inbox: files that a municipality's own systems drop for a connector (a school system's
scheduled export, an SFTP or S3 sync) are imported as if uploaded in 管理 › 取り込み.

Where: the tenant's storage, under ``inbox/<connector>/`` (:func:`location`): locally
``RENKEI_HOME/storage/<code>/inbox/<connector>/``, in S3 ``s3://<bucket>/inbox/m<code>/<connector>/``.
Only files directly in that folder are taken, and only for connectors whose setting in
管理 › コネクタ設定 is enabled with 受信箱から取り込む ticked.

A file is taken once complete: a marker ``<name>.done`` beside it, or the same size at two
looks at least STABLE_FOR apart (sizes are remembered between looks in ``edudata.InboxFile``).
Names that senders use while still writing (``.part``, ``.partial``, ``.filepart``, ``.tmp``,
or starting with ``.`` or ``~``) are left alone. A complete file is queued with
``jobs.do_queue_import``, the action of uploads (a zip is opened the same way), started by
受信箱 (``Actor.inbox``), then moved to ``processed/<run id>-<name>``; the run in 管理 says
how the import ended. A file that cannot even be queued (a broken zip, empty, too large)
goes to ``failed/<time>-<name>`` with ``<that name>.reason.txt`` beside it saying why.

Who looks: the embedded worker every SWEEP_EVERY seconds (``jobs._work``); with a broker,
beat sends ``renkei.schedule_inbox_sweeps`` every two minutes. One sweep of a tenant at a
time (an advisory lock; a second sweep skips the tenant), so no file is queued twice at once.
A file is queued, then moved: if the process dies in between, the next sweep queues it again,
and an import run twice ends as one clean run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from renkei.connectors import jobs, registry, uploads
from renkei.connectors.sdk import Connector
from renkei.edudata.models import ConnectorSetting, InboxFile
from renkei.edudata.tasks import tenant_codes
from renkei.platform.audit import Actor
from renkei.platform.storage import S3Storage, get_storage
from renkei.tenants.context import get_municipality, held_lock, in_tenant

log = logging.getLogger(__name__)

SWEEP_EVERY = 60  # seconds between two looks of the embedded worker
STABLE_FOR = dt.timedelta(seconds=30)  # a file without marker: unchanged at least this long
MARKER = ".done"
PROCESSED, FAILED = "processed", "failed"
BEING_WRITTEN = (".part", ".partial", ".filepart", ".tmp")  # what SFTP clients write first


@dataclass(frozen=True)
class Taken:
    """A file the sweep took: queued as ``run_id``, or refused (``reason``, in failed/)."""

    connector: str
    name: str
    run_id: int | None = None
    reason: str = ""


def folder(connector: str) -> str:
    """The storage key of a connector's inbox (within the tenant)."""
    return f"inbox/{connector}"


def location(municipality, connector: str) -> str:
    """Where the municipality's systems put files for ``connector``, as the operator of the
    SFTP server or the S3 sync names it."""
    storage = get_storage()
    if isinstance(storage, S3Storage):
        key = storage.object_key(municipality.code, folder(connector))
        return f"s3://{storage.bucket}/{key}/"
    return f"{storage.root / municipality.code / folder(connector)}/"


def inbox_tenants() -> list[str]:
    """Tenants with at least one inbox enabled (run in public)."""
    found = []
    for code in tenant_codes():
        with in_tenant(code):
            if _enabled().exists():
                found.append(code)
    return found


def sweep_all(*, stable_for: dt.timedelta = STABLE_FOR) -> list[Taken]:
    """Look once at the enabled inboxes of every tenant (the embedded worker)."""
    taken: list[Taken] = []
    for code in inbox_tenants():
        try:
            taken += sweep(get_municipality(code), stable_for=stable_for)
        except Exception as e:  # one tenant's broken inbox must not stop the others
            log.error("inbox sweep of %s failed: %s", code, type(e).__name__)
    return taken


def sweep(municipality, *, stable_for: dt.timedelta = STABLE_FOR) -> list[Taken]:
    """Look once at the enabled inboxes of ``municipality``: queue each complete file and
    move it away. Nothing happens while another sweep of the same tenant is under way."""
    installed, _problems = registry.discover()
    taken: list[Taken] = []
    with in_tenant(municipality), _one_sweep_at_a_time(municipality.schema_name) as alone:
        if not alone:
            log.info("inbox of %s: another sweep is under way", municipality.code)
            return taken
        for name in _enabled().values_list("connector", flat=True):
            if name not in installed:
                log.warning("inbox of %s: connector %s is not installed", municipality.code, name)
                continue
            taken += _sweep_connector(installed[name], municipality, stable_for)
    queued = sum(1 for t in taken if t.run_id)
    if taken:
        log.info(
            "inbox of %s: %d file(s) queued, %d failed",
            municipality.code,
            queued,
            len(taken) - queued,
        )
    return taken


def _enabled():
    return ConnectorSetting.objects.filter(enabled=True, inbox_enabled=True)


def _one_sweep_at_a_time(schema_name: str):
    """Whether this sweep holds the tenant's inbox lock (not the tenant write lock: a running
    import holds that one for its whole run)."""
    return held_lock(f"renkei-inbox:{schema_name}", wait=False)


def _sweep_connector(
    connector: type[Connector], municipality, stable_for: dt.timedelta
) -> list[Taken]:
    base = folder(connector.name) + "/"
    here = {}
    for stored in get_storage().list(municipality.code, base):
        name = stored.key.removeprefix(base)
        if "/" not in name:  # processed/, failed/ and any other folder are not looked at
            here[name] = stored.size
    marked = {n.removesuffix(MARKER) for n in here if n.endswith(MARKER)}
    files = {
        name: size
        for name, size in here.items()
        if not name.endswith(MARKER) and not _being_written(name)
    }
    return [
        _take(connector, municipality, name, files[name], marked=name in marked)
        for name in _complete(connector.name, files, marked, stable_for)
    ]


def _being_written(name: str) -> bool:
    return name.startswith((".", "~")) or name.lower().endswith(BEING_WRITTEN)


def _complete(
    connector: str, files: dict[str, int], marked: set[str], stable_for: dt.timedelta
) -> list[str]:
    """The files that are complete now; the size of every other one is remembered for the
    next look, and files that left the inbox are forgotten."""
    now = timezone.now()
    seen = {f.name: f for f in InboxFile.objects.filter(connector=connector)}
    complete = []
    for name, size in sorted(files.items()):
        before = seen.get(name)
        if name in marked or (
            before is not None and before.size == size and now - before.seen_at >= stable_for
        ):
            complete.append(name)
        elif before is None:
            InboxFile.objects.create(connector=connector, name=name, size=size, seen_at=now)
        elif before.size != size:  # still being written: count again from now
            before.size, before.seen_at = size, now
            before.save(update_fields=["size", "seen_at"])
    waiting = set(files) - set(complete)
    InboxFile.objects.filter(connector=connector).exclude(name__in=waiting).delete()
    return complete


def _take(connector: type[Connector], municipality, name: str, size: int, *, marked: bool) -> Taken:
    """Queue one complete file and move it to processed/ (or failed/, with the reason)."""
    storage, code = get_storage(), municipality.code
    key = f"{folder(connector.name)}/{name}"
    limit = settings.RENKEI_UPLOAD_MAX_BYTES
    try:
        if not size:
            raise uploads.UploadError(f"「{name}」は空のファイルです。")
        if size > limit:
            raise uploads.UploadError(uploads.too_large(name))
        with contextlib.ExitStack() as stack:
            content = _readable(stack, storage.open(code, key), name)
            run = jobs.do_queue_import(
                connector,
                municipality,
                actor=Actor.inbox(),
                uploads=uploads.unpacked([uploads.Upload(name, content)], limit),
            )
    except (uploads.UploadError, zipfile.BadZipFile) as e:
        reason = str(e) if isinstance(e, uploads.UploadError) else "zip ファイルが壊れています。"
        _refuse(municipality, connector.name, name, reason)
        taken = Taken(connector.name, name, reason=reason)
    except Exception as e:  # e.g. storage out of reach: left where it is for the next look
        log.error("inbox of %s: a file could not be taken: %s", code, type(e).__name__)
        return Taken(connector.name, name, reason=type(e).__name__)
    else:
        _move(code, key, f"{folder(connector.name)}/{PROCESSED}/{run.pk}-{name}")
        taken = Taken(connector.name, name, run_id=run.pk)
    if marked:
        storage.delete(code, key + MARKER)
    return taken


def _readable(stack: contextlib.ExitStack, content: BinaryIO, name: str) -> BinaryIO:
    """The file's content; a zip is read by seeking, so one in S3 (a stream) is copied to a
    temporary file first."""
    stack.enter_context(content)
    seekable = getattr(content, "seekable", None)
    if not name.lower().endswith(".zip") or (seekable and seekable()):
        return content
    copy = stack.enter_context(tempfile.TemporaryFile(prefix="renkei-inbox-"))
    shutil.copyfileobj(content, copy, length=1 << 20)
    copy.seek(0)
    return copy


def _refuse(municipality, connector: str, name: str, reason: str) -> None:
    storage, code = get_storage(), municipality.code
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    target = f"{folder(connector)}/{FAILED}/{stamp}-{name}"
    _move(code, f"{folder(connector)}/{name}", target)
    text = f"{reason}\nこのファイルは取り込んでいません。直してから受信箱に置き直してください。\n"
    storage.save(code, f"{target}.reason.txt", io.BytesIO(text.encode()))
    log.warning("inbox of %s: a file of %s could not be queued (moved to failed/)", code, connector)


def _move(code: str, source: str, target: str) -> None:
    storage = get_storage()
    with storage.open(code, source) as content:
        storage.save(code, target, content)
    storage.delete(code, source)
