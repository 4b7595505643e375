"""The committed widget bundle (``static/renkei/widgets.js``) and the sources it is built from.

``build.mjs`` writes ``/*! renkei-widgets sources:sha256=<hex> */`` as the bundle's first line,
computing the digest exactly as :func:`source_digest` does, so that a test without Node can
tell whether the committed bundle was rebuilt after its sources changed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUNDLE = ROOT / "static" / "renkei" / "widgets.js"
TOP_LEVEL = ("package.json", "package-lock.json", "build.mjs")
BUILD_COMMAND = "cd renkei/graphql/widgets && npm ci && npm run build"
_HEADER = re.compile(rb"^/\*! renkei-widgets sources:sha256=([0-9a-f]{64}) \*/$")


def _sources() -> list[str]:
    found = list(TOP_LEVEL)
    found += [
        path.relative_to(ROOT).as_posix() for path in (ROOT / "src").rglob("*") if path.is_file()
    ]
    return sorted(found, key=lambda relpath: relpath.encode())


SOURCES: list[str] = _sources()


def source_digest() -> str:
    """sha256 over ``relpath \\0 bytes \\0`` of every source file, in order (read now)."""
    digest = hashlib.sha256()
    for relpath in _sources():
        digest.update(relpath.encode() + b"\0" + (ROOT / relpath).read_bytes() + b"\0")
    return digest.hexdigest()


def committed_digest() -> str | None:
    """The digest recorded on the committed bundle's first line (None if missing or malformed)."""
    try:
        with BUNDLE.open("rb") as bundle:
            first = bundle.readline().rstrip(b"\n")
    except FileNotFoundError:
        return None
    match = _HEADER.match(first)
    return match.group(1).decode() if match else None
