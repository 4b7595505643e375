"""Imports use the connector setting a municipality saved in 管理 › コネクタ設定."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from renkei.connectors import tasks as connector_tasks
from renkei.connectors.pipeline import run_import
from renkei.edudata.models import ConnectorSetting, ImportRun
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db


def save_graph_setting(municipality, synth_data: Path, secret: str, **changes) -> None:
    """What the admin form stores: plain values as JSON, the secret encrypted."""
    with in_tenant(municipality):
        setting = ConnectorSetting(connector="msgraph", config={
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-0000-0000-000000000000",
            "days": 3,
            "paths": [str(synth_data / "msgraph")],  # offline: exported report CSVs
        })
        setting.set_secret_values({"client_secret": secret})
        for name, value in changes.items():
            setattr(setting, name, value)
        setting.save()


def load_roster(municipality, synth_data: Path) -> None:
    run = run_import("oneroster", municipality, paths=[synth_data / "oneroster"])
    assert run.status == ImportRun.Status.SUCCEEDED, run.message


def test_an_import_without_config_uses_the_saved_setting(synth_data, shibuya, home):
    load_roster(shibuya, synth_data)
    secret = "s3cr3t-" + uuid.uuid4().hex
    save_graph_setting(shibuya, synth_data, secret)

    run = run_import("msgraph", shibuya)
    assert run.status == ImportRun.Status.SUCCEEDED, run.message
    assert run.rows_accepted > 0
    assert run.config["tenant_id"] == "contoso.onmicrosoft.com" and run.config["days"] == 3
    assert run.config["client_secret"] == "********" and secret not in str(run.config)


def test_values_given_for_the_run_override_the_saved_ones(synth_data, shibuya, home):
    load_roster(shibuya, synth_data)
    save_graph_setting(shibuya, synth_data, "secret")
    run = run_import("msgraph", shibuya, config={"days": 5, "client_id": "abc-123"})
    assert run.status == ImportRun.Status.SUCCEEDED, run.message
    assert (run.config["days"], run.config["client_id"]) == (5, "abc-123")
    assert run.config["tenant_id"] == "contoso.onmicrosoft.com"  # kept from the setting


def test_a_disabled_setting_is_not_used(synth_data, shibuya, home):
    save_graph_setting(shibuya, synth_data, "secret", enabled=False)
    run = run_import("msgraph", shibuya)
    assert run.status == ImportRun.Status.FAILED
    assert "tenant_id・client_id・client_secret を指定する" in run.message
    assert "管理 › コネクタ設定" in run.message


def test_a_saved_value_that_no_longer_validates_names_the_field(synth_data, shibuya, home):
    save_graph_setting(shibuya, synth_data, "secret",
                       config={"paths": [str(synth_data / "msgraph")], "days": 90})
    run = run_import("msgraph", shibuya)
    assert run.status == ImportRun.Status.FAILED
    assert "days: " in run.message and "28 以下" in run.message, run.message
    with in_tenant(shibuya):
        assert not ImportRun.objects.filter(status=ImportRun.Status.SUCCEEDED).exists()


def test_a_secret_that_cannot_be_decrypted_fails_clearly(synth_data, shibuya, home):
    save_graph_setting(shibuya, synth_data, "secret", secrets="not-a-fernet-token")
    run = run_import("msgraph", shibuya)
    assert run.status == ImportRun.Status.FAILED
    assert "復号できません" in run.message and "入力し直して" in run.message


def test_the_nightly_pull_covers_tenants_with_a_saved_setting(synth_data, shibuya, shinjuku,
                                                              home):
    load_roster(shibuya, synth_data)
    save_graph_setting(shibuya, synth_data, "secret")
    save_graph_setting(shinjuku, synth_data, "secret", enabled=False)

    assert connector_tasks.msgraph_tenants() == ["131130"]
    assert connector_tasks.schedule_msgraph_pulls.delay().get() == ["131130"]
    with in_tenant(shibuya):
        run = ImportRun.objects.get(connector="msgraph")
        assert run.status == ImportRun.Status.SUCCEEDED and run.started_by == "nightly"
    with in_tenant(shinjuku):
        assert not ImportRun.objects.exists()
    with pytest.raises(connector_tasks.ConfigError, match="管理 › コネクタ設定"):
        connector_tasks.pull_msgraph("131041")
