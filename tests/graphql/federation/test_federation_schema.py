"""The subgraph contract: SDL snapshot, federation v2 entities, no pupil-level type, limits."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
)

from renkei.graphql.federation import schema as federation

SNAPSHOT = Path(federation.__file__).with_name("schema.graphql")


def service_sdl() -> str:
    result = federation.schema.execute_sync("{ _service { sdl } }")
    assert result.errors is None
    return result.data["_service"]["sdl"]


def test_sdl_snapshot_is_up_to_date():
    """A change of the subgraph's contract must be deliberate: update the snapshot with
    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/graphql/federation -k snapshot."""
    sdl = service_sdl().rstrip() + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(sdl, encoding="utf-8")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing; run with UPDATE_SNAPSHOTS=1"
    assert SNAPSHOT.read_text(encoding="utf-8") == sdl, (
        "The federation schema changed. If that is intended, run "
        "UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/graphql/federation -k snapshot "
        "and commit renkei/graphql/federation/schema.graphql."
    )


def test_service_sdl_is_a_federation_2_subgraph_with_both_entities():
    sdl = service_sdl()
    assert re.search(r'@link\(url: "https://specs\.apollo\.dev/federation/v2\.\d+"', sdl)
    assert 'type Prefecture @key(fields: "code")' in sdl
    assert 'type Municipality @key(fields: "code")' in sdl


def test_every_metric_of_the_registry_is_a_field_with_its_own_breakdowns():
    from renkei.edudata.metrics import METRICS, PREFECTURE_WIDE_METRICS

    gql = federation.schema._schema
    for type_name, extra in (("Prefecture", {"byMunicipality"}), ("Municipality", set())):
        fields = gql.type_map[type_name].fields
        # 不登校 is released to its municipality only: no field of the federation has it
        assert "futoko" in METRICS and "futoko" not in PREFECTURE_WIDE_METRICS
        assert not {n for n in fields if "futoko" in n.lower()}, type_name
        for spec in PREFECTURE_WIDE_METRICS.values():
            camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), spec.name)
            args = set(fields[camel].args)
            wanted = {"schoolYear", *extra}
            wanted |= {{"month": "byMonth", "grade": "byGrade"}[d] for d in spec.dimensions}
            assert args == wanted, (type_name, spec.name, args)


# -- no type can hold a single pupil ---------------------------------------------------------

# Every object type of the schema, and why it cannot hold a pupil. A new type fails this
# test until it is reviewed and added here.
ALLOWED_OBJECT_TYPES = {
    "Query": "entry points: a prefecture, a municipality, the metric catalogue",
    "Prefecture": "a public body: code, name, its municipalities, metric tables",
    "Municipality": "a public body: code, name, metric tables",
    "MetricResult": "a released table: cells of >= k pupils or withheld cells",
    "MetricCell": "one released (or withheld) aggregate cell",
    "CodeLabel": "the label of a code of a fixed hierarchy (school year, grade, category) "
    "or of a municipality",
    "MunicipalityAnswer": "whether a municipality answered",
    "Revision": "that a municipality's figures of a school year were revised, the day and "
    "the kind of change (no count, nothing personal)",
    "MetricDefinition": "the registry entry of a metric",
    "_Service": "federation: the SDL",
}
PUPIL_WORDS = re.compile(
    r"student|pupil(?!s$)|child|person|people|pseudonym|identity|birth|sex|gender|address|"
    r"familyname|givenname|kana|upn|principal|email|phone|attendancenumber|shusseki|"
    r"sourcedid|studentid|userid|enrollment|homeroom|class(?!ification)|survey|reason_text|"
    r"note|symptom|score$|rating|evaluation|day$|date$|visitedat",
    re.IGNORECASE,
)


def _named(t):
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def test_every_field_that_reads_data_declares_who_may_use_it():
    # Fields of the entities read their prefecture's data: each declares its permission
    # class. The root fields resolve an entity from a code (as _entities does) and check it
    # there; metrics lists definitions, for analysts only.
    declared = {}
    for name in ("Prefecture", "Municipality", "Query"):
        definition = federation.schema.get_type_by_name(name)
        for field in definition.fields:
            classes = [
                type(p)
                for e in field.extensions
                if type(e).__name__ == "PermissionExtension"
                for p in e.permissions
            ]
            declared[(name, field.python_name)] = classes
    for (type_name, field), classes in declared.items():
        if type_name == "Prefecture" and field not in ("code", "name"):
            assert classes == [federation.AnalystOfThisPrefecture], field
        if type_name == "Municipality" and field not in ("code", "name", "prefecture_code"):
            assert classes == [federation.AnalystOfThisMunicipality], field
    assert declared[("Query", "metrics")] == [federation.PrefectureAnalyst]
    assert declared[("Prefecture", "long_term_absence")]  # the metrics are among them


def test_no_type_in_the_schema_can_hold_a_single_pupil():
    gql = federation.schema._schema
    own = {
        name: t
        for name, t in gql.type_map.items()
        if not name.startswith("__") and not name.startswith(("link__", "federation__"))
    }
    objects = {n for n, t in own.items() if isinstance(t, GraphQLObjectType)}
    assert objects == set(ALLOWED_OBJECT_TYPES), objects ^ set(ALLOWED_OBJECT_TYPES)
    # No input types, no interfaces: nothing can be written, nothing is polymorphic.
    assert not [n for n, t in own.items() if isinstance(t, GraphQLInputObjectType)]
    assert not [n for n, t in own.items() if isinstance(t, GraphQLInterfaceType)]
    # The only union is federation's _Entity, and it holds the two public bodies.
    unions = {n: t for n, t in own.items() if isinstance(t, GraphQLUnionType)}
    assert set(unions) == {"_Entity"}
    assert {t.name for t in unions["_Entity"].types} == {"Prefecture", "Municipality"}
    scalars = {n for n, t in own.items() if isinstance(t, GraphQLScalarType)}
    assert scalars <= {"String", "Int", "Float", "Boolean", "_Any", "_FieldSet"}, scalars
    for name in objects:
        for field_name, field in own[name].fields.items():
            assert not PUPIL_WORDS.search(field_name), f"{name}.{field_name}"
            for arg in field.args:
                assert not PUPIL_WORDS.search(arg), f"{name}.{field_name}({arg})"
            target = _named(field.type)
            assert target.name != "ID", f"{name}.{field_name}: no identifiers of rows"
            if field_name == "pupils":
                # A count (released only when >= k), never a list of pupils.
                assert target.name == "Int" and not isinstance(field.type, GraphQLList)
    # The enum of answer states is about municipalities.
    enums = {n for n, t in own.items() if isinstance(t, GraphQLEnumType)}
    assert enums <= {"AnswerStatus", "link__Purpose"}, enums


# -- limits and masking ----------------------------------------------------------------------


def test_introspection_only_with_debug(settings):
    settings.DEBUG = False
    result = federation.schema.execute_sync("{ __schema { types { name } } }")
    assert result.errors and "introspection" in result.errors[0].message.lower()
    settings.DEBUG = True
    assert federation.schema.execute_sync("{ __schema { queryType { name } } }").errors is None
    # _service, which routers use to compose, works either way
    settings.DEBUG = False
    assert federation.schema.execute_sync("{ _service { sdl } }").errors is None


def test_deep_queries_are_refused(settings):
    settings.GRAPHQL_MAX_DEPTH = 2
    result = federation.schema.execute_sync(
        '{ prefecture(code: "13") { longTermAbsence(schoolYear: 2025) { labels { code } } } }'
    )
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


def test_many_aliases_are_refused():
    aliases = " ".join(f"a{i}: metrics {{ name }}" for i in range(federation.MAX_ALIASES + 1))
    result = federation.schema.execute_sync("{ " + aliases + " }")
    assert result.errors and "aliases" in result.errors[0].message.lower()


def test_huge_documents_are_refused():
    result = federation.schema.execute_sync("{ " + " ".join(["metrics { name }"] * 600) + " }")
    assert result.errors and "token" in result.errors[0].message.lower()


def test_unexpected_errors_are_masked_and_ours_are_not(run, world, monkeypatch):
    from renkei.graphql.federation import fanout

    def broken(code):
        raise RuntimeError("SELECT secret FROM m131016.edudata_student")

    monkeypatch.setattr(fanout, "prefecture_targets", broken)
    analyst = world.users["fed-pref13"]
    result = run('{ prefecture(code: "13") { longTermAbsence(schoolYear: 2025) { k } } }', analyst)
    assert result.errors[0].message == federation.MASKED_MESSAGE
    assert "secret" not in str(result.errors) + str(result.data)
    refused = run('{ prefecture(code: "27") { name } }', analyst)
    assert "大阪府（27）のデータを見る権限がありません" in refused.errors[0].message


@pytest.mark.parametrize("year", [1999, 2101])
def test_school_year_out_of_range_is_a_clear_error(run, world, year):
    query = '{ municipality(code: "CODE") { longTermAbsence(schoolYear: YEAR) { k } } }'
    result = run(
        query.replace("CODE", world.codes[0]).replace("YEAR", str(year)), world.users["fed-pref13"]
    )
    assert f"年度 {year} は範囲外です" in result.errors[0].message


def test_futoko_is_refused_to_a_prefecture_analyst_with_no_number(run, world):
    analyst = world.users["fed-pref13"]
    for query in (
        '{ prefecture(code: "13") { futoko(schoolYear: 2025) { k } } }',
        '{ municipality(code: "CODE") { futoko(schoolYear: 2025, byGrade: true) { k } } }',
        '{ prefecture(code: "13") { municipalities { futoko(schoolYear: 2025) { k } } } }',
    ):
        result = run(query.replace("CODE", world.codes[0]), analyst)
        assert result.data is None, query
        assert "Cannot query field 'futoko'" in result.errors[0].message, query
    # nor is it in the catalogue an analyst reads
    result = run("{ metrics { name } }", analyst)
    assert "futoko" not in {m["name"] for m in result.data["metrics"]}
    assert "long_term_absence" in {m["name"] for m in result.data["metrics"]}
