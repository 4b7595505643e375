"""Telling, from a test, whether the database is a Citus coordinator (docs/scaling.md): the
suite runs on plain PostgreSQL and, pointed at a coordinator, on Citus; the few tests whose
expectations differ assert each database's own behaviour."""

from __future__ import annotations

from django.db import connection


def on_citus() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        return cursor.fetchone() is not None
