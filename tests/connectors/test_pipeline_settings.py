"""Imports use the connector setting a municipality saved in 管理 › コネクタ設定."""

from __future__ import annotations

import pytest
from fake_graph import FakeGraph

from renkei.connectors import tasks as connector_tasks
from renkei.connectors.pipeline import do_import
from renkei.edudata.models import ConnectorSetting, ImportRun
from renkei.platform.audit import Actor
from renkei.platform.storage import get_storage
from renkei.tenants.context import in_tenant

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


def save_graph_setting(municipality, fake: FakeGraph | None, secret: str, **changes) -> None:
    """What the admin form stores: plain values as JSON, the secret encrypted (no server
    paths: the CA of the local fake comes from the run's own config, as an operator's)."""
    destination = (
        {
            "tenant_id": fake.tenant_id,
            "client_id": fake.client_id,
            "authority_host": fake.base_url,
            "graph_url": fake.graph_url,
        }
        if fake
        else {"tenant_id": "contoso.onmicrosoft.com", "client_id": "abc-1"}
    )
    with in_tenant(municipality):
        setting = ConnectorSetting(connector="msgraph", config={**destination, "days": 2})
        setting.set_secret_values({"client_secret": secret})
        for name, value in changes.items():
            setattr(setting, name, value)
        setting.save()


def operator_config(fake: FakeGraph, **values) -> dict:
    return {"ca_bundle": str(fake.ca_file), **values}


def test_an_import_uses_the_saved_setting(shibuya, home, fake_graph):
    save_graph_setting(shibuya, fake_graph, fake_graph.client_secret)

    run = do_import("msgraph", shibuya, actor=TEST_ACTOR, config=operator_config(fake_graph))
    assert run.status == ImportRun.Status.SUCCEEDED, run.message
    # the stored secret was decrypted and accepted by the token endpoint; days came along
    assert any(r.path.endswith("/oauth2/v2.0/token") for r in fake_graph.requests)
    assert fake_graph.report_requests()
    fetched = [key for key in run.files if "/fetched/" in key]  # raw answers are archived
    assert fetched and get_storage().exists(shibuya.code, fetched[0]), run.files
    assert run.config["tenant_id"] == fake_graph.tenant_id and run.config["days"] == 2
    assert run.config["client_secret"] == "********"
    assert fake_graph.client_secret not in str(run.config)


def test_values_given_for_the_run_override_the_saved_ones(shibuya, home, fake_graph):
    save_graph_setting(shibuya, fake_graph, fake_graph.client_secret)
    run = do_import(
        "msgraph", shibuya, actor=TEST_ACTOR, config=operator_config(fake_graph, days=1)
    )
    assert run.status == ImportRun.Status.SUCCEEDED, run.message
    assert run.config["days"] == 1
    assert run.config["tenant_id"] == fake_graph.tenant_id  # kept from the setting


def test_saved_server_paths_are_ignored(synth_data, shibuya, home):
    """Only the operator names server files; a stored ``paths`` (from before the rule, or
    written behind the form's back) does not turn the run into a read of those files."""
    save_graph_setting(
        shibuya, None, "secret", config={"paths": [str(synth_data / "msgraph")], "days": 2}
    )
    run = do_import("msgraph", shibuya, actor=TEST_ACTOR)
    assert run.status == ImportRun.Status.FAILED
    assert "tenant_id・client_id・client_secret を指定する" in run.message


def test_a_disabled_setting_is_not_used(shibuya, home):
    save_graph_setting(shibuya, None, "secret", enabled=False)
    run = do_import("msgraph", shibuya, actor=TEST_ACTOR)
    assert run.status == ImportRun.Status.FAILED
    assert "tenant_id・client_id・client_secret を指定する" in run.message
    assert "管理 › コネクタ設定" in run.message


def test_a_saved_value_that_no_longer_validates_names_the_field(shibuya, home):
    save_graph_setting(
        shibuya, None, "secret", config={"tenant_id": "t", "client_id": "c", "days": 90}
    )
    run = do_import("msgraph", shibuya, actor=TEST_ACTOR)
    assert run.status == ImportRun.Status.FAILED
    assert "days: " in run.message and "28 以下" in run.message, run.message
    with in_tenant(shibuya):
        assert not ImportRun.objects.filter(status=ImportRun.Status.SUCCEEDED).exists()


def test_a_secret_that_cannot_be_decrypted_fails_clearly(shibuya, home):
    save_graph_setting(shibuya, None, "secret", secrets="not-a-fernet-token")
    run = do_import("msgraph", shibuya, actor=TEST_ACTOR)
    assert run.status == ImportRun.Status.FAILED
    assert "復号できません" in run.message and "入力し直して" in run.message


def test_the_nightly_pull_covers_tenants_with_a_saved_setting(shibuya, shinjuku, home, fake_graph):
    save_graph_setting(shibuya, fake_graph, fake_graph.client_secret)
    save_graph_setting(shinjuku, fake_graph, fake_graph.client_secret, enabled=False)
    assert connector_tasks.msgraph_tenants() == ["131130"]  # from the database alone

    # the operator's file adds the CA of the local fake (a server path)
    settings_file = home / "connectors" / "131130" / "msgraph.yaml"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(f"ca_bundle: '{fake_graph.ca_file}'\n", encoding="utf-8")
    assert connector_tasks.schedule_msgraph_pulls.delay().get() == ["131130"]
    with in_tenant(shibuya):
        run = ImportRun.objects.get(connector="msgraph")
        assert run.status == ImportRun.Status.SUCCEEDED, run.message
        assert run.started_by == "nightly" and run.config["days"] == 2
    with in_tenant(shinjuku):
        assert not ImportRun.objects.exists()
    with pytest.raises(connector_tasks.ConfigError, match="管理 › コネクタ設定"):
        connector_tasks.pull_msgraph("131041")
