"""Writes to the tenant registry. Each action is one transaction and the only way that change
happens (the CLI and the admin both call these)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction

from renkei.platform import audit
from renkei.platform.audit import Actor
from renkei.platform.keys import new_encrypted_tenant_key
from renkei.tenants.codes import (
    CodeError,
    validate_municipality_code,
    validate_prefecture_code,
)
from renkei.tenants.models import Domain, Municipality, Prefecture
from renkei.tenants.schema import create_tenant_schema

log = logging.getLogger(__name__)


class OnboardingError(ValueError):
    """Onboarding refused; the message says why in Japanese."""


def do_onboard_municipality(
    code: str, name: str, prefecture_code: str | None = None, *, actor: Actor
) -> Municipality:
    """Create a municipality, its domain and its schema, atomically.

    Either the rows and the schema all exist afterwards, or none of them do.
    """
    code = (code or "").strip()
    name = (name or "").strip()
    try:
        validate_municipality_code(code)
        if prefecture_code is not None:
            validate_prefecture_code(prefecture_code)
    except CodeError as e:
        raise OnboardingError(str(e)) from e
    if prefecture_code is not None and prefecture_code != code[:2]:
        raise OnboardingError(
            f"自治体コード {code} は都道府県コード {code[:2]} に属しますが、"
            f"--prefecture {prefecture_code} が指定されました。"
        )
    if not name:
        raise OnboardingError("自治体名を指定してください（例: --name 渋谷区）。")
    existing = Municipality.objects.filter(code=code).first()
    if existing:
        raise OnboardingError(f"自治体コード {code}（{existing.name}）は既に登録されています。")
    if connection.schema_name != "public":
        raise OnboardingError("自治体の登録は public スキーマから行ってください。")

    with transaction.atomic():
        municipality = Municipality(
            code=code,
            name=name,
            prefecture=Prefecture.for_code(code[:2]),
            pseudonym_key=new_encrypted_tenant_key(),
        )
        municipality.save()
        create_tenant_schema(municipality.schema_name)
        Domain.objects.create(
            domain=f"{code}.{settings.BASE_DOMAIN}", tenant=municipality, is_primary=True
        )
        # The prefecture sees who joined it; the municipality sees how it was created.
        audit.record(
            actor,
            "municipality.onboard",
            municipality_code=code,
            prefecture_code=code[:2],
            target=f"municipality {code} {name}",
        )
    log.info("onboarded municipality %s (schema %s)", code, municipality.schema_name)
    return municipality


# The settings a municipality's operator may change after onboarding (Django's admin).
SETTINGS_FIELDS = (
    "name",
    "min_cell_size",
    "retention_years",
    "alert_consecutive_absence_days",
    "alert_monthly_absence_days",
    "alert_yearly_absence_days",
)


@transaction.atomic
def do_change_municipality_settings(
    municipality: Municipality, *, actor: Actor, **values
) -> Municipality:
    """Change a municipality's name, k, retention or alert thresholds, with the before and
    after of each in the audit trail."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not a municipality setting: {', '.join(sorted(unknown))}")
    current = Municipality.objects.select_for_update().get(pk=municipality.pk)
    before = {name: getattr(current, name) for name in values}
    changes = audit.diff(before, values)
    if not changes:
        return current
    for name, value in values.items():
        setattr(current, name, value)
    current.clean_fields(
        exclude=[f.name for f in Municipality._meta.fields if f.name not in changes]
    )
    current.save(update_fields=[*changes])
    audit.record(
        actor,
        "municipality.settings",
        municipality_code=current.code,
        target=f"municipality {current.code} {current.name}",
        changes=changes,
    )
    return current
