"""`renkei` on a fresh or partly migrated data directory: the embedded default makes its
schema itself, a configured database gets one line that says what to run - never a
traceback."""

from __future__ import annotations

import os

import pytest
from cli_support import renkei, scratch_database

pytestmark = pytest.mark.slow

# Every command that reads or writes the database, on a database nobody migrated.
COMMANDS = [
    ("tenants",),
    ("onboard", "--code", "131130", "--name", "渋谷区"),
    ("purge", "--dry-run"),
    ("import", "c4th", "--tenant", "131130", "nothing.csv"),
    ("errors", "--tenant", "131130", "1"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_database_nobody_migrated_gets_one_line_saying_what_to_run(tmp_path, command):
    with scratch_database(tmp_path) as (env, _):
        result = renkei(env, *command, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("エラー")]
    assert len(lines) == 1 and "`renkei migrate` を実行してください" in lines[0]
    assert "tenants_municipality" in lines[0]  # which table is missing


def test_a_schema_behind_the_code_gets_the_same_line(tmp_path):
    with scratch_database(tmp_path) as (env, _):
        renkei(env, "migrate", "-v", "0")
        renkei(env, "manage", "migrate_schemas", "--schema", "public", "tenants", "0001")
        result = renkei(env, "tenants", check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "data_version" in result.stderr and "`renkei migrate`" in result.stderr
        renkei(env, "migrate", "-v", "0")
        assert "登録された自治体はありません" in renkei(env, "tenants").stdout


def test_the_embedded_default_makes_its_schema_itself(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(RENKEI_HOME=str(tmp_path / "home"), PYTHONWARNINGS="ignore")
    first = renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
    assert "データベースを準備しています" in first.stderr and "Traceback" not in first.stderr
    assert "登録しました: 131130 渋谷区" in first.stdout
    listed = renkei(env, "tenants")
    assert "131130" in listed.stdout and "準備しています" not in listed.stderr
