"""Uploads (管理 › 取り込み and the push API): files stream to temporary files (Django's
upload handlers keep no more than 2.5 MB of a file in memory) and a file over the limit stops
the upload at once, with a 413 that names the limit. A zip is opened here, once, for every
connector: its files are imported as if uploaded one by one, and a zip that points outside
itself, holds too much, or inflates too far (a zip bomb) is refused before anything is
stored."""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.utils.translation import gettext as _

MAX_MEMBERS = 1_000  # files in one zip
MAX_RATIO = 200  # uncompressed / compressed size of one member; beyond, a zip bomb
RATIO_FROM = 1 << 20  # ... for members over 1 MB (tiny files compress as they like)


@dataclass(frozen=True)
class Upload:
    """One file given to an import: its name as the sender's computer called it, and its
    content (read in chunks, never whole)."""

    name: str
    content: BinaryIO


class LineCounter:
    """Passes ``source`` through, counting its line breaks (an import's rows, roughly, to
    tell how long it has left)."""

    def __init__(self, source: BinaryIO):
        self.source, self.lines = source, 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.lines += data.count(b"\n")
        return data


class UploadError(ValueError):
    """An upload refused as a whole; the message names the file and the reason (Japanese)."""


def limit_label(limit: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} B"


def too_large(name: str) -> str:
    """The refusal of a file over RENKEI_UPLOAD_MAX_BYTES, naming the file and the limit."""
    return _(
        "「%(name)s」は大きすぎます（1 ファイル %(limit)s まで）。分けて取り込んでください。"
    ) % {
        "name": name[:100],
        "limit": limit_label(settings.RENKEI_UPLOAD_MAX_BYTES),
    }


class SizeLimit(FileUploadHandler):
    """Counts each file's bytes as they arrive; the first file over ``limit`` stops the
    upload and is named in ``request.upload_too_large``."""

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit, self.size = limit, 0
        request.upload_too_large = None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.size += len(raw_data)
        if self.size > self.limit:
            self.request.upload_too_large = self.file_name
            raise StopUpload(connection_reset=False)  # read and drop the rest, then answer
        return raw_data  # the next handler (memory or temporary file) keeps it

    def file_complete(self, file_size):
        return None


def unpacked(uploads: list[Upload], limit: int) -> list[Upload]:
    """The uploads with every zip replaced by its files (read lazily from the zip)."""
    files: list[Upload] = []
    for upload in uploads:
        if upload.name.lower().endswith(".zip"):
            files += _members(upload, limit)
        else:
            files.append(upload)
    return files


def _members(upload: Upload, limit: int) -> list[Upload]:
    try:
        archive = zipfile.ZipFile(upload.content)
    except zipfile.BadZipFile:
        raise UploadError(
            _("「%(name)s」は zip ファイルとして読めません。") % {"name": upload.name}
        ) from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if not members:
        raise UploadError(_("「%(name)s」にはファイルがありません。") % {"name": upload.name})
    if len(members) > MAX_MEMBERS:
        raise UploadError(
            _("「%(name)s」のファイルが多すぎます（%(n)s 個まで）。")
            % {"name": upload.name, "n": MAX_MEMBERS}
        )
    total = 0
    for member in members:
        where = {"name": upload.name, "member": member.filename[:100]}
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        is_link = stat.S_ISLNK(member.external_attr >> 16)
        if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or is_link:
            raise UploadError(
                _(
                    "「%(name)s」の「%(member)s」は zip の外を指しています"
                    "（絶対パス・.. ・リンクは使えません）。"
                )
                % where
            )
        if member.flag_bits & 0x1:
            raise UploadError(
                _(
                    "「%(name)s」の「%(member)s」は暗号化されています。暗号化せずに zip にしてください。"
                )
                % where
            )
        total += member.file_size
        if member.file_size > limit or total > limit:
            raise UploadError(
                _("「%(name)s」は展開すると大きすぎます（%(limit)s まで）。")
                % {"name": upload.name, "limit": limit_label(limit)}
            )
        if member.file_size > RATIO_FROM and member.file_size > MAX_RATIO * max(
            member.compress_size, 1
        ):
            raise UploadError(
                _(
                    "「%(name)s」の「%(member)s」は圧縮率が異常です（zip bomb の疑い）。取り込めません。"
                )
                % where
            )
    # ZipExtFile stops at the declared size and checks the CRC: a member cannot inflate past
    # what was checked above without failing the import (BadZipFile, nothing applied).
    return [Upload(PurePosixPath(m.filename).name, archive.open(m)) for m in members]
