from django.contrib import admin

from renkei.platform.models import Membership


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "municipality", "prefecture", "school_codes"]
    list_filter = ["role", "prefecture"]
    search_fields = ["user__username", "municipality__code", "municipality__name"]
