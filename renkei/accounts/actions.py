"""Writes to memberships: who holds which role where. Each is one transaction, takes the lock
it needs and records an audit event; the pages of 管理 and Django's admin both call these."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from renkei.accounts.models import Membership, Role
from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.tenants.models import Municipality


class MembershipError(ValueError):
    """The change is refused; the message says why (Japanese)."""


def _lock_memberships_of(municipality) -> None:
    # One change at a time per municipality: two admins removing each other at once can
    # neither both win nor lock each other's rows in opposite order (a deadlock).
    if municipality is not None:
        Municipality.objects.select_for_update().filter(pk=municipality.pk).first()


def _scope(membership: Membership) -> dict[str, str]:
    if membership.municipality_id:
        return {"municipality_code": membership.municipality.code}
    return {"prefecture_code": membership.prefecture_id or ""}


def _described(membership: Membership) -> dict[str, object]:
    return {
        "user": membership.user.get_username(),
        "role": membership.role,
        "schools": sorted(membership.school_codes),
    }


@transaction.atomic
def do_add_membership(
    user,
    role: str,
    *,
    actor: Actor,
    municipality=None,
    prefecture=None,
    school_codes: Iterable[str] = (),
) -> Membership:
    """Give ``user`` a role in a municipality (or, for analysts, a prefecture)."""
    _lock_memberships_of(municipality)
    membership = Membership(
        user=user,
        role=role,
        municipality=municipality,
        prefecture=prefecture,
        school_codes=sorted(set(school_codes)),
    )
    membership.save()
    audit.record(
        actor,
        "membership.add",
        target=f"membership {membership.pk}",
        changes={"after": _described(membership)},
        **_scope(membership),
    )
    return membership


@transaction.atomic
def do_change_membership(
    membership: Membership, *, actor: Actor, role: str, school_codes: Iterable[str]
) -> Membership:
    """Change the role or the schools of a membership (管理 › 利用者と役割, Django's admin). As
    with removing, the last tenant admin stays one, and an admin does not give up their own
    admin role here."""
    _lock_memberships_of(membership.municipality)
    membership = Membership.objects.select_related("user", "municipality").get(pk=membership.pk)
    before = _described(membership)
    if membership.role == Role.TENANT_ADMIN and role != Role.TENANT_ADMIN:
        _refuse_removing_the_last_admin(membership)
        if membership.user_id == actor.user_id and actor.via != "admin":
            raise MembershipError(
                _(
                    "自分の自治体管理者の役割は変更できません。"
                    "ほかの自治体管理者に依頼してください。"
                )
            )
    membership.role = role
    membership.school_codes = sorted(set(school_codes))
    membership.save()
    after = _described(membership)
    # Role and schools both, before and after, even when one stayed: what the person could
    # read before and after the change is what an audit asks.
    changes = {"user": after["user"]} | {
        name: {"before": before[name], "after": after[name]} for name in ("role", "schools")
    }
    audit.record(
        actor,
        "membership.change",
        target=f"membership {membership.pk}",
        changes=changes,
        **_scope(membership),
    )
    return membership


@transaction.atomic
def do_remove_membership(membership: Membership, *, actor: Actor) -> None:
    """Take a role away. The last tenant admin of a municipality stays, and an admin does not
    remove their own admin role (another admin does)."""
    _lock_memberships_of(membership.municipality)
    membership = Membership.objects.select_related("user", "municipality").get(pk=membership.pk)
    if membership.role == Role.TENANT_ADMIN:
        _refuse_removing_the_last_admin(membership)
        if membership.user_id == actor.user_id and actor.via != "admin":
            raise MembershipError(
                _(
                    "自分の自治体管理者の役割は削除できません。"
                    "ほかの自治体管理者に依頼してください。"
                )
            )
    described = _described(membership)
    scope = _scope(membership)
    target = f"membership {membership.pk}"
    membership.delete()
    audit.record(actor, "membership.remove", target=target, changes={"before": described}, **scope)


def _refuse_removing_the_last_admin(membership: Membership) -> None:
    admins = Membership.objects.filter(
        municipality_id=membership.municipality_id, role=Role.TENANT_ADMIN
    )
    if membership.municipality_id and admins.count() <= 1:
        raise MembershipError(
            _("最後の自治体管理者は削除できません。先に別の人を自治体管理者にしてください。")
        )
