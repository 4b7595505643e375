"""Zip uploads (管理 and the push API): a zip's files are imported as if sent one by one; a
zip that points outside itself, is encrypted-looking, too big, too many files, or a zip bomb
is refused with a message naming it, and nothing is queued."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest
from django.test import Client

from renkei.accounts.tokens import do_issue_ingest_token
from renkei.connectors import jobs, uploads
from renkei.edudata.models import ImportRun, Student
from renkei.platform.audit import Actor
from renkei.platform.models import Job
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

PAGE = "/m/131130/manage/imports/new/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(make_user, shibuya):
    client = Client()
    client.force_login(make_user("admin-s", "tenant_admin", municipality=shibuya))
    return client


def zipped(members: dict[str, bytes], *, link: str | None = None) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    out.seek(0)
    out.name = "export.zip"
    return out


def post(client, archive):
    return client.post(PAGE, {"connector": "c4th", "files": [archive]})


def test_a_zip_of_the_export_is_imported_file_by_file(admin, shibuya, synth_data):
    files = {f"c4th/{p.name}": p.read_bytes() for p in (synth_data / "c4th").glob("*.csv")}
    response = post(admin, zipped(files))
    assert response.status_code == 302
    with in_tenant(shibuya):
        run = ImportRun.objects.get()
    assert sorted(k.rsplit("/", 1)[1] for k in run.files) == sorted(
        name.split("/")[1] for name in files
    )
    jobs.run_pending()
    with in_tenant(shibuya):
        run.refresh_from_db()
        assert run.status == "succeeded" and Student.objects.count() == 20


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (lambda: zipped({"../../etc/cron.d/x.csv": b"a"}), "zip の外を指しています"),
        (lambda: zipped({"/etc/passwd": b"a"}), "zip の外を指しています"),
        (lambda: zipped({"ok.csv": b"a"}, link="roster.csv"), "zip の外を指しています"),
        (lambda: zipped({"bomb.csv": b"0" * (3 << 20)}), "圧縮率が異常です"),
        (lambda: zipped({f"f{n}.csv": b"a" for n in range(uploads.MAX_MEMBERS + 1)}), "多すぎます"),
        (lambda: zipped({}), "ファイルがありません"),
    ],
)
def test_a_dangerous_zip_is_refused_and_nothing_is_queued(admin, shibuya, archive, reason):
    response = post(admin, archive())
    assert response.status_code == 400
    assert reason in response.content.decode()
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()
    assert not Job.objects.exists()


def test_a_zip_that_inflates_past_the_limit_or_is_no_zip_is_refused(admin, shibuya, settings):
    settings.RENKEI_UPLOAD_MAX_BYTES = 1 << 20
    big = zipped({"a.csv": os.urandom(700_000), "b.csv": os.urandom(700_000)})
    assert big.getbuffer().nbytes < settings.RENKEI_UPLOAD_MAX_BYTES * 2  # the upload fits
    response = post(admin, big)
    assert response.status_code in (400, 413)
    text = response.content.decode()
    assert "大きすぎます" in text and "1 MB" in text
    garbage = io.BytesIO(b"not a zip at all")
    garbage.name = "export.zip"
    response = post(admin, garbage)
    assert (
        response.status_code == 400 and "zip ファイルとして読めません" in response.content.decode()
    )
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()


def test_the_push_api_opens_zips_too(shibuya, synth_data):
    token = do_issue_ingest_token(
        shibuya, actor=Actor.system("test"), name="v", connectors=["c4th"]
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token.secret}"}
    files = {p.name: p.read_bytes() for p in (synth_data / "c4th").glob("*.csv")}
    ok = Client().post(
        "/m/131130/api/v1/imports", {"connector": "c4th", "files": [zipped(files)]}, **auth
    )
    assert ok.status_code == 202 and sorted(ok.json()["files"]) == sorted(files)
    bad = Client().post(
        "/m/131130/api/v1/imports",
        {"connector": "c4th", "files": [zipped({"../x.csv": b"a"})]},
        **auth,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_zip"
