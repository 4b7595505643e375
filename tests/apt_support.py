"""Installing a Debian package a test needs (chromium, pgbouncer) when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def apt_install(*packages: str) -> str:
    """Try `apt-get install -y PACKAGES` (root only; `apt-get update` first when the package
    lists are stale). Returns why it did not work, or ""."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root, so apt-get cannot be used"
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    name = " ".join(packages)
    try:
        result = _apt_get("install", "-y", *packages)
        if result.returncode != 0:
            _apt_get("update")
            result = _apt_get("install", "-y", *packages)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"apt-get install {name} did not finish: {e}"
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return f"apt-get install {name} exited {result.returncode}: {' / '.join(tail)}"
    return ""
