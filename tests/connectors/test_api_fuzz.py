"""The push API under schemathesis, against `renkei serve` on a scratch database: requests
generated from its OpenAPI description, valid and invalid, with a valid ingest token. No
answer is a 500, every status is one the description documents, and every refusal is the
one error shape with a message."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import schemathesis
from cli_support import RENKEI, renkei, scratch_database
from hypothesis import HealthCheck, Phase, given, settings
from test_ingest_docs import ISSUE_TOKEN
from test_jobs_worker import free_port, python

from renkei.connectors.api import describe

pytestmark = pytest.mark.slow

EXAMPLES = 25  # per operation and mode


def test_no_generated_request_breaks_the_api(tmp_path):
    with scratch_database(tmp_path) as (env, _name):
        env = {**env, "DJANGO_SETTINGS_MODULE": "renkei.site.settings"}
        env.pop("CELERY_BROKER_URL", None)
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        token = python(env, ISSUE_TOKEN)
        port = free_port()
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [*RENKEI, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
            )
        base = f"http://127.0.0.1:{port}/m/131130/api/v1"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "renkei serve did not start"
                time.sleep(0.3)
            problems = fuzz(base, token)
        finally:
            server.terminate()
            server.wait(timeout=30)
        bad = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "Bad Request" in line or "Error" in line
        ][:20]
        assert problems == [], "\n".join(problems) + "\n" + "\n".join(bad)


def fuzz(base: str, token: str) -> list[str]:
    described = describe()
    schema = schemathesis.openapi.from_dict(described)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    problems: list[str] = []

    def sender(operation):
        responses = described["paths"][operation.path][operation.method.lower()]["responses"]
        documented = {int(status) for status in responses}

        def send(case) -> None:
            response = case.call(base_url=base, session=session, timeout=60)
            where = f"{operation.method.upper()} {operation.path} → {response.status_code}"
            if response.status_code >= 500:
                problems.append(f"{where}: server error")
            elif response.status_code not in documented:
                problems.append(f"{where}: not documented ({sorted(documented)})")
            elif response.status_code >= 400:
                try:
                    error = response.json()["error"]
                    assert error["code"] and error["message"]
                except (ValueError, KeyError, TypeError, AssertionError):
                    problems.append(f"{where}: not the error shape: {response.text[:200]}")

        return send

    for result in schema.get_all_operations():
        operation = result.ok()
        send = sender(operation)
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy(generation_mode=mode))(send))()
    return sorted(set(problems))
