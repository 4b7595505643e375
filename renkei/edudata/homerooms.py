"""担任: which staff of a school are the homeroom teachers of a class. It decides who reads a
check-in's free comment (``policy.may_read_free_comments``), so only the school's managers
(管理職) set it, on the class board, through :func:`do_set_homeroom_teachers` (audited).
A roster import leaves it alone: the rosters Renkei reads do not say who is 担任."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.accounts.models import SCHOOL_ROLES, Membership
from renkei.edudata.models import Homeroom
from renkei.platform import audit

MAX_TEACHERS = 5  # a class has one 担任, sometimes a 副担任 or two


class HomeroomError(ValueError):
    """Teachers that cannot be set; the message says why (Japanese)."""


@transaction.atomic
def do_set_homeroom_teachers(
    principal: policy.Principal, municipality, homeroom_pk: int, usernames: list[str]
) -> Homeroom:
    """Make ``usernames`` (accounts of teachers or managers of the homeroom's school) the
    homeroom's 担任, replacing those set before."""
    homeroom = (
        Homeroom.objects.select_for_update().select_related("school").filter(pk=homeroom_pk).first()
    )
    # A missing homeroom and another school's get the same refusal.
    policy.require(
        homeroom is not None
        and policy.may_set_homeroom_teachers(principal, municipality, homeroom.school.code),
        policy.FORBIDDEN_HOMEROOM_TEACHERS,
    )
    wanted = list(dict.fromkeys(u.strip() for u in usernames if u.strip()))
    if len(wanted) > MAX_TEACHERS:
        raise HomeroomError(_("担任は %(n)s 人までです。") % {"n": MAX_TEACHERS})
    staff = set(
        Membership.objects.filter(
            municipality__code=municipality.code,
            role__in=SCHOOL_ROLES,
            school_codes__contains=[homeroom.school.code],
            user__username__in=wanted,
            user__is_active=True,
        ).values_list("user__username", flat=True)
    )
    if unknown := [u for u in wanted if u not in staff]:
        raise HomeroomError(
            _(
                "%(who)s は %(school)s の教職員として登録されていません"
                "（利用者名と所属校を確かめてください）。"
            )
            % {"who": "、".join(unknown), "school": homeroom.school.name}
        )
    homeroom.teachers = wanted
    homeroom.save(update_fields=["teachers"])
    audit.record(
        principal.actor(municipality),
        "homeroom.teachers",
        municipality_code=municipality.code,
        target=f"homeroom {homeroom.pk} ({homeroom})",
        changes={"teachers": wanted},
    )
    return homeroom
