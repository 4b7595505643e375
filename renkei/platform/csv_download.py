"""CSV files streamed to the browser: UTF-8 with a BOM (Excel on Windows opens it right),
one line at a time (an access log or an error report can hold millions of rows)."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse

BOM = "\ufeff"


class _Line:
    """csv.writer target that hands each formatted line back."""

    def write(self, text: str) -> str:
        return text


def line_writer():
    """A csv.writer whose ``writerow`` returns the formatted line instead of writing it."""
    return csv.writer(_Line())


def csv_download(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    """Stream ``lines`` (the first one starting with BOM) as an attachment."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
