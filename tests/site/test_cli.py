"""`renkei` commands that exit as soon as their change commits."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_support import renkei, scratch_database

pytestmark = pytest.mark.slow

# `renkei …` as the console script runs it; then whether a release warm-up was left running
# in the background when the command returned (the exit would cut it off).
RUNNER = """
import sys
from renkei.site.cli import main
code = main(sys.argv[1:])
from renkei.edudata.metrics import release
print("warm-up:", "running" if release._WARM_STATE["thread"] is not None else "none")
sys.exit(code)
"""

ROSTER = (
    "年度,学校コード,学校名,学年,組,出席番号,児童生徒ID,氏名（姓）,氏名（名）,性別\n"
    "2025,B113211300012,第一小学校,1,1,1,C0000001,山田,太郎,男\n"
)


def test_an_import_on_the_command_line_leaves_no_release_warm_up_to_be_cut_off(tmp_path):
    """The import commits a new data version, which asks for the prefecture's releases to be
    made anew; a process that exits right after must not start that in a thread it would
    kill (with the embedded server, its shutdown made the thread log an error after 完了)."""
    roster = tmp_path / "roster.csv"
    roster.write_bytes(ROSTER.encode("cp932"))
    with scratch_database(tmp_path / "home") as (env, _):
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        run = subprocess.run(
            [sys.executable, "-c", RUNNER, "import", "c4th", "--tenant", "131130", str(roster)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr
    assert "取り込んだ行 1 " in run.stdout
    assert "warm-up: none" in run.stdout
    assert "warm-up" not in run.stderr  # no error about it either
