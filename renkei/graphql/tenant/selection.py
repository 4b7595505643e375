"""What a query selects below a field, in model terms: which fields of which models. The boards
use it to ask the policy about sensitive items *before* reading anything, so a refused board
reads nothing and logs nothing, and an allowed one logs whether sensitive items were read."""

from __future__ import annotations

from collections import defaultdict

from graphene.utils.str_converters import to_snake_case
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)

from renkei.accounts import policy


def selected_model_fields(info) -> dict[type, set[str]]:
    """Model → field names selected anywhere below the current field (fragments, inline
    fragments and aliases included)."""
    found: dict[type, set[str]] = defaultdict(set)
    seen_fragments: set[str] = set()

    def walk(parent, selection_set: SelectionSetNode | None) -> None:
        if selection_set is None or not isinstance(parent, GraphQLObjectType):
            return
        model = getattr(
            getattr(getattr(parent, "graphene_type", None), "_meta", None), "model", None
        )
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                field = parent.fields.get(name)
                if field is None:
                    continue
                if model is not None:
                    found[model].add(to_snake_case(name))
                walk(get_named_type(field.type), selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                walk(_condition(info, selection, parent), selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = info.fragments.get(selection.name.value)
                if fragment is not None and selection.name.value not in seen_fragments:
                    seen_fragments.add(selection.name.value)
                    walk(_condition(info, fragment, parent), fragment.selection_set)
                    seen_fragments.discard(selection.name.value)

    for node in info.field_nodes:
        walk(get_named_type(info.return_type), node.selection_set)
    return found


def _condition(info, node, parent):
    if node.type_condition is None:
        return parent
    return info.schema.get_type(node.type_condition.name.value) or parent


def sensitive_requested(info) -> bool:
    """Whether the selection below this field reads any sensitive item."""
    return any(
        policy.sensitive_fields(model) & names
        for model, names in selected_model_fields(info).items()
    )


def check_selection(info, principal: policy.Principal) -> bool:
    """Refuse (StepUpRequired) when sensitive items are selected without step-up; otherwise
    say whether sensitive items are part of the read (for the access log)."""
    for model, names in selected_model_fields(info).items():
        policy.check_fields(principal, model, names)
    return sensitive_requested(info)
