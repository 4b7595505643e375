"""bench/load.py, small: the real server (gunicorn with infra/gunicorn.conf.py) over two
small municipalities of a scratch database, driven by locust with the bench's own users (one of
each kind) until each has done its part, a few seconds. Correctness only, never time: no errors,
no answer carrying another municipality's or another school's data, every wrong-token push
refused without effect, every accepted push's marks in the database. A teacher checked against
another municipality's scope (the canary) proves the checker finds such data when it is there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from cli_support import scratch_database

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench" / "load.py"
# One municipality of 東京都 and one of 大阪府 (the federation must keep them apart), three
# schools each (a teacher must see only their own).
TENANTS = [["131130", "渋谷区", "13", 40], ["271004", "大阪市", "27", 30]]


def _bench():
    spec = importlib.util.spec_from_file_location("renkei_bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_load_sees_no_errors_and_no_other_tenants_data(tmp_path):
    load = _bench()
    with scratch_database(tmp_path / "home") as (env, _name):
        out = tmp_path / "load"
        out.mkdir()
        result = load.run(
            env,
            out,
            TENANTS,
            users=6,
            spawn_rate=6,
            run_time=180,  # a bound: it stops once every kind of user has done its part
            max_requests=2000,
            workers=2,
            think="0.2,0.6",
            push_every="0.5,1",
            settle=0,
            each=1,
            canary=True,
            until_each_done=True,
            vendor_slots=2,
        )
    figures = load.summarize(result)
    report = result["report"]
    assert figures["reached_full"], report["failure_samples"]
    assert figures["errors"] == 0, report["failure_samples"]
    assert figures["cross_tenant_answers"] == 0, report["leaks"]
    # every kind of user got answers
    routes = {route for route, times in report["times"].items() if times}
    assert {
        "board: class board data (GraphQL)",
        "dashboard: metric (GraphQL)",
        "prefecture: federation (GraphQL)",
        "vendor: push import",
        "wrong token: push",
    } <= routes, routes
    # the checker is not blind: another municipality's boards are caught
    assert report["canary_leaks"], "the canary teacher's answers were not reported"
    # wrong tokens: refused, and nothing of them arrived
    assert figures["wrong_token_pushes"] > 0
    assert figures["wrong_token_refused"] == figures["wrong_token_pushes"], report["refusals"]
    assert figures["push_problems"] == []
    # the good pushes ran and their marks are there
    assert figures["pushes_accepted"] > 0
    assert figures["pushes_landed"] == figures["pushes_imported"] >= figures["pushes_accepted"]
