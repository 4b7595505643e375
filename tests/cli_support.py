"""Running the real `renkei` command in a subprocess against a scratch database on the same
PostgreSQL server as the tests (embedded or DATABASE_URL)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings

RENKEI = [sys.executable, "-m", "renkei.site.cli"]


def _server() -> dict:
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"],
        "port": db["PORT"] or None,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }


@contextmanager
def scratch_database(home: Path):
    """A fresh database, and the environment that points `renkei` at it."""
    name = f"renkei_cli_{uuid.uuid4().hex[:10]}"
    server = _server()
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = server["host"]
    port = f":{server['port']}" if server["port"] else ""
    auth = server["user"] + (f":{server['password']}" if server["password"] else "")
    url = (
        f"postgresql://{auth}@{port}/{name}?host={host}"
        if host.startswith("/")
        else f"postgresql://{auth}@{host}{port}/{name}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RENKEI_HOME": str(home),
        "PYTHONWARNINGS": "ignore",
        **fresh_secrets(),
    }
    try:
        yield env, name
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_secrets() -> dict[str, str]:
    """What a deployment with its own DATABASE_URL must be given (renkei.platform.deploy_secrets)."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "RENKEI_SERVICE_TOKEN_KEY": secrets.token_urlsafe(48),
        "RENKEI_MASTER_KEY": Fernet.generate_key().decode(),
    }


def renkei(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*RENKEI, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"renkei {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def query(name: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(dbname=name, **_server()) as conn:
        return conn.execute(sql, params).fetchall()
