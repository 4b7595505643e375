"""The CSV error report of an import run: every quarantined row with where and why.
UTF-8 with a BOM so that Excel on Windows opens it correctly."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from renkei.edudata.models import ImportRun

HEADER = ["ファイル", "行", "列", "値", "理由"]


class _Line:
    """csv.writer target that hands each formatted line back."""

    def write(self, text: str) -> str:
        return text


def error_report_lines(run: ImportRun) -> Iterator[str]:
    """The report line by line (streamed: a run may have quarantined millions of rows)."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(HEADER)
    rows = run.quarantine.order_by("file", "line", "id").values_list(
        "file", "line", "column", "value", "reason")
    for row in rows.iterator(chunk_size=5000):
        yield writer.writerow(row)
