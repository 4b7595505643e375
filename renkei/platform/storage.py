"""Where raw imports and exports are kept: a local directory by default (under RENKEI_HOME),
S3 when configured (``RENKEI_STORAGE=s3``). Every key lives under the tenant's own prefix.

Keys are relative paths, first segment the area: ``imports/<run>/…`` (raw input archived by
the pipeline), ``exports/…`` (error reports, exports), ``inbox/<connector>/…`` (files a
municipality's own systems drop in, see ``renkei.connectors.inbox``). Locally a key is
``<root>/<tenant code>/<key>``. In S3 it is ``<area>/<tenant schema>/<rest>``, with
``imports`` stored as ``raw-imports`` so that the bucket's lifecycle rule (Terraform
``modules/storage``: transition, then expiry, of ``raw-imports/``) applies to it:

    imports/12/roster.csv  of 131130  ->  s3://<bucket>/raw-imports/m131130/12/roster.csv
    exports/errors-12.csv  of 131130  ->  s3://<bucket>/exports/m131130/errors-12.csv
    inbox/c4th/出欠.csv     of 131130  ->  s3://<bucket>/inbox/m131130/c4th/出欠.csv

Every object is written with SSE-KMS under the configured key, with S3 Bucket Keys.
Downloads are short-lived presigned URLs (``url``), signed again on every request.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol
from urllib.parse import quote

from renkei.platform import environment

# Letters and digits (Japanese too: files dropped into an inbox keep the names their system
# gave them), then also . _ - and /. No spaces, no backslashes, nothing that starts a path.
_KEY = re.compile(r"[^\W_][\w.\-/]*")


class Stored(NamedTuple):
    """A stored file as ``list`` finds it."""

    key: str
    size: int


class Storage(Protocol):
    def save(self, tenant: str, key: str, source: BinaryIO) -> str: ...
    def open(self, tenant: str, key: str) -> BinaryIO: ...
    def exists(self, tenant: str, key: str) -> bool: ...
    def url(self, tenant: str, key: str, expires: int = 300) -> str | None: ...
    def list(self, tenant: str, prefix: str) -> list[Stored]: ...
    def delete(self, tenant: str, key: str) -> None: ...


def check_key(tenant: str, key: str) -> str:
    """Tenant codes and keys come from our code or from file names others chose (an inbox):
    never trust them with a path."""
    if not re.fullmatch(r"[0-9]{6}", tenant):
        raise ValueError(f"not a tenant code: {tenant!r}")
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a storage key: {key!r}")
    return f"{tenant}/{key}"


class LocalStorage:
    def __init__(self, root: Path | None = None):
        self.root = root or environment.home() / "storage"

    def _path(self, tenant: str, key: str) -> Path:
        return self.root / check_key(tenant, key)

    def save(self, tenant: str, key: str, source: BinaryIO) -> str:
        path = self._path(tenant, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)
        partial.replace(path)  # a crash never leaves a half-written archive under the real name
        return key

    def open(self, tenant: str, key: str) -> BinaryIO:
        # Never through a link: others write into an inbox, and a link could point anywhere.
        fd = os.open(self._path(tenant, key), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def exists(self, tenant: str, key: str) -> bool:
        return self._path(tenant, key).exists()

    def list(self, tenant: str, prefix: str) -> list[Stored]:
        """The files under the folder ``prefix`` (and its subfolders), sorted by key. Links
        and names that are not storage keys are left out."""
        base = self._path(tenant, prefix.rstrip("/"))
        top = self.root / tenant
        found = []
        for folder, _dirs, names in os.walk(base):  # does not follow links to folders
            for name in names:
                path = Path(folder, name)
                key = path.relative_to(top).as_posix()
                try:
                    check_key(tenant, key)
                    info = path.lstat()
                except (ValueError, FileNotFoundError):  # not a key; gone since the walk read it
                    continue
                if stat.S_ISREG(info.st_mode):
                    found.append(Stored(key, info.st_size))
        return sorted(found)

    def delete(self, tenant: str, key: str) -> None:
        self._path(tenant, key).unlink(missing_ok=True)

    def url(self, tenant: str, key: str, expires: int = 300) -> str | None:
        """None: a local file has no download URL of its own; serve it through the app."""
        self._path(tenant, key)
        return None


# -- S3 ---------------------------------------------------------------------------------------

# The first segment of a key names its area; the S3 prefix of the area, where it differs.
S3_AREAS = {"imports": "raw-imports"}
MAX_URL_SECONDS = 3600  # presigned URLs are short-lived: at most an hour, 5 minutes by default
PART_SIZE = 16 << 20  # multipart upload part size (S3: at least 5 MiB, at most 10,000 parts)


class S3Storage:
    """Objects in one bucket under ``<area>/<tenant schema>/``, SSE-KMS with bucket keys."""

    def __init__(
        self,
        bucket: str,
        kms_key_id: str,
        *,
        region: str = "ap-northeast-1",
        endpoint_url: str | None = None,
        client=None,
    ):
        if not bucket:
            raise ValueError("S3 storage needs a bucket (RENKEI_S3_BUCKET).")
        if not kms_key_id:
            raise ValueError(
                "S3 storage needs a KMS key (RENKEI_S3_KMS_KEY_ID): every object "
                "is encrypted with SSE-KMS."
            )
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.client = client or _s3_client(region, endpoint_url)

    def object_key(self, tenant: str, key: str) -> str:
        """The S3 key of ``key`` of ``tenant``; refuses keys that could leave its prefix."""
        check_key(tenant, key)
        area, _, rest = key.partition("/")
        if not rest or area in S3_AREAS.values():
            raise ValueError(
                f"S3 storage keys start with their area (imports/…, exports/…): {key!r}"
            )
        for segment in key.split("/"):
            other = _SCHEMA_SEGMENT.fullmatch(segment)
            if other and other[1] != tenant:
                raise ValueError(f"key {key!r} names another tenant than {tenant}")
        prefix = f"{S3_AREAS.get(area, area)}/m{tenant}/"
        object_key = prefix + rest
        if not object_key.startswith(prefix) or "//" in object_key or "." in key.split("/"):
            raise ValueError(f"not a storage key: {key!r}")
        return object_key

    def save(self, tenant: str, key: str, source: BinaryIO) -> str:
        """Stream ``source`` to the object: one PUT up to PART_SIZE, a multipart upload above
        (memory stays at one part). The object appears only once complete, so a crash never
        leaves a half-written archive under the real key. (Not boto3's upload_fileobj: it
        cannot ask for S3 Bucket Keys per object.)"""
        object_key = self.object_key(tenant, key)
        first = _read_part(source)
        if len(first) < PART_SIZE:
            self.client.put_object(
                Bucket=self.bucket, Key=object_key, Body=first, **self._encryption()
            )
            return key
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=object_key, **self._encryption()
        )["UploadId"]
        try:
            parts, number, chunk = [], 1, first
            while chunk:
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=chunk,
                )["ETag"]
                parts.append({"ETag": etag, "PartNumber": number})
                number, chunk = number + 1, _read_part(source)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload)
            raise
        return key

    def open(self, tenant: str, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(tenant, key))
        except ClientError as e:
            if _not_found(e):
                raise FileNotFoundError(f"{tenant}/{key}") from None
            raise
        return response["Body"]

    def exists(self, tenant: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(tenant, key))
        except ClientError as e:
            if _not_found(e):
                return False
            raise
        return True

    def url(self, tenant: str, key: str, expires: int = 300) -> str:
        """A presigned GET URL valid for ``expires`` seconds (1 to 3600), downloading as an
        attachment. Sign again for every download: never store or mail these URLs (with
        temporary credentials they stop working early, when the credentials expire)."""
        if not 1 <= int(expires) <= MAX_URL_SECONDS:
            raise ValueError(f"presigned URLs live 1 to {MAX_URL_SECONDS} seconds, not {expires}")
        name = key.rsplit("/", 1)[-1]
        return self.client.generate_presigned_url(
            "get_object",
            ExpiresIn=int(expires),
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(tenant, key),
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(name)}",
            },
        )

    def delete(self, tenant: str, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(tenant, key))

    def list(self, tenant: str, prefix: str) -> list[Stored]:
        """The objects under the folder ``prefix``, as storage keys with their sizes, sorted.
        Folder placeholders (keys ending in /, made by some S3 tools) are left out."""
        folder = self.object_key(tenant, prefix.rstrip("/")) + "/"
        area = prefix.split("/", 1)[0]
        area_prefix = f"{S3_AREAS.get(area, area)}/m{tenant}/"
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = f"{area}/{item['Key'].removeprefix(area_prefix)}"
                if key.endswith("/") or not self._is_key(tenant, key):
                    continue
                found.append(Stored(key, item["Size"]))
        return sorted(found)

    def _is_key(self, tenant: str, key: str) -> bool:
        try:
            self.object_key(tenant, key)
        except ValueError:
            return False
        return True

    def _encryption(self) -> dict:
        return {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": self.kms_key_id,
            "BucketKeyEnabled": True,
        }


def _read_part(source: BinaryIO) -> bytes:
    """Up to PART_SIZE bytes (read() of a pipe or socket may return less than asked)."""
    chunks, size = [], 0
    while size < PART_SIZE:
        chunk = source.read(PART_SIZE - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


_SCHEMA_SEGMENT = re.compile(r"m([0-9]{6})")  # a tenant schema named inside a key


def _not_found(error) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


def _s3_client(region: str, endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    # A custom endpoint (moto, the compose stack's emulator) is addressed path-style; AWS
    # itself virtual-hosted-style. boto3 also honours AWS_ENDPOINT_URL(_S3) by itself.
    custom = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        s3={"addressing_style": "path" if custom else "virtual"},
    )
    return boto3.session.Session().client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=config
    )


_s3_lock = threading.Lock()
_s3_cache: dict[tuple, S3Storage] = {}


def get_storage() -> Storage:
    """The configured storage: ``settings.RENKEI_STORAGE`` is "local" (default) or "s3"."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    kind = getattr(settings, "RENKEI_STORAGE", "local") or "local"
    if kind == "local":
        return LocalStorage()
    if kind != "s3":
        raise ImproperlyConfigured(f'RENKEI_STORAGE is "local" or "s3", not {kind!r}')
    options = (
        settings.RENKEI_S3_BUCKET,
        settings.RENKEI_S3_KMS_KEY_ID,
        getattr(settings, "AWS_REGION", "ap-northeast-1"),
        getattr(settings, "RENKEI_S3_ENDPOINT_URL", None),
    )
    with _s3_lock:  # one client per configuration: boto3 clients are thread-safe, and slow
        storage = _s3_cache.get(options)
        if storage is None:
            try:
                storage = S3Storage(
                    options[0], options[1], region=options[2], endpoint_url=options[3]
                )
            except ValueError as e:
                raise ImproperlyConfigured(str(e)) from e
            _s3_cache[options] = storage
        return storage
