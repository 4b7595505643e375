"""tenants.context.waiting_briefly: lock waits in its block end after a few seconds, the
transaction's later waits (an opt-out's wait for an import's final refresh) do not."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from renkei.tenants.context import waiting_briefly

pytestmark = pytest.mark.django_db


def lock_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


def test_the_limit_holds_in_the_block_only(settings):
    settings.RENKEI_LOCK_WAIT_SECONDS = 1.5
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '42s'")
    with waiting_briefly(ValueError):
        assert lock_timeout() == "1500ms"
    assert lock_timeout() == "42s"


def test_another_database_error_is_not_called_an_import(settings):
    """Only a lock wait that ran out is said to be an import; any other error stays what it is."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '10ms'")
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            waiting_briefly(ValueError),
        ):
            cursor.execute("SELECT pg_sleep(1)")
