"""Statistical disclosure control for every aggregate that leaves a tenant.

Pure Python, no Django: the same code protects a municipality's own export and each
municipality's share of a prefecture view (see DESIGN.md, "Disclosure control").

Model
-----
A table is the full cross-classification of one or more :class:`Dimension` objects.
Each dimension has leaf codes, an optional hierarchy (child -> parent, e.g. month ->
year or grade -> school type) and the :data:`TOTAL` marker at its root. Callers pass
counts for leaf keys only; :func:`protect_table` builds every margin itself (grand
total, per-dimension totals, hierarchy parents), so a cell is keyed by one code per
dimension, any of which may be an intermediate code or ``TOTAL``. Leaf keys missing
from ``counts`` count as 0.

The additive relations are: for every cell whose code in dimension *d* has children,
that cell equals the sum of the cells obtained by replacing the code with each of its
children. Every row, column, layer and hierarchy level of the table is one relation.

Protection
----------
1. Primary suppression: every cell (leaf or margin) covering fewer than *k* pupils is
   suppressed, ``k >= 10`` (a tenant may only raise it).

   Zeros: a 0 reveals "nobody in this group", which is as telling as a 1 (for example
   "no pupil of this school is a foreign national"), so zero cells are suppressed like
   any other cell below *k*. Only zeros the caller declares *structural* (impossible
   by definition, e.g. grade 7 in an elementary school) are released as 0; they carry
   no information about pupils. A margin is a structural zero when all of its leaves
   are.

2. Complementary suppression, until for every relation that has a suppressed member:

   * at least two members are suppressed (one unknown in a sum can be solved for), and
   * the suppressed members hold at least *k* pupils together, or every member that is
     not a structural zero is suppressed. Otherwise the difference "total minus the
     released members" would disclose a group below *k* (3 + 4 = 7 pupils).

   Complements are the smallest released cells of the relation (ties: leaf cells
   before margins, then table order), so the result is deterministic.

3. Audits. The two rules above are the classic heuristic for linked tables and they
   are not sufficient on their own: cells whose rows and columns all hold two
   suppressions can still be solved when relations are combined (a suppressed cell
   "bridging" two otherwise separate suppression cycles), and "counts are >= 0" can
   pin a cell that linear algebra leaves open. So after step 2 the table is attacked
   the way an outsider would, with everything that is published: released values,
   structural zeros, and the reason codes, which tell that a primary cell holds
   0..k-1 pupils and a complementary one at least k.

   * Linear: exact Gauss-Jordan elimination over the relations (integer arithmetic).
     A suppressed cell is determined when its unit vector lies in the row space of
     the relations restricted to suppressed cells.
   * Bounds: interval propagation over every relation until nothing changes. A
     suppressed cell is pinned when its lower and upper bounds meet.

   Each unsafe cell gets one more complement, the cheapest released cell in the
   relations the attack used (else the nearest one), and steps 2-3 repeat. When the
   loop ends no suppressed cell is a linear function of the published figures and
   none is pinned by bound propagation.

This is a heuristic, not an optimal suppression (that is an integer programme): it may
suppress more than necessary. Bound propagation is weaker than linear programming:
an attacker with an LP solver can, rarely, still pin a suppressed cell that sits at
one of its bounds (a 0, or a complement of exactly k) in a table of three dimensions.
The tests attack random tables with exact elimination and bound propagation.

Rounding and rates
------------------
Optional rounding (``rounding_base``) happens after suppression: every released count,
totals included, is rounded on its own to the nearest multiple of the base, halves
upward. Rounded tables therefore need not add up, and a rounded value may be below
*k* (11 -> 10 with k = 11) although the cell covers at least *k* pupils.

Rates and means are computed from released values only (:func:`rate`, :func:`rates`):
when the numerator or the denominator is suppressed, so is the rate.

Suppressed cells are always explicit: ``value is None`` with a reason code from
:data:`REASONS`, never 0.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Final

__all__ = [
    "MIN_K",
    "REASONS",
    "TOTAL",
    "Cell",
    "Dimension",
    "RateCell",
    "ReleasedTable",
    "protect_table",
    "rate",
    "rates",
]

#: Marker for "all codes of this dimension" in a cell key.
TOTAL: Final = "__total__"

#: The smallest k anybody may use; tenants may only raise it.
MIN_K: Final = 10

PRIMARY: Final = "primary"
COMPLEMENTARY: Final = "complementary"
NUMERATOR_SUPPRESSED: Final = "numerator_suppressed"
DENOMINATOR_SUPPRESSED: Final = "denominator_suppressed"
ZERO_DENOMINATOR: Final = "zero_denominator"

#: Reason codes of suppressed cells, with the label shown to users.
REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        PRIMARY: "対象が k 人未満のため秘匿",
        COMPLEMENTARY: "他のセルからの逆算を防ぐため秘匿",
        NUMERATOR_SUPPRESSED: "分子が秘匿されているため秘匿",
        DENOMINATOR_SUPPRESSED: "分母が秘匿されているため秘匿",
        ZERO_DENOMINATOR: "分母が 0 のため算出不可",
    }
)

Key = tuple[str, ...]


@dataclass(frozen=True)
class Dimension:
    """One classification of a table, with an optional hierarchy.

    ``leaves`` are the finest codes, the ones used in the counts passed to
    :func:`protect_table`. ``parents`` maps a code to its parent code; codes without
    a parent roll up to :data:`TOTAL`. Example (school type > grade)::

        Dimension("grade", ("E1", "E2", "J1"), {"E1": "E", "E2": "E", "J1": "J"})

    For year > month use month codes that are unique across years ("2025-04" ->
    "2025"), so that the month cells are the children of exactly one year.
    """

    name: str
    leaves: tuple[str, ...]
    parents: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        leaves = tuple(self.leaves)
        parents = MappingProxyType(dict(self.parents))
        object.__setattr__(self, "leaves", leaves)
        object.__setattr__(self, "parents", parents)
        if not self.name:
            raise ValueError("a dimension needs a name")
        if not leaves:
            raise ValueError(f"dimension {self.name!r} has no leaves")
        if len(set(leaves)) != len(leaves):
            raise ValueError(f"dimension {self.name!r} has duplicate leaves")
        codes = set(leaves) | set(parents) | set(parents.values())
        if TOTAL in codes:
            raise ValueError(f"{TOTAL!r} is reserved for the total of a dimension")
        groups = set(parents.values())
        if groups & set(leaves):
            raise ValueError(f"dimension {self.name!r}: a leaf cannot have children")
        orphans = set(parents) - set(leaves) - groups
        if orphans:
            # A group without leaves would be a cell nobody can fill.
            raise ValueError(f"dimension {self.name!r}: codes without leaves: {sorted(orphans)}")
        for code in parents:
            seen = {code}
            while code in parents:
                code = parents[code]
                if code in seen:
                    raise ValueError(f"dimension {self.name!r}: cycle in the hierarchy")
                seen.add(code)

    @cached_property
    def codes(self) -> tuple[str, ...]:
        """Every code of the dimension: leaves, then groups, then TOTAL."""
        groups: dict[str, None] = {}
        for leaf in self.leaves:
            for code in self.ancestors(leaf)[1:-1]:
                groups.setdefault(code)
        return (*self.leaves, *groups, TOTAL)

    @cached_property
    def children(self) -> Mapping[str, tuple[str, ...]]:
        """Children of every code that has any (groups and TOTAL)."""
        result: dict[str, list[str]] = {}
        for code in self.codes[:-1]:
            result.setdefault(self.parents.get(code, TOTAL), []).append(code)
        return MappingProxyType({code: tuple(kids) for code, kids in result.items()})

    def ancestors(self, code: str) -> tuple[str, ...]:
        """``code`` itself, its parent, ... up to and including TOTAL."""
        chain = [code]
        while code in self.parents:
            code = self.parents[code]
            chain.append(code)
        return (*chain, TOTAL)


@dataclass(frozen=True)
class Cell:
    """A cell as released: ``value`` is None exactly when the cell is suppressed."""

    key: Key
    value: int | None
    suppressed: bool
    reason: str | None

    @property
    def label(self) -> str | None:
        """User-facing reason of the suppression (Japanese)."""
        return REASONS[self.reason] if self.reason else None


@dataclass(frozen=True)
class RateCell:
    """A ratio of two released counts; suppressed when either count is."""

    key: Key
    value: float | None
    suppressed: bool
    reason: str | None

    @property
    def label(self) -> str | None:
        """User-facing reason of the suppression (Japanese)."""
        return REASONS[self.reason] if self.reason else None


@dataclass(frozen=True)
class ReleasedTable:
    """The protected table: every cell, leaves and margins. Holds no hidden values."""

    dimensions: tuple[Dimension, ...]
    k: int
    rounding_base: int | None
    cells: Mapping[Key, Cell] = field(hash=False)

    def __getitem__(self, key: Key) -> Cell:
        return self.cells[tuple(key)]

    def cell(self, *codes: str) -> Cell:
        """Look a cell up by its codes, e.g. ``table.cell("2025", TOTAL)``."""
        return self.cells[codes]

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells.values())

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def suppressed(self) -> tuple[Cell, ...]:
        return tuple(cell for cell in self.cells.values() if cell.suppressed)

    @property
    def released(self) -> tuple[Cell, ...]:
        return tuple(cell for cell in self.cells.values() if not cell.suppressed)


def protect_table(
    counts: Mapping[Key, int],
    dimensions: Sequence[Dimension],
    k: int,
    *,
    rounding_base: int | None = None,
    structural_zeros: Collection[Key] = (),
    insensitive: Collection[Key] = (),
    published: Collection[Key] = (),
    withheld: Collection[Key] = (),
) -> ReleasedTable:
    """Build all margins from leaf ``counts`` and apply disclosure control.

    ``structural_zeros`` lists leaf keys that are zero by definition; they (and margins
    made only of them) are released as 0. All other cells below ``k`` are suppressed,
    except margins made only of ``insensitive`` leaves (leaf keys whose size tells nothing:
    e.g. absence days in a month too short for anyone to be absent 10 days), which are
    released unless they are needed as complements. ``published`` cells (any level) are
    released elsewhere already - a margin another table shares - so they are never taken as
    complements: the protection works around them. ``withheld`` cells (any level) are
    withheld elsewhere already, so they are withheld here too: a table that refines another
    never releases what the other protects.
    """
    dims = tuple(dimensions)
    structural_zeros = frozenset(structural_zeros)
    insensitive = frozenset(insensitive)
    _check_arguments(counts, dims, k, rounding_base, structural_zeros)

    keys = list(itertools.product(*(dim.codes for dim in dims)))
    index = {key: i for i, key in enumerate(keys)}
    is_leaf = [
        all(code not in dim.children for code, dim in zip(key, dims, strict=True)) for key in keys
    ]
    values = [0] * len(keys)
    open_leaves = [0] * len(keys)  # leaves below the cell that are not structural zeros
    sensitive = [False] * len(keys)  # some leaf below is neither structural nor insensitive
    for leaf_key in itertools.product(*(dim.leaves for dim in dims)):
        value = counts.get(leaf_key, 0)
        structural = leaf_key in structural_zeros
        telling = not structural and leaf_key not in insensitive
        chains = (dim.ancestors(code) for code, dim in zip(leaf_key, dims, strict=True))
        for key in itertools.product(*chains):
            i = index[key]
            values[i] += value
            open_leaves[i] += not structural
            sensitive[i] = sensitive[i] or telling

    relations = _relations(keys, index, dims)
    fixed = {index[tuple(key)] for key in published}
    forced = {index[tuple(key)] for key in withheld}
    state = _Protector(values, open_leaves, is_leaf, relations, k, sensitive, fixed, forced).run()

    cells = {}
    for i, key in enumerate(keys):
        if state[i] is None:
            value = values[i] if rounding_base is None else _round(values[i], rounding_base)
            cells[key] = Cell(key, value, False, None)
        else:
            cells[key] = Cell(key, None, True, state[i])
    return ReleasedTable(dims, k, rounding_base, MappingProxyType(cells))


def rate(numerator: Cell, denominator: Cell) -> RateCell:
    """numerator / denominator from released values; suppressed if either is."""
    key = numerator.key
    if numerator.value is None or numerator.suppressed:
        return RateCell(key, None, True, NUMERATOR_SUPPRESSED)
    if denominator.value is None or denominator.suppressed:
        return RateCell(key, None, True, DENOMINATOR_SUPPRESSED)
    if denominator.value == 0:
        return RateCell(key, None, True, ZERO_DENOMINATOR)
    return RateCell(key, numerator.value / denominator.value, False, None)


def rates(numerator: ReleasedTable, denominator: ReleasedTable) -> dict[Key, RateCell]:
    """Cell-by-cell :func:`rate` of two tables over the same dimensions."""
    if numerator.cells.keys() != denominator.cells.keys():
        raise ValueError("numerator and denominator tables have different cells")
    return {key: rate(cell, denominator.cells[key]) for key, cell in numerator.cells.items()}


# --- internals -------------------------------------------------------------------


def _check_arguments(
    counts: Mapping[Key, int],
    dims: tuple[Dimension, ...],
    k: int,
    rounding_base: int | None,
    structural_zeros: Collection[Key],
) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < MIN_K:
        raise ValueError(f"k must be an integer >= {MIN_K}, got {k!r}")
    if rounding_base is not None and (
        isinstance(rounding_base, bool)
        or not isinstance(rounding_base, int)
        or not 2 <= rounding_base <= 2 * k
    ):
        # Up to 2k a released count (>= k) never rounds to 0, which would read as "nobody".
        raise ValueError(f"rounding_base must be an integer in 2..{2 * k}, got {rounding_base!r}")
    if not dims:
        raise ValueError("a table needs at least one dimension")
    if len({dim.name for dim in dims}) != len(dims):
        raise ValueError("dimension names must be unique")
    leaves = [set(dim.leaves) for dim in dims]

    def check_leaf_key(key: object) -> None:
        if (
            not isinstance(key, tuple)
            or len(key) != len(dims)
            or not all(code in codes for code, codes in zip(key, leaves, strict=True))
        ):
            raise ValueError(f"{key!r} is not a leaf key of this table")

    for key, value in counts.items():
        check_leaf_key(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"count for {key!r} must be a non-negative integer, got {value!r}")
    for key in structural_zeros:
        check_leaf_key(key)
        if counts.get(key, 0) != 0:
            raise ValueError(f"{key!r} is declared a structural zero but has a count")


def _relations(
    keys: list[Key], index: Mapping[Key, int], dims: tuple[Dimension, ...]
) -> list[tuple[int, ...]]:
    """Every additive relation as (total, *children) cell indices."""
    relations = []
    for d, dim in enumerate(dims):
        for key in keys:
            kids = dim.children.get(key[d])
            if kids:
                total = index[key]
                members = [index[(*key[:d], kid, *key[d + 1 :])] for kid in kids]
                relations.append((total, *members))
    return relations


class _Protector:
    """Working state of one :func:`protect_table` call; cells are list indices."""

    def __init__(
        self,
        values: list[int],
        open_leaves: list[int],
        is_leaf: list[bool],
        relations: list[tuple[int, ...]],
        k: int,
        sensitive: list[bool],
        fixed: Collection[int] = (),
        forced: Collection[int] = (),
    ) -> None:
        self.fixed = frozenset(fixed)
        self.values = values
        self.open_leaves = open_leaves
        self.is_leaf = is_leaf
        self.relations = relations
        self.k = k
        self.state: list[str | None] = [
            PRIMARY if sensitive[i] and values[i] < k and i not in self.fixed else None
            for i in range(len(values))
        ]
        for i in forced:  # withheld by a linked table; its honest reason, for the audits
            self.state[i] = self.state[i] or (PRIMARY if values[i] < k else COMPLEMENTARY)
        self.relations_of: list[list[int]] = [[] for _ in values]
        for r, members in enumerate(relations):
            for member in members:
                self.relations_of[member].append(r)
        self.queued = [False] * len(relations)
        self.queue: deque[int] = deque()
        for r, members in enumerate(relations):
            if any(self.state[m] for m in members):
                self._enqueue(r)

    def run(self) -> list[str | None]:
        """Suppress until the relation rules hold and the audits find nothing."""
        while True:
            self._enforce_relation_rules()
            # unsafe cell -> relations an attacker combines to find it
            unsafe = _linearly_determined(self.state, self.relations)
            for i, source in self._pinned().items():
                unsafe.setdefault(i, [source] if source is not None else [])
            if not unsafe:
                return self.state
            touched: set[int] = set()
            for i in sorted(unsafe):
                hints = unsafe[i] or self.relations_of[i]
                if touched.intersection(hints):
                    continue  # a complement chosen this round already changed the attack
                free = [m for r in hints for m in self._candidates(r)]
                choice = min(free, key=self._cost) if free else self._nearest_candidate(i)
                if choice is not None:
                    self._suppress(choice)
                    touched.update(self.relations_of[choice])
            if not touched:
                # Only when every cell that is not a structural zero is suppressed.
                return self.state

    def _enqueue(self, r: int) -> None:
        if not self.queued[r]:
            self.queued[r] = True
            self.queue.append(r)

    def _suppress(self, i: int) -> None:
        self.state[i] = COMPLEMENTARY
        for r in self.relations_of[i]:
            self._enqueue(r)

    def _cost(self, i: int) -> tuple[int, bool, int]:
        """Smallest count first, then leaves (whose loss hurts least), then table order.

        The count is charged k more for every relation in which the cell would be the only
        one withheld (that relation then needs another complement, of about k), and k less
        for every relation in which it pairs with a cell withheld alone: complements that
        protect several cells at once. On the benchmark's prefectures (bench/federation.py)
        this withholds 1.8 % (60 x 2,000) to 4.6 % (180 x 300) fewer cells and no margin
        more; a larger weight than k started withholding municipality totals.
        """
        lone = 0
        for r in self.relations_of[i]:
            hidden = 0
            for m in self.relations[r]:
                if self.state[m]:
                    hidden += 1
                    if hidden > 1:
                        break
            lone += 1 if hidden == 0 else -1 if hidden == 1 else 0
        return (self.values[i] + self.k * lone, not self.is_leaf[i], i)

    def _candidates(self, r: int) -> list[int]:
        return [
            m
            for m in self.relations[r]
            if self.state[m] is None and self.open_leaves[m] and m not in self.fixed
        ]

    def _enforce_relation_rules(self) -> None:
        while self.queue:
            r = self.queue.popleft()
            self.queued[r] = False
            hidden = [m for m in self.relations[r] if self.state[m]]
            if not hidden:
                continue
            free = self._candidates(r)
            if free and (len(hidden) == 1 or sum(self.values[m] for m in hidden) < self.k):
                self._suppress(min(free, key=self._cost))

    def _nearest_candidate(self, i: int) -> int | None:
        """Cheapest released cell in the relations around ``i``, widening ring by ring."""
        seen_cells = {i}
        seen_relations: set[int] = set()
        ring = [i]
        while ring:
            ring_relations = list(
                dict.fromkeys(
                    r for c in ring for r in self.relations_of[c] if r not in seen_relations
                )
            )
            seen_relations.update(ring_relations)
            found = [m for r in ring_relations for m in self._candidates(r)]
            if found:
                return min(found, key=self._cost)
            ring = []
            for r in ring_relations:
                for m in self.relations[r]:
                    if m not in seen_cells:
                        seen_cells.add(m)
                        ring.append(m)
        return None

    def _pinned(self) -> dict[int, int | None]:
        """Suppressed cells whose interval collapses under bound propagation.

        The attacker's view: released values are exact, structural zeros are 0, and the
        reason codes tell that a primary cell holds 0..k-1 pupils and a complementary
        one at least k. Each relation "total = sum of children" then bounds every member
        by the others; propagate until nothing changes. Returns each pinned cell with
        the relation that tightened it last, where another complement helps most.
        """
        k, state, values, relations = self.k, self.state, self.values, self.relations
        inf = math.inf
        lo: list[float] = []
        hi: list[float] = []
        for i, reason in enumerate(state):
            if reason is None:
                lo.append(values[i])
                hi.append(values[i])
            elif reason == PRIMARY:
                lo.append(0)
                hi.append(k - 1)
            else:
                # A complement is at least k, except an insensitive cell taken as one.
                lo.append(k if values[i] >= k else 0)
                hi.append(inf)
        source: list[int | None] = [None] * len(state)
        queued = [False] * len(relations)
        queue: deque[int] = deque()
        for r, members in enumerate(relations):
            if any(state[m] for m in members):
                queued[r] = True
                queue.append(r)
        budget = 200 * len(relations)  # integer bounds converge; this only caps pathologies
        while queue and budget:
            budget -= 1
            r = queue.popleft()
            queued[r] = False
            total, *kids = relations[r]
            lo_sum = sum(lo[c] for c in kids)
            unbounded = sum(hi[c] == inf for c in kids)
            finite_hi_sum = sum(hi[c] for c in kids if hi[c] != inf)
            hi_sum = inf if unbounded else finite_hi_sum
            changed = []
            if lo_sum > lo[total] or hi_sum < hi[total]:
                lo[total] = max(lo[total], lo_sum)
                hi[total] = min(hi[total], hi_sum)
                changed.append(total)
            for c in kids:
                if hi[c] == inf:
                    others_hi = inf if unbounded > 1 else finite_hi_sum
                else:
                    others_hi = inf if unbounded else finite_hi_sum - hi[c]
                new_lo = max(lo[c], lo[total] - others_hi)
                new_hi = min(hi[c], hi[total] - (lo_sum - lo[c]))
                if new_lo != lo[c] or new_hi != hi[c]:
                    lo[c], hi[c] = new_lo, new_hi
                    changed.append(c)
            for c in changed:
                source[c] = r
                for other in self.relations_of[c]:
                    if not queued[other]:
                        queued[other] = True
                        queue.append(other)
        return {i: source[i] for i, reason in enumerate(state) if reason and lo[i] >= hi[i]}


def _linearly_determined(
    state: list[str | None], relations: list[tuple[int, ...]]
) -> dict[int, list[int]]:
    """Suppressed cells whose value follows from the released cells by linear algebra.

    Gauss-Jordan elimination over the relations restricted to suppressed cells (released
    cells only shift the right-hand side, which does not matter for whether a value is
    determined), kept in reduced row echelon form. A cell is determined exactly when its
    unit vector lies in the row space, i.e. it is a pivot whose row has no other entry.

    Arithmetic is modulo the prime 2^61 - 1, which is exact for every combination that
    matters here: a cell determined over the rationals is determined modulo p (relations
    have coefficients 0 and +-1), and the converse fails only when p divides a
    determinant of the relations, which makes a cell look determined - one complement too
    many, never one too few. ``col_rows`` indexes which pivot rows hold a column, so a new
    pivot is eliminated from exactly those rows instead of scanning every row: tables of a
    whole prefecture have tens of thousands of suppressed cells.
    """
    p = _PRIME
    rows = []
    for members in relations:
        row: dict[int, int] = {}
        for position, m in enumerate(members):
            if state[m] is not None:
                row[m] = row.get(m, 0) + (1 if position == 0 else -1)
        row = {c: v % p for c, v in row.items() if v % p}
        if row:
            rows.append(row)
    rows.sort(key=len)  # short rows first: less fill-in; stable
    pivots: dict[int, dict[int, int]] = {}  # pivot column -> its row (pivot entry 1)
    col_rows: dict[int, set[int]] = {}  # non-pivot column -> pivot rows holding it
    for row in rows:
        for col in [c for c in row if c in pivots]:
            factor = row.get(col)
            if factor:
                _subtract(row, pivots[col], factor, p)
        if not row:
            continue
        pivot = min(row)
        inverse = pow(row[pivot], p - 2, p)
        row = {c: v * inverse % p for c, v in row.items()}
        for other in col_rows.pop(pivot, ()):
            other_row = pivots[other]
            before = set(other_row)
            _subtract(other_row, row, other_row[pivot], p)
            for c in before - set(other_row):
                col_rows.get(c, set()).discard(other)
            for c in set(other_row) - before:
                col_rows.setdefault(c, set()).add(other)
        for c in row:
            if c != pivot:
                col_rows.setdefault(c, set()).add(pivot)
        pivots[pivot] = row
    return {col: [] for col, row in sorted(pivots.items()) if len(row) == 1}


_PRIME: Final = (1 << 61) - 1


def _subtract(row: dict[int, int], other: dict[int, int], factor: int, p: int) -> None:
    """``row -= factor * other`` in place, modulo ``p``, dropping zeros."""
    for c, v in other.items():
        new = (row.get(c, 0) - factor * v) % p
        if new:
            row[c] = new
        else:
            row.pop(c, None)


def _round(value: int, base: int) -> int:
    """Nearest multiple of ``base``, halves upward (counts are never negative)."""
    return (value + base // 2) // base * base
