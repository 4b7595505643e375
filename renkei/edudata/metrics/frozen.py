"""The counts a closed school year's tables are made of, as kept at closing.

When a municipality closes a school year (renkei.edudata.history), the rows every family of
the release engine reads from its rollups for that year - counts per school, grade and
category, never a pupil - are kept in its schema (``edudata.FrozenCounts``). From then on
the engine reads those rows instead of the live rollups for that municipality and year
(:func:`rows`), so a purge, a late opt-out, a re-import or a correction changes nothing the
year's releases are made of, and its version of the year stays the same
(:meth:`~renkei.edudata.metrics.release.Scope.version_for`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import connection

if TYPE_CHECKING:
    from renkei.edudata.metrics.release import Member

_SELECT = "SELECT rows FROM {s}.edudata_frozencounts WHERE school_year = %s AND family = %s"


def rows(members: Sequence[Member], family: str, school_year: int) -> list[tuple]:
    """The kept rows of ``family`` and ``school_year`` of each member (one statement per
    tenant schema, pipelined as the live reads are). A family not kept at closing has no
    rows: the year's figures are what was kept, never the live data."""
    if not members:
        return []
    quote = connection.ops.quote_name
    connection.ensure_connection()
    raw = connection.connection
    cursors = []
    with raw.pipeline():
        for m in members:
            cursor = raw.cursor()
            cursor.execute(_SELECT.format(s=quote(m.schema_name)), [school_year, family])
            cursors.append(cursor)
    out: list[tuple] = []
    for cursor in cursors:
        for (kept,) in cursor.fetchall():
            # Django has psycopg hand jsonb over as text (JSONField decodes it itself).
            out += [tuple(row) for row in (json.loads(kept) if isinstance(kept, str) else kept)]
        cursor.close()
    return out
