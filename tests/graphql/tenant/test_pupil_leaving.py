"""The pupil's leaving (卒業・転出・退学) as the school's staff see it through the API."""

import datetime as dt

import pytest
from tenant_api_support import AS_OF

from renkei.edudata.models import Student
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

QUERY = """
query Board($id: ID!, $asOf: Date) {
  studentBoard(studentId: $id, asOf: $asOf) { pupil { id leftOn leavingReason } }
}"""


def test_a_pupil_shows_when_and_why_they_left_and_nothing_while_enrolled(
    client, gql, people, world, shibuya
):
    client.force_login(people["teacher_a"])
    enrolled = gql(client, QUERY, {"id": world["a1"].pk, "asOf": str(AS_OF)})
    assert not enrolled.errors, enrolled.text
    assert enrolled.data["studentBoard"]["pupil"]["leftOn"] is None
    assert enrolled.data["studentBoard"]["pupil"]["leavingReason"] is None
    with in_tenant(shibuya):
        Student.objects.filter(pk=world["a1"].pk).update(
            left_on=dt.date(2026, 1, 9), leaving_reason="transferred"
        )
    left = gql(client, QUERY, {"id": world["a1"].pk, "asOf": str(AS_OF)})
    assert not left.errors, left.text
    assert left.data["studentBoard"]["pupil"] == {
        "id": str(world["a1"].pk),
        "leftOn": "2026-01-09",
        "leavingReason": "TRANSFERRED",
    }
