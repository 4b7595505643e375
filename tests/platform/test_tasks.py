"""Celery tasks: in-process by default (no broker), inside the tenant they carry; periodic
jobs fan out one task per tenant; and, when Redis answers on 127.0.0.1:6379, a real worker
(`celery -A renkei.site.celery:app worker`, prefork) runs tasks sent through Redis
against its own scratch database, with OpenTelemetry started after fork in its pool process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_support import query, renkei, scratch_database
from django.conf import settings
from django.db import connection

from renkei.connectors import tasks as connector_tasks
from renkei.edudata import tasks as edudata_tasks
from renkei.edudata.models import AttendancePupilMonth, ImportRun, Student
from renkei.platform.storage import LocalStorage
from renkei.site.celery import app
from renkei.tenants.codes import CodeError
from renkei.tenants.context import UnknownTenant, in_tenant

REDIS = ("127.0.0.1", 6379)
ROOT = Path(__file__).resolve().parents[2]


# -- in-process (no broker) ------------------------------------------------------------------


def test_no_broker_means_in_process():
    if os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("CELERY_BROKER_URL is set in this environment")
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
    assert app.conf.task_always_eager is True
    assert app.conf.task_eager_propagates is True


def test_broker_url_means_a_worker():
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from renkei.site.celery import app; "
            "print(app.conf.task_always_eager, app.conf.broker_url)",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.split() == ["False", "redis://127.0.0.1:6379/15"]


@pytest.mark.django_db
def test_import_task_runs_inside_its_tenant(synth_data, shibuya, shinjuku, home):
    result = connector_tasks.import_data.delay(
        "131130", "oneroster", paths=[str(synth_data / "oneroster")]
    )
    outcome = result.get()
    assert outcome["status"] == "succeeded" and outcome["tenant"] == "131130"
    assert outcome["rows_read"] == outcome["rows_accepted"] + outcome["rows_rejected"] > 0
    assert connection.schema_name == "public"  # restored
    with in_tenant(shibuya):
        run = ImportRun.objects.get(pk=outcome["run"])
        assert run.connector == "oneroster" and run.started_by == "task"
        assert Student.objects.count() == 20
    with in_tenant(shinjuku):
        assert not ImportRun.objects.exists() and not Student.objects.exists()


@pytest.mark.django_db
def test_import_task_reads_inputs_from_tenant_storage(synth_data, shibuya, home):
    storage = LocalStorage()
    keys = []
    for path in sorted((synth_data / "oneroster").glob("*.csv")):
        key = f"uploads/1/oneroster/{path.name}"
        with path.open("rb") as f:
            storage.save("131130", key, f)
        keys.append(key)
    outcome = connector_tasks.import_data.delay("131130", "oneroster", storage_keys=keys).get()
    assert outcome["status"] == "succeeded" and outcome["rows_accepted"] > 0
    with in_tenant(shibuya):
        assert Student.objects.count() == 20


@pytest.mark.django_db
def test_refresh_rollups_task(synth_data, shibuya, home):
    for connector, paths in (
        ("oneroster", [synth_data / "oneroster"]),
        ("c4th", sorted((synth_data / "c4th").glob("*.csv"))),
    ):
        assert (
            connector_tasks.import_data.delay(
                "131130", connector, paths=[str(p) for p in paths]
            ).get()["status"]
            == "succeeded"
        )
    with in_tenant(shibuya):
        before = AttendancePupilMonth.objects.count()
        assert before > 0
        AttendancePupilMonth.objects.all().delete()
    outcome = edudata_tasks.refresh_rollups.delay("131130").get()
    assert outcome == {"tenant": "131130", "school_years": [2025]}
    with in_tenant(shibuya):
        assert AttendancePupilMonth.objects.count() == before
    assert connection.schema_name == "public"


@pytest.mark.django_db
def test_purge_task_and_its_nightly_fan_out(school_world, monkeypatch):
    queued = []
    monkeypatch.setattr(
        edudata_tasks.purge_expired, "delay", lambda code, **kwargs: queued.append((code, kwargs))
    )
    codes = edudata_tasks.schedule_retention_purges.delay().get()
    assert codes == ["131041", "131130", "271004"]  # every tenant …
    assert queued == [(c, {"dry_run": False}) for c in codes]  # … one task each
    monkeypatch.undo()

    dry = edudata_tasks.purge_expired.delay("131130", dry_run=True, today="2025-06-01").get()
    assert dry["deleted"] == {"edudata.Student": 1} and dry["dry_run"] is True
    assert edudata_tasks.schedule_retention_purges.delay().get() == codes  # really runs
    with in_tenant(school_world["municipality"]):
        assert not Student.objects.filter(pk=school_world["old"].pk).exists()
        assert Student.objects.count() == 4


@pytest.mark.django_db
def test_nightly_msgraph_pull_for_tenants_with_settings(
    synth_data, shibuya, shinjuku, home, monkeypatch
):
    assert (
        connector_tasks.import_data.delay(
            "131130", "oneroster", paths=[str(synth_data / "oneroster")]
        ).get()["status"]
        == "succeeded"
    )
    settings_file = home / "connectors" / "131130" / "msgraph.yaml"
    settings_file.parent.mkdir(parents=True)
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("RENKEI_TEST_GRAPH_SECRET", secret)
    # Offline (exported report CSVs); the secret comes from the environment, not the file.
    settings_file.write_text(
        "tenant_id: contoso.onmicrosoft.com\n"
        "client_id: 00000000-0000-0000-0000-000000000000\n"
        "client_secret_env: RENKEI_TEST_GRAPH_SECRET\n"
        f"paths: ['{synth_data / 'msgraph'}']\n",
        encoding="utf-8",
    )
    (home / "connectors" / "131041").mkdir()  # a folder without settings: not pulled

    assert connector_tasks.msgraph_tenants() == ["131130"]
    assert connector_tasks.schedule_msgraph_pulls.delay().get() == ["131130"]
    with in_tenant(shibuya):
        run = ImportRun.objects.get(connector="msgraph")
        assert run.status == "succeeded" and run.starter == "nightly（定期実行）"
        assert run.rows_accepted > 0
        assert secret not in str(run.config) and run.config["client_secret"] == "********"
    with in_tenant(shinjuku):
        assert not ImportRun.objects.exists()


def test_config_file_env_reference_must_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv("RENKEI_NOT_SET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("client_secret_env: RENKEI_NOT_SET\n", encoding="utf-8")
    with pytest.raises(connector_tasks.ConfigError, match="RENKEI_NOT_SET"):
        connector_tasks.load_config(path)


@pytest.mark.django_db
@pytest.mark.parametrize("code, error", [("011002", UnknownTenant), ("131131", CodeError)])
def test_a_task_for_an_unknown_tenant_fails_clearly(code, error):
    with pytest.raises(error):
        edudata_tasks.refresh_rollups.delay(code)
    assert connection.schema_name == "public"


def test_beat_schedule_and_task_names():
    schedule = app.conf.beat_schedule
    assert schedule["retention-purge-nightly"]["task"] == "renkei.schedule_retention_purges"
    assert schedule["msgraph-pull-nightly"]["task"] == "renkei.schedule_msgraph_pulls"
    assert schedule["inbox-sweep"]["task"] == "renkei.schedule_inbox_sweeps"
    assert schedule["import-queue"]["task"] == "renkei.run_import_jobs"
    assert schedule["import-queue"]["schedule"].minute == set(range(60))
    for entry in schedule.values():
        assert entry["task"] in app.tasks
    assert schedule["retention-purge-nightly"]["schedule"].hour == {2}
    assert schedule["msgraph-pull-nightly"]["schedule"].hour == {4}
    inbox = schedule["inbox-sweep"]["schedule"]  # every two minutes, day and night
    assert len(inbox.hour) == 24 and inbox.minute == set(range(0, 60, 2))
    assert app.conf.timezone == "Asia/Tokyo"
    assert {
        "renkei.import",
        "renkei.refresh_rollups",
        "renkei.purge_expired",
        "renkei.schedule_rollup_refresh",
        "renkei.pull_msgraph",
        "renkei.sweep_inbox",
    } <= set(app.tasks)


# -- a real worker through Redis ---------------------------------------------------------------


def redis_answers() -> str | None:
    """None if Redis answers PING on 127.0.0.1:6379, else why not."""
    try:
        with socket.create_connection(REDIS, timeout=1) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError as e:
        return f"no Redis on {REDIS[0]}:{REDIS[1]} ({e})"
    return None if reply.startswith(b"+PONG") else f"Redis answered {reply!r} to PING"


class OTLPReceiver(ThreadingHTTPServer):
    """Collects OTLP/HTTP protobuf trace requests."""

    def __init__(self):
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def spans(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: _value(a.value) for a in span.attributes}
                        yield resource, span.name, attributes


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.mark.slow
def test_real_worker_through_redis(tmp_path, synth_data):
    why_not = redis_answers()
    if why_not:
        pytest.skip(
            f"{why_not}: start Redis (e.g. `redis-server`) to run tasks through a "
            "real broker and worker"
        )
    from celery import Celery

    broker = "redis://127.0.0.1:6379/15"
    queue = f"renkei-test-{uuid.uuid4().hex[:8]}"
    receiver = OTLPReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    client = Celery("renkei-test-client", broker=broker, backend=broker)
    client.conf.update(result_expires=600, task_serializer="json", accept_content=["json"])
    with scratch_database(tmp_path / "home") as (env, dbname):
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        worker_env = {
            **env,
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": broker,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }
        worker_env.pop("OTEL_SERVICE_NAME", None)
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log_file:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "renkei.site.celery:app",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "-Q",
                    queue,
                    "-n",
                    f"{queue}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                ],
                env=worker_env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:

            def run(name, *args, **kwargs):
                return client.send_task(name, args=args, kwargs=kwargs, queue=queue).get(
                    timeout=180
                )

            roster = run("renkei.import", "131130", "oneroster", [str(synth_data / "oneroster")])
            assert roster["status"] == "succeeded", log_path.read_text(errors="replace")
            attendance = run(
                "renkei.import",
                "131130",
                "c4th",
                [str(p) for p in sorted((synth_data / "c4th").glob("*.csv"))],
            )
            assert attendance["status"] == "succeeded" and attendance["rows_accepted"] > 0
            assert run("renkei.refresh_rollups", "131130")["school_years"] == [2025]
            assert run("renkei.purge_expired", "131130", dry_run=True)["dry_run"] is True
            with pytest.raises(Exception, match="011002"):
                run("renkei.refresh_rollups", "011002")  # not onboarded: fails in the worker

            runs = query(
                dbname,
                "SELECT connector, status, started_by FROM m131130.edudata_importrun ORDER BY id",
            )
            assert runs == [("oneroster", "succeeded", "task"), ("c4th", "succeeded", "task")]
            forbidden = {
                v
                for row in query(
                    dbname,
                    "SELECT family_name, given_name, family_name_kana, given_name_kana, "
                    "source_id, principal_name FROM m131130.edudata_studentidentity",
                )
                for v in row
                if v and len(v) >= 2
            }
            forbidden |= {
                p for (p,) in query(dbname, "SELECT pseudonym FROM m131130.edudata_student")
            }
            assert len(forbidden) > 40
        finally:
            worker.send_signal(signal.SIGTERM)  # warm shutdown: pool processes flush spans
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            receiver.shutdown()
            _drop_queue(queue)

    worker_log = log_path.read_text(errors="replace")
    assert "renkei.import" in worker_log
    spans = list(receiver.spans())
    assert spans, f"the worker exported no spans:\n{worker_log[-3000:]}"
    assert {r["service.name"] for r, _, _ in spans} == {"renkei-worker"}
    names = {name for _, name, _ in spans}
    assert {"run/renkei.import", "run/renkei.refresh_rollups", "renkei.connector.run"} <= names
    task_tenants = sorted(a.get("renkei.tenant.code") for _, n, a in spans if n.startswith("run/"))
    # Four tasks ran in 131130; the one for 011002 never entered a tenant.
    assert task_tenants == ["131130"] * 4 + ["public"], task_tenants
    imports = [a for _, n, a in spans if n == "renkei.connector.run"]
    assert {(a["renkei.connector.name"], a["renkei.import.rows_read"]) for a in imports} == {
        ("oneroster", roster["rows_read"]),
        ("c4th", attendance["rows_read"]),
    }
    sql = [a for _, _, a in spans if "db.statement" in a]
    assert sql and {a["renkei.tenant.code"] for a in sql} <= {"131130", "public"}
    assert all(a.get("renkei.tenant.code") for _, _, a in spans)
    exported = b"".join(receiver.bodies)
    leaked = sorted(v for v in forbidden if v.encode() in exported or v in worker_log)
    assert not leaked, f"personal data in the worker's spans or log: {leaked[:5]}"


def _drop_queue(queue: str) -> None:
    try:
        import redis
    except ImportError:
        return
    r = redis.Redis(host=REDIS[0], port=REDIS[1], db=15)
    r.delete(queue, f"_kombu.binding.{queue}")


def test_nothing_personal_in_task_results():
    """Results are logged by the worker: they hold codes and counts only."""
    run = ImportRun(
        pk=5,
        connector="c4th",
        status="succeeded",
        rows_read=3,
        rows_accepted=2,
        rows_rejected=1,
        message="児童生徒ID「C001」…",
    )
    result = connector_tasks._result("131130", "c4th", run)
    assert "C001" not in str(result)
    assert set(result) == {
        "tenant",
        "connector",
        "run",
        "status",
        "rows_read",
        "rows_accepted",
        "rows_rejected",
    }


@pytest.mark.django_db
def test_unexpected_errors_leave_a_task_without_their_message(shibuya, monkeypatch):
    """A database error quotes row values; a failed task keeps only its type and place."""
    from django.db import IntegrityError

    def fail(years):
        raise IntegrityError(
            "duplicate key value violates unique constraint\n"
            "DETAIL:  Key (source_id)=(C0001) already exists."
        )

    monkeypatch.setattr(edudata_tasks.rollups, "refresh", fail)
    with pytest.raises(edudata_tasks.TaskFailed) as caught:
        edudata_tasks.refresh_rollups.delay("131130", [2025])
    message = str(caught.value)
    assert "C0001" not in message and "DETAIL" not in message
    assert message.startswith("django.db.utils.IntegrityError at test_tasks.py:")
    assert message.endswith("(tenant 131130)")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert connection.schema_name == "public"


def test_config_file_syntax_errors_do_not_quote_the_file(tmp_path):
    path = tmp_path / "msgraph.yaml"
    path.write_text("tenant_id: contoso\nclient_secret: 'very-secret\n  : [\n", encoding="utf-8")
    with pytest.raises(connector_tasks.ConfigError) as caught:
        connector_tasks.load_config(path)
    assert "very-secret" not in str(caught.value) and "msgraph.yaml" in str(caught.value)
    assert caught.value.__suppress_context__
