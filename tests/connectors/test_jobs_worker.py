"""The job worker for real: `renkei serve` runs an import queued in its database by itself
(the embedded default, no broker), and a run cancelled from another connection while it
loads stops with nothing applied. Both against a scratch database, in subprocesses, so that
every transaction really commits as it would on a server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from cli_support import RENKEI, query, renkei, scratch_database

pytestmark = pytest.mark.slow

SETUP = """
import os, sys, django
django.setup()
from pathlib import Path
from renkei.connectors import jobs, pipeline, registry
from renkei.platform.audit import Actor
from renkei.tenants.models import Municipality
shibuya = Municipality.objects.get(code="131130")
files = sorted(Path(sys.argv[1]).glob("*.csv"))
def queue():
    uploads = [jobs.Upload(p.name, p.open("rb")) for p in files]
    return jobs.do_queue_import(registry.get("c4th"), shibuya, actor=Actor.system("test"), uploads=uploads)
"""

QUEUE = SETUP + "print(queue().pk)\n"

CANCEL_WHILE_LOADING = (
    SETUP
    + """
import threading
run = queue()

class PressCancel(jobs.LiveProgress):
    # The admin presses 取り消す (their own request, their own connection) once rows are read.
    def rows(self, rows_read):
        def press():
            from renkei.tenants.context import in_tenant
            with in_tenant(shibuya):
                jobs.do_cancel_import(run.pk, shibuya, actor=Actor.system("admin"))
        presser = threading.Thread(target=press)
        presser.start()
        presser.join()
        self.last = 0.0
        super().rows(rows_read)

progress = PressCancel(run.pk, shibuya.schema_name)
done = pipeline.run_queued(run.pk, shibuya, progress)
progress.close()
print(done.status)
"""
)


def python(env: dict, code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch(tmp_path):
    with scratch_database(tmp_path) as (env, name):
        env = {**env, "DJANGO_SETTINGS_MODULE": "renkei.site.settings"}
        env.pop("CELERY_BROKER_URL", None)
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        yield env, name


def test_renkei_serve_runs_a_queued_import_by_itself(scratch, synth_data):
    env, name = scratch
    run_id = int(python(env, QUEUE, str(synth_data / "c4th")))
    assert query(name, "SELECT status FROM m131130.edudata_importrun") == [("queued",)]
    server = subprocess.Popen(
        [*RENKEI, "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ((status, phase, rows),) = query(
                name,
                "SELECT status, phase, progress_rows FROM m131130.edudata_importrun WHERE id = %s",
                [run_id],
            )
            # The worker deletes the job after the run's transaction has committed (its commit
            # hooks and closing the progress connection come between): a moment after the
            # run says succeeded, which a loaded machine can stretch past one poll.
            jobs = query(name, "SELECT count(*) FROM platform_job")
            if status not in ("queued", "running") and jobs == [(0,)]:
                break
            time.sleep(0.3)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert (status, phase) == ("succeeded", "done"), errors[-3000:]
    assert rows > 0
    assert query(name, "SELECT count(*) FROM m131130.edudata_student") == [(20,)]
    assert jobs == [(0,)]


def test_a_run_cancelled_from_another_connection_applies_nothing(scratch, synth_data):
    env, name = scratch
    assert python(env, CANCEL_WHILE_LOADING, str(synth_data / "c4th")) == "cancelled"
    assert query(name, "SELECT count(*) FROM m131130.edudata_student") == [(0,)]
    assert query(name, "SELECT count(*) FROM m131130.edudata_attendanceday") == [(0,)]
    actions = query(name, "SELECT action, username FROM platform_auditevent ORDER BY id")
    assert ("import.cancel", "admin") in actions
