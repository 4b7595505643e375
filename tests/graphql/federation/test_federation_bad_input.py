"""Bad input and forged credentials at the federation: a 400/401/413 with one GraphQL-shaped
error (a stable code, a message in the caller's language), never a 500, never plain text,
never a schema hint."""

from __future__ import annotations

import json
import logging
import time

import jwt
import pytest
from django.db import OperationalError
from fed_world import SCHOOL_YEAR

from renkei.graphql.federation import auth, fanout
from renkei.platform import service_tokens
from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

URL = "/federation/graphql"
METRIC = (
    f'{{ prefecture(code: "13") {{ attendanceRate(schoolYear: {SCHOOL_YEAR}) {{ complete }} }} }}'
)


@pytest.fixture
def bearer(world):
    token = auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_HOST": "localhost"}


def raw_post(client, body: bytes | str, headers, content_type="application/json", url=URL):
    response = client.post(url, data=body, content_type=content_type, **headers)
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.status_code, response.json()


def only_error(body: dict) -> dict:
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["message"] and "Did you mean" not in error["message"], error
    return error


def nested(depth: int) -> bytes:
    return (
        '{"query": "{ metrics { name } }", "variables": {"x": ' + "[" * depth + "]" * depth + "}}"
    ).encode()


BODIES = [
    ("a string", b'"x"', 400, "BAD_REQUEST"),
    ("a number", b"123", 400, "BAD_REQUEST"),
    ("null", b"null", 400, "BAD_REQUEST"),
    ("true", b"true", 400, "BAD_REQUEST"),
    ("invalid UTF-8", b'{"query": "\xc3\x28"}', 400, "INVALID_ENCODING"),
    ("UTF-16", json.dumps({"query": METRIC}).encode("utf-16"), 400, "INVALID_ENCODING"),
    ("deeply nested JSON", nested(50_000), 400, "JSON_TOO_DEEP"),
    ("query a number", json.dumps({"query": 5}).encode(), 400, "BAD_REQUEST"),
    ("query a list", json.dumps({"query": [METRIC]}).encode(), 400, "BAD_REQUEST"),
    ("query an object", json.dumps({"query": {}}).encode(), 400, "BAD_REQUEST"),
    ("no query", b"{}", 400, "BAD_REQUEST"),
    (
        "variables a list",
        json.dumps({"query": METRIC, "variables": []}).encode(),
        400,
        "BAD_REQUEST",
    ),
    (
        "variables a number",
        json.dumps({"query": METRIC, "variables": 1}).encode(),
        400,
        "BAD_REQUEST",
    ),
    ("a batch", json.dumps([{"query": METRIC}]).encode(), 400, "BATCHING_NOT_SUPPORTED"),
    ("syntax error", json.dumps({"query": "{ prefecture("}).encode(), 400, "GRAPHQL_PARSE_FAILED"),
    (
        "an unknown operationName",
        json.dumps({"query": METRIC, "operationName": "Nope"}).encode(),
        400,
        "BAD_REQUEST",
    ),
    (
        "NUL in a variable",
        json.dumps(
            {
                "query": "query($c: String!) { municipality(code: $c) { name } }",
                "variables": {"c": "13\x001130"},
            }
        ).encode(),
        400,
        "CONTROL_CHARACTER",
    ),
    (
        "NUL escaped in the query",
        b'{"query": "{ municipality(code: \\"\\\\u0000\\") { name } }"}',
        400,
        "CONTROL_CHARACTER",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), BODIES, ids=[b[0] for b in BODIES])
def test_bad_bodies_are_graphql_refusals(client, bearer, case, body, status, code):
    got, answer = raw_post(client, body, bearer)
    assert (got, only_error(answer)["extensions"]["code"]) == (status, code)


def test_a_shift_jis_body(client, bearer):
    body = json.dumps({"query": METRIC}, ensure_ascii=False).encode("cp932")
    got, answer = raw_post(client, body, bearer, content_type="application/json; charset=shift_jis")
    assert (got, only_error(answer)["extensions"]["code"]) == (400, "INVALID_ENCODING")


def test_a_5_mb_body_is_413_json(client, bearer):
    body = json.dumps({"query": METRIC, "variables": {"x": "a" * 5_000_000}}).encode()
    got, answer = raw_post(client, body, bearer)
    assert (got, only_error(answer)["extensions"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        ({"method": "get"}, 405, "METHOD_NOT_ALLOWED"),
        ({"content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"headers": {"HTTP_ORIGIN": "https://evil.example"}}, 403, "FORBIDDEN"),
        ({"headers": {"HTTP_AUTHORIZATION": "Bearer rkf1.forged"}}, 200, "UNAUTHENTICATED"),
    ],
)
def test_every_refusal_before_graphql_is_json_with_a_code(client, world, request_, status, code):
    headers = {"HTTP_HOST": "localhost", **request_.get("headers", {})}
    if request_.get("method") == "get":
        response = client.get(URL, **headers)
    else:
        response = client.post(
            URL,
            data=json.dumps({"query": METRIC}),
            content_type=request_.get("content_type", "application/json"),
            **headers,
        )
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_messages_follow_accept_language(client, bearer, world):
    _, ja = raw_post(client, b"null", bearer)
    _, en = raw_post(client, b"null", {**bearer, "HTTP_ACCEPT_LANGUAGE": "en"})
    assert "JSON オブジェクト" in only_error(ja)["message"]
    assert "JSON object" in only_error(en)["message"]
    # refusals by the access rules too
    client.force_login(world.users["fed-board"])
    _, en = raw_post(
        client,
        json.dumps({"query": METRIC}),
        {"HTTP_HOST": "localhost", "HTTP_ACCEPT_LANGUAGE": "en"},
    )
    error = en["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"].startswith("Only prefecture analysts"), error


# -- arguments ----------------------------------------------------------------------------------


def post(client, bearer, query, variables=None):
    return raw_post(client, json.dumps({"query": query, "variables": variables or {}}), bearer)


@pytest.mark.parametrize("year", [-1, 1999, 2101, 2147483647])
def test_school_years_out_of_range(client, bearer, year):
    got, answer = post(
        client,
        bearer,
        METRIC.replace(str(SCHOOL_YEAR), "$y").replace(
            "{ prefecture", "query($y: Int!) { prefecture"
        ),
        {"y": year},
    )
    codes = [e["extensions"]["code"] for e in answer["errors"]]
    assert (got, codes) == (400, ["BAD_USER_INPUT"]), answer
    assert "範囲外" in answer["errors"][0]["message"]


def test_a_string_variable_given_an_int(client, bearer):
    got, answer = post(
        client, bearer, "query($c: String!) { prefecture(code: $c) { name } }", {"c": 13}
    )
    assert (got, only_error(answer)["extensions"]["code"]) == (400, "BAD_USER_INPUT")


def test_no_schema_suggestions(client, bearer, settings):
    settings.DEBUG = False
    got, answer = post(
        client,
        bearer,
        '{ prefecture(code: "13") { attendanceRat(schoolYear: '
        f"{SCHOOL_YEAR}) {{ complet }} }} }}",
    )
    assert got == 400
    text = json.dumps(answer)
    assert "Did you mean" not in text and "attendanceRate" not in text
    assert {e["extensions"]["code"] for e in answer["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}


ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Municipality { name } } }"


@pytest.mark.parametrize(
    "representation",
    [
        {"__typename": "Municipality"},
        {"__typename": "Pupil", "code": "131130"},
        {
            "__typename": "Query",
            "code": "131130",
        },  # a type, but not an entity (found by the fuzzer)
        {"__typename": "Municipality", "code": "131130", "extra": 1},
        {"__typename": "Municipality", "code": {"x": 1}},
        {"__typename": "Municipality", "code": ["131130"]},
        "131130",
    ],
)
def test_malformed_entity_representations(client, bearer, world, representation):
    good = {"__typename": "Municipality", "code": world.codes[0]}
    got, answer = post(client, bearer, ENTITIES, {"r": [good, representation]})
    assert got == 200, answer
    assert answer["data"]["_entities"][0]["name"]  # the good one still answers
    assert answer["data"]["_entities"][1] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["path"] == ["_entities", 1]
    assert "__typename" in error["message"]


# -- forged service tokens ------------------------------------------------------------------------


def service_token(key: str, code: str, body: dict) -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "iss": service_tokens.SERVICE_TOKEN_ISSUER,
            "aud": code,
            "sub": f"prefecture:{code[:2]}",
            "iat": now,
            "exp": now + 30,
            "req": service_tokens.request_digest(body),
        },
        key,
        algorithm="HS256",
    )


@pytest.mark.parametrize(
    "key", ["renkei-embedded-demo-only-not-secret", "build-only-not-a-secret", "x" * 64]
)
def test_a_service_token_signed_with_any_other_key_is_refused(client, world, key):
    code = world.codes[0]
    body = {
        "municipality": code,
        "metric": "attendance_rate",
        "school_year": SCHOOL_YEAR,
        "breakdown": [],
    }
    got, answer = raw_post(
        client,
        json.dumps(body),
        {
            "HTTP_HOST": "localhost",
            "HTTP_AUTHORIZATION": f"Bearer {service_token(key, code, body)}",
        },
        url="/federation/tenant",
    )
    assert (got, only_error(answer)["extensions"]["code"]) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'"x"',
        b"\xff",
        b'{"municipality": []}',
        b'{"municipality": "131130", "metric": "x", "school_year": "1"}',
    ],
)
def test_the_tenant_endpoint_refuses_bad_bodies_as_json(client, world, body):
    got, answer = raw_post(client, body, {"HTTP_HOST": "localhost"}, url="/federation/tenant")
    assert got == 400 and only_error(answer)["extensions"]["code"] in {
        "BAD_REQUEST",
        "INVALID_JSON",
        "INVALID_ENCODING",
        "JSON_TOO_DEEP",
    }


# -- logs -----------------------------------------------------------------------------------------


def test_refusals_are_quiet_one_line_infos(client, world, caplog):
    caplog.set_level(logging.INFO)
    huge = "9" * 1_000_000
    teacher = {"HTTP_HOST": "localhost"}
    client.force_login(world.users["fed-board"])
    for _ in range(3):
        raw_post(
            client, json.dumps({"query": f'{{ municipality(code: "{huge}") {{ name }} }}'}), teacher
        )
    records = [r for r in caplog.records if r.name.startswith(("renkei", "strawberry"))]
    assert records and all(r.levelno == logging.INFO and r.exc_info is None for r in records)
    assert all(len(r.getMessage()) < 300 for r in records)


def test_an_error_of_ours_before_execution_is_masked_not_blamed_on_the_caller(
    client, bearer, monkeypatch, caplog, settings
):
    """strawberry wraps any exception before execution as a path-less error, as it does a bad
    variable: it must stay an internal error (masked, logged with its cause)."""
    import strawberry.schema.schema as strawberry_schema

    settings.DEBUG = False

    def broken(*args, **kwargs):
        raise RuntimeError("connection to 髙橋's row failed")

    monkeypatch.setattr(strawberry_schema, "parse", broken)
    caplog.set_level(logging.INFO)
    _, answer = post(client, bearer, METRIC)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "髙橋" not in json.dumps(answer, ensure_ascii=False)
    rid = error["extensions"]["requestId"]
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert rid in logged.getMessage() and logged.exc_info[0] is RuntimeError


def test_the_database_out_of_reach_is_a_503_to_retry(client, bearer, monkeypatch):
    def unreachable(code):
        raise OperationalError("connection to server at 10.9.8.7, port 6432 failed")

    monkeypatch.setattr(fanout, "prefecture_targets", unreachable)
    response = client.post(
        URL, data=json.dumps({"query": METRIC}), content_type="application/json", **bearer
    )
    assert response.status_code == 503 and response["Retry-After"] == "10"
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE" and "保存されていません" in error["message"]
    assert "10.9.8.7" not in response.content.decode()
