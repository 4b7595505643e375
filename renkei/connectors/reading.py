"""A connector's output, in batches for the writer of the run (pipeline.RunWriter).

Data records become lines of COPY text, a chunk of them per batch; roster records and row
errors travel as they are. A connector that sets ``parallel_read`` runs in a forked child
process, which parses on while PostgreSQL loads what it parsed before: on two cores, the two
halves of an import overlap instead of taking turns. The child never touches the database:
everything it produces, including the connector's state and the raw content it archives,
comes back through a pipe, and the parent does all the writing in its one transaction. Any
other connector runs in this process and produces the same batches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import operator
import os
import pickle
import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connections

from renkei.connectors.records import Origin, Record, RosterScopeRecord, StatementVoidRecord
from renkei.connectors.sdk import (
    Connector,
    ConnectorConfig,
    RowError,
    RowWarning,
    RunState,
    SourceError,
)

if TYPE_CHECKING:  # streams.py builds on this module's copy_text
    from renkei.connectors.streams import StreamSpec

# Data rows per chunk (per data stream, one COPY and one insert each): the first chunks are
# small, so that loading starts soon, then they grow (bigger inserts write the indexes with
# fewer page visits).
FIRST_CHUNK_ROWS = 25_000
CHUNK_ROWS = 200_000
ROSTER_BATCH = 10_000  # roster records per batch
LOOKAHEAD = 4  # batches a child process may have ready before the loader takes them
MAX_QUARANTINED_VALUE = 1_000  # characters kept of an enormous field
ROSTER_STREAMS = ("schools", "homerooms", "students", "enrollments", "roster_scope")
UNKNOWN_ORIGIN = Origin(file="?", line=0)  # a record a connector yielded without its origin


# -- batches --------------------------------------------------------------------------------


@dataclass
class Batch:
    rows_read: int  # input rows read so far (progress)


@dataclass
class Chunk(Batch):
    """Rows of one data stream as COPY text: seq, file number, line, then the stream's values
    (the pupil reference first), grouped by pupil. ``seq`` numbers data rows in reading order
    across the run (the first of duplicates wins)."""

    stream: str
    rows: int
    data: bytes
    files: list[str]  # file names so far; file number n is files[n - 1]


@dataclass
class Roster(Batch):
    records: list[Record]


@dataclass
class Rejected(Batch):
    """Row errors and warnings: file, line, column, value, reason, kind ("error" | "warning")."""

    rows: list[tuple[str, int, str, str, str, str]]


@dataclass
class Voided(Batch):
    """Ids of xAPI statements voided by statements of this run: their stored learning
    activity is deleted once every chunk is loaded."""

    statement_ids: list[str]


@dataclass
class CopyRows:
    """Input rows of one file that a connector turned into one data stream's COPY text
    itself, one row each (``mapping.py``'s fast path): the pupil reference and the record's
    other fields, in ``copy_fields`` order, as ``copy_text`` writes them for a record."""

    stream: str
    file: str
    lines: list[int]
    texts: list[str]


@dataclass
class End(Batch):
    state: dict[str, Any]  # the connector's RunState.data after the run


def batches(
    connector: Connector,
    config: ConnectorConfig,
    state: RunState,
    streams: Mapping[str, StreamSpec],
) -> Iterator[Batch]:
    """Read the connector through and cut its output into batches. Every record is counted
    towards the input row it came from (records of one row share its origin). Roster records
    are sent before any later chunk, so that a chunk's pupils are known when it is loaded."""
    rows_read, last, seq = 0, None, 0
    files: dict[str, int] = {}
    lines: dict[str, list[str]] = {}
    limit: dict[str, int] = {}  # rows of the next chunk, per stream
    roster: list[Record] = []
    rejected: list[tuple[str, int, str, str, str, str]] = []
    voided: list[str] = []

    def chunk(name: str) -> Iterator[Batch]:
        if roster:
            yield Roster(rows_read, roster.copy())
            roster.clear()
        pending = lines.pop(name)
        # Grouped by pupil (the reference, each line's fourth field; a stable sort keeps
        # each pupil's rows in reading order): the insert then writes a pupil's index
        # entries together. Sorting here costs this process, which waits for the loader
        # anyway, rather than PostgreSQL.
        pending.sort(key=_pupil_reference)
        limit[name] = min(2 * limit[name], CHUNK_ROWS)
        yield Chunk(
            rows_read, name, len(pending), "".join(pending).encode(), [file[:255] for file in files]
        )

    def finding(origin: Origin, item: RowError | RowWarning, kind: str) -> Iterator[Batch]:
        rejected.append(
            (
                origin.file[:255],
                origin.line,
                item.column[:100],
                str(item.value)[:MAX_QUARANTINED_VALUE],
                item.reason,
                kind,
            )
        )
        if len(rejected) >= CHUNK_ROWS:
            yield Rejected(rows_read, rejected.copy())
            rejected.clear()

    for item in connector.read(config, state):
        if type(item) is RowWarning:  # a note on a row: the row itself is counted elsewhere
            yield from finding(item.origin or UNKNOWN_ORIGIN, item, "warning")
            continue
        if type(item) is RosterScopeRecord:  # a declaration about the roster, not a row
            roster.append(item)
            continue
        if type(item) is CopyRows:
            stream = streams.get(item.stream)
            if stream is None:
                raise SourceError(f"未知のストリーム {item.stream} です。")
            file = files.get(item.file) or files.setdefault(item.file, len(files) + 1)
            pending = lines.setdefault(item.stream, [])
            for line, text in zip(item.lines, item.texts, strict=True):
                seq += 1
                rows_read += 1
                pending.append(f"{seq}\t{file}\t{line}\t{text}\n")
                if len(pending) >= limit.setdefault(item.stream, FIRST_CHUNK_ROWS):
                    yield from chunk(item.stream)
                    pending = lines.setdefault(item.stream, [])
            last = Origin(file=item.file, line=item.lines[-1])
            continue
        origin = item.origin
        if (
            origin is None
            or last is None
            or (origin is not last and (origin.line != last.line or origin.file != last.file))
        ):
            rows_read += 1
            last = origin
        origin = origin or UNKNOWN_ORIGIN
        if type(item) is RowError:
            yield from finding(origin, item, "error")
            continue
        stream = streams.get(item.stream)
        if stream is not None:
            seq += 1
            file = files.get(origin.file) or files.setdefault(origin.file, len(files) + 1)
            pending = lines.setdefault(item.stream, [])
            pending.append(f"{seq}\t{file}\t{origin.line}\t{stream.copy_text(item)}\n")
            if len(pending) >= limit.setdefault(item.stream, FIRST_CHUNK_ROWS):
                yield from chunk(item.stream)
        elif item.stream in ROSTER_STREAMS:
            roster.append(item)
            if len(roster) >= ROSTER_BATCH:
                yield Roster(rows_read, roster.copy())
                roster.clear()
        elif type(item) is StatementVoidRecord:
            voided.append(item.statement_id)
            if len(voided) >= CHUNK_ROWS:
                yield Voided(rows_read, voided.copy())
                voided.clear()
        else:
            raise SourceError(f"未知のストリーム {item.stream} です。")
    for name in list(lines):
        yield from chunk(name)
    if roster:
        yield Roster(rows_read, roster)
    if rejected:
        yield Rejected(rows_read, rejected)
    if voided:
        yield Voided(rows_read, voided)
    yield End(rows_read, state.data)


def _pupil_reference(line: str) -> str:
    return line.split("\t", 4)[3]


# -- COPY text ------------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _iso(value: dt.date | dt.datetime | None) -> str:
    return "\\N" if value is None else value.isoformat()


def _number(value: int | Decimal | None) -> str:
    return "\\N" if value is None else str(value)


def _boolean(value: bool | None) -> str:
    return "\\N" if value is None else ("t" if value else "f")


def _json(value: Any) -> str:
    return _text(json.dumps(value, ensure_ascii=False))


COPY_FORMAT: dict[str, Callable[[Any], str]] = {
    "text": _text,
    "date": _iso,
    "timestamptz": _iso,
    "int": _number,
    "numeric": _number,
    "boolean": _boolean,
    "jsonb": _json,
}


PUPIL_REFERENCES = ("student_source_id", "principal_name")  # how a record names its pupil


def copy_fields(record: type[Record]) -> list[str]:
    """The fields of a data stream's record in COPY order: the pupil reference, then the
    others as the record declares them."""
    ref = next(r for r in PUPIL_REFERENCES if r in record.model_fields)
    return [ref, *(n for n in record.model_fields if n not in (ref, "origin"))]


def copy_value(value: Any) -> str:
    """A validated record value as COPY text, chosen by its Python type: the same text
    COPY_FORMAT writes for the staging type the value is stored as (streams.STAGING_TYPES)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return _boolean(value)
    if isinstance(value, dt.date):  # (and datetime)
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return _json(value)
    raise TypeError(f"no COPY text for {type(value).__name__}")


def copy_text(attributes: list[str], types: list[str]) -> Callable[[Any], str]:
    """A function from a record to these attributes of it, of these PostgreSQL types, as
    COPY text (tab-separated, no newline)."""
    values, formats = attrgetter(*attributes), [COPY_FORMAT[t] for t in types]
    return lambda record: "\t".join(map(operator.call, formats, values(record)))


# -- reading in a child process -------------------------------------------------------------


@dataclass
class _Fetched:
    """Raw content the connector archived (RunState.archive), stored by the parent."""

    name: str
    content: bytes


@dataclass
class _Failed:
    error: BaseException


@contextmanager
def read(
    cls: type[Connector],
    config: ConnectorConfig,
    state: RunState,
    streams: Mapping[str, StreamSpec],
) -> Iterator[Iterator[Batch]]:
    """The connector's batches, read in a child process if the connector allows it. On
    leaving, a child still running (the load failed) is killed."""
    if not cls.reads_in_parallel(config) or multiprocessing.current_process().daemon:
        yield batches(cls(), config, state, streams)  # (a daemon process may not fork)
        return
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(receiver, sender, cls, config, state.data, streams),
        name=f"renkei-read-{cls.name}",
        daemon=True,
    )
    child.start()
    sender.close()  # only the child writes: its exit is the end of the pipe
    try:
        yield _received(receiver, state)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


def _received(receiver, state: RunState) -> Iterator[Batch]:
    while True:
        try:
            message = receiver.recv()
        except EOFError:
            raise RuntimeError("読み込み用のプロセスが途中で終了しました。") from None
        if isinstance(message, _Failed):
            raise message.error
        if isinstance(message, _Fetched):
            state.archive(message.name, message.content)
            continue
        if isinstance(message, End):
            state.data = message.state
        yield message
        if isinstance(message, End):
            return


_INHERITED: list[Any] = []  # the parent's database connections, kept referenced in the child


def _child(
    receiver,
    sender,
    cls: type[Connector],
    config: ConnectorConfig,
    data: dict[str, Any],
    streams: Mapping[str, StreamSpec],
) -> None:
    receiver.close()  # only the parent reads the pipe
    # The database connections came with the fork: they are the parent's sessions, in its
    # transaction. Close this process's copy of their sockets, so that a parent killed
    # mid-run really ends its session (and its transaction) — at the operating-system level
    # only, as a "close" through libpq would end the session for the parent too. Django
    # forgets them (a query here would open a connection of its own); keeping the objects
    # referenced means nothing ever finalizes them here.
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _INHERITED.append(wrapper.connection)
            with contextlib.suppress(psycopg.Error, OSError):  # (a connection already lost)
                os.close(wrapper.connection.pgconn.socket)
            wrapper.connection = None
    # Batches go out through a short queue, so that reading goes on while the parent is busy
    # (loading the roster, say) rather than waiting for it to take each batch.
    outbox: queue.Queue = queue.Queue(maxsize=LOOKAHEAD)
    sending = threading.Thread(target=_send_all, args=(outbox, sender), daemon=True)
    sending.start()
    state = RunState(data=data, archive=lambda name, content: outbox.put(_Fetched(name, content)))
    try:
        for batch in batches(cls(), config, state, streams):
            outbox.put(batch)
    except BaseException as e:  # every failure goes to the parent, which raises it
        outbox.put(_Failed(_portable(e)))
    outbox.put(None)
    sending.join()


def _send_all(outbox: queue.Queue, sender) -> None:
    """Send what the reading puts in the outbox, up to None. Should the parent be gone, or a
    batch not go (it does not pickle), the process ends here: reading on would be in vain
    (and would block on the full outbox)."""
    try:
        while (message := outbox.get()) is not None:
            sender.send(message)
    except OSError:
        os._exit(1)
    except Exception as e:
        with contextlib.suppress(OSError):
            sender.send(_Failed(_portable(e)))
        os._exit(1)
    sender.close()


def _portable(error: BaseException) -> BaseException:
    """The error, with the child's traceback as a note, in a form that survives pickling."""
    error.add_note("".join(traceback.format_exception(error)))
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}\n{error.__notes__[-1]}")
