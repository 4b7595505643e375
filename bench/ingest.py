"""Ingest speed against raw COPY, on a quiet machine and a busy one, and peak memory.

    .venv/bin/python bench/ingest.py [--rows 2000000] [--big]  (--big: 10,000,000 rows)
                                      [--quiet-only] [--memory-rows 1000000 4000000]
                                      [--skip-memory] [--web]

Generates N daily-attendance rows in the C4th format, then in the same run measures
(a) `renkei import c4th` end to end (decode, validate, pseudonymize, COPY to staging, insert,
rollups; roster and attendance files in one run) and (b) raw PostgreSQL COPY of the same
rows, already resolved to pupil ids, into the same table of another tenant, just before (a)
and just after it (their mean: a shared machine's load drifts); prints rows/s of both and
the ratio (target ≥ 0.8). Between (a) and the second (b) it also times (a'), the daily case:
the attendance file alone into a tenant whose roster was imported before (as (b)'s was),
printed beside (a), which stays the end-to-end number. After each of these timed steps the
tenant it wrote is vacuumed and analyzed, and a checkpoint taken, untimed, so that no step
pays for autovacuum visiting (or a checkpoint writing) the 2M rows the step before wrote.
Then (d), the daily file: one school day's marks for every pupil into the tenant of (a'),
which now holds the whole run, against the same file into a tenant holding only the roster
(flat is the target: an import costs what its file costs, not the year stored before it).
Then the same again with one CPU-bound process
running beside them, which this script starts and stops itself (target ≥ 0.6: on a busy
machine an import that needs a core to parse and another to load loses more than COPY).
--quiet-only skips that. Then imports files of different sizes in fresh processes and
prints each one's peak RSS, and that of its reader process (flat is the target).
With --web, also (c) the same roster and attendance files uploaded through 管理 › 取り込み
to a `renkei serve` as the page sends them (resumable, tus, in 32 MB parts; its embedded
worker runs the import), timed from the first byte sent to
the page's 完了, against (a): target ≥ 0.8. And the server process's peak RSS after a
quarter-size upload and after the full one (flat is the target: files stream to disk).
Uses a fresh embedded PostgreSQL in a temporary directory unless DATABASE_URL is set; the
server is stopped and the directory removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from onboarding import stop_embedded_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's renkei, for the raw COPY made in this process
SCHOOL = "B113211300012"
MARKS = ["", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "病", "遅", "欠"]
RUNNER = """
import resource, sys
from renkei.site.cli import main
code = main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def school_days(count: int) -> list[dt.date]:
    days, day = [], dt.date(2025, 4, 7)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def write_exports(directory: Path, rows: int, pupils: int = 10_000) -> tuple[Path, Path]:
    pupils = min(pupils, rows)
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
        for n in range(pupils):
            w.writerow(
                [
                    "2025",
                    SCHOOL,
                    "第一小学校",
                    n % 6 + 1,
                    n // 40 % 9 + 1,
                    n % 40 + 1,
                    f"C{n:07d}",
                    "山田",
                    "太郎",
                    "男",
                ]
            )
    attendance = directory / f"attendance_{rows}.csv"
    days = school_days(-(-rows // pupils))
    with attendance.open("w", encoding="cp932", newline="") as f:
        w = csv.writer(f)
        w.writerow(["学校コード", "児童生徒ID", "日付", "出欠", "理由"])
        written = 0
        for day in days:
            date = f"R{day.year - 2018}.{day.month}.{day.day}"
            for n in range(pupils):
                if written == rows:
                    break
                w.writerow([SCHOOL, f"C{n:07d}", date, MARKS[(n * 7 + day.day) % len(MARKS)], ""])
                written += 1
    return roster, attendance


def renkei(env: dict, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], env=env, check=True, capture_output=True, text=True
    )
    for line in out.stderr.splitlines():
        if " phases: " in line:  # the pipeline's log of where the time went
            print("   ", line.split(" INFO ", 1)[-1])
    return time.perf_counter() - started, out.stdout


def setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django

    django.setup()


def raw_copy_seconds(prepared: Path) -> float:
    """COPY the rows of ``prepared`` (resolve_for_copy) into the attendance table (emptied
    first) of the tenant whose roster was imported alone."""
    from django.db import connection, transaction

    from renkei.tenants.context import in_tenant

    with in_tenant(RAW_TENANT), connection.cursor() as cursor:
        cursor.execute("TRUNCATE edudata_attendanceday")
        started = time.perf_counter()
        # COPY runs inside a transaction (the backend sets the tenant's schema there); the
        # timing includes the COMMIT and its checks, as the import's does.
        with (
            transaction.atomic(),
            prepared.open("rb") as f,
            cursor.cursor.copy(
                "COPY edudata_attendanceday (student_id, date, status, reason) FROM STDIN"
            ) as copy,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - started


def resolve_for_copy(attendance: Path) -> Path:
    """The attendance rows as raw COPY takes them: pupil ids (of the tenant whose roster was
    imported alone), ISO dates, statuses."""
    from renkei.connectors.eras import parse_date
    from renkei.edudata.models import StudentIdentity
    from renkei.tenants.context import in_tenant

    status = {"": "present", "病": "absent_illness", "遅": "late", "欠": "absent_other"}
    with in_tenant(RAW_TENANT):
        ids = dict(
            StudentIdentity.objects.filter(source_system="c4th").values_list(
                "source_id", "student_id"
            )
        )
    prepared = attendance.with_suffix(".copy.tsv")
    dates: dict[str, str] = {}
    with attendance.open(encoding="cp932", newline="") as src, prepared.open("w") as out:
        reader = csv.reader(src)
        next(reader)
        for _, source_id, date, mark, reason in reader:
            iso = dates.get(date) or dates.setdefault(date, parse_date(date).isoformat())
            out.write(f"{ids[source_id]}\t{iso}\t{status[mark]}\t{reason}\n")
    return prepared


def settle(code: str) -> None:
    """VACUUM (ANALYZE) the tables of the tenant a step just wrote, untimed, so that the next
    step does not pay for autovacuum visiting those 2M rows (an import paid for the raw COPY
    before it, the daily case for the import). The other tenants are left as they are: a
    fresh tenant's tables stay never vacuumed, as a new municipality's are. Run outside a
    transaction: not through Django's connection, which sends each statement with the
    tenant's schema."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory")
    with psycopg.connect(**params, autocommit=True) as server:
        tables = server.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
            " WHERE schemaname = %s",
            [f"m{code}"],
        ).fetchall()
        server.execute(f"VACUUM (ANALYZE) {', '.join(t for (t,) in tables)}")
        # What the VACUUM dirtied is written now, not by a checkpoint during the next step.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            server.execute("CHECKPOINT")


class CpuHog:
    """One CPU-bound process beside the measured ones, for as long as the block runs."""

    def __enter__(self) -> CpuHog:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait()


def compare(
    env: dict,
    code: str,
    daily: str,
    roster: Path,
    attendance: Path,
    prepared: Path,
    rows: int,
    label: str,
) -> tuple[float, float, float]:
    """(a) once and (b) around it, as the machine is now: the ratio (a)/(b) in rows/s, that
    of the daily case (a') (the attendance file alone, into tenant ``daily``, whose roster
    was imported before, as (b)'s was), and the seconds of (a). Also the CPU time each took,
    which the machine's load does not change much: what a machine with no core to spare
    would see."""
    renkei(env, "import", "c4th", "--tenant", daily, str(roster))  # (not timed)
    load = os.getloadavg()[0]
    server = None if "DATABASE_URL" in env else Path(env["RENKEI_HOME"])
    # (b) before and after (a), averaged: the load of a shared machine drifts within minutes.
    # This process holds the embedded server from resolve_for_copy on, so that (a) neither
    # starts it nor waits for its shutdown checkpoint when it exits (pgserver stops the
    # server with the last process using it), which (b) never paid.
    settle(daily)  # its roster, just imported
    start = cpu_seconds(server)
    before = raw_copy_seconds(prepared)
    raw_ended = cpu_seconds(server)
    settle(RAW_TENANT)
    raw_started = cpu_seconds(server)
    pipeline, out = renkei(env, "import", "c4th", "--tenant", code, str(roster), str(attendance))
    print("   ", out.strip().splitlines()[0])
    raw_resumed = cpu_seconds(server)
    settle(code)
    daily_started = cpu_seconds(server)
    alone, out = renkei(env, "import", "c4th", "--tenant", daily, str(attendance))
    print("   ", out.strip().splitlines()[0])
    daily_ended = cpu_seconds(server)
    settle(daily)
    after_started = cpu_seconds(server)
    after = raw_copy_seconds(prepared)
    end = cpu_seconds(server)
    raw = (before + after) / 2
    ratio = raw / pipeline
    print(
        f"{label}: (a) renkei import c4th end to end {pipeline:.1f} s, {rows / pipeline:,.0f} "
        f"rows/s (includes process start, roster, rollups); (b) raw COPY {raw:.1f} s "
        f"({before:.1f} s before (a), {after:.1f} s after), {rows / raw:,.0f} rows/s; "
        f"ratio (a)/(b) {ratio:.2f}  "
        f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    print(
        f"{label}: (a') renkei import c4th of the attendance file alone, the roster imported "
        f"before (the daily case) {alone:.1f} s, {rows / alone:,.0f} rows/s (includes process "
        f"start, rollups); ratio (a')/(b) {raw / alone:.2f}"
    )
    a_client, a_db = (x - y for x, y in zip(raw_resumed, raw_started, strict=True))
    d_client, d_db = (x - y for x, y in zip(daily_ended, daily_started, strict=True))
    b_client, b_db = (
        (x - y + z - w) / 2 for x, y, z, w in zip(raw_ended, start, end, after_started, strict=True)
    )
    if server is not None:
        for name, client, db in (("(a)", a_client, a_db), ("(a')", d_client, d_db)):
            print(
                f"{label}: CPU time of {name} {client + db:.1f} s ({client:.1f} s in the "
                f"import's processes, {db:.1f} s in PostgreSQL), of (b) {b_client + b_db:.1f} s "
                f"({b_db:.1f} s in PostgreSQL); (b)/{name} in CPU "
                f"{(b_client + b_db) / (client + db):.2f}"
            )
    return ratio, raw / alone, pipeline


def day_file(directory: Path, day: dt.date, pupils: int = 10_000) -> Path:
    """One school day's marks for every pupil: the file a municipality sends every day."""
    path = directory / f"day_{day.isoformat()}.csv"
    with path.open("w", encoding="cp932", newline="") as f:
        w = csv.writer(f)
        w.writerow(["学校コード", "児童生徒ID", "日付", "出欠", "理由"])
        date = f"R{day.year - 2018}.{day.month}.{day.day}"
        for n in range(pupils):
            w.writerow([SCHOOL, f"C{n:07d}", date, MARKS[(n * 7 + day.day) % len(MARKS)], ""])
    return path


def one_day(env: dict, work: Path, roster: Path, rows: int) -> None:
    """(d) The daily file into ``QUIET_DAILY``, which holds the whole of (a') by now (a school
    year's marks at 2M rows), against the same file into a tenant that holds only the roster.
    Two days, in the order empty, full, full, empty (the machine's load drifts). An import
    should cost what its file costs, not what the year stored before it does: ratio ≈ 1."""
    renkei(env, "onboard", "--code", DAY_TENANT, "--name", "目黒区")
    renkei(env, "import", "c4th", "--tenant", DAY_TENANT, str(roster))
    settle(DAY_TENANT)
    pupils = min(rows, 10_000)  # the roster's (write_exports)
    stored_days = school_days(-(-rows // pupils) + 2)
    files = [day_file(work, day, pupils) for day in stored_days[-2:]]  # the next two days
    empty = renkei(env, "import", "c4th", "--tenant", DAY_TENANT, str(files[0]))[0]
    full = renkei(env, "import", "c4th", "--tenant", QUIET_DAILY, str(files[0]))[0]
    full += renkei(env, "import", "c4th", "--tenant", QUIET_DAILY, str(files[1]))[0]
    empty += renkei(env, "import", "c4th", "--tenant", DAY_TENANT, str(files[1]))[0]
    print(
        f"(d) a day's file ({pupils:,} marks) into a tenant holding {rows:,} marks: "
        f"{full / 2:.1f} s, "
        f"into one holding only the roster: {empty / 2:.1f} s (each the mean of two days, "
        f"process start included); ratio {full / empty:.2f}  (target ≈ 1: flat)"
    )


def cpu_seconds(home: Path | None) -> tuple[float, float]:
    """CPU seconds used so far by this process and its ended children (the commands it ran:
    an import and its reader), and by every process of the embedded PostgreSQL of ``home``
    (those ended included; 0 without one)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    clients = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    pid_file = home / "pgdata" / "postmaster.pid" if home else None
    if pid_file is None or not pid_file.exists():
        return clients, 0.0
    import psutil  # (pgserver's dependency)

    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    # A command's server process ends after the command does. Until the postmaster has
    # reaped it, its CPU time is in neither sum below (read as it is reaped, it is lost):
    # wait for the command's processes to be gone, as a busy machine makes them linger.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        _is_other_client(child) for child in postmaster.children()
    ):
        time.sleep(0.05)
    times = postmaster.cpu_times()  # with its children that ended
    server = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            server += sum(child.cpu_times()[:2])
    return clients, server


def _is_other_client(process) -> bool:
    """Whether ``process``, a child of the postmaster, serves a client other than this
    script's own connection, or has ended and is not reaped yet."""
    from django.db import connection

    try:
        if process.status() == "zombie":
            return True
        title = " ".join(process.cmdline())
    except Exception:  # gone meanwhile: reaped
        return False
    own = connection.connection.info.backend_pid if connection.connection else None
    client = "[local]" in title or "127.0.0.1(" in title  # "postgres: user db [local] idle"
    return client and process.pid != own


ADMIN_SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model
from renkei.accounts.actions import do_add_membership
from renkei.platform.audit import Actor
from renkei.tenants.models import Municipality
user = get_user_model().objects.create_user("bench-admin", password="bench-password-1")
for code in {codes!r}:
    do_add_membership(user, "tenant_admin", actor=Actor.system("bench"),
                      municipality=Municipality.objects.get(code=code))
"""


TUS_PART = 32 << 20  # import_upload.js's chunkSize


def tus_upload(session, endpoint: str, path: Path, csrf: str) -> str:
    """Send one file as tus-js-client does (create, then PATCH part after part): its id."""
    import base64

    tus = {"Tus-Resumable": "1.0.0", "X-CSRFToken": csrf, "Referer": endpoint}
    name = base64.b64encode(path.name.encode()).decode()
    created = session.post(
        endpoint,
        headers={
            **tus,
            "Upload-Length": str(path.stat().st_size),
            "Upload-Metadata": f"filename {name}",
        },
    )
    if created.status_code != 201:
        raise SystemExit(f"upload refused ({created.status_code}): {created.text[:500]}")
    url, offset = created.headers["Location"], 0
    with path.open("rb") as f:
        while part := f.read(TUS_PART):
            sent = session.patch(
                url,
                data=part,
                headers={
                    **tus,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            if sent.status_code != 204:
                raise SystemExit(f"part refused ({sent.status_code}): {sent.text[:500]}")
            offset = int(sent.headers["Upload-Offset"])
    return url.rsplit("/", 1)[1]


def web_import(base: str, code: str, files: list[Path]) -> float:
    """Sign in, upload ``files`` through 管理, and wait for the import's 完了: seconds."""
    import requests

    session = requests.Session()
    login = f"{base}/m/{code}/accounts/login/"
    session.get(login)
    session.post(
        login,
        data={
            "username": "bench-admin",
            "password": "bench-password-1",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": login},
    )
    page = f"{base}/m/{code}/manage/imports/new/"
    session.get(page)
    csrf = session.cookies["csrftoken"]
    started = time.perf_counter()
    # as the page sends them: each file resumably (tus), in parts of the page's chunkSize
    ids = [tus_upload(session, f"{base}/m/{code}/manage/imports/uploads/", f, csrf) for f in files]
    response = session.post(
        page,
        data={"csrfmiddlewaretoken": csrf, "connector": "c4th", "uploads": ",".join(ids)},
        headers={"Referer": page},
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise SystemExit(f"upload refused ({response.status_code}): {response.text[:500]}")
    status_url = base + response.headers["Location"] + "status.json"
    while (state := session.get(status_url).json())["live"]:
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if state["status"] != "succeeded":
        raise SystemExit(f"the uploaded import ended {state['status']}")
    return seconds


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return (
        int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        / 1024
    )


def web_path(env: dict, work: Path, roster: Path, rows: int, cli_seconds: float) -> None:
    codes = ["132012", "141003"]
    for code in codes:
        renkei(env, "onboard", "--code", code, "--name", f"ウェブ{code}")
    subprocess.run(
        [sys.executable, "-c", ADMIN_SETUP.format(codes=codes)],
        env={**env, "DJANGO_SETTINGS_MODULE": "renkei.site.settings"},
        check=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "renkei.site.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("renkei serve did not start")
            time.sleep(0.3)
        _, quarter = write_exports(work, rows // 4)
        web_import(base, codes[0], [roster, quarter])
        after_quarter = peak_rss_mb(server.pid)
        _, full = write_exports(work, rows)
        seconds = web_import(base, codes[1], [roster, full])
        after_full = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"(c) upload through 管理 and import:  {seconds:.1f} s, {rows / seconds:,.0f} rows/s "
        "(upload, queue, worker, rollups, until the page says 完了)"
    )
    print(f"ratio (c)/(a) in rows/s: {cli_seconds / seconds:.2f}  (target ≥ 0.8)")
    print(
        f"web server peak RSS: {after_quarter:.0f} MB after {rows // 4:,} rows, "
        f"{after_full:.0f} MB after {rows:,} rows (flat is the target)"
    )


RAW_TENANT = "131041"  # (b) COPYs into this tenant's table
QUIET_TENANT, BUSY_TENANT = "131130", "131016"  # (a) imports into these, fresh
QUIET_DAILY, BUSY_DAILY = "131059", "131067"  # (a') imports into these, roster imported first
DAY_TENANT = "131105"  # (d): the roster only, then a day's marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--big", action="store_true", help="10,000,000 rows")
    parser.add_argument(
        "--quiet-only", action="store_true", help="skip the run beside a CPU-bound process"
    )
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--web", action="store_true", help="also upload through 管理")
    args = parser.parse_args()
    rows = 10_000_000 if args.big else args.rows
    work = Path(tempfile.mkdtemp(prefix="renkei-ingest-"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if "DATABASE_URL" not in env:
        env["RENKEI_HOME"] = str(work / "home")
    try:
        measure(args, rows, work, env)
    finally:
        if "DATABASE_URL" not in env:
            stop_embedded_server(work / "home")
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, rows: int, work: Path, env: dict) -> None:
    renkei(env, "migrate", "-v", "0")
    tenants = [
        (QUIET_TENANT, "渋谷区"),
        (RAW_TENANT, "新宿区"),
        (QUIET_DAILY, "文京区"),
        *([] if args.quiet_only else [(BUSY_TENANT, "千代田区"), (BUSY_DAILY, "台東区")]),
    ]
    for code, name in tenants:
        renkei(env, "onboard", "--code", code, "--name", name)
    started = time.perf_counter()
    roster, attendance = write_exports(work, rows)
    print(
        f"generated {rows:,} attendance rows in {time.perf_counter() - started:.1f} s "
        f"({attendance.stat().st_size / 1e6:.0f} MB, cp932) on {os.cpu_count()} cores"
    )
    renkei(env, "import", "c4th", "--tenant", RAW_TENANT, str(roster))
    setup_django(env)
    prepared = resolve_for_copy(attendance)

    quiet, quiet_daily, pipeline = compare(
        env, QUIET_TENANT, QUIET_DAILY, roster, attendance, prepared, rows, "quiet"
    )
    one_day(env, work, roster, rows)
    if not args.quiet_only:
        with CpuHog():
            busy, busy_daily, _ = compare(
                env, BUSY_TENANT, BUSY_DAILY, roster, attendance, prepared, rows, "busy "
            )
    print(
        f"ratio (a)/(b) in rows/s, quiet machine: {quiet:.2f} end to end (roster and "
        f"attendance in one run), {quiet_daily:.2f} daily case (attendance alone)  (target ≥ 0.8)"
    )
    if not args.quiet_only:
        print(
            f"ratio (a)/(b) in rows/s, one CPU-bound process beside: {busy:.2f} end to end, "
            f"{busy_daily:.2f} daily case  (target ≥ 0.6)"
        )
    if args.web:
        web_path(env, work, roster, rows, pipeline)

    if args.skip_memory:
        return
    for size in args.memory_rows:
        code = {0: "132012", 1: "141003"}.get(args.memory_rows.index(size), "401307")
        renkei(env, "onboard", "--code", code, "--name", f"メモリ{size}")
        _, small = write_exports(work, size)
        _, out = renkei(env, "import", "c4th", "--tenant", code, str(roster), str(small))
        peak = next(line for line in out.splitlines() if line.startswith("PEAK_RSS_KB"))
        own, child = (int(kb) / 1024 for kb in peak.split()[1:])
        print(
            f"peak RSS importing {size:,} rows: {own:.0f} MB "
            f"(largest child process, the reader: {child:.0f} MB)"
        )
        small.unlink()


if __name__ == "__main__":
    main()
