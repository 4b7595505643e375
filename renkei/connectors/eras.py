"""Parse the date forms found in Japanese school CSVs, including 和暦 (era) dates.

Only the five modern eras are known on purpose: general-purpose libraries also match
medieval era names and guess too much. Policy for an era date that never existed
(平成31年5月1日, 令和元年4月30日): reject with an explicit message instead of silently
converting, because such a value usually means a typo or a stale form.

明治 1-5 (before 1873) used the lunisolar calendar; those dates are read as if they
were Gregorian (明治N年 = 1867+N), which is wrong by weeks. School data never needs them.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["FORMATS", "DateParseError", "normalize_width", "parse_date", "to_era"]


class DateParseError(ValueError):
    """A value that cannot be read as a date; ``str()`` is a Japanese user message."""


class _Era(NamedTuple):
    kanji: str
    letter: str
    start: datetime.date
    end: datetime.date | None  # last day, inclusive; None for the current era


_ERA_STARTS = [
    ("明治", "M", datetime.date(1868, 1, 25)),
    ("大正", "T", datetime.date(1912, 7, 30)),
    ("昭和", "S", datetime.date(1926, 12, 25)),
    ("平成", "H", datetime.date(1989, 1, 8)),
    ("令和", "R", datetime.date(2019, 5, 1)),
]
_ERAS = [
    _Era(kanji, letter, start, nxt[2] - datetime.timedelta(days=1) if nxt else None)
    for (kanji, letter, start), nxt in zip(_ERA_STARTS, [*_ERA_STARTS[1:], None], strict=True)
]
_ERA_BY_KEY = {e.kanji: e for e in _ERAS} | {e.letter: e for e in _ERAS}

# Patterns run on width-normalized text with re.ASCII so \d is only 0-9.
_YEAR = r"(?P<year>元|\d{1,2})"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "iso": re.compile(r"(?P<gyear>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})", re.ASCII),
    "slash": re.compile(r"(?P<gyear>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})", re.ASCII),
    "compact": re.compile(r"(?P<gyear>\d{4})(?P<month>\d{2})(?P<day>\d{2})", re.ASCII),
    # The same separator twice: R5.4.1, R05.04.01, R5/4/1, R5-4-1.
    "era_short": re.compile(
        rf"(?P<era>[MTSHRmtshr]){_YEAR}(?P<sep>[./-])(?P<month>\d{{1,2}})(?P=sep)"
        r"(?P<day>\d{1,2})",
        re.ASCII,
    ),
    "era_kanji": re.compile(
        rf"(?P<era>明治|大正|昭和|平成|令和) *{_YEAR} *年 *(?P<month>\d{{1,2}}) *月"
        r" *(?P<day>\d{1,2}) *日",
        re.ASCII,
    ),
}
FORMATS: tuple[str, ...] = tuple(_PATTERNS)
_EXAMPLES = {
    "iso": "2023-04-01",
    "slash": "2023/4/1",
    "compact": "20230401",
    "era_short": "R5.4.1",
    "era_kanji": "令和5年4月1日",
}

# Full-width ASCII block U+FF01..U+FF5E maps to U+0021..U+007E; U+3000 to a space.
_WIDTH_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalize_width(text: str) -> str:
    """Turn full-width ASCII digits, letters, punctuation and U+3000 into half-width.

    A fixed table instead of NFKC: NFKC would also rewrite ① to 1, ㈱ to (株) and
    half-width katakana, which turns garbage such as 令和①年 into a valid date.
    Kana and kanji are never changed.
    """
    return text.translate(_WIDTH_TABLE)


def _fmt_date(d: datetime.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _era_of(d: datetime.date) -> _Era:
    for era in reversed(_ERAS):
        if d >= era.start:
            return era
    raise ValueError(f"{_fmt_date(_ERAS[0].start)}より前の日付は和暦にできません: {d}")


def to_era(d: datetime.date) -> str:
    """Format ``d`` as a kanji era date, e.g. 令和5年4月1日 (元年 for year 1)."""
    era = _era_of(d)
    year = d.year - era.start.year + 1
    return f"{era.kanji}{'元' if year == 1 else year}年{d.month}月{d.day}日"


def _build_date(original: str, year: int, month: int, day: int) -> datetime.date:
    if not 1 <= month <= 12:
        raise DateParseError(f"「{original}」は日付として読めません（月が {month}）")
    if not datetime.MINYEAR <= year <= datetime.MAXYEAR:
        raise DateParseError(f"「{original}」は日付として読めません（年が範囲外）")
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise DateParseError(
            f"「{original}」は日付として読めません（{year}年{month}月に {day} 日はありません）"
        ) from None


def _check_era(original: str, era: _Era, d: datetime.date) -> None:
    if d < era.start:
        why = f"{era.kanji}は{_fmt_date(era.start)}から"
    elif era.end is not None and d > era.end:
        why = f"{era.kanji}は{_fmt_date(era.end)}まで"
    else:
        return
    if d >= _ERAS[0].start:
        why += f"。{to_era(d)}を意味する場合は{_era_of(d).kanji}で記入してください"
    raise DateParseError(f"「{original}」は存在しない和暦日付です（{why}）")


def parse_date(text: str, formats: Sequence[str] | None = None) -> datetime.date:
    """Parse one date value; ``formats`` limits the accepted styles (see FORMATS).

    Raises DateParseError (with a Japanese message) for anything that is not a real
    date in one of the accepted styles.
    """
    allowed = FORMATS if formats is None else tuple(formats)
    unknown = [f for f in allowed if f not in _PATTERNS]
    if unknown or not allowed:
        raise ValueError(f"unknown date formats {unknown!r}; expected some of {FORMATS!r}")

    original = text.strip()
    value = normalize_width(text).strip()
    if not value:
        raise DateParseError("日付が空です")

    for name in allowed:
        m = _PATTERNS[name].fullmatch(value)
        if m is None:
            continue
        month, day = int(m["month"]), int(m["day"])
        if "gyear" in m.groupdict():
            return _build_date(original, int(m["gyear"]), month, day)
        era = _ERA_BY_KEY[m["era"].upper()]
        era_year = 1 if m["year"] == "元" else int(m["year"])
        if era_year == 0:
            raise DateParseError(
                f"「{original}」は日付として読めません（{era.kanji}0年はありません）"
            )
        d = _build_date(original, era.start.year + era_year - 1, month, day)
        _check_era(original, era, d)
        return d

    examples = "、".join(_EXAMPLES[f] for f in allowed)
    raise DateParseError(f"「{original}」は日付として読めません（使える形式の例: {examples}）")
