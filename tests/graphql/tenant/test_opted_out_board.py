"""What the pupil board shows of a pupil who opted out of analysis (docs/rights.md): their
school records (attendance, health, tests) as before; no Microsoft 365 use and no learning
weeks, even those imported before the opt-out; no alerts."""

import pytest
from tenant_api_support import AS_OF

from renkei.accounts import policy
from renkei.edudata.models import M365DailyUsage
from renkei.edudata.privacy import do_record_opt_out
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

BOARD = """
query Board($id: ID!, $asOf: Date) {
  studentBoard(studentId: $id, asOf: $asOf) {
    pupil { optedOut }
    attendance(since: "2025-06-01") { date status }
    health(since: "2025-06-01") { date }
    assessments { name }
    m365Usage(since: "2025-06-01") { date app }
    learningWeeks(weeks: 2) { weekStart }
    alerts { rule }
    alertsExcludedReason
  }
}"""


def test_the_board_of_an_opted_out_pupil_shows_school_records_but_no_usage(
    client, gql, people, world, shibuya
):
    # given: a1 has Microsoft 365 use on the board, then opts out
    client.force_login(people["teacher_a"])
    before = gql(client, BOARD, {"id": world["a1"].pk, "asOf": str(AS_OF)}).data["studentBoard"]
    assert before["m365Usage"] and before["alerts"]
    with in_tenant(shibuya):
        admin = policy.principal_for(people["admin"])
        do_record_opt_out(admin, shibuya, world["a1"])
        assert M365DailyUsage.objects.filter(student=world["a1"]).exists()  # kept, not shown
    # when
    r = gql(client, BOARD, {"id": world["a1"].pk, "asOf": str(AS_OF)})
    # then
    assert not r.errors, r.text
    board = r.data["studentBoard"]
    assert board["pupil"]["optedOut"] is True
    assert board["attendance"] == before["attendance"] and board["health"] == before["health"]
    assert board["assessments"] == before["assessments"]
    assert board["m365Usage"] == [] and board["learningWeeks"] == []
    assert board["alerts"] == [] and board["alertsExcludedReason"]
