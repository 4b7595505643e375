"""The kernel's tables (public schema): the audit trail (renkei.platform.audit) and the queue of
background jobs (renkei.connectors.jobs runs the imports in it)."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """Who changed what, when, and how. Public schema, append-only in the database itself (a
    trigger rejects UPDATE, DELETE and TRUNCATE). No foreign keys: the trail outlives the
    users, tokens, memberships and municipalities it names. It never holds a pupil's name or a
    secret: pupils appear by pseudonym, secrets only as "changed"."""

    at = models.DateTimeField("日時", auto_now_add=True)
    user_id = models.BigIntegerField("利用者ID", null=True, blank=True)
    username = models.CharField("実行者", max_length=200)
    role = models.CharField("役割", max_length=100, blank=True)
    via = models.CharField("経路", max_length=20)
    action = models.CharField("操作", max_length=60)
    municipality_code = models.CharField("自治体コード", max_length=6, blank=True)
    prefecture_code = models.CharField("都道府県コード", max_length=2, blank=True)
    target = models.CharField("対象", max_length=200, blank=True)
    changes = models.JSONField("変更内容", default=dict, blank=True)

    class Meta:
        verbose_name = "監査記録"
        verbose_name_plural = "監査記録"
        indexes = [
            models.Index(fields=["municipality_code", "at"]),
            models.Index(fields=["prefecture_code", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.target}"


class Job(models.Model):
    """A unit of background work waiting for a worker: the queue of record, in the public
    schema so that one worker finds the work of every tenant. A worker claims a job with
    ``SELECT … FOR UPDATE SKIP LOCKED`` and deletes it when done; what the job did is
    recorded where it belongs (an import's ImportRun), not here."""

    kind = models.CharField("種類", max_length=20)
    municipality_code = models.CharField("自治体コード", max_length=6)
    object_id = models.BigIntegerField("対象ID")  # e.g. the ImportRun in the tenant's schema
    queued_at = models.DateTimeField("受付", auto_now_add=True)
    claimed_at = models.DateTimeField("実行開始", null=True, blank=True)

    class Meta:
        verbose_name = "ジョブ"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "municipality_code", "object_id"], name="job_once"
            )
        ]
