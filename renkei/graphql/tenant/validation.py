"""Validation rules of the tenant API: the GraphQL spec's rules, plus depth, cost and alias
limits, and no introspection unless DEBUG.

graphene-django passes ``validation_rules`` to graphql-core's ``validate`` as *the* rule list,
which replaces the specified rules instead of adding to them, so ``rules_for_request`` always
starts from ``specified_rules``. The rules are classes, instantiated by ``validate`` for every
request, so no state is shared between requests (PITFALLS: GraphQL).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from graphene.validation import DisableIntrospection, depth_limit_validator
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    specified_rules,
    validate,
)
from graphql.validation import ValidationContext

from renkei.graphql import edge

# Cost of a field when it is not listed: 1. The boards read many rows per field; a request may
# hold a few of them, not dozens (aliases would otherwise multiply any query for free).
FIELD_COSTS: dict[tuple[str, str], int] = {
    ("Query", "studentBoard"): 100,
    ("Query", "classBoard"): 200,
    ("Query", "metric"): 25,
}
DEFAULT_MAX_COST = 1000
DEFAULT_MAX_ALIASES = 30

TOO_DEEP = _("クエリの入れ子が深すぎます（上限 %(limit)s 段）。")
TOO_COSTLY = _(
    "クエリが大きすぎます（コスト %(cost)s、上限 %(limit)s）。ボードは 1 回のリクエストで数件までにしてください。"
)
TOO_MANY_ALIASES = _("別名（エイリアス）が多すぎます（%(count)s 個、上限 %(limit)s 個）。")
INTROSPECTION_OFF = _("本番環境ではスキーマの取得（イントロスペクション）は無効です。")


def max_depth() -> int:
    return int(getattr(settings, "GRAPHQL_MAX_DEPTH", 8))


def max_cost() -> int:
    return int(getattr(settings, "GRAPHQL_MAX_COST", DEFAULT_MAX_COST))


def max_aliases() -> int:
    return int(getattr(settings, "GRAPHQL_MAX_ALIASES", DEFAULT_MAX_ALIASES))


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {
        d.name.value: d
        for d in context.document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        else:
            yield from _spreads(selection.selection_set)


def _fragments_are_sound(
    fragments: dict[str, FragmentDefinitionNode], document_spreads: set[str]
) -> bool:
    """No unknown fragment and no cycle. The spec rules report those; the limit rules below
    simply stand aside, instead of recursing forever (graphene's depth validator would)."""
    if not document_spreads <= fragments.keys():
        return False
    edges = {name: set(_spreads(f.selection_set)) for name, f in fragments.items()}
    if any(not targets <= fragments.keys() for targets in edges.values()):
        return False
    done: set[str] = set()

    def acyclic(name: str, path: set[str]) -> bool:
        if name in path:
            return False
        if name in done:
            return True
        ok = all(acyclic(t, path | {name}) for t in edges[name])
        done.add(name)
        return ok

    return all(acyclic(name, set()) for name in fragments)


def _sound(context: ValidationContext) -> bool:
    spreads: set[str] = set()
    for d in context.document.definitions:
        if isinstance(d, OperationDefinitionNode):
            spreads |= set(_spreads(d.selection_set))
    return _fragments_are_sound(_fragments(context), spreads)


class DepthLimit(ValidationRule):
    """graphene's ``depth_limit_validator``, with a Japanese message, run only on documents
    whose fragments are known and acyclic."""

    def __init__(self, context: ValidationContext):
        super().__init__(context)
        if not _sound(context):
            return
        limit = max_depth()
        reported: list[int] = []

        def callback(depths: dict[str, int]) -> None:
            reported.extend(depths.values())

        silent = _Silenced(context)
        depth_limit_validator(max_depth=limit, callback=callback)(silent)
        if silent.errors or any(d > limit for d in reported):
            self.report_error(
                GraphQLError(
                    str(TOO_DEEP) % {"limit": limit}, extensions={"code": "QUERY_TOO_DEEP"}
                )
            )


class _Silenced:
    """A stand-in validation context that collects errors instead of reporting them."""

    def __init__(self, context: ValidationContext):
        self.document = context.document
        self.errors: list[GraphQLError] = []

    def report_error(self, error: GraphQLError) -> None:
        self.errors.append(error)


class CostLimit(ValidationRule):
    """Sum of field costs per operation, fragments expanded where they are spread."""

    def __init__(self, context: ValidationContext):
        super().__init__(context)
        self.sound = _sound(context)
        self.fragments = _fragments(context)

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
        if not self.sound:
            return
        root = self.context.schema.get_root_type(node.operation)
        if root is None:
            return
        cost = self._cost(root, node.selection_set)
        limit = max_cost()
        if cost > limit:
            self.report_error(
                GraphQLError(
                    str(TOO_COSTLY) % {"cost": cost, "limit": limit},
                    node,
                    extensions={"code": "QUERY_TOO_COSTLY"},
                )
            )

    def _cost(self, parent: GraphQLObjectType, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                field = parent.fields.get(name)
                if field is None:  # __typename, or an unknown field the spec rules report
                    continue
                total += FIELD_COSTS.get((parent.name, name), 1)
                child = get_named_type(field.type)
                if isinstance(child, GraphQLObjectType):
                    total += self._cost(child, selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self._cost(self._condition(selection, parent), selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                total += self._cost(self._condition(fragment, parent), fragment.selection_set)
        return total

    def _condition(self, node, parent: GraphQLObjectType) -> GraphQLObjectType:
        if node.type_condition is None:
            return parent
        named = self.context.schema.get_type(node.type_condition.name.value)
        return named if isinstance(named, GraphQLObjectType) else parent


class AliasLimit(ValidationRule):
    def __init__(self, context: ValidationContext):
        super().__init__(context)
        self.count = 0

    def enter_field(self, node: FieldNode, *_args):
        if node.alias is not None:
            self.count += 1

    def leave_document(self, *_args):
        limit = max_aliases()
        if self.count > limit:
            self.report_error(
                GraphQLError(
                    str(TOO_MANY_ALIASES) % {"count": self.count, "limit": limit},
                    extensions={"code": "TOO_MANY_ALIASES"},
                )
            )


class NoIntrospection(DisableIntrospection):
    """graphene's DisableIntrospection, except ``__typename`` (which GraphQL clients add to
    every selection and which reveals nothing about the schema)."""

    def enter_field(self, node: FieldNode, *_args):
        name = node.name.value
        if name.startswith("__") and name != "__typename":
            self.report_error(
                GraphQLError(
                    str(INTROSPECTION_OFF), node, extensions={"code": "INTROSPECTION_DISABLED"}
                )
            )


def rules_for_request(*, debug: bool | None = None) -> tuple[type[ValidationRule], ...]:
    """The rule list for one request: introspection only when DEBUG is on."""
    debug = settings.DEBUG if debug is None else debug
    extra: list[type[ValidationRule]] = [DepthLimit, CostLimit, AliasLimit]
    if not debug:
        extra.append(NoIntrospection)
    return (*specified_rules, *extra)


# Query texts that passed, with the rules and limits they passed under: validating the
# widgets' board queries again took 5-6 ms of CPU per request. Only passes are kept: errors
# are worded in the request's language. Bounded, as the parsed documents are (edge.py):
# short texts only, and emptied when full.
REMEMBERED_PASSES = 128
_passed: set[tuple] = set()


def errors_of(
    schema: GraphQLSchema,
    document: DocumentNode,
    query: str,
    rules: tuple[type[ValidationRule], ...],
    max_errors: int | None = None,
) -> list[GraphQLError]:
    """graphql-core's ``validate`` of ``document`` (parsed from ``query``), skipped for a
    query text that passed the same rules and limits before in this process."""
    key = (query, rules, max_depth(), max_cost(), max_aliases())
    if key in _passed:
        return []
    errors = validate(schema, document, rules, max_errors=max_errors)
    if not errors and len(query) <= edge.REMEMBERED_QUERY_CHARS:
        if len(_passed) >= REMEMBERED_PASSES:
            _passed.clear()
        _passed.add(key)
    return errors
