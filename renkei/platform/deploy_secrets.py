"""The deployment's secrets, and the rule that nothing starts with a forgeable one.

Three secrets sign or encrypt what an attacker must not forge or read:

* ``DJANGO_SECRET_KEY``: sessions, CSRF, and the prefecture analysts' federation tokens;
* ``RENKEI_SERVICE_TOKEN_KEY``: the service tokens between deployments (``/federation/tenant``);
* ``RENKEI_MASTER_KEY``: a Fernet key that encrypts every tenant's pseudonymization key.

The embedded default (no ``DATABASE_URL``, served on loopback only: ``renkei demo`` and
``renkei serve``) generates each missing one once per data directory and keeps it there
(mode 0600), so a fresh clone runs with keys nobody else has. Any other configuration must
get all three from the environment; while one is missing, too short, or a value published
somewhere (an old built-in default, the compose file's local values, Django's
``django-insecure-`` keys), every server refuses to start with one line naming the
variable: Django's system checks (``renkei check --deploy``, ``migrate``, ``runserver``),
gunicorn (``on_starting`` in ``infra/gunicorn.conf.py``), the WSGI/ASGI entry points, the
Celery worker and every ``renkei`` command.

This module reads only ``os.environ``-like mappings and files, so gunicorn's master can use it
before Django is set up.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

SECRET_KEY = "DJANGO_SECRET_KEY"  # noqa: S105 - names of variables, not values
SERVICE_TOKEN_KEY = "RENKEI_SERVICE_TOKEN_KEY"  # noqa: S105
MASTER_KEY = "RENKEI_MASTER_KEY"
VARIABLES = (SECRET_KEY, SERVICE_TOKEN_KEY, MASTER_KEY)

# Values that were built in, or are printed in this repository: anyone can sign with them.
KNOWN_DEFAULTS = frozenset(
    {
        "renkei-embedded-demo-only-not-secret",
        "build-only-not-a-secret",
        "local-only-insecure-secret-key-do-not-use-in-production",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # 32 zero bytes: the old compose master key
        "changeme",
        "secret",
        "password",
    }
)
KNOWN_DEFAULT_PREFIXES = ("django-insecure-",)
MIN_LENGTH = {SECRET_KEY: 50, SERVICE_TOKEN_KEY: 32}

# Where the embedded default keeps what it generated (the master key's file predates this).
EMBEDDED_FILES = {
    SECRET_KEY: "secret_key",
    SERVICE_TOKEN_KEY: "service_token.key",
    MASTER_KEY: "master.key",
}


class MissingSecret(Exception):
    """A server was about to start with a missing or forgeable secret."""


def is_embedded(environ: Mapping[str, str], bind_hosts: Iterable[str] = ()) -> bool:
    """The embedded default: Renkei's own PostgreSQL and no address outside loopback."""
    return not environ.get("DATABASE_URL") and all(_loopback(h) for h in bind_hosts)


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, a unix socket path...: not provably loopback


def problems(environ: Mapping[str, str], bind_hosts: Iterable[str] = ()) -> list[str]:
    """One line per secret that is missing (outside the embedded default) or forgeable."""
    embedded = is_embedded(environ, bind_hosts)
    found = []
    for name in VARIABLES:
        value = environ.get(name, "")
        if not value:
            if not embedded:
                found.append(
                    f"{name} is not set: production needs a long random value "
                    "from the secret store (infra/README.md, Secrets)"
                )
            continue
        reason = _weakness(name, value)
        if reason:
            found.append(f"{name} {reason}")
    service, secret_key = environ.get(SERVICE_TOKEN_KEY), environ.get(SECRET_KEY)
    if service and service == secret_key:
        found.append(
            f"{SERVICE_TOKEN_KEY} must differ from {SECRET_KEY} (it is shared with "
            "other deployments; the secret key must not be)"
        )
    return found


def _weakness(name: str, value: str) -> str | None:
    if value in KNOWN_DEFAULTS or value.startswith(KNOWN_DEFAULT_PREFIXES):
        return "is a published default value: generate a new random one"
    if name == MASTER_KEY:
        return (
            None
            if _is_fernet_key(value)
            else (
                "is not a Fernet key (32 random bytes, urlsafe base64: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        )
    if len(value) < MIN_LENGTH[name] or len(set(value)) < 5:
        return f"is too short or too simple (at least {MIN_LENGTH[name]} random characters)"
    return None


def _is_fernet_key(value: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32 and len(set(raw)) > 4


def refuse_to_start(
    environ: Mapping[str, str] | None = None, bind_hosts: Iterable[str] = ()
) -> None:
    """Raise MissingSecret (its message: one line per problem) unless the secrets are sound."""
    found = problems(os.environ if environ is None else environ, bind_hosts)
    if found:
        raise MissingSecret("Renkei refuses to start: " + "; ".join(found))


def resolve(environ: Mapping[str, str], home: Path) -> dict[str, str]:
    """The value of each secret for the settings.

    From the environment when set. Otherwise, in the embedded default, the one generated once
    under ``home``; outside it a random value for this process only (never a constant), which
    matters only if something bypassed :func:`refuse_to_start`.
    """
    embedded = is_embedded(environ)
    values = {}
    for name in VARIABLES:
        value = environ.get(name, "")
        if not value and embedded:
            value = _read_or_create(home / EMBEDDED_FILES[name], _generate(name))
        values[name] = value or _generate(name)
    return values


def _generate(name: str) -> str:
    if name == MASTER_KEY:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(48)


def _read_or_create(path: Path, fresh: str) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _attempt in range(100):  # another process may have created it a moment ago
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise MissingSecret(f"{path} is empty: remove it to generate a new key") from None
    with os.fdopen(fd, "w") as f:
        f.write(fresh)
    return fresh
