"""The msgraph connector reads usage-report CSVs exported from the admin centre (no
credentials needed), e.g. in a municipality without outbound access, and the demo."""

import datetime as dt

import pytest
from pydantic import ValidationError

from renkei.connectors.builtin.msgraph import MicrosoftGraphConnector
from renkei.connectors.records import M365UsageRecord
from renkei.connectors.sdk import RowError, RunState, SourceError

HEADER = (
    "Report Refresh Date,User Principal Name,Last Activation Date,Last Activity Date,"
    "Report Period,Windows,Mac,Mobile,Web,Outlook,Word,Excel,PowerPoint,OneNote,Teams"
)


def read(*paths):
    connector = MicrosoftGraphConnector()
    return list(connector.read(connector.Config(paths=list(paths)), RunState()))


def test_exported_reports_become_usage_records(tmp_path):
    (tmp_path / "M365AppUserDetail_2026-03-09.csv").write_text(
        "\ufeff" + HEADER + "\n"
        "2026-03-09,s1@m.example.ed.jp,,2026-03-09,1,Yes,No,No,No,No,Yes,No,No,No,Yes\n"
        "2026-03-09,s2@m.example.ed.jp,,2026-03-09,1,Yes,No,No,No,No,No,No,No,No,No\n"
        "2026-03-09,,,2026-03-09,1,Yes,No,No,No,No,No,No,No,No,Yes\n",
        encoding="utf-8",
    )
    items = read(tmp_path)
    records = {(r.principal_name, r.date, r.app) for r in items if isinstance(r, M365UsageRecord)}
    assert records == {
        ("s1@m.example.ed.jp", dt.date(2026, 3, 9), "word"),
        ("s1@m.example.ed.jp", dt.date(2026, 3, 9), "teams"),
    }
    [error] = [i for i in items if isinstance(i, RowError)]
    assert error.origin.line == 4


def test_concealed_exports_are_refused_with_the_admin_setting(tmp_path):
    rows = "".join(
        f"2026-03-09,{'AB' * 16},,2026-03-09,1,Yes,No,No,No,No,No,No,No,No,Yes\n" for _ in range(3)
    )
    (tmp_path / "report_2026-03-09.csv").write_text(HEADER + "\n" + rows, encoding="utf-8")
    with pytest.raises(SourceError, match="displayConcealedNames"):
        read(tmp_path)


def test_credentials_are_required_without_files():
    with pytest.raises(ValidationError, match="client_secret"):
        MicrosoftGraphConnector.Config()
