"""A run killed at any point (kill -9) and re-run ends in exactly the state of one clean run.
Runs the real `renkei import` in a subprocess against its own database."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from cli_support import RENKEI, query, renkei, scratch_database

pytestmark = pytest.mark.slow

PUPILS, DAYS = 500, 150
MARKS = ["", "", "", "", "", "", "", "", "病", "遅"]


def write_exports(directory):
    rng = random.Random(7)
    roster = directory / "roster.csv"
    with roster.open("w", encoding="cp932", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "年度",
                "学校コード",
                "学校名",
                "学年",
                "組",
                "出席番号",
                "児童生徒ID",
                "氏名（姓）",
                "氏名（名）",
                "性別",
            ]
        )
        for n in range(PUPILS):
            w.writerow(
                [
                    "2025",
                    "B113211300012",
                    "第一小学校",
                    str(n % 6 + 1),
                    "1",
                    str(n % 40 + 1),
                    f"C{n:05d}",
                    "山田",
                    "太郎",
                    "男",
                ]
            )
    attendance = directory / "attendance.csv"
    with attendance.open("w", encoding="cp932", newline="") as f:
        w = csv.writer(f)
        w.writerow(["学校コード", "児童生徒ID", "日付", "出欠", "理由"])
        for day in range(DAYS):
            month, dom = 4 + day // 28, day % 28 + 1
            for n in range(PUPILS):
                w.writerow(["", f"C{n:05d}", f"2025/{month:02d}/{dom:02d}", rng.choice(MARKS), ""])
    return roster, attendance


STATE = {
    "attendance": """SELECT i.source_id, a.date, a.status FROM {s}.edudata_attendanceday a
                     JOIN {s}.edudata_studentidentity i ON i.student_id = a.student_id
                     ORDER BY 1, 2""",
    "students": """SELECT i.source_id, st.grade FROM {s}.edudata_student st
                   JOIN {s}.edudata_studentidentity i ON i.student_id = st.id ORDER BY 1""",
    "enrollments": "SELECT count(*) FROM {s}.edudata_enrollment",
    "rollup": """SELECT i.source_id, r.month, r.school_days, r.absent_illness, r.late
                 FROM {s}.edudata_attendancepupilmonth r
                 JOIN {s}.edudata_studentidentity i ON i.student_id = r.student_id ORDER BY 1, 2""",
}


def state(db, schema):
    return {what: query(db, sql.format(s=schema)) for what, sql in STATE.items()}


# When to kill a run, and the query that shows that moment has come (None: at once). The
# import's statements as the server sees them, not this query's own text.
_ACTIVE = """SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()
             AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%%{}%%'"""
KILL_MOMENTS = {
    "starting": None,
    "run recorded": "SELECT count(*) > {runs} FROM m131130.edudata_importrun",
    "loading": _ACTIVE.format("stg_attendance"),
    "refreshing rollups": _ACTIVE.format("INSERT INTO edudata_attendancepupilmonth"),
}


def _seen(db: str, sql: str, process: subprocess.Popen, seconds: float = 120.0) -> bool:
    """Whether ``sql`` answered true while ``process`` ran (polled), within ``seconds``."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        if query(db, sql)[0][0]:
            return True
        time.sleep(0.01)
    return False


def test_kill_minus_nine_then_rerun_equals_one_clean_run(tmp_path):
    files = [str(p) for p in write_exports(tmp_path)]
    with scratch_database(tmp_path / "home") as (env, db):
        renkei(env, "migrate", "-v", "0")
        renkei(env, "onboard", "--code", "131130", "--name", "渋谷区")
        renkei(env, "onboard", "--code", "131041", "--name", "新宿区")

        clean = renkei(env, "import", "c4th", "--tenant", "131041", *files)
        assert f"読んだ行 {PUPILS * (DAYS + 1):,}" in clean.stdout, clean.stdout
        # the run records that it came from the command line
        assert query(db, "SELECT started_via FROM m131041.edudata_importrun") == [("cli",)]
        reference = state(db, "m131041")
        assert len(reference["attendance"]) == PUPILS * DAYS

        # Killed at moments the import itself shows, not after fixed delays: on a fast
        # machine a delay outlived the run, on a slow one it ended before the run began.
        killed_at = []
        for moment, shown_by in KILL_MOMENTS.items():
            runs = query(db, "SELECT count(*) FROM m131130.edudata_importrun")[0][0]
            process = subprocess.Popen(
                [*RENKEI, "import", "c4th", "--tenant", "131130", *files],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if shown_by is None or _seen(db, shown_by.format(runs=runs), process):
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGKILL)
                    killed_at.append(moment)
            process.wait()
            # Whatever the moment, nothing half-applied is visible: all or nothing.
            rows = query(db, "SELECT count(*) FROM m131130.edudata_attendanceday")[0][0]
            assert rows in (0, PUPILS * DAYS)
        # The rollup refresh may be over before it is seen; the others cannot be.
        assert {"starting", "run recorded", "loading"} <= set(killed_at), killed_at

        renkei(env, "import", "c4th", "--tenant", "131130", *files)
        assert state(db, "m131130") == reference
        statuses = [
            r[0] for r in query(db, "SELECT status FROM m131130.edudata_importrun ORDER BY id")
        ]
        assert statuses[-1] == "succeeded"
        assert "running" not in statuses
        assert "interrupted" in statuses  # at least one kill landed inside a run
