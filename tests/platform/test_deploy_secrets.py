"""No server starts with a forgeable secret: the embedded default generates its own keys once
per data directory; every other configuration needs all three from the environment."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import fresh_secrets

from renkei.platform import deploy_secrets

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused"}


def test_the_embedded_default_generates_private_keys_once(tmp_path):
    first = deploy_secrets.resolve({}, tmp_path)
    again = deploy_secrets.resolve({}, tmp_path)
    (tmp_path / "elsewhere").mkdir()
    other = deploy_secrets.resolve({}, tmp_path / "elsewhere")
    assert first == again and first != other
    assert len(set(first.values())) == 3
    assert not deploy_secrets.problems(first)  # what it generates passes its own checks
    for name in deploy_secrets.VARIABLES:
        path = tmp_path / deploy_secrets.EMBEDDED_FILES[name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_embedded_default_needs_nothing_on_loopback():
    assert deploy_secrets.problems({}, bind_hosts=["127.0.0.1", "::1", "localhost"]) == []


@pytest.mark.parametrize(
    ("environ", "hosts"),
    [(PRODUCTION, []), ({}, ["0.0.0.0"]), ({}, ["10.0.0.5"]), ({}, ["unix-socket"])],
)
def test_anything_else_needs_every_secret(environ, hosts):
    found = deploy_secrets.problems(environ, bind_hosts=hosts)
    assert [line.split()[0] for line in found] == list(deploy_secrets.VARIABLES)


@pytest.mark.parametrize(
    "value",
    [
        *sorted(deploy_secrets.KNOWN_DEFAULTS),
        "django-insecure-" + "x1y2z3" * 10,
        "short-but-random-9f8e",
    ],
)
def test_published_or_weak_values_are_refused_even_when_embedded(value):
    environ = {**fresh_secrets(), "DJANGO_SECRET_KEY": value}
    [line] = deploy_secrets.problems(environ)
    assert line.startswith("DJANGO_SECRET_KEY ")


def test_the_service_key_may_not_be_the_secret_key():
    environ = fresh_secrets()
    environ["RENKEI_SERVICE_TOKEN_KEY"] = environ["DJANGO_SECRET_KEY"]
    assert any("must differ" in line for line in deploy_secrets.problems(environ))


def test_the_master_key_must_be_a_fernet_key():
    environ = {
        **fresh_secrets(),
        "RENKEI_MASTER_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }
    [line] = deploy_secrets.problems(environ)
    assert line.startswith("RENKEI_MASTER_KEY ")
    environ["RENKEI_MASTER_KEY"] = "not base64 at all"
    assert deploy_secrets.problems(environ)[0].startswith("RENKEI_MASTER_KEY ")


def _env(tmp_path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in deploy_secrets.VARIABLES and k != "DATABASE_URL" and not k.startswith("OTEL_")
    }
    env.update(
        RENKEI_HOME=str(tmp_path),
        DJANGO_SETTINGS_MODULE="renkei.site.settings",
        PYTHONWARNINGS="ignore",
        **extra,
    )
    return env


def test_renkei_check_deploy_names_each_missing_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "renkei.site.cli", "check", "--deploy"],
        env=_env(tmp_path, **PRODUCTION),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    for name in deploy_secrets.VARIABLES:
        assert f"(renkei.E001) {name} is not set" in result.stderr, result.stderr


def test_renkei_commands_refuse_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "renkei.site.cli", "tenants"],
        env=_env(tmp_path, **PRODUCTION, DJANGO_SECRET_KEY="renkei-embedded-demo-only-not-secret"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert (
        line.startswith("Renkei refuses to start:") and "DJANGO_SECRET_KEY is a published" in line
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (PRODUCTION, "DJANGO_SECRET_KEY is not set"),
        ({}, "DJANGO_SECRET_KEY is not set"),  # no DATABASE_URL, but bound to every interface
        (
            {
                **PRODUCTION,
                **fresh_secrets(),
                "RENKEI_SERVICE_TOKEN_KEY": "renkei-embedded-demo-only-not-secret",
            },
            "RENKEI_SERVICE_TOKEN_KEY is a published default",
        ),
    ],
)
def test_the_container_entry_point_refuses_to_start(tmp_path, extra, named):
    """The image's CMD (gunicorn with infra/gunicorn.conf.py), as the container runs it."""
    env = _env(tmp_path, **extra, GUNICORN_BIND=f"0.0.0.0:{_free_port()}", WEB_CONCURRENCY="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "infra/gunicorn.conf.py",
            "renkei.site.wsgi:application",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert named in result.stderr, result.stderr
    assert "Booting worker" not in result.stderr  # refused before any worker started


def test_the_celery_worker_refuses_to_start(tmp_path):
    env = _env(
        tmp_path,
        **PRODUCTION,
        CELERY_BROKER_URL="memory://",
        **{k: v for k, v in fresh_secrets().items() if k != "RENKEI_MASTER_KEY"},
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "renkei.site.celery:app",
            "worker",
            "--pool=solo",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    refusal = [line for line in result.stderr.splitlines() if line.startswith("Renkei refuses")]
    assert refusal == [
        "Renkei refuses to start: RENKEI_MASTER_KEY is not set: production needs "
        "a long random value from the secret store (infra/README.md, Secrets)"
    ]
