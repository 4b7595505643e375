"""docs/ingest-api.md, run as written: its shell examples, one after another in one bash
session, against `renkei serve` on a scratch database, with curl."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import RENKEI, query, renkei, scratch_database
from test_jobs_worker import free_port, python

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest-api.md"

ISSUE_TOKEN = """
import django
django.setup()
from renkei.accounts.tokens import do_issue_ingest_token
from renkei.platform.audit import Actor
from renkei.tenants.models import Municipality
issued = do_issue_ingest_token(Municipality.objects.get(code="131130"),
                               actor=Actor.system("test"), name="docs", connectors=["c4th"])
print(issued.secret)
"""


def examples() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_examples_of_the_ingest_docs_work(tmp_path, synth_data):
    assert shutil.which("curl"), "the examples use curl"
    assert len(examples()) >= 6
    with scratch_database(tmp_path) as (env, name):
        env = {**env, "DJANGO_SETTINGS_MODULE": "renkei.site.settings"}
        env.pop("CELERY_BROKER_URL", None)
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        token = python(env, ISSUE_TOKEN)
        work = tmp_path / "vendor"
        shutil.copytree(synth_data / "c4th", work)
        port = free_port()
        server = subprocess.Popen(
            [*RENKEI, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while subprocess.run(
                ["curl", "-sf", f"http://127.0.0.1:{port}/healthz"], capture_output=True
            ).returncode:
                assert time.monotonic() < deadline, "renkei serve did not start"
                time.sleep(0.3)
            script = "set -euo pipefail\n" + "\n".join(examples())
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=work,
                env={
                    "PATH": env["PATH"],
                    "RENKEI_URL": f"http://127.0.0.1:{port}/m/131130",
                    "TOKEN": token,
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "succeeded" in result.stdout
        assert (work / "errors.csv").read_bytes().startswith(b"\xef\xbb\xbf")
        # the idempotent retry imported once: the multipart run, the one of a named export
        # kind, the raw one, the retried one
        runs = query(name, "SELECT status FROM m131130.edudata_importrun ORDER BY id")
        assert len(runs) == 4, runs
