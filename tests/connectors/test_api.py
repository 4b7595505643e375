"""The push API for vendors (/m/<code>/api/v1/): an ingest token issued in 管理 queues
imports for its connectors and reads back its own runs, nothing else; every refusal is a
documented status with a message; the Idempotency-Key never imports twice."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from renkei.accounts.models import IngestToken
from renkei.accounts.tokens import do_issue_ingest_token, do_revoke_token
from renkei.connectors import jobs
from renkei.edudata.models import ImportRun, Student
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

API = "/m/131130/api/v1/"
SNAPSHOT = Path(__file__).with_name("ingest_openapi.json")
ACTOR = Actor.system("test")


@pytest.fixture
def token(shibuya):
    return do_issue_ingest_token(shibuya, actor=ACTOR, name="校務ベンダー", connectors=["c4th"])


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def c4th(synth_data) -> list[Path]:
    return sorted((synth_data / "c4th").glob("*.csv"))


def send(secret, paths, connector="c4th", **headers):
    files = []
    for p in paths:
        f = io.BytesIO(p.read_bytes())
        f.name = p.name
        files.append(f)
    return Client().post(
        API + "imports", {"connector": connector, "files": files}, **bearer(secret), **headers
    )


def error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def test_a_vendor_sends_files_and_follows_its_import(token, shibuya, synth_data):
    response = send(token.secret, c4th(synth_data))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["connector"] == "c4th"
    assert sorted(body["files"]) == sorted(p.name for p in c4th(synth_data))
    assert body["status_url"] == f"{API}imports/{body['id']}"
    jobs.run_pending()
    state = Client().get(body["status_url"], **bearer(token.secret)).json()
    assert state["status"] == "succeeded" and state["phase"] == "done"
    assert state["rows_read"] == state["rows_accepted"] + state["rows_rejected"] > 0
    with in_tenant(shibuya):
        assert Student.objects.count() == 20
        run = ImportRun.objects.get(pk=body["id"])
    assert run.ingest_token_id == token.token.pk
    assert run.starter == f"校務ベンダー [ingest {token.token.prefix}]（API）"
    report = Client().get(body["errors_url"], **bearer(token.secret))
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")


def test_a_raw_body_is_one_file(token, shibuya, synth_data):
    roster = next(p for p in c4th(synth_data) if p.name == "roster.csv")
    response = Client().post(
        API + "imports/raw?connector=c4th&filename=roster.csv",
        roster.read_bytes(),
        content_type="application/octet-stream",
        **bearer(token.secret),
    )
    assert response.status_code == 202 and response.json()["files"] == ["roster.csv"]
    jobs.run_pending()
    with in_tenant(shibuya):
        assert Student.objects.count() == 20


def test_the_idempotency_key_never_imports_twice(token, shibuya, synth_data):
    files = c4th(synth_data)
    first = send(token.secret, files, HTTP_IDEMPOTENCY_KEY="export-2026-12-06")
    again = send(token.secret, files, HTTP_IDEMPOTENCY_KEY="export-2026-12-06")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = send(token.secret, files[:1], HTTP_IDEMPOTENCY_KEY="export-2026-12-06")
    status, code, message = error(other)
    assert (status, code) == (422, "idempotency_key_reused")
    assert f"#{first.json()['id']}" in message
    with in_tenant(shibuya):
        assert ImportRun.objects.count() == 1


def test_every_refusal_says_why_and_queues_nothing(token, shibuya, shinjuku, synth_data, settings):
    files = c4th(synth_data)
    no_auth = Client().post(API + "imports", {"connector": "c4th"})
    assert error(no_auth)[:2] == (401, "unauthenticated")
    assert "Bearer" in error(no_auth)[2]
    assert error(send("ri_unknown", files))[:2] == (401, "unauthenticated")
    # another municipality's token is refused as an unknown one
    theirs = do_issue_ingest_token(shinjuku, actor=ACTOR, name="x", connectors=["c4th"])
    assert error(send(theirs.secret, files)) == error(send("ri_unknown", files))
    status, code, message = error(send(token.secret, files, connector="suzuki"))
    assert (status, code) == (403, "connector_not_allowed") and "c4th" in message
    empty = io.BytesIO(b"")
    empty.name = "empty.csv"
    response = Client().post(
        API + "imports", {"connector": "c4th", "files": [empty]}, **bearer(token.secret)
    )
    assert error(response)[:2] == (400, "empty_file")
    assert error(Client().post(API + "imports", {"connector": "c4th"}, **bearer(token.secret)))[
        :2
    ] == (400, "no_files")
    settings.RENKEI_UPLOAD_MAX_BYTES = 1024
    status, code, message = error(send(token.secret, files))
    assert (status, code) == (413, "file_too_large") and "1 KB" in message
    with in_tenant(shibuya):
        assert not ImportRun.objects.exists()


def test_expired_revoked_and_foreign_address_tokens_are_refused(shibuya, synth_data):
    files = c4th(synth_data)[:1]
    elsewhere = do_issue_ingest_token(
        shibuya, actor=ACTOR, name="ip", connectors=["c4th"], allowed_ips=["203.0.113.0/24"]
    )
    status, _, message = error(send(elsewhere.secret, files))
    assert status == 401 and "127.0.0.1" in message
    assert send(elsewhere.secret, files, REMOTE_ADDR="203.0.113.9").status_code == 202
    revoked = do_issue_ingest_token(shibuya, actor=ACTOR, name="r", connectors=["c4th"])
    do_revoke_token(revoked.token, actor=ACTOR)
    assert "失効" in error(send(revoked.secret, files))[2]
    expired = do_issue_ingest_token(shibuya, actor=ACTOR, name="e", connectors=["c4th"])
    IngestToken.objects.filter(pk=expired.token.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert "期限" in error(send(expired.secret, files))[2]


def test_a_token_reads_only_its_own_runs_and_nothing_else(token, shibuya, synth_data, make_user):
    other = do_issue_ingest_token(shibuya, actor=ACTOR, name="other", connectors=["c4th"])
    mine = send(token.secret, c4th(synth_data)).json()
    theirs = send(other.secret, c4th(synth_data)).json()
    assert error(Client().get(f"{API}imports/{theirs['id']}", **bearer(token.secret)))[:2] == (
        404,
        "not_found",
    )
    for path in (f"imports/{theirs['id']}/errors.csv", f"imports/{theirs['id']}"):
        assert Client().get(API + path, **bearer(token.secret)).status_code == 404
    assert (
        Client().delete(f"{API}imports/{theirs['id']}", **bearer(token.secret)).status_code == 404
    )
    # the token is not an API token: the GraphQL API refuses it
    graphql = Client().post(
        "/m/131130/graphql",
        json.dumps({"query": "{ schools { code } }"}),
        content_type="application/json",
        **bearer(token.secret),
    )
    assert graphql.status_code == 401
    # cancel a queued run of its own; a finished one is a conflict
    cancelled = Client().delete(f"{API}imports/{mine['id']}", **bearer(token.secret))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = Client().delete(f"{API}imports/{mine['id']}", **bearer(token.secret))
    assert error(again)[:2] == (409, "finished")


def test_an_admin_issues_and_revokes_a_token_in_manage(make_user, shibuya, synth_data):
    admin = Client()
    admin.force_login(make_user("admin-s", "tenant_admin", municipality=shibuya))
    response = admin.post(
        "/m/131130/manage/ingest-tokens/",
        {
            "name": "校務ベンダー",
            "connectors": ["c4th"],
            "allowed_ips": "",
            "expires_in_days": "30",
        },
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = response.context["issued"].secret
    assert secret.startswith("ri_") and secret in response.content.decode()
    assert secret not in admin.get("/m/131130/manage/ingest-tokens/").content.decode()
    assert send(secret, c4th(synth_data)[:1]).status_code == 202
    bad = admin.post(
        "/m/131130/manage/ingest-tokens/",
        {"name": "x", "connectors": ["c4th"], "allowed_ips": "not-an-ip", "expires_in_days": "30"},
    )
    assert "「not-an-ip」は IP アドレスでも" in bad.content.decode()
    token = IngestToken.objects.get(name="校務ベンダー")
    admin.post(f"/m/131130/manage/ingest-tokens/{token.pk}/revoke/")
    assert send(secret, c4th(synth_data)[:1]).status_code == 401


def test_the_openapi_description_is_generated_and_committed(client):
    described = client.get("/api/v1/openapi.json").json()
    assert described["openapi"].startswith("3.1")
    paths = set(described["paths"])
    assert {
        "/imports",
        "/imports/raw",
        "/imports/{run_id}",
        "/imports/{run_id}/errors.csv",
    } == paths
    assert described["servers"][0]["url"] == "/m/{code}/api/v1"
    if os.environ.get("RENKEI_WRITE_OPENAPI"):
        SNAPSHOT.write_text(json.dumps(described, ensure_ascii=False, indent=2) + "\n")
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert described == committed, (
        "the API changed: check the change, then write the new description with "
        "RENKEI_WRITE_OPENAPI=1 and this test, and commit it"
    )


def test_refusals_are_in_english_on_request(token, shibuya, synth_data):
    english = {"HTTP_ACCEPT_LANGUAGE": "en"}
    no_auth = Client().post(API + "imports", {"connector": "c4th"}, **english)
    assert error(no_auth) == (
        401,
        "unauthenticated",
        "Send the header Authorization: Bearer <ingest token>.",
    )
    status, code, message = error(
        send(token.secret, c4th(synth_data), connector="suzuki", **english)
    )
    assert (status, code) == (403, "connector_not_allowed")
    assert message == "This token cannot import with the connector “suzuki” (allowed: c4th)."
    status, code, message = error(
        send(token.secret, c4th(synth_data), HTTP_IDEMPOTENCY_KEY="k" * 300, **english)
    )
    assert (status, code, message) == (
        400,
        "bad_idempotency_key",
        "Idempotency-Key may be at most 200 characters long.",
    )
    # Japanese by default
    assert "送って" in error(Client().post(API + "imports", {"connector": "c4th"}))[2]


def test_an_export_kind_is_checked_when_sent_and_when_read(token, shibuya, synth_data):
    roster = [synth_data / "c4th" / "roster.csv"]
    files = []
    for p in roster:
        f = io.BytesIO(p.read_bytes())
        f.name = p.name
        files.append(f)
    unknown = Client().post(
        API + "imports",
        {"connector": "c4th", "kind": "timetable", "files": files},
        **bearer(token.secret),
    )
    status, code, message = error(unknown)
    assert (status, code) == (422, "unknown_kind") and "attendance" in message
    files[0].seek(0)
    wrong = Client().post(
        API + "imports",
        {"connector": "c4th", "kind": "attendance", "files": files},
        **bearer(token.secret),
    )
    assert wrong.status_code == 202
    jobs.run_pending()
    state = Client().get(wrong.json()["status_url"], **bearer(token.secret)).json()
    assert state["status"] == "failed" and "のファイルではありません" in state["message"]
    with in_tenant(shibuya):
        assert not Student.objects.exists()
