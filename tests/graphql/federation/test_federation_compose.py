"""The subgraph with Apollo's own tools: @apollo/composition composes the committed SDL (alone
and next to another subgraph that extends Municipality), and @apollo/gateway on
@apollo/server, in front of the running Django server, answers a prefecture query.

The npm packages are pinned in js/package.json + js/package-lock.json and installed with
``npm ci`` when js/node_modules is missing. Without node/npm the tests are skipped with a
message - unless CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest
import requests
from fed_world import SCHOOL_YEAR, TOKYO_A, TOKYO_B

from renkei.edudata.metrics.release import NOISE_BOUND
from renkei.graphql.federation import auth
from renkei.graphql.federation import schema as federation
from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.slow

JS = Path(__file__).with_name("js")
SNAPSHOT = Path(federation.__file__).with_name("schema.graphql")


@pytest.fixture(scope="session")
def node_tools():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        message = "node と npm が見つからないため Apollo のテストを実行できません（Node.js 20 以上を入れてください）"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not (JS / "node_modules" / "@apollo" / "gateway").exists():
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert install.returncode == 0, install.stdout + install.stderr
    return node


def compose(node, *subgraphs: tuple[str, Path]) -> dict:
    out = subprocess.run(
        [node, "compose.js", *(f"{n}={p}" for n, p in subgraphs)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_committed_sdl_composes(node_tools):
    result = compose(node_tools, ("renkei", SNAPSHOT))
    assert result["ok"], result.get("errors")
    assert 'join__type(graph: RENKEI, key: "code")' in result["supergraphSdl"]


def test_it_composes_with_another_subgraph_that_extends_municipality(node_tools, tmp_path):
    other = tmp_path / "population.graphql"
    other.write_text(
        textwrap.dedent("""
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
        type Municipality @key(fields: "code") {
          code: String!
          registeredResidents: Int
        }
        type Query { census: String }
    """)
    )
    result = compose(node_tools, ("renkei", SNAPSHOT), ("census", other))
    assert result["ok"], result.get("errors")
    assert "registeredResidents" in result["supergraphSdl"]


def test_a_broken_subgraph_does_not_compose(node_tools, tmp_path):
    broken = tmp_path / "broken.graphql"
    broken.write_text(
        SNAPSHOT.read_text(encoding="utf-8").replace(
            'type Municipality @key(fields: "code")',
            'type Municipality @key(fields: "nosuchfield")',
        )
    )
    result = compose(node_tools, ("renkei", broken))
    assert not result["ok"]


@pytest.fixture
def gateway(node_tools, fed_server, world):
    process = subprocess.Popen(
        [node_tools, "gateway.js", f"{fed_server}/federation/graphql"],
        cwd=JS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            lines.append(line)
            if line.startswith(("READY", "FAILED")):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "gateway did not start in 60 s"
        assert lines and lines[-1].startswith("READY"), "".join(lines) + process.stderr.read()
        yield lines[-1].split()[1]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_apollo_gateway_answers_a_prefecture_query(gateway, world):
    # given a gateway that passes the caller's bearer token through to the subgraph
    token = auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR)
    query = """query($year: Int!) {
      prefecture(code: "13") {
        name
        longTermAbsence(schoolYear: $year, byMunicipality: true, byGrade: true) {
          complete
          dimensions
          labels { dimension code label }
          cells { key pupils value suppressed reason }
          municipalities { code name status }
        }
      }
    }"""
    # when
    response = requests.post(
        gateway,
        json={"query": query, "variables": {"year": SCHOOL_YEAR}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    # then
    body = response.json()
    assert "errors" not in body, body
    table = body["data"]["prefecture"]["longTermAbsence"]
    assert body["data"]["prefecture"]["name"] == "東京都"
    assert table["complete"] is True
    assert {m["code"] for m in table["municipalities"] if m["status"] == "OK"} == {TOKYO_A, TOKYO_B}
    suppressed = [c for c in table["cells"] if c["suppressed"]]
    assert suppressed and all(c["value"] is None and c["reason"] for c in suppressed)
    assert table["dimensions"] == ["municipality", "grade", "absence_category"]
    total = next(c for c in table["cells"] if c["key"] == ["__total__"] * 3)
    assert {"dimension": "grade", "code": "B1-3", "label": "小学校 3年"} in table["labels"]
    assert abs(total["pupils"] - (300 - 6 + 200)) <= NOISE_BOUND  # cell-key noise


def test_apollo_gateway_without_credentials_gets_the_error_and_no_data(gateway, world):
    response = requests.post(
        gateway, json={"query": '{ prefecture(code: "13") { name } }'}, timeout=60
    )
    body = response.json()
    assert body["data"] == {"prefecture": None}
    assert "ログインしてください" in body["errors"][0]["message"]


def test_apollo_gateway_resolves_entities(gateway, world):
    token = auth.do_issue_analyst_token(world.users["fed-pref13"], "13", actor=TEST_ACTOR)
    query = """query($code: String!, $year: Int!) { municipality(code: $code) {
                 name attendanceRate(schoolYear: $year) { cells { value suppressed } } } }"""
    body = requests.post(
        gateway,
        json={"query": query, "variables": {"code": TOKYO_A, "year": SCHOOL_YEAR}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    assert "errors" not in body, body
    assert body["data"]["municipality"]["name"] == "連携テスト区A"
    assert body["data"]["municipality"]["attendanceRate"]["cells"][0]["value"] > 50
