"""The municipality GraphQL API: root query and schema.

Read-only: there is no mutation type (tokens are issued by renkei.accounts.tokens, opt-outs by
renkei.edudata.privacy). Every root field declares its permission (``@requires``) and calls a
thin resolver in resolvers.py that goes through the policy module.
"""

from __future__ import annotations

from pathlib import Path

import graphene

from renkei.graphql.tenant import resolvers
from renkei.graphql.tenant.permissions import Permission, requires
from renkei.graphql.tenant.types import (
    ClassBoardType,
    HomeroomType,
    MetricDefinitionType,
    MetricTableType,
    MunicipalityType,
    SchoolType,
    StudentBoardType,
    ViewerType,
    guard_sensitive_fields,
)

SNAPSHOT = Path(__file__).with_name("schema.graphql")


class Query(graphene.ObjectType):
    me = graphene.Field(
        ViewerType, description="ログイン中の利用者（またはトークン）と、この自治体での役割"
    )
    municipality = graphene.Field(
        MunicipalityType, description="この自治体（アラートの規則を含む）"
    )
    schools = graphene.List(
        graphene.NonNull(SchoolType),
        description="見られる学校: 教員・管理職は所属校、自治体管理者・教育委員会は全校（児童生徒は含みません）",
    )
    school = graphene.Field(SchoolType, code=graphene.String(required=True))
    homeroom = graphene.Field(HomeroomType, id=graphene.ID(required=True))
    student_board = graphene.Field(
        StudentBoardType,
        student_id=graphene.ID(required=True),
        as_of=graphene.Date(description="基準日（省略時は今日）"),
        description="児童生徒ボード（所属校の教員・管理職のみ。閲覧は記録されます）",
    )
    class_board = graphene.Field(
        ClassBoardType,
        homeroom_id=graphene.ID(required=True),
        as_of=graphene.Date(description="基準日（省略時は今日）"),
        description="学級ボード（所属校の教員・管理職のみ。表示した児童生徒ごとに閲覧が記録されます）",
    )
    metrics = graphene.List(
        graphene.NonNull(MetricDefinitionType),
        description="指標の定義（トークンが指標を限定していればその指標だけ）",
    )
    metric = graphene.Field(
        MetricTableType,
        name=graphene.String(required=True),
        school_year=graphene.Int(required=True),
        breakdown=graphene.List(graphene.NonNull(graphene.String)),
        school_code=graphene.String(description="学校別の集計（省略時は自治体全体）"),
        description="秘匿処理済みの集計（自治体全体: 自治体管理者・教育委員会、学校別: それに加えて所属校の教職員）",
    )

    @staticmethod
    @requires(Permission.TENANT_MEMBER)
    def resolve_me(root, info):
        return resolvers.resolve_me(info.context)

    @staticmethod
    @requires(Permission.TENANT_MEMBER)
    def resolve_municipality(root, info):
        return info.context.municipality

    @staticmethod
    @requires(Permission.SCHOOLS)
    def resolve_schools(root, info):
        return resolvers.resolve_schools(info.context)

    @staticmethod
    @requires(Permission.SCHOOLS)
    def resolve_school(root, info, code):
        return resolvers.resolve_school(info.context, code)

    @staticmethod
    @requires(Permission.SCHOOLS)
    def resolve_homeroom(root, info, id):
        return resolvers.resolve_homeroom(info.context, id)

    @staticmethod
    @requires(Permission.PUPIL_RECORDS)
    def resolve_student_board(root, info, student_id, as_of=None):
        return resolvers.resolve_student_board(info.context, info, student_id, as_of)

    @staticmethod
    @requires(Permission.PUPIL_RECORDS)
    def resolve_class_board(root, info, homeroom_id, as_of=None):
        return resolvers.resolve_class_board(info.context, info, homeroom_id, as_of)

    @staticmethod
    @requires(Permission.AGGREGATES)
    def resolve_metrics(root, info):
        return resolvers.resolve_metric_definitions(info.context)

    @staticmethod
    @requires(Permission.AGGREGATES)
    def resolve_metric(root, info, name, school_year, breakdown=None, school_code=None):
        return resolvers.resolve_metric(info.context, name, school_year, breakdown, school_code)


guard_sensitive_fields()
schema = graphene.Schema(query=Query)


def sdl() -> str:
    """The schema as SDL, as committed in schema.graphql."""
    return str(schema).rstrip() + "\n"


def write_snapshot() -> Path:
    """Rewrite schema.graphql (``python -m renkei.graphql.tenant`` does this)."""
    SNAPSHOT.write_text(sdl(), encoding="utf-8")
    return SNAPSHOT
