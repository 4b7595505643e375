"""The menu: what a signed-in user can open here, by role (a context processor, so the 403
page has it too)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.accounts.models import Role


def nav(request) -> dict:
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated:
        return {}
    principal = policy.principal_for(request)
    # (label, link, the path prefix of the pages that belong to the item)
    items: list[tuple[str, str, str]] = []
    if tenant is None:
        if policy.analyst_prefectures(principal):
            items.append(
                (_("都道府県の比較"), reverse("prefecture_home"), reverse("prefecture_home"))
            )
    elif policy.may_enter_tenant(principal, tenant):
        items.append((_("ホーム"), reverse("home"), ""))
        if principal.school_codes_in(tenant):
            classes = reverse("dashboards:class_list")
            items.append((_("学級ボード"), classes, classes.removesuffix("classes/")))
        if principal.reading_schools(tenant, policy.Records.HEALTH)[0]:
            health = reverse("dashboards:health")
            items.append((_("保健"), health, health))
        if principal.reading_schools(tenant, policy.Records.CARE)[1]:
            assigned = reverse("dashboards:assigned")
            items.append((_("担当児童生徒"), assigned, assigned))
        if policy.may_see_tenant_aggregates(principal, tenant):
            long_term = reverse("dashboards:long_term_absence")
            items.append((_("長期欠席"), long_term, long_term))
            schools = reverse("dashboards:school_list")
            items.append((_("学校カルテ"), schools, schools))
        if policy.may_administer_tenant(principal, tenant):
            manage = reverse("manage:index")
            items.append((_("管理"), manage, manage))
        elif Role.SCHOOL_MANAGER in principal.roles_in(tenant):
            # a school's managers answer guardians' requests and make 転校 packages
            rights = reverse("manage:rights")
            items.append((_("請求受付簿"), rights, rights))
            transfers = reverse("manage:transfers")
            items.append((_("転校"), transfers, transfers))
    path = request.path
    current = max(
        (item for item in items if path == item[1] or (item[2] and path.startswith(item[2]))),
        key=lambda item: len(item[2]),
        default=None,
    )
    return {
        "administers_tenant": tenant is not None
        and policy.may_administer_tenant(principal, tenant),
        "nav": [
            {"label": label, "url": url, "current": (label, url, prefix) == current}
            for label, url, prefix in items
        ],
    }
