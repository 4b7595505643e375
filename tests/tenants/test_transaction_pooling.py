"""Behind a real PgBouncer in transaction mode, with fewer server connections than clients:
requests, writes and tasks of two municipalities interleave on the same server connections
and each reads and writes only its own schema; the pooler restarted in the middle of a
request's transaction gives a clear 503 and leaves nothing of that transaction behind.

The data here is committed (the pooler's connections must see it), so every database access
runs on a thread of its own, with its own connection in autocommit (the test's own connection
holds pytest-django's transaction), and each test removes what it wrote."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test import Client
from pgbouncer_support import POOL_SIZE, PgBouncer

from renkei.edudata.models import ConnectorSetting, School, Student
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Municipality

CODES = ("131130", "131041")
PUPILS = {"131130": 12, "131041": 17}  # different, so a row in the wrong schema shows
ROUNDS = 12

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup):
    bouncer = PgBouncer.start_in_front_of(connection.settings_dict)
    yield bouncer
    bouncer.remove()


@pytest.fixture
def through_pgbouncer(pgbouncer):
    """New connections (every thread's own) go through the pooler: each is made from the same
    settings dict."""
    settings_dict = connection.settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT")}
    settings_dict.update(HOST="127.0.0.1", PORT=str(pgbouncer.port))
    try:
        yield pgbouncer
    finally:
        settings_dict.update(saved)


def on_own_connection(function, *args):
    """``function(*args)`` on a new thread (its own connection, closed after); its result, or
    its exception raised here."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as e:
            outcome["error"] = e
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=300)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _empty_tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM pg_trigger t "
            "WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)",  # the append-only tables stay
            [schema],
        )
        tables = [row[0] for row in cursor.fetchall()]
        empty = set()
        for table in tables:
            cursor.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{schema}"."{table}")')
            if cursor.fetchone()[0]:
                empty.add(table)
    return empty


@contextmanager
def committed_world():
    """The two municipalities with one school each and an admin of both; afterwards every
    tenant table that was empty is emptied again, and the admin and the audit events of the
    test removed (other tests count the events they expect)."""
    from django.contrib.auth import get_user_model

    from renkei.accounts.models import Membership

    def make():
        municipalities = {m.code: m for m in Municipality.objects.filter(code__in=CODES)}
        empty = {code: _empty_tables(m.schema_name) for code, m in municipalities.items()}
        assert all("edudata_school" in tables for tables in empty.values())
        since = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        user = get_user_model().objects.create_user("pooling-admin")
        for code, municipality in municipalities.items():
            Membership.objects.create(user=user, role="tenant_admin", municipality=municipality)
            with in_tenant(municipality):
                School.objects.create(
                    code=f"B11321{code}0", name=f"school-{code}", school_type="B1"
                )
        return municipalities, user, empty, since

    def remove(municipalities, user, empty, since):
        with transaction.atomic(), connection.cursor() as cursor:
            for code, municipality in municipalities.items():
                tables = ", ".join(f'"{municipality.schema_name}"."{t}"' for t in empty[code])
                cursor.execute(f"TRUNCATE {tables}")
            # The trail is append-only (a trigger): lifted for this cleanup only.
            trigger = "audit_event_no_update_or_delete"
            cursor.execute(f"ALTER TABLE platform_auditevent DISABLE TRIGGER {trigger}")
            cursor.execute("DELETE FROM platform_auditevent WHERE id > %s", [since])
            cursor.execute(f"ALTER TABLE platform_auditevent ENABLE TRIGGER {trigger}")
        user.delete()

    municipalities, user, empty, since = on_own_connection(make)
    try:
        yield municipalities, user
    finally:
        on_own_connection(remove, municipalities, user, empty, since)


def run_threads(work) -> list[str]:
    """Run each callable in its own thread (its own Django connection); their failures."""
    failures: list[str] = []

    def run(job):
        try:
            job()
        except BaseException as e:
            failures.append(f"{job.__name__}: {type(e).__name__}: {e}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,), name=job.__name__) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return failures


def test_tenants_interleave_on_shared_server_connections(through_pgbouncer, tmp_path):
    from renkei.connectors import tasks as connector_tasks
    from renkei.demo.synth import generate
    from renkei.edudata import tasks as edudata_tasks

    for code, pupils in PUPILS.items():
        generate(code, tmp_path / code, students=pupils, days=5)
    with committed_world() as (municipalities, user):
        pids: dict[str, set[int]] = {}  # server connections each client thread was given

        def seen(name: str) -> None:
            pids.setdefault(name, set()).add(backend_pid())

        def writer(code: str):
            def job():
                other = next(c for c in CODES if c != code)
                with in_tenant(municipalities[code]):
                    for n in range(ROUNDS):
                        # autocommit: the INSERT is a transaction of its own
                        School.objects.create(
                            code=f"B11{code}{n:04d}", name=f"written-{code}-{n}", school_type="B1"
                        )
                        with transaction.atomic():  # several statements, one transaction
                            seen(f"writer-{code}")
                            names = set(School.objects.values_list("name", flat=True))
                        assert {f"school-{code}", f"written-{code}-{n}"} <= names, names
                        assert not any(other in name for name in names), names

            job.__name__ = f"writer_{code}"
            return job

        def pages():
            client = Client()
            client.force_login(user)
            for _ in range(ROUNDS):
                for code in CODES:
                    other = next(c for c in CODES if c != code)
                    response = client.get(f"/m/{code}/")
                    body = response.content.decode()
                    assert response.status_code == 200, (code, response.status_code)
                    assert f"school-{code}" in body and f"school-{other}" not in body, code
                    assert f"written-{other}" not in body, code

        def imports():
            for code in CODES:  # one at a time: each holds a second server connection for its lock
                result = connector_tasks.import_data.delay(
                    code, "oneroster", paths=[str(tmp_path / code / "oneroster")]
                ).get()
                assert result["status"] == "succeeded", result
                edudata_tasks.refresh_rollups.delay(code).get()
                seen("imports")

        failures = run_threads([writer("131130"), writer("131041"), pages, imports])
        assert failures == [], [*failures, through_pgbouncer.log()]

        # then: the clients shared the pool's server connections...
        used = set().union(*pids.values())
        assert len(used) <= POOL_SIZE < len(pids), pids
        assert any(sum(pid in p for p in pids.values()) > 1 for pid in used), pids

        # ...and every row is in its own municipality's schema, exactly
        def stored(municipality):
            with in_tenant(municipality):
                return set(School.objects.values_list("name", flat=True)), Student.objects.count()

        for code, municipality in municipalities.items():
            schools, pupils = on_own_connection(stored, municipality)
            imported = {name for name in schools if name.startswith(municipality.name)}
            assert imported, schools  # the import's own schools (区立…学校), and nothing else
            assert schools - imported == {
                f"school-{code}",
                *(f"written-{code}-{n}" for n in range(ROUNDS)),
            }
            assert pupils == PUPILS[code]


MSGRAPH = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "abc-123",
    "client_secret": "s3cret",
    "authority_host": "https://login.microsoftonline.com",
    "graph_url": "https://graph.microsoft.com/v1.0",
    "days": "7",
    "format": "csv",
    "max_retries": "4",
    "timeout_seconds": "60",
    "enabled": "on",
}


def test_pooler_restarted_mid_transaction_is_a_503_and_nothing_is_written(through_pgbouncer):
    with committed_world() as (municipalities, user):
        shibuya = municipalities["131130"]
        since = on_own_connection(
            lambda: AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        )
        client = Client(raise_request_exception=False)
        statements: list[str] = []

        def restart_before_the_audit_event(execute, sql, params, many, context):
            # The setting is written; the pooler dies before the event that goes with it.
            statements.append(sql)
            if 'INSERT INTO "platform_auditevent"' in sql:
                through_pgbouncer.restart()
            return execute(sql, params, many, context)

        def save_settings(fault=None):
            client.force_login(user)
            if fault is None:
                return client.post("/m/131130/manage/connectors/msgraph/", MSGRAPH)
            with connection.execute_wrapper(fault):
                response = client.post("/m/131130/manage/connectors/msgraph/", MSGRAPH)
            connection.close_if_unusable_or_obsolete()  # what the end of a request does
            return response

        def saved():
            with in_tenant(shibuya):
                settings = ConnectorSetting.objects.filter(connector="msgraph").count()
            events = AuditEvent.objects.filter(pk__gt=since, action="connector.settings").count()
            return settings, events

        # when: the pooler restarts in the middle of the action's transaction
        response = on_own_connection(save_settings, restart_before_the_audit_event)

        # then: a clear 503, in Japanese, with when to try again
        assert any('"edudata_connectorsetting"' in s for s in statements), statements
        assert response.status_code == 503
        body = response.content.decode()
        assert "データベースに一時的に接続できません" in body and "保存されていません" in body
        assert response["Retry-After"]
        # and nothing of the transaction: neither the setting nor its audit event
        assert on_own_connection(saved) == (0, 0)

        # when: the same request again, through the restarted pooler
        response = on_own_connection(save_settings)
        # then: it is saved, with its event (so the check above could see them)
        assert response.status_code == 302, response.content.decode()[:500]
        assert on_own_connection(saved) == (1, 1)
