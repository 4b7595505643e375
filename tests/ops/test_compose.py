"""The local production-like stack: infra/compose.yaml and the collector config it mounts."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose.yaml"

APP_SERVICES = ("web", "worker", "beat", "migrate")
APP_ENV = (
    "DATABASE_URL", "RENKEI_HOME", "DJANGO_SECRET_KEY", "RENKEI_MASTER_KEY",
    "RENKEI_SERVICE_TOKEN_KEY",
    "RENKEI_ALLOWED_HOSTS", "RENKEI_BASE_DOMAIN", "CELERY_BROKER_URL", "RENKEI_STORAGE",
    "RENKEI_S3_BUCKET", "RENKEI_S3_KMS_KEY_ID", "AWS_REGION", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DEBUG",
)  # fmt: skip
S3_STORES = ("motoserver/moto", "adobe/s3mock", "localstack/localstack")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _by_image(services: dict, prefix: str) -> list[str]:
    return [name for name, s in services.items() if s.get("image", "").startswith(prefix)]


def _one(services: dict, prefix: str) -> str:
    found = _by_image(services, prefix)
    assert len(found) == 1, f"expected one service running {prefix}, found {found}"
    return found[0]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (d or {}).get("condition", "service_started") for name, d in deps.items()}


# --- The file ------------------------------------------------------------------


def test_compose_spec_without_version_key(compose):
    assert "version" not in compose, "the Compose spec has no version: key"
    assert isinstance(compose["services"], dict)


def test_required_services_exist(services):
    assert _one(services, "postgres:16")
    assert _one(services, "redis:7")
    assert _one(services, "otel/opentelemetry-collector")
    tracing = _by_image(services, "jaegertracing/") + _by_image(services, "grafana/tempo")
    assert tracing, "a trace backend (Jaeger or Tempo) is expected"
    assert [n for n in services if services[n].get("image", "").startswith(S3_STORES)]
    for name in APP_SERVICES:
        assert name in services, f"service {name!r} is missing"


def test_no_minio(services):
    """MinIO is archived (PITFALLS): the local S3 store is something maintained."""
    assert not [n for n, s in services.items() if "minio" in s.get("image", "").lower()]


def test_every_image_is_pinned(services):
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        reference, _, digest = image.partition("@")
        last = reference.rsplit("/", 1)[-1]
        assert ":" in last, f"{name}: {image} has no tag"
        tag = last.rsplit(":", 1)[1]
        assert tag != "latest", f"{name}: {image} uses latest"
        if "build" not in service:  # third-party images: an exact version
            assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_app_services_build_the_repository_dockerfile(services):
    for name in APP_SERVICES:
        build = services[name]["build"]
        context = (INFRA / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context}"
        assert (context / build.get("dockerfile", "Dockerfile")).is_file()


def test_published_ports_are_local_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is reachable from the LAN"


# --- Health and ordering ---------------------------------------------------------


def test_datastores_have_healthchecks(services):
    for prefix in ("postgres:16", "redis:7"):
        name = _one(services, prefix)
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"


def test_postgres_keeps_its_data_in_a_named_volume(compose, services):
    postgres = services[_one(services, "postgres:16")]
    volumes = [str(v).split(":")[0] for v in postgres.get("volumes", [])]
    assert any(v in (compose.get("volumes") or {}) for v in volumes), volumes


def test_web_waits_for_a_healthy_database_and_finished_migrations(services):
    postgres = _one(services, "postgres:16")
    redis = _one(services, "redis:7")
    web = _depends_on(services["web"])
    assert web.get(postgres) == "service_healthy"
    assert web.get(redis) == "service_healthy"
    assert web.get("migrate") == "service_completed_successfully"
    for name in ("worker", "beat"):
        assert _depends_on(services[name]).get("migrate") == "service_completed_successfully"
    assert _depends_on(services["migrate"]).get(postgres) == "service_healthy"


def test_commands(services):
    assert _command(services["migrate"])[-2:] == ["renkei", "migrate"]
    worker = _command(services["worker"])
    assert worker[:3] == ["celery", "-A", "renkei.site.celery:app"] and "worker" in worker
    beat = _command(services["beat"])
    assert beat[:3] == ["celery", "-A", "renkei.site.celery:app"] and "beat" in beat
    # web runs the image's CMD (gunicorn) unless it overrides it with gunicorn.
    assert not _command(services["web"]) or _command(services["web"])[0] == "gunicorn"


def test_worker_and_beat_do_not_inherit_the_web_healthcheck(services):
    """The image's HEALTHCHECK probes gunicorn; Celery containers must replace or disable it."""
    for name in ("worker", "beat", "migrate"):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck, f"{name} would be marked unhealthy by the web probe"
        assert healthcheck.get("disable") or "healthz" not in str(healthcheck.get("test"))


# --- Configuration of the app containers --------------------------------------------


def test_app_environment_is_complete_and_points_at_the_stack(services):
    postgres = _one(services, "postgres:16")
    redis = _one(services, "redis:7")
    collector = _one(services, "otel/opentelemetry-collector")
    for name in APP_SERVICES:
        env = _environment(services[name])
        missing = [key for key in APP_ENV if key not in env]
        assert not missing, f"{name}: missing {missing}"
        assert env["DEBUG"].lower() in ("false", "0", "no", "off")
        assert urlsplit(env["DATABASE_URL"]).hostname == postgres
        assert urlsplit(env["CELERY_BROKER_URL"]).hostname == redis
        assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname == collector
        assert env["RENKEI_STORAGE"] == "s3"
        assert env["AWS_REGION"] == "ap-northeast-1"


def test_s3_endpoint_is_the_local_store(services):
    stores = [n for n in services if services[n].get("image", "").startswith(S3_STORES)]
    env = _environment(services["web"])
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3")
    assert endpoint and urlsplit(endpoint).hostname in stores


# --- OpenTelemetry collector --------------------------------------------------------


@pytest.fixture(scope="module")
def collector_config(services) -> dict:
    collector = services[_one(services, "otel/opentelemetry-collector")]
    mounts = [str(v).split(":") for v in collector.get("volumes", [])]
    configs = [m for m in mounts if m[0].endswith((".yaml", ".yml"))]
    assert len(configs) == 1, mounts
    source, target = configs[0][0], configs[0][1]
    path = (INFRA / source).resolve()
    assert path.is_file(), f"the collector mounts {source}, which does not exist"
    assert any(target in str(arg) for arg in _command(collector)), (
        "the collector must be started with the mounted config"
    )
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_collector_receives_otlp_over_grpc_and_http(collector_config):
    protocols = collector_config["receivers"]["otlp"]["protocols"]
    assert "grpc" in protocols and "http" in protocols


def test_collector_pipelines(collector_config):
    pipelines = collector_config["service"]["pipelines"]
    for signal in ("traces", "metrics"):
        assert signal in pipelines, f"no {signal} pipeline"
        assert "otlp" in pipelines[signal]["receivers"]
    assert "batch" in pipelines["traces"]["processors"]
    assert any(e.split("/")[0] == "debug" for e in pipelines["traces"]["exporters"])
    # Every component a pipeline names is defined.
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (collector_config.get(kind) or {}), component


def test_collector_exports_traces_to_the_trace_backend(collector_config, services):
    exporters = collector_config["service"]["pipelines"]["traces"]["exporters"]
    hosts = set()
    for name in exporters:
        endpoint = (collector_config["exporters"][name] or {}).get("endpoint", "")
        if endpoint:
            hosts.add(urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname)
    backends = _by_image(services, "jaegertracing/") + _by_image(services, "grafana/tempo")
    assert hosts & set(backends), f"traces go to {hosts}, backends are {backends}"


def test_collector_drops_personal_data_attributes(collector_config):
    """Defence in depth for DESIGN.md's rule: no personal data in any span."""
    processors = collector_config["service"]["pipelines"]["traces"]["processors"]
    scrubbers = [p for p in processors if p.startswith("attributes")]
    assert scrubbers
    deleted = {
        a.get("key") or a.get("pattern")
        for p in scrubbers
        for a in collector_config["processors"][p]["actions"]
        if a["action"] == "delete"
    }
    assert {"url.query", "client.address", "enduser.id"} <= deleted
