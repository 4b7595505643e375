"""Root resolvers of the tenant API: thin, each one a call into the policy (which scopes and
logs) and then a queryset or a domain function. Permissions are declared in schema.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.edudata import access, alerts
from renkei.edudata.models import (
    Enrollment,
    Homeroom,
    OutOfCalendar,
    School,
    check_school_day,
    check_school_year,
)
from renkei.graphql.tenant import permissions, selection
from renkei.graphql.tenant.context import RequestContext
from renkei.graphql.tenant.errors import UserInputError
from renkei.graphql.tenant.types import (
    ClassBoardRow,
    ClassBoardType,
    GrantType,
    MetricCellType,
    MetricDefinitionType,
    MetricKeyPartType,
    MetricTableType,
    StudentBoardData,
    TokenInfoType,
    ViewerType,
)

NOT_AN_ID = "ID の形式が正しくありません（数字で指定してください）。"
FORBIDDEN_HOMEROOM = "この学級を見る権限がありません。"
FORBIDDEN_CLASS_BOARD = "この学級の学級ボードを見る権限がありません（所属校の教員・管理職のみ）。"


def _pk(value: str | int) -> int:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise UserInputError(NOT_AN_ID) from None
    if pk <= 0:
        raise UserInputError(NOT_AN_ID)
    return pk


def _as_of(value: dt.date | None) -> dt.date:
    try:
        return check_school_day(value) if value else timezone.localdate()
    except OutOfCalendar as e:
        raise UserInputError(str(e)) from None


# -- who and where ------------------------------------------------------------------------------


def resolve_me(ctx: RequestContext) -> ViewerType:
    grants = [
        GrantType(
            role=g.role, role_label=str(Role(g.role).label), school_codes=sorted(g.school_codes)
        )
        for g in ctx.principal.grants_in(ctx.municipality)
    ]
    token = None
    if ctx.token is not None:
        token = TokenInfoType(
            name=ctx.token.name,
            prefix=ctx.token.prefix,
            kind=ctx.token.kind,
            metrics=list(ctx.token.metrics),
            expires_at=ctx.token.expires_at,
        )
    return ViewerType(
        username=ctx.principal.username,
        grants=grants,
        step_up=ctx.principal.step_up,
        auth="token" if ctx.token else "session",
        token=token,
    )


# -- schools and homerooms ----------------------------------------------------------------------


def resolve_schools(ctx: RequestContext) -> list[School]:
    schools = list(access.visible_schools(ctx.principal, ctx.municipality).order_by("code"))
    ctx.loaders.homerooms.siblings.update(s.pk for s in schools)
    for school in schools:
        ctx.loaders.school.prime(school.pk, school)
    return schools


def resolve_school(ctx: RequestContext, code: str) -> School:
    school = School.objects.filter(code=code).first()
    return permissions.require_school(ctx.principal, ctx.municipality, school)


def resolve_homeroom(ctx: RequestContext, homeroom_id: str) -> Homeroom:
    homeroom = Homeroom.objects.select_related("school").filter(pk=_pk(homeroom_id)).first()
    policy.require(
        homeroom is not None
        and policy.may_list_school(ctx.principal, ctx.municipality, homeroom.school.code),
        FORBIDDEN_HOMEROOM,
    )
    ctx.loaders.school.prime(homeroom.school_id, homeroom.school)
    return homeroom


# -- the boards (individual data: policy-scoped and access-logged) -------------------------------


def resolve_student_board(
    ctx: RequestContext, info, student_id: str, as_of: dt.date | None
) -> StudentBoardData:
    """One pupil. ``access.read_pupil`` refuses other schools' pupils (same message whether the
    pupil exists or not) and logs the read; sensitive items selected without step-up refuse
    the whole board before anything is read."""
    pk = _pk(student_id)
    sensitive = selection.check_selection(info, ctx.principal)
    student = access.read_pupil(
        ctx.principal, ctx.municipality, pk, what="student_board", via=ctx.via, sensitive=sensitive
    )
    ctx.loaders.student.prime(student.pk, student)
    ctx.loaders.school.prime(student.school_id, student.school)
    return StudentBoardData(student=student, as_of=_as_of(as_of))


def resolve_class_board(
    ctx: RequestContext, info, homeroom_id: str, as_of: dt.date | None
) -> ClassBoardType:
    """The pupils of a homeroom of the principal's own school, one access-log row each (one
    INSERT), and the loaders primed so the board costs the same queries for 10 or 40 pupils."""
    homeroom = Homeroom.objects.select_related("school").filter(pk=_pk(homeroom_id)).first()
    policy.require(
        homeroom is not None
        and homeroom.school.code in ctx.principal.school_codes_in(ctx.municipality),
        FORBIDDEN_CLASS_BOARD,
    )
    sensitive = selection.check_selection(info, ctx.principal)
    visible = access.visible_students(ctx.principal, ctx.municipality)
    enrollments = list(
        Enrollment.objects.filter(homeroom=homeroom, student__in=visible)
        .select_related("student")
        .order_by("attendance_number", "student_id")
    )
    students = [e.student for e in enrollments]
    access.log_pupil_read(
        ctx.principal, students, what="class_board", via=ctx.via, sensitive=sensitive
    )
    day = _as_of(as_of)
    ids = tuple(s.pk for s in students)
    ctx.loaders.school.prime(homeroom.school_id, homeroom.school)
    for student in students:
        ctx.loaders.student.prime(student.pk, student)
    ctx.loaders.name.expect(ids)
    return ClassBoardType(
        homeroom=homeroom,
        as_of=day,
        rules=alerts.describe_rules(alerts.Thresholds.of(ctx.municipality)),
        pupils=[
            ClassBoardRow(
                student=e.student, attendance_number=e.attendance_number, as_of=day, board_ids=ids
            )
            for e in enrollments
        ],
    )


# -- aggregates ---------------------------------------------------------------------------------


def _metrics_module():
    from renkei.edudata import metrics  # the metric registry (another area's module)

    return metrics


def _widget_may_read(ctx: RequestContext, spec) -> bool:
    """A widget token may be embedded anywhere: never a MUNICIPALITY_ONLY metric (不登校)."""
    return not ctx.is_widget or spec.scope == _metrics_module().PREFECTURE_WIDE


def resolve_metric_definitions(ctx: RequestContext) -> list[MetricDefinitionType]:
    allowed = ctx.token_metrics
    return [
        MetricDefinitionType(
            name=m.name,
            label_ja=m.label_ja,
            label_en=m.label_en,
            description_ja=m.description_ja,
            description_en=getattr(m, "description_en", ""),
            unit=m.unit,
            dimensions=list(m.dimensions),
            categories=list(getattr(m, "categories", ())),
        )
        for name, m in sorted(_metrics_module().METRICS.items())
        if (allowed is None or name in allowed) and _widget_may_read(ctx, m)
    ]


def resolve_metric(
    ctx: RequestContext,
    name: str,
    school_year: int,
    breakdown: Sequence[str] | None,
    school_code: str | None,
) -> MetricTableType:
    """A disclosure-controlled table from metrics.compute (which reads rollups of analyzable
    pupils only and suppresses small cells): municipality-wide for tenant admins and board
    analysts (and the prefecture's analysts, except for MUNICIPALITY_ONLY metrics); one
    school for them and for that school's own staff."""
    permissions.require_metric_for_token(ctx, name)
    metrics = _metrics_module()
    spec = metrics.METRICS.get(name)
    if spec is not None and not (
        _widget_may_read(ctx, spec)
        and (
            school_code is not None
            or spec.scope == metrics.PREFECTURE_WIDE
            or policy.is_own_board(ctx.principal, ctx.municipality)
        )
    ):  # 不登校: the municipality's own board and schools only, never a prefecture analyst
        raise policy.AccessDenied(metrics.MUNICIPALITY_ONLY_MESSAGE.format(label=spec.label_ja))
    if school_code is None:
        allowed = policy.may_see_tenant_aggregates(ctx.principal, ctx.municipality)
    else:
        allowed = policy.may_see_school_aggregates(ctx.principal, ctx.municipality, school_code)
    policy.require(allowed, policy.FORBIDDEN_AGGREGATES)
    try:
        check_school_year(school_year)
        table = metrics.compute(
            name,
            ctx.municipality,
            school_year=school_year,
            breakdown=list(breakdown or ()),
            school_code=school_code,
        )
    except ValueError as e:  # unknown metric, breakdown or school: a Japanese message
        raise UserInputError(str(e)) from None
    label = getattr(metrics, "code_label", None)
    label_en = getattr(metrics, "code_label_en", None)
    return MetricTableType(
        metric=getattr(table.metric, "name", table.metric),
        municipality_code=table.municipality_code,
        school_code=school_code,
        school_year=table.school_year,
        unit=getattr(table, "unit", ""),
        dimensions=list(table.dimensions),
        k=table.k,
        cells=[
            MetricCellType(
                key=[
                    MetricKeyPartType(
                        dimension=d,
                        value=str(v),
                        label=label(d, str(v), table.school_year) if label else str(v),
                        label_en=label_en(d, str(v), table.school_year) if label_en else str(v),
                    )
                    for d, v in c.key.items()
                ],
                pupils=c.pupils,
                value=c.value,
                suppressed=c.suppressed,
                reason=c.reason,
                reason_code=getattr(c, "reason_code", None),
                numerator=getattr(c, "numerator", None),
                denominator=getattr(c, "denominator", None),
            )
            for c in table.cells
        ],
    )
