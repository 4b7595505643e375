from django.contrib import admin, messages

from renkei.accounts.actions import (
    MembershipError,
    do_add_membership,
    do_change_membership,
    do_remove_membership,
)
from renkei.accounts.models import Membership, Role
from renkei.platform.audit import Actor


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Platform operators give prefecture analysts (and first tenant admins) their roles here;
    every change goes through the membership actions, so it is in the audit trail."""

    list_display = ["user", "role", "municipality", "prefecture", "school_codes"]
    list_filter = ["role", "prefecture"]
    search_fields = ["user__username", "municipality__code", "municipality__name"]
    actions = None  # no bulk delete around the last-admin rule and the audit trail

    def get_readonly_fields(self, request, obj=None):
        # Who and where are fixed once given: a different one is another membership.
        return [] if obj is None else ["user", "municipality", "prefecture"]

    def save_model(self, request, obj, form, change):
        actor = Actor.admin(request.user)
        if change:
            do_change_membership(obj, actor=actor, role=obj.role, school_codes=obj.school_codes)
        else:
            created = do_add_membership(
                obj.user,
                obj.role,
                actor=actor,
                municipality=obj.municipality,
                prefecture=obj.prefecture,
                school_codes=obj.school_codes,
            )
            obj.pk = created.pk
            obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        # The last tenant admin of a municipality stays (do_remove_membership refuses it too):
        # no delete button rather than a refusal after the confirmation page.
        if obj is not None and obj.role == Role.TENANT_ADMIN:
            admins = Membership.objects.filter(
                municipality_id=obj.municipality_id, role=Role.TENANT_ADMIN
            )
            if admins.count() <= 1:
                return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            do_remove_membership(obj, actor=Actor.admin(request.user))
        except MembershipError as e:
            messages.error(request, str(e))
