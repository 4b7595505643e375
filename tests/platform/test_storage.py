"""Storage: the local directory and the S3 backend, the latter against moto in server mode
(ThreadedMotoServer) over real HTTP with an explicit endpoint URL, presigned URLs included."""

from __future__ import annotations

import datetime as dt
import io
import socket
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from renkei.platform.audit import Actor
from renkei.platform.storage import LocalStorage, S3Storage, get_storage

TEST_ACTOR = Actor.system("test")

REGION = "ap-northeast-1"
BUCKET = "renkei-test-data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch, tmp_path):
    # Fake credentials, and never a developer's real ~/.aws configuration.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture(scope="module")
def kms_key(moto_endpoint):
    kms = boto3.client(
        "kms",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return kms.create_key(Description="renkei test data")["KeyMetadata"]["Arn"]


@pytest.fixture(scope="module")
def s3(moto_endpoint):
    client = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass  # moto's state is per process: pytest-django may run this module in two groups
    return client


@pytest.fixture
def storage(moto_endpoint, kms_key, s3):
    return S3Storage(BUCKET, kms_key, region=REGION, endpoint_url=moto_endpoint)


def test_save_open_exists_under_tenant_prefix_with_sse_kms(storage, s3, kms_key):
    content = "学年,組,氏名\n3,1,テスト\n".encode("cp932")
    assert (
        storage.save("131130", "imports/7/roster.csv", io.BytesIO(content))
        == "imports/7/roster.csv"
    )

    assert storage.exists("131130", "imports/7/roster.csv")
    assert not storage.exists("131130", "imports/7/other.csv")
    assert not storage.exists("131041", "imports/7/roster.csv")  # another tenant's prefix
    with storage.open("131130", "imports/7/roster.csv") as f:
        assert f.read() == content
    with pytest.raises(FileNotFoundError):
        storage.open("131041", "imports/7/roster.csv")

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="raw-imports/")["Contents"]]
    assert "raw-imports/m131130/7/roster.csv" in keys  # the lifecycle rule's prefix
    head = s3.head_object(Bucket=BUCKET, Key="raw-imports/m131130/7/roster.csv")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key
    assert head.get("BucketKeyEnabled") is True


def test_exports_have_their_own_prefix(storage, s3):
    storage.save("271004", "exports/errors-12.csv", io.BytesIO(b"\xef\xbb\xbfa,b\n"))
    head = s3.head_object(Bucket=BUCKET, Key="exports/m271004/errors-12.csv")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_presigned_url_downloads_over_http_and_is_short_lived(storage, moto_endpoint):
    content = b"\xef\xbb\xbf" + "ファイル,行,列,値,理由\n".encode()
    storage.save("131130", "exports/errors-run-3.csv", io.BytesIO(content))

    url = storage.url("131130", "exports/errors-run-3.csv")
    assert url.startswith(f"{moto_endpoint}/{BUCKET}/exports/m131130/errors-run-3.csv?")
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature=" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == content
    assert "attachment" in response.headers.get("Content-Disposition", "")

    # Without the signature the object is not served. (moto checks that a request is signed
    # and not expired, not the signature itself: that part is AWS's.)
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403

    # S3 refuses a presigned URL after X-Amz-Expires seconds from X-Amz-Date (moto does not
    # enforce expiry, so the signed parameters are checked here).
    query = parse_qs(urlsplit(storage.url("131130", "exports/errors-run-3.csv", expires=60)).query)
    assert query["X-Amz-Expires"] == ["60"]
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert abs((dt.datetime.utcnow() - signed_at).total_seconds()) < 60

    for expires in (0, 3601, -5):
        with pytest.raises(ValueError):
            storage.url("131130", "exports/errors-run-3.csv", expires=expires)


@pytest.mark.parametrize(
    "tenant, key",
    [
        ("131130", "../131041/imports/1/a.csv"),
        ("131130", "imports/../../m131041/a.csv"),
        ("131130", "imports/1/../../x"),
        ("131130", "/imports/1/a.csv"),
        ("131130", "imports/m131041/a.csv"),  # names another tenant
        ("131130", "exports/m271004/report.csv"),
        ("131130", "raw-imports/m131130/1/a.csv"),  # an S3 key, not a storage key
        ("131130", "a.csv"),  # no area
        ("131130", "imports/./1/a.csv"),
        ("131130", "imports//1/a.csv"),
        ("13113", "imports/1/a.csv"),
        ("m131130", "imports/1/a.csv"),
        ("131130/../131041", "imports/1/a.csv"),
    ],
)
def test_keys_that_could_leave_the_tenant_prefix_are_refused(storage, tenant, key):
    with pytest.raises(ValueError):
        storage.save(tenant, key, io.BytesIO(b"x"))
    with pytest.raises(ValueError):
        storage.url(tenant, key)
    with pytest.raises(ValueError):
        storage.exists(tenant, key)


def test_get_storage_picks_s3_from_settings(moto_endpoint, kms_key, s3):
    with override_settings(
        RENKEI_STORAGE="s3",
        RENKEI_S3_BUCKET=BUCKET,
        RENKEI_S3_KMS_KEY_ID=kms_key,
        RENKEI_S3_ENDPOINT_URL=moto_endpoint,
        AWS_REGION=REGION,
    ):
        storage = get_storage()
        assert isinstance(storage, S3Storage)
        assert get_storage() is storage  # one client per configuration
        storage.save("131041", "exports/x.csv", io.BytesIO(b"1"))
        assert s3.head_object(Bucket=BUCKET, Key="exports/m131041/x.csv")["ContentLength"] == 1
    assert isinstance(get_storage(), LocalStorage)
    with override_settings(RENKEI_STORAGE="s3", RENKEI_S3_BUCKET=BUCKET, RENKEI_S3_KMS_KEY_ID=""):
        with pytest.raises(ImproperlyConfigured, match="KMS"):
            get_storage()
    with override_settings(RENKEI_STORAGE="ftp"):
        with pytest.raises(ImproperlyConfigured):
            get_storage()


@pytest.mark.django_db
def test_import_archives_raw_files_in_s3(tmp_path, shibuya, moto_endpoint, kms_key, s3):
    """The pipeline, unchanged, archives its input under raw-imports/<schema>/<run>/."""
    from renkei.connectors.pipeline import do_import
    from renkei.demo.synth import generate

    generate("131130", tmp_path / "synth", students=12, days=3)
    with override_settings(
        RENKEI_STORAGE="s3",
        RENKEI_S3_BUCKET=BUCKET,
        RENKEI_S3_KMS_KEY_ID=kms_key,
        RENKEI_S3_ENDPOINT_URL=moto_endpoint,
        AWS_REGION=REGION,
    ):
        run = do_import(
            "oneroster", shibuya, actor=TEST_ACTOR, paths=[tmp_path / "synth" / "oneroster"]
        )
    assert run.status == "succeeded", run.message
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"raw-imports/m131130/{run.pk}/")[
            "Contents"
        ]
    ]
    assert keys and all(k.startswith(f"raw-imports/m131130/{run.pk}/oneroster/") for k in keys)
    assert {s3.head_object(Bucket=BUCKET, Key=k)["SSEKMSKeyId"] for k in keys} == {kms_key}


def test_list_finds_the_files_under_a_folder_with_their_sizes_and_delete_removes_one(storage, s3):
    storage.save("131130", "inbox/c4th/出欠.csv", io.BytesIO(b"abc"))
    storage.save("131130", "inbox/c4th/processed/1-a.csv", io.BytesIO(b"a"))
    storage.save("131130", "inbox/c4thx/other.csv", io.BytesIO(b"not in the folder"))
    storage.save("131041", "inbox/c4th/theirs.csv", io.BytesIO(b"another tenant's"))
    s3.put_object(Bucket=BUCKET, Key="inbox/m131130/c4th/folder/", Body=b"")  # a placeholder
    assert storage.list("131130", "inbox/c4th") == [
        ("inbox/c4th/processed/1-a.csv", 1),
        ("inbox/c4th/出欠.csv", 3),
    ]
    assert storage.list("131130", "inbox/c4th/") == storage.list("131130", "inbox/c4th")
    assert storage.list("131130", "inbox/none") == []
    storage.delete("131130", "inbox/c4th/出欠.csv")
    assert [s.key for s in storage.list("131130", "inbox/c4th")] == ["inbox/c4th/processed/1-a.csv"]
    with pytest.raises(ValueError):
        storage.list("131130", "inbox/../../m131041")


def test_s3_list_reads_every_page(storage, monkeypatch):
    for n in range(5):
        storage.save("271004", f"imports/77/{n}.csv", io.BytesIO(b"x" * n))
    pages = []
    storage.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **kwargs: pages.append(request.url)
    )
    original = storage.client.get_paginator

    def small_pages(name):
        paginator = original(name)
        paginate = paginator.paginate
        paginator.paginate = lambda **kw: paginate(**kw, PaginationConfig={"PageSize": 2})
        return paginator

    monkeypatch.setattr(storage.client, "get_paginator", small_pages)
    assert storage.list("271004", "imports/77") == [(f"imports/77/{n}.csv", n) for n in range(5)]
    assert len(pages) == 3


def test_local_list_and_delete(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.save("131130", "inbox/c4th/出欠.csv", io.BytesIO(b"abc"))
    storage.save("131130", "inbox/c4th/processed/1-a.csv", io.BytesIO(b"a"))
    storage.save("131041", "inbox/c4th/theirs.csv", io.BytesIO(b"another tenant's"))
    folder = tmp_path / "131130" / "inbox" / "c4th"
    (folder / "名前 に空白.csv").write_bytes(b"not a storage key")
    assert storage.list("131130", "inbox/c4th") == [
        ("inbox/c4th/processed/1-a.csv", 1),
        ("inbox/c4th/出欠.csv", 3),
    ]
    assert storage.list("131130", "inbox/none") == []
    storage.delete("131130", "inbox/c4th/出欠.csv")
    storage.delete("131130", "inbox/c4th/出欠.csv")  # gone already: nothing to do
    assert not (folder / "出欠.csv").exists()
    with pytest.raises(ValueError):
        storage.list("131130", "inbox/../../131041/inbox")
    with pytest.raises(ValueError):
        storage.delete("131130", "../131041/inbox/c4th/theirs.csv")


def test_local_storage_never_reads_through_a_link(tmp_path):
    """Others write into an inbox: a link there to another tenant's file (or to anything on
    the server) is neither listed nor opened."""
    storage = LocalStorage(tmp_path)
    storage.save("131041", "exports/theirs.csv", io.BytesIO(b"another tenant's"))
    storage.save("131130", "inbox/c4th/mine.csv", io.BytesIO(b"mine"))
    folder = tmp_path / "131130" / "inbox" / "c4th"
    (folder / "link.csv").symlink_to(tmp_path / "131041" / "exports" / "theirs.csv")
    (folder / "linked").symlink_to(tmp_path / "131041" / "exports", target_is_directory=True)
    assert storage.list("131130", "inbox/c4th") == [("inbox/c4th/mine.csv", 4)]
    with pytest.raises(OSError):
        storage.open("131130", "inbox/c4th/link.csv")


def test_local_storage_has_no_download_url(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.save("131130", "exports/a.csv", io.BytesIO(b"a"))
    assert storage.url("131130", "exports/a.csv") is None
    with pytest.raises(ValueError):
        storage.url("131130", "../a.csv")


class Exploding(io.RawIOBase):
    """A source that fails after ``limit`` bytes (a dropped upload, a full disk)."""

    def __init__(self, limit: int):
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise OSError("source went away")
        n = min(len(buffer), self.left, 1 << 20)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def test_large_objects_go_up_in_parts_encrypted_and_never_half_written(
    storage, s3, kms_key, monkeypatch
):
    from renkei.platform import storage as storage_module

    monkeypatch.setattr(storage_module, "PART_SIZE", 5 << 20)  # S3's minimum part size
    sent = []
    storage.client.meta.events.register(
        "before-send.s3.CreateMultipartUpload",
        lambda request, **kwargs: sent.append(dict(request.headers)),
    )
    content = bytes(range(256)) * (11 << 12)  # 11.5 MB: three parts
    storage.save("131130", "imports/9/big.csv", io.BufferedReader(io.BytesIO(content)))
    head = s3.head_object(Bucket=BUCKET, Key="raw-imports/m131130/9/big.csv")
    assert head["ContentLength"] == len(content)
    assert head["ETag"].endswith('-3"')  # a multipart object
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    # moto keeps the bucket-key flag of single PUTs only: check what was asked for.
    assert [h.get("x-amz-server-side-encryption-bucket-key-enabled") for h in sent] == [b"true"]
    with storage.open("131130", "imports/9/big.csv") as f:
        assert f.read() == content

    with pytest.raises(OSError, match="went away"):
        storage.save("131130", "imports/9/broken.csv", Exploding(7 << 20))
    assert not storage.exists("131130", "imports/9/broken.csv")
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
