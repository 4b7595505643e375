"""Synthetic but realistic school data for one municipality, in every built-in source format.

Vendors get a sandbox with data that looks like a real export (DESIGN.md), and benchmarks and
demos need volume, so this writes, for ONE municipality:

- ``oneroster/``: OneRoster 1.2 CSV, Japan profile (UTF-8): the roster, with each pupil's ids
  in the other systems in ``userIds`` (``{c4th:C…},{suzuki:S…}``).
- ``c4th/`` and ``suzuki/``: 名簿, 出欠, 保健室, テスト, 評定 in the layouts of the shipped
  mappings (``mappings/<vendor>/*.yaml``), CP932, with each vendor's date style.
- ``msgraph/``: Microsoft 365 "apps usage user detail" reports, one CSV per day.
- ``checkin/``: 心の天気 answered in a Google フォーム (CSV download).
- ``xapi/``: a 学習eポータル's learning log of the last weeks, xAPI statements as JSON Lines
  (教科, minutes, a drill's questions in extensions).
- ``drill/``: a digital drill's learning history of the same weeks (CSV, CP932).

The same pupils appear everywhere and every source tells the same story (the same absences in
C4th and スズキ校務), so importing several sources is idempotent.

Determinism: every random choice comes from ``random.Random`` seeded with the municipality, the
seed and the purpose; nothing reads the clock. Same inputs, byte-identical files.

Memory stays flat in the number of attendance rows: attendance is simulated day by day with a
per-pupil event schedule (geometric gaps between events), and each day's rows are written as one
block. Only per-pupil state (O(pupils)) is kept.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import random
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from renkei.connectors.eras import to_era
from renkei.demo.world import (
    DEMO_MUNICIPALITIES,
    DEMO_SMALL_MUNICIPALITIES,
    demo_school_codes,
)
from renkei.tenants.codes import validate_municipality_code

__all__ = [
    "DEFAULT_SCHOOL_YEAR",
    "HOLIDAYS",
    "SUPPORTED_SCHOOL_YEARS",
    "PastYearSummary",
    "SynthSummary",
    "generate",
    "school_codes",
    "school_days",
    "synthesize_c4th_attendance",
    "write_c4th_attendance",
]

# The school year containing 2025-06-01. A constant, never the clock: output must not change
# from one day to the next.
DEFAULT_SCHOOL_YEAR = 2025
SUPPORTED_SCHOOL_YEARS = (2023, 2024, 2025, 2026)

# 国民の祝日 and 振替休日 from April 2023 to March 2027 (内閣府). 2027-03-21 春分の日 is the
# projected date (officially announced in February 2026).
HOLIDAYS: dict[dt.date, str] = {
    dt.date.fromisoformat(day): name
    for day, name in (
        ("2023-04-29", "昭和の日"), ("2023-05-03", "憲法記念日"), ("2023-05-04", "みどりの日"),
        ("2023-05-05", "こどもの日"), ("2023-07-17", "海の日"), ("2023-08-11", "山の日"),
        ("2023-09-18", "敬老の日"), ("2023-09-23", "秋分の日"), ("2023-10-09", "スポーツの日"),
        ("2023-11-03", "文化の日"), ("2023-11-23", "勤労感謝の日"), ("2024-01-01", "元日"),
        ("2024-01-08", "成人の日"), ("2024-02-11", "建国記念の日"), ("2024-02-12", "休日"),
        ("2024-02-23", "天皇誕生日"), ("2024-03-20", "春分の日"),
        ("2024-04-29", "昭和の日"), ("2024-05-03", "憲法記念日"), ("2024-05-04", "みどりの日"),
        ("2024-05-05", "こどもの日"), ("2024-05-06", "休日"), ("2024-07-15", "海の日"),
        ("2024-08-11", "山の日"), ("2024-08-12", "休日"), ("2024-09-16", "敬老の日"),
        ("2024-09-22", "秋分の日"), ("2024-09-23", "休日"), ("2024-10-14", "スポーツの日"),
        ("2024-11-03", "文化の日"), ("2024-11-04", "休日"), ("2024-11-23", "勤労感謝の日"),
        ("2025-01-01", "元日"), ("2025-01-13", "成人の日"), ("2025-02-11", "建国記念の日"),
        ("2025-02-23", "天皇誕生日"), ("2025-02-24", "休日"), ("2025-03-20", "春分の日"),
        ("2025-04-29", "昭和の日"), ("2025-05-03", "憲法記念日"), ("2025-05-04", "みどりの日"),
        ("2025-05-05", "こどもの日"), ("2025-05-06", "休日"), ("2025-07-21", "海の日"),
        ("2025-08-11", "山の日"), ("2025-09-15", "敬老の日"), ("2025-09-23", "秋分の日"),
        ("2025-10-13", "スポーツの日"), ("2025-11-03", "文化の日"), ("2025-11-23", "勤労感謝の日"),
        ("2025-11-24", "休日"),
        ("2026-01-01", "元日"), ("2026-01-12", "成人の日"), ("2026-02-11", "建国記念の日"),
        ("2026-02-23", "天皇誕生日"), ("2026-03-20", "春分の日"), ("2026-04-29", "昭和の日"),
        ("2026-05-03", "憲法記念日"), ("2026-05-04", "みどりの日"), ("2026-05-05", "こどもの日"),
        ("2026-05-06", "休日"), ("2026-07-20", "海の日"), ("2026-08-11", "山の日"),
        ("2026-09-21", "敬老の日"), ("2026-09-22", "国民の休日"), ("2026-09-23", "秋分の日"),
        ("2026-10-12", "スポーツの日"), ("2026-11-03", "文化の日"), ("2026-11-23", "勤労感謝の日"),
        ("2027-01-01", "元日"), ("2027-01-11", "成人の日"), ("2027-02-11", "建国記念の日"),
        ("2027-02-23", "天皇誕生日"), ("2027-03-21", "春分の日"), ("2027-03-22", "休日"),
    )
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Public results and helpers


@dataclass
class PastYearSummary:
    """One earlier school year ``generate`` wrote, in ``past/<year>/c4th`` and ``…/suzuki``."""

    school_year: int
    students: int
    school_days: int
    attendance_rows: int
    long_term_absent: int
    test_rows: int
    evaluation_rows: int
    files: list[Path] = field(default_factory=list)


@dataclass
class SynthSummary:
    """What ``generate`` wrote; counts are per source (C4th and スズキ校務 hold the same rows)."""

    municipality_code: str
    school_year: int
    schools: int
    homerooms: int
    students: int
    teachers: int
    school_days: int
    attendance_rows: int
    long_term_absent: int  # pupils with >= 30 absence days (病・事・欠) in the generated days
    nurse_visits: int
    test_rows: int
    evaluation_rows: int
    m365_rows: int
    checkin_rows: int = 0
    xapi_rows: int = 0
    drill_rows: int = 0
    files: list[Path] = field(default_factory=list)
    past_years: list[PastYearSummary] = field(default_factory=list)  # oldest first


def school_codes(municipality_code: str, n: int) -> list[str]:
    """``n`` valid-looking 学校コード of a municipality's public schools, two 小学校 (B1) for
    each 中学校 (C1). The first three are ``demo_school_codes``, so the demo tenants' schools
    and the synthetic data line up."""
    pref, local = municipality_code[:2], municipality_code[2:5]
    codes = demo_school_codes(municipality_code)[:n]  # B1 #1, B1 #2, C1 #1
    numbers = {"B1": 2, "C1": 1}
    for i in range(len(codes), n):
        kind = "C1" if i % 3 == 2 else "B1"
        numbers[kind] += 1
        body = f"{kind}{pref}2{local}{numbers[kind]:04d}"
        codes.append(body + str(sum(int(c) for c in body[2:]) % 10))  # as demo_school_codes
    return codes


def school_days(school_year: int) -> list[dt.date]:
    """Every school day of a school year, in order.

    From the first weekday on or after April 7 to March 24; weekends, 国民の祝日, the summer
    break (July 21 to August 31), the winter break (December 26 to January 7) and the spring
    break are off. Holidays are hard-coded for SUPPORTED_SCHOOL_YEARS only.
    """
    if school_year not in SUPPORTED_SCHOOL_YEARS:
        years = "、".join(str(y) for y in SUPPORTED_SCHOOL_YEARS)
        raise ValueError(
            f"{school_year} 年度の合成データは作れません（祝日を登録してある年度: {years}）。"
            f" school_year {school_year} is not supported (holidays are hard-coded)."
        )
    y = school_year
    breaks = [
        (dt.date(y, 7, 21), dt.date(y, 8, 31)),
        (dt.date(y, 12, 26), dt.date(y + 1, 1, 7)),
    ]
    day, last = dt.date(y, 4, 7), dt.date(y + 1, 3, 24)
    days = []
    while day <= last:
        if day.weekday() < 5 and day not in HOLIDAYS and not any(a <= day <= b for a, b in breaks):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def write_c4th_attendance(path: Path, rows: Iterable[tuple[str, dt.date, str, str]]) -> int:
    """Write ``(児童生徒ID, date, 出欠 mark, 理由)`` rows as a C4th 出欠 CSV (CP932, dates like
    R7.4.8). For callers with their own rows; ``synthesize_c4th_attendance`` is the fast path."""
    count = 0
    dates: dict[dt.date, str] = {}
    with _Out(path, "cp932") as out:
        out.line(_C4TH_ATTENDANCE_HEADER)
        for student_id, day, mark, reason in rows:
            text = dates.get(day) or dates.setdefault(day, _era_short(day))
            out.line(f"{student_id},{text},{mark},{reason}")
            count += 1
    return count


def synthesize_c4th_attendance(
    path: Path,
    rows: int,
    *,
    seed: int = 0,
    school_year: int | None = None,
    municipality_code: str = "131130",
) -> int:
    """Write exactly ``rows`` plausible daily-attendance rows in the C4th format, fast.

    For benchmarks that need millions of rows: enough pupils are simulated (without names or
    a roster) to fill the school year, with the same absence model as ``generate``.
    """
    year = school_year or DEFAULT_SCHOOL_YEAR
    days = school_days(year)
    pupils = max(1, math.ceil(rows / len(days)))
    rng = _rng(municipality_code, seed, "bench-attendance")
    profiles = [
        _attendance_profile(
            rng,
            junior=(i % 3 == 2),
            grade=1 + i % 3 if i % 3 == 2 else 1 + i % 6,
            homeroom=i // CLASS_SIZE,
        )
        for i in range(pupils)
    ]
    ids = [_c4th_id(i) for i in range(pupils)]
    specials = _specials(rng, profiles, days, homerooms=pupils // CLASS_SIZE + 1)
    written = 0
    with _Out(path, "cp932") as c4th:
        c4th.line(_C4TH_ATTENDANCE_HEADER)
        for _index, day, exceptions, _nurse in _simulate(profiles, days, rng, specials):
            limit = min(pupils, rows - written)
            if limit <= 0:
                break
            c4th.raw(_day_block(ids, _era_short(day), "", _C4TH_MARKS, exceptions, limit))
            written += limit
    return written


# ---------------------------------------------------------------------------------------------
# generate()


def generate(
    municipality_code: str,
    out_dir: Path,
    *,
    students: int = 600,
    days: int = 200,
    seed: int = 0,
    school_year: int | None = None,
    past_years: int = 0,
) -> SynthSummary:
    """Write one municipality's synthetic data under ``out_dir`` (see the module docstring).

    ``students`` pupils in about 30-pupil homerooms, ``days`` school days from April (capped at
    the school year), ``school_year`` defaults to DEFAULT_SCHOOL_YEAR. ``past_years`` whole
    school years before it are written under ``past/<year>/`` (:func:`_write_past_year`).
    """
    code = validate_municipality_code(municipality_code)
    year = school_year or DEFAULT_SCHOOL_YEAR
    calendar = school_days(year)
    if students < 1 or days < 1:
        raise ValueError("students and days must be at least 1")
    if past_years < 0:
        raise ValueError(f"さかのぼる年数（past_years）は 0 以上で指定してください: {past_years}")
    for back in range(1, past_years + 1):
        school_days(year - back)  # refuses a year whose holidays are not known, before writing
    calendar = calendar[:days]
    out_dir = Path(out_dir)
    world = _build_world(code, year, students, seed)
    files: list[Path] = []
    files += _write_oneroster(world, out_dir / "oneroster")
    files += _write_rosters(world, out_dir)

    tests = _test_schedule(year, calendar)
    m365_days = list(range(max(0, len(calendar) - 10), len(calendar)))
    watch = {index for index, *_ in tests} | set(m365_days)
    attendance = _write_attendance(world, calendar, out_dir, watch)
    files += attendance.files
    test_rows, test_files = _write_tests(world, calendar, tests, attendance.absent_on, out_dir)
    files += test_files
    evaluation_rows, evaluation_files = _write_evaluations(world, calendar, out_dir)
    files += evaluation_files
    m365_rows, m365_files = _write_m365(
        world, calendar, m365_days, attendance.absent_on, out_dir / "msgraph", seed
    )
    files += m365_files
    checkin_rows, checkin_files = _write_checkins(
        world, calendar, m365_days, attendance.absent_on, out_dir / "checkin", seed
    )
    files += checkin_files
    learning_days = list(range(max(0, len(calendar) - LEARNING_DAYS), len(calendar)))
    xapi_rows, xapi_files = _write_xapi(
        world, calendar, learning_days, attendance.absent_on, out_dir / "xapi", seed
    )
    files += xapi_files
    drill_rows, drill_files = _write_drill(
        world, calendar, learning_days, attendance.absent_on, out_dir / "drill", seed
    )
    files += drill_files
    past = [
        _write_past_year(world, back, out_dir / "past" / str(year - back))
        for back in range(past_years, 0, -1)
    ]
    return SynthSummary(
        municipality_code=code,
        school_year=year,
        schools=len(world.schools),
        homerooms=sum(len(s.homerooms) for s in world.schools),
        students=len(world.pupils),
        teachers=len(world.teachers),
        school_days=len(calendar),
        attendance_rows=attendance.rows,
        long_term_absent=attendance.long_term_absent,
        nurse_visits=attendance.nurse_visits,
        test_rows=test_rows,
        evaluation_rows=evaluation_rows,
        m365_rows=m365_rows,
        checkin_rows=checkin_rows,
        xapi_rows=xapi_rows,
        drill_rows=drill_rows,
        files=files + [path for summary in past for path in summary.files],
        past_years=past,
    )


# ---------------------------------------------------------------------------------------------
# Names. Common surnames and given names with their reading (katakana). 髙橋 and 山﨑 are in
# CP932 but not in Shift_JIS: real exports have them (PITFALLS "Japanese CSV").

_SURNAMES = [
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
    ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
    ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
    ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
    ("山崎", "ヤマザキ"), ("森", "モリ"), ("池田", "イケダ"), ("橋本", "ハシモト"),
    ("阿部", "アベ"), ("石川", "イシカワ"), ("山下", "ヤマシタ"), ("中島", "ナカジマ"),
    ("石井", "イシイ"), ("小川", "オガワ"), ("前田", "マエダ"), ("岡田", "オカダ"),
    ("長谷川", "ハセガワ"), ("藤田", "フジタ"), ("後藤", "ゴトウ"), ("近藤", "コンドウ"),
    ("村上", "ムラカミ"), ("遠藤", "エンドウ"), ("青木", "アオキ"), ("坂本", "サカモト"),
    ("髙橋", "タカハシ"), ("山﨑", "ヤマザキ"),
]  # fmt: skip
_BOYS = [
    ("蓮", "レン"), ("湊", "ミナト"), ("陽翔", "ハルト"), ("蒼", "アオイ"), ("樹", "イツキ"),
    ("悠真", "ユウマ"), ("大翔", "ヒロト"), ("陽太", "ヨウタ"), ("律", "リツ"), ("朝陽", "アサヒ"),
    ("悠人", "ユウト"), ("颯真", "ソウマ"), ("大和", "ヤマト"), ("結翔", "ユイト"), ("陸", "リク"),
    ("翔太", "ショウタ"), ("健太", "ケンタ"), ("拓海", "タクミ"), ("優斗", "ユウト"), ("颯太", "ソウタ"),
    ("海斗", "カイト"), ("蒼空", "ソラ"), ("奏太", "カナタ"), ("翼", "ツバサ"), ("大輝", "ダイキ"),
    ("瑛太", "エイタ"), ("晴", "ハル"), ("旭", "アサヒ"),
]  # fmt: skip
_GIRLS = [
    ("陽葵", "ヒマリ"), ("凛", "リン"), ("詩", "ウタ"), ("結菜", "ユイナ"), ("葵", "アオイ"),
    ("芽依", "メイ"), ("紬", "ツムギ"), ("結衣", "ユイ"), ("さくら", "サクラ"), ("莉子", "リコ"),
    ("美咲", "ミサキ"), ("心春", "コハル"), ("杏", "アン"), ("陽菜", "ヒナ"), ("澪", "ミオ"),
    ("咲良", "サクラ"), ("花", "ハナ"), ("結愛", "ユア"), ("柚葉", "ユズハ"), ("彩花", "アヤカ"),
    ("心結", "ミユ"), ("楓", "カエデ"), ("愛莉", "アイリ"), ("琴音", "コトネ"), ("日向", "ヒナタ"),
    ("乃愛", "ノア"), ("菜々子", "ナナコ"), ("真央", "マオ"), ("千尋", "チヒロ"),
]  # fmt: skip
_ADULTS = [
    ("健一", "ケンイチ"), ("直子", "ナオコ"), ("裕子", "ユウコ"), ("誠", "マコト"), ("大輔", "ダイスケ"),
    ("恵", "メグミ"), ("智子", "トモコ"), ("浩二", "コウジ"), ("美穂", "ミホ"), ("隆", "タカシ"),
    ("聡", "サトシ"), ("由美", "ユミ"),
]  # fmt: skip
_HIRAGANA = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)}
_KANJI_DIGITS = "〇一二三四五六七八九"


def _hiragana(katakana: str) -> str:
    return katakana.translate(_HIRAGANA)


def _kanji_number(n: int) -> str:
    tens, ones = divmod(n, 10)
    text = "" if tens == 0 else "十" if tens == 1 else _KANJI_DIGITS[tens] + "十"
    return text + (_KANJI_DIGITS[ones] if ones else "") if n else "〇"


# ---------------------------------------------------------------------------------------------
# The world: schools, homerooms, pupils, teachers.

CLASS_SIZE = 30
ELEMENTARY_SHARE = 0.65  # 小学校 vs 中学校 pupils (学校基本調査: about 6.0 M vs 3.2 M)


@dataclass(slots=True)
class _Teacher:
    sourced_id: str
    upn: str
    family: tuple[str, str]
    given: tuple[str, str]
    school: _School


@dataclass(slots=True)
class _Homeroom:
    school: _School
    grade: int
    number: int
    sourced_id: str
    teacher: _Teacher | None = None
    index: int = 0

    @property
    def title(self) -> str:
        return f"{self.grade}年{self.number}組"


@dataclass(slots=True)
class _School:
    code: str
    name: str
    sourced_id: str
    platform: str  # the pupils' device platform in the M365 report: Windows, Mobile or Web
    homerooms: list[_Homeroom] = field(default_factory=list)
    courses: dict[int, str] = field(default_factory=dict)  # grade -> course sourcedId

    @property
    def junior(self) -> bool:
        return self.code.startswith("C1")


@dataclass(slots=True)
class _Pupil:
    index: int
    sourced_id: str
    c4th_id: str
    suzuki_id: str
    upn: str
    family: tuple[str, str]  # (kanji, katakana)
    given: tuple[str, str]
    sex: str
    birth: dt.date
    homeroom: _Homeroom
    number: int = 0  # 出席番号
    ability: float = 0.0
    profile: _Profile | None = None
    graduation: dt.date | None = None  # 卒業日, on the roster of the year the pupil leaves

    @property
    def level(self) -> int:
        """Years at school: 1-6 in 小学校, 7-9 in 中学校."""
        return self.homeroom.grade + (6 if self.homeroom.school.junior else 0)

    @property
    def grade_code(self) -> str:
        # OneRoster Japan profile grade codes: P1-P6 小学校, J1-J3 中学校 (E1-E3 are 幼稚園).
        return ("J" if self.homeroom.school.junior else "P") + str(self.homeroom.grade)


@dataclass
class _World:
    code: str
    name: str
    year: int
    seed: int
    district_id: str
    session_id: str
    schools: list[_School]
    pupils: list[_Pupil]
    teachers: list[_Teacher]
    past: bool = False  # an earlier school year (_past_world)

    def rng(self, purpose: str) -> random.Random:
        """Random numbers for ``purpose``; an earlier year draws apart from the current one."""
        return _rng(self.code, self.seed, f"{purpose}/{self.year}" if self.past else purpose)


def _rng(code: str, seed: int, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and PYTHONHASHSEED.
    return random.Random(f"renkei-synth/{code}/{seed}/{purpose}")  # noqa: S311 - synthetic data


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _c4th_id(index: int) -> str:
    # Numbering unrelated to the other systems (7 and 13 are coprime to 10**7: no collisions).
    return f"C{(1_000_003 + index * 7) % 10_000_000:07d}"


def _suzuki_id(index: int) -> str:
    return f"S{(2_000_029 + index * 13) % 10_000_000:07d}"


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _municipality_name(code: str) -> str:
    names = {**dict(DEMO_MUNICIPALITIES), **{c: n for c, n, _ in DEMO_SMALL_MUNICIPALITIES}}
    return names.get(code, f"自治体{code}")


def _build_world(code: str, year: int, students: int, seed: int) -> _World:
    rng = _rng(code, seed, "roster")
    name = _municipality_name(code)
    n_schools = 3 * max(1, math.ceil(students / 1100))
    codes = school_codes(code, n_schools)
    elementary = [c for c in codes if c.startswith("B1")]
    junior = [c for c in codes if c.startswith("C1")]
    n_elementary = round(students * ELEMENTARY_SHARE) if students > 2 else students
    counts = dict(zip(elementary, _split(n_elementary, len(elementary)), strict=True))
    counts |= dict(zip(junior, _split(students - n_elementary, len(junior)), strict=True))
    platforms = ("Windows", "Mobile", "Web")  # GIGA devices: Windows PCs, iPads, Chromebooks

    world = _World(code, name, year, seed, _uuid(rng), _uuid(rng), [], [], [])
    numbers = {"B1": 0, "C1": 0}
    for school_code in codes:
        kind = school_code[:2]
        numbers[kind] += 1
        label = f"第{_kanji_number(numbers[kind])}{'小学校' if kind == 'B1' else '中学校'}"
        school = _School(school_code, f"{name}立{label}", _uuid(rng), rng.choice(platforms))
        world.schools.append(school)
        grades = 3 if kind == "C1" else 6
        for grade, cohort in enumerate(_split(counts[school_code], grades), start=1):
            if cohort == 0:
                continue
            school.courses[grade] = _uuid(rng)
            n_classes = min(4, max(1, round(cohort / CLASS_SIZE)))
            for number, size in enumerate(_split(cohort, n_classes), start=1):
                homeroom = _Homeroom(school, grade, number, _uuid(rng))
                homeroom.index = sum(len(s.homerooms) for s in world.schools)
                school.homerooms.append(homeroom)
                homeroom.teacher = _Teacher(
                    _uuid(rng),
                    f"t{len(world.teachers) + 1:07d}@m{code}.example.ed.jp",
                    rng.choice(_SURNAMES),
                    rng.choice(_ADULTS),
                    school,
                )
                world.teachers.append(homeroom.teacher)
                members = [_new_pupil(rng, world, homeroom) for _ in range(size)]
                # 出席番号: 男女混合名簿, in reading order.
                members.sort(key=lambda p: (p.family[1], p.given[1], p.sourced_id))
                for number_in_class, pupil in enumerate(members, start=1):
                    pupil.number = number_in_class
                    pupil.index = len(world.pupils)
                    pupil.c4th_id, pupil.suzuki_id = _c4th_id(pupil.index), _suzuki_id(pupil.index)
                    pupil.upn = f"s{pupil.index + 1:07d}@m{code}.example.ed.jp"
                    world.pupils.append(pupil)
    profile_rng = _rng(code, seed, "attendance-profile")
    for pupil in world.pupils:
        pupil.profile = _attendance_profile(
            profile_rng,
            junior=pupil.homeroom.school.junior,
            grade=pupil.homeroom.grade,
            homeroom=pupil.homeroom.index,
        )
    return world


def _new_pupil(rng: random.Random, world: _World, homeroom: _Homeroom) -> _Pupil:
    draw = rng.random()
    sex = "male" if draw < 0.496 else "female" if draw < 0.996 else "unspecified"
    given = rng.choice(_BOYS if sex == "male" else _GIRLS if sex == "female" else _BOYS + _GIRLS)
    # Born between April 2 and April 1 of the cohort's years (早生まれ belong to the earlier grade).
    age_grade = homeroom.grade + (6 if homeroom.school.junior else 0)
    first = dt.date(world.year - 6 - age_grade, 4, 2)
    span = (dt.date(world.year - 5 - age_grade, 4, 1) - first).days
    birth = first + dt.timedelta(days=rng.randrange(span + 1))
    return _Pupil(
        0,
        _uuid(rng),
        "",
        "",
        "",
        rng.choice(_SURNAMES),
        given,
        sex,
        birth,
        homeroom,
        ability=rng.gauss(0.0, 1.0),
    )


# ---------------------------------------------------------------------------------------------
# Date styles


_ERA_LETTERS = {"明治": "M", "大正": "T", "昭和": "S", "平成": "H", "令和": "R"}
_ERA_RE = re.compile(r"(明治|大正|昭和|平成|令和)(元|\d+)年(\d+)月(\d+)日")


def _era_short(day: dt.date) -> str:
    """R7.4.8 (C4th's short era form)."""
    era, year, month, dom = _ERA_RE.fullmatch(to_era(day)).groups()  # type: ignore[union-attr]
    return f"{_ERA_LETTERS[era]}{1 if year == '元' else year}.{month}.{dom}"


def _slash(day: dt.date) -> str:
    return f"{day.year}/{day.month:02d}/{day.day:02d}"


# ---------------------------------------------------------------------------------------------
# Output


class _Out:
    """A buffered text writer that encodes whole blocks at once (fast, strict CP932)."""

    def __init__(self, path: Path, encoding: str, bom: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._encoding = encoding
        self._file: IO[bytes] = open(path, "wb")  # closed in __exit__
        if bom:
            self._file.write(b"\xef\xbb\xbf")
        self._buffer: list[str] = []
        self._size = 0

    def line(self, text: str) -> None:
        self._buffer.append(text + "\r\n")
        self._size += 1
        if self._size >= 8192:
            self.flush()

    def raw(self, block: str) -> None:
        self.flush()
        self._file.write(block.encode(self._encoding))

    def flush(self) -> None:
        if self._buffer:
            self._file.write("".join(self._buffer).encode(self._encoding))
            self._buffer.clear()
            self._size = 0

    def __enter__(self) -> _Out:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self._file.close()


def _write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], encoding: str = "utf-8"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------------
# OneRoster 1.2 CSV, Japan profile


ONEROSTER_HEADERS: dict[str, list[str]] = {
    "orgs": [
        "sourcedId",
        "status",
        "dateLastModified",
        "name",
        "type",
        "identifier",
        "parentSourcedId",
    ],
    "academicSessions": [
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ],
    "courses": [
        "sourcedId",
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ],
    "classes": [
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
        "metadata.jp.specialNeeds",
    ],
    "users": [
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
        "metadata.jp.kanaGivenName",
        "metadata.jp.kanaFamilyName",
        "metadata.jp.kanaMiddleName",
        "metadata.jp.homeClass",
    ],
    "roles": [
        "sourcedId",
        "status",
        "dateLastModified",
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ],
    "enrollments": [
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
        "metadata.jp.ShussekiNo",
        "metadata.jp.PublicFlg",
    ],
    "demographics": [
        "sourcedId",
        "status",
        "dateLastModified",
        "birthDate",
        "sex",
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ],
}
# Every file.* property of a 1.2 manifest, in the specification's order.
_MANIFEST_FILES = [
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItemLearningObjectiveIds",
    "lineItems",
    "lineItemScoreScales",
    "orgs",
    "resources",
    "resultLearningObjectiveIds",
    "results",
    "resultScoreScales",
    "roles",
    "scoreScales",
    "userProfiles",
    "userResources",
    "users",
]


def _write_oneroster(world: _World, folder: Path) -> list[Path]:
    """Bulk files: status and dateLastModified stay empty, as the binding says for bulk."""
    rng = _rng(world.code, world.seed, "oneroster-ids")
    year = world.year
    begin, end = f"{year}-04-01", f"{year + 1}-03-31"
    h = ONEROSTER_HEADERS
    files = []

    def row(file: str, /, **values: object) -> list[object]:
        return [values.get(column.replace(".", "_"), "") for column in h[file]]

    manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.2")]
    manifest += [(f"file.{name}", "bulk" if name in h else "absent") for name in _MANIFEST_FILES]
    manifest += [("source.systemName", "Renkei 合成データ"), ("source.systemCode", "renkei-synth")]
    files.append(_write_csv(folder / "manifest.csv", ["propertyName", "value"], manifest))

    orgs = [
        row(
            "orgs",
            sourcedId=world.district_id,
            name=f"{world.name}教育委員会",
            type="district",
            identifier=world.code,
            parentSourcedId="NULL",
        )
    ]
    orgs += [
        row(
            "orgs",
            sourcedId=s.sourced_id,
            name=s.name,
            type="school",
            identifier=s.code,
            parentSourcedId=world.district_id,
        )
        for s in world.schools
    ]
    files.append(_write_csv(folder / "orgs.csv", h["orgs"], orgs))

    files.append(
        _write_csv(
            folder / "academicSessions.csv",
            h["academicSessions"],
            [
                row(
                    "academicSessions",
                    sourcedId=world.session_id,
                    title=f"{year}年度",
                    type="schoolYear",
                    startDate=begin,
                    endDate=end,
                    schoolYear=year,
                )
            ],
        )
    )

    def grade_code(school: _School, grade: int) -> str:
        return ("J" if school.junior else "P") + str(grade)

    files.append(
        _write_csv(
            folder / "courses.csv",
            h["courses"],
            [
                row(
                    "courses",
                    sourcedId=course,
                    schoolYearSourcedId=world.session_id,
                    title=f"{grade}年 学級活動",
                    grades=grade_code(s, grade),
                    orgSourcedId=s.sourced_id,
                )
                for s in world.schools
                for grade, course in s.courses.items()
            ],
        )
    )

    homerooms = [hr for s in world.schools for hr in s.homerooms]
    files.append(
        _write_csv(
            folder / "classes.csv",
            h["classes"],
            [
                row(
                    "classes",
                    sourcedId=hr.sourced_id,
                    title=hr.title,
                    grades=grade_code(hr.school, hr.grade),
                    courseSourcedId=hr.school.courses[hr.grade],
                    classType="homeroom",
                    schoolSourcedId=hr.school.sourced_id,
                    termSourcedIds=world.session_id,
                    metadata_jp_specialNeeds="false",
                )
                for hr in homerooms
            ],
        )
    )

    users, roles, enrollments, demographics = [], [], [], []
    for t in world.teachers:
        users.append(
            row(
                "users",
                sourcedId=t.sourced_id,
                enabledUser="true",
                username=t.upn,
                givenName=t.given[0],
                familyName=t.family[0],
                email=t.upn,
                primaryOrgSourcedId=t.school.sourced_id,
                metadata_jp_kanaGivenName=t.given[1],
                metadata_jp_kanaFamilyName=t.family[1],
            )
        )
        roles.append(
            row(
                "roles",
                sourcedId=_uuid(rng),
                userSourcedId=t.sourced_id,
                roleType="primary",
                role="teacher",
                beginDate=begin,
                endDate=end,
                orgSourcedId=t.school.sourced_id,
            )
        )
    for p in world.pupils:
        hr = p.homeroom
        users.append(
            row(
                "users",
                sourcedId=p.sourced_id,
                enabledUser="true",
                username=p.upn,
                userIds=f"{{c4th:{p.c4th_id}}},{{suzuki:{p.suzuki_id}}}",
                givenName=p.given[0],
                familyName=p.family[0],
                email=p.upn,
                grades=p.grade_code,
                primaryOrgSourcedId=hr.school.sourced_id,
                metadata_jp_kanaGivenName=p.given[1],
                metadata_jp_kanaFamilyName=p.family[1],
                metadata_jp_homeClass=hr.sourced_id,
            )
        )
        roles.append(
            row(
                "roles",
                sourcedId=_uuid(rng),
                userSourcedId=p.sourced_id,
                roleType="primary",
                role="student",
                beginDate=begin,
                endDate=end,
                orgSourcedId=hr.school.sourced_id,
            )
        )
        demographics.append(
            row("demographics", sourcedId=p.sourced_id, birthDate=p.birth.isoformat(), sex=p.sex)
        )
    for hr in homerooms:
        if hr.teacher:
            enrollments.append(
                row(
                    "enrollments",
                    sourcedId=_uuid(rng),
                    classSourcedId=hr.sourced_id,
                    schoolSourcedId=hr.school.sourced_id,
                    userSourcedId=hr.teacher.sourced_id,
                    role="teacher",
                    primary="true",
                    beginDate=begin,
                    endDate=end,
                )
            )
    for p in world.pupils:
        hr = p.homeroom
        enrollments.append(
            row(
                "enrollments",
                sourcedId=_uuid(rng),
                classSourcedId=hr.sourced_id,
                schoolSourcedId=hr.school.sourced_id,
                userSourcedId=p.sourced_id,
                role="student",
                primary="false",
                beginDate=begin,
                endDate=end,
                metadata_jp_ShussekiNo=p.number,
            )
        )
    files.append(_write_csv(folder / "users.csv", h["users"], users))
    files.append(_write_csv(folder / "roles.csv", h["roles"], roles))
    files.append(_write_csv(folder / "enrollments.csv", h["enrollments"], enrollments))
    files.append(_write_csv(folder / "demographics.csv", h["demographics"], demographics))
    return files


# ---------------------------------------------------------------------------------------------
# Vendor rosters (C4th, スズキ校務)

C4TH_HEADERS = {
    "roster": [
        "年度",
        "学校コード",
        "学校名",
        "児童生徒ID",
        "学年",
        "組",
        "出席番号",
        "氏名（姓）",
        "氏名（名）",
        "ふりがな（姓）",
        "ふりがな（名）",
        "性別",
        "生年月日",
        "卒業日",
        "転出日",
    ],
    "attendance": ["児童生徒ID", "日付", "出欠", "理由"],
    "nurse_visits": ["児童生徒ID", "来室日", "来室時刻", "来室理由", "処置内容"],
    "tests": ["年度", "児童生徒ID", "テスト種別", "テスト名", "教科", "実施日", "得点", "満点"],
    "evaluations": ["年度", "児童生徒ID", "学期", "教科", "評定", "観点1", "観点2", "観点3"],
}
SUZUKI_HEADERS = {
    "roster": [
        "年度",
        "学校番号",
        "学校名称",
        "学年",
        "学級",
        "番号",
        "個人番号",
        "姓",
        "名",
        "姓カナ",
        "名カナ",
        "性別",
        "生年月日",
        "卒業年月日",
        "転出年月日",
    ],
    "attendance": ["個人番号", "年月日", "出欠区分", "事由"],
    "nurse_visits": ["個人番号", "利用日", "利用時刻", "区分", "対応"],
    "tests": ["年度", "個人番号", "種別", "考査名", "教科名", "実施日", "点数", "配点"],
    "evaluations": ["年度", "個人番号", "学期", "教科名", "評定", "観点A", "観点B", "観点C"],
}
_C4TH_ATTENDANCE_HEADER = ",".join(C4TH_HEADERS["attendance"])
_C4TH_SEX = {"male": "男", "female": "女", "unspecified": "", "other": "その他"}
_SUZUKI_SEX = {"male": "1", "female": "2", "unspecified": "9", "other": "9"}


def _write_rosters(world: _World, out_dir: Path) -> list[Path]:
    c4th_path, suzuki_path = out_dir / "c4th" / "roster.csv", out_dir / "suzuki" / "roster.csv"
    with _Out(c4th_path, "cp932") as c4th, _Out(suzuki_path, "cp932") as suzuki:
        c4th.line(",".join(C4TH_HEADERS["roster"]))
        suzuki.line(",".join(SUZUKI_HEADERS["roster"]))
        for p in world.pupils:
            hr, school = p.homeroom, p.homeroom.school
            c4th.line(
                ",".join(
                    (
                        str(world.year),
                        school.code,
                        school.name,
                        p.c4th_id,
                        str(hr.grade),
                        str(hr.number),
                        str(p.number),
                        p.family[0],
                        p.given[0],
                        _hiragana(p.family[1]),
                        _hiragana(p.given[1]),
                        _C4TH_SEX[p.sex],
                        _slash(p.birth),
                        _slash(p.graduation) if p.graduation else "",
                        "",  # 転出日: nobody of the synthetic roster moves away
                    )
                )
            )
            suzuki.line(
                ",".join(
                    (
                        str(world.year),
                        school.code,
                        school.name,
                        str(hr.grade),
                        str(hr.number),
                        str(p.number),
                        p.suzuki_id,
                        p.family[0],
                        p.given[0],
                        p.family[1],
                        p.given[1],
                        _SUZUKI_SEX[p.sex],
                        to_era(p.birth),
                        to_era(p.graduation) if p.graduation else "",
                        "",  # 転出年月日
                    )
                )
            )
    return [c4th_path, suzuki_path]


# ---------------------------------------------------------------------------------------------
# Attendance model
#
# Each pupil has per-day event rates: illness (runs of 1-4 days, more in winter), family
# reasons (事), long-term absence runs (欠, only for the few pupils who are 長期欠席 this year;
# more of them in junior high, as in 文部科学省's 不登校 surveys), lateness, early leave and
# nurse visits. Events are scheduled with geometric gaps, so a day costs O(events), not
# O(pupils); 出席停止 (influenza clustered by homeroom in winter, COVID-19) and 忌引 are drawn
# once per pupil up front.

PRESENT, ILL, FAMILY, OTHER, LATE, EARLY, SUSPENDED, MOURNING = range(8)
ABSENCE_KINDS = frozenset({ILL, FAMILY, OTHER})
_C4TH_MARKS = ("", "病", "事", "欠", "遅", "早", "停", "忌")
_SUZUKI_MARKS = (
    "出席",
    "欠席（病気）",
    "欠席（事故）",
    "欠席（その他）",
    "遅刻",
    "早退",
    "出席停止",
    "忌引",
)
_ILL_REASONS = ("発熱", "風邪", "腹痛", "頭痛", "嘔吐", "通院")
_FAMILY_REASONS = ("家庭の事情", "家族旅行", "法事")
_LATE_REASONS = ("寝坊", "通院", "交通機関の遅れ", "")
_EARLY_REASONS = ("通院", "体調不良", "家庭の事情")
_SEASON = {
    4: 0.7,
    5: 0.8,
    6: 0.8,
    7: 0.7,
    8: 0.7,
    9: 0.8,
    10: 0.8,
    11: 0.9,
    12: 1.0,
    1: 1.0,
    2: 1.0,
    3: 0.7,
}


@dataclass(slots=True)
class _Profile:
    lam: float  # total events per school day
    log1m: float  # log(1 - lam), for geometric gaps
    c_ill: float  # cumulative thresholds of the event kinds within lam
    c_family: float
    c_other: float
    c_late: float
    c_early: float  # the rest up to lam is a nurse visit
    other_kind: int  # 事 or 欠 for most long-term absentees, 病 for long illness
    other_mean: float  # mean run length of long-term absence
    homeroom: int
    long_term: bool


def _attendance_profile(rng: random.Random, *, junior: bool, grade: int, homeroom: int) -> _Profile:
    ill = (0.005 if junior else 0.0065) * math.exp(rng.gauss(0.0, 0.6))
    family = 0.0015 * rng.uniform(0.2, 2.0)
    late = min(0.08, 0.004 * math.exp(rng.gauss(0.0, 1.0)))
    early = min(0.05, 0.002 * math.exp(rng.gauss(0.0, 0.8)))
    nurse = min(0.12, 0.015 * rng.expovariate(1.0))
    long_share = (0.045, 0.06, 0.07)[grade - 1] if junior else 0.0035 * grade
    other, other_kind, other_mean, long_term = 0.0, OTHER, 5.0, rng.random() < long_share
    if long_term:
        fraction = rng.uniform(0.2, 0.75)  # share of school days absent
        other = fraction / (other_mean * (1.0 - fraction))
        # Many schools record 不登校 as 事故欠 (absent for a reason other than illness),
        # others as 欠 (その他); some long absences are long illnesses. One draw either way.
        kind = rng.random()
        other_kind = ILL if kind < 0.2 else FAMILY if kind < 0.5 else OTHER
        late *= 3
        nurse *= 2
    lam = min(0.9, ill + family + other + late + early + nurse)
    c_ill = ill
    c_family = c_ill + family
    c_other = c_family + other
    c_late = c_other + late
    c_early = c_late + early
    return _Profile(
        lam,
        math.log(1.0 - lam),
        c_ill,
        c_family,
        c_other,
        c_late,
        c_early,
        other_kind,
        other_mean,
        homeroom,
        long_term,
    )


_Special = tuple[int, int, int, str]  # pupil, kind, run length, reason


def _specials(
    rng: random.Random, profiles: list[_Profile], days: list[dt.date], homerooms: int
) -> list[list[_Special]]:
    """出席停止 and 忌引, drawn once per pupil: influenza in January-February, clustered by
    homeroom (学級閉鎖 is a homeroom thing), COVID-19 any time, and bereavement."""
    by_day: list[list[_Special]] = [[] for _ in days]
    flu_window = [
        i for i, d in enumerate(days) if d.month in (1, 2) and not (d.month == 1 and d.day < 8)
    ]
    outbreak = [rng.uniform(0.2, 2.5) for _ in range(homerooms)]
    mourning = (
        (3, "忌引（祖父母）", 0.62),
        (1, "忌引（おじ・おば）", 0.28),
        (3, "忌引（兄弟姉妹）", 0.06),
        (7, "忌引（父母）", 0.04),
    )
    for pupil, profile in enumerate(profiles):
        if flu_window and rng.random() < 0.09 * outbreak[profile.homeroom % homerooms]:
            by_day[rng.choice(flu_window)].append((pupil, SUSPENDED, 5, "インフルエンザ"))
        if rng.random() < 0.015:
            by_day[rng.randrange(len(days))].append(
                (pupil, SUSPENDED, 5, "新型コロナウイルス感染症")
            )
        if rng.random() < 0.012:
            draw, acc = rng.random(), 0.0
            for length, reason, weight in mourning:
                acc += weight
                if draw < acc:
                    by_day[rng.randrange(len(days))].append((pupil, MOURNING, length, reason))
                    break
    return by_day


_Nurse = tuple[
    int, str, int, str
]  # pupil, HH:MM, reason (0 injury, 1 illness, 2 mental, 3 other), note
_NURSE_NOTES = (
    ("擦り傷の消毒", "打撲を冷却", "絆創膏", "突き指の固定"),
    ("検温・休養", "腹痛・ベッドで休養", "頭痛・様子観察", "気分不良・休養"),
    ("話を聞く", "担任に連絡", "面談"),
    ("身体計測", "爪切り", "保健指導"),
)


def _simulate(
    profiles: list[_Profile],
    days: list[dt.date],
    rng: random.Random,
    specials: list[list[_Special]],
) -> Iterator[tuple[int, dt.date, dict[int, tuple[int, str]], list[_Nurse]]]:
    """Yield, per school day, the pupils who were not simply present (pupil -> (kind, reason))
    and the nurse visits. Everyone else was present."""
    rand, log = rng.random, math.log
    n_days = len(days)
    buckets: list[list[int]] = [[] for _ in days]
    for pupil, profile in enumerate(profiles):
        if profile.lam > 0:
            first = int(log(1.0 - rand()) / profile.log1m)
            if first < n_days:
                buckets[first].append(pupil)
    runs: dict[int, tuple[int, int, str]] = {}  # pupil -> (days left, kind, reason)
    for index, day in enumerate(days):
        season = _SEASON[day.month]
        exceptions: dict[int, tuple[int, str]] = {}
        nurse: list[_Nurse] = []
        for pupil, (left, kind, reason) in list(runs.items()):
            exceptions[pupil] = (kind, reason)
            if left <= 1:
                del runs[pupil]
            else:
                runs[pupil] = (left - 1, kind, reason)
        for pupil, kind, length, reason in specials[index]:
            if pupil not in exceptions:
                exceptions[pupil] = (kind, reason)
                if length > 1:
                    runs[pupil] = (length - 1, kind, reason)
        due, buckets[index] = buckets[index], []
        for pupil in due:
            profile = profiles[pupil]
            following = index + 1 + int(log(1.0 - rand()) / profile.log1m)
            if following < n_days:
                buckets[following].append(pupil)
            if pupil in exceptions:
                continue
            u = rand() * profile.lam
            if u < profile.c_ill:
                if rand() < season:
                    r = rand()
                    length = 1 if r < 0.35 else 2 if r < 0.65 else 3 if r < 0.85 else 4
                    reason = _ILL_REASONS[int(rand() * len(_ILL_REASONS))]
                    exceptions[pupil] = (ILL, reason)
                    if length > 1:
                        runs[pupil] = (length - 1, ILL, reason)
            elif u < profile.c_family:
                exceptions[pupil] = (FAMILY, _FAMILY_REASONS[int(rand() * len(_FAMILY_REASONS))])
            elif u < profile.c_other:
                length = min(30, 1 + int(log(1.0 - rand()) / log(1.0 - 1.0 / profile.other_mean)))
                reason = "長期療養" if profile.other_kind == ILL else ""
                exceptions[pupil] = (profile.other_kind, reason)
                if length > 1:
                    runs[pupil] = (length - 1, profile.other_kind, reason)
            elif u < profile.c_late:
                exceptions[pupil] = (LATE, _LATE_REASONS[int(rand() * len(_LATE_REASONS))])
            elif u < profile.c_early:
                exceptions[pupil] = (EARLY, _EARLY_REASONS[int(rand() * len(_EARLY_REASONS))])
            else:
                r = rand()
                mental = 0.35 if profile.long_term else 0.1
                reason_kind = 0 if r < 0.4 else 1 if r < 0.8 else 2 if r < 0.8 + mental else 3
                notes = _NURSE_NOTES[reason_kind]
                minute = 8 * 60 + 25 + int(rand() * 430)  # 8:25-15:35
                nurse.append(
                    (
                        pupil,
                        f"{minute // 60}:{minute % 60:02d}",
                        reason_kind,
                        notes[int(rand() * len(notes))],
                    )
                )
                if reason_kind == 1 and rand() < 0.3:
                    exceptions[pupil] = (EARLY, "体調不良（保健室から早退）")
        yield index, day, exceptions, nurse


def _day_block(
    ids: list[str],
    date_text: str,
    present_mark: str,
    marks: Sequence[str],
    exceptions: dict[int, tuple[int, str]],
    limit: int,
) -> str:
    """One day's rows for pupils ``0..limit-1``: present rows are joined in C (``sep.join``),
    only the exceptions are formatted one by one."""
    sep = f",{date_text},{present_mark},\r\n"
    parts: list[str] = []
    start = 0
    for pupil in sorted(exceptions):
        if pupil >= limit:
            break
        if pupil > start:
            parts += (sep.join(ids[start:pupil]), sep)
        kind, reason = exceptions[pupil]
        parts.append(f"{ids[pupil]},{date_text},{marks[kind]},{reason}\r\n")
        start = pupil + 1
    if start < limit:
        parts += (sep.join(ids[start:limit]), sep)
    return "".join(parts)


@dataclass
class _AttendanceResult:
    rows: int
    long_term_absent: int
    nurse_visits: int
    absent_on: dict[int, set[int]]  # watched day index -> pupils absent (any non-attendance)
    files: list[Path]


def _write_attendance(
    world: _World, days: list[dt.date], out_dir: Path, watch: set[int]
) -> _AttendanceResult:
    rng = world.rng("attendance")
    profiles = [p.profile for p in world.pupils if p.profile is not None]
    homerooms = max(1, sum(len(s.homerooms) for s in world.schools))
    specials = _specials(rng, profiles, days, homerooms)
    c4th_ids = [p.c4th_id for p in world.pupils]
    suzuki_ids = [p.suzuki_id for p in world.pupils]
    n = len(world.pupils)
    absences = [0] * n
    absent_on: dict[int, set[int]] = {}
    rows = visits = 0
    paths = [
        out_dir / "c4th" / "attendance.csv",
        out_dir / "suzuki" / "attendance.csv",
        out_dir / "c4th" / "nurse_visits.csv",
        out_dir / "suzuki" / "nurse_visits.csv",
    ]
    c4th_reasons = ("けが", "体調不良", "相談", "その他")
    suzuki_reasons = ("外科", "内科", "相談", "その他")
    with (
        _Out(paths[0], "cp932") as c4th,
        _Out(paths[1], "cp932") as suzuki,
        _Out(paths[2], "cp932") as c4th_nurse,
        _Out(paths[3], "cp932") as suzuki_nurse,
    ):
        c4th.line(_C4TH_ATTENDANCE_HEADER)
        suzuki.line(",".join(SUZUKI_HEADERS["attendance"]))
        c4th_nurse.line(",".join(C4TH_HEADERS["nurse_visits"]))
        suzuki_nurse.line(",".join(SUZUKI_HEADERS["nurse_visits"]))
        for index, day, exceptions, nurse in _simulate(profiles, days, rng, specials):
            short, kanji, slash = _era_short(day), to_era(day), _slash(day)
            c4th.raw(_day_block(c4th_ids, short, "", _C4TH_MARKS, exceptions, n))
            suzuki.raw(_day_block(suzuki_ids, kanji, "出席", _SUZUKI_MARKS, exceptions, n))
            rows += n
            for pupil, (kind, _reason) in exceptions.items():
                if kind in ABSENCE_KINDS:
                    absences[pupil] += 1
            if index in watch:
                absent_on[index] = {
                    p for p, (kind, _) in exceptions.items() if kind not in (LATE, EARLY)
                }
            for pupil, time, reason_kind, note in nurse:
                c4th_nurse.line(
                    f"{c4th_ids[pupil]},{slash},{time},{c4th_reasons[reason_kind]},{note}"
                )
                suzuki_nurse.line(
                    f"{suzuki_ids[pupil]},{kanji},{time},{suzuki_reasons[reason_kind]},{note}"
                )
                visits += 1
    long_term = sum(1 for count in absences if count >= 30)
    return _AttendanceResult(rows, long_term, visits, absent_on, paths)


# ---------------------------------------------------------------------------------------------
# Tests (定期考査, 単元テスト, 学力調査) and evaluations (評定, 観点別評価)

_ELEMENTARY_TEST_SUBJECTS = (
    ("国語", 1),
    ("算数", 1),
    ("理科", 3),
    ("社会", 3),
)  # (subject, from grade)
_JUNIOR_CORE = ("国語", "社会", "数学", "理科", "英語")
_JUNIOR_ALL = (*_JUNIOR_CORE, "音楽", "美術", "保健体育", "技術・家庭")
_PERIODIC = (
    (5, 22, "1学期中間考査", _JUNIOR_CORE),
    (7, 3, "1学期期末考査", _JUNIOR_ALL),
    (10, 9, "2学期中間考査", _JUNIOR_CORE),
    (11, 27, "2学期期末考査", _JUNIOR_ALL),
    (2, 19, "学年末考査", _JUNIOR_ALL),
)

_PAST_UNIT_TEST_MONTHS = (6, 11, 3)
_PAST_PERIODIC = ("1学期期末考査", "学年末考査")

# (day index, kind, test name, subject, who: "elementary"/"junior", grades or None, mean score)
_Test = tuple[int, str, str, str, str, tuple[int, ...] | None, float]


def _on_or_after(days: list[dt.date], target: dt.date) -> int | None:
    for i, d in enumerate(days):
        if d >= target:
            return i
    return None


def _test_schedule(year: int, days: list[dt.date], *, past: bool = False) -> list[_Test]:
    """Test days within the generated days, as day indexes into ``days``. An earlier year
    (``past``) has fewer: 単元テスト in three months and two 定期考査 (the demo imports less)."""
    tests: list[_Test] = []

    def month_year(month: int) -> int:
        return year if month >= 4 else year + 1

    april = dt.date(year, 4, 1)
    third_thursday = april + dt.timedelta(days=(3 - april.weekday()) % 7 + 14)
    index = _on_or_after(days, third_thursday)
    if index is not None:
        for subject, junior_subject in (("国語", "国語"), ("算数", "数学")):
            tests.append(
                (index, "学力調査", "全国学力・学習状況調査", subject, "elementary", (6,), 66.0)
            )
            tests.append(
                (index, "学力調査", "全国学力・学習状況調査", junior_subject, "junior", (3,), 62.0)
            )
    for month in _PAST_UNIT_TEST_MONTHS if past else (4, 5, 6, 7, 9, 10, 11, 12, 1, 2, 3):
        for offset, (subject, from_grade) in enumerate(_ELEMENTARY_TEST_SUBJECTS):
            index = _on_or_after(days, dt.date(month_year(month), month, 11 + 4 * offset))
            if index is not None and days[index].month == month:
                tests.append(
                    (
                        index,
                        "単元テスト",
                        f"{subject}単元テスト（{month}月）",
                        subject,
                        "elementary",
                        tuple(range(from_grade, 7)),
                        80.0,
                    )
                )
    for month, dom, name, subjects in _PERIODIC:
        if past and name not in _PAST_PERIODIC:
            continue
        start = _on_or_after(days, dt.date(month_year(month), month, dom))
        if start is None:
            continue
        for k, subject in enumerate(subjects):
            index = start + k // 3  # three subjects a day
            if index < len(days):
                tests.append((index, "定期考査", name, subject, "junior", None, 61.0))
    tests.sort(key=lambda t: t[0])
    return tests


def _write_tests(
    world: _World,
    days: list[dt.date],
    tests: list[_Test],
    absent_on: dict[int, set[int]],
    out_dir: Path,
) -> tuple[int, list[Path]]:
    rng = world.rng("tests")
    paths = [out_dir / "c4th" / "tests.csv", out_dir / "suzuki" / "tests.csv"]
    rows = 0
    elementary = [p for p in world.pupils if not p.homeroom.school.junior]
    junior = [p for p in world.pupils if p.homeroom.school.junior]
    with _Out(paths[0], "cp932") as c4th, _Out(paths[1], "cp932") as suzuki:
        c4th.line(",".join(C4TH_HEADERS["tests"]))
        suzuki.line(",".join(SUZUKI_HEADERS["tests"]))
        for index, kind, name, subject, who, grades, mean in tests:
            short, kanji = _era_short(days[index]), to_era(days[index])
            absent = absent_on.get(index, set())
            for p in elementary if who == "elementary" else junior:
                if (grades and p.homeroom.grade not in grades) or p.index in absent:
                    continue  # 欠席: no score (追試 is not modelled)
                score = min(100, max(0, round(rng.gauss(mean + 12 * p.ability, 13))))
                c4th.line(f"{world.year},{p.c4th_id},{kind},{name},{subject},{short},{score},100")
                suzuki.line(
                    f"{world.year},{p.suzuki_id},{kind},{name},{subject},{kanji},{score},100"
                )
                rows += 1
    return rows, paths


def _elementary_subjects(grade: int) -> list[str]:
    subjects = ["国語"] + (["社会"] if grade >= 3 else []) + ["算数"]
    subjects += (["理科"] if grade >= 3 else ["生活"]) + ["音楽", "図画工作"]
    subjects += (["家庭"] if grade >= 5 else []) + ["体育"] + (["外国語"] if grade >= 5 else [])
    return subjects


_JUNIOR_EVALUATED = (
    "国語",
    "社会",
    "数学",
    "理科",
    "音楽",
    "美術",
    "保健体育",
    "技術・家庭",
    "外国語",
)


def _viewpoint(z: float) -> str:
    return "A" if z > 0.6 else "C" if z < -0.9 else "B"


def _write_evaluations(world: _World, days: list[dt.date], out_dir: Path) -> tuple[int, list[Path]]:
    """評定 (1-5) and 観点別評価 for junior high; 観点 only for elementary, at each 学期 end
    that lies within the generated days."""
    rng = world.rng("evaluations")
    year = world.year
    ends = [
        ("1学期", dt.date(year, 7, 20)),
        ("2学期", dt.date(year, 12, 25)),
        ("3学期", school_days(year)[-1]),  # the last school day: 修了式
    ]
    terms = [term for term, end in ends if days[-1] >= end]
    paths = [out_dir / "c4th" / "evaluations.csv", out_dir / "suzuki" / "evaluations.csv"]
    rows = 0
    with _Out(paths[0], "cp932") as c4th, _Out(paths[1], "cp932") as suzuki:
        c4th.line(",".join(C4TH_HEADERS["evaluations"]))
        suzuki.line(",".join(SUZUKI_HEADERS["evaluations"]))
        for term in terms:
            for p in world.pupils:
                junior = p.homeroom.school.junior
                for subject in (
                    _JUNIOR_EVALUATED if junior else _elementary_subjects(p.homeroom.grade)
                ):
                    z = 0.85 * p.ability + rng.gauss(0.0, 0.55)
                    rating = ""
                    if junior:
                        rating = str(
                            5
                            if z > 1.2
                            else 4
                            if z > 0.4
                            else 3
                            if z > -0.5
                            else 2
                            if z > -1.3
                            else 1
                        )
                    views = ",".join(_viewpoint(z + rng.gauss(0.0, 0.4)) for _ in range(3))
                    c4th.line(f"{year},{p.c4th_id},{term},{subject},{rating},{views}")
                    suzuki.line(f"{year},{p.suzuki_id},{term},{subject},{rating},{views}")
                    rows += 1
    return rows, paths


# ---------------------------------------------------------------------------------------------
# Earlier school years: the same pupils, a grade lower each year back


def _write_past_year(world: _World, back: int, folder: Path) -> PastYearSummary:
    """The school year ``back`` years before ``world``'s, whole, in both vendors' formats:
    roster, attendance and nurse visits, fewer tests, evaluations. OneRoster, Microsoft 365
    and check-ins stay current-year only (those systems hold today's accounts)."""
    past = _past_world(world, back)
    days = school_days(past.year)
    tests = _test_schedule(past.year, days, past=True)
    files = _write_rosters(past, folder)
    attendance = _write_attendance(past, days, folder, {i for i, *_ in tests})
    test_rows, test_files = _write_tests(past, days, tests, attendance.absent_on, folder)
    evaluation_rows, evaluation_files = _write_evaluations(past, days, folder)
    return PastYearSummary(
        school_year=past.year,
        students=len(past.pupils),
        school_days=len(days),
        attendance_rows=attendance.rows,
        long_term_absent=attendance.long_term_absent,
        test_rows=test_rows,
        evaluation_rows=evaluation_rows,
        files=files + attendance.files + test_files + evaluation_files,
    )


def _past_world(world: _World, back: int) -> _World:
    """The municipality ``back`` school years before ``world``. Each pupil is ``back`` grades
    lower with the same ids and homeroom number (a junior high pupil then at one of the
    primary schools); those not at school yet are left out (new 1年生 since), and the pupils
    who have left junior high since are added (:func:`_graduates`). Scores drift a little
    from year to year; attendance is drawn afresh."""
    year = world.year - back
    rng = _rng(world.code, world.seed, f"past-roster/{year}")
    past = _World(
        world.code, world.name, year, world.seed, world.district_id, world.session_id, [], [], []
    )
    past.past = True
    schools = {s.code: _School(s.code, s.name, s.sourced_id, s.platform) for s in world.schools}
    past.schools = list(schools.values())
    primary = [s for s in past.schools if not s.junior]
    classes: dict[tuple[str, int], int] = {}  # (school, grade) -> homerooms today
    for hr in (hr for s in world.schools for hr in s.homerooms):
        classes[(hr.school.code, hr.grade)] = classes.get((hr.school.code, hr.grade), 0) + 1
    everyone = [*world.pupils, *_graduates(world)]
    drift = _rng(world.code, world.seed, "score-drift")
    growth = [drift.gauss(0.0, 0.15) for _ in everyone]  # ability gained per year
    homerooms: dict[tuple[str, int, int], _Homeroom] = {}
    last_day = school_days(year)[-1]  # 卒業式 of the 3年 (修了式 of the others)
    for pupil in everyone:
        level = pupil.level - back
        if not 1 <= level <= 9:
            continue  # not at school yet, or had left junior high already
        school, number = schools[pupil.homeroom.school.code], pupil.homeroom.number
        if school.junior and level <= 6:
            school = primary[pupil.index % len(primary)]
            number = 1 + pupil.index % classes.get((school.code, level), 1)
        grade = level - 6 if school.junior else level
        key = (school.code, grade, number)
        if key not in homerooms:
            homerooms[key] = _Homeroom(school, grade, number, _uuid(rng))
        past.pupils.append(
            dataclasses.replace(
                pupil,
                homeroom=homerooms[key],
                ability=pupil.ability - back * growth[pupil.index],
                graduation=last_day if school.junior and grade == 3 else None,
                profile=None,
            )
        )
    for hr in sorted(homerooms.values(), key=lambda h: (h.school.code, h.grade, h.number)):
        hr.index = sum(len(s.homerooms) for s in past.schools)
        hr.school.homerooms.append(hr)
    # 出席番号 in reading order; ``index`` becomes the position in this year's list, as the
    # writers expect (the ids stay the pupil's own).
    past.pupils.sort(key=lambda p: (p.homeroom.index, p.family[1], p.given[1], p.sourced_id))
    profile_rng = past.rng("attendance-profile")
    for position, pupil in enumerate(past.pupils):
        previous = past.pupils[position - 1] if position else None
        same_class = previous is not None and previous.homeroom is pupil.homeroom
        pupil.number = previous.number + 1 if same_class else 1
        pupil.index = position
        pupil.profile = _attendance_profile(
            profile_rng,
            junior=pupil.homeroom.school.junior,
            grade=pupil.homeroom.grade,
            homeroom=pupil.homeroom.index,
        )
    return past


def _graduates(world: _World) -> list[_Pupil]:
    """Pupils who left junior high one and two years before ``world``'s year (10th and 11th
    year at school now), as many as each junior high school's 3年 today, with ids after the
    current pupils'. Only the earlier years' rosters name them."""
    rng = _rng(world.code, world.seed, "graduates")
    found: list[_Pupil] = []
    for level in (10, 11):
        for hr in (hr for s in world.schools if s.junior for hr in s.homerooms if hr.grade == 3):
            size = sum(1 for p in world.pupils if p.homeroom is hr)
            then = _Homeroom(hr.school, level - 6, hr.number, "")
            for _ in range(size):
                pupil = _new_pupil(rng, world, then)
                pupil.index = len(world.pupils) + len(found)
                pupil.c4th_id, pupil.suzuki_id = _c4th_id(pupil.index), _suzuki_id(pupil.index)
                found.append(pupil)
    return found


# ---------------------------------------------------------------------------------------------
# Microsoft 365 apps usage (getM365AppUserDetail, one report per day)

M365_APPS = ("Outlook", "Word", "Excel", "PowerPoint", "OneNote", "Teams")
M365_PLATFORMS = ("Windows", "Mac", "Mobile", "Web")
M365_HEADER = [
    "Report Refresh Date",
    "User Principal Name",
    "Last Activation Date",
    "Last Activity Date",
    "Report Period",
    *M365_PLATFORMS,
    *M365_APPS,
] + [f"{app} ({platform})" for platform in M365_PLATFORMS for app in M365_APPS]


def _write_m365(
    world: _World,
    days: list[dt.date],
    report_days: list[int],
    absent_on: dict[int, set[int]],
    folder: Path,
    seed: int,
) -> tuple[int, list[Path]]:
    """Most pupils use Teams on a school day, some Word or PowerPoint; absent pupils rarely
    (online lessons). Files are UTF-8 with BOM, as the report download is."""
    rng = _rng(world.code, seed, "m365")
    engagement = [rng.uniform(0.35, 1.1) for _ in world.pupils]
    last_activity = [""] * len(world.pupils)
    activation = _iso(days[0])
    # Base daily probabilities (elementary, junior high).
    base = {
        "Outlook": (0.01, 0.04),
        "Word": (0.12, 0.3),
        "Excel": (0.02, 0.08),
        "PowerPoint": (0.1, 0.2),
        "OneNote": (0.05, 0.1),
        "Teams": (0.9, 0.92),
    }
    files, rows = [], 0
    for index in report_days:
        day = _iso(days[index])
        absent = absent_on.get(index, set())
        lines = []
        for p in world.pupils:
            junior = int(p.homeroom.school.junior)
            factor = engagement[p.index] * (0.1 if p.index in absent else 1.0)
            used = {app: rng.random() < min(0.98, base[app][junior] * factor) for app in M365_APPS}
            platform = p.homeroom.school.platform
            active = any(used.values())
            if active:
                last_activity[p.index] = day
            yes = ("No", "Yes")
            lines.append(
                [
                    day,
                    p.upn,
                    activation if platform == "Windows" else "",
                    last_activity[p.index],
                    "1",
                    *(yes[active and pf == platform] for pf in M365_PLATFORMS),
                    *(yes[used[app]] for app in M365_APPS),
                    *(
                        yes[used[app] and pf == platform]
                        for pf in M365_PLATFORMS
                        for app in M365_APPS
                    ),
                ]
            )
        files.append(
            _write_csv(
                folder / f"M365AppUserDetail_{day}.csv", M365_HEADER, lines, encoding="utf-8-sig"
            )
        )
        rows += len(lines)
    return rows, files


CHECKIN_HEADER = ["タイムスタンプ", "メールアドレス", "心の天気", "ひとこと"]
_MOODS = ("はれ", "くもり", "あめ", "かみなり")
_COMMENTS = ("ねむい", "たのしみ", "つかれた", "おなかがいたい", "ともだちとけんかした")


def _write_checkins(
    world: _World,
    days: list[dt.date],
    check_days: list[int],
    absent_on: dict[int, set[int]],
    folder: Path,
    seed: int,
) -> tuple[int, list[Path]]:
    """心の天気 answered in a Google フォーム in the morning by pupils at school on the
    last days: mostly はれ and くもり, more often あめ for pupils with a long-term-absence
    profile. One CSV download, as the form tool gives it."""
    rng = _rng(world.code, seed, "checkin")
    lines = []
    for index in check_days:
        absent = absent_on.get(index, set())
        for p in world.pupils:
            if p.index in absent or rng.random() > 0.85:
                continue  # not at school, or did not answer
            low = 0.3 if p.profile is not None and p.profile.long_term else 0.03
            r = rng.random()
            mood = _MOODS[2 + (r < low / 4)] if r < low else _MOODS[int(r * 10) % 2]
            comment = rng.choice(_COMMENTS) if rng.random() < 0.15 else ""
            minute = rng.randrange(0, 40)
            stamp = f"{days[index]:%Y/%m/%d} 8:{minute:02d}:{rng.randrange(60):02d}"
            lines.append([stamp, p.upn, mood, comment])
    if not lines:
        return 0, []
    return len(lines), [
        _write_csv(folder / "心の天気.csv", CHECKIN_HEADER, lines, encoding="utf-8")
    ]


LEARNING_DAYS = 20  # school days of learning logs: the last four weeks of the data
XAPI_EXTENSIONS = "https://eportal.example.jp/xapi/extensions/"
DRILL_HEADER = ["日付", "アカウント", "教科", "単元名", "学習時間（分）", "解答数", "正答数"]
# Units per subject (数学 is 中学校's 算数). Names as a 学習eポータル or a drill lists them.
_UNITS = {
    "国語": ("漢字の読み書き", "説明文の読解", "物語文の読解", "ことわざ・慣用句"),
    "算数": ("分数のたし算とひき算", "小数のかけ算", "図形の面積", "割合"),
    "数学": ("一次関数", "連立方程式", "図形の合同", "確率"),
    "理科": ("電流のはたらき", "植物のつくり", "天気の変化", "てこのはたらき"),
    "社会": ("日本の地形", "都道府県", "歴史の流れ", "わたしたちのくらしと政治"),
    "英語": ("アルファベット", "自己紹介", "過去形", "単語練習"),
}


def _learning_subjects(pupil: _Pupil) -> tuple[str, ...]:
    """The five subjects as the pupil's grade has them (理科・社会 from the 3rd grade, 英語
    from the 5th; 数学 in 中学校)."""
    if pupil.homeroom.school.junior:
        return ("国語", "数学", "理科", "社会", "英語")
    grade = pupil.homeroom.grade
    return (
        ("国語", "算数")
        + (("理科", "社会") if grade >= 3 else ())
        + (("英語",) if grade >= 5 else ())
    )


def _sessions(
    rng: random.Random,
    world: _World,
    days: list[dt.date],
    learning_days: list[int],
    absent_on: dict[int, set[int]],
    chance: float,
) -> Iterator[tuple[_Pupil, dt.date, str, str, int, int, int]]:
    """(pupil, day, subject, unit, minutes, questions, right) of each learning session: on a
    school day a pupil learns with ``chance`` (engaged pupils more, absent ones rarely), one
    or two subjects, each once a day; abler pupils get more questions right."""
    engagement = [rng.uniform(0.4, 1.2) for _ in world.pupils]
    for index in learning_days:
        absent = absent_on.get(index, set())
        for p in world.pupils:
            factor = engagement[p.index] * (0.2 if p.index in absent else 1.0)
            if rng.random() > chance * factor:
                continue
            subjects = _learning_subjects(p)
            for subject in rng.sample(subjects, k=min(len(subjects), rng.choice((1, 1, 2)))):
                minutes = max(3, min(60, round(rng.gauss(15 + 5 * p.homeroom.school.junior, 7))))
                questions = max(5, minutes // 2 + rng.randrange(5))
                rate = 1 / (1 + math.exp(-(0.9 + 0.8 * p.ability + rng.gauss(0, 0.4))))
                right = sum(rng.random() < rate for _ in range(questions))
                unit = rng.choice(_UNITS[subject])
                yield p, days[index], subject, unit, minutes, questions, right


def _write_xapi(
    world: _World,
    days: list[dt.date],
    learning_days: list[int],
    absent_on: dict[int, set[int]],
    folder: Path,
    seed: int,
) -> tuple[int, list[Path]]:
    """A 学習eポータル's learning log: one xAPI statement per session (the pupil's account as
    mbox, 教科 and the questions in extensions, minutes in result.duration), in the evening
    of the day, as an LRS export in JSON Lines."""
    rng = _rng(world.code, seed, "xapi")
    lines = []
    for p, day, subject, unit, minutes, questions, right in _sessions(
        rng, world, days, learning_days, absent_on, 0.55
    ):
        when = dt.datetime.combine(day, dt.time(16 + rng.randrange(5), rng.randrange(60)))
        statement = {
            "id": _uuid(rng),
            "actor": {"objectType": "Agent", "mbox": f"mailto:{p.upn}"},
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/completed",
                "display": {"ja-JP": "完了した"},
            },
            "object": {
                "objectType": "Activity",
                # a content code: subject and unit, as the portal numbers them
                "id": "https://eportal.example.jp/contents/"
                f"{list(_UNITS).index(subject) + 1:02d}{_UNITS[subject].index(unit) + 1:02d}",
                "definition": {
                    "name": {"ja-JP": f"{subject}：{unit}"},
                    "extensions": {XAPI_EXTENSIONS + "subject": subject},
                },
            },
            "result": {
                "duration": f"PT{minutes}M",
                "score": {
                    "raw": right,
                    "min": 0,
                    "max": questions,
                    "scaled": round(right / questions, 2),
                },
                "extensions": {
                    XAPI_EXTENSIONS + "items-attempted": questions,
                    XAPI_EXTENSIONS + "items-correct": right,
                },
            },
            "context": {"platform": "学習eポータル"},
            "timestamp": f"{when.isoformat()}+09:00",
        }
        lines.append(json.dumps(statement, ensure_ascii=False))
    if not lines:
        return 0, []
    path = folder / "statements.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines), [path]


def _write_drill(
    world: _World,
    days: list[dt.date],
    learning_days: list[int],
    absent_on: dict[int, set[int]],
    folder: Path,
    seed: int,
) -> tuple[int, list[Path]]:
    """A digital drill's learning history: one row per pupil, day and unit (the drill's
    daily summary), pupils named by the account they sign in with; CP932, as such exports
    usually are."""
    rng = _rng(world.code, seed, "drill")
    rows = [
        [_slash(day), p.upn, subject, unit, minutes, questions, right]
        for p, day, subject, unit, minutes, questions, right in _sessions(
            rng, world, days, learning_days, absent_on, 0.35
        )
    ]
    if not rows:
        return 0, []
    return len(rows), [
        _write_csv(folder / "ドリル学習履歴.csv", DRILL_HEADER, rows, encoding="cp932")
    ]


def _iso(day: dt.date) -> str:
    return day.isoformat()
