"""Helpers of the differencing batteries (tests/edudata/test_metrics.py and the federation
tests): the absence-day bins of the metrics, and an exact check that no withheld figure lies
in the span of the released ones."""

from __future__ import annotations

import heapq
from collections import defaultdict

from renkei.edudata.metrics import TOTAL


def absence_bin(y):
    total = y["ill"] + y["acc"] + y["oth"]
    if total >= 30:
        if y["ill"] >= y["acc"] and y["ill"] >= y["oth"]:
            return "30+:illness"
        return "30+:accident" if y["acc"] >= y["oth"] else "30+:other"
    return "10-29" if total >= 10 else "1-9" if total >= 1 else "0"


def in_grade(grade_leaf, code):
    """Whether grade leaf ``grade_leaf`` is under ``code`` (a leaf, a school type or TOTAL)."""
    return code in (TOTAL, grade_leaf) or ("-" not in code and grade_leaf.startswith(code + "-"))


LONG_TERM_BINS = {
    "long_term": {"30+:illness", "30+:accident", "30+:other"},
    "illness": {"30+:illness"},
    "accident": {"30+:accident"},
    "other": {"30+:other"},
    "not_long_term": {"0", "1-9", "10-29"},
}
DISTRIBUTION_BINS = {
    "0": {"0"},
    "1-9": {"1-9"},
    "10-29": {"10-29"},
    "30+": {"30+:illness", "30+:accident", "30+:other"},
}
ALL_BINS = {"0", "1-9", "10-29", "30+:illness", "30+:accident", "30+:other"}


class Span:
    """Row space of integer vectors over GF(p), p = 2^61 - 1.

    "Not in the span over GF(p)" implies "not in the span over the rationals" (a rational
    combination reduces mod p), so asserting a withheld figure is outside this span is sound.
    """

    P = (1 << 61) - 1

    def __init__(self):
        self.rows: dict[int, dict[int, int]] = {}

    def _reduce(self, vector: dict[int, int]) -> dict[int, int]:
        vec = {c: v % self.P for c, v in vector.items() if v % self.P}
        heap = list(vec)
        heapq.heapify(heap)
        while heap:
            col = heapq.heappop(heap)
            if col not in vec or col not in self.rows:
                continue
            factor = vec[col]
            for c, v in self.rows[col].items():
                new = (vec.get(c, 0) - factor * v) % self.P
                if new:
                    if c not in vec:
                        heapq.heappush(heap, c)
                    vec[c] = new
                else:
                    vec.pop(c, None)
        return vec

    def add(self, vector: dict[int, int]) -> None:
        rest = self._reduce(vector)
        if rest:
            pivot = min(rest)
            inverse = pow(rest[pivot], self.P - 2, self.P)
            self.rows[pivot] = {c: v * inverse % self.P for c, v in rest.items()}

    def contains(self, vector: dict[int, int]) -> bool:
        return not self._reduce(vector)


class Battery:
    """Released figures and withheld figures, per quantity, as sets of atoms."""

    def __init__(self):
        self.atom_ids: dict[tuple, int] = {}
        self.released: dict[str, list[frozenset]] = defaultdict(list)
        self.withheld: dict[str, list[tuple[frozenset, object]]] = defaultdict(list)

    def figure(self, quantity: str, atoms, value, what) -> None:
        atoms = frozenset(atoms)
        if not atoms:
            return
        if value is None:
            self.withheld[quantity].append((atoms, what))
        else:
            self.released[quantity].append(atoms)

    def leaks(self) -> list:
        found = []
        for quantity, withheld in self.withheld.items():
            span = Span()
            for atoms in set(self.released[quantity]):
                span.add({self._id(a): 1 for a in atoms})
            for atoms, what in withheld:
                if span.contains({self._id(a): 1 for a in atoms}):
                    found.append((quantity, what))
        return found

    def _id(self, atom) -> int:
        return self.atom_ids.setdefault(atom, len(self.atom_ids))
