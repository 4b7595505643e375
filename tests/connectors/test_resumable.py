"""Resumable uploads (tus) of 管理 › 取り込み: a file sent in parts, cut halfway and resumed
from the offset the server reports, is imported whole; an upload never finished expires and
nothing of it is imported; nobody but its sender (and no other tenant) can read, continue or
use it; and every refusal says why."""

from __future__ import annotations

import base64
import os
import time

import pytest
from django.test import Client

from renkei.connectors import jobs, resumable
from renkei.edudata.models import ImportRun, Student
from renkei.platform.models import Job
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

ENDPOINT = "/m/131130/manage/imports/uploads/"
PAGE = "/m/131130/manage/imports/new/"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings, home):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin(make_user, shibuya):
    return signed_in(make_user("admin-s", "tenant_admin", municipality=shibuya))


def create(client, name: str, length: int, endpoint: str = ENDPOINT):
    encoded = base64.b64encode(name.encode()).decode()
    return client.post(
        endpoint,
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": f"filename {encoded}"},
    )


def patch(client, url: str, offset: int, data: bytes):
    return client.patch(
        url,
        data,
        content_type="application/offset+octet-stream",
        headers={**TUS, "Upload-Offset": str(offset)},
    )


def offset(client, url: str) -> int:
    response = client.head(url, headers=TUS)
    assert response.status_code == 200, response.content.decode()
    return int(response["Upload-Offset"])


def test_an_upload_cut_halfway_resumes_and_is_imported_whole(admin, shibuya, synth_data):
    files = sorted((synth_data / "c4th").glob("*.csv"))
    ids = []
    for path in files:
        data = path.read_bytes()
        created = create(admin, path.name, len(data))
        assert created.status_code == 201 and created["Tus-Resumable"] == "1.0.0"
        url = created["Location"]
        half = len(data) // 2
        # the connection drops after half the file: the server keeps what arrived...
        assert patch(admin, url, 0, data[:half]).status_code == 204
        # ...says where to go on from, and refuses a part sent from anywhere else
        assert offset(admin, url) == half
        stale = patch(admin, url, 0, data)
        assert stale.status_code == 409 and str(half) in stale.content.decode()
        done = patch(admin, url, half, data[half:])
        assert done.status_code == 204 and int(done["Upload-Offset"]) == len(data)
        ids.append(url.rstrip("/").rsplit("/", 1)[1])

    response = admin.post(PAGE, {"connector": "c4th", "uploads": ",".join(ids)})
    assert response.status_code == 302
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    assert sorted(k.rsplit("/", 1)[1] for k in run.files) == [p.name for p in files]
    # the parts were stored with the run: the same ids cannot queue a second import
    assert not list((home_uploads(shibuya)).glob("*"))
    again = admin.post(PAGE, {"connector": "c4th", "uploads": ",".join(ids)})
    assert again.status_code == 400 and "このアップロードはありません" in again.content.decode()
    jobs.run_pending()
    with in_tenant(shibuya):
        run.refresh_from_db()
        assert run.status == "succeeded" and Student.objects.count() == 20


def home_uploads(municipality):
    return resumable._folder(municipality.code)


def test_an_unfinished_upload_is_not_imported_and_expires(admin, shibuya, settings):
    url = create(admin, "attendance.csv", 100)["Location"]
    assert patch(admin, url, 0, b"x" * 40).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    response = admin.post(PAGE, {"connector": "c4th", "uploads": upload_id})
    assert response.status_code == 400
    assert "まだ送り終わっていません（40/100 バイト）" in response.content.decode()

    # a day without a part: gone, with a message that says so
    settings.RENKEI_UPLOAD_EXPIRES = 60
    part = home_uploads(shibuya) / f"{upload_id}.part"
    old = time.time() - 120
    os.utime(part, (old, old))
    gone = patch(admin, url, 40, b"x" * 60)
    assert gone.status_code == 410 and "期限切れ" in gone.content.decode()
    assert not part.exists()
    # ...and another one abandoned is swept when anyone begins an upload
    stale = create(admin, "b.csv", 10)["Location"].rsplit("/", 1)[1]
    os.utime(home_uploads(shibuya) / f"{stale}.part", (old, old))
    create(admin, "c.csv", 10)
    assert not (home_uploads(shibuya) / f"{stale}.part").exists()
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()
    assert not Job.objects.exists()


def test_only_the_sender_in_their_tenant_sees_an_upload(admin, make_user, shibuya, shinjuku):
    url = create(admin, "attendance.csv", 10)["Location"]
    upload_id = url.rsplit("/", 1)[1]
    colleague = signed_in(make_user("admin-s2", "tenant_admin", municipality=shibuya))
    for response in (
        colleague.head(url, headers=TUS),
        patch(colleague, url, 0, b"0123456789"),
        colleague.delete(url, headers=TUS),
    ):
        assert response.status_code == 404
    assert colleague.post(PAGE, {"connector": "c4th", "uploads": upload_id}).status_code == 400
    # the other municipality's admin, at their own address, with this id
    other = signed_in(make_user("admin-j", "tenant_admin", municipality=shinjuku))
    assert other.head(
        f"/m/{shinjuku.code}/manage/imports/uploads/{upload_id}", headers=TUS
    ).status_code == (404)
    # a teacher of this municipality is no tenant admin
    teacher = signed_in(make_user("t-s", "teacher", municipality=shibuya))
    assert create(teacher, "x.csv", 10).status_code == 403
    # the sender can still finish it, then delete it
    assert offset(admin, url) == 0
    assert admin.delete(url, headers=TUS).status_code == 204
    assert admin.head(url, headers=TUS).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({"Upload-Length": "10"}, 412, "Tus-Resumable"),
        ({**TUS, "Upload-Length": "-1", "Upload-Metadata": "filename YS5jc3Y="}, 400, "0 以上"),
        ({**TUS, "Upload-Length": "ten", "Upload-Metadata": "filename YS5jc3Y="}, 400, "整数"),
        (
            {**TUS, "Upload-Length": "0", "Upload-Metadata": "filename YS5jc3Y="},
            400,
            "空のファイル",
        ),
        ({**TUS, "Upload-Length": "10"}, 400, "filename"),
        ({**TUS, "Upload-Length": "10", "Upload-Metadata": "filename !!"}, 400, "base64"),
        (
            {**TUS, "Upload-Length": str(3 << 30), "Upload-Metadata": "filename YS5jc3Y="},
            413,
            "2 GB",
        ),
    ],
)
def test_a_bad_creation_is_refused_with_its_reason(admin, headers, status, says):
    response = admin.post(ENDPOINT, headers=headers)
    assert response.status_code == status
    assert says in response.content.decode()


def test_bytes_past_the_declared_length_or_the_wrong_type_are_refused(admin):
    url = create(admin, "a.csv", 5)["Location"]
    wrong_type = admin.patch(
        url, b"abc", content_type="text/csv", headers={**TUS, "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415
    too_long = patch(admin, url, 0, b"0123456789")
    assert too_long.status_code == 413 and "長さを超えました" in too_long.content.decode()
    assert offset(admin, url) == 5  # what fitted is kept; the rest was never written


def test_parts_need_the_csrf_token(make_user, shibuya):
    client = signed_in(
        make_user("admin-c", "tenant_admin", municipality=shibuya), enforce_csrf_checks=True
    )
    assert create(client, "a.csv", 5).status_code == 403
    options = client.options(ENDPOINT)
    assert options.status_code == 204 and "creation" in options["Tus-Extension"]
