"""OpenTelemetry for Renkei: traces and metrics, with no personal data in either.

One entry point, :func:`setup_telemetry`, called once per process *after* fork (gunicorn
``post_fork`` in ``infra/gunicorn.conf.py``; Celery ``worker_process_init`` in
``renkei.site.celery``), and :func:`shutdown_telemetry`, which flushes (gunicorn
``worker_exit``, Celery ``worker_process_shutdown``).

What is traced
    HTTP requests (opentelemetry-instrumentation-django), SQL (-psycopg; parameters are never
    captured, only the parameterized statement), Celery tasks in the web process (publish)
    and the worker (run) (-celery), S3 and other AWS calls (-botocore), and our own spans:
    connector runs (:func:`traced_import`, with rows read / accepted / rejected) and one child
    span per tenant of a federation fan-out (:func:`tenant_span`).

Every span carries the tenant code
    ``renkei.tenant.code`` is stamped on every span when it starts (:class:`TenantSpanProcessor`),
    from the schema the database connection is in (``m131130`` -> ``131130``), else the
    parent span's tenant, else ``public``. Request spans are re-stamped at the end of the
    request from ``request.tenant`` (routing happens after the span starts), Celery task
    spans by the task once it has entered its tenant (:func:`mark_tenant`).

What is exported
    Nothing by default. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the signal-specific
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``) set, spans and
    metrics go there over OTLP: gRPC by default (the collector sidecar and the compose
    collector listen on 4317), HTTP with ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``
    (port 4318). With nothing to export, no library is instrumented at all (zero overhead)
    and the helpers below are no-ops. ``OTEL_SDK_DISABLED=true`` turns everything off.
    The service name is ``OTEL_SERVICE_NAME`` if set, else the ``service_name`` argument.

No personal data
    Our own spans and metrics carry codes, counts and connector names only. As defence in
    depth every exporter is wrapped in :class:`ScrubbingSpanExporter`, which drops the
    attributes instrumentation libraries may add that could carry personal data (full URLs
    and query strings, client addresses, user agents, query parameters, headers) and the
    message and stack trace of recorded exceptions (database errors quote row values, e.g.
    ``Key (source_id)=(…) already exists``); the span status keeps only the exception type.
    It mirrors the ``attributes/drop-personal-data`` processor of the collector
    (``infra/otel-collector.yaml``). Metric labels are fixed, low-cardinality values.

Helpers for other areas
    - ``traced_import``: the pipeline decorates the one function that runs an import with
      it, so every entry point (command line, upload, push API, task) is traced once.
    - ``tenant_span(code)``: the child span of one tenant in a federation fan-out. In a
      thread pool pass ``parent=opentelemetry.context.get_current()`` captured before
      submitting (threads do not inherit the context; asyncio tasks do).
    - ``record_suppressed_cells(n, metric_name)``: counts cells that disclosure control
      suppressed (``renkei.disclosure.suppressed_cells``).
    - ``span(name, **attributes)``: any other span of ours (e.g. the federation query around
      the per-tenant spans).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status, StatusCode

log = logging.getLogger(__name__)

TENANT_ATTRIBUTE = "renkei.tenant.code"
PUBLIC = "public"
CONNECTOR_ATTRIBUTE = "renkei.connector.name"
ROWS_READ = "renkei.import.rows_read"
ROWS_ACCEPTED = "renkei.import.rows_accepted"
ROWS_REJECTED = "renkei.import.rows_rejected"
IMPORT_STATUS = "renkei.import.status"
IMPORT_RUN = "renkei.import.run_id"
CONNECTOR_RUN_SPAN = "renkei.connector.run"
TENANT_SPAN = "renkei.federation.tenant"

_SCHEMA = re.compile(r"m(\d{6})")
_CODE = re.compile(r"\d{6}")
_LABEL = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")

_tracer = trace.get_tracer("renkei")
_meter = metrics.get_meter("renkei")

# Instruments made from the API's proxy meter start recording once a provider is set.
_import_rows = _meter.create_counter(
    "renkei.import.rows",
    unit="{row}",
    description="Rows read by imports, by outcome (accepted, rejected)",
)
_import_runs = _meter.create_counter(
    "renkei.import.runs", unit="{run}", description="Import runs, by connector and status"
)
_import_duration = _meter.create_histogram(
    "renkei.import.duration", unit="s", description="Duration of import runs"
)
_suppressed_cells = _meter.create_counter(
    "renkei.disclosure.suppressed_cells",
    unit="{cell}",
    description="Cells withheld by disclosure control (primary and complementary)",
)


# -- setup ----------------------------------------------------------------------------------


@dataclass
class _State:
    enabled: bool
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    instrumentors: list[Any] = field(default_factory=list)
    shut_down: bool = False


_lock = threading.Lock()
_state: _State | None = None


def setup_telemetry(
    service_name: str | None = None,
    *,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    instrument: bool = True,
) -> bool:
    """Start tracing and metrics in this process; True if telemetry is on.

    Idempotent: only the first call in a process does anything (later calls return the same
    answer). Call it after fork. ``span_exporters`` (exported synchronously) and
    ``metric_readers`` are for tests and debugging; OTLP exporters are added from the
    environment. ``instrument=False`` leaves libraries alone (our own spans only).
    """
    global _state
    with _lock:
        if _state is not None:
            return _state.enabled
        if _flag("OTEL_SDK_DISABLED"):
            _state = _State(enabled=False)
            return False
        exporters: list[SpanProcessor] = [
            SimpleSpanProcessor(ScrubbingSpanExporter(e)) for e in span_exporters
        ]
        readers = list(metric_readers)
        if _otlp_configured("TRACES"):
            exporters.append(BatchSpanProcessor(ScrubbingSpanExporter(_otlp_span_exporter())))
        if _otlp_configured("METRICS"):
            readers.append(PeriodicExportingMetricReader(_otlp_metric_exporter()))
        if not exporters and not readers:
            _state = _State(enabled=False)
            log.debug("telemetry off: no OTEL_EXPORTER_OTLP_ENDPOINT")
            return False

        resource = Resource.create(
            {
                "service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name or "renkei",
                "service.namespace": "renkei",
                "service.version": _version(),
            }
        )
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(TenantSpanProcessor())
        for processor in exporters:
            tracer_provider.add_span_processor(processor)
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _state = _State(
            enabled=True, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        if instrument:
            _state.instrumentors = _instrument_libraries(tracer_provider)
        log.info(
            "telemetry on for %s: %d span exporter(s), %d metric reader(s)",
            resource.attributes["service.name"],
            len(exporters),
            len(readers),
        )
        return True


def shutdown_telemetry() -> None:
    """Flush what is buffered and stop the providers (worker exit). Safe to call anytime."""
    with _lock:
        state = _state
        if state is None or not state.enabled or state.shut_down:
            return
        state.shut_down = True
    for provider in (state.tracer_provider, state.meter_provider):
        try:
            provider.force_flush()
            provider.shutdown()
        except Exception:  # flushing must never take the process down with it
            log.exception("telemetry shutdown failed")


def telemetry_enabled() -> bool:
    return bool(_state and _state.enabled and not _state.shut_down)


def instrument_libraries() -> None:
    """Instrument the libraries again after :func:`uninstrument_libraries` (no-op when
    telemetry is off or the libraries are instrumented)."""
    with _lock:
        if _state is None or not _state.enabled or _state.instrumentors:
            return
        _state.instrumentors = _instrument_libraries(_state.tracer_provider)


def uninstrument_libraries() -> None:
    """Undo the library instrumentation of :func:`setup_telemetry` (tests use it so that
    instrumenting one test module does not slow down the rest of the session). The
    providers stay: OpenTelemetry allows setting them only once per process."""
    if _state is None:
        return
    for instrumentor in reversed(_state.instrumentors):
        try:
            instrumentor.uninstrument()
        except Exception:
            log.exception("could not uninstrument %s", type(instrumentor).__name__)
    _state.instrumentors = []
    _uninstrument_django_connections()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _otlp_configured(signal: str) -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()


def _otlp_span_exporter() -> SpanExporter:
    # The exporters read the endpoint, headers, timeout and TLS settings from OTEL_* themselves.
    if _protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def _otlp_metric_exporter():
    if _protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    return OTLPMetricExporter()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("renkei")
    except PackageNotFoundError:
        return "0"


def _instrument_libraries(tracer_provider: TracerProvider) -> list[Any]:
    """Instrument the libraries that are installed; a missing one is skipped, not fatal."""
    done: list[Any] = []

    def attempt(what: str, start: Callable[[], Any]) -> None:
        try:
            instrumentor = start()
        except ImportError as e:
            log.info("telemetry: %s not instrumented (%s)", what, e)
        except Exception:
            log.exception("telemetry: instrumenting %s failed", what)
        else:
            if instrumentor is not None:
                done.append(instrumentor)

    def django():
        from django.conf import settings

        if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
            return None
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        instrumentor = DjangoInstrumentor()
        instrumentor.instrument(
            tracer_provider=tracer_provider,
            response_hook=_response_hook,
            # Load balancer and container health probes every few seconds are noise.
            excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "healthz"),
        )
        return instrumentor

    def psycopg():
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        instrumentor = PsycopgInstrumentor()
        # Statements only, never their parameters (PITFALLS: OpenTelemetry).
        instrumentor.instrument(
            tracer_provider=tracer_provider, capture_parameters=False, enable_commenter=False
        )
        _instrument_django_connections()
        return instrumentor

    def celery():
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        instrumentor = CeleryInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider)
        return instrumentor

    def botocore():
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        instrumentor = BotocoreInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider)
        return instrumentor

    attempt("Django", django)
    attempt("psycopg", psycopg)
    attempt("Celery", celery)
    attempt("botocore", botocore)
    return done


def _django_connections():
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        from django.db import connections

        return [c for c in connections.all(initialized_only=True) if c.connection is not None]
    except Exception:
        return []


def _instrument_django_connections() -> None:
    """Connections opened before instrumenting (psycopg.connect is wrapped for new ones).
    Their traced cursors wrap the cursor class Django's backend gave them, as the wrapped
    connect does (``instrument_connection`` would put plain psycopg cursors in its place,
    which send statements without the tenant's schema: renkei.tenants.postgresql_backend)."""
    from opentelemetry.instrumentation.psycopg import _new_cursor_factory

    for wrapper in _django_connections():
        raw = wrapper.connection
        if getattr(raw.cursor_factory, "__name__", "") != "TracedCursorFactory":
            raw.cursor_factory = _new_cursor_factory(base_factory=raw.cursor_factory)


def _uninstrument_django_connections() -> None:
    try:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    except ImportError:
        return
    for wrapper in _django_connections():
        raw = wrapper.connection
        if hasattr(raw, "_otel_orig_cursor_factory"):
            PsycopgInstrumentor.uninstrument_connection(raw)
            # It leaves its markers set, and instrumenting this connection again would then
            # be refused (a second test module re-arming telemetry got no SQL spans).
            del raw._otel_orig_cursor_factory
            raw._is_instrumented_by_opentelemetry = False
        elif getattr(raw.cursor_factory, "__name__", "") == "TracedCursorFactory":
            # Opened through the wrapped psycopg.connect: back to the cursor Django asked for.
            raw.cursor_factory = raw.cursor_factory.__mro__[1]


def _response_hook(request_span, request, response) -> None:
    """The request span starts before tenant routing: stamp the tenant it was routed to."""
    code = getattr(getattr(request, "tenant", None), "code", None)
    if request_span.is_recording() and isinstance(code, str) and _CODE.fullmatch(code):
        request_span.set_attribute(TENANT_ATTRIBUTE, code)


# -- the tenant on every span -----------------------------------------------------------------


def current_tenant_code() -> str | None:
    """The code of the tenant the database connection is in, or None (public, no Django)."""
    try:
        from django.db import connection

        schema = getattr(connection, "schema_name", None)
    except Exception:
        return None
    match = _SCHEMA.fullmatch(schema or "")
    return match[1] if match else None


class TenantSpanProcessor(SpanProcessor):
    """Stamps ``renkei.tenant.code`` on every span as it starts."""

    def on_start(self, span, parent_context=None) -> None:
        if span.attributes and TENANT_ATTRIBUTE in span.attributes:
            return  # set explicitly by whoever started the span
        code = current_tenant_code()
        if code is None:
            parent = trace.get_current_span(parent_context)
            inherited = getattr(parent, "attributes", None) or {}
            code = inherited.get(TENANT_ATTRIBUTE) or PUBLIC
        span.set_attribute(TENANT_ATTRIBUTE, code)

    def on_end(self, span) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def mark_tenant(code: str) -> None:
    """Stamp the current span with a tenant (a Celery task once it has entered its tenant)."""
    span = trace.get_current_span()
    if span.is_recording() and _CODE.fullmatch(code or ""):
        span.set_attribute(TENANT_ATTRIBUTE, code)


# -- scrubbing --------------------------------------------------------------------------------

# Attributes some instrumentation adds that could carry personal data. Same list as the
# collector's attributes/drop-personal-data processor (infra/otel-collector.yaml).
DROPPED_ATTRIBUTES = frozenset(
    {
        "http.url",
        "url.full",
        "http.target",
        "url.query",
        "url.path",
        "client.address",
        "client.port",
        "http.client_ip",
        "net.peer.ip",
        "net.peer.port",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "network.peer.address",
        "user_agent.original",
        "http.user_agent",
        "enduser.id",
        "enduser.role",
        "enduser.scope",
        "db.statement.parameters",
        "db.query.parameters",
        "celery.retry.reason",
    }
)
DROPPED_PREFIXES = (
    "db.query.parameter.",
    "http.request.header.",
    "http.response.header.",
    "enduser.",
)
KEPT_EXCEPTION_ATTRIBUTES = ("exception.type", "exception.escaped")


def _keep(key: str) -> bool:
    return key not in DROPPED_ATTRIBUTES and not key.startswith(DROPPED_PREFIXES)


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` without attributes, exception details or status text that could
    carry personal data."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if _keep(k)}
    events = []
    for event in span.events:
        if event.name == "exception":
            kept = {
                k: v for k, v in (event.attributes or {}).items() if k in KEPT_EXCEPTION_ATTRIBUTES
            }
        else:
            kept = {k: v for k, v in (event.attributes or {}).items() if _keep(k)}
        events.append(Event(event.name, kept, event.timestamp))
    status = span.status
    if status.description:
        status = Status(status.status_code, None)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingSpanExporter(SpanExporter):
    """Wraps an exporter; every span goes through :func:`scrub_span` on its way out."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


# -- our own spans and metrics ------------------------------------------------------------------


def _error(span, exc: BaseException) -> None:
    # The type only: exception messages may quote data (see ScrubbingSpanExporter).
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


@contextmanager
def span(
    name: str, *, parent: otel_context.Context | None = None, **attributes: str | bool | int | float
) -> Iterator[trace.Span]:
    """A span of ours. Attribute values must be codes, names of things or numbers: never
    personal data. Exceptions mark it failed with their type only, and propagate."""
    with _tracer.start_as_current_span(
        name,
        context=parent,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as e:
            _error(current, e)
            raise


@contextmanager
def tenant_span(
    code: str,
    name: str = TENANT_SPAN,
    *,
    remote: bool = False,
    parent: otel_context.Context | None = None,
    **attributes: str | bool | int | float,
) -> Iterator[trace.Span]:
    """The child span of one tenant in a federation fan-out::

        with telemetry.span("renkei.federation.query", metric=metric.name):
            for code in codes:                   # or concurrently, see the module docstring
                with telemetry.tenant_span(code, remote=code in remotes) as s:
                    ...                          # run the metric inside that tenant
                    s.set_attribute("renkei.federation.partial", timed_out)

    Carries ``renkei.tenant.code`` = ``code`` (the connection may still be in public when it
    starts) and ``renkei.tenant.remote``.
    """
    if not _CODE.fullmatch(code or ""):
        raise ValueError(f"not a tenant code: {code!r}")
    with span(
        name,
        parent=parent,
        **{TENANT_ATTRIBUTE: code, "renkei.tenant.remote": remote},
        **attributes,
    ) as current:
        yield current


def _label(value: Any, default: str = "unknown") -> str:
    text = str(value) if value is not None else ""
    return text if _LABEL.fullmatch(text) else default


def traced_import(func: Callable) -> Callable:
    """Wrap the pipeline's run of an import, ``(connector, municipality, ...)`` → run, in a
    ``renkei.connector.run`` span (connector, tenant, run id, status, rows read / accepted /
    rejected) and record the import metrics."""

    @functools.wraps(func)
    def wrapper(connector, municipality, *args, **kwargs):
        name = _label(connector if isinstance(connector, str) else getattr(connector, "name", None))
        code = getattr(municipality, "code", municipality)
        code = code if isinstance(code, str) and _CODE.fullmatch(code) else PUBLIC
        started = time.monotonic()
        with span(
            CONNECTOR_RUN_SPAN, **{TENANT_ATTRIBUTE: code, CONNECTOR_ATTRIBUTE: name}
        ) as current:
            try:
                run = func(connector, municipality, *args, **kwargs)
            except BaseException:
                record_import(
                    None, connector=name, tenant_code=code, seconds=time.monotonic() - started
                )
                raise
            record_import(
                run,
                connector=name,
                tenant_code=code,
                seconds=time.monotonic() - started,
                on_span=current,
            )
            return run

    return wrapper


def record_import(
    run: Any, *, connector: str, tenant_code: str, seconds: float, on_span: trace.Span | None = None
) -> None:
    """Metrics (and span attributes) of one finished import run; ``run`` None = it raised."""
    status = _label(getattr(run, "status", None), "error") if run is not None else "error"
    base = {CONNECTOR_ATTRIBUTE: connector, TENANT_ATTRIBUTE: tenant_code}
    _import_runs.add(1, {**base, IMPORT_STATUS: status})
    _import_duration.record(seconds, {CONNECTOR_ATTRIBUTE: connector, IMPORT_STATUS: status})
    if run is None:
        return
    read = int(getattr(run, "rows_read", 0) or 0)
    accepted = int(getattr(run, "rows_accepted", 0) or 0)
    rejected = int(getattr(run, "rows_rejected", 0) or 0)
    if accepted:
        _import_rows.add(accepted, {**base, "renkei.import.outcome": "accepted"})
    if rejected:
        _import_rows.add(rejected, {**base, "renkei.import.outcome": "rejected"})
    if on_span is not None and on_span.is_recording():
        on_span.set_attributes(
            {
                ROWS_READ: read,
                ROWS_ACCEPTED: accepted,
                ROWS_REJECTED: rejected,
                IMPORT_STATUS: status,
                IMPORT_RUN: int(getattr(run, "pk", 0) or 0),
            }
        )
        if status != "succeeded":
            on_span.set_status(Status(StatusCode.ERROR, status))


def record_suppressed_cells(n: int, metric_name: str, *, tenant_code: str | None = None) -> None:
    """Count ``n`` cells that disclosure control suppressed in ``metric_name`` (a metric
    definition's name, e.g. ``attendance.absence_days``) for the current tenant."""
    if n <= 0:
        return
    code = (
        tenant_code
        if tenant_code and _CODE.fullmatch(tenant_code)
        else (current_tenant_code() or PUBLIC)
    )
    _suppressed_cells.add(
        int(n), {"renkei.metric.name": _label(metric_name, "other"), TENANT_ATTRIBUTE: code}
    )


__all__ = [
    "TENANT_ATTRIBUTE",
    "ScrubbingSpanExporter",
    "TenantSpanProcessor",
    "current_tenant_code",
    "instrument_libraries",
    "mark_tenant",
    "record_import",
    "record_suppressed_cells",
    "scrub_span",
    "setup_telemetry",
    "shutdown_telemetry",
    "span",
    "telemetry_enabled",
    "tenant_span",
    "traced_import",
    "uninstrument_libraries",
]
