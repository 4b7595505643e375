"""Declared permissions of the tenant API (Saleor's habit): every root field names what it
needs with ``@requires(...)``, and a test checks that none is missing. The checks themselves
are the policy module's (renkei.accounts.policy); this file only maps API permissions onto it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from renkei.accounts import policy
from renkei.edudata.models import School

WIDGET_ONLY_METRICS = "ウィジェット用トークンで読めるのは指標（metric / metrics）だけです。"
PUPILS_SCHOOL_STAFF_ONLY = (
    "個人の記録は、所属校の教員・管理職だけが見られます（教育委員会・自治体管理者は集計のみ）。"
)
FORBIDDEN_SCHOOL = "この学校を見る権限がありません。"
FORBIDDEN_METRIC_FOR_TOKEN = "この API トークンでは指標「{name}」を読めません。"  # noqa: S105 - a message


class Permission(StrEnum):
    TENANT_MEMBER = "tenant_member"  # any role in this municipality
    SCHOOLS = "schools"  # schools and homerooms, scoped by edudata.access.visible_schools
    PUPIL_RECORDS = "pupil_records"  # individual records: staff of the pupil's school
    AGGREGATES = "aggregates"  # metrics, disclosure-controlled; the only thing widgets read


WIDGET_PERMISSIONS = frozenset({Permission.AGGREGATES})


def check(context, permission: Permission) -> None:
    """Raise policy.AccessDenied unless the request's principal has ``permission``."""
    principal, municipality = context.principal, context.municipality
    policy.require(policy.may_enter_tenant(principal, municipality), policy.FORBIDDEN_TENANT)
    if context.is_widget and permission not in WIDGET_PERMISSIONS:
        raise policy.AccessDenied(WIDGET_ONLY_METRICS)
    if permission == Permission.PUPIL_RECORDS:
        policy.require(bool(principal.school_codes_in(municipality)), PUPILS_SCHOOL_STAFF_ONLY)


def requires(permission: Permission) -> Callable:
    """Declare (and enforce before the resolver runs) the permission a field needs."""

    def decorate(resolver: Callable) -> Callable:
        @functools.wraps(resolver)
        def guarded(root: Any, info, **kwargs):
            check(info.context, permission)
            return resolver(root, info, **kwargs)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def require_school(principal: policy.Principal, municipality, school: School | None) -> School:
    """The school if visible, else AccessDenied (the same answer whether it exists or not)."""
    policy.require(
        school is not None and policy.may_list_school(principal, municipality, school.code),
        FORBIDDEN_SCHOOL,
    )
    return school  # type: ignore[return-value]


def require_metric_for_token(context, name: str) -> None:
    allowed = context.token_metrics
    policy.require(allowed is None or name in allowed, FORBIDDEN_METRIC_FOR_TOKEN.format(name=name))
