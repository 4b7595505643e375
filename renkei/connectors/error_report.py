"""The CSV error report of an import run: every quarantined row with where and why, and the
warnings on rows that were accepted (種別 エラー or 警告). UTF-8 with a BOM so that Excel on
Windows opens it correctly."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction
from django.http import StreamingHttpResponse

from renkei.edudata.models import ImportRun, QuarantinedRow
from renkei.platform.csv_download import BOM, csv_download, line_writer
from renkei.tenants.context import in_tenant

COLUMNS = {
    "file": "ファイル",
    "line": "行",
    "column": "列",
    "value": "値",
    "reason": "理由",
    "kind": "種別",
}
KIND_LABELS = dict(QuarantinedRow.Kind.choices)


def error_report_lines(run: ImportRun, *, values: bool = True) -> Iterator[str]:
    """The report line by line (streamed: a run may have quarantined millions of rows).

    ``values=False`` leaves the rejected values out: what the 管理 pages give a municipality
    admin, who is not school staff. A value may be a pupil's name, birth date or absence
    reason (or a whole unreadable row); file, line, column and reason find it in the file.
    """
    writer = line_writer()
    columns = [c for c in COLUMNS if values or c != "value"]
    yield BOM + writer.writerow([COLUMNS[c] for c in columns])
    rows = run.quarantine.order_by("file", "line", "id").values_list(*columns)
    for *row, kind in rows.iterator(chunk_size=5000):
        yield writer.writerow([*row, KIND_LABELS.get(kind, kind)])


def error_report_download(run: ImportRun, municipality) -> StreamingHttpResponse:
    """The report without the values, as a download (管理 and the push API)."""

    def lines():
        # The body is streamed after the view returns; in a transaction, iterator() reads
        # it in chunks (a server-side cursor, renkei.tenants.postgresql_backend).
        with in_tenant(municipality), transaction.atomic():
            yield from error_report_lines(run, values=False)

    return csv_download(lines(), f"import-{run.pk}-errors.csv")
