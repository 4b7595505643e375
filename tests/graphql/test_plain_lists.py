"""Long lists of plain records are completed in one loop, with exactly the answers and the
errors graphql-core gives them the general way."""

from __future__ import annotations

import enum

import pytest
import strawberry

from renkei.graphql import plain_lists
from renkei.graphql.plain_lists import PlainListExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    name: str
    n: int
    share: float | None
    tags: list[str]
    maybe: list[str | None] | None
    colour: Colour

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


GOOD = [
    Item(
        name=f"item{i}",
        n=i,
        share=None if i % 2 else i / 3,
        tags=["a", str(i)],
        maybe=[None, "x"] if i % 3 else None,
        colour=Colour.RED if i % 2 else Colour.BLUE,
    )
    for i in range(50)
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return GOOD

    @strawberry.field
    def maybe_items(self) -> list[Item | None]:
        return [GOOD[0], None, GOOD[1]]

    @strawberry.field
    def broken(self) -> list[Item]:
        bad = Item(name="bad", n=None, share=None, tags=[], maybe=None, colour=Colour.RED)
        return [GOOD[0], bad, GOOD[1]]

    @strawberry.field
    def bad_scalar(self) -> list[Item]:
        bad = Item(name="bad", n="not a number", share=None, tags=[], maybe=None, colour=Colour.RED)
        return [GOOD[0], bad]


fast = strawberry.Schema(query=Query, execution_context_class=PlainListExecutionContext)
general = strawberry.Schema(query=Query)


def both(query, variables=None):
    a = fast.execute_sync(query, variable_values=variables)
    b = general.execute_sync(query, variable_values=variables)
    return a, b


@pytest.fixture
def counted(monkeypatch):
    """How many lists went the plain way."""
    seen = []
    original = plain_lists._plain_item

    def spy(item, *args):
        seen.append(item)
        return original(item, *args)

    monkeypatch.setattr(plain_lists, "_plain_item", spy)
    return seen


@pytest.mark.parametrize(
    "query",
    [
        "{ items { name n share tags maybe colour __typename } }",
        "{ items { label: name  n2: n  name } maybeItems { name n } }",
        "{ items { ...F } } fragment F on Item { name tags }",
        "query($on: Boolean!) { items { name n @include(if: $on) share @skip(if: $on) } }",
    ],
)
def test_plain_lists_are_answered_exactly_as_the_general_way(query, counted):
    a, b = both(query, {"on": False})
    assert a.errors is None and b.errors is None
    assert a.data == b.data
    assert len(counted) >= len(GOOD)  # and they did go the plain way


def test_a_field_with_a_resolver_goes_the_general_way(counted):
    a, b = both("{ items { name shout } }")
    assert a.data == b.data and a.data["items"][3]["shout"] == "ITEM3"
    assert counted == []


@pytest.mark.parametrize("field", ["broken", "badScalar"])
def test_an_item_that_needs_an_error_gets_the_general_error_at_its_path(field):
    a, b = both(f"{{ {field} {{ name n }} }}")
    assert a.data == b.data
    assert [(e.message, e.path) for e in a.errors] == [(e.message, e.path) for e in b.errors]
    assert a.errors[0].path == [field, 1, "n"]
