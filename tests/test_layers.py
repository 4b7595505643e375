"""The layers of the code as a contract (import-linter, ``[tool.importlinter]`` in
pyproject.toml): it holds, and it fails on an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # grimp imports the root package to find it: the copy under test comes first.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("renkei/edudata/rollups.py", "from renkei.graphql import edge", "Packages are layered"),
        ("renkei/tenants/codes.py", "from renkei.dashboards import access", "Packages are layered"),
        ("renkei/tenants/models.py", "from renkei.accounts import policy", "Packages are layered"),
        ("renkei/platform/storage.py", "from renkei.tenants import codes", "Packages are layered"),
        ("renkei/connectors/tasks.py", "from renkei.site import celery", "Packages are layered"),
        (
            "renkei/graphql/edge.py",
            "from renkei.demo import world",
            "Only the composition root imports the demo",
        ),
    ],
)
def test_an_upward_import_breaks_the_build(tmp_path, module, line, contract):
    shutil.copytree(
        ROOT / "renkei",
        tmp_path / "renkei",
        ignore=shutil.ignore_patterns("__pycache__", "locale", "static"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / module, "a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(contract in b for b in broken), result.stdout[-3000:]
