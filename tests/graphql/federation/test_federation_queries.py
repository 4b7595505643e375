"""Prefecture and municipality queries: values, access, partial answers, differencing."""

from __future__ import annotations

import itertools
import threading
from string import Template

import pytest
from differencing import ALL_BINS, LONG_TERM_BINS, Battery
from fed_world import OSAKA_C, SCHOOL_YEAR, TOKYO_A, TOKYO_B

from renkei.edudata import metrics
from renkei.edudata.metrics import TOTAL
from renkei.graphql.federation import fanout
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.slow

NOISE = metrics.release.NOISE_BOUND  # of every released count (docs/disclosure.md)
CELLS = (
    "dimensions labels { dimension code label labelEn } "
    "cells { key pupils numerator denominator value suppressed reason reasonCode }"
)
ANSWERS = "municipalities { code name status reason remote } missing { code status reason }"


def gql(template: str, **values) -> str:
    """A query from a template with $names (GraphQL's braces need no escaping)."""
    return Template(template).substitute(year=SCHOOL_YEAR, **values)


def long_term(pref="13", by="byMunicipality: true, byGrade: true"):
    return gql(
        '{ prefecture(code: "$pref") { name longTermAbsence(schoolYear: $year, $by) '
        "{ k complete $cells $answers } } }",
        pref=pref,
        by=by,
        cells=CELLS,
        answers=ANSWERS,
    )


def keyed(result_table):
    """Each cell's key as {dimension: code}."""
    return [
        ({d: c for d, c in zip(result_table["dimensions"], cell["key"], strict=True)}, cell)
        for cell in result_table["cells"]
    ]


def cells_of(result_table):
    return {tuple(key.items()): cell for key, cell in keyed(result_table)}


def local(code, metric, breakdown):
    from renkei.tenants.models import Municipality

    m = Municipality.objects.get(code=code)
    with in_tenant(m):
        return metrics.compute(metric, m, school_year=SCHOOL_YEAR, breakdown=breakdown)


# -- answers --------------------------------------------------------------------------------


def test_prefecture_long_term_absence_by_municipality_and_grade(run, world):
    # when a prefecture analyst of 東京都 asks
    result = run(long_term(), world.users["fed-pref13"])
    # then
    assert result.errors is None, result.errors
    table = result.data["prefecture"]["longTermAbsence"]
    assert result.data["prefecture"]["name"] == "東京都"
    assert table["dimensions"] == ["municipality", "grade", "absence_category"]
    assert table["complete"] is True and table["missing"] == []
    statuses = {a["code"]: a["status"] for a in table["municipalities"]}
    assert statuses[TOKYO_A] == statuses[TOKYO_B] == "OK"
    assert OSAKA_C not in statuses  # only the prefecture's own municipalities
    assert statuses["131130"] == "NO_DATA"  # 渋谷区 of the test session has no pupils
    names = {a["code"]: a["name"] for a in table["municipalities"]}
    for label in table["labels"]:  # in both languages; a municipality's name is a name
        code, dimension = label["code"], label["dimension"]
        if dimension == "municipality" and code != TOTAL:
            assert label["label"] == label["labelEn"] == names[code]
        else:
            assert label["label"] == metrics.code_label(dimension, code, SCHOOL_YEAR)
            assert label["labelEn"] == metrics.code_label_en(dimension, code, SCHOOL_YEAR)
    cells = cells_of(table)
    tables = {code: local(code, "long_term_absence", ["grade"]) for code in (TOKYO_A, TOKYO_B)}
    # each municipality's cells are exactly what it released itself
    for code, own in tables.items():
        for cell in own.cells:
            key = (("municipality", code), *cell.key.items())
            got = cells[key]
            assert (got["pupils"], got["suppressed"], got["reasonCode"]) == (
                cell.pupils,
                cell.suppressed,
                cell.reason_code,
            )
    # the prefecture cells come from the same joint release: a figure of the prefecture is
    # released when it covers k pupils and pins no withheld municipality cell, even where a
    # municipality's own cell is withheld
    released_over_withheld = 0
    for cell in tables[TOKYO_A].cells:
        key = (("municipality", TOTAL), *cell.key.items())
        parts = [t.cell(**cell.key) for t in tables.values() if _has(t, cell.key)]
        got = cells[key]
        if got["suppressed"]:
            assert got["value"] is None and got["pupils"] is None
            assert got["reasonCode"] == metrics.SUPPRESSED
        else:
            assert got["pupils"] >= table["k"]
            if all(not p.suppressed for p in parts):  # within the noise of each figure
                assert abs(got["pupils"] - sum(p.pupils for p in parts)) <= NOISE * 3
            else:
                released_over_withheld += 1
    assert released_over_withheld  # the old rule withheld all of these
    total = cells[(("municipality", TOTAL), ("grade", TOTAL), ("absence_category", TOTAL))]
    assert abs(total["pupils"] - (300 - 6 + 200)) <= NOISE  # opted-out pupils are in none


def _has(table, key):
    try:
        table.cell(**key)
        return True
    except KeyError:
        return False


def test_suppressed_cells_are_null_with_a_reason_never_zero(run, world):
    result = run(long_term(by="byMunicipality: true, byGrade: true"), world.users["fed-pref13"])
    cells = result.data["prefecture"]["longTermAbsence"]["cells"]
    withheld = [c for c in cells if c["suppressed"]]
    assert withheld
    for c in withheld:
        assert c["value"] is None and c["numerator"] is None and c["reason"]
        assert c["pupils"] is None or c["pupils"] >= 10


def test_municipality_entity_and_entities(run, world):
    analyst = world.users["fed-pref13"]
    query = """query($reps: [_Any!]!) { _entities(representations: $reps) {
        ... on Municipality { code name prefectureCode
                              attendanceRate(schoolYear: 2025) { cells { value numerator } } }
        ... on Prefecture { code name municipalities { code name } } } }"""
    reps = [
        {"__typename": "Municipality", "code": TOKYO_A},
        {"__typename": "Prefecture", "code": "13"},
    ]
    result = run(query, analyst, variables={"reps": reps})
    assert result.errors is None, result.errors
    muni, pref = result.data["_entities"]
    assert (muni["code"], muni["name"], muni["prefectureCode"]) == (TOKYO_A, "連携テスト区A", "13")
    own = local(TOKYO_A, "attendance_rate", [])
    assert muni["attendanceRate"]["cells"][0]["numerator"] == own.cells[0].numerator
    assert {m["code"] for m in pref["municipalities"]} >= {TOKYO_A, TOKYO_B, "131130", "131041"}


def test_metric_catalogue(run, world):
    result = run(
        "{ metrics { name labelJa unit dimensions categories minCellSize } }",
        world.users["fed-pref13"],
    )
    names = [m["name"] for m in result.data["metrics"]]
    assert names == list(metrics.PREFECTURE_WIDE_METRICS)  # 不登校 stays in its municipality
    assert "futoko" in metrics.METRICS and "futoko" not in names


# -- access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        long_term("13"),
        gql(
            '{ municipality(code: "$code") { longTermAbsence(schoolYear: $year) { k } } }',
            code=TOKYO_A,
        ),
        gql(
            '{ _entities(representations: [{__typename: "Municipality", code: "$code"}]) '
            "{ ... on Municipality { longTermAbsence(schoolYear: $year) { k } } } }",
            code=TOKYO_A,
        ),
        '{ _entities(representations: [{__typename: "Prefecture", code: "13"}]) '
        "{ ... on Prefecture { longTermAbsence(schoolYear: 2025) { k } } } }",
    ],
)
def test_an_analyst_of_osaka_cannot_query_tokyo(run, world, query):
    result = run(query, world.users["fed-pref27"])
    assert result.errors
    assert "東京都（13）のデータを見る権限がありません" in result.errors[0].message
    assert not _any_data(result.data)


def _any_data(data):
    if isinstance(data, dict):
        return any(_any_data(v) for v in data.values())
    if isinstance(data, list):
        return any(_any_data(v) for v in data)
    return data is not None


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("fed-teacher", "都道府県の分析担当者のみ"),
        ("fed-board", "都道府県の分析担当者のみ"),
        ("fed-admin", "都道府県の分析担当者のみ"),
        ("fed-nobody", "都道府県の分析担当者のみ"),
        (None, "ログインしてください"),
    ],
)
@pytest.mark.parametrize(
    "query",
    [
        long_term("13"),
        gql(
            '{ municipality(code: "$code") { longTermAbsence(schoolYear: $year) { k } } }',
            code=TOKYO_A,
        ),
        gql(
            '{ _entities(representations: [{__typename: "Municipality", code: "$code"}]) '
            "{ ... on Municipality { name } } }",
            code=TOKYO_A,
        ),
        "{ metrics { name } }",
    ],
)
def test_only_prefecture_analysts_use_the_federation(run, world, username, message, query):
    user = world.users[username] if username else None
    result = run(query, user)
    assert result.errors and message in result.errors[0].message
    assert not _any_data(result.data)


def test_osaka_analyst_sees_osaka(run, world):
    result = run(long_term("27", by="byMunicipality: true"), world.users["fed-pref27"])
    assert result.errors is None
    codes = {a["code"] for a in result.data["prefecture"]["longTermAbsence"]["municipalities"]}
    assert codes == {OSAKA_C, "271004"}


def test_too_many_metric_fields_in_one_request(run, world):
    fields = " ".join(f"y{y}: longTermAbsence(schoolYear: {y}) {{ k }}" for y in range(2010, 2022))
    result = run(
        gql('{ prefecture(code: "13") { $fields } }', fields=fields), world.users["fed-pref13"]
    )
    assert result.errors and "10 個まで" in result.errors[0].message


def test_same_question_twice_fans_out_once(run, world, monkeypatch):
    calls = []
    original = fanout.ask

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(fanout, "ask", counting)
    query = (
        '{ prefecture(code: "13") { a: longTermAbsence(schoolYear: 2025) { k } '
        "b: longTermAbsence(schoolYear: 2025) { complete } } }"
    )
    assert run(query, world.users["fed-pref13"]).errors is None
    assert len(calls) == 1


# -- partial answers --------------------------------------------------------------------------


def test_when_the_local_release_cannot_be_made_every_local_is_missing(run, world, monkeypatch):
    # The locals are one joint table: without one municipality's rows there is no release
    # (a table over the others would differ from the full one by that municipality).
    metrics.clear_cache()

    def broken(*args, **kwargs):
        raise RuntimeError("connection to m131024 lost: password=hunter2")

    monkeypatch.setattr(metrics, "_union", broken)
    result = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
    assert result.errors is None
    table = result.data["prefecture"]["longTermAbsence"]
    assert table["complete"] is False
    assert {m["code"] for m in table["missing"]} >= {TOKYO_A, TOKYO_B}
    assert {m["reason"] for m in table["missing"]} == {
        "この自治体での集計中にエラーが発生しました。"
    }
    assert "hunter2" not in str(result.data)
    assert table["cells"] == []  # no figure from half a prefecture


def test_a_stored_release_is_not_protected_again(run, world, monkeypatch):
    # given the release was made once (and stored)
    first = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
    metrics.clear_cache()  # another process: nothing in memory

    def broken(*args, **kwargs):
        raise AssertionError("a stored release is loaded, not made again")

    monkeypatch.setattr(metrics.release, "protect", broken)
    # then the same answer comes from the store
    second = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
    assert second.errors is None and second.data == first.data


def test_the_local_call_that_times_out_is_reported_missing(run, world, monkeypatch, settings):
    settings.RENKEI_FEDERATION_TIMEOUT_SECONDS = 0.5
    settings.RENKEI_RELEASE_TIMEOUT_SECONDS = 0.5
    original = fanout.run_target
    release = threading.Event()
    slow_finished = threading.Event()

    def slow(target, *args):
        if target.locals:
            release.wait(30)
            slow_finished.set()
        return original(target, *args)

    monkeypatch.setattr(fanout, "run_target", slow)
    try:
        result = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
        # The answer came back while the slow call was still held: the fan-out did not
        # wait for it (no wall-clock assertion needed).
        assert not slow_finished.is_set()
    finally:
        release.set()
    assert result.errors is None
    table = result.data["prefecture"]["longTermAbsence"]
    assert {(m["code"], m["status"]) for m in table["missing"]} >= {(TOKYO_A, "TIMEOUT")}
    assert "0.5 秒以内に応答がありませんでした" in table["missing"][0]["reason"]


def test_local_work_has_a_statement_timeout(world, settings):
    from django.db import connection

    target = fanout.municipality_target(TOKYO_A)
    seen = []

    def probe(target, metric, year, breakdown, pref, timeout):
        fanout.run_target(target, metric, year, breakdown, pref, timeout)
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return metrics.MetricTable(metric, target.code, year, [], 10, [])

    fanout.ask(
        [target],
        "long_term_absence",
        SCHOOL_YEAR,
        (),
        prefecture_code="13",
        timeout=1.5,
        runner=probe,
    )
    assert seen == ["1500ms"]


def test_long_lived_workers_keep_their_connections_and_close_them_at_shutdown(
    run, world, monkeypatch
):
    # given Django keeps connections (CONN_MAX_AGE > 0), as in production
    monkeypatch.setattr(fanout, "_keeps_connections", lambda: True)
    try:
        first = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
        second = run(long_term(by="byMunicipality: true"), world.users["fed-pref13"])
        # then the answers are the same as with per-question threads
        assert first.errors is None and first.data == second.data
        workers = list(fanout._POOL.threads)
        assert workers and all(
            t.is_alive() and t.name.startswith("federation_") for t in workers
        )  # they outlive the question
    finally:
        fanout.shutdown_pool()
    assert not [t for t in workers if t.is_alive()]
    monkeypatch.undo()
    assert run(long_term(by="byMunicipality: true"), world.users["fed-pref13"]).data == first.data


# -- differencing: prefecture against municipalities -------------------------------------------


def test_prefecture_figures_reveal_no_withheld_municipality_cell(run, world):
    """Every released figure of every breakdown, prefecture and municipality level, as a
    linear form over (municipality, grade, absence bin) atoms: no withheld figure is in
    their span."""
    analyst = world.users["fed-pref13"]
    battery = Battery()
    grades: dict[str, set[str]] = {}
    answers = []
    for by_m, by_g in itertools.product((False, True), repeat=2):
        by = f"byMunicipality: {str(by_m).lower()}, byGrade: {str(by_g).lower()}"
        result = run(long_term(by=by), analyst)
        assert result.errors is None
        answers.append(keyed(result.data["prefecture"]["longTermAbsence"]))
        for muni in (TOKYO_A, TOKYO_B):
            q = gql(
                '{ municipality(code: "$code") { longTermAbsence(schoolYear: $year, '
                "byGrade: $by) { $cells } } }",
                code=muni,
                by=str(by_g).lower(),
                cells=CELLS,
            )
            table = run(q, analyst).data["municipality"]["longTermAbsence"]
            answers.append([({"municipality": muni, **key}, c) for key, c in keyed(table)])
    for cells in answers:
        for key, _c in cells:
            if "-" in key.get("grade", "") and key.get("municipality", TOTAL) != TOTAL:
                grades.setdefault(key["municipality"], set()).add(key["grade"])

    def atoms(key, bins):
        munis = (
            (TOKYO_A, TOKYO_B)
            if key.get("municipality", TOTAL) == TOTAL
            else (key["municipality"],)
        )
        g = key.get("grade", TOTAL)
        return [
            (m, leaf, b)
            for m in munis
            for leaf in grades.get(m, ())
            if g == TOTAL or leaf == g or leaf.startswith(g + "-")
            for b in bins
        ]

    for cells in answers:
        for key, c in cells:
            if key.get("municipality") not in (None, TOTAL, TOKYO_A, TOKYO_B):
                continue  # the empty session tenants
            cat = key["absence_category"]
            what = tuple(sorted(key.items()))
            battery.figure(
                "pop",
                atoms(key, ALL_BINS if cat == TOTAL else LONG_TERM_BINS[cat]),
                c["pupils"],
                what,
            )
            battery.figure("pop", atoms(key, ALL_BINS), c["denominator"], what)
    assert len(battery.withheld["pop"]) > 20
    assert battery.leaks() == []


def test_the_same_question_is_answered_from_memory_until_the_data_changes(run, world, monkeypatch):
    from renkei.graphql.federation.schema import ResultCache
    from renkei.tenants.models import Municipality

    analyst = world.users["fed-pref13"]
    first = run(long_term(by="byMunicipality: true"), analyst)
    assert first.errors is None and len(ResultCache._kept) == 1

    def broken(*args, **kwargs):
        raise AssertionError("asked again")

    monkeypatch.setattr(fanout, "gather", broken)
    # the same question, same data: the kept answer
    assert run(long_term(by="byMunicipality: true"), analyst).data == first.data
    # another analyst's identical question is not answered from this one's memory
    other = run(long_term(by="byMunicipality: true"), world.users["fed-pref27"])
    assert other.errors and "東京都（13）のデータを見る権限がありません" in other.errors[0].message
    # when a municipality's data changes (rolled back after the test), it is asked again
    Municipality.objects.filter(code=TOKYO_B).update(data_version=12345)
    again = run(long_term(by="byMunicipality: true"), analyst)
    assert again.errors  # it was asked again (and the broken fan-out failed)
