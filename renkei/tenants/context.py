"""Running code inside one tenant outside a request (imports, tasks, federation fan-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from renkei.tenants.codes import CodeError, validate_municipality_code
from renkei.tenants.models import Municipality

# -- one writer of a tenant's data at a time ----------------------------------------------------


def _write_lock_key(schema_name: str) -> str:
    return f"renkei-import:{schema_name}"


@contextmanager
def tenant_write_session(schema_name: str) -> Iterator[None]:
    """Hold the tenant's write lock for a whole import (several transactions). It is a
    session lock: it dies with the connection, ``kill -9`` of the process included."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [_write_lock_key(schema_name)])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(hashtext(%s))", [_write_lock_key(schema_name)]
            )


def tenant_write_idle(schema_name: str) -> bool:
    """Whether nobody holds the tenant's write lock (no import is running there now)."""
    with connection.cursor() as cursor:
        key = _write_lock_key(schema_name)
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])
    return True


def tenant_write_lock() -> None:
    """Wait for the current tenant's running import, then hold its write lock to the end of
    the current transaction (a rollup refresh, a purge)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [_write_lock_key(connection.schema_name)]
        )


class UnknownTenant(LookupError):
    """No municipality with that code is onboarded."""


def get_municipality(code: str) -> Municipality:
    """The municipality for a code, or UnknownTenant / CodeError with a clear message."""
    validate_municipality_code(code)
    try:
        return Municipality.objects.select_related("prefecture").get(code=code)
    except Municipality.DoesNotExist:
        raise UnknownTenant(f"自治体コード {code} のテナントは登録されていません。") from None


@contextmanager
def in_tenant(tenant: Municipality | str) -> Iterator[Municipality]:
    """Switch the connection to one tenant's schema; always restore the previous one.

    Accepts a Municipality or its code. The previous tenant (or public) is restored on exit,
    including when the block raises.
    """
    municipality = get_municipality(tenant) if isinstance(tenant, str) else tenant
    previous = getattr(connection, "tenant", None)
    previous_schema = connection.schema_name
    connection.set_tenant(municipality)
    try:
        yield municipality
    finally:
        if previous is not None and getattr(previous, "schema_name", None) == previous_schema:
            connection.set_tenant(previous)
        else:
            connection.set_schema(previous_schema)


def current_municipality() -> Municipality | None:
    """The tenant the connection is in, or None in the public schema."""
    tenant = getattr(connection, "tenant", None)
    return tenant if isinstance(tenant, Municipality) else None


__all__ = ["CodeError", "UnknownTenant", "current_municipality", "get_municipality", "in_tenant"]
