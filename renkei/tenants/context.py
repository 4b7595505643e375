"""Running code inside one tenant outside a request (imports, tasks, federation fan-out)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import OperationalError, connection
from django.utils.translation import gettext as _

from renkei.tenants.codes import CodeError, validate_municipality_code
from renkei.tenants.models import Municipality

# -- one writer of a tenant's data at a time ----------------------------------------------------


def _write_lock_key(schema_name: str) -> str:
    return f"renkei-import:{schema_name}"


@contextmanager
def held_lock(key: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold an advisory lock while the block runs several transactions; yields whether it is
    held (``wait=False`` gives up at once when someone else holds it).

    The lock belongs to an open transaction on a connection of its own. A session lock on
    Django's connection would not hold behind a pooler in transaction mode: its unlock, or
    the next import's lock, may reach another server connection. A transaction keeps its
    server connection under any pooler, and ends with the process (``kill -9`` included),
    which releases the lock. Each holder so uses one more server connection while it runs."""
    params = connection.get_connection_params()
    params.pop("cursor_factory")  # a plain psycopg cursor: no tenant tables are touched here
    with psycopg.connect(**params) as holder:  # commits (releasing the lock) on exit
        if wait:
            holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
            yield True
        else:
            yield holder.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", [key]
            ).fetchone()[0]


@contextmanager
def tenant_write_session(schema_name: str) -> Iterator[None]:
    """Hold the tenant's write lock for a whole import (several transactions)."""
    with held_lock(_write_lock_key(schema_name)):
        yield


def tenant_write_idle(schema_name: str) -> bool:
    """Whether nobody holds the tenant's write lock (no import is running there now)."""
    with held_lock(_write_lock_key(schema_name), wait=False) as free:
        return free


def tenant_write_lock() -> None:
    """Wait for the current tenant's running import, then hold its write lock to the end of
    the current transaction (a rollup refresh, a purge)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [_write_lock_key(connection.schema_name)]
        )


@contextmanager
def waiting_briefly(busy: Callable[[str], Exception]) -> Iterator[None]:
    """Lock waits in the block give up after ``RENKEI_LOCK_WAIT_SECONDS``, raising
    ``busy(message)``: the caller's own error, whose message its page already shows, saying
    that an import is running. For changes made from a page: an import holds the tenant's
    write lock, and the rows of the pupils its roster changes, to its COMMIT, minutes for a
    city, and a request waiting that long ends at the server's timeout with nothing saved
    and nothing said. The limit is the transaction's own setting (a pooler in transaction
    mode keeps it), set back when the block ends; after ``busy`` the transaction is aborted,
    to be rolled back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        before = cursor.fetchone()[0]
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [f"{round(settings.RENKEI_LOCK_WAIT_SECONDS * 1000)}ms"],
        )
    try:
        yield
    except OperationalError as e:
        if isinstance(e.__cause__, psycopg.errors.LockNotAvailable):
            raise busy(
                _(
                    "この自治体のデータを取り込み中のため、いまは保存できませんでした。"
                    "取り込みが終わってから、もう一度お試しください（管理 › 取り込みで進み具合を確認できます）。"
                )
            ) from e
        raise
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


def tenant_rollup_lock() -> None:
    """Hold the current tenant's rollup lock to the end of the current transaction: one rollup
    refresh at a time (``edudata.rollups.refresh`` takes it). Two at once would each delete
    the rows they see and insert what they computed, neither seeing the other's: a cell
    counted twice, or a pupil's row refused as a duplicate (an opt-out failing).

    Taken last, when the refresh starts, as an import takes it: never wait here holding a
    lock an import needs to finish. An import's checks of the pupils of the rows it writes
    (its marks, then its rollup rows at COMMIT) hold those pupils FOR KEY SHARE to its
    COMMIT, so a change that locks its pupil's row first locks it FOR NO KEY UPDATE, which
    those checks pass, never FOR UPDATE."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"renkei-rollups:{connection.schema_name}"],
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
