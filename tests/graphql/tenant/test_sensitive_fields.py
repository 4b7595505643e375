"""Every field the ``Sensitive`` markers name is guarded in the API, from the markers alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from graphene.utils.str_converters import to_camel_case
from graphene_django import DjangoObjectType

from renkei.accounts import policy
from renkei.graphql.tenant.schema import schema


def principal(step_up: bool) -> policy.Principal:
    return policy.Principal(user_id=1, username="t", grants=(), step_up=step_up)


def sensitive_api_fields():
    for graphql_type in schema.graphql_schema.type_map.values():
        object_type = getattr(graphql_type, "graphene_type", None)
        if not (isinstance(object_type, type) and issubclass(object_type, DjangoObjectType)):
            continue
        model = object_type._meta.model
        for name in sorted(policy.sensitive_fields(model) & set(object_type._meta.fields)):
            yield graphql_type, model, name


def test_every_sensitive_field_refuses_without_step_up_and_answers_with_it():
    seen = set()
    for graphql_type, model, name in sensitive_api_fields():
        resolve = graphql_type.fields[to_camel_case(name)].resolve
        row = model(**{name: "x" if name != "answers" else {"q": 1}})
        with pytest.raises(policy.StepUpRequired):
            resolve(row, SimpleNamespace(context=SimpleNamespace(principal=principal(False))))
        answered = resolve(row, SimpleNamespace(context=SimpleNamespace(principal=principal(True))))
        assert answered == getattr(row, name)
        seen.add((graphql_type.name, name))
    # the markers' fields the API exposes: found from the markers, not listed by hand
    assert seen == {
        ("AttendanceDay", "reason"),
        ("HealthObservation", "symptoms"),
        ("NurseVisit", "note"),
        ("SurveyResponse", "survey"),
        ("SurveyResponse", "answered_on"),
        ("SurveyResponse", "answers"),
    }
