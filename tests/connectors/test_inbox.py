"""The inbox: files a municipality's own systems drop into ``inbox/<connector>/`` of its
storage are queued as imports (started by 受信箱) once complete — a ``.done`` marker, or the
same size at two looks a while apart — and moved to processed/ (with the run id) or failed/
(with the reason). Only enabled inboxes are looked at, never another tenant's, and no file
is queued twice."""

from __future__ import annotations

import datetime as dt
import io
import socket
import zipfile

import boto3
import psycopg
import pytest
from django.db import connection
from django.test import Client, override_settings

from renkei.connectors import inbox, jobs
from renkei.edudata.models import ConnectorSetting, ImportRun, InboxFile, Student
from renkei.platform.models import AuditEvent, Job
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def storage_root(home):
    return home / "storage"


def enable(municipality, connector="c4th", *, enabled=True, inbox_enabled=True):
    with in_tenant(municipality):
        ConnectorSetting.objects.update_or_create(
            connector=connector, defaults={"enabled": enabled, "inbox_enabled": inbox_enabled}
        )


def drop(storage_root, municipality, name, content: bytes, connector="c4th"):
    path = storage_root / municipality.code / "inbox" / connector / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def export_zip(synth_data) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((synth_data / "c4th").glob("*.csv")):
            archive.write(path, path.name)
    return out.getvalue()


def inbox_files(storage_root, municipality, connector="c4th") -> list[str]:
    folder = storage_root / municipality.code / "inbox" / connector
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def runs(municipality) -> list[ImportRun]:
    with in_tenant(municipality):
        return list(ImportRun.objects.order_by("pk"))


def test_a_file_with_its_done_marker_is_queued_and_moved_to_processed(
    shibuya, synth_data, storage_root
):
    enable(shibuya)
    drop(storage_root, shibuya, "書き出し.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "書き出し.zip.done", b"")
    # when: the inbox is looked at once
    (taken,) = inbox.sweep(shibuya)
    # then: queued as one run started by the inbox, and moved away with its run id
    (run,) = runs(shibuya)
    assert taken == inbox.Taken("c4th", "書き出し.zip", run_id=run.pk)
    assert run.status == "queued" and run.starter == "受信箱" and run.started_via == "inbox"
    assert sorted(k.rsplit("/", 1)[1] for k in run.files) == sorted(
        p.name for p in (synth_data / "c4th").glob("*.csv")
    )
    assert inbox_files(storage_root, shibuya) == [f"processed/{run.pk}-書き出し.zip"]
    (event,) = AuditEvent.objects.filter(action="import.start")
    assert (event.username, event.via) == ("受信箱", "inbox")
    assert event.target == f"import {run.pk} (c4th)" and event.municipality_code == "131130"
    # and: the worker imports it, as an upload of the same zip
    assert jobs.run_pending() == 1
    (run,) = runs(shibuya)
    assert run.status == "succeeded", run.message
    with in_tenant(shibuya):
        assert Student.objects.count() == 20
    # a later look finds nothing new: processed/ is never taken again
    assert inbox.sweep(shibuya) == []
    assert len(runs(shibuya)) == 1


def test_a_file_without_marker_is_taken_once_its_size_holds(shibuya, synth_data, storage_root):
    enable(shibuya)
    roster = (synth_data / "c4th" / "roster.csv").read_bytes()
    path = drop(storage_root, shibuya, "roster.csv", roster[:100])
    assert inbox.sweep(shibuya) == []  # first look: size remembered
    path.write_bytes(roster)
    assert inbox.sweep(shibuya) == []  # it grew: still being written
    assert inbox.sweep(shibuya) == []  # same size, but only just now
    with in_tenant(shibuya):
        (seen,) = InboxFile.objects.all()
        assert (seen.name, seen.size) == ("roster.csv", len(roster))
        seen.seen_at -= inbox.STABLE_FOR  # as if the look were half a minute later
        seen.save()
    (taken,) = inbox.sweep(shibuya)
    assert taken.run_id and runs(shibuya)[0].pk == taken.run_id
    assert inbox_files(storage_root, shibuya) == [f"processed/{taken.run_id}-roster.csv"]
    with in_tenant(shibuya):
        assert not InboxFile.objects.exists()  # nothing left to remember
    jobs.run_pending()
    assert runs(shibuya)[0].status == "succeeded"


def test_files_being_written_and_subfolders_are_left_alone(shibuya, storage_root):
    enable(shibuya)
    for name in ("roster.csv.part", ".roster.csv.swp", "~roster.csv", "later/roster.csv"):
        drop(storage_root, shibuya, name, b"x")
        drop(storage_root, shibuya, name + ".done", b"")
    assert inbox.sweep(shibuya, stable_for=dt.timedelta(0)) == []
    assert inbox.sweep(shibuya, stable_for=dt.timedelta(0)) == []
    assert runs(shibuya) == []


@pytest.mark.parametrize(
    "setting",
    [None, {"enabled": True, "inbox_enabled": False}, {"enabled": False, "inbox_enabled": True}],
)
def test_a_disabled_inbox_is_not_looked_at(shibuya, synth_data, storage_root, setting):
    if setting is not None:
        enable(shibuya, **setting)
    drop(storage_root, shibuya, "export.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "export.zip.done", b"")
    assert inbox.sweep(shibuya) == []
    assert inbox.sweep_all() == []
    assert runs(shibuya) == []
    assert inbox_files(storage_root, shibuya) == ["export.zip", "export.zip.done"]


def test_a_file_that_cannot_be_queued_goes_to_failed_with_its_reason(
    shibuya, storage_root, settings
):
    enable(shibuya)
    drop(storage_root, shibuya, "broken.zip", b"not a zip at all")
    drop(storage_root, shibuya, "broken.zip.done", b"")
    drop(storage_root, shibuya, "empty.csv", b"")
    drop(storage_root, shibuya, "empty.csv.done", b"")
    settings.RENKEI_UPLOAD_MAX_BYTES = 1024
    drop(storage_root, shibuya, "big.csv", b"x" * 2048)
    drop(storage_root, shibuya, "big.csv.done", b"")
    taken = {t.name: t for t in inbox.sweep(shibuya)}
    assert set(taken) == {"broken.zip", "empty.csv", "big.csv"}
    assert not any(t.run_id for t in taken.values())
    assert runs(shibuya) == [] and not Job.objects.exists()
    assert not AuditEvent.objects.filter(action="import.start").exists()
    files = inbox_files(storage_root, shibuya)
    assert all(f.startswith("failed/") for f in files) and len(files) == 6
    folder = storage_root / shibuya.code / "inbox" / "c4th"
    (broken,) = [f for f in files if f.endswith("-broken.zip")]
    assert (folder / broken).read_bytes() == b"not a zip at all"
    reasons = {
        name: (folder / f"{f}.reason.txt").read_text(encoding="utf-8")
        for f in files
        for name in taken
        if f.endswith(f"-{name}")
    }
    assert "「broken.zip」は zip ファイルとして読めません" in reasons["broken.zip"]
    assert "空のファイル" in reasons["empty.csv"]
    assert "大きすぎます（1 ファイル 1 KB まで）" in reasons["big.csv"]
    assert all("取り込んでいません" in r for r in reasons.values())
    assert inbox.sweep(shibuya) == []  # failed/ is never taken again


def test_a_file_in_one_tenants_inbox_never_becomes_anothers_run(
    shibuya, shinjuku, synth_data, storage_root
):
    enable(shibuya)
    enable(shinjuku)
    drop(storage_root, shibuya, "export.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "export.zip.done", b"")
    assert inbox.sweep(shinjuku) == []
    assert inbox.inbox_tenants() == ["131041", "131130"]
    (taken,) = inbox.sweep_all()
    (run,) = runs(shibuya)
    assert taken.run_id == run.pk and runs(shinjuku) == []
    assert Job.objects.get().municipality_code == "131130"
    assert inbox_files(storage_root, shinjuku) == []


def test_a_second_sweep_of_the_same_tenant_at_once_takes_nothing(shibuya, synth_data, storage_root):
    enable(shibuya)
    drop(storage_root, shibuya, "export.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "export.zip.done", b"")
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    ) as other:  # another sweep of 渋谷区, in another process, holds the inbox
        other.execute(
            "SELECT pg_advisory_lock(hashtext(%s))", [f"renkei-inbox:{shibuya.schema_name}"]
        )
        assert inbox.sweep(shibuya) == []
        assert runs(shibuya) == []
    assert len(inbox.sweep(shibuya)) == 1  # free again
    assert len(runs(shibuya)) == 1


def test_the_embedded_worker_looks_at_the_inboxes_every_minute(
    shibuya, synth_data, storage_root, monkeypatch
):
    monkeypatch.setattr(jobs, "close_old_connections", lambda: None)  # the test's transaction
    enable(shibuya)
    drop(storage_root, shibuya, "export.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "export.zip.done", b"")
    next_sweep = jobs._look(0.0)
    (run,) = runs(shibuya)
    assert run.status == "succeeded"  # queued by the sweep, run in the same round
    drop(storage_root, shibuya, "again.zip", export_zip(synth_data))
    drop(storage_root, shibuya, "again.zip.done", b"")
    assert jobs._look(next_sweep) == next_sweep  # not yet: the next look is a minute later
    assert len(runs(shibuya)) == 1


def test_the_inbox_is_switched_on_in_the_connector_settings(make_user, shibuya, storage_root):
    admin = Client()
    admin.force_login(make_user("admin-s", "tenant_admin", municipality=shibuya))
    page = admin.get("/m/131130/manage/connectors/c4th/").content.decode()
    assert f"{storage_root / '131130' / 'inbox' / 'c4th'}/" in page
    assert 'name="inbox_enabled"' in page
    response = admin.post(
        "/m/131130/manage/connectors/c4th/", {"enabled": "on", "inbox_enabled": "on"}
    )
    assert response.status_code == 302
    with in_tenant(shibuya):
        assert ConnectorSetting.objects.get(connector="c4th").inbox_enabled
    event = AuditEvent.objects.get(action="connector.settings")
    assert event.changes["inbox_enabled"] == {"before": None, "after": True}
    assert inbox.inbox_tenants() == ["131130"]


# -- in S3 ---------------------------------------------------------------------------------------

REGION, BUCKET = "ap-northeast-1", "renkei-test-inbox"


@pytest.fixture
def s3_storage(monkeypatch, tmp_path):
    from moto.server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        with override_settings(
            RENKEI_STORAGE="s3",
            RENKEI_S3_BUCKET=BUCKET,
            RENKEI_S3_KMS_KEY_ID=key,
            RENKEI_S3_ENDPOINT_URL=endpoint,
            AWS_REGION=REGION,
        ):
            yield s3
    finally:
        server.stop()


def test_an_inbox_in_s3_is_swept_the_same_way(shibuya, synth_data, s3_storage):
    enable(shibuya)
    assert inbox.location(shibuya, "c4th") == f"s3://{BUCKET}/inbox/m131130/c4th/"
    s3_storage.put_object(
        Bucket=BUCKET, Key="inbox/m131130/c4th/書き出し.zip", Body=export_zip(synth_data)
    )
    s3_storage.put_object(Bucket=BUCKET, Key="inbox/m131130/c4th/書き出し.zip.done", Body=b"")
    (taken,) = inbox.sweep(shibuya)  # a zip read from a stream that cannot seek
    assert taken.run_id
    keys = [
        o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET, Prefix="inbox/")["Contents"]
    ]
    assert keys == [f"inbox/m131130/c4th/processed/{taken.run_id}-書き出し.zip"]
    jobs.run_pending()
    assert runs(shibuya)[0].status == "succeeded"
