"""Where raw imports and exports are kept: a local directory by default (under RENKEI_HOME),
S3 when configured. Every key lives under the tenant's own prefix."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from renkei.platform import environment

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")


class Storage(Protocol):
    def save(self, tenant: str, key: str, source: BinaryIO) -> str: ...
    def open(self, tenant: str, key: str) -> BinaryIO: ...
    def exists(self, tenant: str, key: str) -> bool: ...


def check_key(tenant: str, key: str) -> str:
    """Tenant codes and keys come from our code, but never trust them with a path."""
    if not re.fullmatch(r"[0-9]{6}", tenant):
        raise ValueError(f"not a tenant code: {tenant!r}")
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a storage key: {key!r}")
    return f"{tenant}/{key}"


class LocalStorage:
    def __init__(self, root: Path | None = None):
        self.root = root or environment.home() / "storage"

    def _path(self, tenant: str, key: str) -> Path:
        return self.root / check_key(tenant, key)

    def save(self, tenant: str, key: str, source: BinaryIO) -> str:
        path = self._path(tenant, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)
        partial.replace(path)  # a crash never leaves a half-written archive under the real name
        return key

    def open(self, tenant: str, key: str) -> BinaryIO:
        return self._path(tenant, key).open("rb")

    def exists(self, tenant: str, key: str) -> bool:
        return self._path(tenant, key).exists()


def get_storage() -> Storage:
    return LocalStorage()
