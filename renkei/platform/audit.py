"""The audit trail every action writes: who did what to which target, in the action's own
transaction (a rolled-back action leaves no event, a committed one always has its event).

An action (``do_*``) takes an :class:`Actor` and calls :func:`record` once per change it
commits. ``tests/test_actions.py`` finds the model writes outside actions and the actions
that record nothing.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from renkei.platform.models import AuditEvent

# Every action name the code records, with its label in 管理 (the filter's choices).
ACTIONS: dict[str, Any] = {
    "municipality.onboard": _("自治体の登録"),
    "municipality.settings": _("自治体の設定の変更"),
    "membership.add": _("役割の追加"),
    "membership.change": _("役割の変更"),
    "membership.remove": _("役割の削除"),
    "token.issue": _("トークンの発行"),
    "token.revoke": _("トークンの失効"),
    "connector.settings": _("コネクタ設定の保存"),
    "import.start": _("取り込みの開始"),
    "import.cancel": _("取り込みの取り消し"),
    "optout.record": _("分析除外の記録"),
    "optout.withdraw": _("分析除外の取り下げ"),
    "retention.purge": _("保存期間を過ぎたデータの削除"),
    "absence.classify": _("長期欠席の理由の分類"),
    "note.add": _("共有配慮事項・日常所見の記入"),
    "support.open": _("支援記録の開始"),
    "support.action": _("支援記録への対応の記入"),
    "homeroom.teachers": _("学級担任の設定"),
    "transfer.export": _("転校パッケージの作成"),
    "second_factor.start": _("認証アプリの登録開始"),
    "second_factor.enrol": _("認証アプリの登録"),
    "second_factor.recovery_codes": _("回復コードの発行"),
    "second_factor.reset": _("二要素認証の解除"),
    "rights.receive": _("請求の受付"),
    "rights.decline": _("請求に対応しない旨の記録"),
    "rights.disclose": _("開示請求への開示"),
    "rights.correct": _("訂正請求による訂正"),
    "rights.delete": _("削除請求による削除"),
    "schoolyear.close": _("年度の締め"),
    "assignment.add": _("SC・SSW の担当の追加"),
    "assignment.remove": _("SC・SSW の担当の解除"),
}

# How the actor reached the action.
VIA_LABELS: dict[str, Any] = {
    "web": _("画面"),
    "api": _("API"),
    "admin": _("運用管理画面"),
    "cli": _("コマンド"),
    "schedule": _("定期実行"),
    "inbox": _("受信箱"),
    "system": _("システム"),
}

SECRET_CHANGED = "（変更）"  # noqa: S105 - what the trail shows instead of a secret


@dataclass(frozen=True)
class Actor:
    """Who acts, as the trail keeps it: an id, a name, the role acted in and the way in."""

    username: str
    via: str
    user_id: int | None = None
    role: str = ""

    @classmethod
    def command_line(cls) -> Actor:
        """Whoever runs ``renkei`` on the server: the operating-system account and host."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            who = "unknown"
        return cls(username=f"{who}@{socket.gethostname()}", via="cli")

    @classmethod
    def schedule(cls, name: str) -> Actor:
        """A scheduled or queued job, named as ImportRun.started_by shows it."""
        return cls(username=name, via="schedule")

    @classmethod
    def inbox(cls) -> Actor:
        """A file a municipality's own system dropped into a connector's inbox
        (renkei.connectors.inbox); ImportRun.started_by and the trail say 受信箱."""
        return cls(username="受信箱", via="inbox")

    @classmethod
    def system(cls, name: str) -> Actor:
        """The platform itself (the demo's seeding, tests, benchmarks)."""
        return cls(username=name, via="system")

    @classmethod
    def admin(cls, user) -> Actor:
        """A platform operator in Django's admin."""
        return cls(username=user.get_username(), via="admin", user_id=user.pk, role="superuser")


def record(
    actor: Actor,
    action: str,
    *,
    municipality_code: str = "",
    prefecture_code: str = "",
    target: str = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Write one event. Must run inside the action's transaction, so that the event and the
    change it describes commit together or not at all."""
    if action not in ACTIONS:
        raise ValueError(
            f"unknown audit action {action!r}: add it to renkei.platform.audit.ACTIONS"
        )
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"audit event {action!r} recorded outside the action's transaction")
    return AuditEvent.objects.create(
        user_id=actor.user_id,
        username=actor.username[:200],
        role=actor.role[:100],
        via=actor.via,
        action=action,
        municipality_code=municipality_code,
        prefecture_code=prefecture_code,
        target=target[:200],
        changes=dict(changes or {}),
    )


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose value changed, as {name: {"before": …, "after": …}}."""
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }
