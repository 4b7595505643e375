"""School and municipality aggregates through metrics.compute (disclosure control applied
there): who may read which table, and that the API returns exactly what compute released."""

import pytest

from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

metrics = pytest.importorskip("renkei.edudata.metrics")

from tenant_api_support import access_log_rows  # noqa: E402

from renkei.accounts import tokens  # noqa: E402
from renkei.demo import synth  # noqa: E402
from renkei.tenants.context import in_tenant  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TABLE = """query($name: String!, $school: String, $by: [String!]) {
  metric(name: $name, schoolYear: 2025, breakdown: $by, schoolCode: $school) {
    metric municipalityCode schoolCode schoolYear unit dimensions k
    cells { key { dimension value label labelEn } pupils value suppressed reason reasonCode
            numerator denominator } } }"""


@pytest.fixture
def loaded(shinjuku, shinjuku_with_data, make_user):
    schools = synth.school_codes(shinjuku.code, 3)
    return {
        "schools": schools,
        "board": make_user("board-s", "board_analyst", municipality=shinjuku),
        "admin": make_user("admin-sj", "tenant_admin", municipality=shinjuku),
        "teacher": make_user("teacher-sj", "teacher", municipality=shinjuku, schools=[schools[0]]),
    }


def released(shinjuku, name, **kwargs):
    with in_tenant(shinjuku):
        return metrics.compute(name, shinjuku, school_year=2025, **kwargs)


def test_board_analyst_reads_released_tables_as_compute_released_them(
    client, gql, loaded, shinjuku
):
    client.force_login(loaded["board"])
    r = gql(client, "{ metrics { name labelJa dimensions categories unit } }", code="131041")
    assert not r.errors, r.text
    assert {m["name"] for m in r.data["metrics"]} == set(metrics.METRICS)
    r = gql(client, TABLE, {"name": "long_term_absence", "by": ["grade"]}, code="131041")
    assert not r.errors, r.text
    table = r.data["metric"]
    expected = released(shinjuku, "long_term_absence", breakdown=["grade"])
    assert table["k"] == expected.k >= 10
    assert table["dimensions"] == expected.dimensions
    assert len(table["cells"]) == len(expected.cells)
    for got, want in zip(table["cells"], expected.cells, strict=True):
        assert {p["dimension"]: p["value"] for p in got["key"]} == want.key
        for part in got["key"]:  # both languages, from the one registry
            assert part["label"] == metrics.code_label(part["dimension"], part["value"], 2025)
            assert part["labelEn"] == metrics.code_label_en(part["dimension"], part["value"])
        assert (got["pupils"], got["value"], got["suppressed"]) == (
            want.pupils,
            want.value,
            want.suppressed,
        )
        if got["suppressed"]:  # shown as suppressed, never as zero
            assert got["value"] is None and got["reason"]
    assert any(c["suppressed"] for c in table["cells"])
    assert any(not c["suppressed"] for c in table["cells"])
    assert access_log_rows(shinjuku) == []  # aggregates are not pupil reads


def test_who_may_read_which_table(client, gql, loaded):
    own, other = loaded["schools"][0], loaded["schools"][1]
    cases = [
        ("board", None, True),
        ("admin", None, True),
        ("board", other, True),
        ("teacher", None, False),
        ("teacher", own, True),
        ("teacher", other, False),
    ]
    for who, school, allowed in cases:
        client.force_login(loaded[who])
        r = gql(client, TABLE, {"name": "attendance_rate", "school": school}, code="131041")
        if allowed:
            assert not r.errors, (who, school, r.text)
            assert r.data["metric"]["schoolCode"] == school
        else:
            assert r.codes == ["FORBIDDEN"] and r.data == {"metric": None}, (who, school)


def test_futoko_is_read_by_the_municipalitys_board_and_schools_as_released(
    client, gql, loaded, shinjuku
):
    # 不登校 (MUNICIPALITY_ONLY): its board gets the municipality's table, each school's staff
    # their school's, both exactly as compute released them; other schools' staff nothing
    own, other = loaded["schools"][0], loaded["schools"][1]
    for who, school, allowed in (
        ("board", None, True),
        ("admin", other, True),
        ("teacher", own, True),
        ("teacher", None, False),
        ("teacher", other, False),
    ):
        client.force_login(loaded[who])
        r = gql(client, TABLE, {"name": "futoko", "by": ["grade"], "school": school}, code="131041")
        if not allowed:
            assert r.codes == ["FORBIDDEN"] and r.data == {"metric": None}, (who, school)
            continue
        assert not r.errors, (who, school, r.text)
        expected = released(shinjuku, "futoko", breakdown=["grade"], school_code=school)
        got = r.data["metric"]["cells"]
        assert [(c["pupils"], c["value"], c["suppressed"]) for c in got] == [
            (c.pupils, c.value, c.suppressed) for c in expected.cells
        ]
        assert got and all(c["value"] is None and c["reason"] for c in got if c["suppressed"])


def test_bad_arguments_are_clear_errors(client, gql, loaded):
    client.force_login(loaded["board"])
    for variables in (
        {"name": "no_such_metric"},
        {"name": "long_term_absence", "by": ["month"]},
        {"name": "long_term_absence", "by": ["municipality"]},
        {"name": "attendance_rate", "school": "B113211309995"},
    ):
        r = gql(client, TABLE, variables, code="131041")
        assert r.codes == ["BAD_USER_INPUT"], (variables, r.text)
        assert r.errors[0]["message"]


def test_widget_token_reads_only_its_metrics(client, gql, loaded, shinjuku):
    issued = tokens.do_issue_token(
        loaded["admin"],
        shinjuku,
        name="portal",
        role="board_analyst",
        widget=True,
        metrics=["attendance_rate"],
        actor=TEST_ACTOR,
    )
    r = gql(client, "{ metrics { name } }", code="131041", token=issued.secret)
    assert r.data["metrics"] == [{"name": "attendance_rate"}]
    r = gql(
        client,
        TABLE,
        {"name": "attendance_rate", "by": ["month"]},
        code="131041",
        token=issued.secret,
    )
    assert not r.errors and r.data["metric"]["cells"]
    r = gql(client, TABLE, {"name": "long_term_absence"}, code="131041", token=issued.secret)
    assert r.codes == ["FORBIDDEN"]
    r = gql(client, TABLE, {"name": "attendance_rate"}, code="131130", token=issued.secret)
    assert r.status == 401
