"""Role changes are audited: adding, changing and removing a membership each write an event
with the role and the schools (before and after), through the actions and through 管理's
members page, for the roles of 養護教諭, スクールカウンセラー and スクールソーシャルワーカー too."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from renkei.accounts.actions import (
    do_add_membership,
    do_change_membership,
    do_remove_membership,
)
from renkei.accounts.models import Membership
from renkei.platform.audit import Actor
from renkei.platform.models import AuditEvent

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
A, B = "B113211300012", "B113211300023"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_add_change_remove_each_record_role_and_schools(make_user, shibuya):
    user = make_user("sc-audit")
    membership = do_add_membership(
        user, "school_counselor", actor=ACTOR, municipality=shibuya, school_codes=[B, A]
    )
    # the role changes, the schools stay: both are in the event, before and after
    do_change_membership(membership, actor=ACTOR, role="school_social_worker", school_codes=[A, B])
    # the schools change, the role stays
    do_change_membership(membership, actor=ACTOR, role="school_social_worker", school_codes=[A])
    do_remove_membership(membership, actor=ACTOR)
    events = AuditEvent.objects.filter(action__startswith="membership.", username="test")
    assert [(e.action, e.municipality_code, e.changes) for e in events.order_by("id")] == [
        (
            "membership.add",
            "131130",
            {"after": {"user": "sc-audit", "role": "school_counselor", "schools": [A, B]}},
        ),
        (
            "membership.change",
            "131130",
            {
                "user": "sc-audit",
                "role": {"before": "school_counselor", "after": "school_social_worker"},
                "schools": {"before": [A, B], "after": [A, B]},
            },
        ),
        (
            "membership.change",
            "131130",
            {
                "user": "sc-audit",
                "role": {"before": "school_social_worker", "after": "school_social_worker"},
                "schools": {"before": [A, B], "after": [A]},
            },
        ),
        (
            "membership.remove",
            "131130",
            {"before": {"user": "sc-audit", "role": "school_social_worker", "schools": [A]}},
        ),
    ]


def test_the_new_roles_may_name_schools_and_analysts_still_may_not(make_user, shibuya):
    user = make_user("nurse-db")
    Membership.objects.create(
        user=user, role="school_nurse", municipality=shibuya, school_codes=[A]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(
            user=user, role="board_analyst", municipality=shibuya, school_codes=[A]
        )


@pytest.fixture
def admin_client(make_user, shibuya, school_world):
    admin = make_user("admin-roles", "tenant_admin", municipality=shibuya)
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.parametrize("role", ["school_nurse", "school_counselor", "school_social_worker"])
def test_the_members_page_adds_the_new_roles_with_their_schools(admin_client, make_user, role):
    make_user("new-care")
    response = admin_client.post(
        "/m/131130/manage/members/",
        {"username": "new-care", "role": role, "schools": [A, B]},
        follow=True,
    )
    assert "を追加しました" in response.content.decode()
    membership = Membership.objects.get(user__username="new-care")
    assert (membership.role, membership.school_codes) == (role, [A, B])
    event = AuditEvent.objects.get(action="membership.add", username="admin-roles")
    assert event.changes["after"] == {"user": "new-care", "role": role, "schools": [A, B]}
    admin_client.post(f"/m/131130/manage/members/{membership.pk}/remove/")
    event = AuditEvent.objects.get(action="membership.remove", username="admin-roles")
    assert event.changes["before"] == {"user": "new-care", "role": role, "schools": [A, B]}


def test_the_members_page_refuses_a_counselor_without_schools(admin_client, make_user):
    make_user("new-care")
    response = admin_client.post(
        "/m/131130/manage/members/", {"username": "new-care", "role": "school_counselor"}
    )
    assert (
        "「スクールカウンセラー」には所属校を 1 つ以上選んでください" in response.content.decode()
    )
    assert not Membership.objects.filter(user__username="new-care").exists()
    assert not AuditEvent.objects.filter(action="membership.add", username="admin-roles").exists()


def test_the_members_page_changes_schools_and_role_audited(admin_client, make_user, shibuya):
    sc = make_user("sc-moves", "school_counselor", municipality=shibuya, schools=[A])
    membership = Membership.objects.get(user=sc)
    change = f"/m/131130/manage/members/{membership.pk}/change/"
    assert 'value="school_counselor" selected' in admin_client.get(change).content.decode()
    response = admin_client.post(
        change, {"role": "school_social_worker", "schools": [A, B]}, follow=True
    )
    assert "「sc-moves」の役割を「スクールソーシャルワーカー」に変更しました" in (
        response.content.decode()
    )
    membership.refresh_from_db()
    assert (membership.role, membership.school_codes) == ("school_social_worker", [A, B])
    event = AuditEvent.objects.get(action="membership.change", username="admin-roles")
    assert event.changes == {
        "user": "sc-moves",
        "role": {"before": "school_counselor", "after": "school_social_worker"},
        "schools": {"before": [A], "after": [A, B]},
    }
    # no schools: refused, nothing changed, nothing recorded
    response = admin_client.post(change, {"role": "school_nurse"})
    assert "「養護教諭」には所属校を 1 つ以上選んでください" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "school_social_worker"
    assert (
        AuditEvent.objects.filter(action="membership.change", username="admin-roles").count() == 1
    )


def test_an_admin_does_not_give_up_their_own_admin_role(admin_client, make_user, shibuya, osaka):
    make_user("admin-other", "tenant_admin", municipality=shibuya)  # not the last one
    own = Membership.objects.get(user__username="admin-roles")
    response = admin_client.post(
        f"/m/131130/manage/members/{own.pk}/change/", {"role": "board_analyst"}, follow=True
    )
    assert "自分の自治体管理者の役割は変更できません" in response.content.decode()
    own.refresh_from_db()
    assert own.role == "tenant_admin"
    # another municipality's membership is not found through this one's page
    make_user("admin-osaka-x", "tenant_admin", municipality=osaka)
    other = Membership.objects.get(user__username="admin-osaka-x")
    answer = admin_client.post(f"/m/131130/manage/members/{other.pk}/change/", {"role": "teacher"})
    assert answer.status_code == 404
    other.refresh_from_db()
    assert other.role == "tenant_admin"
