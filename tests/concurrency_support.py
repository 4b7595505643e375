"""Races in tests: work on database connections of their own, in threads, and seeing that
one of them waits on a lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


def in_own_connection(work, seconds: float = 120.0):
    """Run ``work`` in a thread of its own, on its own connection, and return what it returns
    (None if it raised or did not end in ``seconds``): what it writes commits at once, and it
    sees what the test's own transaction would hide."""
    result: list = []

    def run() -> None:
        try:
            result.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(seconds)
    return result[0] if result else None


def in_thread(work, failures: list) -> threading.Thread:
    """Start ``work`` in a thread of its own, on its own connection; what it raises is added
    to ``failures`` for the test to assert on."""

    def run() -> None:
        try:
            work()
        except BaseException as e:
            failures.append(e)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


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


@contextmanager
def holding(sql: str, params: list) -> Iterator[None]:
    """Run ``sql`` in a transaction of a connection of its own, kept open while the block runs:
    the locks it took are held (an import's, say) and released at the end."""
    own = connection.get_connection_params()
    own.pop("cursor_factory")  # a plain psycopg connection
    with psycopg.connect(**own) as other:
        other.execute(sql, params)
        yield
        other.rollback()
