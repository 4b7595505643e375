"""Imports as background jobs: an upload in 管理 is stored and queued, a worker runs it with
the pipeline of `renkei import`, the page follows it live, and a cancelled import applies
nothing, whether it was waiting or running."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from renkei.connectors import jobs, pipeline
from renkei.edudata.models import AttendanceDay, ImportRun, Student
from renkei.platform.audit import Actor
from renkei.platform.models import AuditEvent, Job
from renkei.platform.storage import get_storage
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

BASE = "/m/131130/manage/imports/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(make_user, shibuya):
    client = Client()
    client.force_login(make_user("admin-s", "tenant_admin", municipality=shibuya))
    return client


def c4th_files(synth_data) -> list:
    return sorted((synth_data / "c4th").glob("*.csv"))


def upload(client, paths, connector="c4th", kind="", **extra):
    files = [io.BytesIO(p.read_bytes()) for p in paths]
    for f, p in zip(files, paths, strict=True):
        f.name = p.name
    data = {"connector": connector, "kind": kind, "files": files}
    return client.post(BASE + "new/", data, **extra)


def test_an_upload_is_stored_queued_and_run_by_the_worker(admin, shibuya, synth_data):
    # when: the admin uploads the C4th export
    response = upload(admin, c4th_files(synth_data))
    # then: the run is queued with its files in storage, and the page follows it
    assert response.status_code == 302
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    assert response["Location"] == f"{BASE}{run.pk}/"
    assert run.status == "queued" and run.phase == "received" and run.started_by == "admin-s"
    assert run.started_via == "web" and run.starter == "admin-s（画面）"
    assert sorted(k.rsplit("/", 1)[1] for k in run.files) == sorted(
        p.name for p in c4th_files(synth_data)
    )
    assert get_storage().exists("131130", run.files[0])
    assert Job.objects.filter(kind="import", object_id=run.pk).exists()
    status = admin.get(f"{BASE}{run.pk}/status.json").json()
    assert status["status"] == "queued" and status["live"] and status["ahead"] == 0
    page = admin.get(f"{BASE}{run.pk}/").content.decode()
    assert 'data-live="true"' in page and "この取り込みを取り消す" in page
    assert "admin-s（画面）" in page  # who started it, and how
    # when: the worker runs the queue
    assert jobs.run_pending() == 1
    # then: imported as `renkei import` would have, and the page shows the summary
    with in_tenant(shibuya):
        run.refresh_from_db()
        assert Student.objects.count() == 20 and AttendanceDay.objects.exists()
    assert run.status == "succeeded" and run.phase == "done", run.message
    assert run.rows_read == run.progress_rows > 0
    assert run.rows_expected == run.rows_read  # counted from the files' lines when received
    assert "paths" not in run.config  # the worker's temporary copies mean nothing to anyone
    status = admin.get(f"{BASE}{run.pk}/status.json").json()
    assert not status["live"] and status["rows_read"] == run.rows_read
    assert not Job.objects.exists()
    (event,) = AuditEvent.objects.filter(
        action="import.start", target__startswith=f"import {run.pk} "
    )
    assert event.via == "web" and event.username == "admin-s"
    assert sorted(event.changes["files"]) == sorted(p.name for p in c4th_files(synth_data))


def test_the_page_tells_the_time_left_from_the_rate_so_far(admin, shibuya, synth_data):
    upload(admin, c4th_files(synth_data))
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
        assert run.rows_expected > 0
        # as the worker writes it: loading for 10 s, a quarter of the rows read
        ImportRun.objects.filter(pk=run.pk).update(
            status="running",
            phase="loading",
            began_at=timezone.now() - dt.timedelta(seconds=10),
            progress_rows=run.rows_expected // 4,
        )
    status = admin.get(f"{BASE}{run.pk}/status.json").json()
    assert status["rows_per_second"] == pytest.approx(run.rows_expected / 40, rel=0.1)
    assert status["seconds_left"] == pytest.approx(30, abs=3)
    with in_tenant(shibuya):  # past the files' lines (quoted line breaks): no estimate
        ImportRun.objects.filter(pk=run.pk).update(progress_rows=run.rows_expected + 1)
    assert admin.get(f"{BASE}{run.pk}/status.json").json()["seconds_left"] is None


def test_a_second_import_waits_behind_the_first_and_says_so(admin, shibuya, synth_data):
    upload(admin, c4th_files(synth_data))
    upload(admin, c4th_files(synth_data))
    with in_tenant(shibuya):
        _first, second = ImportRun.objects.order_by("pk")
    status = admin.get(f"{BASE}{second.pk}/status.json").json()
    assert status["ahead"] == 1
    assert (
        '前に <span data-field="ahead">1</span> 件'
        in admin.get(f"{BASE}{second.pk}/").content.decode()
    )
    assert jobs.run_pending(limit=1) == 1
    assert admin.get(f"{BASE}{second.pk}/status.json").json()["ahead"] == 0
    jobs.run_pending()
    with in_tenant(shibuya):
        assert set(ImportRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_queued_import_cancelled_never_runs(admin, shibuya, synth_data):
    upload(admin, c4th_files(synth_data))
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    response = admin.post(f"{BASE}{run.pk}/cancel/", follow=True)
    assert "取り消しました" in response.content.decode()
    assert jobs.run_pending() == 0
    with in_tenant(shibuya):
        run.refresh_from_db()
        assert run.status == "cancelled" and not Student.objects.exists()
    assert AuditEvent.objects.filter(action="import.cancel").count() == 1
    # a finished run cannot be cancelled: the page says why, nothing changes
    response = admin.post(f"{BASE}{run.pk}/cancel/", follow=True)
    assert "既に終わっているため取り消せません" in response.content.decode()


def test_a_running_import_stopped_by_its_progress_applies_nothing(shibuya, synth_data):
    """What a cancel does once a run has started: its progress report stops it (see
    test_jobs_worker.py for the report that reads the request from another connection)."""
    uploads = [jobs.Upload(p.name, p.open("rb")) for p in c4th_files(synth_data)]
    run = jobs.do_queue_import(
        pipeline.registry.get("c4th"), shibuya, actor=Actor.system("test"), uploads=uploads
    )

    class Cancelled(pipeline.Progress):
        phases: list[str] = []

        def phase(self, phase):
            self.phases.append(phase)

        def rows(self, rows_read):
            if rows_read:
                raise pipeline.ImportCancelled

    progress = Cancelled()
    done = pipeline.run_queued(run.pk, shibuya, progress)
    assert done.status == "cancelled" and "反映されていません" in done.message
    assert progress.phases == ["loading"]
    with in_tenant(shibuya):
        assert not Student.objects.exists() and not AttendanceDay.objects.exists()
        assert ImportRun.objects.get(pk=run.pk).status == "cancelled"


def test_the_upload_refuses_bad_input_and_queues_nothing(
    admin, shibuya, synth_data, settings, tmp_path
):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    response = upload(admin, [empty])
    assert (
        response.status_code == 400
        and "空のファイルは取り込めません: empty.csv" in response.content.decode()
    )
    response = admin.post(BASE + "new/", {"connector": "c4th"})
    assert response.status_code == 400 and "1 つ以上選んでください" in response.content.decode()
    response = upload(admin, c4th_files(synth_data), connector="nosuch")
    assert response.status_code == 400
    settings.RENKEI_UPLOAD_MAX_BYTES = 1024
    big = max(c4th_files(synth_data), key=lambda p: p.stat().st_size)
    assert big.stat().st_size > 1024
    response = upload(admin, [big])
    assert response.status_code == 413
    assert f"「{big.name}」は大きすぎます（1 ファイル 1 KB まで）" in response.content.decode()
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()
    assert not Job.objects.exists()


def test_only_this_municipalitys_admins_upload_and_the_page_checks_csrf(
    make_user, shibuya, school_world, synth_data
):
    teacher = Client()
    teacher.force_login(
        make_user("teacher-a", "teacher", municipality=shibuya, schools=[school_world["A"].code])
    )
    assert upload(teacher, c4th_files(synth_data)).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("admin-x", "tenant_admin", municipality=shibuya))
    assert upload(strict, c4th_files(synth_data)).status_code == 403
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()


def test_stored_names_are_safe_and_unique():
    taken: set[str] = set()
    names = [
        jobs.stored_name(n, taken)
        for n in ("../../etc/passwd", "C:\\exports\\出欠.csv", "roster.csv", "roster.csv", "")
    ]
    assert names == ["passwd", "__.csv", "roster.csv", "roster-2.csv", "upload"]


def test_a_job_that_breaks_marks_its_run_failed_and_logs_no_data(
    admin, shibuya, synth_data, monkeypatch, caplog
):
    upload(admin, c4th_files(synth_data))

    def broken(*args, **kwargs):
        raise RuntimeError("duplicate key (山田 太郎)")

    monkeypatch.setattr(pipeline, "run_queued", broken)
    assert jobs.run_pending() == 1  # and the queue goes on
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    assert run.status == "failed" and "反映されていません" in run.message
    assert "RuntimeError" in caplog.text and "山田" not in caplog.text
    assert not Job.objects.exists()


def test_an_upload_for_one_export_kind_refuses_a_file_of_another(admin, shibuya, synth_data):
    roster = synth_data / "c4th" / "roster.csv"
    response = upload(admin, [roster], kind="c4th:attendance")
    assert response.status_code == 302
    jobs.run_pending()
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
        assert run.status == "failed" and not Student.objects.exists()
    # the message names the layout asked for and the header it needs
    assert "roster.csv: 「" in run.message and "のファイルではありません" in run.message
    assert "見出しに" in run.message and "が必要です" in run.message, run.message
    # the kind chosen with its own connector: the file is read
    upload(admin, [synth_data / "c4th" / "attendance.csv"], kind="c4th:attendance")
    jobs.run_pending()
    with in_tenant(shibuya):
        assert ImportRun.objects.order_by("-pk").first().status == "succeeded"


def test_an_export_kind_of_another_connector_is_refused_on_the_form(admin, shibuya, synth_data):
    response = upload(admin, c4th_files(synth_data), kind="suzuki:attendance")
    assert response.status_code == 400
    assert "選んだコネクタのものではありません" in response.content.decode()
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()


def test_a_job_whose_worker_died_is_run_again_but_not_one_still_running(admin, shibuya, synth_data):
    upload(admin, c4th_files(synth_data))
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    long_ago = timezone.now() - jobs.ABANDONED_AFTER - dt.timedelta(seconds=1)
    Job.objects.update(claimed_at=long_ago)
    # an import still running in the municipality holds its write lock: the claim stands
    side = connections.create_connection("default")
    try:
        with side.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(hashtext(%s))", [f"renkei-import:{shibuya.schema_name}"]
            )
        assert jobs.reclaim_abandoned() == 0
    finally:
        side.close()  # the worker's connection dies with it, and so does the lock
    # then the job is put back and runs
    assert jobs.run_pending() == 1
    with in_tenant(shibuya):
        run.refresh_from_db()
    assert run.status == "succeeded" and not Job.objects.exists()
