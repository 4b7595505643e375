"""The data rows of an import: each chunk COPYed into a staging table and its new rows
inserted by natural key at once; at the end of the run, what needs the whole run (rows of
pupils on a roster read later, updates of rows stored before, duplicates). Plus the
quarantine, where every rejected row goes with file, line, column, value and reason.

All of it runs inside the import's one transaction (``pipeline.do_import``). The statements
keep to shapes a Citus coordinator runs the same as PostgreSQL (docs/scaling.md; guarded by
tests/test_citus_shapes.py): anti-joins rather than NOT EXISTS against the staging tables,
counts from RETURNING, joins of an INSERT…SELECT inside a subquery.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import errors

from renkei.connectors.reading import MAX_QUARANTINED_VALUE, UNKNOWN_ORIGIN, Chunk
from renkei.connectors.records import Origin
from renkei.connectors.streams import StreamSpec
from renkei.edudata.models import LearningActivity, school_year_of

BATCH_ROWS = 20_000  # quarantined rows per COPY
# PostgreSQL keeps up to 64 subtransactions of a transaction in shared memory; past that,
# every other session's snapshots get slower until COMMIT. Savepoints (one per chunk that
# bets on new rows, see StreamWriter._insert_all) stay below.
MAX_SAVEPOINTS = 50


def is_unique_violation(error: DatabaseError, table: str) -> bool:
    """Whether ``error`` is a unique key of ``table`` violated. PostgreSQL says so with
    SQLSTATE 23505; a Citus coordinator passes a worker's violation on as XX000, naming the
    shard's constraint ("attendance_natural_key_102127"), so the name counts as well."""
    cause = error.__cause__
    if not isinstance(cause, errors.Error):
        return False
    if isinstance(cause, errors.UniqueViolation):
        return True
    named = {
        cause.diag.constraint_name,
        *re.findall(r'"([^"]+)"', cause.diag.message_primary or ""),
    }
    named.discard(None)
    if not named:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND i.indisunique",
            [table],
        )
        keys = [row[0] for row in cursor.fetchall()]
    return any(_on_shard(name, key) for name in named for key in keys)


def _on_shard(name: str, key: str) -> bool:
    """Whether ``name`` is constraint ``key`` as Citus names it on a shard: ``key_<shard id>``,
    or, when that would pass 63 bytes, ``<key clipped>_<8 hex digits of hash>_<shard id>``."""
    if name == key:
        return True
    base, _, shard = name.rpartition("_")
    if not shard.isdigit():
        return False
    if base == key:
        return True
    clipped, _, digest = base.rpartition("_")
    return (
        len(digest) == 8
        and all(c in "0123456789abcdef" for c in digest)
        and len(key) > len(clipped) > 0
        and key.startswith(clipped)
    )


class Quarantine:
    """The rows a run rejects, written with COPY in batches."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self._rows: list[tuple] = []

    def reject(self, origin: Origin | None, column: str, value: str, reason: str) -> None:
        origin = origin or UNKNOWN_ORIGIN
        self._rows.append(
            (
                self.run_id,
                origin.file[:255],
                origin.line,
                column[:100],
                str(value)[:MAX_QUARANTINED_VALUE],
                reason,
                "error",
            )
        )
        if len(self._rows) >= BATCH_ROWS:
            self.flush()

    def extend(self, rows) -> None:
        """What the reader found: (file, line, column, value, reason, kind)."""
        self._rows.extend((self.run_id, *row) for row in rows)
        self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                "COPY edudata_quarantinedrow "
                '(run_id, file, line, "column", value, reason, kind) FROM STDIN'
            ) as copy,
        ):
            for row in self._rows:
                copy.write_row(row)
        self._rows.clear()

    def rejected_rows(self) -> int:
        """Input rows with at least one error (a row can have several; warnings do not count:
        their rows were accepted)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT DISTINCT file, line FROM "
                "edudata_quarantinedrow WHERE run_id = %s AND kind = 'error') q",
                [self.run_id],
            )
            return cursor.fetchone()[0]

    def warnings(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM edudata_quarantinedrow WHERE run_id = %s AND kind = 'warning'",
                [self.run_id],
            )
            return cursor.fetchone()[0]


@dataclass
class Staged:
    """One data stream's staging in this run: chunk tables stg_<name>_1, _2, … (children of
    stg_<name>, which so holds every staged row of the run), and two tables of rows kept for
    the end: stg_<name>_set_aside and stg_<name>_changes."""

    stream: StreamSpec
    chunks: int = 0
    set_aside: int = 0  # rows whose pupil was not on the roster when their chunk loaded
    met_stored: bool = False  # a row met a stored row: an update, or a duplicate in this run
    changes: int = 0  # rows with values for a stored row, applied at the end
    # The first and last value of the stream's date column among the rows inserted so far
    # (None: none yet): those of every staged row, as long as no row was set aside and none
    # met a stored row.
    inserted_days: tuple[Any, Any] | None = None

    def note_inserted(self, first: Any, last: Any) -> None:
        if first is not None:
            days = self.inserted_days or (first, last)
            self.inserted_days = (min(days[0], first), max(days[1], last))


@dataclass
class StreamWriter:
    run_id: int
    system: str
    school_years: set[int]  # the run's, shared with the roster
    files: list[str] = field(default_factory=list)  # staged rows' file numbers -> names
    _staged: dict[str, Staged] = field(default_factory=dict)
    _immediate: list[str] = field(default_factory=list)  # constraints checked per statement
    _savepoints: int = 0
    _voided: list[str] = field(default_factory=list)  # xAPI statement ids voided in the run
    deleted: int = 0  # stored rows the run's voiding statements deleted
    # The first and last day of the rows the run staged or deleted (None until one is), for
    # the rollups
    days: tuple[dt.date, dt.date] | None = None
    # (file, line) of rows of pupils who opted out of analysis (analysis-only streams)
    _skipped_lines: set[tuple[int, int]] = field(default_factory=set)

    def void(self, statement_ids: list[str]) -> None:
        """Statements this run voids: their stored learning activity goes at the end."""
        self._voided += statement_ids

    def finish(self) -> None:
        """Everything that needs the whole run, stream by stream, then the voided
        statements (stored by an earlier run: the connector quarantines those of this one);
        then drop the staging."""
        for staged in self._staged.values():
            self._finish(staged.stream, staged)
        if self._voided:
            self._delete_voided()
        with connection.cursor() as cursor:
            for name in self._staged:
                cursor.execute(
                    f"DROP TABLE stg_{name}, stg_{name}_set_aside, stg_{name}_changes CASCADE"
                )
            if self._immediate:  # back to COMMIT, as declared, for the rest of the transaction
                cursor.execute(f"SET CONSTRAINTS {', '.join(self._immediate)} DEFERRED")

    @property
    def _params(self) -> dict[str, Any]:
        return {"run": self.run_id, "system": self.system, "files": self.files}

    # data rows, chunk by chunk ------------------------------------------------------------

    def _begin(self, stream: StreamSpec) -> Staged:
        name = stream.name
        columns = ", ".join(f"{c} {t}" for c, t in stream.columns)
        updated = ", ".join(f"{c} {t}" for c, t in stream.columns if c in stream.updated)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TABLE IF EXISTS stg_{name}, stg_{name}_set_aside, stg_{name}_changes CASCADE"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name} (seq bigint, file int, line int, "
                f"ref text, {columns}) ON COMMIT DROP"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name}_set_aside (LIKE stg_{name}) ON COMMIT DROP"
            )
            cursor.execute(
                f"CREATE TEMP TABLE stg_{name}_changes (seq bigint, id bigint"
                f"{', ' if updated else ''}{updated}) ON COMMIT DROP"
            )
            # Check each chunk's references to pupils when it is inserted rather than all at
            # COMMIT: the same checks, made while the reader parses the next chunk.
            cursor.execute(
                """
                SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname)
                FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND c.condeferred""",
                [stream.table],
            )
            constraints = [row[0] for row in cursor.fetchall()]
            if constraints:
                cursor.execute(f"SET CONSTRAINTS {', '.join(constraints)} IMMEDIATE")
                self._immediate += constraints
        staged = self._staged[name] = Staged(stream)
        return staged

    def stage(self, stream: StreamSpec, chunk: Chunk) -> None:
        """COPY one chunk into its staging table and insert its rows whose pupil is known."""
        self.files = chunk.files
        staged = self._staged.get(stream.name) or self._begin(stream)
        staged.chunks += 1
        table = f"stg_{stream.name}_{staged.chunks}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE {table} () INHERITS (stg_{stream.name}) ON COMMIT DROP"
            )
            with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(chunk.data)
        rows = chunk.rows - self._quarantine_not_enrolled(stream, table)
        rows -= self._skip_opted_out(stream, table)
        inserted = None if staged.met_stored else self._insert_all(staged, table)
        with connection.cursor() as cursor:
            if inserted is None:
                inserted = self._insert(cursor, staged, table)
            if inserted == rows:
                return
            # Some rows are not in: their pupil is not on the roster (it may be on one read
            # later: such rows wait for the end), or they met a stored row.
            cursor.execute(
                f"""
                INSERT INTO stg_{stream.name}_set_aside SELECT s.* FROM {table} s
                LEFT JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
                WHERE r.ref IS NULL
                RETURNING 1""",
                self._params,
            )
            set_aside = len(cursor.fetchall())
            staged.set_aside += set_aside
            if inserted < rows - set_aside:
                # A stored row was met: one stored before this run (to update if it differs),
                # or one this run inserted (a duplicate key). Either way nothing is written
                # now; the end of the run decides, knowing every duplicate.
                staged.met_stored = True
                staged.changes += self._collect_changes(cursor, stream, table)

    def _insert_all(self, staged: Staged, table: str) -> int | None:
        """Insert the rows of ``table`` whose pupil is known, betting that no row meets a
        stored one (so far none has, in this run): a plain INSERT costs less than one that
        looks for a stored row first. Lost, the bet costs the statement (undone, back to its
        savepoint; returns None) and this stream goes the careful way from then on."""
        if self._savepoints == MAX_SAVEPOINTS:
            return None
        self._savepoints += 1
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                return self._inserted(cursor, staged, table, "")
        except DatabaseError as e:
            if not is_unique_violation(e, staged.stream.table):
                raise
            staged.met_stored = True
            return None

    def _insert(self, cursor, staged: Staged, table: str) -> int:
        """Insert the rows of ``table`` whose pupil is known and whose key is new."""
        conflict = ", ".join(("student_id", *staged.stream.key))
        return self._inserted(cursor, staged, table, f"ON CONFLICT ({conflict}) DO NOTHING")

    def _inserted(self, cursor, staged: Staged, table: str, on_conflict: str) -> int:
        cursor.execute(self._insert_sql(staged.stream, table, on_conflict), self._params)
        inserted, first, last = cursor.fetchone()
        staged.note_inserted(first, last)
        return inserted

    @staticmethod
    def _insert_sql(stream: StreamSpec, table: str, on_conflict: str) -> str:
        """The INSERT, answering how many rows it wrote, and the first and last value of
        the stream's date column among them. Counted from RETURNING: for
        INSERT…SELECT…ON CONFLICT a Citus coordinator reports the rows selected as the row
        count, not those inserted (citus#3377). The join stays in a subquery, the shape
        Citus runs on the tenant's worker (``rollups.insert_select``)."""
        # A chunk comes grouped by pupil (reading.batches), which keeps the index writes of
        # one pupil together; the plain INSERT takes it in that order (a sort by the pupil's
        # id cost more than it saved). With ON CONFLICT the first row read of a key must win.
        order = (
            f"ORDER BY r.student_id, {', '.join(f's.{k}' for k in stream.key)}, s.seq"
            if on_conflict
            else ""
        )
        return f"""
            WITH inserted AS (
                INSERT INTO {stream.table} (student_id, {", ".join(stream.names)})
                SELECT * FROM (
                    SELECT r.student_id, {", ".join(f"s.{c}" for c in stream.names)}
                    FROM {table} s JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
                    {order}
                ) q
                {on_conflict}
                RETURNING {stream.date_column or "NULL"} AS day)
            SELECT count(*), min(day), max(day) FROM inserted"""

    def _collect_changes(self, cursor, stream: StreamSpec, table: str) -> int:
        """Keep the rows of ``table`` whose stored row (same pupil and key) differs."""
        if not stream.updated:
            return 0
        updated = ", ".join(stream.updated)
        same_key = " AND ".join(f"{k} = s.{k}" for k in stream.key)
        # LIMIT 1 (the key is unique anyway) keeps it one index lookup per row, whatever
        # the planner makes of the sizes of the tables.
        cursor.execute(
            f"""
            INSERT INTO stg_{stream.name}_changes (seq, id, {updated})
            SELECT s.seq, t.id, {", ".join(f"s.{c}" for c in stream.updated)}
            FROM {table} s JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
            CROSS JOIN LATERAL (SELECT id, {updated} FROM {stream.table}
                                WHERE student_id = r.student_id AND {same_key} LIMIT 1) t
            WHERE ({", ".join(f"t.{c}" for c in stream.updated)}) IS DISTINCT FROM
                  ({", ".join(f"s.{c}" for c in stream.updated)})
            RETURNING 1""",
            self._params,
        )
        return len(cursor.fetchall())

    # what needs the whole run ---------------------------------------------------------------

    def _finish(self, stream: StreamSpec, staged: Staged) -> None:
        set_aside = f"stg_{stream.name}_set_aside"
        with connection.cursor() as cursor:
            if staged.set_aside:
                self._quarantine_unknown(cursor, stream)
            # Without a row meeting a stored one, only rows set aside can share a key.
            if staged.met_stored or staged.set_aside:
                self._quarantine_duplicates(
                    cursor, stream, f"stg_{stream.name}" if staged.met_stored else set_aside
                )
            if staged.set_aside:  # rows of pupils on a roster read after them
                self._quarantine_not_enrolled(stream, set_aside)
                self._skip_opted_out(stream, set_aside)
                cursor.execute(
                    f"""
                    SELECT count(*) FROM {set_aside} s
                    JOIN {stream.resolver} r ON r.ref = {stream.ref_key}""",
                    self._params,
                )
                known = cursor.fetchone()[0]
                if known and self._insert(cursor, staged, set_aside) < known:
                    staged.changes += self._collect_changes(cursor, stream, set_aside)
            if staged.changes:
                self._apply_changes(cursor, stream)
            self._note_school_years(cursor, staged)

    def _quarantine_unknown(self, cursor, stream: StreamSpec) -> None:
        column, who = stream.unknown
        cursor.execute(
            f"""
            INSERT INTO edudata_quarantinedrow (run_id, file, line, "column", value, reason, kind)
            SELECT * FROM (
                SELECT %(run)s, (%(files)s::text[])[s.file], s.line, %(column)s, s.ref,
                       %(reason)s || s.ref || '」）。先に名簿を取り込んでください。', 'error'
                FROM stg_{stream.name}_set_aside s
                LEFT JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
                WHERE r.ref IS NULL) q""",
            {**self._params, "column": column, "reason": f"{who}（{column}「"},
        )

    def _quarantine_not_enrolled(self, stream: StreamSpec, table: str) -> int:
        """Quarantine (and take out of ``table``) the rows of known pupils dated on a day they
        were not enrolled, for streams that ask (``only_enrolled_days``). A pupil is enrolled
        in the school years of their homerooms (enrolments are per school year), until the day
        they left (卒業・転出・退学). Returns how many rows were taken out."""
        if not stream.only_enrolled_days:
            return 0
        day = f"s.{stream.date_column}"
        year = f"(extract(year FROM {day})::int - (extract(month FROM {day}) < 4)::int)"
        years = (
            "SELECT h.school_year FROM edudata_enrollment e JOIN edudata_homeroom h"
            " ON h.id = e.homeroom_id WHERE e.student_id = r.student_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH checked AS (
                    SELECT s.seq, s.file, s.line, to_char({day}, 'YYYY-MM-DD') AS day,
                           {year} AS year, {day} > p.left_on AS after_leaving,
                           to_char(p.left_on, 'YYYY-MM-DD') AS left_on,
                           p.leaving_reason,
                           ({years} ORDER BY 1 LIMIT 1) AS first_year,
                           ({years} ORDER BY 1 DESC LIMIT 1) AS last_year,
                           {year} IN ({years}) AS enrolled
                    FROM {table} s JOIN {stream.resolver} r ON r.ref = {stream.ref_key}
                    JOIN edudata_student p ON p.id = r.student_id),
                outside AS (
                    SELECT * FROM checked WHERE NOT enrolled OR after_leaving IS TRUE),
                quarantined AS (
                    INSERT INTO edudata_quarantinedrow
                        (run_id, file, line, "column", value, reason, kind)
                    SELECT %(run)s, (%(files)s::text[])[file], line, %(column)s::text, day,
                        %(column)s::text || ' ' || day || ' は' || CASE
                            WHEN first_year IS NULL THEN 'この児童生徒の在籍（学級）がない日です'
                            WHEN year < first_year THEN '在籍の始まり（' || first_year
                                || '年度）より前です'
                            WHEN year > last_year THEN '在籍の終わり（' || last_year
                                || '年度）より後です'
                            WHEN after_leaving THEN CASE leaving_reason
                                WHEN 'graduated' THEN '卒業日 ' WHEN 'transferred' THEN '転出日 '
                                ELSE '退学日 ' END || left_on || ' より後です'
                            ELSE year || '年度で、この年度には在籍（学級）がありません'
                        END || '。在籍していない日の回答は取り込みません'
                        || '（日付か、名簿の学級の在籍を確かめてください）。', 'error'
                    FROM outside)
                DELETE FROM {table} WHERE seq IN (SELECT seq FROM outside) RETURNING 1""",
                {**self._params, "column": stream.date_label},
            )
            return len(cursor.fetchall())

    def _skip_opted_out(self, stream: StreamSpec, table: str) -> int:
        """Take out of ``table`` the rows of pupils who opted out of analysis, for streams
        that exist only for analysis: they are not imported and not errors, only counted."""
        if not stream.analysis_only:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                DELETE FROM {table} s USING {stream.resolver} r, edudata_student p
                WHERE r.ref = {stream.ref_key} AND p.id = r.student_id
                  AND p.opted_out_at IS NOT NULL
                RETURNING s.file, s.line""",
                self._params,
            )
            taken_out = cursor.fetchall()
            # Counted in input rows, as rows_read is (a report's row can hold several apps).
            self._skipped_lines.update(taken_out)
            return len(taken_out)

    @property
    def skipped(self) -> int:
        """Input rows of pupils who opted out of analysis, not imported (not errors)."""
        return len(self._skipped_lines)

    def _quarantine_duplicates(self, cursor, stream: StreamSpec, scope: str) -> None:
        """Quarantine every staged row but the first of its key; none of them is applied."""
        key = ", ".join((stream.ref_key, *(f"s.{k}" for k in stream.key)))
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {scope} s GROUP BY {key} HAVING count(*) > 1)"
        )
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            f"""
            WITH ranked AS (
                SELECT seq, file, line, ref, row_number() OVER w AS n,
                       first_value(file) OVER w AS first_file,
                       first_value(line) OVER w AS first_line
                FROM {scope} s WINDOW w AS (PARTITION BY {key} ORDER BY seq)),
            later AS (SELECT * FROM ranked WHERE n > 1),
            quarantined AS (
                INSERT INTO edudata_quarantinedrow
                    (run_id, file, line, "column", value, reason, kind)
                SELECT %(run)s, (%(files)s::text[])[file], line, '', ref,
                       %(label)s || 'の行が ' || (%(files)s::text[])[first_file] || ' の '
                       || first_line || ' 行目にもあります（重複。最初の行を取り込みました）。',
                       'error'
                FROM later),
            not_changed AS (
                DELETE FROM stg_{stream.name}_changes WHERE seq IN (SELECT seq FROM later))
            DELETE FROM stg_{stream.name}_set_aside WHERE seq IN (SELECT seq FROM later)""",
            {**self._params, "label": stream.label},
        )

    def _apply_changes(self, cursor, stream: StreamSpec) -> None:
        # Two references to one pupil could name the same stored row: the first read wins.
        cursor.execute(f"""
            UPDATE {stream.table} AS t SET {", ".join(f"{c} = c.{c}" for c in stream.updated)}
            FROM (SELECT DISTINCT ON (id) * FROM stg_{stream.name}_changes ORDER BY id, seq) c
            WHERE t.id = c.id AND ({", ".join(f"t.{c}" for c in stream.updated)})
                  IS DISTINCT FROM ({", ".join(f"c.{c}" for c in stream.updated)})""")

    def _delete_voided(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {LearningActivity._meta.db_table} WHERE statement_id = ANY(%s) "
                "RETURNING occurred_at",
                [self._voided],
            )
            days = [timezone.localdate(row[0]) for row in cursor.fetchall()]
        self.deleted = len(days)
        if days:  # their figures change
            self._note_days(min(days), max(days))

    @property
    def written(self) -> set[str]:
        """The tables the run wrote (the rollups computed from them may have changed)."""
        tables = {staged.stream.table for staged in self._staged.values()}
        if self.deleted:
            tables.add(LearningActivity._meta.db_table)
        return tables

    def _note_days(self, first: dt.date, last: dt.date) -> None:
        self.school_years |= set(range(school_year_of(first), school_year_of(last) + 1))
        if self.days is not None:
            first, last = min(first, self.days[0]), max(last, self.days[1])
        self.days = (first, last)

    def _note_school_years(self, cursor, staged: Staged) -> None:
        stream = staged.stream
        staging = f"stg_{stream.name}"
        if stream.date_column:
            if staged.met_stored or staged.set_aside:  # not every row went in by one INSERT
                cursor.execute(
                    f"SELECT min({stream.date_column}), max({stream.date_column}) FROM {staging}"
                )
                first, last = cursor.fetchone()
            else:  # every staged row went in by an INSERT that returned its first and last
                first, last = staged.inserted_days or (None, None)
            if first is not None:
                self._note_days(
                    *(
                        timezone.localdate(d) if isinstance(d, dt.datetime) else d
                        for d in (first, last)
                    )
                )
        elif "school_year" in stream.names:
            cursor.execute(f"SELECT DISTINCT school_year FROM {staging}")
            self.school_years |= {row[0] for row in cursor.fetchall()}
