"""Celery tasks for imports: one import into one tenant, and the nightly Microsoft Graph pull.

    from renkei.connectors import tasks
    tasks.import_data.delay("131130", "c4th", paths=["/data/出欠.csv"])
    tasks.import_data.delay("131130", "oneroster", storage_keys=["uploads/7/users.csv", ...])

Inputs are files the worker can read (``paths``) or keys in the tenant's storage
(``storage_keys``; downloaded to a temporary directory first, which is how the web process
hands an upload to a worker on another machine). Connector settings come from a YAML or
JSON file (``config_file``), never from the message: the broker must not carry secrets.
In a config file, ``<name>_env: VARIABLE`` sets ``<name>`` from the environment, so a
secret can come from the secret store (ECS injects Secrets Manager values as variables)::

    # RENKEI_HOME/connectors/131130/msgraph.yaml  (read by the nightly pull)
    tenant_id: contoso.onmicrosoft.com
    client_id: 00000000-0000-0000-0000-000000000000
    client_secret_env: RENKEI_MSGRAPH_SECRET_131130
    days: 3

Every import starts from the setting the municipality saved in 管理 › コネクタ設定 (stored in
its schema, secrets encrypted; see ``pipeline._config_values``); a config file overrides it
key by key. Nightly Graph pull: beat runs ``renkei.schedule_msgraph_pulls`` at 04:00
Asia/Tokyo; it queues one ``renkei.pull_msgraph`` for every tenant that has an enabled
Microsoft 365 setting there, or a file ``RENKEI_HOME/connectors/<code>/msgraph.yaml`` (for
operators who keep settings outside the database; every worker must see the same file, e.g.
from a shared volume).

Inboxes (``renkei.connectors.inbox``): beat runs ``renkei.schedule_inbox_sweeps`` every two
minutes; it queues one ``renkei.sweep_inbox`` for every tenant with an inbox enabled in
管理 › コネクタ設定, which queues the complete files as imports (``renkei.run_import_jobs``).

Every run (these, ``renkei import``, uploads, the push API) is traced by the pipeline as a
``renkei.connector.run`` span with the rows read, accepted and rejected, and counted in the
import metrics (``renkei.platform.telemetry.traced_import``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from celery import shared_task

from renkei.connectors import inbox, pipeline
from renkei.edudata.models import ConnectorSetting
from renkei.edudata.tasks import fan_out, in_task_tenant, tenant_codes
from renkei.platform import environment
from renkei.platform.audit import Actor
from renkei.platform.storage import check_key

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A connector config file that cannot be used."""


def connector_config_path(tenant_code: str, connector: str = "msgraph") -> Path:
    """Where a tenant's stored settings for ``connector`` live: RENKEI_HOME/connectors/<code>/."""
    check_key(tenant_code, f"{connector}.yaml")
    return environment.home() / "connectors" / tenant_code / f"{connector}.yaml"


def load_config(path: str | Path) -> dict[str, Any]:
    """A connector config file (YAML, or JSON by extension); ``x_env: NAME`` -> ``x``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)) or {}
    except (ValueError, yaml.YAMLError) as e:
        # Not the parser's message: it quotes the offending line, which may hold a secret.
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(e, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ConfigError(
            f"{path.name}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}{where}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the settings must be a mapping")
    config: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
            name = key.removesuffix("_env")
            if value not in os.environ:
                raise ConfigError(f"{path.name}: {key} names {value}, which is not set")
            config[name] = os.environ[value]
        else:
            config[key] = value
    return config


def _result(code: str, connector: str, run) -> dict:
    # Counts and status only: the worker logs task results.
    return {
        "tenant": code,
        "connector": connector,
        "run": run.pk,
        "status": run.status,
        "rows_read": run.rows_read,
        "rows_accepted": run.rows_accepted,
        "rows_rejected": run.rows_rejected,
    }


def run_traced_import(
    code: str,
    connector: str,
    *,
    paths: Iterable[str | Path] = (),
    config: dict[str, Any] | None = None,
    started_by: str = "task",
) -> dict:
    """Run one import inside tenant ``code`` through the pipeline (which traces it)."""
    with in_task_tenant(code) as municipality:
        run = pipeline.do_import(
            connector,
            municipality,
            actor=Actor.schedule(started_by),
            paths=[Path(p) for p in paths],
            config=config or {},
        )
    return _result(code, connector, run)


@shared_task(name="renkei.import", acks_late=True)
def import_data(
    tenant_code: str,
    connector: str,
    paths: list[str] | None = None,
    *,
    storage_keys: list[str] | None = None,
    config_file: str | None = None,
    started_by: str = "task",
) -> dict:
    """Import ``paths`` and/or ``storage_keys`` with ``connector`` into the tenant.

    Late acknowledgement: if the worker's machine dies mid-run the message is delivered
    again, and re-running an import is safe (a re-run ends in the state of one clean run).
    """
    config = load_config(config_file) if config_file else {}
    inputs = [Path(p) for p in paths or ()]
    if not storage_keys:
        return run_traced_import(
            tenant_code, connector, paths=inputs, config=config, started_by=started_by
        )
    with tempfile.TemporaryDirectory(prefix="renkei-import-") as tmp:
        inputs += pipeline.fetch_stored(tenant_code, storage_keys, Path(tmp))
        return run_traced_import(
            tenant_code, connector, paths=inputs, config=config, started_by=started_by
        )


@shared_task(name="renkei.run_import_jobs")
def run_import_jobs() -> dict:
    """Run the imports queued from 管理 (and, later, the push API), oldest first: sent when
    one is queued; a second worker finds the queue empty or takes the next one."""
    from renkei.connectors import jobs

    return {"ran": jobs.run_pending()}


@shared_task(name="renkei.pull_msgraph", acks_late=True)
def pull_msgraph(tenant_code: str) -> dict:
    """Pull the Microsoft 365 usage reports of one tenant with its stored settings."""
    path = connector_config_path(tenant_code, "msgraph")
    if not has_settings(tenant_code, "msgraph"):
        raise ConfigError(
            f"{tenant_code}: no Microsoft Graph settings (管理 › コネクタ設定, or {path})"
        )
    config = load_config(path) if path.is_file() else {}
    return run_traced_import(tenant_code, "msgraph", config=config, started_by="nightly")


def has_settings(tenant_code: str, connector: str) -> bool:
    """Whether the tenant configured ``connector``: an enabled setting saved in 管理 ›
    コネクタ設定, or a settings file."""
    if connector_config_path(tenant_code, connector).is_file():
        return True
    with in_task_tenant(tenant_code):
        return ConnectorSetting.objects.filter(connector=connector, enabled=True).exists()


def msgraph_tenants() -> list[str]:
    """Tenants that have Microsoft Graph settings."""
    return [code for code in tenant_codes() if has_settings(code, "msgraph")]


@shared_task(name="renkei.schedule_msgraph_pulls")
def schedule_msgraph_pulls() -> list[str]:
    """Nightly (beat): one ``renkei.pull_msgraph`` per tenant with Graph settings."""
    return fan_out(pull_msgraph, msgraph_tenants())


@shared_task(name="renkei.sweep_inbox")
def sweep_inbox(tenant_code: str) -> dict:
    """Look once at the tenant's enabled inboxes and queue their complete files."""
    with in_task_tenant(tenant_code) as municipality:
        taken = inbox.sweep(municipality)
    queued = sum(1 for t in taken if t.run_id)
    return {"tenant": tenant_code, "queued": queued, "not_queued": len(taken) - queued}


@shared_task(name="renkei.schedule_inbox_sweeps")
def schedule_inbox_sweeps() -> list[str]:
    """Every two minutes (beat): one ``renkei.sweep_inbox`` per tenant with an inbox on."""
    return fan_out(sweep_inbox, inbox.inbox_tenants())


__all__ = [
    "connector_config_path",
    "has_settings",
    "import_data",
    "load_config",
    "msgraph_tenants",
    "pull_msgraph",
    "run_traced_import",
    "schedule_inbox_sweeps",
    "schedule_msgraph_pulls",
    "sweep_inbox",
]
