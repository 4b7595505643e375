"""Seeing, from a test, that another connection waits on a lock."""

from __future__ import annotations

import time

from django.db import connection


def someone_waits_on_an_advisory_lock(seconds: float = 30.0) -> bool:
    """True once a session of the test database waits on an advisory lock (the tenant write
    lock), False after ``seconds``."""
    return someone_waits_on_a_lock(seconds, only_advisory=True)


def someone_waits_on_a_lock(seconds: float = 30.0, *, only_advisory: bool = False) -> bool:
    """True once a session of the test database waits on a lock (any heavyweight lock: a
    row's, a transaction's, an advisory one), False after ``seconds``."""
    advisory = " AND wait_event = 'advisory'" if only_advisory else ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # Activity is a snapshot per transaction, and the test runs in one: drop it.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                f"{advisory} AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False
