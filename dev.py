#!/usr/bin/env python3
"""The two commands of a fresh clone, needing only Python ≥ 3.11:

    python3 dev.py demo    install what is needed, then run the demo on http://127.0.0.1:8000
    python3 dev.py test    install what is needed, then run the whole test suite

Installs into .venv/ from the hash-locked requirements.lock (reproducible), then the project
itself. Extra arguments go to `renkei demo` or to pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".renkei-installed"


def run(*cmd: str | Path, **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def install() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Renkei needs Python 3.11 or newer (this is {sys.version.split()[0]}).")
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    wanted = hashlib.sha256(
        b"".join(
            p.read_bytes()
            for p in (
                LOCK,
                ROOT / "pyproject.toml",
                ROOT / "examples/renkei-connector-kenko/pyproject.toml",
            )
        )
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing locked dependencies …", flush=True)
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "install", "--require-hashes", "-r", LOCK)
    run(*pip, "install", "--no-deps", "-e", ".")
    # The example vendor connector is installed as its own package, as a vendor's would be.
    run(*pip, "install", "--no-deps", "-e", "examples/renkei-connector-kenko")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    install()
    verb, rest = argv[0], argv[1:]
    if verb == "demo":
        return subprocess.call([str(BIN / "renkei"), "demo", *rest], cwd=ROOT)
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
