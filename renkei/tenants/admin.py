from django import forms
from django.contrib import admin

from renkei.platform.audit import Actor
from renkei.tenants.actions import (
    SETTINGS_FIELDS,
    do_change_municipality_settings,
    do_onboard_municipality,
)
from renkei.tenants.models import Domain, Municipality, Prefecture


class OnboardForm(forms.ModelForm):
    """Adding a municipality in the admin is onboarding: the same action as the CLI."""

    class Meta:
        model = Municipality
        fields = ["code", "name", "prefecture"]

    def clean(self):
        cleaned = super().clean()
        code, prefecture = cleaned.get("code"), cleaned.get("prefecture")
        if code and prefecture and code[:2] != prefecture.code:
            raise forms.ValidationError(
                f"自治体コード {code} は都道府県コード {code[:2]} に属します（指定: {prefecture.code}）。"
            )
        return cleaned


@admin.register(Municipality)
class MunicipalityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "prefecture", "schema_name", "min_cell_size", "created_at"]
    search_fields = ["code", "name"]
    readonly_fields = ["schema_name", "created_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = OnboardForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["code", "name", "prefecture"]
        return [
            "code",
            "name",
            "prefecture",
            "schema_name",
            "created_at",
            "min_cell_size",
            "retention_years",
            "alert_consecutive_absence_days",
            "alert_monthly_absence_days",
            "alert_yearly_absence_days",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["code", "prefecture", "schema_name", "created_at"]

    def save_model(self, request, obj, form, change):
        actor = Actor.admin(request.user)
        if change:
            values = {name: form.cleaned_data[name] for name in SETTINGS_FIELDS}
            do_change_municipality_settings(obj, actor=actor, **values)
            return
        # The form validated the code; the action re-checks and creates row, domain and schema.
        created = do_onboard_municipality(obj.code, obj.name, obj.prefecture_id, actor=actor)
        obj.pk = created.pk
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False  # dropping a tenant's schema is not an admin click


class ReadOnlyAdmin(admin.ModelAdmin):
    """Prefectures come with their first municipality and domains with onboarding: both are
    written only by ``do_onboard_municipality``."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Prefecture, ReadOnlyAdmin)
admin.site.register(Domain, ReadOnlyAdmin)
