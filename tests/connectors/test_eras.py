import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.connectors.eras import DateParseError, normalize_width, parse_date, to_era

D = datetime.date


@pytest.mark.parametrize(
    "text",
    [
        "2023-04-01",
        "2023/4/1",
        "2023/04/01",
        "20230401",
        "R5.4.1",
        "R05.04.01",
        "R5/4/1",
        "R5-4-1",
        "r5.4.1",
        "令和5年4月1日",
        "令和 5年 4月 1日",
        "Ｒ５．４．１",
        "ｒ５／４／１",
        "令和５年４月１日",
        "２０２３－０４－０１",
        "  R5.4.1\t",
        "\u3000令和5年4月1日\u3000",
    ],
)
def test_accepted_forms(text):
    assert parse_date(text) == D(2023, 4, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("令和元年5月1日", D(2019, 5, 1)),
        ("R1.5.1", D(2019, 5, 1)),
        ("R元.5.1", D(2019, 5, 1)),
        ("平成元年1月8日", D(1989, 1, 8)),
        ("H31.4.30", D(2019, 4, 30)),
        ("平成31年4月30日", D(2019, 4, 30)),
        ("S64.1.7", D(1989, 1, 7)),
        ("H1.1.8", D(1989, 1, 8)),
        ("s1.12.25", D(1926, 12, 25)),
        ("T15.12.24", D(1926, 12, 24)),
        ("大正元年7月30日", D(1912, 7, 30)),
        ("M45.7.29", D(1912, 7, 29)),
        ("M6.1.1", D(1873, 1, 1)),
    ],
)
def test_eras_and_boundaries(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("R1.4.30", "令和は2019年5月1日から。平成31年4月30日を意味する場合は平成で"),
        ("平成31年5月1日", "平成は2019年4月30日まで。令和元年5月1日を意味する場合は令和で"),
        ("S64.1.8", "昭和は1989年1月7日まで。平成元年1月8日を意味する場合は平成で"),
        ("H1.1.7", "平成は1989年1月8日から"),
        ("M1.1.1", "明治は1868年1月25日から）"),
    ],
)
def test_dates_outside_their_era_are_rejected(text, fragment):
    with pytest.raises(DateParseError) as exc:
        parse_date(text)
    assert str(exc.value).startswith(f"「{text}」は存在しない和暦日付です（")
    assert fragment in str(exc.value)


def test_message_names_the_reason():
    with pytest.raises(DateParseError) as exc:
        parse_date("R5.13.1")
    assert str(exc.value) == "「R5.13.1」は日付として読めません（月が 13）"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("R5.13.1", "月が 13"),
        ("R5.2.30", "2023年2月に 30 日はありません"),
        ("2023-02-29", "2023年2月に 29 日はありません"),
        ("20231301", "月が 13"),
        ("2023/0/10", "月が 0"),
        ("R0.4.1", "令和0年はありません"),
    ],
)
def test_impossible_dates(text, fragment):
    with pytest.raises(DateParseError, match=fragment):
        parse_date(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\u3000",
        "abc",
        "R5.4",
        "R5.4.1.2",
        "R5.4/1",
        "X5.4.1",
        "令和5年4月",
        "令5年4月1日",
        "令和①年4月1日",
        "2023-4-1x",
        "202341",
        "2023.04.01",
        "٢٠٢٣-٠٤-٠١",  # Arabic-Indic digits are not accepted
    ],
)
def test_garbage(text):
    with pytest.raises(DateParseError):
        parse_date(text)


def test_garbage_message_lists_examples():
    with pytest.raises(DateParseError) as exc:
        parse_date("abc", formats=["era_short", "era_kanji"])
    expected = "「abc」は日付として読めません（使える形式の例: R5.4.1、令和5年4月1日）"
    assert str(exc.value) == expected


def test_empty_message():
    with pytest.raises(DateParseError, match="日付が空です"):
        parse_date("")


def test_formats_restrict_styles():
    assert parse_date("R5.4.1", formats=["era_short"]) == D(2023, 4, 1)
    with pytest.raises(DateParseError):
        parse_date("2023-04-01", formats=["era_short", "era_kanji"])
    with pytest.raises(DateParseError):
        parse_date("令和5年4月1日", formats=("iso", "slash", "compact"))
    assert parse_date("20230401", formats=("compact",)) == D(2023, 4, 1)


@pytest.mark.parametrize("formats", [["unknown"], []])
def test_bad_formats_argument_is_a_programming_error(formats):
    with pytest.raises(ValueError) as exc:
        parse_date("R5.4.1", formats=formats)
    assert not isinstance(exc.value, DateParseError)


def test_date_parse_error_is_value_error():
    assert issubclass(DateParseError, ValueError)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2023, 4, 1), "令和5年4月1日"),
        (D(2019, 5, 1), "令和元年5月1日"),
        (D(2019, 4, 30), "平成31年4月30日"),
        (D(1989, 1, 7), "昭和64年1月7日"),
        (D(1989, 1, 8), "平成元年1月8日"),
        (D(1912, 7, 30), "大正元年7月30日"),
        (D(1868, 1, 25), "明治元年1月25日"),
    ],
)
def test_to_era(d, expected):
    assert to_era(d) == expected


def test_to_era_before_meiji():
    with pytest.raises(ValueError):
        to_era(D(1868, 1, 24))


def test_normalize_width_keeps_kana_and_kanji():
    assert normalize_width("Ｒ５．４．１\u3000ＡＢｃ！") == "R5.4.1 ABc!"
    # Unlike NFKC: circled digits, ㈱, kana (incl. half-width) and kanji stay as they are.
    kept = "①Ⅰ㈱髙﨑ｱｲｳ令和かなカナ"
    assert normalize_width(kept) == kept


@given(st.dates(min_value=D(1873, 1, 1), max_value=D(2100, 12, 31)))
def test_round_trip_era(d):
    assert parse_date(to_era(d)) == d
    assert parse_date(to_era(d), formats=["era_kanji"]) == d


@given(st.dates(min_value=D(1000, 1, 1), max_value=D(9999, 12, 31)))
def test_round_trip_iso(d):
    assert parse_date(d.isoformat()) == d
