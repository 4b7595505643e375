"""Running code inside one tenant outside a request (imports, tasks, federation fan-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from renkei.tenants.codes import CodeError, validate_municipality_code
from renkei.tenants.models import Municipality


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
