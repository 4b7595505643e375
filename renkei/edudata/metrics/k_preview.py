"""What raising a municipality's k would change, for the confirmation 管理 shows before it.

A prefecture's tables are protected with the largest k of its municipalities
(:attr:`release.Scope.k`), so a raised k applies to the whole prefecture's tables, and every
table is protected again at the next question (k is part of each release's version). This
reads the releases stored now and counts this municipality's released cells (its own and
its schools') whose published figure is below the new k: those are withheld from then on.
Published figures carry cell-key noise and complementary suppression may withhold more, so
the count is an estimate, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from renkei.edudata.metrics import AREA
from renkei.edudata.metrics.release import Protected
from renkei.platform.disclosure import MIN_K


@dataclass(frozen=True)
class KPreview:
    current_k: int  # this municipality's k
    new_k: int
    prefecture_k: int  # the k the prefecture's tables use now (the largest of its members)
    tables: int  # released tables stored for the prefecture
    cells: int  # released cells of this municipality in them
    below: int  # of those, cells whose published figure is below the new k (zeros are
    # structural, "none by definition", and stay released)

    @property
    def prefecture_k_rises(self) -> bool:
        return self.new_k > self.prefecture_k


def preview_k(municipality, new_k: int) -> KPreview:
    from renkei.tenants.models import Municipality, Release

    others = Municipality.objects.filter(prefecture_id=municipality.prefecture_id).exclude(
        pk=municipality.pk
    )
    prefecture_k = max(
        [MIN_K, municipality.min_cell_size, *others.values_list("min_cell_size", flat=True)]
    )
    latest: dict[tuple[str, int], Protected] = {}
    rows = (
        Release.objects.filter(prefecture_id=municipality.prefecture_id)
        .order_by("computed_at", "pk")
        .values_list("table", "school_year", "cells", "primary_cells", "withheld_cells")
    )
    for table, year, cells, primary, withheld in rows.iterator():
        latest[(table, year)] = Protected.from_json(cells, primary, withheld)
    own, below = 0, 0
    code, school_prefix = municipality.code, f"{municipality.code}:"
    for protected in latest.values():
        at = next((i for i, d in enumerate(protected.dims) if d.name == AREA), None)
        if at is None:
            continue
        for key, value in protected.values.items():
            if key[at] == code or key[at].startswith(school_prefix):
                own += 1
                below += 0 < value < new_k
    return KPreview(
        current_k=municipality.min_cell_size,
        new_k=new_k,
        prefecture_k=prefecture_k,
        tables=len(latest),
        cells=own,
        below=below,
    )
