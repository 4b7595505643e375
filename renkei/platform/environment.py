"""Where Renkei keeps its data and which PostgreSQL it talks to.

With no ``DATABASE_URL`` Renkei starts a private PostgreSQL from the ``pgserver`` wheel under
the data directory, so a fresh machine needs nothing but Python. ``DATABASE_URL`` selects an
external server instead (production, or the PostgreSQL a developer already runs).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "renkei"


def home() -> Path:
    """The data directory: ``RENKEI_HOME``, default ``.renkei/`` in the working directory."""
    path = Path(os.environ.get("RENKEI_HOME", ".renkei")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_database() -> bool:
    """Whether the database is the embedded one (no DATABASE_URL)."""
    return not os.environ.get("DATABASE_URL")


def database_settings() -> dict:
    """Django ``DATABASES['default']`` for the configured or the embedded server."""
    if embedded_database():
        return _embedded_settings()
    return _settings_from_url(os.environ["DATABASE_URL"])


def _settings_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return {
        "NAME": unquote(parts.path.lstrip("/")) or "renkei",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(query.pop("host", parts.hostname or "")),
        "PORT": str(parts.port or ""),
        "OPTIONS": query,
    }


@cache
def _embedded_settings() -> dict:
    import pgserver  # imported here: production never needs it

    server = pgserver.get_server(home() / "pgdata")
    socket_dir = _settings_from_url(server.get_uri())["HOST"]
    _ensure_database(socket_dir)
    return {"NAME": EMBEDDED_DATABASE, "USER": "postgres", "PASSWORD": "", "HOST": socket_dir,
            "PORT": "", "OPTIONS": {}}  # fmt: skip


def _ensure_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as c:
        exists = c.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DATABASE]
        ).fetchone()
        if not exists:
            log.info("creating the embedded database %s", EMBEDDED_DATABASE)
            c.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
