"""Trying to break the tenant API: every query path with every role, against its own and other
tenants. Forbidden means a clear error (with extensions.code) and no data of the pupil or
school asked for: not in ``data``, not in an error message, not in the access log."""

import json

import pytest
from tenant_api_support import access_log_rows

from renkei.edudata.models import Enrollment, Student
from renkei.edudata.privacy import pseudonym_for
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ROLES = [
    "teacher_a",
    "manager_b",
    "board",
    "admin",
    "pref_tokyo",
    "shinjuku_teacher",
    "osaka_admin",
    "nobody",
    "anonymous",
]


def paths(world):
    """(name, query, what must never leak when refused) for every root field."""
    a, b = world["A"], world["B"]
    board = "{ pupil { name } attendance { date status } alerts { message } }"
    return {
        "me": ("{ me { username } }", []),
        "municipality": ("{ municipality { code alertRules { threshold } } }", []),
        "schools": ("{ schools { code name } }", [a.name, b.name]),
        "school_A": (f'{{ school(code: "{a.code}") {{ name homerooms {{ name }} }} }}', [a.name]),
        "school_B": (f'{{ school(code: "{b.code}") {{ name homerooms {{ name }} }} }}', [b.name]),
        "homeroom_A": (
            f"{{ homeroom(id: {world['hA'].pk}) {{ name school {{ name }} }} }}",
            [a.name],
        ),
        "homeroom_B": (
            f"{{ homeroom(id: {world['hB'].pk}) {{ name school {{ name }} }} }}",
            [b.name],
        ),
        "student_a1": (
            f'{{ studentBoard(studentId: {world["a1"].pk}, asOf: "2025-06-05") {board} }}',
            ["髙橋", "6/3"],
        ),
        "student_b1": (
            f'{{ studentBoard(studentId: {world["b1"].pk}, asOf: "2025-06-05") {board} }}',
            ["鈴木", "6/3"],
        ),
        "class_A": (
            f'{{ classBoard(homeroomId: {world["hA"].pk}, asOf: "2025-06-05") '
            "{ pupils { pupil { name } alerts { message } } } }",
            ["髙橋", "山﨑"],
        ),
        "class_B": (
            f'{{ classBoard(homeroomId: {world["hB"].pk}, asOf: "2025-06-05") '
            "{ pupils { pupil { name } alerts { message } } } }",
            ["鈴木", "田中"],
        ),
    }


# What each role may do in 渋谷区 (131130). Everything else is refused.
ALLOWED = {
    "teacher_a": {
        "me",
        "municipality",
        "schools",
        "school_A",
        "homeroom_A",
        "student_a1",
        "class_A",
    },
    "manager_b": {
        "me",
        "municipality",
        "schools",
        "school_B",
        "homeroom_B",
        "student_b1",
        "class_B",
    },
    "board": {"me", "municipality", "schools", "school_A", "school_B", "homeroom_A", "homeroom_B"},
    "admin": {"me", "municipality", "schools", "school_A", "school_B", "homeroom_A", "homeroom_B"},
}
# Refused before any GraphQL runs: (status, code).
REFUSED_AT_THE_DOOR = {
    "pref_tokyo": (403, "FORBIDDEN"),  # prefecture analysts use the federation, never a tenant
    "shinjuku_teacher": (403, "FORBIDDEN"),  # same 学校コード, other municipality
    "osaka_admin": (403, "FORBIDDEN"),
    "nobody": (403, "FORBIDDEN"),
    "anonymous": (401, "UNAUTHENTICATED"),
}


@pytest.mark.parametrize("who", ROLES)
def test_every_path_with_every_role(client, gql, people, world, shibuya, who):
    if who != "anonymous":
        client.force_login(people[who])
    for name, (query, secrets) in paths(world).items():
        r = gql(client, query)
        if who in REFUSED_AT_THE_DOOR:
            assert (r.status, r.codes) == (
                REFUSED_AT_THE_DOOR[who][0],
                [REFUSED_AT_THE_DOOR[who][1]],
            ), (name, r.text)
            assert "data" not in r.body
            assert r.errors[0]["message"]  # a clear (Japanese) message
        elif name in ALLOWED[who]:
            assert r.status == 200 and not r.errors, (who, name, r.text)
        else:
            assert r.status == 200, (who, name, r.text)
            assert r.codes == ["FORBIDDEN"], (who, name, r.text)
            assert list(r.data.values()) == [None], (who, name, r.text)
            assert "権限" in r.errors[0]["message"] or "だけ" in r.errors[0]["message"]
            for secret in secrets:
                assert secret not in r.text, (who, name, secret)
    # Only allowed pupil reads were logged.
    logged = {row["student_pseudonym"] for row in access_log_rows(shibuya)}
    expected = {
        "teacher_a": {world[k].pseudonym for k in ("a1", "a2", "a3")},
        "manager_b": {world[k].pseudonym for k in ("b1", "b2")},
    }.get(who, set())
    assert logged == expected


@pytest.mark.parametrize("who", ["teacher_a", "admin", "board"])
@pytest.mark.parametrize("how", ["path", "host"])
def test_shibuya_users_cannot_enter_other_tenants(client, gql, people, world, who, how):
    client.force_login(people[who])
    for code in ("131041", "271004"):
        r = gql(client, "{ me { username } schools { code } }", code=code, host=how == "host")
        assert (r.status, r.codes) == (403, ["FORBIDDEN"]), r.text
        assert "data" not in r.body


def test_teacher_cannot_reach_another_schools_pupil_by_alias(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    r = gql(
        client,
        f"""{{
      mine: studentBoard(studentId: {world["a1"].pk}) {{ pupil {{ name }} }}
      theirs: studentBoard(studentId: {world["b1"].pk}) {{ pupil {{ name }} }}
      again: studentBoard(studentId: "{world["b2"].pk}") {{ pupil {{ name }} }}
    }}""",
    )
    assert r.data["mine"]["pupil"]["name"] == "髙橋 一郎"
    assert r.data["theirs"] is None and r.data["again"] is None
    assert r.codes == ["FORBIDDEN", "FORBIDDEN"]
    assert "鈴木" not in r.text and "田中" not in r.text
    assert [row["student_pseudonym"] for row in access_log_rows(shibuya)] == [world["a1"].pseudonym]


def test_teacher_cannot_reach_another_schools_pupil_by_fragment_or_variables(
    client, gql, people, world
):
    client.force_login(people["teacher_a"])
    query = """query Q($id: ID!) { ...Root }
      fragment Root on Query { studentBoard(studentId: $id) { ...Board } }
      fragment Board on StudentBoard { pupil { name } alerts { message } }"""
    r = gql(client, query, {"id": str(world["b1"].pk)})
    assert r.codes == ["FORBIDDEN"] and r.data == {"studentBoard": None}
    assert "鈴木" not in r.text
    inline = f"""{{ ... on Query {{ classBoard(homeroomId: {world["hB"].pk}) {{
        pupils {{ pupil {{ name }} }} }} }} }}"""
    r = gql(client, inline)
    assert r.codes == ["FORBIDDEN"] and "鈴木" not in r.text


def test_teacher_cannot_reach_another_schools_pupil_through_schools_or_homerooms(
    client, gql, people, world
):
    client.force_login(people["teacher_a"])
    # Schools and homerooms have no path to pupils at all: asking for one is a schema error.
    r = gql(client, f"{{ homeroom(id: {world['hA'].pk}) {{ pupils {{ name }} }} }}")
    assert r.status == 400 and r.codes == ["GRAPHQL_VALIDATION_FAILED"]
    r = gql(client, f'{{ school(code: "{world["B"].code}") {{ students {{ id }} }} }}')
    assert r.status == 400
    # Another school's homeroom by id, and its school by code: refused.
    r = gql(client, f"{{ homeroom(id: {world['hB'].pk}) {{ name }} }}")
    assert r.codes == ["FORBIDDEN"]


def test_teacher_cannot_probe_which_pupils_exist(client, gql, people, world):
    """Another school's pupil and a pupil that does not exist get the same answer."""
    client.force_login(people["teacher_a"])
    other = gql(client, f"{{ studentBoard(studentId: {world['b1'].pk}) {{ asOf }} }}")
    missing = gql(client, "{ studentBoard(studentId: 987654321) { asOf } }")
    assert other.errors[0]["message"] == missing.errors[0]["message"]
    assert other.codes == missing.codes == ["FORBIDDEN"]
    bad = gql(client, '{ studentBoard(studentId: "1 OR 1=1") { asOf } }')
    assert bad.codes == ["BAD_USER_INPUT"] and bad.data == {"studentBoard": None}


def test_class_board_hides_a_pupil_of_another_school_enrolled_in_the_homeroom(
    client, gql, people, world, shibuya
):
    """A transferred pupil still enrolled in the old homeroom belongs to the new school now:
    the old school's teachers no longer see them."""
    with in_tenant(shibuya):
        Enrollment.objects.create(student=world["b1"], homeroom=world["hA"], attendance_number=9)
    client.force_login(people["teacher_a"])
    r = gql(
        client,
        f"{{ classBoard(homeroomId: {world['hA'].pk}) {{ pupils {{ pupil {{ name }} }} }} }}",
    )
    names = [p["pupil"]["name"] for p in r.data["classBoard"]["pupils"]]
    assert "鈴木 次郎" not in names and len(names) == 3
    assert world["b1"].pseudonym not in {
        row["student_pseudonym"] for row in access_log_rows(shibuya)
    }


def test_same_pupil_id_in_another_tenant_is_another_tenants_business(
    client, gql, people, world, shinjuku
):
    """A 新宿区 teacher whose membership names the same 学校コード sees 新宿区's pupils only."""
    with in_tenant(shinjuku):
        from renkei.edudata.models import School

        school = School.objects.create(code=world["A"].code, name="新宿区の学校", school_type="B1")
        own = Student.objects.create(
            pseudonym=pseudonym_for(shinjuku, "test", "x"), school=school, grade=3
        )
    client.force_login(people["shinjuku_teacher"])
    r = gql(
        client,
        f"{{ studentBoard(studentId: {world['a1'].pk}) {{ pupil {{ name }} }} }}",
        code="131041",
    )
    if world["a1"].pk != own.pk:
        assert r.codes == ["FORBIDDEN"]
    assert "髙橋" not in r.text
    r = gql(
        client, f"{{ studentBoard(studentId: {own.pk}) {{ pupil {{ grade }} }} }}", code="131041"
    )
    assert not r.errors and r.data["studentBoard"]["pupil"]["grade"] == 3


def test_batching_is_refused(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    batch = json.dumps(
        [
            {"query": f"{{ studentBoard(studentId: {world['a1'].pk}) {{ pupil {{ name }} }} }}"},
            {"query": f"{{ studentBoard(studentId: {world['b1'].pk}) {{ pupil {{ name }} }} }}"},
        ]
    )
    r = gql(client, "", raw=batch)
    assert (r.status, r.codes) == (400, ["BATCHING_NOT_SUPPORTED"])
    assert "髙橋" not in r.text and "鈴木" not in r.text
    assert access_log_rows(shibuya) == []


def test_board_analyst_and_admin_never_see_a_pupil(client, gql, people, world, shibuya):
    for who in ("board", "admin"):
        client.force_login(people[who])
        for query in (
            f"{{ studentBoard(studentId: {world['a1'].pk}) {{ asOf }} }}",
            f"{{ classBoard(homeroomId: {world['hA'].pk}) {{ asOf }} }}",
        ):
            r = gql(client, query)
            assert r.codes == ["FORBIDDEN"]
            assert "所属校の教員・管理職" in r.errors[0]["message"]
    assert access_log_rows(shibuya) == []


def test_only_one_operation_of_a_document_runs(client, gql, people, world, shibuya):
    client.force_login(people["teacher_a"])
    body = json.dumps(
        {
            "query": f"""
        query Mine {{ studentBoard(studentId: {world["a1"].pk}) {{ asOf }} }}
        query Theirs {{ studentBoard(studentId: {world["b1"].pk}) {{ pupil {{ name }} }} }}""",
            "operationName": "Mine",
        }
    )
    r = gql(client, "", raw=body)
    assert not r.errors and list(r.data) == ["studentBoard"]
    assert len(access_log_rows(shibuya)) == 1
