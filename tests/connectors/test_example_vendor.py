"""The example vendor package (examples/renkei-connector-kenko), installed on its own, imports
a sample through the real pipeline: pupils are linked through the OneRoster roster."""

import csv
import json

import pytest

from renkei.connectors.pipeline import do_import
from renkei.demo import synth
from renkei.edudata.models import HealthObservation
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


def test_vendor_connector_imports_through_the_pipeline(tmp_path, shibuya):
    out = tmp_path / "synth"
    synth.generate(shibuya.code, out, students=40, days=5, seed=1)
    assert (
        do_import("oneroster", shibuya, actor=TEST_ACTOR, paths=[out / "oneroster"]).status
        == "succeeded"
    )
    with (out / "oneroster" / "users.csv").open(encoding="utf-8-sig") as f:
        pupils = [
            row["sourcedId"]
            for row in csv.DictReader(f)
            if row["sourcedId"] and "s" in row.get("username", "")[:1]
        ][:3]
    export = tmp_path / "kenko.jsonl"
    lines = [
        json.dumps({"sourcedId": pid, "date": "2025-04-08", "condition": "fair"}) for pid in pupils
    ]
    lines.append(
        json.dumps({"sourcedId": "not-in-roster", "date": "2025-04-08", "condition": "good"})
    )
    export.write_text("\n".join(lines) + "\n")

    run = do_import("kenko", shibuya, actor=TEST_ACTOR, paths=[export])

    assert run.status == "succeeded", run.message
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (4, 3, 1)
    with in_tenant(shibuya):
        assert HealthObservation.objects.filter(condition="fair").count() == 3
