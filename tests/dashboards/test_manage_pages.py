"""The municipality administration pages (/m/<code>/manage/): tenant admins only, pupils only
by pseudonym, secrets never rendered, nothing written by anyone else."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from renkei.accounts.models import ApiToken, Membership
from renkei.accounts.tokens import hash_secret
from renkei.connectors.builtin.msgraph import MicrosoftGraphConnector
from renkei.connectors.error_report import error_report_lines
from renkei.connectors.pipeline import stored_config_values
from renkei.dashboards.manage.views import FORBIDDEN_MANAGE
from renkei.edudata.models import (
    AccessLog,
    ConnectorSetting,
    ImportRun,
    OptOut,
    QuarantinedRow,
    Student,
    StudentIdentity,
)
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

BASE = "/m/131130/manage/"
GET_PAGES = [
    "",
    "imports/",
    "connectors/",
    "connectors/msgraph/",
    "opt-outs/",
    "access-log/",
    "access-log.csv",
    "widgets/",
    "members/",
    "audit/",
    "audit.csv",
    "imports/new/",
    "ingest-tokens/",
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """make_user hashes a password per user; the slow default hasher is not under test here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def url(path: str = "") -> str:
    return BASE + path


@pytest.fixture
def people(make_user, school_world, shibuya, osaka):
    a = school_world["A"].code
    return {
        "admin": make_user("admin-s", "tenant_admin", municipality=shibuya),
        "teacher": make_user("teacher-a", "teacher", municipality=shibuya, schools=[a]),
        "board": make_user("board-s", "board_analyst", municipality=shibuya),
        "osaka_admin": make_user("admin-osaka", "tenant_admin", municipality=osaka),
    }


@pytest.fixture
def admin_client(client, people):
    client.force_login(people["admin"])
    return client


@pytest.fixture
def identities(school_world, shibuya):
    """Names and school-system ids for a1 (school A) and b1 (school B)."""
    with in_tenant(shibuya):
        for key, (family, given) in {"a1": ("髙橋", "一郎"), "b1": ("鈴木", "次郎")}.items():
            StudentIdentity.objects.create(
                student=school_world[key],
                source_system="c4th",
                source_id=f"S-{key}",
                family_name=family,
                given_name=given,
            )
    return school_world


@pytest.fixture
def run_with_errors(shibuya):
    with in_tenant(shibuya):
        run = ImportRun.objects.create(
            connector="c4th",
            connector_version="1.0",
            status=ImportRun.Status.SUCCEEDED,
            started_by="admin-s",
            rows_read=5,
            rows_accepted=3,
            rows_rejected=2,
            files=["131130/imports/1/students.csv"],
            config={"client_secret": "********"},
            finished_at=timezone.now(),
            message="取り込みが終わりました",
        )
        QuarantinedRow.objects.create(
            run=run,
            file="students.csv",
            line=4,
            column="生年月日",
            value="R5.13.1",
            reason="日付として読めません",
        )
        QuarantinedRow.objects.create(
            run=run,
            file="students.csv",
            line=2,
            column="学年",
            value='7,"x"',
            reason="範囲外の値です",
        )
    return run


def _text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8")
    return response.content.decode()


# -- who may enter --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["teacher", "board", "osaka_admin"])
def test_every_page_refuses_everyone_but_this_municipalitys_admins(client, people, who):
    client.force_login(people[who])
    for path in GET_PAGES:
        response = client.get(url(path))
        assert response.status_code == 403, path
        if who != "osaka_admin":  # they may enter the tenant, but not its administration
            assert str(FORBIDDEN_MANAGE) in response.content.decode(), path


def test_anonymous_visitors_are_sent_to_log_in(client, people):
    response = client.get(url("members/"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_posts_by_non_admins_change_nothing(client, people, identities, shibuya):
    # given: an opt-out, a widget token and a membership that exist
    with in_tenant(shibuya):
        school = identities["A"]
        opt_out = OptOut.objects.create(
            student=identities["b1"],
            requested_at=timezone.now(),
            recorded_by_user_id=people["admin"].pk,
        )
        Student.objects.filter(pk=identities["b1"].pk).update(opted_out_at=timezone.now())
    token = ApiToken.objects.create(
        name="portal",
        user=people["admin"],
        municipality=shibuya,
        role="board_analyst",
        kind="widget",
        metrics=["attendance_rate"],
        token_hash="0" * 64,
        prefix="rk_x",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    teacher_membership = Membership.objects.get(user=people["teacher"])
    posts = [
        ("opt-outs/", {"school": school.pk, "source_id": "S-a1"}),
        (f"opt-outs/{opt_out.pk}/withdraw/", {}),
        (
            "widgets/",
            {
                "name": "x",
                "metrics": ["attendance_rate"],
                "allowed_origins": "https://example.jp",
                "expires_in_days": 30,
            },
        ),
        (f"widgets/{token.pk}/revoke/", {}),
        ("members/", {"username": "board-s", "role": "tenant_admin"}),
        (f"members/{teacher_membership.pk}/remove/", {}),
        ("connectors/oneroster/", {"enabled": "on"}),
    ]
    for who in ("teacher", "board", "osaka_admin"):
        client.force_login(people[who])
        for path, data in posts:
            assert client.post(url(path), data).status_code == 403, (who, path)
    # then
    with in_tenant(shibuya):
        assert OptOut.objects.count() == 1
        assert OptOut.objects.get().withdrawn_at is None
        assert not Student.objects.filter(
            pk=identities["a1"].pk, opted_out_at__isnull=False
        ).exists()
        assert ConnectorSetting.objects.count() == 0
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None
    assert Membership.objects.filter(pk=teacher_membership.pk).exists()
    assert not Membership.objects.filter(user=people["board"], role="tenant_admin").exists()


# -- overview ---------------------------------------------------------------------------------------


def test_overview_links_every_section_with_counts(admin_client, run_with_errors):
    response = admin_client.get(url())
    assert response.status_code == 200
    html = response.content.decode()
    for path in (
        "imports/",
        "connectors/",
        "opt-outs/",
        "access-log/",
        "audit/",
        "widgets/",
        "members/",
    ):
        assert f'href="{url(path)}"' in html
    assert "完了" in html  # the last import's status
    assert "役割 4 件" not in html  # only this municipality's memberships are counted
    assert "役割 3 件" in html  # admin, teacher, board of 渋谷区


# -- imports ----------------------------------------------------------------------------------------


def test_imports_list_and_detail(admin_client, run_with_errors):
    listing = admin_client.get(url("imports/"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert f'href="{url(f"imports/{run_with_errors.pk}/")}"' in html
    assert "完了" in html and "admin-s" in html
    detail = admin_client.get(url(f"imports/{run_with_errors.pk}/"))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "students.csv" in html and "生年月日" in html and "日付として読めません" in html
    assert "R5.13.1" not in html  # where and why, never the pupil's value (see below)
    assert "131130/imports/1/students.csv" in html
    assert "********" in html
    assert f"imports/{run_with_errors.pk}/errors.csv" in html
    assert admin_client.get(url("imports/999999/")).status_code == 404
    assert admin_client.get(url("imports/999999/errors.csv")).status_code == 404


def test_import_detail_lists_warnings_apart_from_rejected_rows(admin_client, shibuya):
    with in_tenant(shibuya):
        run = ImportRun.objects.create(
            connector="oneroster",
            connector_version="1",
            status=ImportRun.Status.SUCCEEDED,
            rows_read=8,
            rows_accepted=8,
            warnings=1,
        )
        QuarantinedRow.objects.create(
            run=run,
            file="users.csv",
            line=2,
            column="sourcedId",
            value="S0000001",
            reason="OneRoster 日本プロファイル JP-UUID: sourcedId「S0000001」は UUID ではありません",
            kind=QuarantinedRow.Kind.WARNING,
        )
    html = admin_client.get(url(f"imports/{run.pk}/")).content.decode()
    assert '<dd data-testid="warnings">1</dd>' in html
    assert "<td>警告</td><td>users.csv</td>" in html and "JP-UUID" in html
    assert "警告の行は取り込んであります" in html
    assert "除外した行はありません" not in html
    csv_body = _text(admin_client.get(url(f"imports/{run.pk}/errors.csv")))
    assert csv_body.splitlines()[1].endswith(",警告")


def test_error_report_download_is_the_cli_report_without_values(
    admin_client, run_with_errors, shibuya
):
    response = admin_client.get(url(f"imports/{run_with_errors.pk}/errors.csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="import-{run_with_errors.pk}-errors.csv"'
    )
    body = b"".join(response.streaming_content)
    with in_tenant(shibuya):
        expected = "".join(error_report_lines(run_with_errors, values=False)).encode("utf-8")
        with_values = "".join(error_report_lines(run_with_errors)).encode("utf-8")
    assert body == expected
    assert body.startswith("\ufeffファイル,行,列,理由,種別\r\n".encode())
    assert "students.csv,4,生年月日,日付として読めません,エラー".encode() in body
    assert b"R5.13.1" not in body and b"R5.13.1" in with_values  # the CLI keeps them


def test_rejected_values_stay_off_the_admin_pages(admin_client, shibuya):
    """A quarantined value can be anything a pupil's row held: a long absence reason, or
    the whole unreadable row with a name in it."""
    secret_reason = "家庭の事情で夜眠れず相談中" * 20
    with in_tenant(shibuya):
        run = ImportRun.objects.create(
            connector="c4th",
            status=ImportRun.Status.SUCCEEDED,
            rows_read=2,
            rows_accepted=0,
            rows_rejected=2,
        )
        QuarantinedRow.objects.create(
            run=run,
            file="出欠.csv",
            line=7,
            column="理由",
            value=secret_reason[:200],
            reason="200 文字を超えています",
        )
        QuarantinedRow.objects.create(
            run=run,
            file="名簿.csv",
            line=3,
            column="",
            value="S-1,髙橋,一郎,2015-04-02",
            reason="列の数が違います",
        )
    for path in (f"imports/{run.pk}/", f"imports/{run.pk}/errors.csv"):
        text = _text(admin_client.get(url(path)))
        assert "200 文字を超えています" in text and "列の数が違います" in text, path
        assert "家庭の事情" not in text and "髙橋" not in text and "2015-04-02" not in text, path


# -- connector settings -----------------------------------------------------------------------------

MSGRAPH = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "abc-123",
    "client_secret": "s3cret-value-XYZ",
    "authority_host": "https://login.microsoftonline.com",
    "graph_url": "https://graph.microsoft.com/v1.0",
    "days": "7",
    "format": "csv",
    "max_retries": "4",
    "timeout_seconds": "60",
    "enabled": "on",
}


def test_connectors_are_listed(admin_client):
    response = admin_client.get(url("connectors/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Microsoft 365（Graph 利用状況レポート）" in html and "oneroster" in html
    assert admin_client.get(url("connectors/no-such-connector/")).status_code == 404


def test_invalid_connector_setting_shows_errors_and_saves_nothing(admin_client, shibuya):
    data = {**MSGRAPH, "days": "99", "graph_url": "http://graph.example"}
    response = admin_client.post(url("connectors/msgraph/"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "days: 範囲外の値です（28 以下にしてください）" in html
    assert "graph_url: 「http://graph.example」は https:// で始まる URL ではありません" in html
    assert 'aria-describedby="id_days_error"' in html
    assert "s3cret-value-XYZ" not in html  # a typed secret is not echoed back either
    with in_tenant(shibuya):
        assert not ConnectorSetting.objects.exists()


def test_connector_secret_is_encrypted_never_rendered_and_kept_when_blank(admin_client, shibuya):
    # when: saved with a secret
    response = admin_client.post(url("connectors/msgraph/"), MSGRAPH, follow=True)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "設定を保存しました" in html
    assert "s3cret-value-XYZ" not in html
    assert "設定済み" in html
    assert 'value="contoso.onmicrosoft.com"' in html  # non-secret values are shown
    with in_tenant(shibuya):
        setting = ConnectorSetting.objects.get(connector="msgraph")
        assert "s3cret-value-XYZ" not in setting.secrets
        assert "client_secret" not in setting.config
        assert setting.config["tenant_id"] == "contoso.onmicrosoft.com"
        assert setting.secret_values() == {"client_secret": "s3cret-value-XYZ"}
        assert setting.updated_by == "admin-s"
    # when: saved again with the secret left blank
    admin_client.post(url("connectors/msgraph/"), {**MSGRAPH, "client_secret": "", "days": "3"})
    with in_tenant(shibuya):
        setting = ConnectorSetting.objects.get(connector="msgraph")
        assert setting.config["days"] == 3
        assert setting.secret_values() == {"client_secret": "s3cret-value-XYZ"}


def test_server_paths_are_neither_offered_nor_stored(admin_client, shibuya):
    """paths, ca_bundle, mappings_dir name files on the server: a municipality's admin must
    not point an import (or a check) at another tenant's archive."""
    form = admin_client.get(url("connectors/msgraph/")).content.decode()
    assert 'name="tenant_id"' in form
    assert 'name="paths"' not in form and 'name="ca_bundle"' not in form
    c4th = admin_client.get(url("connectors/c4th/")).content.decode()
    assert 'name="mappings_dir"' not in c4th and "画面で設定する項目はありません" in c4th
    admin_client.post(
        url("connectors/msgraph/"),
        {
            **MSGRAPH,
            "paths": "/srv/renkei/storage/271004/imports/1/msgraph",
            "ca_bundle": "/etc/shadow",
        },
    )
    with in_tenant(shibuya):
        setting = ConnectorSetting.objects.get(connector="msgraph")
        assert "paths" not in setting.config and "ca_bundle" not in setting.config
        # a setting stored with paths (before this rule) is read without them
        setting.config = {**setting.config, "paths": ["/srv/other-tenant"]}
        setting.save()
        assert "paths" not in stored_config_values(MicrosoftGraphConnector, setting)


def test_a_stored_secret_is_not_sent_to_a_new_destination(admin_client, shibuya):
    admin_client.post(url("connectors/msgraph/"), MSGRAPH)
    # when: the sign-in host changes and the secret is left blank
    response = admin_client.post(
        url("connectors/msgraph/"),
        {**MSGRAPH, "client_secret": "", "authority_host": "https://login.example.net"},
    )
    # then: the secret is asked for again, and nothing changed
    html = response.content.decode()
    assert response.status_code == 200
    assert "authority_host を変えたときは、client_secret も入力し直してください" in html
    with in_tenant(shibuya):
        setting = ConnectorSetting.objects.get(connector="msgraph")
        assert setting.config["authority_host"] == "https://login.microsoftonline.com"
    # when: typed again, it is saved with the new host
    admin_client.post(
        url("connectors/msgraph/"),
        {**MSGRAPH, "client_secret": "new-secret", "authority_host": "https://login.example.net"},
    )
    with in_tenant(shibuya):
        setting = ConnectorSetting.objects.get(connector="msgraph")
        assert setting.config["authority_host"] == "https://login.example.net"
        assert setting.secret_values() == {"client_secret": "new-secret"}


def test_oneroster_japan_profile_setting_is_explained_saved_and_audited(admin_client, shibuya):
    # the form offers it, explained in Japanese, lenient until the admin changes it
    form = admin_client.get(url("connectors/oneroster/")).content.decode()
    assert "日本プロファイルの検査（jp_profile）" in form
    assert "strict: 違反した行は取り込まずに除外し" in form  # the help text under the field
    assert '<option value="lenient" selected>lenient（警告して取り込む）</option>' in form
    assert '<option value="strict">strict（違反した行を除外する）</option>' in form
    # when: switched to strict, then back
    response = admin_client.post(
        url("connectors/oneroster/"), {"jp_profile": "strict", "enabled": "on"}
    )
    assert response.status_code == 302
    with in_tenant(shibuya):
        assert ConnectorSetting.objects.get(connector="oneroster").config["jp_profile"] == "strict"
    admin_client.post(url("connectors/oneroster/"), {"jp_profile": "lenient", "enabled": "on"})
    # then: each change is an audit event naming who and the before and after
    events = AuditEvent.objects.filter(action="connector.settings").order_by("at", "pk")
    assert [(e.username, e.target, e.changes["jp_profile"]) for e in events] == [
        ("admin-s", "connector oneroster", {"before": None, "after": "strict"}),
        ("admin-s", "connector oneroster", {"before": "strict", "after": "lenient"}),
    ]


def test_an_unknown_japan_profile_mode_is_refused(admin_client, shibuya):
    response = admin_client.post(
        url("connectors/oneroster/"), {"jp_profile": "loose", "enabled": "on"}
    )
    assert response.status_code == 200
    assert "loose は候補にありません" in response.content.decode()
    with in_tenant(shibuya):
        assert not ConnectorSetting.objects.exists()
    assert not AuditEvent.objects.filter(action="connector.settings").exists()


@pytest.mark.parametrize("who", ["teacher", "board", "osaka_admin"])
def test_only_the_tenant_admin_changes_the_japan_profile_setting(client, people, shibuya, who):
    client.force_login(people[who])
    response = client.post(url("connectors/oneroster/"), {"jp_profile": "strict", "enabled": "on"})
    assert response.status_code == 403
    with in_tenant(shibuya):
        assert not ConnectorSetting.objects.exists()
    assert not AuditEvent.objects.filter(action="connector.settings").exists()


def test_connector_check_reports_the_connectors_answer(admin_client):
    admin_client.post(url("connectors/oneroster/"), {"paths": "", "enabled": "on"})
    response = admin_client.post(url("connectors/oneroster/check/"), follow=True)
    assert "入力が指定されていません" in response.content.decode()


# -- opt-outs ---------------------------------------------------------------------------------------


def test_opt_out_round_trip_shows_pseudonyms_never_names(admin_client, identities, shibuya):
    pupil = identities["a1"]
    with in_tenant(shibuya):
        identity = StudentIdentity.objects.get(student=pupil)
    # when: recorded
    response = admin_client.post(
        url("opt-outs/"),
        {"school": identities["A"].pk, "source_id": "S-a1", "requested_on": "2025-06-02"},
        follow=True,
    )
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "分析除外の申出を記録しました" in html
    assert pupil.pseudonym in html and "2025-06-02" in html
    for private in (identity.family_name, identity.given_name, identity.source_id):
        assert private not in html.replace('value="S-a1"', "")
    with in_tenant(shibuya):
        opt_out = OptOut.objects.get(student=pupil)
        assert Student.objects.get(pk=pupil.pk).opted_out_at is not None
        assert timezone.localtime(opt_out.requested_at).date() == dt.date(2025, 6, 2)
    # when: withdrawn
    response = admin_client.post(url(f"opt-outs/{opt_out.pk}/withdraw/"), follow=True)
    # then
    html = response.content.decode()
    assert "取り下げました" in html
    assert identity.family_name not in html
    with in_tenant(shibuya):
        assert OptOut.objects.get(pk=opt_out.pk).withdrawn_at is not None
        assert Student.objects.get(pk=pupil.pk).opted_out_at is None
    # and a second withdrawal says there is nothing to withdraw
    response = admin_client.post(url(f"opt-outs/{opt_out.pk}/withdraw/"), follow=True)
    assert "取り下げる分析除外の申出がありません" in response.content.decode()


def test_opt_out_needs_the_pupil_at_that_school(admin_client, identities, shibuya):
    # b1 is at school B: naming school A does not find them
    response = admin_client.post(
        url("opt-outs/"), {"school": identities["A"].pk, "source_id": "S-b1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "渋谷区立第一小学校（B113211300012）に ID「S-b1」の児童生徒は見つかりません" in html
    response = admin_client.post(
        url("opt-outs/"), {"school": identities["A"].pk, "source_id": "S-unknown"}
    )
    assert "ID「S-unknown」の児童生徒は見つかりません" in response.content.decode()
    with in_tenant(shibuya):
        assert not OptOut.objects.exists()
        assert not Student.objects.filter(opted_out_at__isnull=False).exists()


def test_opt_out_twice_is_a_form_error(admin_client, identities, shibuya):
    data = {"school": identities["B"].pk, "source_id": "S-b1"}
    admin_client.post(url("opt-outs/"), data)
    response = admin_client.post(url("opt-outs/"), data)
    assert response.status_code == 200
    assert "既に分析除外の申出が記録されています" in response.content.decode()
    with in_tenant(shibuya):
        assert OptOut.objects.count() == 1


def test_opt_out_date_before_the_platform_is_a_form_error(admin_client, identities, shibuya):
    # 0001-01-01 midnight in Tokyo is before year 1 in UTC: it would break every later read
    response = admin_client.post(
        url("opt-outs/"),
        {"school": identities["B"].pk, "source_id": "S-b1", "requested_on": "0001-01-01"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "申出日は 2000-01-01 以降の日付にしてください" in html
    assert 'value="S-b1"' in html  # what was typed is kept
    with in_tenant(shibuya):
        assert not OptOut.objects.exists()
    assert admin_client.get(url("opt-outs/")).status_code == 200


# -- access log -------------------------------------------------------------------------------------


def test_access_log_filters_and_csv(admin_client, shibuya):
    with in_tenant(shibuya):
        AccessLog.objects.create(
            user_id=1,
            username="teacher-a",
            student_pseudonym="p" * 32,
            what="student_board",
            via="graphql",
            sensitive=True,
        )
        AccessLog.objects.create(
            user_id=2,
            username="manager-b",
            student_pseudonym="q" * 32,
            what="class_board",
            via="web",
        )
    response = admin_client.get(url("access-log/"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "teacher-a" in html and "manager-b" in html
    response = admin_client.get(url("access-log/"), {"username": "TEACHER", "sensitive": "on"})
    html = response.content.decode()
    assert "teacher-a" in html and "manager-b" not in html
    response = admin_client.get(url("access-log/"), {"pseudonym": "q" * 32})
    assert "manager-b" in response.content.decode()
    assert "teacher-a" not in response.content.decode()
    today = timezone.localdate()
    tomorrow = today + dt.timedelta(days=1)
    response = admin_client.get(url("access-log/"), {"date_from": tomorrow.isoformat()})
    assert "teacher-a" not in response.content.decode()
    response = admin_client.get(url("access-log.csv"), {"username": "manager"})
    assert response.status_code == 200
    body = _text(response)
    assert body.startswith("\ufeff日時,利用者")
    assert "manager-b" in body and "teacher-a" not in body


@pytest.mark.parametrize(
    "bad",
    [
        {"username": "manager", "date_from": "2025-02-30"},
        {"date_from": "2025-06-02", "date_to": "2025-06-01"},
        {"pseudonym": "p" * 40},
    ],
)
def test_a_filter_with_an_error_lists_nothing_and_exports_nothing(admin_client, shibuya, bad):
    with in_tenant(shibuya):
        AccessLog.objects.create(
            user_id=1,
            username="teacher-a",
            student_pseudonym="p" * 32,
            what="student_board",
            via="graphql",
        )
    page = admin_client.get(url("access-log/"), bad)
    html = page.content.decode()
    assert page.status_code == 200 and "form-errors" in html
    assert "teacher-a" not in html  # never "all rows" because a part of the filter was wrong
    export = admin_client.get(url("access-log.csv"), bad)
    assert export.status_code == 400 and not export.streaming
    assert "teacher-a" not in export.content.decode() and "form-errors" in export.content.decode()


# -- widget tokens ----------------------------------------------------------------------------------

WIDGET = {
    "name": "区のホームページ",
    "metrics": ["long_term_absence", "attendance_rate"],
    "allowed_origins": "https://www.city.shibuya.example\nhttps://portal.example.jp/",
    "expires_in_days": "30",
}


def test_widget_token_is_issued_with_snippets_shown_once(admin_client, people, shibuya):
    # when
    response = admin_client.post(url("widgets/"), WIDGET)
    # then
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = ApiToken.objects.get(municipality=shibuya, kind="widget")
    assert token.allowed_origins == [
        "https://portal.example.jp",
        "https://www.city.shibuya.example",
    ]
    assert token.role == "board_analyst" and token.user == people["admin"]
    assert sorted(token.metrics) == ["attendance_rate", "long_term_absence"]
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    secret = response.context["issued"].secret
    assert hash_secret(secret) == token.token_hash
    snippet = response.context["snippets"]["component"]
    assert 'endpoint="http://testserver/m/131130/graphql"' in snippet
    assert f'token="{secret}"' in snippet
    assert 'metric="attendance_rate"' in snippet and 'breakdown="month"' in snippet
    assert 'src="http://testserver/static/renkei/widgets.js"' in snippet
    iframe = response.context["snippets"]["iframe"]
    assert iframe.startswith(f'<iframe src="http://testserver/m/131130/widgets/frame/{token.pk}/?')
    assert f"#token={secret}" in iframe and "metric=attendance_rate" in iframe
    assert 'id="widget-snippet"' in html and 'id="widget-iframe-snippet"' in html
    assert "埋め込み用のコード" in html
    assert secret in html
    # the list afterwards never shows the secret
    listing = admin_client.get(url("widgets/"))
    html = listing.content.decode()
    assert "区のホームページ" in html and token.prefix in html
    assert secret not in html
    assert "https://portal.example.jp" in html


def test_widget_token_revoke(admin_client, shibuya):
    admin_client.post(url("widgets/"), WIDGET)
    token = ApiToken.objects.get(municipality=shibuya, kind="widget")
    response = admin_client.post(url(f"widgets/{token.pk}/revoke/"), follow=True)
    assert "失効させました" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_widget_token_of_another_municipality_cannot_be_revoked(admin_client, people, osaka):
    other = ApiToken.objects.create(
        name="osaka",
        user=people["osaka_admin"],
        municipality=osaka,
        role="board_analyst",
        kind="widget",
        metrics=["attendance_rate"],
        token_hash="1" * 64,
        prefix="rk_y",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    assert admin_client.post(url(f"widgets/{other.pk}/revoke/")).status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    assert "osaka" not in admin_client.get(url("widgets/")).content.decode().split("<main>")[1]


@pytest.mark.parametrize(
    "origins, error",
    [
        ("https://example.jp/path", "「https://example.jp/path」はサイトのオリジンではありません"),
        ("", "このフィールドは必須です"),
    ],
)
def test_widget_token_needs_real_origins(admin_client, shibuya, origins, error):
    response = admin_client.post(url("widgets/"), {**WIDGET, "allowed_origins": origins})
    assert response.status_code == 200
    html = response.content.decode()
    assert error in html
    assert 'aria-describedby="id_allowed_origins_helptext id_allowed_origins_error"' in html
    assert not ApiToken.objects.filter(municipality=shibuya).exists()


def test_widget_token_lifetime_is_bounded(admin_client, shibuya):
    response = admin_client.post(url("widgets/"), {**WIDGET, "expires_in_days": "400"})
    assert response.status_code == 200
    assert "366" in response.content.decode()
    assert not ApiToken.objects.filter(municipality=shibuya).exists()


# -- members ----------------------------------------------------------------------------------------


def test_members_list_names_schools(admin_client, people, school_world):
    response = admin_client.get(url("members/"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "teacher-a" in html and "渋谷区立第一小学校" in html and "自治体管理者" in html
    assert "admin-osaka" not in html


def test_member_is_added_with_schools_and_removed(admin_client, make_user, school_world, shibuya):
    make_user("new-teacher")
    codes = [school_world["A"].code, school_world["B"].code]
    response = admin_client.post(
        url("members/"),
        {"username": "new-teacher", "role": "teacher", "schools": codes},
        follow=True,
    )
    assert "役割「教員」を追加しました" in response.content.decode()
    membership = Membership.objects.get(user__username="new-teacher")
    assert membership.municipality == shibuya and sorted(membership.school_codes) == codes
    response = admin_client.post(url(f"members/{membership.pk}/remove/"), follow=True)
    assert "削除しました" in response.content.decode()
    assert not Membership.objects.filter(pk=membership.pk).exists()


@pytest.mark.parametrize(
    "data, field, error",
    [
        (
            {"username": "ghost", "role": "board_analyst"},
            "username",
            "ユーザー「ghost」は登録されていません",
        ),
        ({"username": "new-user", "role": "teacher"}, "schools", "所属校を 1 つ以上選んでください"),
        (
            {"username": "new-user", "role": "board_analyst", "schools": ["B113211300012"]},
            "schools",
            "この役割には所属校を指定できません",
        ),
        ({"username": "new-user", "role": "prefecture_analyst"}, "role", "正しく選択してください"),
        (
            {"username": "teacher-a", "role": "teacher", "schools": ["B113211300012"]},
            "role",
            "既にこの自治体で「教員」の役割を持っています",
        ),
        (
            {"username": "new-user", "role": "teacher", "schools": ["B999999999999"]},
            "schools",
            "正しく選択してください",
        ),
    ],
)
def test_member_form_checks_before_writing(admin_client, make_user, data, field, error):
    make_user("new-user")
    before = Membership.objects.count()
    response = admin_client.post(url("members/"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert error in html
    assert f'id="id_{field}_error"' in html
    assert Membership.objects.count() == before


def test_membership_of_another_municipality_is_not_found(admin_client, people):
    other = Membership.objects.get(user=people["osaka_admin"])
    assert admin_client.post(url(f"members/{other.pk}/remove/")).status_code == 404
    assert Membership.objects.filter(pk=other.pk).exists()


def test_the_last_admin_and_ones_own_admin_role_are_kept(client, people, make_user, shibuya):
    admin = people["admin"]
    own = Membership.objects.get(user=admin, role="tenant_admin")
    client.force_login(admin)
    # the only admin
    response = client.post(url(f"members/{own.pk}/remove/"), follow=True)
    assert "最後の自治体管理者は削除できません" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()
    # with a second admin: still not one's own role, but the other's
    second = make_user("admin-2", "tenant_admin", municipality=shibuya)
    response = client.post(url(f"members/{own.pk}/remove/"), follow=True)
    assert "自分の自治体管理者の役割は削除できません" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()
    other = Membership.objects.get(user=second)
    response = client.post(url(f"members/{other.pk}/remove/"), follow=True)
    assert "「admin-2」の役割「自治体管理者」を削除しました" in response.content.decode()
    assert not Membership.objects.filter(pk=other.pk).exists()
