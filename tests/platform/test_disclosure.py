"""Tests of renkei.platform.disclosure: examples plus property-based attacks.

The attacker below is written independently of the module: it derives the cells, true
values and additive relations from the dimensions itself, then tries to recover
suppressed cells from everything published (released values, structural zeros, reason
codes) by exact elimination with fractions and by interval bound propagation.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from renkei.platform.disclosure import (
    REASONS,
    TOTAL,
    Cell,
    Dimension,
    ReleasedTable,
    protect_table,
    rate,
    rates,
)

Key = tuple[str, ...]

# --- an independent model of the table ---------------------------------------------


def codes_of(dim: Dimension) -> list[str]:
    codes = list(dim.leaves)
    for leaf in dim.leaves:
        code = leaf
        while code in dim.parents:
            code = dim.parents[code]
            if code not in codes:
                codes.append(code)
    return [*codes, TOTAL]


def children_of(dim: Dimension) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for code in codes_of(dim)[:-1]:
        children.setdefault(dim.parents.get(code, TOTAL), []).append(code)
    return children


def covers(dim: Dimension, code: str, leaf: str) -> bool:
    """Whether the cell code ``code`` includes leaf ``leaf``."""
    while True:
        if leaf == code:
            return True
        if leaf not in dim.parents:
            return code == TOTAL
        leaf = dim.parents[leaf]


def true_values(counts: Mapping[Key, int], dims: Sequence[Dimension]) -> dict[Key, int]:
    """Every cell's count: each leaf adds to all cells whose codes cover it."""
    values = dict.fromkeys(itertools.product(*(codes_of(d) for d in dims)), 0)
    for leaf in itertools.product(*(d.leaves for d in dims)):
        covering = [[c for c in codes_of(d) if covers(d, c, lc)] for d, lc in zip(dims, leaf)]
        for key in itertools.product(*covering):
            values[key] += counts.get(leaf, 0)
    return values


def relations_of(dims: Sequence[Dimension]) -> list[tuple[Key, list[Key]]]:
    """Every (total, children) relation of the table."""
    result = []
    children = [children_of(d) for d in dims]
    for key in itertools.product(*(codes_of(d) for d in dims)):
        for i, code in enumerate(key):
            kids = children[i].get(code, [])
            if kids:
                result.append((key, [(*key[:i], kid, *key[i + 1 :]) for kid in kids]))
    return result


def structural_cells(dims: Sequence[Dimension], structural: set[Key]) -> set[Key]:
    """Cells all of whose leaves are declared structural zeros."""
    leaf_keys = list(itertools.product(*(d.leaves for d in dims)))
    result = set()
    for key in itertools.product(*(codes_of(d) for d in dims)):
        leaves = [
            leaf
            for leaf in leaf_keys
            if all(covers(d, c, lc) for d, c, lc in zip(dims, key, leaf, strict=True))
        ]
        if all(leaf in structural for leaf in leaves):
            result.add(key)
    return result


# --- the attacker ----------------------------------------------------------------------


def solve_suppressed(
    released: Mapping[Key, int], suppressed: Sequence[Key], relations: list
) -> dict[Key, Fraction]:
    """Values of suppressed cells that the relations determine uniquely.

    Exact Gauss-Jordan elimination with fractions over the suppressed cells, with the
    released values substituted into the right-hand side. A cell is determined when
    its unit vector is in the row space: its reduced row has no other unknown.
    """
    column = {key: i for i, key in enumerate(suppressed)}
    rhs = -1  # column of the constant term
    pivots: dict[int, dict[int, Fraction]] = {}
    for total, kids in relations:
        row: dict[int, Fraction] = {rhs: Fraction(0)}
        for key, coefficient in [(total, 1), *((kid, -1) for kid in kids)]:
            if key in column:
                row[column[key]] = row.get(column[key], Fraction(0)) + coefficient
            else:
                row[rhs] -= coefficient * released[key]
        for col, pivot_row in pivots.items():
            factor = row.get(col, 0)
            if factor:
                for c, v in pivot_row.items():
                    row[c] = row.get(c, 0) - factor * v
        row = {c: v for c, v in row.items() if v or c == rhs}
        unknowns = [c for c in row if c != rhs]
        if not unknowns:
            assert row[rhs] == 0, "released values contradict the relations"
            continue
        pivot = min(unknowns)
        row = {c: v / row[pivot] for c, v in row.items()}
        for pivot_row in pivots.values():
            factor = pivot_row.get(pivot, 0)
            if factor:
                for c, v in row.items():
                    pivot_row[c] = pivot_row.get(c, 0) - factor * v
                    if not pivot_row[c] and c != rhs:
                        del pivot_row[c]
        pivots[pivot] = row
    return {
        suppressed[col]: row[rhs]
        for col, row in pivots.items()
        if all(c in (col, rhs) for c in row)
    }


def propagate_bounds(
    table: ReleasedTable, truth: Mapping[Key, int], relations: list, rounds: int = 1000
) -> dict[Key, tuple[float, float]]:
    """Interval of every suppressed cell implied by the relations and what is published.

    The attacker knows the released values (exact ones, see ``attack``), that counts are
    >= 0, and what the reason codes say: a primary cell holds 0..k-1 pupils, a
    complementary one at least k.
    """
    inf = float("inf")
    bounds: dict[Key, list] = {}
    for cell in table:
        if not cell.suppressed:
            bounds[cell.key] = [truth[cell.key], truth[cell.key]]
        elif cell.reason == "primary":
            bounds[cell.key] = [0, table.k - 1]
        else:
            bounds[cell.key] = [table.k, inf]
    for _ in range(rounds):
        changed = False
        for total, kids in relations:
            t = bounds[total]
            new_t = [
                max(t[0], sum(bounds[c][0] for c in kids)),
                min(t[1], sum(bounds[c][1] for c in kids)),
            ]
            if new_t != t:
                bounds[total] = t = new_t
                changed = True
            for kid in kids:
                b = bounds[kid]
                others_lo = sum(bounds[c][0] for c in kids if c != kid)
                others_hi = sum(bounds[c][1] for c in kids if c != kid)
                new_b = [max(b[0], t[0] - others_hi), min(b[1], t[1] - others_lo)]
                if new_b != b:
                    bounds[kid] = new_b
                    changed = True
        if not changed:
            break
    else:
        raise AssertionError("bound propagation did not settle")
    return {cell.key: tuple(bounds[cell.key]) for cell in table if cell.suppressed}


def attack(table: ReleasedTable, truth: Mapping[Key, int]) -> tuple[dict, dict]:
    """(cells solved exactly, intervals) using the *true* values of released cells.

    With rounding the attacker would only see rounded values; using the exact ones makes
    the attack stronger than any real one.
    """
    relations = relations_of(table.dimensions)
    released = {c.key: truth[c.key] for c in table if not c.suppressed}
    suppressed = [c.key for c in table if c.suppressed]
    return (
        solve_suppressed(released, suppressed, relations),
        propagate_bounds(table, truth, relations),
    )


# --- strategies --------------------------------------------------------------------


@st.composite
def dimensions(draw: st.DrawFn) -> list[Dimension]:
    count = draw(st.integers(1, 3))
    hierarchical = draw(st.none() | st.integers(0, count - 1))
    dims = []
    for d in range(count):
        leaves = tuple(f"{'xyz'[d]}{i}" for i in range(draw(st.integers(1, 6))))
        parents = {}
        if d == hierarchical:
            groups = draw(st.integers(1, len(leaves)))
            # -1: the leaf hangs directly below the total (a ragged hierarchy)
            for leaf in leaves:
                group = draw(st.integers(-1, groups - 1))
                if group >= 0:
                    parents[leaf] = f"G{group}"
        dims.append(Dimension(f"dim{d}", leaves, parents))
    return dims


small_or_large = st.integers(0, 9) | st.integers(0, 12) | st.integers(10, 80)


@st.composite
def tables(draw: st.DrawFn, *, rounding: bool = True) -> dict:
    dims = draw(dimensions())
    leaf_keys = list(itertools.product(*(d.leaves for d in dims)))
    values = draw(st.lists(small_or_large, min_size=len(leaf_keys), max_size=len(leaf_keys)))
    counts = dict(zip(leaf_keys, values, strict=True))
    zeros = sorted(key for key, value in counts.items() if value == 0)
    structural = draw(st.sets(st.sampled_from(zeros))) if zeros and draw(st.booleans()) else set()
    k = draw(st.integers(10, 20))
    base = draw(st.none() | st.sampled_from([2, 3, 5, 10])) if rounding else None
    return {"dims": dims, "counts": counts, "k": k, "base": base, "structural": structural}


def protect(case: dict) -> ReleasedTable:
    return protect_table(
        case["counts"],
        case["dims"],
        case["k"],
        rounding_base=case["base"],
        structural_zeros=case["structural"],
    )


PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- properties ----------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(tables())
def test_released_cells_cover_k_pupils_and_suppressed_cells_are_explicit(case: dict) -> None:
    table = protect(case)
    truth = true_values(case["counts"], case["dims"])
    structural = structural_cells(case["dims"], case["structural"])
    k, base = case["k"], case["base"]
    assert set(table.cells) == set(truth)
    for cell in table:
        true = truth[cell.key]
        if cell.suppressed:
            # 4. suppressed: None plus a reason, never 0
            assert cell.value is None
            assert cell.reason in ("primary", "complementary")
            assert cell.label == REASONS[cell.reason]
            assert cell.key not in structural
            assert (cell.reason == "primary") == (true < k)
        else:
            # 1. released: at least k pupils, or a declared structural zero
            assert cell.reason is None
            assert true >= k or (true == 0 and cell.key in structural)
            if base is None:
                assert cell.value == true
            else:
                # 5. rounding: multiples of the base, nearest, halves upward
                assert cell.value % base == 0
                assert abs(cell.value - true) * 2 <= base
                assert (cell.value - true) * 2 != -base
                assert cell.value > 0 or true == 0


@PROPERTY_SETTINGS
@given(tables(rounding=False))
def test_every_relation_with_a_suppression_is_protected(case: dict) -> None:
    """The documented per-relation rule: >= 2 suppressed, together >= k pupils."""
    table = protect(case)
    truth = true_values(case["counts"], case["dims"])
    structural = structural_cells(case["dims"], case["structural"])
    for total, kids in relations_of(case["dims"]):
        members = [total, *kids]
        hidden = [m for m in members if table[m].suppressed]
        if not hidden:
            continue
        assert len(hidden) >= 2
        everything_hidden = all(table[m].suppressed or m in structural for m in members)
        assert sum(truth[m] for m in hidden) >= case["k"] or everything_hidden


@pytest.mark.slow
@settings(PROPERTY_SETTINGS, max_examples=1000)
@given(tables())
def test_no_suppressed_cell_can_be_recovered(case: dict) -> None:
    table = protect(case)
    truth = true_values(case["counts"], case["dims"])
    solved, intervals = attack(table, truth)
    event(f"{len(case['dims'])} dimension(s)")
    # 2a. linear algebra: no suppressed cell is uniquely determined
    assert solved == {}, f"recovered {solved}"
    # 2b. bound propagation (cells >= 0): every interval still has room
    for key, (lo, hi) in intervals.items():
        assert lo <= truth[key] <= hi
        assert lo < hi, f"{key} pinned to {lo}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rates_never_use_suppressed_counts(data: st.DataObject) -> None:
    dims = data.draw(dimensions())
    leaf_keys = list(itertools.product(*(d.leaves for d in dims)))
    k = data.draw(st.integers(10, 20))
    base = data.draw(st.none() | st.sampled_from([5, 10]))
    tables_ = []
    for _ in range(2):
        values = data.draw(
            st.lists(small_or_large, min_size=len(leaf_keys), max_size=len(leaf_keys))
        )
        counts = dict(zip(leaf_keys, values, strict=True))
        tables_.append(protect_table(counts, dims, k, rounding_base=base))
    numerator, denominator = tables_
    result = rates(numerator, denominator)
    assert result.keys() == numerator.cells.keys()
    for key, r in result.items():
        num, den = numerator[key], denominator[key]
        # 3. suppressed whenever either count is
        if num.suppressed or den.suppressed:
            assert r.suppressed and r.value is None
            assert r.reason in ("numerator_suppressed", "denominator_suppressed")
        else:
            assert not r.suppressed
            assert r.value == num.value / den.value  # released (rounded) values only


# --- the attacker is strong enough to matter ---------------------------------------------

ROWS = Dimension("row", ("r1", "r2", "r3"))
COLS = Dimension("col", ("c1", "c2", "c3"))
GRID = {
    ("r1", "c1"): 20, ("r1", "c2"): 30, ("r1", "c3"): 40,
    ("r2", "c1"): 25, ("r2", "c2"): 5, ("r2", "c3"): 35,
    ("r3", "c1"): 45, ("r3", "c2"): 50, ("r3", "c3"): 60,
}  # fmt: skip


def hand_made(dims: Sequence[Dimension], counts: dict, hidden: set[Key]) -> ReleasedTable:
    """A table with the given cells suppressed and nothing else: no protect_table."""
    truth = true_values(counts, dims)
    cells = {}
    for key, value in truth.items():
        if key in hidden:
            cells[key] = Cell(key, None, True, "primary" if value < 10 else "complementary")
        else:
            cells[key] = Cell(key, value, False, None)
    return ReleasedTable(tuple(dims), 10, None, cells)


def test_attacker_recovers_a_cell_without_complementary_suppression() -> None:
    table = hand_made([ROWS, COLS], GRID, {("r2", "c2")})
    solved, _ = attack(table, true_values(GRID, [ROWS, COLS]))
    assert solved == {("r2", "c2"): 5}


def test_attacker_solves_a_bridge_between_two_suppression_cycles() -> None:
    """Each row and column holds two suppressions, yet the bridge cell is determined."""
    rows = Dimension("row", ("r1", "r2", "r3", "r4"))
    cols = Dimension("col", ("c1", "c2", "c3", "c4"))
    counts = {(r, c): 10 + 3 * i + j for i, r in enumerate(rows.leaves)
              for j, c in enumerate(cols.leaves)}  # fmt: skip
    hidden = {("r1", "c1"), ("r1", "c2"), ("r2", "c1"), ("r2", "c2"), ("r2", "c3"),
              ("r3", "c3"), ("r3", "c4"), ("r4", "c3"), ("r4", "c4")}  # fmt: skip
    table = hand_made([rows, cols], counts, hidden)
    for total, kids in relations_of([rows, cols]):
        assert sum(table[m].suppressed for m in [total, *kids]) != 1
    solved, _ = attack(table, true_values(counts, [rows, cols]))
    assert solved == {("r2", "c3"): counts[("r2", "c3")]}
    # Rules per relation do not catch this; protect_table's linear audit does.


# --- examples ------------------------------------------------------------------------


def suppressed_keys(table: ReleasedTable) -> dict[Key, str | None]:
    return {cell.key: cell.reason for cell in table if cell.suppressed}


def test_one_small_cell_gets_a_rectangle_of_complements() -> None:
    table = protect_table(GRID, [ROWS, COLS], 10)
    assert suppressed_keys(table) == {
        ("r2", "c2"): "primary",
        ("r2", "c1"): "complementary",  # smallest in row r2 (25 < 35)
        ("r1", "c2"): "complementary",  # smallest in column c2 (30 < 50)
        ("r1", "c1"): "complementary",  # closes row r1 and column c1 (20 < 40, 20 < 45)
    }
    assert table.cell("r2", TOTAL).value == 65
    assert table.cell(TOTAL, TOTAL).value == 310
    assert table.cell("r2", "c2") == Cell(("r2", "c2"), None, True, "primary")


def test_two_small_cells_that_sum_below_k_are_protected_further() -> None:
    counts = dict(GRID)
    counts[("r2", "c1")], counts[("r2", "c2")] = 3, 4  # 3 + 4 = 7 < k
    table = protect_table(counts, [ROWS, COLS], 10)
    hidden = suppressed_keys(table)
    assert hidden[("r2", "c1")] == hidden[("r2", "c2")] == "primary"
    # the row total (42) is released, so the row's suppressed cells must hold >= k
    assert table.cell("r2", TOTAL).value == 42
    assert hidden[("r2", "c3")] == "complementary"
    assert ("r1", "c1") in hidden and ("r1", "c2") in hidden
    solved, _ = attack(table, true_values(counts, [ROWS, COLS]))
    assert solved == {}


def test_reason_codes_are_taken_into_account() -> None:
    """A complement of exactly k next to a 0 would be pinned: total - c = a + b = 10 = k."""
    schools = Dimension("school", ("a", "b", "c"))
    table = protect_table({("a",): 0, ("b",): 10, ("c",): 50}, [schools], 10)
    # "b is complementary" means b >= 10, so with a + b = 10 released both would follow.
    assert suppressed_keys(table) == {
        ("a",): "primary",
        ("b",): "complementary",
        ("c",): "complementary",
    }
    assert table.cell(TOTAL).value == 60


def test_table_with_only_large_cells_releases_everything() -> None:
    counts = {key: 10 + i for i, key in enumerate(GRID)}
    table = protect_table(counts, [ROWS, COLS], 10)
    assert table.suppressed == ()
    assert len(table.released) == 16
    assert table.cell(TOTAL, TOTAL).value == sum(counts.values())


def test_a_cell_withheld_by_a_linked_table_is_withheld_and_protected_here() -> None:
    # given a table that would release everything, and one of its cells withheld by a
    # linked table (a refinement must not release what the other protects)
    counts = {key: 10 + i for i, key in enumerate(GRID)}
    linked = ("r1", TOTAL)
    table = protect_table(counts, [ROWS, COLS], 10, withheld=[linked])
    # then it is withheld here too, and not recoverable from the cells released here
    assert table[linked].suppressed
    truth = true_values(counts, [ROWS, COLS])
    solved, intervals = attack(table, truth)
    assert solved == {}
    assert all(lo < hi for lo, hi in intervals.values())
    assert protect_table(counts, [ROWS, COLS], 10).suppressed == ()  # only because of it


@pytest.mark.parametrize("k", [9, 0, -1, 5])
def test_k_below_ten_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        protect_table(GRID, [ROWS, COLS], k)


def test_zero_is_suppressed_unless_declared_structural() -> None:
    grades = Dimension("grade", ("E6", "J1"))
    schools = Dimension("school", ("elementary", "junior_high"))
    counts = {
        ("E6", "elementary"): 40, ("E6", "junior_high"): 0,
        ("J1", "elementary"): 0, ("J1", "junior_high"): 45,
    }  # fmt: skip
    plain = protect_table(counts, [grades, schools], 10)
    assert plain.cell("E6", "junior_high") == Cell(("E6", "junior_high"), None, True, "primary")
    structural = {("E6", "junior_high"), ("J1", "elementary")}
    table = protect_table(counts, [grades, schools], 10, structural_zeros=structural)
    assert table.cell("E6", "junior_high") == Cell(("E6", "junior_high"), 0, False, None)
    assert table.suppressed == ()
    with pytest.raises(ValueError, match="structural zero"):
        protect_table(counts, [grades, schools], 10, structural_zeros={("E6", "elementary")})


def test_hierarchy_year_month_protects_months_within_the_year() -> None:
    months = ("2024-04", "2024-05", "2025-04", "2025-05")
    period = Dimension("period", months, {m: m[:4] for m in months})
    counts = {("2024-04",): 30, ("2024-05",): 4, ("2025-04",): 25, ("2025-05",): 40}
    table = protect_table(counts, [period], 10)
    assert suppressed_keys(table) == {
        ("2024-05",): "primary",
        ("2024-04",): "complementary",  # otherwise 2024 - 2024-04 = 2024-05
    }
    assert table.cell("2024").value == 34  # 30 + 4: two unknowns, holding >= k together
    assert table.cell(TOTAL).value == 99


def test_rounding_is_half_up_and_applies_to_totals_independently() -> None:
    dim = Dimension("school", ("a", "b", "c"))
    table = protect_table({("a",): 12, ("b",): 13, ("c",): 15}, [dim], 10, rounding_base=10)
    assert [table.cell(code).value for code in ("a", "b", "c", TOTAL)] == [10, 10, 20, 40]
    table = protect_table({("a",): 12, ("b",): 13, ("c",): 15}, [dim], 10, rounding_base=5)
    assert [table.cell(code).value for code in ("a", "b", "c", TOTAL)] == [10, 15, 15, 40]
    with pytest.raises(ValueError, match="rounding_base"):
        protect_table({("a",): 12}, [dim], 10, rounding_base=1)


def test_rate_of_cells() -> None:
    released = Cell(("a",), 40, False, None)
    hidden = Cell(("a",), None, True, "primary")
    assert rate(Cell(("a",), 10, False, None), released).value == 0.25
    assert rate(hidden, released).reason == "numerator_suppressed"
    assert rate(released, hidden).reason == "denominator_suppressed"
    assert rate(released, Cell(("a",), 0, False, None)).reason == "zero_denominator"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="leaf key"):
        protect_table({("r1", TOTAL): 5}, [ROWS, COLS], 10)
    with pytest.raises(ValueError, match="non-negative"):
        protect_table({("r1", "c1"): -1}, [ROWS, COLS], 10)
    with pytest.raises(ValueError, match="leaf cannot have children"):
        Dimension("d", ("a", "b"), {"a": "b"})
    with pytest.raises(ValueError, match="cycle"):
        Dimension("d", ("a",), {"a": "g", "g": "h", "h": "g"})


def test_prefecture_sized_table_is_safe() -> None:
    # Its speed is measured by bench/disclosure.py, not asserted here.
    rng = random.Random(20250401)
    municipalities = Dimension("municipality", tuple(f"M{i:02d}" for i in range(60)))
    grades = ("E1", "E2", "E3", "E4", "E5", "E6", "J1", "J2", "J3")
    grade = Dimension("grade", grades, {g: g[0] for g in grades})
    category = Dimension("category", ("a", "b", "c"))
    dims = [municipalities, grade, category]
    counts = {
        key: rng.choice([rng.randint(0, 12), rng.randint(0, 300)])
        for key in itertools.product(*(d.leaves for d in dims))
    }
    table = protect_table(counts, dims, 10)
    assert len(table) == 61 * (9 + 2 + 1) * 4
    solved, intervals = attack(table, true_values(counts, dims))
    assert solved == {}
    assert all(lo < hi for lo, hi in intervals.values())
