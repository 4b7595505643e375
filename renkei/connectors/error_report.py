"""The CSV error report of an import run: every quarantined row with where and why.
UTF-8 with a BOM so that Excel on Windows opens it correctly."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from renkei.edudata.models import ImportRun

COLUMNS = {"file": "ファイル", "line": "行", "column": "列", "value": "値", "reason": "理由"}


class _Line:
    """csv.writer target that hands each formatted line back."""

    def write(self, text: str) -> str:
        return text


def error_report_lines(run: ImportRun, *, values: bool = True) -> Iterator[str]:
    """The report line by line (streamed: a run may have quarantined millions of rows).

    ``values=False`` leaves the rejected values out: what the 管理 pages give a municipality
    admin, who is not school staff. A value may be a pupil's name, birth date or absence
    reason (or a whole unreadable row); file, line, column and reason find it in the file.
    """
    writer = csv.writer(_Line())
    columns = [c for c in COLUMNS if values or c != "value"]
    yield "\ufeff" + writer.writerow([COLUMNS[c] for c in columns])
    rows = run.quarantine.order_by("file", "line", "id").values_list(*columns)
    for row in rows.iterator(chunk_size=5000):
        yield writer.writerow(row)
