"""Writes a municipality makes to its connectors: their settings. (Imports are the action
``renkei.connectors.pipeline.do_import``.)"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.db import transaction
from pydantic import BaseModel

from renkei.connectors.sdk import Connector
from renkei.edudata.models import ConnectorSetting
from renkei.platform import audit
from renkei.platform.audit import Actor


@transaction.atomic
def do_save_connector_setting(
    connector_cls: type[Connector],
    municipality,
    *,
    actor: Actor,
    config: BaseModel,
    config_fields: list[str],
    enabled: bool,
    inbox_enabled: bool,
) -> ConnectorSetting:
    """Store a validated config: secrets encrypted, the rest as JSON, and whether files in the
    connector's inbox are imported (renkei.connectors.inbox). The audit event has the before
    and after of every plain value, and only the names of the secrets that changed."""
    name = connector_cls.name
    setting = ConnectorSetting.objects.select_for_update().filter(
        connector=name
    ).first() or ConnectorSetting(connector=name)
    secret_names = connector_cls.secret_fields
    dumped = config.model_dump(mode="json")
    before = (
        {**setting.config, "enabled": setting.enabled, "inbox_enabled": setting.inbox_enabled}
        if setting.pk
        else {}
    )
    old_secrets = _readable_secrets(setting)
    setting.config = {
        k: v for k, v in dumped.items() if k in config_fields and k not in secret_names
    }
    setting.set_secret_values({k: str(dumped.get(k) or "") for k in secret_names})
    setting.enabled, setting.inbox_enabled = enabled, inbox_enabled
    setting.updated_by = actor.username[:150]
    setting.save()
    changes = audit.diff(
        before, {**setting.config, "enabled": enabled, "inbox_enabled": inbox_enabled}
    )
    new_secrets = _readable_secrets(setting)
    for secret in secret_names:
        if old_secrets.get(secret) != new_secrets.get(secret):
            changes[secret] = {"before": "", "after": audit.SECRET_CHANGED}
    audit.record(
        actor,
        "connector.settings",
        municipality_code=municipality.code,
        target=f"connector {name}",
        changes=changes,
    )
    return setting


def _readable_secrets(setting: ConnectorSetting) -> dict[str, str]:
    try:
        return setting.secret_values()
    except InvalidToken:  # saved under another master key: whatever is typed now is a change
        return {}
