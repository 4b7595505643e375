"""Retention counts from leaving, whatever the reason (卒業・転出・退学): the purge, its dry
run per reason on the command line, the nightly task's log (counts only), and a purge that
meets a running import of the same tenant (it waits; neither harms the other)."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from pathlib import Path

import pytest
from concurrency_support import in_own_connection, someone_waits_on_an_advisory_lock
from django.db import connection

from renkei.connectors.pipeline import Progress, do_import
from renkei.edudata import rollups
from renkei.edudata import tasks as edudata_tasks
from renkei.edudata.models import (
    Enrollment,
    Homeroom,
    ImportRun,
    School,
    Student,
    StudentIdentity,
)
from renkei.edudata.privacy import do_purge_expired, pseudonym_for
from renkei.platform.audit import Actor
from renkei.site import cli
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Municipality

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
TODAY = dt.date(2026, 12, 1)  # 5 years (the default) before: 2021-12-01


@pytest.fixture
def leavers(school_world, shibuya):
    """Beside school_world (its "old" pupil graduated in 2015): one pupil per reason who left
    before the cutoff, one of each who left after it."""
    made = {}
    with in_tenant(shibuya):
        for reason in ("graduated", "transferred", "withdrew"):
            for tag, day in (("expired", dt.date(2021, 7, 1)), ("kept", dt.date(2022, 1, 10))):
                made[f"{reason}-{tag}"] = Student.objects.create(
                    pseudonym=pseudonym_for(shibuya, "test", f"{reason}-{tag}"),
                    school=school_world["A"],
                    grade=4,
                    left_on=day,
                    leaving_reason=reason,
                )
    return made


def test_retention_counts_from_leaving_whatever_the_reason(leavers, school_world, shibuya):
    with in_tenant(shibuya):
        dry = do_purge_expired(shibuya, TODAY, actor=ACTOR, dry_run=True)
        assert dry.cutoff == dt.date(2021, 12, 1)
        assert dry.pupils_by_reason == {"graduated": 2, "transferred": 1, "withdrew": 1}
        assert Student.objects.count() == 5 + 6  # a dry run deletes nothing
        real = do_purge_expired(shibuya, TODAY, actor=ACTOR)
        assert real.pupils_by_reason == dry.pupils_by_reason
        assert real.deleted == {"edudata.Student": 4}
        left = set(Student.objects.values_list("pseudonym", flat=True))
    assert left == {s.pseudonym for k, s in leavers.items() if k.endswith("kept")} | {
        school_world[k].pseudonym
        for k in ("a1", "a2", "b1", "b2")  # still enrolled
    }


def test_retention_years_are_the_tenants(leavers, shibuya):
    shibuya.retention_years = 4  # cutoff 2022-12-01: the "kept" ones expire too
    shibuya.save()
    with in_tenant(shibuya):
        dry = do_purge_expired(shibuya, TODAY, actor=ACTOR, dry_run=True)
    assert dry.pupils_by_reason == {"graduated": 3, "transferred": 2, "withdrew": 2}


def test_purge_dry_run_prints_counts_per_reason_and_the_cutoff_never_names(
    leavers, shibuya, capsys, monkeypatch
):
    with in_tenant(shibuya):
        for student in Student.objects.all():
            StudentIdentity.objects.create(
                student=student,
                source_system="c4th",
                source_id=f"ID-{student.pk}",
                family_name="髙橋",
                given_name="一郎",
            )
    monkeypatch.setattr(cli, "_setup_django", lambda: None)
    monkeypatch.setattr(cli, "_schema_ready", lambda: None)
    from renkei.edudata import privacy

    monkeypatch.setattr(privacy.timezone, "localdate", lambda: TODAY)  # the cutoff is fixed
    assert cli.main(["purge", "--dry-run", "--tenant", "131130"]) == 0
    out = capsys.readouterr().out
    assert "131130 渋谷区: 離籍日が 2021-12-01 より前（離籍後 5 年）の児童生徒" in out
    assert "削除予定: 卒業 2 人・転出 1 人・退学 1 人（合計 4 人）" in out
    assert "髙橋" not in out and "一郎" not in out and "ID-" not in out
    with in_tenant(shibuya):
        assert Student.objects.count() == 11  # nothing deleted
        pseudonyms = list(Student.objects.values_list("pseudonym", flat=True))
    assert not any(p in out for p in pseudonyms)


def test_nightly_purge_logs_counts_only(leavers, shibuya, caplog):
    with in_tenant(shibuya):
        for student in Student.objects.all():
            StudentIdentity.objects.create(
                student=student, source_system="c4th", source_id=f"ID-{student.pk}",
                family_name="髙橋", given_name="一郎",
            )  # fmt: skip
        pseudonyms = list(Student.objects.values_list("pseudonym", flat=True))
    with caplog.at_level("DEBUG"):
        result = edudata_tasks.purge_expired("131130", today=TODAY.isoformat())
    assert result["pupils_by_reason"] == {"graduated": 2, "transferred": 1, "withdrew": 1}
    assert "pupils by reason {'graduated': 2, 'transferred': 1, 'withdrew': 1}" in caplog.text
    for secret in (*pseudonyms, "髙橋", "一郎", "ID-"):
        assert secret not in caplog.text


# -- a purge while an import of the same tenant runs ------------------------------------------

SCHOOL = "B113211300012"
HEADER = ["年度", "学校コード", "学校名", "学年", "組", "出席番号", "児童生徒ID", "氏名（姓）", "氏名（名）", "性別"]  # fmt: skip


def roster(path: Path, year: int, ids: list[int]) -> Path:
    with path.open("w", encoding="cp932", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for n in ids:
            grade = 3 if year == 2025 else 4
            writer.writerow([year, SCHOOL, "渋谷区立第一小学校", grade, 1, n, f"R{n:03d}", "山田", "太郎", "男"])  # fmt: skip
    return path


class HeldWhileLoading(Progress):
    """Holds the import in its loading phase (lock held, transaction open) until released."""

    def __init__(self) -> None:
        self.loading, self.go = threading.Event(), threading.Event()

    def phase(self, phase: str) -> None:
        if phase == ImportRun.Phase.LOADING:
            self.loading.set()
            assert self.go.wait(60)


def test_a_purge_during_an_import_waits_and_neither_harms_the_other(tmp_path, home):
    """40 pupils left long ago; an import that re-enrols 20 of them (a newer year's roster)
    runs when the nightly purge comes. The purge waits on the tenant's write lock, then
    deletes the 20 still left; the import succeeds whole."""
    osaka_code = "271004"

    def given() -> None:
        osaka = Municipality.objects.get(code=osaka_code)
        run = do_import("c4th", osaka, actor=ACTOR, paths=[roster(tmp_path / "a.csv", 2025, list(range(1, 41)))])  # fmt: skip
        assert run.status == "succeeded", run.message
        with in_tenant(osaka):
            Student.objects.update(left_on=dt.date(2016, 3, 31), leaving_reason="transferred")

    def cleanup() -> None:
        with in_tenant(osaka_code):
            Student.objects.all().delete()
            Homeroom.objects.all().delete()
            School.objects.all().delete()
            ImportRun.objects.all().delete()
            rollups.refresh([2025, 2026])

    in_own_connection(given)
    progress = HeldWhileLoading()
    threads: list[threading.Thread] = []
    try:
        runs: list = []
        reports: list = []

        def importing() -> None:
            try:
                osaka = Municipality.objects.get(code=osaka_code)
                path = roster(tmp_path / "b.csv", 2026, list(range(1, 21)))
                runs.append(do_import("c4th", osaka, actor=ACTOR, paths=[path], progress=progress))
            finally:
                connection.close()

        def purging() -> None:
            try:
                with in_tenant(osaka_code) as osaka:
                    reports.append(do_purge_expired(osaka, TODAY, actor=ACTOR))
            finally:
                connection.close()

        importer = threading.Thread(target=importing)
        threads.append(importer)
        importer.start()
        assert progress.loading.wait(60), "the import did not start loading"
        purger = threading.Thread(target=purging)
        threads.append(purger)
        purger.start()
        # the purge waits for the import: it has deleted nothing yet
        assert someone_waits_on_an_advisory_lock(), "the purge did not wait for the import"
        assert reports == []
        progress.go.set()
        importer.join(120)
        purger.join(120)

        [run] = runs
        assert (run.status, run.rows_read, run.rows_rejected) == ("succeeded", 20, 0), run.message
        assert "20 人が新しい年度の名簿に在籍として載っていたため" in run.message
        [report] = reports
        assert report.pupils_by_reason == {"graduated": 0, "transferred": 20, "withdrew": 0}

        def after():
            with in_tenant(osaka_code):
                kept = sorted(StudentIdentity.objects.values_list("source_id", "student__left_on"))
                enrolled = Enrollment.objects.filter(homeroom__school_year=2026).count()
            return kept, enrolled

        kept, enrolled = in_own_connection(after)
        assert kept == [(f"R{n:03d}", None) for n in range(1, 21)]
        assert enrolled == 20  # every pupil the import wrote is there, with its enrolment
    finally:
        progress.go.set()  # (a failed assertion must not leave the import waiting)
        for thread in threads:
            thread.join(120)
        in_own_connection(cleanup)
