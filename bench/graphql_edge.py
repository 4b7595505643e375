"""What the request edge (renkei/graphql/edge.py) costs against the GraphQL work it guards.

    .venv/bin/python bench/graphql_edge.py [--runs 2000]

For each document the widgets send (class board, pupil board, metric table), times, warm:

* the edge - read the body, decode, JSON with nesting and control-character checks, parse with
  the token limit, fragment nesting;
* the baseline - what graphene does with the same document anyway: parse and validate it
  against the tenant schema with the API's validation rules (no database).

and prints p50 of both and their ratio. No database is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
os.environ.setdefault("DATABASE_URL", "postgresql://bench@127.0.0.1:1/unused")  # never used
django.setup()

from django.test import RequestFactory  # noqa: E402
from graphql import parse, validate  # noqa: E402

from renkei.graphql import edge  # noqa: E402
from renkei.graphql.tenant import validation  # noqa: E402
from renkei.graphql.tenant.schema import schema  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "renkei/graphql/widgets/src"


def widget_queries() -> dict[str, str]:
    found = {}
    for path in sorted(SRC.glob("*.js")):
        for n, match in enumerate(re.finditer(r"`(\s*query[^`]*)`", path.read_text())):
            if "%" not in match.group(1):  # the federation template is filled in at run time
                found[f"{path.stem}#{n}"] = match.group(1)
    return found


def p50(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    factory = RequestFactory()
    rules = validation.rules_for_request(debug=False)
    print(f"{'document':<16} {'edge p50':>10} {'graphene p50':>13} {'ratio':>6}")
    for name, query in widget_queries().items():
        body = json.dumps({"query": query, "variables": {"id": "1", "asOf": "2025-06-05"}})

        def through_edge(body=body):
            request = factory.post("/graphql", data=body, content_type="application/json")
            edge.read_operation(request)

        def baseline(query=query):
            validate(schema.graphql_schema, parse(query), rules)

        ours, theirs = p50(through_edge, args.runs), p50(baseline, args.runs)
        print(f"{name:<16} {ours * 1e6:>8.0f}µs {theirs * 1e6:>11.0f}µs {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
