"""The audit trail: every action leaves one event naming who, how and what, in the action's own
transaction; the trail is append-only, holds no secret and no pupil's name, and each reader
sees only their own municipality's (or prefecture's) events."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test import Client

from renkei.accounts.models import Membership
from renkei.edudata.models import StudentIdentity
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.platform.models import AuditEvent
from renkei.tenants.actions import OnboardingError, do_onboard_municipality
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Prefecture

pytestmark = pytest.mark.django_db

SECRET = "s3cret-value-XYZ"
MSGRAPH = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "abc-123",
    "client_secret": SECRET,
    "authority_host": "https://login.microsoftonline.com",
    "graph_url": "https://graph.microsoft.com/v1.0",
    "days": "7",
    "format": "csv",
    "max_retries": "4",
    "timeout_seconds": "60",
    "enabled": "on",
}
WIDGET = {
    "name": "区のホームページ",
    "metrics": ["attendance_rate"],
    "allowed_origins": "https://www.city.shibuya.example",
    "expires_in_days": "30",
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(make_user, school_world, shibuya, shinjuku):
    return {
        "admin": make_user("admin-s", "tenant_admin", municipality=shibuya),
        "admin2": make_user("admin-s2", "tenant_admin", municipality=shibuya),
        "teacher": make_user(
            "teacher-a", "teacher", municipality=shibuya, schools=[school_world["A"].code]
        ),
        "shinjuku_admin": make_user("admin-j", "tenant_admin", municipality=shinjuku),
        "pref13": make_user("pref-13", "prefecture_analyst", prefecture=Prefecture.for_code("13")),
        "pref27": make_user("pref-27", "prefecture_analyst", prefecture=Prefecture.for_code("27")),
    }


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


_SINCE = {"pk": 0}


@pytest.fixture(autouse=True)
def _events_of_this_test_only():
    """The session's setup onboarded the test municipalities (committed, with their events)."""
    _SINCE["pk"] = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=_SINCE["pk"], **filters).order_by("pk"))


def test_every_page_action_records_who_how_and_what(people, school_world, shibuya):
    admin = logged_in(people["admin"])
    with in_tenant(shibuya):
        StudentIdentity.objects.create(
            student=school_world["a1"],
            source_system="c4th",
            source_id="S-a1",
            family_name="髙橋",
            given_name="一郎",
        )
    # when: an admin does one of everything 管理 offers
    get_user_model().objects.create_user("new-teacher")
    admin.post(
        "/m/131130/manage/members/",
        {"username": "new-teacher", "role": "teacher", "schools": [school_world["A"].code]},
    )
    added = Membership.objects.get(user__username="new-teacher")
    admin.post(f"/m/131130/manage/members/{added.pk}/remove/")
    admin.post("/m/131130/manage/connectors/msgraph/", MSGRAPH)
    admin.post("/m/131130/manage/connectors/msgraph/", {**MSGRAPH, "days": "3"})
    admin.post("/m/131130/manage/widgets/", WIDGET)
    token = people["admin"].api_tokens.get()
    admin.post(f"/m/131130/manage/widgets/{token.pk}/revoke/")
    admin.post(
        "/m/131130/manage/opt-outs/",
        {"school": school_world["A"].pk, "source_id": "S-a1", "requested_on": "2025-06-02"},
    )
    # then: one event per change, in order, each naming the admin, the web and the target
    trail = events(municipality_code="131130")
    assert [e.action for e in trail] == [
        "membership.add",
        "membership.remove",
        "connector.settings",
        "connector.settings",
        "token.issue",
        "token.revoke",
        "optout.record",
    ]
    assert {(e.username, e.user_id, e.via, e.role) for e in trail} == {
        ("admin-s", people["admin"].pk, "web", "tenant_admin")
    }
    add, remove, first_save, second_save, issue, revoke, opt = trail
    assert add.target == remove.target == f"membership {added.pk}"
    assert add.changes == {
        "after": {"user": "new-teacher", "role": "teacher", "schools": [school_world["A"].code]}
    }
    assert remove.changes["before"]["user"] == "new-teacher"
    # settings: plain values before and after; the secret by name only
    assert first_save.changes["tenant_id"] == {"before": None, "after": "contoso.onmicrosoft.com"}
    assert first_save.changes["client_secret"] == {"before": "", "after": audit.SECRET_CHANGED}
    assert second_save.changes == {"days": {"before": 7, "after": 3}}
    assert issue.target == revoke.target and token.prefix in issue.target
    assert issue.changes["metrics"] == ["attendance_rate"] and issue.changes["kind"] == "widget"
    assert opt.target == f"pupil {school_world['a1'].pseudonym}"
    # and nothing of the secret, the token's secret or the pupil's identity is in the trail
    stored = " ".join(str(e.changes) + e.target for e in AuditEvent.objects.all())
    for private in (SECRET, "髙橋", "一郎", "S-a1", token.token_hash):
        assert private not in stored


def test_a_refused_action_leaves_no_event(people, shibuya):
    admin = logged_in(people["admin"])
    own = Membership.objects.get(user=people["admin"])
    # when: an admin tries to remove their own admin role (refused), and onboarding fails
    response = admin.post(f"/m/131130/manage/members/{own.pk}/remove/", follow=True)
    assert "自分の自治体管理者の役割は削除できません" in response.content.decode()
    with pytest.raises(OnboardingError):
        do_onboard_municipality("131130", "渋谷区", actor=Actor.system("test"))
    # then
    assert Membership.objects.filter(pk=own.pk).exists()
    assert events() == []


def test_an_event_commits_or_rolls_back_with_its_change(people, shibuya):
    actor = Actor.system("test")
    # when: the transaction around an action fails after the action
    with pytest.raises(RuntimeError), transaction.atomic():
        from renkei.accounts.actions import do_add_membership

        do_add_membership(people["teacher"], "board_analyst", actor=actor, municipality=shibuya)
        raise RuntimeError("later step failed")
    # then: neither the membership nor its event
    assert not Membership.objects.filter(user=people["teacher"], role="board_analyst").exists()
    assert events(action="membership.add") == []
    # and an event cannot be written outside an action's transaction
    with pytest.raises(RuntimeError, match="outside the action's transaction"):
        connection.in_atomic_block = False  # what autocommit code looks like to audit.record
        try:
            audit.record(actor, "membership.add")
        finally:
            connection.in_atomic_block = True


def test_the_trail_is_append_only_in_the_database(people, shibuya):
    with transaction.atomic():
        audit.record(Actor.system("test"), "municipality.settings", municipality_code="131130")
    for statement in (
        "UPDATE platform_auditevent SET username = 'someone else'",
        "DELETE FROM platform_auditevent",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert [e.username for e in events()] == ["test"]
    assert AuditEvent.objects.filter(username="someone else").count() == 0


def test_command_line_schedule_and_admin_actions_are_recorded(people, shibuya, admin_user):
    # the command line: onboarding names the operating-system account
    do_onboard_municipality("141003", "横浜市", actor=Actor.command_line())
    (onboard,) = events(action="municipality.onboard")
    assert onboard.via == "cli" and "@" in onboard.username
    assert onboard.municipality_code == "141003" and onboard.prefecture_code == "14"
    # Django's admin: k and a threshold changed by a platform operator
    operator = logged_in(admin_user)
    response = operator.post(
        f"/admin/tenants/municipality/{shibuya.pk}/change/",
        {
            "name": shibuya.name,
            "min_cell_size": "12",
            "retention_years": str(shibuya.retention_years),
            "alert_consecutive_absence_days": "4",
            "alert_monthly_absence_days": str(shibuya.alert_monthly_absence_days),
            "alert_yearly_absence_days": str(shibuya.alert_yearly_absence_days),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (change,) = events(action="municipality.settings")
    assert change.via == "admin" and change.username == admin_user.get_username()
    assert change.changes == {
        "alert_consecutive_absence_days": {
            "before": shibuya.alert_consecutive_absence_days,
            "after": 4,
        },
        "min_cell_size": {"before": shibuya.min_cell_size, "after": 12},
    }
    # ... and a prefecture analyst's role given there
    response = operator.post(
        "/admin/accounts/membership/add/",
        {"user": people["teacher"].pk, "role": "prefecture_analyst", "prefecture": "13"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (given,) = events(action="membership.add")
    assert given.prefecture_code == "13" and given.municipality_code == ""


def test_a_prefecture_reads_its_own_events_and_no_others(people, client):
    # when: analysts of two prefectures issue federation tokens from their page
    logged_in(people["pref13"]).post("/prefecture/token/", {"days": "7"})
    logged_in(people["pref27"]).post("/prefecture/token/", {"days": "1"})
    # then: each prefecture's trail has its own analyst's issue only
    page = logged_in(people["pref13"]).get("/prefecture/audit/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "pref-13" in html and "pref-27" not in html
    (issued,) = events(prefecture_code="13")
    assert issued.action == "token.issue" and issued.via == "web"
    assert issued.changes["kind"] == "federation" and "pref-13" in issued.target
    csv = b"".join(logged_in(people["pref27"]).get("/prefecture/audit.csv").streaming_content)
    text = csv.decode("utf-8-sig")
    assert "pref-27" in text and "pref-13" not in text
    # and a municipality's admin or teacher cannot read a prefecture's trail
    for who in ("admin", "teacher"):
        assert logged_in(people[who]).get("/prefecture/audit/").status_code == 403


def test_a_municipalitys_trail_shows_its_own_events_filtered_and_as_csv(people, shinjuku):
    actor = people["admin"]
    logged_in(actor).post("/m/131130/manage/widgets/", WIDGET)
    logged_in(people["shinjuku_admin"]).post(
        "/m/131041/manage/widgets/", {**WIDGET, "name": "新宿のページ"}
    )
    client = logged_in(actor)
    html = client.get("/m/131130/manage/audit/").content.decode()
    assert "区のホームページ" in html and "新宿のページ" not in html
    assert "トークンの発行" in html  # the action's label, not its code
    # filters: by action and by date; an impossible range lists and exports nothing
    assert (
        "区のホームページ"
        not in client.get("/m/131130/manage/audit/", {"action": "membership.add"}).content.decode()
    )
    today = dt.date.today().isoformat()
    csv = client.get("/m/131130/manage/audit.csv", {"date_from": today})
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("日時,実行者") and "区のホームページ" in text
    bad = client.get(
        "/m/131130/manage/audit.csv", {"date_from": "2026-12-31", "date_to": "2026-01-01"}
    )
    assert bad.status_code == 400 and "区のホームページ" not in bad.content.decode()
    # and only this municipality's admins may read it
    for who in ("teacher", "shinjuku_admin", "pref13"):
        assert logged_in(people[who]).get("/m/131130/manage/audit/").status_code in (403, 404)


def test_scheduled_imports_and_purges_are_recorded(people, shibuya, synth_data):
    from renkei.connectors.tasks import run_traced_import
    from renkei.edudata.tasks import purge_expired

    run_traced_import("131130", "oneroster", paths=[synth_data / "oneroster"], started_by="nightly")
    (started,) = events(action="import.start")
    assert started.via == "schedule" and started.username == "nightly"
    assert started.target.endswith("(oneroster)")
    assert started.municipality_code == shibuya.code
    purge_expired("131130")  # school_world's pupil who graduated in 2015
    (purged,) = events(action="retention.purge")
    assert purged.via == "schedule" and purged.changes["deleted"]["edudata.Student"] > 0


def test_an_operator_removes_a_role_in_djangos_admin_through_the_action(people, admin_user):
    operator = logged_in(admin_user)
    second = Membership.objects.get(user=people["admin2"])
    response = operator.post(f"/admin/accounts/membership/{second.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    (removed,) = events(action="membership.remove")
    assert removed.via == "admin" and removed.changes["before"]["user"] == "admin-s2"
    # the last tenant admin of 渋谷区 now has no delete button, and the page is refused
    last = Membership.objects.get(user=people["admin"])
    assert operator.get(f"/admin/accounts/membership/{last.pk}/delete/").status_code == 403
    assert Membership.objects.filter(pk=last.pk).exists()
