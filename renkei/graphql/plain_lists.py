"""Completing long lists of plain records without a resolver call per field.

graphql-core resolves and completes every field of every list item on its own way through
``execute_field`` (resolve info, argument values, completion, error handling). For a
prefecture table of 13,000 cells of seven fields that is 100,000 such calls, most of the
time a large answer takes. Here, a list of objects whose selected fields are all plain
attributes (strawberry's default resolver, no arguments) of leaf types, or lists of leaf
types, is completed in one loop with the same resolver and the same ``serialize``.

Whatever is not that plain (a resolver, an interface, middleware, an awaitable) goes the
general way, and so does a whole list if any item would give an error (a null in a
non-null field, a value the scalar cannot serialize): graphql-core then reports it at its
path as it always does. Reading plain attributes twice changes nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_TYPENAME = "__typename"


class _NotPlain(Exception):
    """This list needs the general way after all."""


# (response key, resolve, serialize, non-null, list of leaves, list items non-null)
_Field = tuple[str, Callable[..., Any] | None, Callable[[Any], Any] | None, bool, bool, bool]


class PlainListExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, with :mod:`plain lists <renkei.graphql.plain_lists>`."""

    def complete_list_value(
        self, return_type: GraphQLList[GraphQLOutputType], field_nodes, info, path, result
    ):
        plan = self._plain_plan(return_type, field_nodes) if isinstance(result, list) else None
        if plan is not None:
            type_name, nullable_items, fields = plan
            try:
                return [_plain_item(item, type_name, nullable_items, fields) for item in result]
            except Exception:  # noqa: S110 - the general way reports it properly
                pass
        return super().complete_list_value(return_type, field_nodes, info, path, result)

    def _plain_plan(
        self, return_type: GraphQLList[GraphQLOutputType], field_nodes
    ) -> tuple[str, bool, list[_Field]] | None:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return None  # a middleware wraps every resolver
        item_type = return_type.of_type
        nullable_items = not is_non_null_type(item_type)
        object_type = item_type if nullable_items else item_type.of_type
        if not isinstance(object_type, GraphQLObjectType) or object_type.is_type_of is not None:
            return None
        fields: list[_Field] = []
        for key, nodes in self.collect_subfields(object_type, field_nodes).items():
            name = nodes[0].name.value
            if name == _TYPENAME:
                fields.append((key, None, None, True, False, False))
                continue
            field = object_type.fields.get(name)
            if (
                field is None
                or field.args
                or nodes[0].arguments
                or not getattr(field.resolve, "_is_default", False)
            ):
                return None
            read = _reader(field)
            kind, non_null = field.type, is_non_null_type(field.type)
            kind = kind.of_type if non_null else kind
            if is_leaf_type(kind):
                fields.append((key, read, kind.serialize, non_null, False, False))
            elif is_list_type(kind):
                inner = kind.of_type
                inner_non_null = is_non_null_type(inner)
                inner = inner.of_type if inner_non_null else inner
                if not is_leaf_type(inner):
                    return None
                fields.append((key, read, inner.serialize, non_null, True, inner_non_null))
            else:
                return None
        return object_type.name, nullable_items, fields


def _reader(field: GraphQLField) -> Callable[[Any], Any]:
    """How strawberry's default resolver reads the field: the attribute itself when the
    schema keeps strawberry's default (getattr), else through the resolver."""
    definition = field.extensions.get("strawberry-definition")
    if (
        definition is not None
        and definition.base_resolver is None
        and definition.default_resolver is getattr
        and definition.python_name
    ):
        return operator.attrgetter(definition.python_name)
    return lambda item: field.resolve(item, None)


def _plain_item(
    item: Any, type_name: str, nullable_items: bool, fields: list[_Field]
) -> dict[str, Any] | None:
    if item is None:
        if nullable_items:
            return None
        raise _NotPlain
    out: dict[str, Any] = {}
    for key, resolve, serialize, non_null, is_list, items_non_null in fields:
        if resolve is None:
            out[key] = type_name
            continue
        value = resolve(item)
        if value is None:
            if non_null:
                raise _NotPlain
            out[key] = None
        elif is_list:
            if not isinstance(value, list | tuple):
                raise _NotPlain
            out[key] = [_leaf(v, serialize, items_non_null) for v in value]
        else:
            out[key] = _leaf(value, serialize, True)
    return out


def _leaf(value: Any, serialize: Callable[[Any], Any], non_null: bool) -> Any:
    if value is None:
        if non_null:
            raise _NotPlain
        return None
    serialized = serialize(value)
    if serialized is Undefined or serialized is None:
        raise _NotPlain
    return serialized
