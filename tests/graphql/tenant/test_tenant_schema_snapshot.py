"""The schema as a contract: a committed SDL snapshot, a declared permission on every root
field, and no path from schools or homerooms to a pupil."""

from graphql import GraphQLObjectType, get_named_type

from renkei.graphql.tenant import permissions
from renkei.graphql.tenant.schema import SNAPSHOT, Query, schema, sdl

UPDATE = "run `.venv/bin/python -m renkei.graphql.tenant` and commit schema.graphql"


def test_schema_snapshot_is_up_to_date():
    committed = SNAPSHOT.read_text(encoding="utf-8")
    assert sdl() == committed, f"The tenant API schema changed: review the change, then {UPDATE}."


def test_every_root_field_declares_its_permission():
    for name in Query._meta.fields:
        resolver = getattr(Query, f"resolve_{name}", None)
        assert resolver is not None, name
        assert isinstance(getattr(resolver, "permission", None), permissions.Permission), name


def test_widgets_reach_only_the_metric_fields():
    widget_fields = {
        name
        for name in Query._meta.fields
        if getattr(Query, f"resolve_{name}").permission in permissions.WIDGET_PERMISSIONS
    }
    assert widget_fields == {"metric", "metrics"}


def _reachable(type_name: str) -> set[str]:
    graphql_schema = schema.graphql_schema
    seen: set[str] = set()
    todo = [graphql_schema.get_type(type_name)]
    while todo:
        current = todo.pop()
        if not isinstance(current, GraphQLObjectType) or current.name in seen:
            continue
        seen.add(current.name)
        todo += [get_named_type(f.type) for f in current.fields.values()]
    return seen


def test_no_path_from_schools_or_homerooms_to_a_pupil():
    pupil_types = {
        "Pupil",
        "StudentBoard",
        "ClassBoard",
        "ClassBoardPupil",
        "AttendanceDay",
        "HealthObservation",
        "NurseVisit",
        "SurveyResponse",
        "AssessmentResult",
        "SubjectEvaluation",
        "M365DailyUsage",
    }
    for start in ("School", "Homeroom", "Municipality", "Viewer", "MetricTable"):
        assert not _reachable(start) & pupil_types, start


def test_no_mutations():
    assert schema.graphql_schema.mutation_type is None
    assert schema.graphql_schema.subscription_type is None
