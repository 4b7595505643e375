"""The Celery application: ``celery -A renkei.site.celery:app worker`` (and ``beat``).

Configuration comes from Django settings (``CELERY_*``): with no ``CELERY_BROKER_URL`` (the
embedded default) ``CELERY_TASK_ALWAYS_EAGER`` is on and ``task.delay()`` runs the task
in-process, in the caller's thread; with a broker (production: Redis) tasks go to a worker.
``CELERY_RESULT_BACKEND`` (environment) optionally stores results; nothing needs them.

Tasks carry the tenant code as their first argument and run inside that tenant
(``renkei.edudata.tasks``, ``renkei.connectors.tasks``). Periodic jobs (beat, Asia/Tokyo):

    01:30  renkei.schedule_school_year_closing one renkei.close_school_years per tenant
                                              (years past their deadline; before the purge)
    02:00  renkei.schedule_retention_purges   one renkei.purge_expired per tenant
    04:00  renkei.schedule_msgraph_pulls      one renkei.pull_msgraph per tenant that has
                                              RENKEI_HOME/connectors/<code>/msgraph.yaml
    */2 min renkei.schedule_inbox_sweeps     one renkei.sweep_inbox per tenant with an inbox
                                              enabled (管理 › コネクタ設定)

Run exactly one beat per deployment, or periodic jobs run twice.

OpenTelemetry starts after fork in each pool process (``worker_process_init``), or in the
worker's own process for pools that do not fork (solo, threads), and in beat; it is flushed
when a pool process exits.
"""

from __future__ import annotations

import os
import sys

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")

TASK_MODULES = ["renkei.edudata.tasks", "renkei.connectors.tasks"]

app = Celery("renkei", include=TASK_MODULES)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    timezone="Asia/Tokyo",
    enable_utc=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
    result_expires=24 * 3600,
    # Imports and purges are long: one message at a time per pool process, so a long task
    # does not hold back others queued behind it on the same process.
    worker_prefetch_multiplier=1,
    # Redis redelivers an unacknowledged message after the visibility timeout; late-acked
    # tasks (imports) must finish well within it. Imports are idempotent and take a
    # per-tenant advisory lock, so a redelivery waits and then changes nothing.
    broker_transport_options={"visibility_timeout": 6 * 3600},
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "school-year-closing-nightly": {
            "task": "renkei.schedule_school_year_closing",
            "schedule": crontab(hour=1, minute=30),
        },
        "retention-purge-nightly": {
            "task": "renkei.schedule_retention_purges",
            "schedule": crontab(hour=2, minute=0),
        },
        "msgraph-pull-nightly": {
            "task": "renkei.schedule_msgraph_pulls",
            "schedule": crontab(hour=4, minute=0),
        },
        "inbox-sweep": {
            "task": "renkei.schedule_inbox_sweeps",
            "schedule": crontab(minute="*/2"),
        },
        # A queued import is sent to a worker when queued; this runs what a lost message or a
        # dead worker left behind (jobs.reclaim_abandoned).
        "import-queue": {"task": "renkei.run_import_jobs", "schedule": crontab(minute="*")},
    },
)


def _forks(worker) -> bool:
    pool = getattr(worker, "pool_cls", None)
    name = pool if isinstance(pool, str) else f"{getattr(pool, '__module__', '')}"
    return "prefork" in name


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_weak_secrets(**kwargs) -> None:
    from renkei.platform import deploy_secrets

    try:
        deploy_secrets.refuse_to_start()
    except deploy_secrets.MissingSecret as e:
        sys.exit(str(e))  # SystemExit: Celery's signal dispatch would log an Exception and go on


@signals.worker_init.connect
def _telemetry_in_worker(sender=None, **kwargs) -> None:
    if not _forks(sender):  # solo / threads: this process runs the tasks
        from renkei.platform.telemetry import setup_telemetry

        setup_telemetry(service_name="renkei-worker")


@signals.worker_process_init.connect
def _telemetry_in_pool_process(**kwargs) -> None:
    from renkei.platform.telemetry import setup_telemetry

    setup_telemetry(service_name="renkei-worker")


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _flush_telemetry(**kwargs) -> None:
    from renkei.platform.telemetry import shutdown_telemetry

    shutdown_telemetry()


@signals.beat_init.connect
def _telemetry_in_beat(**kwargs) -> None:
    from renkei.platform.telemetry import setup_telemetry

    setup_telemetry(service_name="renkei-beat")


__all__ = ["app"]
