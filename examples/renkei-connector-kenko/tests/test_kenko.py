"""The vendor's own tests: they need neither a database nor a Renkei project."""

import datetime as dt
import json

from renkei_connector_kenko import KenkoConnector

from renkei.connectors.records import HealthObservationRecord
from renkei.connectors.sdk import RowError, RunState, SourceError


def export(tmp_path, *lines):
    path = tmp_path / "kenko.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path):
    connector = KenkoConnector()
    return list(connector.read(connector.Config(paths=[path]), RunState()))


def test_rows_become_health_observations(tmp_path):
    path = export(
        tmp_path,
        json.dumps(
            {"sourcedId": "u-1", "date": "2025-04-07", "condition": "poor", "symptoms": "頭痛"},
            ensure_ascii=False,
        ),
    )
    [record] = read(path)
    assert isinstance(record, HealthObservationRecord)
    assert (record.student_source_id, record.date, record.condition, record.symptoms) == (
        "u-1",
        dt.date(2025, 4, 7),
        "poor",
        "頭痛",
    )
    assert (record.origin.file, record.origin.line) == ("kenko.jsonl", 1)


def test_bad_lines_are_row_errors_with_line_numbers(tmp_path):
    path = export(
        tmp_path,
        '{"sourcedId": "u-1", "date": "2025-04-07", "condition": "good"}',
        "not json",
        '{"sourcedId": "u-2", "date": "2025-13-01", "condition": "good"}',
        '{"sourcedId": "u-3", "date": "2025-04-07", "condition": "sleepy"}',
    )
    items = read(path)
    errors = [i for i in items if isinstance(i, RowError)]
    assert [e.origin.line for e in errors] == [2, 3, 4]
    assert errors[1].column == "date" and errors[2].column == "condition"
    assert "JSON" in errors[0].reason


def test_missing_file_fails_up_front(tmp_path):
    connector = KenkoConnector()
    config = connector.Config(paths=[tmp_path / "nope.jsonl"])
    assert not connector.check(config).ok
    try:
        list(connector.read(config, RunState()))
    except SourceError as e:
        assert "nope.jsonl" in str(e)
    else:
        raise AssertionError("expected SourceError")
