"""The endpoint itself: CSRF for sessions, POST only, no introspection without DEBUG, depth,
cost and alias limits, malformed documents, masked internal errors."""

import json

import pytest
from django.db import OperationalError
from django.test import Client
from graphql import specified_rules
from tenant_api_support import access_log_rows

from renkei.graphql import edge
from renkei.graphql.tenant import resolvers, validation
from renkei.graphql.tenant.views import graphql_view

pytestmark = pytest.mark.django_db


def test_session_requests_need_the_csrf_token(gql, people, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["teacher_a"])
    r = gql(client, "{ me { username } }")
    assert (r.status, r.codes) == (403, ["CSRF_FAILED"])
    client.get("/m/131130/accounts/login/")  # any page with a form sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    r = gql(client, "{ me { username } }", HTTP_X_CSRFTOKEN=csrf)
    assert r.status == 200 and r.data["me"]["username"] == "teacher-a"


def test_post_only(client, people):
    client.force_login(people["teacher_a"])
    response = client.get("/m/131130/graphql", {"query": "{ me { username } }"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_json_only(client, people):
    client.force_login(people["teacher_a"])
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
        response = client.generic(
            "POST", "/m/131130/graphql", "query={me{username}}", content_type=content_type
        )
        assert response.status_code == 415, content_type
    response = client.post(
        "/m/131130/graphql", data="{ me { username } }", content_type="application/graphql"
    )
    assert response.json() == {"data": {"me": {"username": "teacher-a"}}}


def test_routing_by_host(client, gql, people, world):
    client.force_login(people["teacher_a"])
    r = gql(client, "{ municipality { code } }", host=True)
    assert r.data == {"municipality": {"code": "131130"}}


def test_introspection_is_off_unless_debug(client, gql, people, settings):
    client.force_login(people["teacher_a"])
    settings.DEBUG = False
    for query in (
        "{ __schema { types { name } } }",
        '{ __type(name: "Pupil") { name } }',
        "{ me { ... on Viewer { __schema: username } } }",
    ):
        r = gql(client, query)
        if "__schema:" in query:  # an alias named like introspection is just an alias
            assert not r.errors
            continue
        assert r.status == 400 and r.codes == ["INTROSPECTION_DISABLED"], r.text
        assert "data" not in r.body
    r = gql(client, "{ me { __typename username } }")  # clients add __typename everywhere
    assert not r.errors
    settings.DEBUG = True
    r = gql(client, "{ __schema { queryType { name } } }")
    assert r.data == {"__schema": {"queryType": {"name": "Query"}}}


def test_depth_limit(client, gql, people, world, settings):
    client.force_login(people["teacher_a"])
    deep = (
        "{ schools { homerooms { school { homerooms { school { homerooms { school { "
        "homerooms { school { name } } } } } } } } } }"
    )
    r = gql(client, deep)
    assert r.status == 400 and r.codes == ["QUERY_TOO_DEEP"], r.text
    assert "上限 8 段" in r.errors[0]["message"]
    fine = "{ schools { homerooms { school { name } } } }"
    assert not gql(client, fine).errors
    settings.GRAPHQL_MAX_DEPTH = 2  # the query above is 3 deep
    assert gql(client, fine).codes == ["QUERY_TOO_DEEP"]


def test_depth_limit_counts_through_fragments(client, gql, people):
    client.force_login(people["teacher_a"])
    query = """{ schools { ...S } }
      fragment S on School { homerooms { school { homerooms { school { ...T } } } } }
      fragment T on School { homerooms { school { homerooms { school { name } } } } }"""
    assert gql(client, query).codes == ["QUERY_TOO_DEEP"]


def test_cost_limit_stops_many_boards_in_one_request(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    many = " ".join(
        f"b{i}: studentBoard(studentId: {world['a1'].pk}) {{ asOf }}" for i in range(11)
    )
    r = gql(client, f"{{ {many} }}")
    assert r.status == 400 and r.codes == ["QUERY_TOO_COSTLY"], r.text
    assert access_log_rows(shibuya) == []  # refused before running: nothing read
    # The same through a fragment spread in many aliases is counted per spread.
    spread = " ".join(
        f"c{i}: classBoard(homeroomId: {world['hA'].pk}) {{ ...P }}" for i in range(6)
    )
    r = gql(client, f"{{ {spread} }} fragment P on ClassBoard {{ asOf }}")
    assert r.codes == ["QUERY_TOO_COSTLY"]


def test_alias_limit(client, gql, people):
    client.force_login(people["teacher_a"])
    r = gql(client, "{ " + " ".join(f"m{i}: me {{ username }}" for i in range(31)) + " }")
    assert r.status == 400 and "TOO_MANY_ALIASES" in r.codes


@pytest.mark.parametrize(
    "query",
    [
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",  # cycle
        "{ ...Missing }",
        "{ me { username } ",  # syntax
        "{ nope }",
    ],
)
def test_malformed_documents_are_400_not_500(client, gql, people, query):
    client.force_login(people["teacher_a"])
    r = gql(client, query)
    assert r.status == 400 and r.errors, r.text


def test_malformed_bodies(client, people):
    client.force_login(people["teacher_a"])
    for body in ("{not json", "42", '"{ me { username } }"', json.dumps({"variables": {}})):
        response = client.post("/m/131130/graphql", data=body, content_type="application/json")
        assert response.status_code == 400, body


def test_internal_errors_are_masked_unless_debug(client, gql, people, monkeypatch, settings):
    def boom(ctx):
        raise RuntimeError("secret detail of the server")

    monkeypatch.setattr(resolvers, "resolve_me", boom)
    client.force_login(people["teacher_a"])
    settings.DEBUG = False
    r = gql(client, "{ me { username } }")
    assert r.codes == ["INTERNAL_SERVER_ERROR"] and "secret detail" not in r.text
    settings.DEBUG = True
    assert "secret detail" in gql(client, "{ me { username } }").text


@pytest.mark.parametrize("language, words", [("ja", "保存されていません"), ("en", "was not saved")])
def test_the_database_out_of_reach_is_a_503_to_retry(client, people, monkeypatch, language, words):
    """Its server or the pooler restarting mid-request: not a masked internal error but an
    answer that says to try again, and nothing of the connection's details."""

    def unreachable(ctx):
        raise OperationalError("connection to server at 10.9.8.7, port 6432 failed")

    monkeypatch.setattr(resolvers, "resolve_me", unreachable)
    client.force_login(people["teacher_a"])
    response = client.post(
        "/m/131130/graphql",
        data=json.dumps({"query": "{ me { username } }"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 503 and response["Retry-After"] == "10"
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE" and words in error["message"]
    assert error["extensions"]["requestId"] and "10.9.8.7" not in response.content.decode()


def test_the_view_passes_validation_rules():
    """graphene-django replaces graphql-core's rules with the ones passed: ours must keep the
    spec's rules and add the limits."""
    rules = graphql_view().view_initkwargs["validation_rules"]
    assert set(specified_rules) <= set(rules)
    assert {validation.DepthLimit, validation.CostLimit, validation.AliasLimit} <= set(rules)
    assert validation.NoIntrospection in validation.rules_for_request(debug=False)
    assert validation.NoIntrospection not in validation.rules_for_request(debug=True)


def test_a_query_text_is_parsed_and_validated_once_per_process(
    client, gql, people, world, monkeypatch
):
    """The widgets send the same texts on every request: the answer is the same the second
    time, without parsing or validating again. A text that failed is checked every time."""
    edge._remembered_document.cache_clear()
    validation._passed.clear()
    parsed, validated = [], []
    real_parse, real_validate = edge.parse, validation.validate
    monkeypatch.setattr(edge, "parse", lambda *a, **k: parsed.append(1) or real_parse(*a, **k))
    monkeypatch.setattr(
        validation, "validate", lambda *a, **k: validated.append(1) or real_validate(*a, **k)
    )
    client.force_login(people["teacher_a"])
    query = "query Once($id: ID!) { classBoard(homeroomId: $id) { homeroom { name } } }"
    first = gql(client, query, {"id": world["hA"].pk})
    again = gql(client, query, {"id": world["hA"].pk})
    assert first.data == again.data and first.data["classBoard"]["homeroom"]["name"]
    assert (len(parsed), len(validated)) == (1, 1)

    for _ in range(2):
        assert gql(client, "{ notAFieldOfQuery }").codes == ["GRAPHQL_VALIDATION_FAILED"]
    assert (len(parsed), len(validated)) == (2, 3)

    # A long text is not kept (a parsed document takes about 100 times its text in memory).
    long = "{ me { username } }" + " " * edge.REMEMBERED_QUERY_CHARS
    for _ in range(2):
        assert gql(client, long).data == {"me": {"username": "teacher-a"}}
    assert (len(parsed), len(validated)) == (4, 5)


def test_a_refused_query_is_worded_in_each_request_language(client, people):
    """Refusals are never remembered: each is worded for the request that gets it."""
    client.force_login(people["teacher_a"])
    deep = (
        "{ schools { homerooms { school { homerooms { school { homerooms { school { "
        "homerooms { school { name } } } } } } } } } }"
    )
    messages = {}
    for language in ("ja", "en", "ja"):
        response = client.post(
            "/m/131130/graphql",
            data=json.dumps({"query": deep}),
            content_type="application/json",
            HTTP_ACCEPT_LANGUAGE=language,
        )
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
        messages.setdefault(language, set()).add(error["message"])
    assert "段" in messages["ja"].pop() and "段" not in messages["en"].pop()
