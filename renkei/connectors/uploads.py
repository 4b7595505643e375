"""Uploads (管理 › 取り込み and the push API): files stream to temporary files (Django's upload handlers keep
no more than 2.5 MB of a file in memory) and a file over the limit stops the upload at once,
with a 413 that names the limit."""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload


def limit_label(limit: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} バイト"


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
