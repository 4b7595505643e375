"""Shared fixtures. Tests talk to a real PostgreSQL: the embedded pgserver one of RENKEI_HOME
(in its own test database) unless DATABASE_URL names another. Tenant schemas are created once
per session (PITFALLS)."""

from __future__ import annotations

import datetime as dt

import pytest

from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

TEST_TENANTS = {
    "shibuya": ("131130", "渋谷区"),
    "shinjuku": ("131041", "新宿区"),
    "osaka": ("271004", "大阪市"),
}


@pytest.fixture(scope="session", autouse=True)
def _no_background_warmup():
    """Releases are made again after a data change in a background thread: off in tests
    (a thread holding a connection at the end would keep the test database open); the
    release tests turn it on and wait for it."""
    from django.conf import settings

    settings.RENKEI_RELEASE_WARMUP = False


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Migrate and onboard the test tenants, once."""
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.models import Municipality

    with django_db_blocker.unblock():
        for code, name in TEST_TENANTS.values():
            if not Municipality.objects.filter(code=code).exists():
                do_onboard_municipality(code, name, actor=TEST_ACTOR)


@pytest.fixture(autouse=True)
def _no_kept_answers():
    """The federation keeps answers per data version (ResultCache); a test that breaks
    something on purpose must not be answered from an earlier test's memory."""
    from renkei.graphql.federation.schema import ResultCache

    ResultCache.forget()


@pytest.fixture(autouse=True)
def _back_to_public():
    """A test that forgets to leave a tenant must not leak it into the next test."""
    yield
    from django.db import connection

    if hasattr(connection, "set_schema_to_public"):
        connection.set_schema_to_public()


def _tenant(key):
    from renkei.tenants.models import Municipality

    return Municipality.objects.select_related("prefecture").get(code=TEST_TENANTS[key][0])


@pytest.fixture
def shibuya(db):
    return _tenant("shibuya")


@pytest.fixture
def shinjuku(db):
    return _tenant("shinjuku")


@pytest.fixture
def osaka(db):
    return _tenant("osaka")


@pytest.fixture
def make_user(db):
    """make_user("name", role, municipality=..., prefecture=..., schools=[...])."""
    from django.contrib.auth import get_user_model

    from renkei.accounts.models import Membership

    def make(username, role=None, *, municipality=None, prefecture=None, schools=()):
        user = get_user_model().objects.create_user(username=username, password="pw-" + username)
        if role:
            Membership.objects.create(
                user=user,
                role=role,
                municipality=municipality,
                prefecture=prefecture,
                school_codes=list(schools),
            )
        return user

    return make


@pytest.fixture
def verified_client(db):
    """verified_client(user): a test client signed in as ``user`` in 渋谷区 and past the
    second factor (a TOTP device of theirs, its current code posted to the step-up page)."""
    from django.test import Client
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def signed_in(user) -> Client:
        device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        client = Client()
        client.force_login(user)
        token = f"{totp(device.bin_key):06d}"
        assert client.post("/m/131130/accounts/verify/", {"otp_token": token}).status_code == 302
        return client

    return signed_in


@pytest.fixture
def school_world(shibuya):
    """Inside 渋谷区: two schools, two pupils in each, one graduated long ago."""
    from renkei.edudata.models import School, Student
    from renkei.edudata.privacy import pseudonym_for
    from renkei.tenants.context import in_tenant

    with in_tenant(shibuya):
        a = School.objects.create(code="B113211300012", name="渋谷区立第一小学校", school_type="B1")
        b = School.objects.create(code="B113211300023", name="渋谷区立第二小学校", school_type="B1")
        pupils = {}
        for school, tag in ((a, "a"), (b, "b")):
            for n in (1, 2):
                pupils[f"{tag}{n}"] = Student.objects.create(
                    pseudonym=pseudonym_for(shibuya, "test", f"{tag}{n}"),
                    school=school,
                    grade=3,
                    birth_year_month="2017-05",
                )
        pupils["old"] = Student.objects.create(
            pseudonym=pseudonym_for(shibuya, "test", "old"),
            school=a,
            grade=6,
            left_on=dt.date(2015, 3, 20),
            leaving_reason="graduated",
        )
    return {"municipality": shibuya, "A": a, "B": b, **pupils}


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A small synthetic export of 渋谷区 (131130): 20 pupils, 12 days, every connector's files."""
    from renkei.demo.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate("131130", out, students=20, days=12)
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    """RENKEI_HOME for this test (connector settings files, local storage)."""
    monkeypatch.setenv("RENKEI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# -- OpenTelemetry in memory ------------------------------------------------------------------
# The providers can be set only once per process: the modules that read spans and metrics
# (tests/platform/test_telemetry.py, tests/edudata/test_sensitive_leaks.py) share them.

_otel_providers: dict = {}


@pytest.fixture(scope="module")
def otel():
    """The process's providers, exporting to memory; library instrumentation and recording
    only while the asking module's tests run (pytest-django may run them in two groups: set
    up once, re-armed)."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from renkei.platform import telemetry

    class Recorder(InMemorySpanExporter):
        """Keeps spans only while a module that asked for them runs."""

        armed = False

        def export(self, spans):
            return super().export(spans) if self.armed else SpanExportResult.SUCCESS

    if not _otel_providers:
        if telemetry._state is not None:
            pytest.fail("telemetry was set up outside this fixture; it must own the providers")
        exporter, reader = Recorder(), InMemoryMetricReader()
        assert telemetry.setup_telemetry(
            service_name="renkei-test", span_exporters=[exporter], metric_readers=[reader]
        )
        _otel_providers.update(exporter=exporter, reader=reader)
    else:
        telemetry.instrument_libraries()
    exporter, reader = _otel_providers["exporter"], _otel_providers["reader"]
    exporter.armed = True
    try:
        yield exporter, reader
    finally:
        exporter.armed = False
        exporter.clear()
        telemetry.uninstrument_libraries()
