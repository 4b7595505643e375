"""Bad input to the tenant API gets a 400 (or 413) with one GraphQL-shaped error, a stable
code and a message in the caller's language; never a 500, never a schema hint."""

from __future__ import annotations

import json
import logging

import pytest
from tenant_api_support import AS_OF

from renkei.accounts import tokens
from renkei.graphql.tenant import resolvers
from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db

ME = "{ me { username } }"


def raw_post(client, body: bytes | str, *, content_type="application/json", **extra):
    response = client.post("/m/131130/graphql", data=body, content_type=content_type, **extra)
    return response.status_code, response.json()


def only_error(body: dict) -> dict:
    assert "data" not in body or body["data"] is None, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["message"] and "Did you mean" not in error["message"], error
    return error


@pytest.fixture
def board(client, make_user, shibuya):
    client.force_login(make_user("board", "board_analyst", municipality=shibuya))
    return client


@pytest.fixture
def widget_token(make_user, shibuya):
    admin = make_user("admin-s", "tenant_admin", municipality=shibuya)
    return tokens.do_issue_token(
        admin, shibuya, name="グラフ", widget=True, metrics=["attendance_rate"], actor=TEST_ACTOR
    ).secret


def nested(depth: int) -> str:
    return '{"query": "{ me { username } }", "variables": ' + "[" * depth + "]" * depth + "}"


def fragment_chain(length: int) -> str:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length))
    return f"query {{ ...F0 }} {chain} fragment F{length} on Query {{ me {{ username }} }}"


BODIES = [
    ("not an object", b'"x"', 400, "BAD_REQUEST"),
    ("a number", b"123", 400, "BAD_REQUEST"),
    ("null", b"null", 400, "BAD_REQUEST"),
    ("true", b"true", 400, "BAD_REQUEST"),
    ("invalid UTF-8", b'{"query": "\xff\xfe{ me }"}', 400, "INVALID_ENCODING"),
    ("UTF-16", json.dumps({"query": ME}).encode("utf-16"), 400, "INVALID_ENCODING"),
    ("100k-deep JSON", nested(100_000).encode(), 400, "JSON_TOO_DEEP"),
    ("20-deep JSON", nested(20).encode(), 400, "JSON_TOO_DEEP"),
    ("broken JSON", b'{"query": ', 400, "INVALID_JSON"),
    ("query a number", json.dumps({"query": 1}).encode(), 400, "BAD_REQUEST"),
    ("query a list", json.dumps({"query": [ME]}).encode(), 400, "BAD_REQUEST"),
    ("query an object", json.dumps({"query": {"q": ME}}).encode(), 400, "BAD_REQUEST"),
    ("variables a list", json.dumps({"query": ME, "variables": [1]}).encode(), 400, "BAD_REQUEST"),
    ("variables a number", json.dumps({"query": ME, "variables": 3}).encode(), 400, "BAD_REQUEST"),
    (
        "operationName a number",
        json.dumps({"query": ME, "operationName": 3}).encode(),
        400,
        "BAD_REQUEST",
    ),
    ("a batch", json.dumps([{"query": ME}]).encode(), 400, "BATCHING_NOT_SUPPORTED"),
    (
        "3,000 chained fragments",
        json.dumps({"query": fragment_chain(3000)}).encode(),
        400,
        "QUERY_TOO_LARGE",
    ),
    (
        "20 chained fragments",
        json.dumps({"query": fragment_chain(20)}).encode(),
        400,
        "QUERY_TOO_DEEP",
    ),
    ("syntax error", json.dumps({"query": "{ me { "}).encode(), 400, "GRAPHQL_PARSE_FAILED"),
    (
        "NUL in a variable",
        json.dumps({"query": ME, "variables": {"x": "a\x00b"}}).encode(),
        400,
        "CONTROL_CHARACTER",
    ),
    (
        "NUL escaped in the query",
        b'{"query": "{ school(code: \\"\\\\u0000\\") { name } }"}',
        400,
        "CONTROL_CHARACTER",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), BODIES, ids=[b[0] for b in BODIES])
def test_bad_bodies_from_a_signed_in_board_analyst(board, case, body, status, code):
    got, answer = raw_post(board, body)
    assert (got, only_error(answer)["extensions"]["code"]) == (status, code)


@pytest.mark.parametrize(("case", "body", "status", "code"), BODIES, ids=[b[0] for b in BODIES])
def test_bad_bodies_from_a_one_metric_widget_token(client, widget_token, case, body, status, code):
    got, answer = raw_post(client, body, HTTP_AUTHORIZATION=f"Bearer {widget_token}")
    assert (got, only_error(answer)["extensions"]["code"]) == (status, code)


def test_a_shift_jis_body_is_refused_naming_the_charset(board):
    body = json.dumps({"query": ME}, ensure_ascii=False).encode("cp932")
    got, answer = raw_post(board, body, content_type="application/json; charset=shift_jis")
    error = only_error(answer)
    assert (got, error["extensions"]["code"]) == (400, "INVALID_ENCODING")
    assert "shift_jis" in error["message"]


def test_an_oversized_body_is_413_in_the_graphql_shape(board, settings):
    settings.GRAPHQL_MAX_BODY_BYTES = 64 * 1024
    body = json.dumps({"query": ME, "variables": {"x": "あ" * 5_000_000}}).encode()
    got, answer = raw_post(board, body)
    error = only_error(answer)
    assert (got, error["extensions"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert "64 KB" in error["message"]


def test_the_message_follows_accept_language(board):
    _, ja = raw_post(board, b"123")
    _, en = raw_post(board, b"123", HTTP_ACCEPT_LANGUAGE="en")
    assert "JSON オブジェクト" in only_error(ja)["message"]
    assert "JSON object" in only_error(en)["message"]


# -- arguments out of range --------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["0001-01-01", "0001-01-14", "9999-12-31", "1999-03-31"])
@pytest.mark.parametrize(
    ("board_field", "key"), [("classBoard(homeroomId", "hA"), ("studentBoard(studentId", "a1")]
)
def test_board_dates_outside_the_school_calendar(
    client, gql, people, world, as_of, board_field, key
):
    client.force_login(people["teacher_a"])
    query = f"query($id: ID!, $d: Date) {{ {board_field}: $id, asOf: $d) {{ asOf }} }}"
    answer = gql(client, query, {"id": str(world[key].pk), "d": as_of})
    assert (answer.status, answer.codes) == (400, ["BAD_USER_INPUT"]), answer.text
    assert "範囲外" in answer.errors[0]["message"]


def test_a_board_date_inside_the_calendar_still_works(client, gql, people, world):
    client.force_login(people["teacher_a"])
    answer = gql(
        client,
        "query($h: ID!, $d: Date) { classBoard(homeroomId: $h, asOf: $d) { asOf } }",
        {"h": str(world["hA"].pk), "d": AS_OF.isoformat()},
    )
    assert answer.errors == [] and answer.data["classBoard"]["asOf"] == AS_OF.isoformat()


@pytest.mark.parametrize("year", [-1, 1999, 2101, 2147483647])
def test_metric_years_outside_the_calendar(board, gql, year):
    answer = gql(
        board,
        'query($y: Int!) { metric(name: "attendance_rate", schoolYear: $y) { schoolYear } }',
        {"y": year},
    )
    assert (answer.status, answer.codes) == (400, ["BAD_USER_INPUT"]), answer.text
    assert "範囲外" in answer.errors[0]["message"]


@pytest.mark.parametrize(
    "query",
    [
        '{ school(code: "B11321130\\u00000012") { name } }',
        '{ metric(name: "attendance_rate", schoolYear: 2025, schoolCode: "\\u0000") { schoolYear } }',
    ],
)
def test_nul_in_an_argument_never_reaches_postgresql(board, gql, query):
    answer = gql(board, query)
    assert (answer.status, answer.codes) == (400, ["CONTROL_CHARACTER"]), answer.text


def test_a_string_variable_given_an_int_is_bad_user_input(board, gql):
    answer = gql(board, "query($c: String!) { school(code: $c) { name } }", {"c": 1})
    assert answer.status == 400 and answer.codes == ["BAD_USER_INPUT"], answer.text
    assert "INTERNAL" not in answer.text


def test_no_schema_suggestions_with_introspection_off(board, gql, settings):
    settings.DEBUG = False
    answer = gql(board, "{ studentBord { id } schools { nme } }")
    assert answer.status == 400 and set(answer.codes) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "Did you mean" not in answer.text and "studentBoard" not in answer.text


# -- logs ---------------------------------------------------------------------------------------


def test_a_refusal_is_one_info_line_without_the_query(board, caplog):
    caplog.set_level(logging.INFO)
    secret_looking = "髙橋一郎" * 1000
    raw_post(board, json.dumps({"query": "{ me { " + secret_looking}).encode())
    renkei = [r for r in caplog.records if r.name.startswith("renkei")]
    assert [r.levelno for r in renkei] == [logging.INFO]
    assert "GRAPHQL_PARSE_FAILED" in renkei[0].getMessage()
    assert all("髙橋" not in r.getMessage() and r.exc_info is None for r in caplog.records)


def test_an_unexpected_error_is_logged_with_the_request_id_the_answer_shows(
    board, gql, monkeypatch, caplog, settings
):
    settings.DEBUG = False

    def broken(ctx):
        raise RuntimeError("row 髙橋 broke")

    monkeypatch.setattr(resolvers, "resolve_me", broken)
    caplog.set_level(logging.INFO)
    answer = gql(board, ME)
    error = answer.errors[0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "髙橋" not in answer.text
    rid = error["extensions"]["requestId"]
    assert rid in error["message"]
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and rid in logged[0].getMessage()
    assert logged[0].exc_info and logged[0].exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    ("url", "host", "said"),
    [
        ("/m/999990/graphql", "localhost", "都道府県コード「99」はありません"),
        ("/m/131131/graphql", "localhost", "検査数字が違います"),
        (
            "/graphql",
            "999990.localhost",
            "「999990.localhost」に対応する自治体は登録されていません",
        ),
    ],
)
def test_an_unknown_tenant_is_a_graphql_404(client, url, host, said):
    response = client.post(
        url, data=json.dumps({"query": ME}), content_type="application/json", HTTP_HOST=host
    )
    assert response.status_code == 404
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND" and said in error["message"]
