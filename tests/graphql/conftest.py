"""Fixtures shared by the GraphQL tests of both APIs and the widgets."""

from __future__ import annotations

import pytest

from renkei.platform.audit import Actor

TEST_ACTOR = Actor.system("test")


@pytest.fixture
def shinjuku_with_data(shinjuku, tmp_path):
    """新宿区 with 300 synthetic pupils over 60 days, imported through the real connectors
    (rollups refreshed by the imports). Returns the synthetic export's folder."""
    from renkei.connectors.pipeline import do_import
    from renkei.demo import synth
    from renkei.edudata.models import ImportRun

    out = tmp_path / "synth"
    synth.generate(shinjuku.code, out, students=300, days=60, seed=11)
    for connector, paths in (
        ("oneroster", [out / "oneroster"]),
        ("c4th", sorted((out / "c4th").glob("*.csv"))),
    ):
        assert (
            do_import(connector, shinjuku, actor=TEST_ACTOR, paths=paths).status
            == ImportRun.Status.SUCCEEDED
        )
    return out
