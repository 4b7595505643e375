"""Fuzzing both GraphQL APIs over real HTTP (pytest-django's live_server) with schemathesis:
generated documents, valid and invalid, from the committed SDL, as three callers.

* 渋谷区's tenant API as a board analyst signed in with a session (cookie + CSRF token);
* 渋谷区's tenant API with a widget token limited to one metric (attendance_rate);
* the federation subgraph with a 東京都 (13) prefecture analyst's bearer token.

Every answer must be a GraphQL answer: no 5xx, a JSON object with ``data`` or ``errors``,
every error with ``extensions.code``. And it must stay in scope: nothing of a municipality
outside 東京都 for the prefecture analyst, nothing but its metric for the widget token, no
pupil board and no other municipality for the board analyst.

Bounded: MAX_EXAMPLES requests per caller, derandomized (the same documents every run).
All problems of a run are listed together, with the server's log of each (fuzz_support.py).

live_server makes these tests transactional: the server's threads (and the federation's
fan-out threads) only see committed rows. After each test pytest-django empties the public
schema, which also removes the municipalities tests/conftest.py onboards once per session, so
the public schema is put back as it was (``public_schema``). The synthetic records imported
into the session's municipalities for this module are removed again at its end.
"""

from __future__ import annotations

import os
import unicodedata

import pytest
import requests
from fuzz_support import (
    FEDERATION_SDL,
    MUNICIPALITY_CODE,
    PREFECTURE_CODE,
    TENANT_SDL,
    Answer,
    ServerLog,
    fuzz,
    load_schema,
    register_scalars,
    root_fields,
    strings,
)

from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.slow

# Requests per caller; RENKEI_FUZZ_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("RENKEI_FUZZ_EXAMPLES", "60"))
WIDGET_METRIC = "attendance_rate"
CSRF_SECRET = "fuzzFUZZfuzzFUZZfuzzFUZZfuzzFUZZ"  # any 32 letters: cookie and header must match

# Codes worth asking for: ours, 東京都's, 大阪's, and near misses.
CODES = [
    "13",
    "27",
    "131130",
    "131041",
    "271004",
    "13113",
    "1311300",
    "",
    "00",
    "99",
    "１３",
    " 13",
    "13\n",
    "131130'",
    "27100４",
]
YEARS = [2025, 2024, 2026, 0, -1, 1, 9999, 10000, 2147483647, -2147483648]
IDS = ["0", "-1", "1", "2", "999999999999999999999", "abc", "1.5", ""]
DIMENSIONS = ["month", "grade", "school", "municipality", "", "GRADE", "month "]


def _restore_public_schema(snapshot: str) -> None:
    """Empty the public schema (no post_migrate: no new content types; sequences left past
    the snapshot's ids) and load the snapshot, as Django's serialized_rollback does."""
    from django.core.management import call_command
    from django.db import connection

    connection.set_schema_to_public()
    call_command(
        "flush", interactive=False, inhibit_post_migrate=True, reset_sequences=False, verbosity=0
    )
    connection.creation.deserialize_db_from_string(snapshot)


@pytest.fixture(scope="module")
def public_snapshot(django_db_setup, django_db_blocker):
    """The public schema as this module found it (the session's municipalities, users, ...),
    put back when the module is done."""
    from django.db import connection

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        snapshot = connection.creation.serialize_db_to_string()
    yield snapshot
    with django_db_blocker.unblock():
        _restore_public_schema(snapshot)


def _empty_tables(schema: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        tables = [row[0] for row in cursor.fetchall()]
        empty = []
        for table in tables:
            cursor.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{schema}"."{table}")')
            if cursor.fetchone()[0]:
                empty.append(table)
    return empty


@pytest.fixture(scope="module")
def fuzz_world(public_snapshot, django_db_blocker, tmp_path_factory):
    """Small synthetic records (committed) in 渋谷区, 新宿区 and 大阪市, so that metrics and
    the federation's sums have something to add up; removed again afterwards (every table
    that was empty before is emptied). Returns a few real ids and school codes to ask for."""
    from django.db import connection

    from renkei.connectors.pipeline import do_import
    from renkei.demo import synth
    from renkei.edudata.models import Homeroom, ImportRun, Student
    from renkei.platform.audit import Actor
    from renkei.tenants.context import in_tenant
    from renkei.tenants.models import Municipality

    out = tmp_path_factory.mktemp("fuzz-synth")
    with django_db_blocker.unblock():
        municipalities = list(Municipality.objects.filter(code__in=["131130", "131041", "271004"]))
        empty_before = {m.schema_name: _empty_tables(m.schema_name) for m in municipalities}
        for seed, municipality in enumerate(municipalities):
            folder = out / municipality.code
            synth.generate(
                municipality.code, folder, students=60, days=40, seed=seed, school_year=2025
            )
            for connector, paths in (
                ("oneroster", [folder / "oneroster"]),
                ("c4th", sorted((folder / "c4th").glob("*.csv"))),
                ("msgraph", [folder / "msgraph"]),
            ):
                run = do_import(connector, municipality, actor=Actor.system("test"), paths=paths)
                assert run.status == ImportRun.Status.SUCCEEDED, (connector, run.message)
        shibuya = next(m for m in municipalities if m.code == "131130")
        with in_tenant(shibuya):
            ids = [str(pk) for pk in Homeroom.objects.values_list("pk", flat=True)[:2]]
            ids += [str(pk) for pk in Student.objects.values_list("pk", flat=True)[:2]]
        connection.set_schema_to_public()
    yield {"ids": ids, "schools": synth.school_codes("131130", 3) + synth.school_codes("131041", 1)}
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        for schema, tables in empty_before.items():
            # Together (foreign keys), but not a still-empty table guarded by a trigger: the
            # access log is append-only, TRUNCATE included.
            cursor.execute(
                "SELECT DISTINCT c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND NOT t.tgisinternal",
                [schema],
            )
            guarded = {row[0] for row in cursor.fetchall()} & set(_empty_tables(schema))
            emptied = [f'"{schema}"."{t}"' for t in tables if t not in guarded]
            if emptied:
                cursor.execute("TRUNCATE " + ", ".join(emptied))
        connection.set_schema_to_public()


@pytest.fixture
def public_schema(public_snapshot, transactional_db):
    """After a previous test of this module, pytest-django's flush emptied the public schema:
    load it again before this one."""
    from renkei.tenants.models import Municipality

    if not Municipality.objects.exists():
        _restore_public_schema(public_snapshot)


@pytest.fixture
def server_log():
    with ServerLog() as log:
        yield log


def _normalized(value) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip()


def _tenant_schema(fuzz_world):
    from renkei.edudata import metrics

    register_scalars(CODES)
    return load_schema(
        TENANT_SDL,
        dictionaries={
            "metric": [
                *sorted(metrics.METRICS),
                "",
                "unknown",
                f"{WIDGET_METRIC} ",
                "ATTENDANCE_RATE",
            ],
            "year": YEARS,
            "id": [*fuzz_world["ids"], *IDS],
            "dimension": DIMENSIONS,
            "school": [*fuzz_world["schools"], "", "B1", "131130"],
        },
        bindings={
            "Query.metric.name": "metric",
            "*.*.schoolYear": "year",
            "Query.metric.breakdown[*]": "dimension",
            "Query.metric.schoolCode": "school",
            "Query.school.code": "school",
            "Query.homeroom.id": "id",
            "Query.studentBoard.studentId": "id",
            "Query.classBoard.homeroomId": "id",
        },
    )


def _fail_on(problems, sent: int, caller: str) -> None:
    if problems:
        pytest.fail(
            f"{len(problems)} distinct problem(s) in {sent} requests as {caller}:\n\n"
            + "\n\n".join(p.report() for p in problems),
            pytrace=False,
        )


# -- scope ----------------------------------------------------------------------------------


def board_scope(answer: Answer) -> list[str]:
    """A board analyst reads 渋谷区's aggregates: never a pupil's board, never another
    municipality."""
    problems = []
    for key, name, _args in root_fields(answer.query):
        if name in ("studentBoard", "classBoard") and answer.data.get(key) is not None:
            problems.append(f"scope: a board analyst got data from {name}")
    for _key, text in strings(answer.data):
        if MUNICIPALITY_CODE.fullmatch(text) and text != "131130":
            problems.append(f"scope: data names municipality {text}")
    return problems


def widget_scope(answer: Answer) -> list[str]:
    """A widget token reads its one metric and nothing else."""
    problems = []
    for key, name, args in root_fields(answer.query):
        value = answer.data.get(key)
        if value is None:
            continue
        if name == "metric":
            asked = _normalized(args.get("name", ""))
            got = value.get("metric", WIDGET_METRIC) if isinstance(value, dict) else None
            if asked != WIDGET_METRIC or got != WIDGET_METRIC:
                problems.append(f"scope: widget token for {WIDGET_METRIC} read metric {asked!r}")
        elif name == "metrics":
            names = [m.get("name", "?") for m in value if isinstance(m, dict)]
            if len(value) > 1 or any(n not in ("?", WIDGET_METRIC) for n in names):
                problems.append(f"scope: widget token listed {len(value)} metrics {names}")
        elif name != "__typename":
            problems.append(f"scope: widget token got data from {name}")
    return problems


def _foreign(code) -> bool:
    return not _normalized(code).startswith("13")


def federation_scope(answer: Answer, foreign_names: list[str]) -> list[str]:
    """A 東京都 analyst sees nothing of a municipality or prefecture outside 東京都."""
    problems = []
    for key, name, args in root_fields(answer.query):
        value = answer.data.get(key)
        if value is None:
            continue
        if name in ("prefecture", "municipality") and _foreign(args.get("code", "")):
            problems.append(f"scope: {name}(code: {args.get('code')!r}) answered with data")
        if name == "_entities" and isinstance(value, list):
            representations = args.get("representations") or []
            for entity, rep in zip(value, representations, strict=False):
                code = rep.get("code") if isinstance(rep, dict) else None
                if entity is not None and (code is None or _foreign(code)):
                    problems.append(f"scope: _entities answered for representation {rep!r}")
    for key, text in strings(answer.data):
        if MUNICIPALITY_CODE.fullmatch(text) and not text.startswith("13"):
            problems.append(f"scope: data names municipality {text}")
        if key == "prefectureCode" and text != "13":
            problems.append(f"scope: data names prefecture {text}")
        if key == "code" and PREFECTURE_CODE.fullmatch(text) and text != "13":
            problems.append(f"scope: data names prefecture {text}")
        for foreign in foreign_names:
            if foreign in text:
                problems.append(f"scope: data names {foreign}")
    return problems


# -- the runs -------------------------------------------------------------------------------


def test_tenant_api_as_a_board_analyst_with_a_session(
    live_server, public_schema, fuzz_world, make_user, shibuya, server_log
):
    from django.conf import settings
    from django.test import Client

    board = make_user("fuzz-board", "board_analyst", municipality=shibuya)
    client = Client()
    client.force_login(board)  # a real session row: the server thread reads it
    session = requests.Session()
    session.headers["Cookie"] = (
        f"{settings.SESSION_COOKIE_NAME}="
        f"{client.cookies[settings.SESSION_COOKIE_NAME].value}; "
        f"{settings.CSRF_COOKIE_NAME}={CSRF_SECRET}"
    )
    session.headers["X-CSRFToken"] = CSRF_SECRET
    url = f"{live_server.url}/m/131130/graphql"
    me = session.post(url, json={"query": "{ me { username auth } }"}, timeout=30)
    assert me.json() == {"data": {"me": {"username": "fuzz-board", "auth": "session"}}}

    problems, sent = fuzz(
        _tenant_schema(fuzz_world),
        caller="board analyst (session)",
        url=url,
        session=session,
        check_scope=board_scope,
        max_examples=MAX_EXAMPLES,
        server_log=server_log,
    )
    _fail_on(problems, sent, "a board analyst")


def test_tenant_api_with_a_one_metric_widget_token(
    live_server, public_schema, fuzz_world, make_user, shibuya, server_log
):
    from renkei.accounts import tokens

    admin = make_user("fuzz-admin", "tenant_admin", municipality=shibuya)
    issued = tokens.do_issue_token(
        admin,
        shibuya,
        name="fuzz widget",
        role="board_analyst",
        widget=True,
        metrics=[WIDGET_METRIC],
        actor=TEST_ACTOR,
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {issued.secret}"
    url = f"{live_server.url}/m/131130/graphql"
    check = session.post(
        url,
        json={"query": f'{{ metric(name: "{WIDGET_METRIC}", schoolYear: 2025) {{ metric }} }}'},
        timeout=30,
    )
    assert check.json() == {"data": {"metric": {"metric": WIDGET_METRIC}}}

    problems, sent = fuzz(
        _tenant_schema(fuzz_world),
        caller="widget token (attendance_rate)",
        url=url,
        session=session,
        check_scope=widget_scope,
        max_examples=MAX_EXAMPLES,
        server_log=server_log,
    )
    _fail_on(problems, sent, "a widget token")


def test_federation_as_a_tokyo_prefecture_analyst(
    live_server, public_schema, fuzz_world, make_user, server_log
):
    from renkei.graphql.federation import auth, fanout
    from renkei.tenants.models import Municipality, Prefecture

    analyst = make_user("fuzz-pref13", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    token = auth.do_issue_analyst_token(analyst, "13", actor=TEST_ACTOR)
    foreign = Municipality.objects.exclude(prefecture__code="13").select_related("prefecture")
    foreign_names = sorted({m.name for m in foreign} | {m.prefecture.name for m in foreign})
    assert "大阪市" in foreign_names
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"{live_server.url}/federation/graphql"
    check = session.post(url, json={"query": '{ prefecture(code: "13") { code } }'}, timeout=30)
    assert check.json() == {"data": {"prefecture": {"code": "13"}}}

    register_scalars(CODES)
    schema = load_schema(
        FEDERATION_SDL,
        dictionaries={"code": CODES, "year": YEARS},
        bindings={
            "Query.prefecture.code": "code",
            "Query.municipality.code": "code",
            "*.*.schoolYear": "year",
        },
    )
    try:
        problems, sent = fuzz(
            schema,
            caller="東京都 analyst (federation token)",
            url=url,
            session=session,
            max_examples=MAX_EXAMPLES,
            server_log=server_log,
            check_scope=lambda answer: federation_scope(answer, foreign_names),
        )
    finally:
        fanout.shutdown_pool()  # its threads' connections must not outlive the test database
    _fail_on(problems, sent, "a 東京都 prefecture analyst")
