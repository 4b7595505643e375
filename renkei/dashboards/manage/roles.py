"""管理 › 利用者と役割 › 変更: a tenant admin changes the role or the schools of one membership
(an SC who starts at another school, a teacher who becomes 管理職). Through the action
``do_change_membership``, which audits the role and the schools before and after."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from renkei.accounts.actions import MembershipError, do_change_membership
from renkei.accounts.models import Membership, Role
from renkei.dashboards.manage.forms import TENANT_ROLES, check_schools_for_role
from renkei.dashboards.manage.views import admin_view
from renkei.edudata.models import School


class MembershipChangeForm(forms.Form):
    role = forms.ChoiceField(label=_l("役割"), choices=[(r.value, r.label) for r in TENANT_ROLES])
    schools = forms.MultipleChoiceField(
        label=_l("所属校"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[],
        help_text=_l(
            "教員・管理職・養護教諭は所属校を、スクールカウンセラー・スクールソーシャルワーカーは"
            "担当する学校を 1 つ以上選んでください。自治体管理者・教育委員会では選べません。"
        ),
    )

    def __init__(self, membership: Membership, *args, **kwargs):
        kwargs.setdefault(
            "initial", {"role": membership.role, "schools": list(membership.school_codes)}
        )
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.fields["schools"].choices = [
            (s.code, f"{s.name}（{s.code}）") for s in School.objects.order_by("code")
        ]

    def clean(self):
        cleaned = super().clean()
        role, schools = cleaned.get("role"), cleaned.get("schools") or []
        check_schools_for_role(self, role, schools)
        m = self.membership
        taken = Membership.objects.filter(
            user_id=m.user_id, role=role, municipality_id=m.municipality_id
        ).exclude(pk=m.pk)
        if role and taken.exists():
            self.add_error(
                "role",
                _("「%(user)s」は既にこの自治体で「%(role)s」の役割を持っています。")
                % {"user": m.user.get_username(), "role": Role(role).label},
            )
        return cleaned


@admin_view
def member_change(request, membership_id: int):
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, municipality=request.tenant
    )
    form = MembershipChangeForm(membership, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            changed = do_change_membership(
                membership,
                actor=request.principal.actor(request.tenant),
                role=form.cleaned_data["role"],
                school_codes=form.cleaned_data["schools"],
            )
        except Membership.DoesNotExist:
            raise Http404 from None  # removed by another admin meanwhile
        except MembershipError as e:
            messages.error(request, str(e))
        else:
            messages.success(
                request,
                _("「%(user)s」の役割を「%(role)s」に変更しました。")
                % {"user": changed.user.get_username(), "role": changed.get_role_display()},
            )
            return redirect("manage:members")
    return render(
        request, "dashboards/manage/member_change.html", {"form": form, "membership": membership}
    )
