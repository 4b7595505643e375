"""The mappings' fast path (mapping.Mapping.read → reading.CopyRows): for a row of a data
stream it writes the COPY text itself instead of making a record. Whatever the cells, it must
give exactly what the record would have given, and a row it cannot take must come out as the
record's way says (the record, or the RowError naming the column and the reason)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from renkei.connectors.builtin.vendor_csv import MAPPINGS
from renkei.connectors.mapping import load_mappings
from renkei.connectors.reading import CopyRows
from renkei.connectors.records import Record
from renkei.connectors.sdk import RowError, csv_rows
from renkei.connectors.streams import DATA_STREAMS


def mapping(vendor: str, kind: str):
    return next(m for m in load_mappings(MAPPINGS / vendor) if m.kind == kind)


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def both_ways(m, path: Path) -> tuple[list, list]:
    """What the fast path gives, and what records give, as (line, COPY text) for a row taken
    and RowError for a row refused. Every row taken came the fast way."""
    fast = []
    for item in m.read(csv_rows(path, m.required_columns()), path.name):
        assert not isinstance(item, Record), "a row taken went the records' way"
        if isinstance(item, CopyRows):
            assert item.file == path.name
            fast += list(zip(item.lines, item.texts, strict=True))
        else:
            fast.append(as_slow(item))
    slow = []
    read = None
    for row in csv_rows(path, m.required_columns()):
        read = read or m.reader(row.header, path.name)
        slow += [as_slow(item) for item in read(row)]
    return fast, slow


def as_slow(item):
    if isinstance(item, RowError):
        return item
    return (item.origin.line, DATA_STREAMS[item.stream].copy_text(item))


ATTENDANCE = ["学校コード", "児童生徒ID", "日付", "出欠", "理由"]


def test_attendance_rows_come_out_as_their_records_would(tmp_path):
    rows = [
        ["B113211300012", "C0000001", "R7.4.7", "", ""],
        ["B113211300012", " C0000002 ", "令和7年4月8日", "病", "発熱"],
        ["B113211300012", "C0000003", "2025/04/09", "欠", "理由に\tタブと\\記号"],
        ["B113211300012", "C0000004", "Ｒ７．４．１０", "遅", ""],
        ["B113211300012", "", "R7.4.7", "", ""],  # no pupil
        ["B113211300012", "C0000005", "R7.2.30", "", ""],  # no such day
        ["B113211300012", "C0000006", "R7.4.7", "謎", ""],  # no such mark
        ["B113211300012", "C0000007", "R7.4.7", "", "長" * 201],  # reason too long
        ["B113211300012", "C0000008", "R7.4.7", ""],  # a cell short
        ["B113211300012", "C0000001", "R7.4.7", "", ""],  # repeats: remembered cells
        ["B113211300012", "C0000006", "R7.4.7", "謎", ""],  # a refused cell, again
        ["B113211300012", "C0000009", "R7.4.7", "", "長" * 200],
    ]
    path = write(tmp_path / "attendance.csv", ATTENDANCE, rows)

    fast, slow = both_ways(mapping("c4th", "attendance"), path)

    assert fast == slow
    assert fast[0] == (2, "C0000001\t2025-04-07\tpresent\t")
    assert fast[2] == (4, "C0000003\t2025-04-09\tabsent_other\t理由に\\tタブと\\\\記号")
    refused = [item for item in fast if isinstance(item, RowError)]
    assert [(e.origin.line, e.column) for e in refused] == [
        (6, "児童生徒ID"),
        (7, "日付"),
        (8, "出欠"),
        (9, "理由"),
        (10, ""),
        (12, "出欠"),
    ]


def test_optional_columns_missing_from_the_file_give_the_records_defaults(tmp_path):
    path = write(
        tmp_path / "attendance.csv",
        ATTENDANCE[:4],
        [["B113211300012", "C0000001", "R7.4.7", "事"]],
    )
    fast, slow = both_ways(mapping("c4th", "attendance"), path)
    assert fast == slow == [(2, "C0000001\t2025-04-07\tabsent_accident\t")]


def test_fields_of_several_cells_and_of_other_types_too(tmp_path):
    # 観点 (a JSON object), an optional 評定, and a visit's date and time in two cells
    evaluations = write(
        tmp_path / "evaluations.csv",
        ["児童生徒ID", "年度", "学期", "教科", "評定", "観点1", "観点2", "観点3"],
        [
            ["C1", "2025", "前期", "国語", "4", "A", "B", ""],
            ["C2", "2025", "前期", "国語", "", "", "", ""],
            ["C3", "2025", "前期", "国語", "6", "A", "A", "A"],  # 評定 out of range
            ["C4", "2025", "前期", "国語", "3", "S", "A", "A"],  # no such 観点 value
            ["C5", "1999", "前期", "国語", "3", "A", "A", "A"],  # no such year
        ],
    )
    fast, slow = both_ways(mapping("c4th", "evaluations"), evaluations)
    assert fast == slow
    assert fast[0] == (2, 'C1\t2025\t前期\t国語\t4\t{"知識・技能": "A", "思考・判断・表現": "B"}')
    assert fast[1] == (3, "C2\t2025\t前期\t国語\t\\N\t{}")
    assert all(isinstance(item, RowError) for item in fast[2:])

    visits = write(
        tmp_path / "visits.csv",
        ["児童生徒ID", "来室日", "来室時刻", "来室理由", "処置内容"],
        [
            ["C1", "R7.5.1", "10:15", "けが", "消毒"],
            ["C2", "R7.5.1", "", "相談", ""],
            ["C3", "R7.5.1", "25:00", "相談", ""],  # no such time
        ],
    )
    fast, slow = both_ways(mapping("c4th", "nurse_visits"), visits)
    assert fast == slow
    assert fast[0] == (2, "C1\t2025-05-01T10:15:00+09:00\tinjury\t消毒")
    assert isinstance(fast[2], RowError) and fast[2].column == "来室時刻"


@pytest.mark.parametrize(("vendor", "kind"), [("c4th", "roster"), ("c4th", "assessments")])
def test_records_with_validators_across_fields_and_the_roster_keep_the_records_way(
    tmp_path, vendor, kind
):
    m = mapping(vendor, kind)
    path = write(tmp_path / "f.csv", m.required_columns(), [])
    path.write_text(path.read_text() + ",".join("1" for _ in m.required_columns()) + "\n")
    assert not any(isinstance(i, CopyRows) for i in m.read(csv_rows(path), path.name))
