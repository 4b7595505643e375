"""Every entry point answers each cell the same: the municipality API of the tenant, the
prefecture field (by municipality), the municipality field, ``_entities`` and the endpoint a
prefecture elsewhere calls (/federation/tenant). They all serve one release per data version;
an analyst gains nothing by asking another field."""

from __future__ import annotations

import json

import pytest
import requests
from fed_world import SCHOOL_YEAR, TOKYO_A

from renkei.edudata import metrics
from renkei.graphql.federation import fanout
from renkei.graphql.federation.schema import ResultCache
from renkei.platform import service_tokens

pytestmark = pytest.mark.slow

FIELDS = "key pupils numerator denominator value suppressed reasonCode"
CASES = [
    ("longTermAbsence", "long_term_absence", "byGrade: true", ["grade"]),
    ("attendanceRate", "attendance_rate", "byMonth: true, byGrade: true", ["month", "grade"]),
    ("nurseVisitsPer100", "nurse_visits_per_100", "byMonth: true", ["month"]),
    (
        "learningMinutesDistribution",
        "learning_minutes_distribution",
        "byMonth: true, byGrade: true",
        ["month", "grade"],
    ),
    (
        "learningActiveRate",
        "learning_active_rate",
        "byMonth: true, byGrade: true",
        ["month", "grade"],
    ),
]


def _cells(table, prefix=()):
    """{key tuple: (pupils, numerator, denominator, value, suppressed)} of an answer."""
    out = {}
    for cell in table["cells"]:
        key = tuple(cell["key"])
        if prefix:
            if key[: len(prefix)] != prefix:
                continue
            key = key[len(prefix) :]
        out[key] = (
            cell["pupils"],
            cell["numerator"],
            cell["denominator"],
            cell["value"],
            cell["suppressed"],
        )
    return out


def _tenant_api(client, user, name, breakdown):
    client.force_login(user)
    query = (
        """query($name: String!, $by: [String!]) {
      metric(name: $name, schoolYear: %d, breakdown: $by) {
        dimensions cells { key { dimension value } pupils numerator denominator value
                           suppressed reasonCode } } }"""  # noqa: UP031
        % SCHOOL_YEAR
    )
    response = client.post(
        f"/m/{TOKYO_A}/graphql",
        content_type="application/json",
        data=json.dumps({"query": query, "variables": {"name": name, "by": breakdown}}),
    )
    body = response.json()
    assert "errors" not in body, body
    table = body["data"]["metric"]
    return {
        tuple(p["value"] for p in c["key"]): (
            c["pupils"],
            c["numerator"],
            c["denominator"],
            c["value"],
            c["suppressed"],
        )
        for c in table["cells"]
    }


def _remote_endpoint(base, name, breakdown):
    body = fanout.tenant_request(TOKYO_A, name, SCHOOL_YEAR, breakdown)
    token = service_tokens.issue_service_token(
        TOKYO_A, prefecture_code="13", digest=service_tokens.request_digest(body)
    )
    response = requests.post(
        f"{base}/federation/tenant",
        data=json.dumps(body),
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    table = metrics.MetricTable.from_json(response.json())
    return {
        tuple(c.key[d] for d in table.dimensions): (
            c.pupils,
            c.numerator,
            c.denominator,
            c.value,
            c.suppressed,
        )
        for c in table.cells
    }


@pytest.mark.parametrize(("field", "name", "flags", "breakdown"), CASES)
def test_every_entry_point_answers_each_cell_the_same(
    run, world, client, fed_server, field, name, flags, breakdown
):
    analyst = world.users["fed-pref13"]
    args = f"schoolYear: {SCHOOL_YEAR}, {flags}"
    municipality_query = (
        f'{{ municipality(code: "{TOKYO_A}") {{ {field}({args}) {{ cells {{ {FIELDS} }} }} }} }}'
    )
    prefecture = run(
        f'{{ prefecture(code: "13") {{ {field}({args}, byMunicipality: true) '
        f"{{ cells {{ {FIELDS} }} }} }} }}",
        analyst,
    )
    municipality = run(municipality_query, analyst)
    entities = run(
        f'{{ _entities(representations: [{{__typename: "Municipality", '
        f'code: "{TOKYO_A}"}}]) {{ ... on Municipality {{ {field}({args}) '
        f"{{ cells {{ {FIELDS} }} }} }} }} }}",
        analyst,
    )
    for result in (prefecture, municipality, entities):
        assert result.errors is None, result.errors
    answers = {
        "prefecture field": _cells(prefecture.data["prefecture"][field], (TOKYO_A,)),
        "municipality field": _cells(municipality.data["municipality"][field]),
        "_entities": _cells(entities.data["_entities"][0][field]),
        "tenant API": _tenant_api(client, world.users["fed-board"], name, breakdown),
        "/federation/tenant": _remote_endpoint(fed_server, name, breakdown),
    }
    reference = answers["municipality field"]
    assert len(reference) > 5
    assert any(c[4] for c in reference.values()) and any(not c[4] for c in reference.values())
    for where, cells in answers.items():
        assert cells == reference, where
    # and asking again gives the same (a release per data version, not per request)
    again = run(municipality_query, analyst)
    metrics.clear_cache()  # another process: loaded from the store, not made again
    ResultCache.forget()
    stored = run(municipality_query, analyst)
    assert _cells(again.data["municipality"][field]) == reference
    assert _cells(stored.data["municipality"][field]) == reference
