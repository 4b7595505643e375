"""The backend sends the tenant's schema with every statement (renkei.tenants.postgresql_backend),
so nothing depends on what a previous transaction left on the server connection. These hold
without a pooler; tests/tenants/test_transaction_pooling.py runs the same behind PgBouncer."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.utils import NotSupportedError
from django.test import Client

from renkei.edudata.models import School
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db


def school(code: str, name: str) -> School:
    return School.objects.create(code=code, name=name, school_type="B1")


def test_a_search_path_left_on_the_session_does_not_route(shibuya, shinjuku):
    with in_tenant(shinjuku):
        school("B113204100011", "新宿の学校")
    with in_tenant(shibuya), connection.cursor() as cursor:
        # what another client of a pooled server connection could have left behind
        cursor.execute("SET search_path TO m131041")
        school("B113211300011", "渋谷の学校")
        assert list(School.objects.values_list("name", flat=True)) == ["渋谷の学校"]
    with in_tenant(shinjuku):
        assert list(School.objects.values_list("name", flat=True)) == ["新宿の学校"]


def test_after_a_rollback_to_savepoint_statements_stay_in_the_tenant(shibuya):
    # django-tenants #1262: a cached search_path went stale after ROLLBACK TO SAVEPOINT
    with in_tenant(shibuya), transaction.atomic():
        school("B113211300011", "一校")
        with pytest.raises(IntegrityError), transaction.atomic():
            school("B113211300011", "同じコード")
        school("B113211300022", "二校")
        assert sorted(School.objects.values_list("name", flat=True)) == ["一校", "二校"]


def test_copy_runs_only_inside_a_transaction(shibuya):
    columns = "COPY edudata_school (code, name, school_type) FROM STDIN"
    refused = []

    def copy_in_autocommit():  # the test's own connection is inside pytest-django's transaction
        try:
            with in_tenant(shibuya), connection.cursor() as cursor:
                with cursor.cursor.copy(columns) as copy:
                    copy.write_row(("B113211300011", "外", "B1"))
        except NotSupportedError as e:
            refused.append(str(e))
        finally:
            connection.close()

    thread = threading.Thread(target=copy_in_autocommit)
    thread.start()
    thread.join()
    assert refused and "only inside a transaction" in refused[0]
    with in_tenant(shibuya), transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(columns) as copy:
            copy.write_row(("B113211300022", "中", "B1"))
    with in_tenant(shibuya):
        assert list(School.objects.values_list("name", flat=True)) == ["中"]


def test_iterator_reads_the_tenant_inside_and_outside_a_transaction(shibuya, shinjuku):
    with in_tenant(shinjuku):
        school("B113204100011", "新宿の学校")
    with in_tenant(shibuya):
        school("B113211300011", "渋谷の学校")
        with transaction.atomic():  # a server-side cursor, declared in the tenant
            names = [s.name for s in School.objects.iterator(chunk_size=1)]
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_cursors")
                assert cursor.fetchone()[0] == 0  # closed once read
        assert names == ["渋谷の学校"]
        assert [s.name for s in School.objects.iterator()] == ["渋谷の学校"]


def test_options_that_would_lose_the_schema_are_refused(settings):
    from renkei.tenants.postgresql_backend.base import DatabaseWrapper

    for options in ({"server_side_binding": True}, {"pool": True}):
        wrapper = DatabaseWrapper({**connection.settings_dict, "OPTIONS": options})
        with pytest.raises(ImproperlyConfigured, match="client-side binding"):
            wrapper.get_connection_params()


def test_the_push_api_says_503_in_its_own_shape_when_the_database_is_out_of_reach(shibuya):
    def unreachable(execute, sql, params, many, context):
        raise OperationalError("server closed the connection unexpectedly")

    client = Client(raise_request_exception=False)
    with connection.execute_wrapper(unreachable):
        response = client.post("/m/131130/api/v1/imports", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"]["code"] == "unavailable"
    assert "データベースに一時的に接続できません" in response.json()["error"]["message"]


def test_statements_in_a_pipeline_run_in_the_tenant(shibuya, shinjuku):
    with in_tenant(shinjuku):
        school("B113204100011", "新宿の学校")
    with in_tenant(shibuya):
        school("B113211300011", "渋谷の学校")
        connection.ensure_connection()
        raw = connection.connection
        with raw.pipeline():  # one message per statement (the prefix cannot ride along)
            cursors = [raw.cursor(), raw.cursor()]
            cursors[0].execute("SELECT name FROM edudata_school")
            cursors[1].execute("SELECT current_schemas(false)")
        assert cursors[0].fetchall() == [("渋谷の学校",)]
        assert cursors[1].fetchall() == [(["m131130", "public"],)]


def test_a_cursor_that_would_not_send_the_schema_is_refused(shibuya):
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    routed, raw.cursor_factory = raw.cursor_factory, psycopg.ClientCursor
    try:
        with pytest.raises(ImproperlyConfigured, match="do not send the tenant's schema"):
            connection.cursor()
    finally:
        raw.cursor_factory = routed
