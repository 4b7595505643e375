"""The GraphQL documents the metric widgets send (src/queries.js) against the real schemas:
a schema change that would break <renkei-chart>/<renkei-table> fails here, not in a browser."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from graphql import parse, validate

from renkei.edudata import metrics
from renkei.graphql.federation.schema import schema as federation_schema
from renkei.graphql.tenant.schema import schema as tenant_schema
from renkei.graphql.widgets.bundle import ROOT

QUERIES_JS = (ROOT / "src" / "queries.js").read_text(encoding="utf-8")
QUERIES = dict(re.findall(r"^export const (\w+) = `([^`]*)`;", QUERIES_JS, re.MULTILINE))
FLAGS = {"month": "byMonth", "grade": "byGrade", "municipality": "byMunicipality"}


def camel(name: str) -> str:
    """As the widget's federationField (and strawberry's auto_camel_case) spell it."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def federation_query(metric: str, breakdown: tuple[str, ...]) -> str:
    flags = "".join(f", {FLAGS[d]}: true" for d in breakdown)
    return QUERIES["FEDERATION_METRIC"].replace("%FIELD%", camel(metric)).replace("%FLAGS%", flags)


def errors(schema, query: str) -> list[str]:
    return [e.message for e in validate(schema, parse(query))]


def test_the_widget_queries_are_found():
    assert set(QUERIES) == {"TENANT_METRIC", "FEDERATION_METRIC"}
    assert all("${" not in query for query in QUERIES.values())


def test_the_tenant_query_is_valid_against_the_tenant_schema():
    assert errors(tenant_schema.graphql_schema, QUERIES["TENANT_METRIC"]) == []


@pytest.mark.parametrize("metric", sorted(metrics.PREFECTURE_WIDE_METRICS))
def test_the_federation_query_is_valid_for_every_metric_and_breakdown(metric):
    spec = metrics.METRICS[metric]
    allowed = [d for d in spec.dimensions if d in FLAGS] + ["municipality"]
    for size in range(len(allowed) + 1):
        for breakdown in itertools.combinations(allowed, size):
            query = federation_query(metric, breakdown)
            assert errors(federation_schema._schema, query) == [], (metric, breakdown)


def test_a_widget_asking_the_federation_for_futoko_is_refused_by_the_schema():
    # 不登校 is released to its municipality only: a widget on a prefecture page gets an error
    assert errors(federation_schema._schema, federation_query("futoko", ())) == [
        "Cannot query field 'futoko' on type 'Prefecture'."
    ]


def test_a_breakdown_the_metric_does_not_have_is_refused_by_the_schema():
    query = federation_query("long_term_absence", ("month",))
    assert errors(federation_schema._schema, query)


# -- against data -----------------------------------------------------------------------------


@pytest.fixture
def loaded(shinjuku_with_data, make_user, shinjuku):
    return make_user("widget-board", "board_analyst", municipality=shinjuku)


@pytest.mark.django_db
@pytest.mark.slow
@pytest.mark.parametrize(
    ("metric", "breakdown"),
    [
        ("long_term_absence", ["grade"]),
        ("attendance_rate", ["month"]),
        ("attendance_rate", None),
    ],
)
def test_the_tenant_query_answers_what_the_widgets_read(
    client, loaded, shinjuku, metric, breakdown
):
    # given a board analyst's session (the widget's session mode)
    client.force_login(loaded)
    body = {
        "query": QUERIES["TENANT_METRIC"],
        "variables": {"name": metric, "schoolYear": 2025, "breakdown": breakdown},
    }

    # when
    response = client.post(
        f"/m/{shinjuku.code}/graphql", data=json.dumps(body), content_type="application/json"
    )

    # then: the fields the widgets read are there
    assert response.status_code == 200, response.content
    data = response.json()
    assert "errors" not in data, data
    definition = next(m for m in data["data"]["metrics"] if m["name"] == metric)
    assert definition["labelJa"] and definition["unit"]
    table = data["data"]["metric"]
    assert table["k"] >= 1 and table["cells"]
    for cell in table["cells"]:
        assert [part["dimension"] for part in cell["key"]] == table["dimensions"]
        assert all(part["label"] for part in cell["key"])
        if cell["suppressed"]:
            # The value is withheld; the pupils may be a released count of their own (an
            # attendance rate whose days are withheld still says how many pupils it covers).
            assert cell["value"] is None
            assert cell["pupils"] is None or cell["pupils"] >= table["k"]
