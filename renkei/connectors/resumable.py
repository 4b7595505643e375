"""Resumable uploads (the tus 1.0 protocol's core, creation, termination and expiration:
https://tus.io/protocols/resumable-upload): 管理 › 取り込み sends each file in parts with
tus-js-client; when the network drops, the browser asks how much arrived and sends only the
rest. A finished upload is handed to ``jobs.do_queue_import`` like a file of a plain form.

A part-sent file lives on the web server's disk, ``RENKEI_HOME/uploads/<code>/<id>.part``,
beside ``<id>.json`` (its name, length, and who sent it): the tenant's storage (S3) cannot
append. With several web servers, RENKEI_HOME/uploads must be a shared volume. An upload
nobody finishes expires ``RENKEI_UPLOAD_EXPIRES`` seconds (default a day) after its last
part and is deleted: nothing of it is ever imported.

No maintained server library fits (django-tus rewrites a file from the start on every part
and keeps its state in the cache; drf-tus needs Django REST framework, which Renkei does not
use), so the few rules of the protocol are here; the official clients (tus-js-client in the
page, tuspy in the tests) are what checks them.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

from renkei.connectors.uploads import Upload, too_large
from renkei.platform import environment
from renkei.platform.storage import check_key

CHUNK = 1 << 20  # bytes read from a request at a time


class ResumableError(ValueError):
    """A request the protocol refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PartialUpload:
    """One file being uploaded: where its bytes and its description are."""

    tenant: str
    id: str
    name: str
    length: int
    owner: int  # the user who started it; only they can continue, read or delete it

    @property
    def data(self) -> Path:
        return _folder(self.tenant) / f"{self.id}.part"

    @property
    def offset(self) -> int:
        return self.data.stat().st_size

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    @property
    def expires_at(self) -> float:
        return self.data.stat().st_mtime + settings.RENKEI_UPLOAD_EXPIRES


def _folder(tenant: str) -> Path:
    check_key(tenant, "uploads")
    return environment.home() / "uploads" / tenant


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata: filename d29yZA==,other`` → {"filename": "word", "other": ""}."""
    metadata = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _sep, value = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ResumableError(
                400, _("Upload-Metadata の値が base64 の UTF-8 ではありません。")
            ) from None
    return metadata


def create(tenant: str, owner: int, name: str, length: int) -> PartialUpload:
    """Begin an upload of ``length`` bytes (refused over the size limit, with the limit)."""
    if length > settings.RENKEI_UPLOAD_MAX_BYTES:
        raise ResumableError(413, too_large(name))
    if length <= 0:
        raise ResumableError(
            400, _("「%(name)s」は空のファイルです（0 バイト）。") % {"name": name}
        )
    delete_expired(tenant)
    upload = PartialUpload(tenant, uuid.uuid4().hex, name, length, owner)
    upload.data.parent.mkdir(parents=True, exist_ok=True)
    upload.data.touch()
    _describe(upload).write_text(
        json.dumps({"name": name, "length": length, "owner": owner}), encoding="utf-8"
    )
    return upload


def _describe(upload: PartialUpload) -> Path:
    return upload.data.with_suffix(".json")


def find(tenant: str, upload_id: str, owner: int) -> PartialUpload:
    """The owner's upload ``upload_id`` in this tenant; 404 for anyone else's or none, 410
    once it expired."""
    try:
        upload_id = uuid.UUID(upload_id).hex
        path = _folder(tenant) / f"{upload_id}.json"
        described = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        raise ResumableError(404, _("このアップロードはありません。")) from None
    upload = PartialUpload(
        tenant, upload_id, described["name"], described["length"], described["owner"]
    )
    if upload.owner != owner:
        raise ResumableError(404, _("このアップロードはありません。"))
    if upload.expires_at < time.time() and not upload.complete:
        delete(upload)
        raise ResumableError(
            410, _("このアップロードは期限切れで消えました。最初から送ってください。")
        )
    return upload


def append(upload: PartialUpload, offset: int, body: BinaryIO) -> int:
    """Write the request body at ``offset`` (which must be where the file ends) and return
    the new offset. Bytes beyond the declared length are refused, not kept."""
    with upload.data.open("ab") as out:
        try:  # one request at a time writes a file: a second would interleave its bytes
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResumableError(423, _("このファイルの別の送信が進行中です。")) from None
        if offset != upload.offset:
            raise ResumableError(
                409,
                _("続きは %(offset)s バイト目からです（%(sent)s が送られました）。")
                % {"offset": upload.offset, "sent": offset},
            )
        left = upload.length - offset
        while chunk := body.read(min(CHUNK, left + 1)):
            if len(chunk) > left:
                out.write(chunk[:left])
                out.flush()
                raise ResumableError(
                    413, _("「%(name)s」が申告された長さを超えました。") % {"name": upload.name}
                )
            out.write(chunk)
            left -= len(chunk)
        out.flush()
    return upload.length - left


def delete(upload: PartialUpload) -> None:
    upload.data.unlink(missing_ok=True)
    _describe(upload).unlink(missing_ok=True)


def delete_expired(tenant: str) -> int:
    """Delete the tenant's uploads whose last part is older than the expiry."""
    folder, deleted = _folder(tenant), 0
    cutoff = time.time() - settings.RENKEI_UPLOAD_EXPIRES
    for data in folder.glob("*.part") if folder.is_dir() else ():
        if data.stat().st_mtime < cutoff:
            data.unlink(missing_ok=True)
            data.with_suffix(".json").unlink(missing_ok=True)
            deleted += 1
    return deleted


def take(tenant: str, upload_ids: list[str], owner: int) -> list[Upload]:
    """The owner's finished uploads, opened for reading (for ``do_queue_import``); call
    :func:`discard` once they are stored."""
    found = [find(tenant, upload_id, owner) for upload_id in upload_ids]
    for upload in found:
        if not upload.complete:
            raise ResumableError(
                400,
                _("「%(name)s」はまだ送り終わっていません（%(offset)s/%(length)s バイト）。")
                % {"name": upload.name, "offset": upload.offset, "length": upload.length},
            )
    return [Upload(u.name, u.data.open("rb")) for u in found]


def discard(tenant: str, upload_ids: list[str]) -> None:
    for upload_id in upload_ids:
        for suffix in (".part", ".json"):
            (_folder(tenant) / f"{uuid.UUID(upload_id).hex}{suffix}").unlink(missing_ok=True)
