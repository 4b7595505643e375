"""The federation's large answers (completed as plain lists) are the general way's, field for
field."""

from __future__ import annotations

import pytest
from fed_world import SCHOOL_YEAR

from renkei.graphql import plain_lists

pytestmark = pytest.mark.slow

QUERY = (
    '{ prefecture(code: "13") { attendanceRate(schoolYear: YEAR, byMunicipality: true, '
    "byGrade: true, byMonth: true) { complete k dimensions "
    "labels { dimension code label labelEn __typename } "
    "cells { key pupils numerator denominator value suppressed reason reasonCode } "
    "municipalities { code name status reason remote } missing { code } } } }"
).replace("YEAR", str(SCHOOL_YEAR))


def test_a_large_answer_is_the_same_with_and_without_plain_lists(run, world, monkeypatch):
    fast = run(QUERY, world.users["fed-pref13"])
    assert fast.errors is None, fast.errors
    cells = fast.data["prefecture"]["attendanceRate"]["cells"]
    assert len(cells) > 100 and any(c["suppressed"] for c in cells)
    from renkei.graphql.federation.schema import ResultCache

    ResultCache.forget()
    monkeypatch.setattr(plain_lists.PlainListExecutionContext, "_plain_plan", lambda *args: None)
    general = run(QUERY, world.users["fed-pref13"])
    assert general.data == fast.data
