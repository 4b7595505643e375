"""Disclosure control on a prefecture-sized table against building the same table unprotected.

    .venv/bin/python bench/disclosure.py [--municipalities 60] [--runs 20] [--k 10]

The table is the one the prefecture page asks for most: municipality × grade (school type >
grade) × three categories, leaf counts drawn at random, half of them small (0–12) so that
primary and complementary suppression and both audits have work to do. Times, warm, over
``--runs`` runs:

* ``protect_table`` - margins, primary and complementary suppression, linear and bound audits;
* the baseline - the same margins summed into the same cells with nothing withheld, i.e. what
  publishing the table would cost without disclosure control;

and prints p50/p95 of both and their ratio. Pure Python, no database.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

from renkei.platform.disclosure import Cell, Dimension, protect_table

GRADES = ("E1", "E2", "E3", "E4", "E5", "E6", "J1", "J2", "J3")


def unprotected_table(counts, dims) -> dict:
    """The baseline: every margin summed from the leaves, every cell released."""
    values: dict = {}
    for leaf_key in itertools.product(*(dim.leaves for dim in dims)):
        value = counts.get(leaf_key, 0)
        chains = (dim.ancestors(code) for code, dim in zip(leaf_key, dims, strict=True))
        for key in itertools.product(*chains):
            values[key] = values.get(key, 0) + value
    return {key: Cell(key, value, False, None) for key, value in values.items()}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def timed(function, runs: int) -> list[float]:
    function()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--municipalities", type=int, default=60)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    rng = random.Random(20250401)
    municipality = Dimension("municipality", tuple(f"M{i:02d}" for i in range(args.municipalities)))
    grade = Dimension("grade", GRADES, {g: g[0] for g in GRADES})
    category = Dimension("category", ("a", "b", "c"))
    dims = [municipality, grade, category]
    counts = {
        key: rng.choice([rng.randint(0, 12), rng.randint(0, 300)])
        for key in itertools.product(*(d.leaves for d in dims))
    }

    table = protect_table(counts, dims, args.k)
    baseline = unprotected_table(counts, dims)
    assert len(table) == len(baseline)
    print(
        f"table: {args.municipalities} municipalities × grade × category = {len(table)} cells, "
        f"{len(table.suppressed)} withheld at k={args.k}"
    )

    protected_ms = timed(lambda: protect_table(counts, dims, args.k), args.runs)
    baseline_ms = timed(lambda: unprotected_table(counts, dims), args.runs)
    for label, values in (("protect_table", protected_ms), ("unprotected", baseline_ms)):
        print(
            f"{label:>14}: p50 {percentile(values, 50):8.1f} ms  "
            f"p95 {percentile(values, 95):8.1f} ms  mean {statistics.mean(values):8.1f} ms"
        )
    print(
        f"ratio protect/unprotected: p50 "
        f"{percentile(protected_ms, 50) / percentile(baseline_ms, 50):.1f}  "
        f"p95 {percentile(protected_ms, 95) / percentile(baseline_ms, 95):.1f}"
    )


if __name__ == "__main__":
    main()
