"""django-tenants' PostgreSQL backend, with the tenant's schema sent with every statement
instead of set once on the connection.

django-tenants routes a connection with a session-level ``SET search_path``. Behind a pooler
in transaction mode (PgBouncer ``pool_mode = transaction``, RDS Proxy) the session is not
ours: after each transaction the server connection serves another client, so a statement can
run with the search_path someone else set, and one municipality's rows are read or written in
another's schema (django-tenants issues #447, #545, #732, #1112).

Here every statement reaches the server as one message ``SET LOCAL search_path TO "m131130",
"public"; <statement>``. PostgreSQL runs a message of several statements as one transaction
when none is open, and inside an open transaction ``SET LOCAL`` lasts until it ends: either
way the schema and the statement share a transaction, which no pooler splits, and nothing is
left on the server connection afterwards. Nothing is cached, so nothing can go stale (after
ROLLBACK TO SAVEPOINT, on a reconnect), and it costs no round trip (django-tenants sends its
SET as a statement of its own). It is always on: one code path with or without a pooler.

Two things cannot carry the prefix, so they must run inside a transaction (``atomic``), where
the schema is set just before them, and refuse to run outside one: COPY, and server-side
cursors (``QuerySet.iterator()``; outside a transaction it reads through an ordinary cursor).
In a psycopg pipeline (one statement per message, all of them one transaction up to its Sync)
the schema goes as a statement of its own just before each one. A cursor that would not send
the schema at all (its class replaced under the connection) is refused.
Several statements in one message need client-side binding (Django's default); prepared
statements stay off (Django's default), since a pooler in transaction mode loses them too.
"""

from __future__ import annotations

import re

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql.base import Cursor
from django.db.utils import NotSupportedError
from django_tenants.postgresql_backend import base
from django_tenants.utils import quote_schema_name
from psycopg import sql

# Transaction control touches no table, and after an error (an aborted transaction) ROLLBACK TO
# SAVEPOINT is the one statement PostgreSQL still runs: a SET before it would fail, and it with it.
TRANSACTION_CONTROL = re.compile(
    r"\s*(SAVEPOINT|RELEASE|ROLLBACK|COMMIT|BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE
)
OUTSIDE_TRANSACTION = (
    "{what} runs only inside a transaction (transaction.atomic): it cannot carry the tenant's "
    "schema itself, and behind a pooler in transaction mode nothing else would carry it."
)


class RoutedCursor(Cursor):
    """Django's psycopg cursor (client-side binding), each statement preceded by the schema
    of the Django connection it belongs to."""

    def execute(self, query, params=None, **kwargs):
        routing = self.connection.tenant_routing
        prefix = routing.search_path_prefix()
        if not prefix or (isinstance(query, str) and TRANSACTION_CONTROL.match(query)):
            return super().execute(query, params, **kwargs)
        if self.connection.pgconn.pipeline_status:
            # A pipeline sends one statement per message, and all of them up to its Sync
            # run in one transaction: the schema goes first, as a statement of its own.
            routing.set_search_path_in_pipeline()
            return super().execute(query, params, **kwargs)
        super().execute(_prefixed(prefix, query, params), params, **kwargs)
        self.nextset()  # the caller's result, after SET's
        return self

    def executemany(self, query, params_seq, *, returning: bool = False) -> None:
        # psycopg pipelines executemany through the extended protocol, which takes one
        # statement per message: run them one by one, each with its schema.
        if returning:
            raise NotSupportedError("executemany(returning=True) is not supported here")
        for params in params_seq:
            self.execute(query, params)

    def copy(self, statement, params=None, **kwargs):
        self.connection.tenant_routing.set_search_path_for_transaction("COPY")
        return super().copy(statement, params, **kwargs)

    def stream(self, *args, **kwargs):
        raise NotSupportedError(
            "cursor.stream() cannot carry the tenant's schema: use QuerySet.iterator() "
            "inside transaction.atomic()"
        )


def _prefixed(prefix: str, query, params):
    if params is not None:  # with parameters, % marks a placeholder
        prefix = prefix.replace("%", "%%")
    if isinstance(query, sql.Composable):
        return sql.SQL(prefix) + query
    if isinstance(query, bytes):
        return prefix.encode() + query
    return prefix + query


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        options = self.settings_dict["OPTIONS"]
        if options.get("server_side_binding") or options.get("pool"):
            raise ImproperlyConfigured(
                "renkei.tenants.postgresql_backend sends the tenant's schema in the same message "
                "as each statement: it needs client-side binding and no psycopg pool in "
                "DATABASES OPTIONS (use PgBouncer for pooling, infra/README.md)"
            )
        params = super().get_connection_params()
        params["cursor_factory"] = RoutedCursor
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.tenant_routing = self  # what RoutedCursor asks for the schema
        return connection

    def search_path_prefix(self) -> str:
        """``SET LOCAL search_path TO ...; `` for the current tenant (or public); empty on the
        maintenance connection that creates and drops databases (statements that cannot run
        in a transaction, and no tenant tables there)."""
        if self.alias == NO_DB_ALIAS:
            return ""
        if not self.schema_name:
            raise ImproperlyConfigured("Database schema not set: call set_schema() or set_tenant()")
        paths = ", ".join(quote_schema_name(s) for s in self._get_cursor_search_paths())
        return f"SET LOCAL search_path TO {paths}; "

    def set_search_path_for_transaction(self, what: str) -> None:
        """Set the schema for the rest of the open transaction, before a statement that cannot
        carry it (COPY, a server-side cursor's DECLARE)."""
        if self.connection.autocommit:
            raise NotSupportedError(OUTSIDE_TRANSACTION.format(what=what))
        prefix = self.search_path_prefix()
        if prefix:
            psycopg.ClientCursor(self.connection).execute(prefix)

    def set_search_path_in_pipeline(self) -> None:
        paths = ", ".join(quote_schema_name(s) for s in self._get_cursor_search_paths())
        psycopg.ClientCursor(self.connection).execute(
            "SELECT set_config('search_path', %s, true)", [paths]
        )

    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if name is None and not isinstance(cursor, RoutedCursor):
            # Something replaced the connection's cursor factory (a tracer instrumenting an
            # open connection): its statements would run in whatever schema the server
            # connection has. Refuse rather than guess.
            raise ImproperlyConfigured(
                f"the database connection makes {type(cursor).__name__} cursors, which do not "
                "send the tenant's schema: wrap RoutedCursor instead of replacing it"
            )
        return cursor

    def _handle_search_path(self, cursor=None):
        # django-tenants calls this for every cursor it opens, to SET the session's
        # search_path. Statements carry the schema instead (RoutedCursor); only a named
        # (server-side) cursor, passed as None, needs it set for its transaction.
        if cursor is None:
            self.set_search_path_for_transaction("A server-side cursor")

    def chunked_cursor(self):
        # A server-side cursor lives on one server connection: only a transaction keeps it
        # there behind a pooler (Django would use WITH HOLD outside one). Outside, an ordinary
        # cursor reads the whole result.
        if self.get_autocommit():
            return self._cursor()
        return super().chunked_cursor()
