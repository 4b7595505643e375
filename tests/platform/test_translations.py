"""The English translation: complete, compiled, in step with the source, and served.

The committed ``django.po`` must translate every message, ``django.mo`` must be compiled from it
(a fresh machine with only Python gets English from the ``.mo``), and — when GNU gettext is
installed — ``makemessages`` must find no message the ``.po`` lacks.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import renkei

PACKAGE = Path(renkei.__file__).resolve().parent
LC_MESSAGES = PACKAGE / "platform" / "locale" / "en" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"
UPDATE_HINT = (
    "update the translation: `renkei manage makemessages -l en --ignore=.venv --ignore=node_modules "
    "--ignore=tests --ignore=examples --ignore=infra --ignore=terraform`, translate, then "
    "`renkei manage compilemessages -l en --ignore=.venv --ignore=node_modules` "
    "(see 'Translations' in README.md)"
)


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # 0 for a singular message
    flags: set[str] = field(default_factory=set)
    line: int = 0


def parse_po(path: Path) -> list[Entry]:
    """A minimal .po reader: flags, msgid, msgid_plural, msgstr, msgstr[n], continuation lines.
    Obsolete (``#~``) entries are skipped; the header (msgid "") is returned like any entry."""
    entries: list[Entry] = []
    entry: Entry | None = None
    flags: set[str] = set()
    target: tuple[str, int] | None = None  # which string a continuation line extends

    def finish():
        nonlocal entry
        if entry is not None:
            entries.append(entry)
        entry = None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):  # comments come before their entry, so the last one ended
            if entry is not None and entry.msgstr:
                finish()
            if line.startswith("#,"):
                flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "msgid":
            finish()
            entry = Entry(flags=flags, line=number)
            flags = set()
            entry.msgid = ast.literal_eval(rest)
            target = ("msgid", 0)
        elif keyword == "msgid_plural":
            entry.msgid_plural = ast.literal_eval(rest)
            target = ("msgid_plural", 0)
        elif keyword == "msgstr":
            entry.msgstr[0] = ast.literal_eval(rest)
            target = ("msgstr", 0)
        elif m := re.fullmatch(r"msgstr\[(\d+)\]", keyword):
            entry.msgstr[int(m[1])] = ast.literal_eval(rest)
            target = ("msgstr", int(m[1]))
        elif line.startswith('"'):
            text = ast.literal_eval(line)
            kind, index = target
            if kind == "msgstr":
                entry.msgstr[index] += text
            else:
                setattr(entry, kind, getattr(entry, kind) + text)
        else:
            raise ValueError(f"{path}:{number}: cannot read {raw!r}")
    finish()
    return entries


def messages(path: Path) -> list[Entry]:
    return [e for e in parse_po(path) if e.msgid != ""]


PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_the_parser_reads_what_it_should(tmp_path):
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: en\\n"\n\n'
        '#: a.py:1\n#, fuzzy, python-format\nmsgid ""\n"長い"\n"文"\nmsgstr "A long "\n'
        '"\\"sentence\\""\n\n'
        'msgid "%(n)s人"\nmsgid_plural "%(n)s人"\nmsgstr[0] "%(n)s pupil"\n'
        'msgstr[1] "%(n)s pupils"\n\n#~ msgid "old"\n#~ msgstr "old"\n',
        encoding="utf-8",
    )
    header, long, plural = parse_po(po)
    assert header.msgstr == {0: "Language: en\n"}
    assert (long.msgid, long.msgstr, long.flags) == (
        "長い文",
        {0: 'A long "sentence"'},
        {"fuzzy", "python-format"},
    )
    assert (plural.msgid_plural, plural.msgstr) == (
        "%(n)s人",
        {0: "%(n)s pupil", 1: "%(n)s pupils"},
    )


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = parse_po(PO)
    header = entries[0]
    assert header.msgid == "" and "fuzzy" not in header.flags, "the .po header is marked fuzzy"
    assert "Language: en" in header.msgstr[0]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header.msgstr[0]
    problems = []
    for e in entries[1:]:
        where = f"line {e.line}: {e.msgid[:40]!r}"
        if "fuzzy" in e.flags:
            problems.append(f"{where} is fuzzy")
        expected = [0, 1] if e.msgid_plural is not None else [0]
        if sorted(e.msgstr) != expected:
            problems.append(f"{where} has msgstr forms {sorted(e.msgstr)}, expected {expected}")
        if any(not s.strip() for s in e.msgstr.values()):
            problems.append(f"{where} is not translated")
        wanted = set(PLACEHOLDER.findall(e.msgid + (e.msgid_plural or "")))
        for n, s in e.msgstr.items():
            if set(PLACEHOLDER.findall(s)) != wanted and not (n == 0 and e.msgid_plural):
                problems.append(
                    f"{where} msgstr[{n}] has placeholders "
                    f"{sorted(set(PLACEHOLDER.findall(s)))}, expected {sorted(wanted)}"
                )
    assert len(entries) > 100
    assert not problems, "\n".join(problems) + "\n" + UPDATE_HINT


def test_the_compiled_mo_matches_the_po():
    with MO.open("rb") as f:
        catalog = gettext.GNUTranslations(f)
    stale = []
    for e in messages(PO):
        if e.msgid_plural is None:
            got = {0: catalog.gettext(e.msgid)}
        else:
            got = {
                0: catalog.ngettext(e.msgid, e.msgid_plural, 1),
                1: catalog.ngettext(e.msgid, e.msgid_plural, 2),
            }
        if got != e.msgstr:
            stale.append(f"{e.msgid[:40]!r}: .mo has {got}, .po has {e.msgstr}")
    assert not stale, "django.mo is out of date; " + UPDATE_HINT + "\n" + "\n".join(stale)


@pytest.mark.skipif(
    shutil.which("xgettext") is None or shutil.which("msguniq") is None,
    reason="GNU gettext is not installed (apt-get install gettext / brew install gettext); "
    "needed only to check that django.po has every message of the source",
)
def test_the_po_has_every_message_of_the_source(tmp_path, monkeypatch, settings):
    """makemessages on a copy of the package (so nothing in the checkout changes) finds exactly
    the messages of the committed .po: a new {% translate %} without English fails here."""
    from django.core.management import call_command

    # Our command (it knows the _l alias) itself, not whichever the name resolves to.
    from renkei.platform.management.commands.makemessages import Command as MakeMessages

    ignored = shutil.ignore_patterns("locale", "__pycache__", "node_modules", "tests")
    shutil.copytree(PACKAGE, tmp_path / "src" / "renkei", ignore=ignored)
    settings.LOCALE_PATHS = [str(tmp_path / "locale")]
    monkeypatch.chdir(tmp_path / "src")
    call_command(
        MakeMessages(), locale=["en"], verbosity=0, ignore_patterns=["node_modules", "tests"]
    )
    fresh = {
        (e.msgid, e.msgid_plural)
        for e in messages(tmp_path / "locale" / "en" / "LC_MESSAGES" / "django.po")
    }
    committed = {(e.msgid, e.msgid_plural) for e in messages(PO)}
    missing = sorted(m for m, _ in fresh - committed)
    obsolete = sorted(m for m, _ in committed - fresh)
    assert not missing and not obsolete, (
        f"django.po is not in step with the source; {UPDATE_HINT}\n"
        f"not in django.po: {missing}\nno longer in the source: {obsolete}"
    )


def test_the_landing_page_speaks_english_on_request(client, db):
    client.cookies["django_language"] = "en"
    html = client.get("/").content.decode()
    assert 'lang="en"' in html
    assert "Choose a municipality." in html
    assert "自治体を選んでください。" not in html


def test_the_landing_page_is_japanese_by_default(client, db):
    html = client.get("/").content.decode()
    assert 'lang="ja"' in html
    assert "自治体を選んでください。" in html
    assert "Choose a municipality." not in html
