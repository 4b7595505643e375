"""Asking the municipalities of a prefecture one metric question: transport only.

Local tenants - municipalities in this deployment - are answered together from their
prefecture's release (:func:`renkei.edudata.metrics.compute_prefecture`: the prefecture is
protected as one table, so every municipality's cells and the prefecture's own agree with
what any other entry point releases). Remote tenants - a municipality running its own
Renkei - are asked over HTTP with a signed service token (:mod:`.auth`) and answer with
their own released table. The calls (one for the locals, one per remote) run concurrently on
a few threads; each thread uses its own database connection and closes it when it ends.
Every call has its own time limit (``settings.RENKEI_FEDERATION_TIMEOUT_SECONDS``, also the
PostgreSQL ``statement_timeout`` of local work); one that fails or runs out of time is
reported as missing, with a reason, and the others still answer. The prefecture figures are
put together by :func:`renkei.edudata.metrics.combine_prefecture`.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from opentelemetry import context as otel_context

from renkei.edudata import metrics
from renkei.edudata.metrics import TOTAL, Metric, MetricCell, MetricTable, exact
from renkei.platform import service_tokens, telemetry
from renkei.platform.disclosure import MIN_K
from renkei.tenants.models import Municipality

log = logging.getLogger(__name__)

MAX_WORKERS = 8

OK = "ok"
NO_DATA = "no_data"
FAILED = "failed"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class Target:
    """A municipality to ask: a local tenant (``municipality``) or a remote one (``url``)."""

    code: str
    name: str
    municipality: Municipality | None = None
    url: str | None = None
    # For the one call that answers every local municipality of a prefecture together.
    locals: tuple[Target, ...] = ()
    # Its own time limit, when it differs from the question's (see gather).
    time_limit: float | None = None
    # A remote that sends this prefecture its exact counts (renkei.edudata.metrics.exact).
    trusted: bool = False

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def joint(self) -> bool:
        """Answered from the prefecture's joint release (local, or remote and trusted)."""
        return not self.remote or self.trusted


@dataclass
class Answer:
    """One municipality's answer: its released table, or why there is none."""

    target: Target
    status: str
    table: MetricTable | None = None
    reason: str | None = None
    seconds: float = 0.0
    # The locals' call: every local municipality's table, and the prefecture's (TOTAL).
    tables: dict[str, MetricTable] | None = None


@dataclass
class FederatedTable:
    """A metric over several municipalities: released cells only, plus who answered."""

    metric: Metric
    school_year: int
    dimensions: list[str]
    k: int
    cells: list[MetricCell]
    answers: list[Answer] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        spec: Metric,
        school_year: int,
        breakdown: Sequence[str],
        answers: list[Answer],
        prefecture_part: MetricTable | None,
    ) -> FederatedTable:
        """The released tables put together (renkei.edudata.metrics.combine_prefecture)."""
        remote = [a.table for a in answers if not a.target.joint and a.table is not None]
        municipalities = [a.table for a in answers if a.table is not None]
        dims, cells, k = metrics.combine_prefecture(
            spec, breakdown, prefecture_part, remote, municipalities
        )
        return cls(
            metric=spec, school_year=school_year, dimensions=dims, k=k, cells=cells, answers=answers
        )

    @property
    def missing(self) -> list[Answer]:
        return [a for a in self.answers if a.status in (FAILED, TIMEOUT)]

    @property
    def complete(self) -> bool:
        return not self.missing


# -- who to ask --------------------------------------------------------------------------------


def remote_tenants() -> dict[str, Target]:
    """Remote municipalities from ``settings.RENKEI_FEDERATION_REMOTES``
    (:func:`renkei.edudata.metrics.exact.remote_entries`)."""
    return {
        e["code"]: Target(
            code=e["code"],
            name=str(e.get("name") or e["code"]),
            url=e["url"],
            trusted=e.get("trusted") is True,
        )
        for e in exact.remote_entries()
    }


def prefecture_targets(prefecture_code: str) -> list[Target]:
    """Every municipality of the prefecture, local and remote, in code order. A code that is
    configured as remote is asked remotely even if a local row exists."""
    remotes = {c: t for c, t in remote_tenants().items() if c.startswith(prefecture_code)}
    local = (
        Municipality.objects.filter(prefecture_id=prefecture_code)
        .exclude(code__in=list(remotes))
        .select_related("prefecture")
        .order_by("code")
    )
    targets = [Target(code=m.code, name=m.name, municipality=m) for m in local]
    targets += list(remotes.values())
    return sorted(targets, key=lambda t: t.code)


def municipality_target(code: str) -> Target | None:
    """The target for one municipality code, or None when it is not known here."""
    remote = remote_tenants().get(code)
    if remote is not None:
        return remote
    municipality = Municipality.objects.select_related("prefecture").filter(code=code).first()
    if municipality is None:
        return None
    return Target(code=municipality.code, name=municipality.name, municipality=municipality)


# -- asking ------------------------------------------------------------------------------------


def ask(
    targets: Sequence[Target],
    metric: str,
    school_year: int,
    breakdown: Sequence[str],
    *,
    prefecture_code: str,
    timeout: float | None = None,
    runner: Callable[..., MetricTable] | None = None,
) -> list[Answer]:
    """Ask every target concurrently; one Answer per target, in the targets' order.

    Up to MAX_WORKERS threads (named ``federation_<n>``) take targets from a shared queue;
    each uses one database connection for all the targets it takes, so a question costs a
    few connections, not one per municipality. The threads belong to the question and close
    their connections when it ends, unless Django keeps connections (``CONN_MAX_AGE`` > 0),
    in which case long-lived workers keep theirs warm between questions. Every target
    has its own time limit, counted from when a thread starts on it; targets still waiting
    when every batch could have used its full time are given up too. A thread stuck on a
    late target finishes on its own (local work is cut by ``statement_timeout``, remote calls
    by the HTTP timeout) and its answer is dropped.

    ``runner(target, metric, school_year, breakdown, prefecture_code, timeout)`` computes
    one table; the default runs local tenants in their schema and calls remote ones.
    """
    timeout = float(timeout if timeout is not None else settings.RENKEI_FEDERATION_TIMEOUT_SECONDS)
    runner = runner or run_target
    if not targets:
        return []
    with telemetry.span(
        "renkei.federation.query", metric=metric, **{"renkei.prefecture.code": prefecture_code}
    ) as query_span:
        answers = _Fanout(
            targets,
            runner,
            (metric, school_year, tuple(breakdown), prefecture_code, timeout),
            timeout,
        ).run()
        query_span.set_attribute(
            "renkei.federation.partial", any(a.status in (FAILED, TIMEOUT) for a in answers)
        )
    return answers


class _Fanout:
    """The bookkeeping of one :func:`ask`: which target started when, and the answers."""

    def __init__(
        self,
        targets: Sequence[Target],
        runner: Callable[..., MetricTable],
        arguments: tuple,
        timeout: float,
    ):
        self.targets, self.runner, self.arguments, self.timeout = (
            targets,
            runner,
            arguments,
            timeout,
        )
        self.workers = min(MAX_WORKERS, len(targets))
        self.started: dict[int, float] = {}
        self.answers: dict[int, Answer] = {}
        self.given_up = False
        self.changed = threading.Condition()
        self.parent = otel_context.get_current()  # threads do not inherit the trace context

    def limit(self, i: int) -> float:
        return self.targets[i].time_limit or self.timeout

    def run(self) -> list[Answer]:
        t0 = time.monotonic()
        # Nobody waits longer than every batch taking the full time, plus one.
        longest = max(self.limit(i) for i in range(len(self.targets)))
        hard_deadline = t0 + longest * (math.ceil(len(self.targets) / self.workers) + 1)
        if _keeps_connections():
            pool = _pool()
            for i in range(len(self.targets)):
                pool.submit(lambda i=i: self.job(i))
        else:
            pending: queue.SimpleQueue[int] = queue.SimpleQueue()
            for i in range(len(self.targets)):
                pending.put(i)
            for n in range(self.workers):
                threading.Thread(
                    target=self._drain, args=(pending,), name=f"federation_{n}", daemon=True
                ).start()
        with self.changed:
            while len(self.answers) < len(self.targets):
                now = time.monotonic()
                for i in range(len(self.targets)):
                    if i in self.answers:
                        continue
                    began = self.started.get(i)
                    limit = self.limit(i)
                    if (began is not None and now >= began + limit) or now >= hard_deadline:
                        self.answers[i] = Answer(
                            self.targets[i],
                            TIMEOUT,
                            reason=(f"{limit:g} 秒以内に応答がありませんでした。"),
                            seconds=now - (began or t0),
                        )
                        log.warning(
                            "federation: %s timed out after %.1f s", self.targets[i].code, limit
                        )
                if len(self.answers) == len(self.targets):
                    break
                deadlines = [
                    self.started[i] + self.limit(i) if i in self.started else hard_deadline
                    for i in range(len(self.targets))
                    if i not in self.answers
                ]
                self.changed.wait(max(0.001, min(deadlines) - now))
            self.given_up = True
        return [self.answers[i] for i in range(len(self.targets))]

    def _drain(self, pending: queue.SimpleQueue[int]) -> None:
        """A thread of its own for this question: targets until none is left, one
        connection for all of them, closed at the end."""
        try:
            while not self.given_up:
                try:
                    i = pending.get_nowait()
                except queue.Empty:
                    return
                self.job(i)
        finally:
            connection.close()

    def job(self, i: int) -> None:
        """Answer target ``i`` on the current thread (and its connection)."""
        target = self.targets[i]
        with self.changed:
            if self.given_up or i in self.answers:
                return  # given up on while it waited
            self.started[i] = time.monotonic()
            self.changed.notify()  # its deadline is now known
        if target.locals:  # the prefecture's local municipalities, from one release
            span = telemetry.span(
                "renkei.federation.locals",
                parent=self.parent,
                **{
                    "renkei.prefecture.code": target.code,
                    "renkei.federation.municipalities": len(target.locals),
                },
            )
        else:
            span = telemetry.tenant_span(target.code, remote=target.remote, parent=self.parent)
        with span:
            try:
                answer = _answer(target, self.runner(target, *self.arguments))
            except Exception as e:
                answer = _failure(target, e)
        with self.changed:
            if i not in self.answers:  # a late answer is dropped
                answer.seconds = time.monotonic() - self.started[i]
                self.answers[i] = answer
            self.changed.notify()


def _keeps_connections() -> bool:
    """Worker connections outlive a question only where Django keeps connections anyway
    (``CONN_MAX_AGE`` > 0, the production setting): a fresh PostgreSQL backend has to load
    the catalog entries of every tenant table it touches, which costs more than the query.
    With the default 0 (tests, the demo) each question's threads close theirs at the end."""
    return bool(settings.DATABASES["default"].get("CONN_MAX_AGE"))


class _Pool:
    """Long-lived worker threads (``federation_<n>``) with a connection each.

    A thread closes its connection when Django would (``close_if_unusable_or_obsolete``:
    older than CONN_MAX_AGE, or broken), when it has been idle for IDLE_SECONDS, and when it
    ends (:func:`shutdown_pool`, or the process exits).
    """

    IDLE_SECONDS = 30.0

    def __init__(self, size: int):
        self.size = size
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            for n in range(len(self.threads), self.size):
                thread = threading.Thread(target=self._loop, name=f"federation_{n}", daemon=True)
                thread.start()
                self.threads.append(thread)
        self.jobs.put(job)

    def _loop(self) -> None:
        try:
            while True:
                try:
                    job = self.jobs.get(timeout=self.IDLE_SECONDS)
                except queue.Empty:
                    connection.close()  # idle: give the backend back
                    continue
                if job is None:
                    return
                connection.close_if_unusable_or_obsolete()
                try:
                    job()
                except Exception as e:  # job() answers for its own errors; this is a backstop
                    log.error("federation: worker job failed (%s)", type(e).__name__)
        finally:
            connection.close()

    def shutdown(self, timeout: float = 5.0) -> None:
        with self.lock:
            threads, self.threads = self.threads, []
        for _ in threads:
            self.jobs.put(None)
        for thread in threads:
            thread.join(timeout)


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _Pool(MAX_WORKERS)
            atexit.register(shutdown_pool)
        return _POOL


def shutdown_pool() -> None:
    """Stop the long-lived workers and close their connections (tests, process exit)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown()


def _failure(target: Target, error: Exception) -> Answer:
    if isinstance(error, RemoteError):
        log.warning("federation: remote %s failed: %s", target.code, error)
        return Answer(target, FAILED, reason=str(error))
    # The caller gets a plain reason. The log gets the type and where it happened, not the
    # message: database errors can quote row values, and no log line may hold personal data.
    log.error(
        "federation: %s failed (%s) at\n%s",
        target.code,
        type(error).__name__,
        "".join(traceback.format_tb(error.__traceback__)),
    )
    return Answer(target, FAILED, reason="この自治体での集計中にエラーが発生しました。")


def _answer(target: Target, table: MetricTable | dict[str, MetricTable]) -> Answer:
    if isinstance(table, dict):
        return Answer(target, OK, tables=table)
    if table.cells:
        return Answer(target, OK, table=table)
    return Answer(target, NO_DATA, table=table, reason="この年度の集計対象データがありません。")


def run_target(
    target: Target,
    metric: str,
    school_year: int,
    breakdown: Sequence[str],
    prefecture_code: str,
    timeout: float,
) -> MetricTable | dict[str, MetricTable]:
    """A remote municipality's released table over HTTP; or, for the locals' call, every
    local municipality's table and the prefecture's, from the prefecture's release."""
    if target.remote:
        return fetch_remote(target, metric, school_year, breakdown, prefecture_code, timeout)
    with connection.cursor() as cursor:
        # Local work obeys the same limit (session-level: every local task sets it).
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false)",
            [f"{int((target.time_limit or timeout) * 1000)}ms"],
        )
    locals_ = target.locals or (target,)
    return metrics.compute_prefecture(
        metric,
        prefecture_code,
        school_year=school_year,
        breakdown=breakdown,
        municipalities=[t.code for t in locals_],
    )


def gather(
    targets: Sequence[Target],
    metric: str,
    school_year: int,
    breakdown: Sequence[str],
    *,
    prefecture_code: str,
    timeout: float | None = None,
) -> tuple[list[Answer], MetricTable | None]:
    """Ask every target: the joint ones (local, or remote and trusted) in one call, each
    other remote in its own. Returns one Answer per target (in the targets' order) and the
    prefecture's table over the joint ones (None when there are none or their call failed)."""
    local = tuple(t for t in targets if t.joint)
    calls = [t for t in targets if not t.joint]
    if local:
        # Making a release anew (after a change, when no warm-up did it) protects the whole
        # prefecture's table: it gets the release limit, not one remote call's.
        limit = max(
            float(timeout or settings.RENKEI_FEDERATION_TIMEOUT_SECONDS),
            settings.RENKEI_RELEASE_TIMEOUT_SECONDS,
        )
        calls.insert(0, Target(code=prefecture_code, name="", locals=local, time_limit=limit))
    by_code: dict[str, Answer] = {}
    prefecture_part = None
    for answer in ask(
        calls, metric, school_year, breakdown, prefecture_code=prefecture_code, timeout=timeout
    ):
        if not answer.target.locals:
            by_code[answer.target.code] = answer
            continue
        if answer.tables is None:  # the locals' call failed or ran out of time
            for t in local:
                by_code[t.code] = Answer(
                    t, answer.status, reason=answer.reason, seconds=answer.seconds
                )
            continue
        prefecture_part = answer.tables.get(TOTAL)
        for t in local:
            table = answer.tables.get(t.code)
            if table is not None:
                by_code[t.code] = _answer(t, table)
            elif t.trusted:  # never heard from: not part of the release
                by_code[t.code] = Answer(
                    t,
                    FAILED,
                    reason="正確な件数を受け取れませんでした（接続できないか、応答が不正です）。",
                )
            else:
                by_code[t.code] = Answer(
                    t, NO_DATA, reason="この年度の集計対象データがありません。"
                )
    return [by_code[t.code] for t in targets], prefecture_part


class RemoteError(Exception):
    """A remote tenant did not give a usable answer; the message says why (Japanese)."""


def tenant_request(
    code: str, metric: str, school_year: int, breakdown: Sequence[str]
) -> dict[str, Any]:
    """The body of a request to a remote tenant (what the service token is bound to)."""
    return {
        "municipality": code,
        "metric": metric,
        "school_year": int(school_year),
        "breakdown": sorted(breakdown),
    }


def _remote_refusal(data) -> str:
    """The message of a remote refusal: {"errors": [{"message"}]}, or {"error"} from
    deployments older than the one error format."""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:200] or "応答が不正です"
        if data.get("error"):
            return str(data["error"])[:200]
    return "応答が不正です"


def fetch_remote(
    target: Target,
    metric: str,
    school_year: int,
    breakdown: Sequence[str],
    prefecture_code: str,
    timeout: float,
) -> MetricTable:
    """POST the question to the remote deployment with a service token; check the answer."""
    body = tenant_request(target.code, metric, school_year, breakdown)
    token = service_tokens.issue_service_token(
        target.code, prefecture_code=prefecture_code, digest=service_tokens.request_digest(body)
    )
    assert target.url is not None
    try:
        response = requests.post(
            target.url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise RemoteError(f"{timeout:g} 秒以内に応答がありませんでした。") from None
    except requests.RequestException as e:
        raise RemoteError(f"接続できませんでした（{type(e).__name__}）。") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200:
        raise RemoteError(f"HTTP {response.status_code}: {_remote_refusal(data)}")
    try:
        table = MetricTable.from_json(data)
    except (KeyError, TypeError, ValueError):
        raise RemoteError("応答の形式が不正です。") from None
    if (
        table.municipality_code != target.code
        or table.metric != metric
        or table.school_year != int(school_year)
    ):
        raise RemoteError("応答が照会した自治体・指標・年度と一致しません。")
    return _distrust(table)


def _distrust(table: MetricTable) -> MetricTable:
    """A remote table as we accept it: k below the floor, or a released cell of fewer than
    k pupils, is treated as suppressed (a misconfigured remote must not leak through us)."""
    k = max(table.k, MIN_K)
    table.k = k
    for cell in table.cells:
        if not cell.suppressed and (cell.pupils is None or cell.value is None or cell.pupils < k):
            log.error(
                "federation: remote %s released a cell under k; withheld", table.municipality_code
            )
            cell.suppressed, cell.value, cell.numerator, cell.pupils = True, None, None, None
            cell.reason_code = metrics.SUPPRESSED
            cell.reason = metrics.REASON_LABELS[metrics.SUPPRESSED]
    return table
