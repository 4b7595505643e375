"""Helpers of test_fuzz.py: schemathesis-generated GraphQL requests sent over real HTTP, and
the checks every answer must pass (importable: pytest puts this directory on sys.path).

Schemathesis 4's Python API is used directly: the committed SDL is loaded with
``schemathesis.graphql.from_dict`` (SDL → introspection first: the federation SDL uses
``@link``/``@key`` without declaring them), every ``Query`` field becomes an operation, and
``operation.as_strategy(mode)`` draws cases (positive: valid documents; negative: documents
that break the schema's types) in small, derandomized Hypothesis runs, a share of the caller's
budget for each field. ``case.call(base_url=..., session=...)`` sends each one. Argument
values are biased towards the codes, years and metric names that matter here through
schemathesis "dictionaries" (``Config.from_dict``).

A failing case does not stop the run: every problem is recorded with the server's log records
of that request (tracebacks included), and the test fails at the end listing the distinct
problems, one example each.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import graphql
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.graphql import nodes

REPO = Path(__file__).resolve().parents[2]
TENANT_SDL = REPO / "renkei" / "graphql" / "tenant" / "schema.graphql"
FEDERATION_SDL = REPO / "renkei" / "graphql" / "federation" / "schema.graphql"

MUNICIPALITY_CODE = re.compile(r"\d{6}")
PREFECTURE_CODE = re.compile(r"\d{2}")


# -- loading the schemas --------------------------------------------------------------------


def _name(value: str) -> graphql.NameNode:
    return graphql.NameNode(value=value)


def _representation(typename: str, code: str | None) -> graphql.ObjectValueNode:
    fields = [graphql.ObjectFieldNode(name=_name("__typename"), value=nodes.String(typename))]
    if code is not None:
        fields.append(graphql.ObjectFieldNode(name=_name("code"), value=nodes.String(code)))
    return nodes.Object(fields)


def register_scalars(codes: Iterable[str]) -> None:
    """Strategies for the custom scalars schemathesis has none for (a process-wide registry).

    ``_Any`` is a federation entity representation: the key of a Municipality or Prefecture,
    the code drawn from ``codes`` (other prefectures included) or any text, or missing."""
    code = st.one_of(st.sampled_from(sorted(codes)), st.text(max_size=8), st.none())
    schemathesis.graphql.scalar(
        "_Any",
        st.builds(
            _representation, st.sampled_from(["Municipality", "Prefecture", "Query", "Nope"]), code
        ),
    )
    schemathesis.graphql.scalar("GenericScalar", st.text(max_size=20).map(nodes.String))


def load_schema(
    sdl_path: Path,
    *,
    dictionaries: dict[str, list],
    bindings: dict[str, str],
    probability: float = 0.6,
):
    """The committed SDL as a schemathesis GraphQL schema. ``bindings`` maps
    ``Type.field.argument`` (``*`` for any) to the name of one of ``dictionaries``: that
    argument takes one of the listed values with ``probability`` (positive cases)."""
    built = graphql.build_schema(sdl_path.read_text(encoding="utf-8"), assume_valid_sdl=True)
    config = schemathesis.Config.from_dict(
        {
            "dictionaries": {name: {"values": values} for name, values in dictionaries.items()},
            "parameters": {
                key: {"dictionary": name, "probability": probability}
                for key, name in bindings.items()
            },
        }
    )
    return schemathesis.graphql.from_dict(graphql.introspection_from_schema(built), config=config)


def budgets(schema, total: int) -> list[tuple[object, int]]:
    """Every root field (federation ``_entities``/``_service`` included) with its share of
    ``total`` requests: 1 + its number of arguments each, at least 3. (One run over all of
    them would spend most requests on the first few: Hypothesis favours early branches.)"""
    operations = [schema["Query"][name] for name in schema["Query"]]
    weights = [1 + len(operation.definition.raw.args) for operation in operations]
    return [
        (operation, max(3, round(total * weight / sum(weights))))
        for operation, weight in zip(operations, weights, strict=True)
    ]


# -- the server's log -----------------------------------------------------------------------


class ServerLog(logging.Handler):
    """Every WARNING+ record logged anywhere in this process while installed (the live
    server's threads and the federation's fan-out threads included). Requests are sent one at
    a time and a server logs before it answers, so the records between two marks are the
    ones of that request."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._lock:
            self.lines.append(text)

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.lines[mark:]

    def __enter__(self):
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)


# -- what every answer must be --------------------------------------------------------------


@dataclass
class Answer:
    """One request and what came back."""

    query: str
    status: int
    text: str
    body: dict | None  # the JSON object, if the body was one
    log: list[str] = field(default_factory=list)

    @property
    def data(self):
        return (self.body or {}).get("data")


def shape_problems(answer: Answer) -> list[str]:
    """(i) no 5xx, and no unexpected exception masked as an error of a 200; (ii) a GraphQL
    answer: a JSON object with data or errors, every error with a message and
    extensions.code."""
    problems = []
    if answer.status >= 500:
        problems.append(f"HTTP {answer.status}")
    if answer.body is None:
        problems.append("body is not a JSON object")
        return problems
    if "data" not in answer.body and "errors" not in answer.body:
        problems.append("JSON without data or errors")
    errors = answer.body.get("errors")
    if errors is not None:
        if not isinstance(errors, list) or not errors:
            problems.append("errors is not a non-empty list")
        else:
            for error in errors:
                if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                    problems.append("an error without a message")
                elif not isinstance((error.get("extensions") or {}).get("code"), str):
                    problems.append("an error without extensions.code")
                elif error["extensions"]["code"] == "INTERNAL_SERVER_ERROR":
                    problems.append("INTERNAL_SERVER_ERROR (an unexpected exception, masked)")
    return problems


def strings(value, key: str | None = None) -> Iterable[tuple[str | None, str]]:
    """Every string in a JSON value, with the key it sits under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, key)


def root_fields(query: str) -> list[tuple[str, str, dict]]:
    """(response key, field name, literal arguments) of each root field of the document;
    [] when it does not parse (then the server must not have run it)."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return []
    out = []
    for definition in document.definitions:
        if not isinstance(definition, graphql.OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                args = {}
                for argument in selection.arguments or ():
                    try:
                        args[argument.name.value] = graphql.value_from_ast_untyped(argument.value)
                    except Exception:  # an argument we cannot read is just absent
                        continue
                key = (selection.alias or selection.name).value
                out.append((key, selection.name.value, args))
    return out


# -- one bounded run ------------------------------------------------------------------------


@dataclass
class Problem:
    caller: str
    operation: str
    what: str
    answer: Answer

    def report(self) -> str:
        log = "\n".join(_compact(record) for record in self.answer.log[:5]) or "(nothing logged)"
        shown = (
            json.dumps(self.answer.body, ensure_ascii=False)
            if self.answer.body is not None
            else repr(self.answer.text)
        )
        return (
            f"[{self.caller}] {self.operation}: {self.what}\n"
            f"  query: {self.answer.query!r}\n"
            f"  HTTP {self.answer.status}: {shown[:400]}\n"
            f"  server log:\n    " + log.replace("\n", "\n    ")
        )


def _compact(record: str) -> str:
    """A log record with its traceback cut to our own frames and the exception."""
    lines = record.splitlines()
    if "Traceback (most recent call last):" not in lines:
        return record[:500]
    ours = [
        line.strip()
        for line in lines
        if line.lstrip().startswith("File ") and "/renkei/" in line and "site-packages" not in line
    ]
    return "\n".join([lines[0][:300], *("  " + line for line in ours), lines[-1][:300]])


def _dedup_key(problem: Problem) -> tuple:
    """One bug, one entry: the same complaint with the same exception (type and innermost
    frame of the server's traceback), whichever root field led there."""
    exception = ()
    for record in problem.answer.log:
        if "Traceback" in record:
            frames = re.findall(r'File "([^"]+)", line (\d+)', record)
            last = record.strip().splitlines()[-1]
            exception = (frames[-1] if frames else None, last.split(":")[0])
            break
    return (problem.what, exception)


def fuzz(
    schema,
    *,
    caller: str,
    url: str,
    session: requests.Session,
    check_scope: Callable[[Answer], list[str]],
    max_examples: int,
    server_log: ServerLog,
) -> tuple[list[Problem], int]:
    """Send about ``max_examples`` distinct generated documents, spread over the root fields,
    two thirds valid and one third invalid (derandomized: the same ones every run). Returns
    (the distinct problems found, the number of requests sent)."""
    problems: dict[tuple, Problem] = {}
    sent: set[str] = set()

    def send(case) -> None:
        assume(case.body not in sent)  # a repeat teaches nothing: draw another
        sent.add(case.body)
        mark = server_log.mark()
        response = case.call(base_url=url, session=session, timeout=60)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        answer = Answer(
            query=case.body,
            status=response.status_code,
            text=response.content.decode(errors="replace"),
            body=body if isinstance(body, dict) else None,
            log=server_log.since(mark),
        )
        found = shape_problems(answer)
        if answer.body is not None and isinstance(answer.data, dict):
            found += check_scope(answer)
        for what in found:
            problem = Problem(caller, case.operation.label, what, answer)
            problems.setdefault(_dedup_key(problem), problem)

    for operation, budget in budgets(schema, max_examples):
        negative = budget // 3
        for mode, examples in (
            (schemathesis.GenerationMode.POSITIVE, budget - negative),
            (schemathesis.GenerationMode.NEGATIVE, negative),
        ):
            if examples:
                run = settings(
                    max_examples=examples,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],  # no shrinking: each is a request
                    suppress_health_check=list(HealthCheck),
                )(given(case=operation.as_strategy(mode))(send))
                try:
                    run()
                except Unsatisfiable:  # nothing new to ask (a field without arguments)
                    pass
    return list(problems.values()), len(sent)
