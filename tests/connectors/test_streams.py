"""Each data stream is declared once: its columns come from the record class, its table and
natural key from the model; a mismatch between the two fails when the module loads."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from renkei.connectors.records import AttendanceRecord
from renkei.connectors.streams import DATA_STREAMS, StreamSpec, natural_key
from renkei.edudata.models import AccessLog, AttendanceDay, M365DailyUsage
from renkei.tenants.context import in_tenant


@pytest.mark.django_db
def test_every_stream_is_its_record_and_its_models_natural_key(shibuya):
    for spec in DATA_STREAMS.values():
        assert spec.ref in ("student_source_id", "principal_name")
        with in_tenant(shibuya), connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, spec.table)
        unique = [
            c["columns"] for c in constraints.values() if c["unique"] and not c["primary_key"]
        ]
        # the key the import inserts by is the unique index the database enforces
        assert ["student_id", *spec.key] in unique, (spec.name, unique)


def test_attendance_and_m365_as_declared():
    attendance = DATA_STREAMS["attendance"]
    assert attendance.table == "edudata_attendanceday"
    assert attendance.columns == (("date", "date"), ("status", "text"), ("reason", "text"))
    assert attendance.key == ("date",) and attendance.updated == ["status", "reason"]
    m365 = DATA_STREAMS["m365_usage"]
    assert m365.ref == "principal_name" and m365.key == ("date", "app")
    assert m365.columns[-1] == ("active", "boolean")
    record = AttendanceRecord(
        student_source_id="S1", date=dt.date(2026, 4, 8), status="absent_illness"
    )
    assert attendance.copy_text(record) == "S1\t2026-04-08\tabsent_illness\t"


def test_a_record_field_the_model_does_not_store_fails_at_once():
    class Wider(AttendanceRecord):
        stream: ClassVar[str] = "attendance"
        temperature: float = 36.5

    with pytest.raises(ImproperlyConfigured, match="Wider has a field that AttendanceDay"):
        StreamSpec.of(Wider, AttendanceDay, label="x")


def test_a_model_without_a_natural_key_is_refused():
    assert natural_key(M365DailyUsage) == ("date", "app")
    with pytest.raises(ImproperlyConfigured, match="AccessLog needs one UniqueConstraint"):
        natural_key(AccessLog)
