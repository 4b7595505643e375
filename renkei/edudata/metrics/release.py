"""Released tables: protected once per data version, stored, and served to every entry point.

A *release* is one canonical table (``population``, ``month:2025-04``, ...) of one prefecture
and school year, protected as a whole: prefecture > municipality > school x the table's own
dimensions (:mod:`renkei.edudata.metrics` builds it). Its *version* is a digest of what the
table depends on: the ``data_version`` of every municipality of the prefecture's joint
tables - the local ones and the trusted remote ones (:mod:`.exact`) - new at each rollup
refresh and purge, in the same transaction; the k in force; and the protection algorithm.
So:

* the municipality API, the prefecture and municipality fields of the federation,
  ``_entities``, widgets and dashboards all read the same released cells until the data
  under them changes - an analyst gains nothing by asking another field;
* a release is computed once per version: in this process it is kept in memory, other
  processes load it from :class:`~renkei.tenants.models.Release` instead of protecting the
  table again (when two make it at once, the first stored is the one every process serves);
* released figures carry cell-key noise and stay as published while within the published
  tolerance of the truth (:func:`protect`), so one pupil's change shows nowhere.

What is stored holds released figures only. The exact counts a protection needs are read
from the tenants' rollups into this process, used and kept in memory for the next table of
the same version; they are never returned, logged or written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from renkei.edudata.metrics import exact
from renkei.platform import disclosure
from renkei.platform.disclosure import MIN_K, Dimension
from renkei.tenants.context import held_lock

log = logging.getLogger(__name__)

Key = tuple[str, ...]

#: Part of every version: a change in how tables are protected makes every release anew.
ALGORITHM = "joint-sticky-5"

#: Reason of a withheld cell in a release. Whether a cell was withheld for being small or to
#: protect another is not kept: the distinction would give an attacker bounds.
WITHHELD = "suppressed"
NO_DATA = "no_data"


@dataclass(frozen=True)
class Member:
    """A municipality of the prefecture's joint tables, as of this question: local (its
    schema here), or remote and trusted with its exact counts (``url``, :mod:`.exact`)."""

    code: str
    schema_name: str
    data_version: int
    k: int
    url: str | None = None
    #: School years the municipality has closed: their tables are made from the counts
    #: kept at closing (edudata.FrozenCounts), whatever its data version says.
    closed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Scope:
    """The municipalities whose data one prefecture's releases are made of."""

    prefecture_code: str
    members: tuple[Member, ...]

    @cached_property  # asked for every table and cell family of a question
    def k(self) -> int:
        """The largest k of the prefecture's municipalities: one table has one threshold,
        and a municipality that raised its k is protected by it at every level."""
        return max([MIN_K, *(m.k for m in self.members)])

    @cached_property
    def version(self) -> str:
        """Everything the prefecture's answers depend on (the federation's answer cache)."""
        return _digest(
            [ALGORITHM, self.k, *((m.code, m.data_version, sorted(m.closed)) for m in self.members)]
        )

    def version_for(self, school_year: int) -> str:
        """What one school year's tables depend on: a municipality that closed the year
        counts by its frozen counts, not by its data version, so a change of its data after
        closing makes no new release of that year (docs/disclosure.md, closed school years)."""
        return _digest(
            [
                ALGORITHM,
                self.k,
                *(
                    (m.code, "closed" if school_year in m.closed else m.data_version)
                    for m in self.members
                ),
            ]
        )

    def closed(self, school_year: int) -> bool:
        """Whether every municipality of the prefecture has closed the year: its releases
        are then final and kept."""
        return bool(self.members) and all(school_year in m.closed for m in self.members)

    def member(self, code: str) -> Member | None:
        return next((m for m in self.members if m.code == code), None)


def _digest(state: list) -> str:
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()


def remote_codes() -> frozenset[str]:
    """Municipality codes answered by their own deployment (RENKEI_FEDERATION_REMOTES): not
    local members; only the trusted ones join the joint tables (:func:`scope_for`)."""
    return frozenset(e["code"] for e in exact.remote_entries())


def scope_for(prefecture_code: str, *, include: str | None = None) -> Scope:
    """The prefecture's local municipalities with their data versions and k (one query),
    and its trusted remote ones (their versions asked over HTTP, :func:`exact.versions`).

    ``include``: a municipality answered here although the federation settings name it as
    remote (a deployment asked for its own municipality's table by a prefecture elsewhere).
    """
    from django.contrib.postgres.aggregates import ArrayAgg

    from renkei.tenants.models import Municipality

    remote = remote_codes() - {include}
    rows = (
        Municipality.objects.filter(prefecture_id=prefecture_code)
        .exclude(code__in=list(remote))
        .order_by("code")
        .annotate(closed=ArrayAgg("closed_school_years__school_year", default=[]))
        .values_list("code", "schema_name", "data_version", "min_cell_size", "closed")
    )
    members = [
        Member(c, s, int(v), int(k), closed=frozenset(y for y in closed if y is not None))
        for c, s, v, k, closed in rows
    ]
    members += [
        Member(c, "", v, k, url=url)
        for c, v, k, url in exact.versions(prefecture_code, exclude=include)
    ]
    return Scope(prefecture_code, tuple(sorted(members, key=lambda m: m.code)))


@dataclass(frozen=True)
class Protected:
    """One released table: which cells are released and their figures.

    ``values`` and ``measures`` hold released cells only (withheld cells are absent), so
    this object can be stored and served as it is. ``primary`` counts the cells below k
    (the least any protection must withhold); ``withheld`` all cells withheld. ``inputs``
    is the digest of what it was protected from (:func:`protect`).
    """

    dims: tuple[Dimension, ...]
    released: frozenset[Key]
    cells: frozenset[Key]
    values: Mapping[Key, int]
    measures: Mapping[str, Mapping[Key, int]]
    primary: int
    withheld: int
    inputs: str = ""

    def count(self, key: Key) -> disclosure.Cell:
        return self._cell(key, self.values.get(key))

    def measure(self, name: str, key: Key) -> disclosure.Cell:
        return self._cell(key, self.measures.get(name, {}).get(key))

    def _cell(self, key: Key, value: int | None) -> disclosure.Cell:
        if key not in self.cells:
            # Not a cell of this table (a school that did not take part): nothing to release.
            return disclosure.Cell(key, None, True, NO_DATA)
        if key in self.released:
            return disclosure.Cell(key, int(value or 0), False, None)
        return disclosure.Cell(key, None, True, WITHHELD)

    def to_json(self) -> dict[str, Any]:
        return {
            "dims": [[d.name, list(d.leaves), dict(d.parents)] for d in self.dims],
            "released": {_join(k): self.values.get(k, 0) for k in self.released},
            "measures": {
                name: {_join(k): v for k, v in values.items()}
                for name, values in self.measures.items()
            },
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], primary: int, withheld: int, inputs: str = ""
    ) -> Protected:
        dims = tuple(
            Dimension(name, tuple(leaves), parents) for name, leaves, parents in data["dims"]
        )
        released = {_split(k): int(v) for k, v in data["released"].items()}
        return cls(
            dims=dims,
            released=frozenset(released),
            cells=_all_cells(dims),
            values=released,
            measures={
                name: {_split(k): int(v) for k, v in values.items()}
                for name, values in data["measures"].items()
            },
            primary=primary,
            withheld=withheld,
            inputs=inputs,
        )


def _join(key: Key) -> str:
    return "\x1f".join(key)


def _split(text: str) -> Key:
    return tuple(text.split("\x1f"))


def _all_cells(dims: Sequence[Dimension]) -> frozenset[Key]:
    return frozenset(itertools.product(*(d.codes for d in dims)))


def protect(
    name: str,
    dims: Sequence[Dimension],
    k: int,
    counts: Mapping[Key, int],
    measures: Mapping[str, Mapping[Key, int]],
    structural: frozenset[Key],
    insensitive: frozenset[Key] = frozenset(),
    previous: Protected | None = None,
    published: frozenset[Key] = frozenset(),
    one_pupil: Callable[[str, Key], int] | None = None,
    withheld: frozenset[Key] = frozenset(),
) -> Protected:
    """Protect one table and keep its released figures only, perturbed.

    Suppression (disclosure.protect_table) decides which cells are released, on the exact
    counts, so that no withheld cell can be recovered even from exact figures. Every
    released figure is then perturbed (:func:`perturbed`), which only widens what an
    attacker can infer. A figure the ``previous`` release of this table published stays as
    it was while it is within STICKY_BOUND of the truth: one pupil's opt-out, a late record
    or a transfer moves a count by one, which no released figure shows, so comparing the
    releases before and after tells nothing about that pupil. ``measures`` are sums over
    the same leaves as ``counts`` (days attended, visits), released where the count is.
    ``published`` cells are released by a linked table already, ``withheld`` ones withheld
    by it (see disclosure).
    ``one_pupil(measure, key)`` is the most one pupil can add to a measure at a cell (the
    school days of its months, for days): a published magnitude stays while within that
    plus the noise of the truth.

    When ``previous`` was protected from the very same inputs, it is the answer as it is:
    after a push, most of a prefecture's tables get a new version (any municipality's data
    changed) but not new figures (another municipality's, another month's or another school
    year's did), and protecting them again would cost the CPU the pages need for nothing.
    """
    counts = {key: int(v) for key, v in counts.items() if v}
    # Everything below reads but the previous release (one_pupil by its values at every
    # cell of every measure), and the algorithm: equal digests make equal releases.
    inputs = _digest(
        [
            ALGORITHM,
            name,
            [[d.name, list(d.leaves), sorted(d.parents.items())] for d in dims],
            k,
            sorted(counts.items()),
            [[m, sorted((c, int(v)) for c, v in measures[m].items())] for m in sorted(measures)],
            *(sorted(keys) for keys in (structural, insensitive, published, withheld)),
            [[m, sorted((c, one_pupil(m, c)) for c in _all_cells(dims))] for m in sorted(measures)]
            if one_pupil is not None
            else [],
        ]
    )
    if previous is not None and previous.inputs == inputs:
        return previous
    table = disclosure.protect_table(
        counts,
        dims,
        k,
        structural_zeros=structural,
        insensitive=insensitive,
        published=published,
        withheld=withheld,
    )
    released = frozenset(c.key for c in table if not c.suppressed)

    def publish(measure: str, key: Key, value: int, floor: int = 0) -> int:
        before = (
            (previous.measures.get(measure, {}) if measure else previous.values).get(key)
            if previous is not None
            else None
        )
        bound = STICKY_BOUND * MEASURE_STEP.get(measure, 1)
        if measure and one_pupil is not None:
            bound = max(bound, NOISE_BOUND * MEASURE_STEP.get(measure, 1) + one_pupil(measure, key))
        if before is not None and before >= floor and abs(before - value) <= bound:
            return before
        return perturbed(name, measure, key, value, floor=floor)

    values = {
        c.key: publish("", c.key, c.value, floor=k) if c.value >= k else c.value
        for c in table
        if not c.suppressed
    }
    totals = {m: margins(v, dims) for m, v in measures.items()}
    kept = {m: {key: publish(m, key, totals[m].get(key, 0)) for key in released} for m in measures}
    if "attended" in kept and "required" in kept:  # a rate of at most 100 %
        kept["attended"] = {
            key: min(v, kept["required"][key]) for key, v in kept["attended"].items()
        }
    primary = sum(1 for c in table if c.reason == disclosure.PRIMARY)
    return Protected(
        dims=tuple(dims),
        released=released,
        cells=frozenset(table.cells),
        values=values,
        measures=kept,
        primary=primary,
        withheld=len(table.suppressed),
        inputs=inputs,
    )


# -- cell-key perturbation ----------------------------------------------------------------

#: Noise added to a released count: (noise, probability). Small and rarely at its bounds:
#: an attacker who compares two releases learns a pupil's contribution to a cell only when
#: both noises sit at opposite bounds (probability 0.0025 ** 2).
NOISE: tuple[tuple[int, float], ...] = (
    (0, 0.505),
    (1, 0.22),
    (-1, 0.22),
    (2, 0.025),
    (-2, 0.025),
    (3, 0.0025),
    (-3, 0.0025),
)
#: The largest noise of a count when it is drawn.
NOISE_BOUND = 3
#: How far a published count may be from the truth before it is drawn again: the tolerance
#: published in docs/disclosure.md (magnitudes: times their step). Larger than the noise, so
#: that changes of a pupil or two never show.
STICKY_BOUND = NOISE_BOUND + 2
#: Magnitudes are perturbed in steps as large as one pupil's contribution can be: the
#: days of one month (required, attended) move by up to NOISE_BOUND x 8 days.
MEASURE_STEP = {"required": 8, "attended": 8, "visits": 2}


def perturbed(table: str, measure: str, key: Key, value: int, *, floor: int = 0) -> int:
    """A released figure plus its noise (ABS cell-key method).

    The noise is drawn from :data:`NOISE` by a keyed hash of the table, the cell and its
    true value: the same cell with the same pupils always gets the same noise (asking
    again, or another entry point, averages nothing away), and a change of one pupil draws
    a new one. A count at or above k is never released below k; a zero by definition (a
    grade a school does not have) stays 0.
    """
    if value < floor or (value == 0 and not measure):
        return value  # a structural zero, or an insensitive cell (never shown as a count)
    secret = hashlib.sha256(b"renkei-cell-key:" + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(
        secret, f"{table}|{measure}|{_join(key)}|{value}".encode(), hashlib.sha256
    ).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    noise, acc = 0, 0.0
    for n, probability in NOISE:
        acc += probability
        if u < acc:
            noise = n
            break
    return max(floor, value + noise * MEASURE_STEP.get(measure, 1))


def margins(counts: Mapping[Key, int], dims: Sequence[Dimension]) -> dict[Key, int]:
    """Every cell's sum over its leaves."""
    values: dict[Key, int] = {}
    for leaf, value in counts.items():
        if not value:
            continue
        chains = (d.ancestors(code) for code, d in zip(leaf, dims, strict=True))
        for key in itertools.product(*chains):
            values[key] = values.get(key, 0) + value
    return values


# -- the store ------------------------------------------------------------------------------

_MEMORY: OrderedDict[tuple, Any] = OrderedDict()
_MEMORY_LOCK = threading.Lock()
_MEMORY_SIZE = 512
_MAKING: dict[tuple, threading.Lock] = {}  # keys being made now, and who makes them


def remember(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()`` once per key in this process (LRU). Used for releases and for the exact
    rows a version's releases are computed from (in memory only).

    Callers that ask for the same key while it is being made wait for that one ``make()``
    instead of making it again: after an import every board and query of the prefecture asks
    for the new version at once, and each making it would hold a server thread for seconds."""
    with _MEMORY_LOCK:
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            return _MEMORY[key]
        making = _MAKING.setdefault(key, threading.Lock())
    with making:
        with _MEMORY_LOCK:
            if key in _MEMORY:  # made while this caller waited
                _MEMORY.move_to_end(key)
                return _MEMORY[key]
        try:
            value = make()
            with _MEMORY_LOCK:
                _MEMORY[key] = value
                while len(_MEMORY) > _MEMORY_SIZE:
                    _MEMORY.popitem(last=False)
        finally:
            with _MEMORY_LOCK:
                _MAKING.pop(key, None)
    return value


def forget() -> None:
    """Drop what this process remembers (tests and benchmarks that want a cold start)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


def released_table(
    scope: Scope, table: str, school_year: int, make: Callable[[Protected | None], Protected]
) -> Protected:
    """The release of ``table`` for this scope's version of the year: remembered, stored,
    or made now."""
    version = scope.version_for(school_year)
    return remember(
        ("release", scope.prefecture_code, table, school_year, version),
        lambda: _load_or_make(scope, table, school_year, version, make),
    )


def _load_or_make(
    scope: Scope,
    table: str,
    school_year: int,
    version: str,
    make: Callable[[Protected | None], Protected],
) -> Protected:
    """The stored release of this version; else one made now from the data and the latest
    stored release of the table (whose figures carry over where still true enough), by one
    process at a time (_one_process_at_a_time)."""

    def stored() -> Protected | None:
        row = _stored(scope.prefecture_code, table, school_year, version)
        return row.protected if row is not None else None

    def made() -> Protected:
        previous = _stored(scope.prefecture_code, table, school_year)
        protected = make(previous.protected if previous is not None else None)
        if previous is not None and protected is previous.protected:
            done = _keep(scope, table, school_year, version, previous)
        else:
            done = _store(scope, table, school_year, version, protected)
        if not done:
            # Another process stored this version first, perhaps from another previous
            # release: serve the stored one, so that every process answers the same.
            return stored() or protected
        return protected

    return _one_process_at_a_time(
        f"release:{scope.prefecture_code}:{table}:{school_year}:{version}", stored, made
    )


MAKING_POLL = 0.1  # seconds between two looks for what another process is making


def _one_process_at_a_time(
    key: str, find: Callable[[], Protected | None], make: Callable[[], Protected]
) -> Protected:
    """What ``find`` finds; else ``make()`` under the advisory lock ``key``, while other
    processes that want it wait. After an import, the warm-up (in the process that ran it)
    and every server process ask for the new version at once, and each making it too would
    take the CPU the other pages need. They wait holding no connection (behind a transaction
    pooler, waiters in a transaction would hold its server connections), looking again every
    MAKING_POLL seconds."""
    while True:
        found = find()
        if found is not None:
            return found
        with held_lock(key, wait=False) as mine:
            if mine:  # (found meanwhile: made by the process that held the lock a moment ago?)
                return find() or make()
        time.sleep(MAKING_POLL)


@dataclass(frozen=True)
class StoredRelease:
    """A release as stored: its row, version and whether it is a closed year's."""

    pk: int
    version: str
    closed: bool
    protected: Protected


def _stored(
    prefecture_code: str, table: str, school_year: int, version: str | None = None
) -> StoredRelease | None:
    from renkei.tenants.models import Release

    rows = Release.objects.filter(
        prefecture_id=prefecture_code, table=table, school_year=school_year
    )
    if version is not None:
        rows = rows.filter(version=version)
    row = (
        rows.order_by("-computed_at", "-pk")
        .values_list(
            "pk", "version", "closed", "cells", "primary_cells", "withheld_cells", "inputs"
        )
        .first()
    )
    if row is None:
        return None
    pk, stored_version, closed, *cells = row
    return StoredRelease(pk, stored_version, closed, Protected.from_json(*cells))


def _store(scope: Scope, table: str, school_year: int, version: str, protected: Protected) -> bool:
    """Store a release (and forget older versions of the table, but never a release of a
    closed school year: it is the year's evidence); False when this version was stored
    already."""
    from renkei.tenants.models import Prefecture, Release

    if connection.in_atomic_block and connection.needs_rollback:
        return True  # the caller's transaction is failing; made again next time
    try:
        with transaction.atomic():
            Prefecture.for_code(scope.prefecture_code)
            Release.objects.create(
                prefecture_id=scope.prefecture_code,
                table=table,
                school_year=school_year,
                version=version,
                cells=protected.to_json(),
                primary_cells=protected.primary,
                withheld_cells=protected.withheld,
                total_cells=len(protected.cells),
                inputs=protected.inputs,
                closed=scope.closed(school_year),
            )
            _forget_older(scope, table, school_year, version)
    except IntegrityError:
        return False
    log.info(
        "release %s %s %s: %d of %d cells withheld (%d below k)",
        scope.prefecture_code,
        table,
        school_year,
        protected.withheld,
        len(protected.cells),
        protected.primary,
    )
    return True


def _keep(
    scope: Scope, table: str, school_year: int, version: str, previous: StoredRelease
) -> bool:
    """The previous release, protected from the same inputs, is this version's: its row
    takes the new version, its cells are not written again. After a push every table of
    the prefecture gets a new version and most keep their release; a table's cells are
    hundreds of KB of JSON at a prefecture of 180 municipalities. A closed year's release
    stays as it is (the year's evidence): this version is then stored beside it. False when
    another process stored this version, or moved the previous release on, first."""
    from renkei.tenants.models import Release

    if previous.closed:
        return _store(scope, table, school_year, version, previous.protected)
    if connection.in_atomic_block and connection.needs_rollback:
        return True  # the caller's transaction is failing; made again next time
    try:
        with transaction.atomic():
            moved = Release.objects.filter(pk=previous.pk, version=previous.version).update(
                version=version, closed=scope.closed(school_year), computed_at=timezone.now()
            )
            if not moved:
                return False
            _forget_older(scope, table, school_year, version)
    except IntegrityError:
        return False
    log.info(
        "release %s %s %s: kept, same inputs as version %s",
        scope.prefecture_code,
        table,
        school_year,
        previous.version,
    )
    return True


def _forget_older(scope: Scope, table: str, school_year: int, version: str) -> None:
    from renkei.tenants.models import Release

    Release.objects.filter(
        prefecture_id=scope.prefecture_code, table=table, school_year=school_year, closed=False
    ).exclude(version=version).delete()


# -- warming up after a change ------------------------------------------------------------

_WARM: queue.SimpleQueue[str] = queue.SimpleQueue()
_WARM_STATE = {"thread": None, "busy": 0}
_WARM_LOCK = threading.Condition()


def warm_after_commit(prefecture_code: str) -> None:
    """Once the caller's transaction commits, make the prefecture's releases anew: the
    tables asked for before (the ones stored), for every school year stored, in a background
    thread. Nothing happens when the transaction rolls back, or with RENKEI_RELEASE_WARMUP
    off; a question that comes first makes what it needs itself, as always."""
    if settings.RENKEI_RELEASE_WARMUP:
        transaction.on_commit(lambda: _enqueue(prefecture_code))


def _enqueue(prefecture_code: str) -> None:
    with _WARM_LOCK:
        _WARM_STATE["busy"] += 1
        thread = _WARM_STATE["thread"]
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_warm_loop, name="release_warmup", daemon=True)
            _WARM_STATE["thread"] = thread
            thread.start()
    _WARM.put(prefecture_code)


def _warm_loop() -> None:
    from renkei.edudata import metrics

    try:
        while True:
            try:
                prefecture_code = _WARM.get(timeout=30)
            except queue.Empty:
                return
            try:
                metrics.warm(prefecture_code)
            except Exception as e:  # a warm-up is an optimisation; the next question retries
                log.error("release warm-up of %s failed (%s)", prefecture_code, type(e).__name__)
            finally:
                with _WARM_LOCK:
                    _WARM_STATE["busy"] -= 1
                    _WARM_LOCK.notify_all()
    finally:
        connection.close()
        with _WARM_LOCK:
            _WARM_STATE["thread"] = None
            _WARM_LOCK.notify_all()


def wait_for_warmup(timeout: float = 60.0) -> bool:
    """Block until every scheduled warm-up has finished (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    with _WARM_LOCK:
        while _WARM_STATE["busy"]:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _WARM_LOCK.wait(left)
    return True


def stored_tables(prefecture_code: str) -> dict[int, list[str]]:
    """School year -> names of the tables stored for the prefecture (any version)."""
    from renkei.tenants.models import Release

    names: dict[int, list[str]] = {}
    for year, table in (
        Release.objects.filter(prefecture_id=prefecture_code)
        .values_list("school_year", "table")
        .distinct()
        .order_by("table")
    ):
        names.setdefault(year, []).append(table)
    return names
