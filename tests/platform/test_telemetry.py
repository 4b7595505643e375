"""OpenTelemetry: spans and metrics around imports, requests, SQL, tasks and federation
fan-out, each tagged with the tenant code, and no personal data anywhere in them or in the
log. OTLP export (gRPC and HTTP) is checked in a subprocess against local receivers: the
providers can be set only once per process; the ``otel`` fixture (tests/conftest.py, shared
with the leak walk) sets them (in-memory exporter and metric reader) and uninstruments the
libraries when a module is done."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.db import connection
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from renkei.connectors import jobs, registry
from renkei.connectors.pipeline import do_import
from renkei.connectors.uploads import Upload
from renkei.demo.synth import generate
from renkei.platform import telemetry
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

TEST_ACTOR = Actor.system("test")

ROOT = Path(__file__).resolve().parents[2]
TENANT = telemetry.TENANT_ATTRIBUTE


@pytest.fixture
def spans(otel):
    exporter, _ = otel
    exporter.clear()
    return exporter


@pytest.fixture
def metric_reader(otel):
    return otel[1]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate("131130", out, students=30, days=15)
    return out


@pytest.fixture
def all_logs(caplog):
    """Every logger at DEBUG, captured."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def import_everything(municipality, data: Path) -> list:
    traced = do_import  # traced by the pipeline itself, like every entry point
    runs = [
        traced("oneroster", municipality, actor=TEST_ACTOR, paths=[data / "oneroster"]),
        traced("c4th", municipality, actor=TEST_ACTOR, paths=sorted((data / "c4th").glob("*.csv"))),
        traced("msgraph", municipality, actor=TEST_ACTOR, paths=[data / "msgraph"]),
    ]
    assert [r.status for r in runs] == ["succeeded"] * 3, [r.message for r in runs]
    return runs


def personal_data(municipality) -> set[str]:
    """Names, kana, source ids, principal names and pseudonyms of the tenant's pupils."""
    from renkei.edudata.models import Student, StudentIdentity

    values: set[str] = set()
    with in_tenant(municipality):
        for row in StudentIdentity.objects.values_list(
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "source_id",
            "principal_name",
        ):
            family, given, family_kana, given_kana, source_id, upn = row
            values |= {
                source_id,
                upn,
                f"{family} {given}",
                f"{family}{given}",
                f"{family_kana} {given_kana}",
                f"{family_kana}{given_kana}",
            }
            # Single characters (林, 蓮) would match ordinary words: full names cover them.
            values |= {v for v in (family, given, family_kana, given_kana) if len(v) >= 2}
        values |= set(Student.objects.values_list("pseudonym", flat=True))
    return {v for v in values if v and v.strip()}


def span_text(span: ReadableSpan) -> str:
    parts = [
        span.name,
        repr(dict(span.attributes or {})),
        repr(dict(span.resource.attributes)),
        str(span.status.description),
    ]
    for event in span.events:
        parts += [event.name, repr(dict(event.attributes or {}))]
    for link in span.links:
        parts.append(repr(dict(link.attributes or {})))
    return "\n".join(parts)


def metrics_text(reader: InMemoryMetricReader) -> str:
    data = reader.get_metrics_data()
    parts = []
    for resource_metrics in data.resource_metrics if data else ():
        parts.append(repr(dict(resource_metrics.resource.attributes)))
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                parts.append(metric.name)
                for point in metric.data.data_points:
                    parts.append(repr(dict(point.attributes or {})))
    return "\n".join(parts)


def log_text(caplog) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def assert_nothing_personal(forbidden: set[str], spans, reader, caplog) -> None:
    assert len(forbidden) > 50  # the check means something
    places = {
        "spans": "\n".join(span_text(s) for s in spans),
        "metrics": metrics_text(reader),
        "log": log_text(caplog),
    }
    for where, text in places.items():
        leaked = sorted(v for v in forbidden if v in text)
        assert not leaked, f"personal data in {where}: {leaked[:10]}"


def metric_points(reader, name: str) -> list:
    data = reader.get_metrics_data()
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


# -- imports ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_import_is_traced_and_counted_without_personal_data(
    otel, spans, metric_reader, all_logs, synth_data, shibuya
):
    runs = import_everything(shibuya, synth_data)
    finished = spans.get_finished_spans()

    connector_runs = [s for s in finished if s.name == telemetry.CONNECTOR_RUN_SPAN]
    assert [
        (
            s.attributes[telemetry.CONNECTOR_ATTRIBUTE],
            s.attributes[TENANT],
            s.attributes[telemetry.ROWS_READ],
            s.attributes[telemetry.ROWS_ACCEPTED],
            s.attributes[telemetry.ROWS_REJECTED],
        )
        for s in connector_runs
    ] == [(r.connector, "131130", r.rows_read, r.rows_accepted, r.rows_rejected) for r in runs]
    assert all(s.status.status_code is StatusCode.UNSET for s in connector_runs)

    # The SQL of each run: descendants of its connector run span, all in the tenant.
    run_ids = {s.context.span_id for s in connector_runs}
    by_id = {s.context.span_id: s for s in finished}

    def run_of(s):
        while s.parent is not None and s.parent.span_id in by_id:
            if s.parent.span_id in run_ids:
                return s.parent.span_id
            s = by_id[s.parent.span_id]
        return None

    sql = [s for s in finished if "db.statement" in (s.attributes or {}) and run_of(s)]
    assert len(sql) > 20
    assert {s.attributes[TENANT] for s in sql} == {"131130"}, [
        s.attributes["db.statement"] for s in sql if s.attributes[TENANT] != "131130"
    ]
    assert all(s.attributes.get(TENANT) for s in finished)  # every span carries the tenant
    assert not [s for s in sql if "db.statement.parameters" in s.attributes]

    accepted = {
        (p.attributes[telemetry.CONNECTOR_ATTRIBUTE], p.attributes[TENANT]): p.value
        for p in metric_points(metric_reader, "renkei.import.rows")
        if p.attributes["renkei.import.outcome"] == "accepted"
    }
    for r in runs:
        assert accepted[(r.connector, "131130")] >= r.rows_accepted
    statuses = {
        (p.attributes[telemetry.CONNECTOR_ATTRIBUTE], p.attributes["renkei.import.status"])
        for p in metric_points(metric_reader, "renkei.import.runs")
    }
    assert {("oneroster", "succeeded"), ("c4th", "succeeded"), ("msgraph", "succeeded")} <= statuses
    assert metric_points(metric_reader, "renkei.import.duration")

    assert_nothing_personal(personal_data(shibuya), finished, metric_reader, all_logs)


@pytest.mark.django_db
def test_import_task_span_carries_the_tenant(
    otel, spans, synth_data, shibuya, tmp_path, monkeypatch
):
    from renkei.connectors import tasks

    monkeypatch.setenv("RENKEI_HOME", str(tmp_path))
    outcome = tasks.import_data.delay(
        "131130", "oneroster", paths=[str(synth_data / "oneroster")]
    ).get()
    assert outcome["status"] == "succeeded"
    finished = spans.get_finished_spans()
    task = [s for s in finished if s.name == "run/renkei.import"]
    assert len(task) == 1 and task[0].attributes[TENANT] == "131130"
    run = next(s for s in finished if s.name == telemetry.CONNECTOR_RUN_SPAN)
    assert run.parent.span_id == task[0].context.span_id


@pytest.mark.django_db
def test_every_import_is_traced_once_and_failures_are_marked(otel, spans, shibuya, tmp_path):
    run = do_import("c4th", shibuya, actor=TEST_ACTOR, paths=[tmp_path / "missing.csv"])
    assert run.status == "failed"
    (span,) = [s for s in spans.get_finished_spans() if s.name == telemetry.CONNECTOR_RUN_SPAN]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is None  # scrubbed: messages may quote data
    assert span.attributes[telemetry.IMPORT_STATUS] == "failed"


@pytest.mark.django_db
def test_an_uploaded_import_is_traced_by_the_worker(otel, spans, shibuya, synth_data):
    paths = sorted((synth_data / "c4th").glob("*.csv"))
    jobs.do_queue_import(
        registry.get("c4th"),
        shibuya,
        actor=TEST_ACTOR,
        uploads=[Upload(p.name, p.open("rb")) for p in paths],
    )
    jobs.run_pending()
    (span,) = [s for s in spans.get_finished_spans() if s.name == telemetry.CONNECTOR_RUN_SPAN]
    assert span.attributes[telemetry.IMPORT_STATUS] == "succeeded"
    assert span.attributes[TENANT] == "131130"
    assert span.attributes[telemetry.ROWS_READ] > 0


# -- requests ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_spans_carry_the_tenant_they_were_routed_to(otel, spans, client, shibuya):
    client.get("/m/131130/?name=%E9%AB%99%E6%A9%8B")  # a query string with a name in it
    client.get("/")
    requests = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.attributes[TENANT] for s in requests] == ["131130", telemetry.PUBLIC]
    for s in requests:
        assert not {
            "http.target",
            "http.url",
            "url.full",
            "url.query",
            "http.user_agent",
            "net.peer.ip",
            "client.address",
        } & set(s.attributes)
        assert "%E9%AB%99" not in span_text(s)


@pytest.mark.django_db
def test_student_board_query_leaks_nothing(
    otel, spans, metric_reader, all_logs, client, synth_data, shibuya, make_user
):
    import importlib.util

    if importlib.util.find_spec("renkei.graphql.tenant.views") is None:
        pytest.skip("the tenant GraphQL API (renkei.graphql.tenant) is not built yet")
    from renkei.edudata.models import Student

    import_everything(shibuya, synth_data)
    with in_tenant(shibuya):
        pupil = Student.objects.select_related("school").order_by("pk").first()
        identity = pupil.identities.exclude(family_name="").first()
    teacher = make_user(
        "teacher-otel", "teacher", municipality=shibuya, schools=[pupil.school.code]
    )
    client.force_login(teacher)
    spans.clear()
    response = client.post(
        "/m/131130/graphql",
        content_type="application/json",
        data=json.dumps(
            {
                "query": 'query($id: ID!) { studentBoard(studentId: $id, asOf: "2025-06-30") { '
                'pupil { id name nameKana } attendance(since: "2025-04-01") { date status } '
                'm365Usage(since: "2025-04-01") { date app } } }',
                "variables": {"id": pupil.pk},
            }
        ),
    )
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    assert identity.family_name in body["data"]["studentBoard"]["pupil"]["name"]  # it flowed

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert len(server) == 1 and server[0].attributes[TENANT] == "131130"
    assert [s for s in finished if "db.statement" in s.attributes]
    assert_nothing_personal(personal_data(shibuya), finished, metric_reader, all_logs)


FEDERATION_QUERY = """{ prefecture(code: "13") {
  attendanceRate(schoolYear: 2025, byMunicipality: true) { __typename } } }"""


@pytest.mark.django_db
def test_federation_query_leaks_nothing(
    otel, spans, metric_reader, all_logs, client, synth_data, shibuya, shinjuku, make_user
):
    import importlib.util

    if importlib.util.find_spec("renkei.graphql.federation.views") is None:
        pytest.skip("the federation (renkei.graphql.federation) is not built yet")
    from renkei.tenants.models import Prefecture

    # The fan-out's threads have connections of their own and do not see this test's
    # uncommitted rows; the statements they run, and what they log and trace, are the same.
    import_everything(shibuya, synth_data)
    client.force_login(
        make_user("pref-otel", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    )
    spans.clear()
    response = client.post(
        "/federation/graphql",
        content_type="application/json",
        data=json.dumps({"query": FEDERATION_QUERY}),
    )
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert len(server) == 1 and server[0].attributes[TENANT] == telemetry.PUBLIC
    sql_tenants = {s.attributes[TENANT] for s in finished if "db.statement" in s.attributes}
    assert {"131130", "131041"} <= sql_tenants  # each municipality's work, in its schema
    for s in finished:  # per-tenant spans, where the fan-out makes them (tenant_span)
        if s.name == telemetry.TENANT_SPAN:
            assert s.attributes[TENANT] in {"131130", "131041"}
    assert_nothing_personal(personal_data(shibuya), finished, metric_reader, all_logs)


# -- federation fan-out, suppressed cells --------------------------------------------------------


@pytest.mark.django_db
def test_tenant_span_per_tenant_of_a_fan_out(otel, spans, shibuya, shinjuku):
    from renkei.edudata.models import AttendancePupilYear

    with telemetry.span("renkei.federation.query", metric="attendance.absence_days") as parent:
        for municipality in (shibuya, shinjuku):
            with telemetry.tenant_span(municipality.code), in_tenant(municipality):
                AttendancePupilYear.objects.count()
        # In a thread pool the context must be handed over explicitly.
        ctx = otel_context.get_current()
        with futures.ThreadPoolExecutor(1) as pool:
            pool.submit(_remote_tenant, ctx).result()
    finished = spans.get_finished_spans()
    children = [s for s in finished if s.name == telemetry.TENANT_SPAN]
    assert [(s.attributes[TENANT], s.attributes["renkei.tenant.remote"]) for s in children] == [
        ("131130", False),
        ("131041", False),
        ("271004", True),
    ]
    assert {s.parent.span_id for s in children} == {parent.get_span_context().span_id}
    for child in children[:2]:
        sql = [s for s in finished if s.parent and s.parent.span_id == child.context.span_id]
        assert sql and {s.attributes[TENANT] for s in sql} == {child.attributes[TENANT]}
    query = next(s for s in finished if s.name == "renkei.federation.query")
    assert query.attributes[TENANT] == telemetry.PUBLIC
    remote = children[2]
    assert remote.status.status_code is StatusCode.ERROR
    assert remote.attributes["error.type"] == "TimeoutError"
    assert not remote.events  # no exception message or stack trace recorded
    inherited = next(s for s in finished if s.name == "remote call")
    assert inherited.attributes[TENANT] == "271004"  # from the parent span: no schema here

    with pytest.raises(ValueError):
        with telemetry.tenant_span("m131130"):
            pass


def _remote_tenant(ctx) -> None:
    try:
        with telemetry.tenant_span("271004", remote=True, parent=ctx):
            with telemetry.span("remote call"):
                pass
            raise TimeoutError("271004 did not answer within 5 s")
    except TimeoutError:
        pass


@pytest.mark.django_db
def test_suppressed_cells_are_counted_per_metric_and_tenant(otel, metric_reader, shibuya):
    with in_tenant(shibuya):
        telemetry.record_suppressed_cells(4, "attendance.absence_days")
    telemetry.record_suppressed_cells(2, "attendance.absence_days", tenant_code="131041")
    telemetry.record_suppressed_cells(0, "attendance.absence_days")
    telemetry.record_suppressed_cells(1, "山田 太郎")  # not a metric name: never a label
    points = {
        (p.attributes["renkei.metric.name"], p.attributes[TENANT]): p.value
        for p in metric_points(metric_reader, "renkei.disclosure.suppressed_cells")
    }
    assert points[("attendance.absence_days", "131130")] >= 4
    assert points[("attendance.absence_days", "131041")] >= 2
    assert ("other", "public") in points
    assert "山田" not in metrics_text(metric_reader)


# -- the scrubber, setup -----------------------------------------------------------------------


def test_scrubbing_drops_what_could_carry_personal_data(otel):
    tracer = trace.get_tracer("test")
    exporter = InMemorySpanExporter()
    scrubbed = telemetry.ScrubbingSpanExporter(exporter)
    with tracer.start_as_current_span(
        "GET board/<id>",
        kind=SpanKind.SERVER,
        attributes={
            "http.target": "/m/131130/board/C0001?name=髙橋",
            "http.url": "http://x/?q=髙橋",
            "http.route": "board/<id>",
            "http.user_agent": "Mozilla",
            "net.peer.ip": "10.0.0.9",
            "db.query.parameter.0": "C0001",
            "http.request.header.cookie": "s=1",
        },
    ) as s:
        s.record_exception(ValueError("Key (source_id)=(C0001) already exists"))
        s.set_status(Status(StatusCode.ERROR, "Key (source_id)=(C0001) already exists"))
        raw = s
    scrubbed.export([raw])
    (out,) = exporter.get_finished_spans()
    assert set(out.attributes) == {"http.route", TENANT}
    assert out.status.status_code is StatusCode.ERROR and out.status.description is None
    assert [(e.name, dict(e.attributes)) for e in out.events] == [
        ("exception", {"exception.type": "ValueError", "exception.escaped": "False"})
    ]
    assert "C0001" not in span_text(out) and "髙橋" not in span_text(out)


def test_setup_is_idempotent(otel):
    provider = trace.get_tracer_provider()
    assert telemetry.setup_telemetry(service_name="other") is True
    assert trace.get_tracer_provider() is provider
    assert provider.resource.attributes["service.name"] == "renkei-test"


# -- OTLP export, in a fresh process -------------------------------------------------------------

EXPORT_SCRIPT = """
from renkei.platform import telemetry
on = telemetry.setup_telemetry(service_name="renkei-web")
print("on" if on else "off", flush=True)
with telemetry.tenant_span("131130"):
    pass
telemetry.record_suppressed_cells(3, "attendance.absence_days", tenant_code="131130")
telemetry.shutdown_telemetry()
"""


def run_export_script(tmp_path, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="renkei.site.settings",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/unused",
        RENKEI_HOME=str(tmp_path),
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_SCRIPT],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_nothing_is_exported_by_default(tmp_path):
    assert run_export_script(tmp_path) == "off"
    assert (
        run_export_script(
            tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_SDK_DISABLED="true"
        )
        == "off"
    )


class OTLPHTTPReceiver(ThreadingHTTPServer):
    """OTLP/HTTP (protobuf) on 127.0.0.1: keeps the bodies of /v1/traces and /v1/metrics."""

    def __init__(self):
        self.received: dict[str, list[bytes]] = {"/v1/traces": [], "/v1/metrics": []}
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.setdefault(self.path, []).append(
                    self.rfile.read(int(self.headers["Content-Length"]))
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def traces(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        return [ExportTraceServiceRequest.FromString(b) for b in self.received["/v1/traces"]]

    def metrics(self):
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        return [ExportMetricsServiceRequest.FromString(b) for b in self.received["/v1/metrics"]]


def exported_spans(traces) -> list[tuple[dict, str, dict]]:
    """(resource attributes, span name, span attributes) of every exported span."""

    def attributes(items):
        return {
            a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value") for a in items
        }

    return [
        (attributes(rs.resource.attributes), span.name, attributes(span.attributes))
        for request in traces
        for rs in request.resource_spans
        for scope in rs.scope_spans
        for span in scope.spans
    ]


def test_otlp_over_http(tmp_path):
    receiver = OTLPHTTPReceiver()
    try:
        assert (
            run_export_script(
                tmp_path,
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            )
            == "on"
        )
    finally:
        receiver.shutdown()
    check_export(receiver.traces(), receiver.metrics())


def test_otlp_over_grpc_is_the_default(tmp_path):
    grpc = pytest.importorskip("grpc")
    from opentelemetry.proto.collector.metrics.v1 import (
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    traces, metrics = [], []

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            traces.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:  # like the compose stack and the ECS sidecar: http://<collector>:4317, no protocol
        assert (
            run_export_script(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
            == "on"
        )
    finally:
        server.stop(None)
    check_export(traces, metrics)


def check_export(traces, metrics) -> None:
    spans = exported_spans(traces)
    assert [name for _, name, _ in spans] == [telemetry.TENANT_SPAN]
    resource, _, attributes = spans[0]
    assert resource["service.name"] == "renkei-web"
    assert attributes[TENANT] == "131130"
    names = {
        m.name
        for request in metrics
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert "renkei.disclosure.suppressed_cells" in names


@pytest.mark.slow
def test_gunicorn_workers_start_telemetry_after_fork_and_flush_on_exit(tmp_path):
    """The real web process: gunicorn with infra/gunicorn.conf.py (post_fork, worker_exit)."""
    from cli_support import renkei, scratch_database

    receiver = OTLPHTTPReceiver()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with scratch_database(tmp_path / "home") as (env, _):
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        web_env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
        web_env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="500",
            DJANGO_SETTINGS_MODULE="renkei.site.settings",
            WEB_CONCURRENCY="1",
            GUNICORN_BIND=f"127.0.0.1:{port}",
        )
        log_path = tmp_path / "gunicorn.log"
        with log_path.open("wb") as log_file:
            web = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "infra/gunicorn.conf.py",
                    "renkei.site.wsgi:application",
                ],
                env=web_env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            # Until it answers, however long a loaded machine takes to start it (a count of
            # tries is a time that depends on how fast each refusal comes), but not after
            # gunicorn has exited.
            deadline = time.monotonic() + 120
            while web.poll() is None and time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            else:
                pytest.fail(f"gunicorn did not start:\n{log_path.read_text(errors='replace')}")
            assert requests.get(f"{base}/", timeout=10).status_code == 200
            requests.get(f"{base}/m/131130/?q=%E9%AB%99", timeout=10)
        finally:
            web.send_signal(signal.SIGTERM)  # graceful: worker_exit flushes the spans
            web.wait(timeout=60)
            receiver.shutdown()
    log = log_path.read_text(errors="replace")
    assert "OpenTelemetry setup failed" not in log, log
    spans = exported_spans(receiver.traces())
    assert {r["service.name"] for r, _, _ in spans} == {"renkei-web"}, log
    # "/" in public; "/m/131130/" and the sign-in page it redirects to, in 渋谷区; no probes.
    requests_seen = [(name, a[TENANT]) for _, name, a in spans if name.startswith("GET")]
    assert sorted(tenant for _, tenant in requests_seen) == ["131130", "131130", "public"], (
        requests_seen
    )
    assert any("db.statement" in a for _, _, a in spans)
    assert b"%E9%AB%99" not in b"".join(receiver.received["/v1/traces"])


def test_connection_is_left_in_public(otel, db):
    assert connection.schema_name == "public"
