"""The code as CI keeps it: ruff's lint rules and ruff's formatting (pyproject.toml), over
every Python file of the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_ruff(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} found something (run `ruff {' '.join(command[:1])} .` to "
        f"see it, `ruff format .` to format):\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    )
