"""Renkei under concurrent users: the real server (gunicorn), driven by locust from another
process, over the demo's municipalities plus generated ones.

    .venv/bin/python bench/load.py [--users 200] [--spawn-rate 2] [--run-time 300]
                                   [--think 10,30] [--push-every 60,120] [--settle 30]
                                   [--max-requests 100000] [--extra-tenants 4] [--home DIR]

1. Data: ``renkei demo --no-serve`` (8 municipalities of 東京都, 3 with boards over 3 school
   years) and ``--extra-tenants`` generated municipalities (half in 東京都, half in 大阪府,
   ``--extra-pupils`` pupils each, loaded through the real connectors as the demo does), in a
   fresh RENKEI_HOME (embedded PostgreSQL) unless ``--home`` or DATABASE_URL says where.
   Then, in a subprocess (``--prepare``): accounts for the load (teachers of every school with
   a TOTP device, board analysts, prefecture analysts), ingest tokens, the vendors' push files,
   and a JSON "world" that tells each simulated user what it may see.
2. Server: gunicorn with infra/gunicorn.conf.py on 127.0.0.1, ``WEB_CONCURRENCY`` workers
   (``--workers``, default 2 × CPUs + 1: infra/README.md gives 3 for a 1-vCPU task) × 4
   threads, persistent connections (``RENKEI_CONN_MAX_AGE=60``) as in production, and one job
   runner process that runs the pushed imports (a Celery worker's part in production).
3. Load: locust headless (bench/load_users.py) ramps to ``--users`` at ``--spawn-rate`` per
   second and stops after ``--run-time`` seconds or ``--max-requests`` requests. Each user
   waits ``--think`` seconds between two actions (a teacher reads a board before opening the
   next), a vendor ``--push-every`` seconds between two pushes. The mix:
   teachers (class and pupil boards, stepped up), board analysts (dashboards), prefecture
   analysts (the federation with a bearer token from /prefecture/token/), vendors pushing
   attendance through the ingest API, and a vendor pushing with wrong tokens.
4. Afterwards (``--verify``, once the pushed imports have run): every accepted push
   succeeded and its marks are in the database; the wrong-token pushes created no import and
   changed no mark; no municipality has an import nobody pushed.

Prints p50/p95/p99 per route, errors, the answers that carried another municipality's or
another school's data (from the response bodies), the machine's load average while running,
and whether each target is met: 0 errors, 0 cross-tenant answers, p95 ≤ 250 ms for the boards
(teachers' class and pupil boards, page and data) once all users are running (from ``--settle``
seconds after the last one started, so the sign-in rush is over). The machine is
shared: read the load average next to the times. ``tests/ops/test_load_smoke.py`` runs the same
code with a few users for a few seconds and asserts correctness only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import pwd
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: this checkout's renkei, not an installed one
    sys.path.insert(0, str(ROOT))
USERS_FILE = Path(__file__).resolve().with_name("load_users.py")
RENKEI = [sys.executable, "-m", "renkei.site.cli"]
BOARD_P95_TARGET_MS = 250.0
PASSWORD = "load-bench-pw"  # accounts of a loopback-only bench
PUSHED_MARK, PUSHED_STATUS = "停", "suspension"  # what vendors send (C4th 出席停止)
INTRUDER_MARK, INTRUDER_STATUS = "忌", "mourning"  # what the wrong-token pushes would set


# -- 1. data (runs with Django, in a subprocess: python bench/load.py --prepare SPEC WORLD) --------


def extra_tenants(n: int, pupils: int) -> list[list]:
    """``n`` generated municipalities: alternately 東京都 (13) and 大阪府 (27), codes 9xx."""
    from renkei.tenants.codes import municipality_check_digit

    tenants = []
    for i in range(n):
        first_five = f"{'13' if i % 2 == 0 else '27'}{901 + i:03d}"
        code = first_five + str(municipality_check_digit(first_five))
        # the name synth gives the municipality's schools (自治体139017立第一小学校)
        tenants.append([code, f"自治体{code}", code[:2], pupils])
    return tenants


def prepare(spec: dict, world_path: Path) -> dict:
    """Onboard and load the spec's municipalities (skipped when done), make the load's
    accounts, tokens and push files, and write the world the simulated users read."""
    import django

    django.setup()
    from renkei.demo import seed
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=0)
    for code, name, prefecture, pupils in spec["tenants"]:
        municipality = Municipality.objects.filter(code=code).first()
        if municipality is None:
            municipality = do_onboard_municipality(code, name, prefecture, actor=_actor())
        seed.load_demo_data(municipality, students=pupils)
    files = world_path.parent / "pushes"
    files.mkdir(parents=True, exist_ok=True)
    world: dict = {"password": PASSWORD, "tenants": {}, "prefectures": {}}
    for code, *_ in spec["tenants"]:
        municipality = Municipality.objects.get(code=code)
        world["tenants"][code] = _tenant_world(municipality, spec, files)
    for prefecture in sorted({t["prefecture"] for t in world["tenants"].values()}):
        years = [
            t["school_year"] for t in world["tenants"].values() if t["prefecture"] == prefecture
        ]
        world["prefectures"][prefecture] = {
            "analysts": _analysts(prefecture, spec["accounts_per_prefecture"]),
            "school_year": max(years),
        }
    world_path.write_text(json.dumps(world, ensure_ascii=False), encoding="utf-8")
    return world


def _actor():
    from renkei.platform.audit import Actor

    return Actor.system("load-bench")


_HASH: dict[str, str] = {}


def _account(username: str, role: str, *, totp: bool = False, **where) -> str:
    """The user (password PASSWORD) with that one membership; its TOTP key (hex) if asked."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from renkei.accounts.actions import do_add_membership
    from renkei.accounts.models import Membership

    if "hash" not in _HASH:  # one PBKDF2 for all the accounts
        _HASH["hash"] = make_password(PASSWORD)
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"password": _HASH["hash"]}
    )
    if created:
        do_add_membership(user, role, actor=_actor(), **where)
    elif not Membership.objects.filter(user=user, role=role).exists():
        raise SystemExit(f"{username} exists without the role {role}: use a fresh --home")
    if not totp:
        return ""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="load", defaults={"key": secrets.token_hex(20), "confirmed": True}
    )
    return device.key


def _analysts(prefecture: str, n: int) -> list[str]:
    from renkei.tenants.models import Prefecture

    names = [f"load-pref-{prefecture}-{i}" for i in range(n)]
    for name in names:
        _account(name, "prefecture_analyst", prefecture=Prefecture.for_code(prefecture))
    return names


def _tenant_world(municipality, spec: dict, files: Path) -> dict:
    """One municipality as the load sees it: schools, every pupil (name, kana, schools), the
    homerooms of its latest school year, its accounts, tokens and push files."""
    from django.db.models import Count, Max

    from renkei.accounts.tokens import do_issue_ingest_token
    from renkei.demo import synth
    from renkei.edudata import access
    from renkei.edudata.models import (
        AttendanceDay,
        Enrollment,
        Homeroom,
        ImportRun,
        School,
        Student,
        StudentIdentity,
        school_year_of,
    )
    from renkei.tenants.context import in_tenant

    code = municipality.code
    with in_tenant(municipality):
        latest = AttendanceDay.objects.aggregate(d=Max("date"))["d"]
        year = school_year_of(latest)
        schools = dict(School.objects.order_by("code").values_list("code", "name"))
        at: dict[int, set[str]] = {}
        for pk, school in Student.objects.values_list("pk", "school__code"):
            at.setdefault(pk, set()).add(school)
        for pk, school in Enrollment.objects.values_list("student_id", "homeroom__school__code"):
            at.setdefault(pk, set()).add(school)
        names = access.pupil_names(at)
        pupils = {pk: [*names.get(pk, ("", "")), sorted(s for s in at[pk] if s)] for pk in at}
        homerooms: dict[str, list[int]] = {}
        for pk, school in (
            Homeroom.objects.filter(school_year=year)
            .annotate(n=Count("enrollments"))
            .filter(n__gt=0)
            .order_by("pk")
            .values_list("pk", "school__code")
        ):
            homerooms.setdefault(school, []).append(pk)
        days = sorted(
            AttendanceDay.objects.filter(date__lte=latest)
            .order_by("-date")
            .values_list("date", flat=True)
            .distinct()[:2]
        )
        intruder_day, push_day = days[0], days[-1]
        marks = {
            day: dict(AttendanceDay.objects.filter(date=day).values_list("student_id", "status"))
            for day in (push_day, intruder_day)
        }
        c4th = StudentIdentity.objects.filter(source_system="c4th").order_by("source_id")
        ids = list(c4th.values_list("source_id", "student_id"))
        runs_before = ImportRun.objects.aggregate(n=Max("pk"))["n"] or 0
    # Vendors change marks that are not already what they send, so "landed" means something.
    changeable = [
        (s, pk) for s, pk in ids if marks[push_day].get(pk, PUSHED_STATUS) != PUSHED_STATUS
    ]
    per = spec["pupils_per_push"]
    slots = []
    for i in range(min(spec["vendor_slots"], len(changeable) // per)):
        rows = changeable[i * per : (i + 1) * per]
        path = files / f"{code}-push-{i}.csv"
        synth.write_c4th_attendance(path, [(s, push_day, PUSHED_MARK, "") for s, _ in rows])
        slots.append({"file": str(path), "students": [pk for _, pk in rows]})
    guarded = [(s, pk) for s, pk in ids if marks[intruder_day].get(pk, "") != INTRUDER_STATUS][:per]
    intruder_file = files / f"{code}-wrong-token.csv"
    synth.write_c4th_attendance(
        intruder_file, [(s, intruder_day, INTRUDER_MARK, "") for s, _ in guarded]
    )
    teachers = [
        {
            "username": (name := f"load-teacher-{code}-{school}-{i}"),
            "school": school,
            "homerooms": homerooms[school],
            "totp": _account(
                name, "teacher", totp=True, municipality=municipality, school_codes=[school]
            ),
        }
        for i in range(spec["accounts_per_school"])
        for school in schools
        if homerooms.get(school)
    ]
    boards = [f"load-board-{code}-{i}" for i in range(spec["accounts_per_tenant"])]
    for name in boards:
        _account(name, "board_analyst", municipality=municipality)
    token = do_issue_ingest_token(municipality, actor=_actor(), name="load", connectors=["c4th"])
    other = do_issue_ingest_token(
        municipality, actor=_actor(), name="load (roster only)", connectors=["oneroster"]
    )
    return {
        "name": municipality.name,
        "prefecture": code[:2],
        "school_year": year,
        "schools": schools,
        "pupils": pupils,
        "teachers": teachers,
        "boards": boards,
        "vendor": {
            "token": token.secret,
            "token_id": token.token.pk,
            "other_connector_token": other.secret,
            "slots": slots,
            "push_day": push_day.isoformat(),
            "intruder_file": str(intruder_file),
            "intruder_day": intruder_day.isoformat(),
            "intruder_students": {pk: marks[intruder_day].get(pk) for _, pk in guarded},
            "runs_before": runs_before,
        },
    }


# -- 4. after the load (Django, in a subprocess: python bench/load.py --verify WORLD RESULTS) ------


def verify(world: dict, report: dict, wait_seconds: float = 300) -> dict:
    """Wait for the pushed imports to run, then check what landed and what did not: every
    import made since the load began must be a push with the municipality's vendor token (by
    its Idempotency-Key), have succeeded and have its marks in the database; every accepted
    push must have its import; the marks the wrong-token pushes sent must not be there."""
    import django

    django.setup()
    from renkei.edudata.models import AttendanceDay, ImportRun
    from renkei.platform.models import Job
    from renkei.tenants.context import in_tenant
    from renkei.tenants.models import Municipality

    deadline = time.monotonic() + wait_seconds
    while Job.objects.exists() and time.monotonic() < deadline:
        time.sleep(1)
    result = {"queue_left": Job.objects.count(), "problems": [], "runs": 0, "landed": 0}
    problems = result["problems"]
    attempts, accepted = report["attempts"], {p["run"]: p for p in report["pushes"]}
    for code, tenant in world["tenants"].items():
        vendor = tenant["vendor"]
        with in_tenant(Municipality.objects.get(code=code)):
            runs = ImportRun.objects.filter(pk__gt=vendor["runs_before"]).values_list(
                "pk", "status", "ingest_token_id", "client_request_id"
            )
            found = set()
            for pk, status, token_id, key in runs:
                result["runs"] += 1
                found.add(pk)
                attempt = attempts.get(key)
                if attempt is None or attempt["tenant"] != code or token_id != vendor["token_id"]:
                    problems.append(f"{code}: import #{pk} was not pushed with a valid token")
                    continue
                if status != ImportRun.Status.SUCCEEDED:
                    problems.append(f"{code}: pushed import #{pk} is {status}")
                    continue
                students = attempt["slot"]["students"]
                marks = AttendanceDay.objects.filter(
                    student_id__in=students, date=vendor["push_day"]
                ).values_list("status", flat=True)
                if list(marks) != [PUSHED_STATUS] * len(students):
                    problems.append(f"{code}: the marks of import #{pk} are not there")
                else:
                    result["landed"] += 1
            lost = [
                run for run, push in accepted.items() if push["tenant"] == code and run not in found
            ]
            if lost:
                problems.append(f"{code}: accepted pushes without an import: {lost}")
            now = dict(
                AttendanceDay.objects.filter(
                    student_id__in=[int(pk) for pk in vendor["intruder_students"]],
                    date=vendor["intruder_day"],
                ).values_list("student_id", "status")
            )
            before = {int(pk): s for pk, s in vendor["intruder_students"].items()}
            if now != {pk: s for pk, s in before.items() if s is not None}:
                problems.append(f"{code}: marks the wrong-token pushes sent changed")
    if result["queue_left"]:
        problems.append(
            f"{result['queue_left']} pushed imports still queued after {wait_seconds} s"
        )
    return result


# -- 2. the server and the job runner --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def server(env: dict, workers: int, log_dir: Path):
    """gunicorn (infra/gunicorn.conf.py) on a free loopback port, and the job runner; yields
    the base URL."""
    port = free_port()
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_LOG_LEVEL": "warning",
        "RENKEI_CONN_MAX_AGE": env.get("RENKEI_CONN_MAX_AGE", "60"),
    }
    env.pop("CELERY_BROKER_URL", None)  # the pushed imports are the job runner's
    logs = [(log_dir / name).open("wb") for name in ("gunicorn.log", "jobs.log")]
    # The job runner first: with the embedded database it keeps the server up for gunicorn.
    jobs = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--jobs"],
        env=env,
        cwd=ROOT,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "infra/gunicorn.conf.py",
            "renkei.site.wsgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _healthy(f"{base}/healthz"):
            for process, name in ((web, "gunicorn.log"), (jobs, "jobs.log")):
                if process.poll() is not None:
                    tail = (log_dir / name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name[:-4]} stopped (exit {process.returncode}):\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /healthz within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        for process in (web, jobs):
            process.terminate()
        for process in (web, jobs):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def stop_embedded(home: Path) -> None:
    """Stop the embedded PostgreSQL of ``home``. pgserver stops it when its last user exits
    normally, but gunicorn's workers end by signal and stay on its list: without this the
    bench would leave the server running."""
    import pgserver

    pgdata = home / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    as_owner = {"user": owner} if owner != pwd.getpwuid(os.geteuid()).pw_name else {}
    pgserver.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, **as_owner)


def run_jobs() -> None:
    """The job runner: runs queued imports as they come (the embedded worker, polling)."""
    import django

    django.setup()
    from renkei.connectors import jobs

    jobs.start_embedded_worker(poll_seconds=0.5).join()


# -- 3. the load ------------------------------------------------------------------------------


def drive(
    base: str,
    world_path: Path,
    out: Path,
    *,
    users: int,
    spawn_rate: float,
    run_time: int,
    max_requests: int,
    think: str = "10,30",
    push_every: str = "60,120",
    settle: float = 30,
    each: int = 0,
    canary: bool = False,
    until_each_done: bool = False,
    env: dict | None = None,
) -> dict:
    """Run locust headless against ``base``; returns the users' report (load_users.py)."""
    report = out / "locust-report.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "locust", "-f", str(USERS_FILE), "--headless",
        "--host", base, "--users", str(users), "--spawn-rate", str(spawn_rate),
        "--run-time", f"{run_time}s", "--stop-timeout", "30", "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    locust_env = {
        **(env or os.environ),
        "RENKEI_LOAD_WORLD": str(world_path),
        "RENKEI_LOAD_REPORT": str(report),
        "RENKEI_LOAD_THINK": think,
        "RENKEI_LOAD_PUSH_EVERY": push_every,
        "RENKEI_LOAD_SETTLE": str(settle),
        "RENKEI_LOAD_MAX_REQUESTS": str(max_requests),
        "RENKEI_LOAD_EACH": str(each),
        "RENKEI_LOAD_CANARY": "1" if canary else "",
        "RENKEI_LOAD_UNTIL_DONE": "1" if until_each_done else "",
    }
    with (out / "locust.log").open("wb") as log:
        subprocess.run(
            command, env=locust_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            timeout=run_time + 300, check=False,
        )  # fmt: skip
    if not report.exists():
        tail = (out / "locust.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust wrote no report:\n{tail}")
    return json.loads(report.read_text(encoding="utf-8"))


def _django(env: dict, *args: str, timeout: int = 3600) -> str:
    """This file with Django (--prepare, --verify), in a subprocess of the same environment."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env={**env, "DJANGO_SETTINGS_MODULE": "renkei.site.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"load.py {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def run(
    env: dict,
    out: Path,
    tenants: list[list],
    *,
    users: int,
    spawn_rate: float,
    run_time: int,
    max_requests: int,
    workers: int,
    think: str = "10,30",
    push_every: str = "60,120",
    settle: float = 30,
    each: int = 0,
    canary: bool = False,
    until_each_done: bool = False,
    vendor_slots: int = 4,
) -> dict:
    """Prepare the world, serve, drive, verify. Returns everything measured (see summarize)."""
    teacher_share = 1.0 if each else 12 / 20
    schools = max(1, 3 * len(tenants))
    spec = {
        "tenants": tenants,
        "accounts_per_school": max(2, each + 1, math.ceil(users * teacher_share / schools) + 1),
        "accounts_per_tenant": 2,
        "accounts_per_prefecture": 2,
        "vendor_slots": vendor_slots,
        "pupils_per_push": 10,
    }
    spec_path, world_path = out / "spec.json", out / "world.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    started = time.monotonic()
    _django(env, "--prepare", str(spec_path), str(world_path))
    prepared = time.monotonic() - started
    world = json.loads(world_path.read_text(encoding="utf-8"))
    load_before = os.getloadavg()
    with server(env, workers, out) as base:
        report = drive(
            base, world_path, out, users=users, spawn_rate=spawn_rate, run_time=run_time,
            max_requests=max_requests, think=think, push_every=push_every, settle=settle,
            each=each, canary=canary, until_each_done=until_each_done, env=env,
        )  # fmt: skip
        pushes_path = out / "pushes.json"
        pushes = {"attempts": report["attempts"], "pushes": report["pushes"]}
        pushes_path.write_text(json.dumps(pushes), encoding="utf-8")
        checked = json.loads(_django(env, "--verify", str(world_path), str(pushes_path)))
    return {
        "report": report,
        "verified": checked,
        "world": world,
        "users": users,
        "workers": workers,
        "prepared_seconds": prepared,
        "load_before": load_before,
    }


# -- the report -------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def is_board(route: str) -> bool:
    return route.startswith("board: ")


def summarize(result: dict) -> dict:
    """The figures the bench prints and the smoke test asserts."""
    report, checked = result["report"], result["verified"]
    board_times = [t for route, ts in report["full_times"].items() if is_board(route) for t in ts]
    refused = sum(n for kind, n in report["refusals"].items() if kind.endswith((": 401", ": 403")))
    return {
        "requests": sum(len(ts) for ts in report["times"].values()),
        "errors": sum(report["failures"].values()),
        "cross_tenant_answers": len(report["leaks"]),
        "board_p95_full_ms": percentile(board_times, 95) if board_times else None,
        "board_requests_full": len(board_times),
        "wrong_token_pushes": sum(report["refusals"].values()),
        "wrong_token_refused": refused,
        "pushes_accepted": len(report["pushes"]),
        "pushes_imported": checked["runs"],
        "pushes_landed": checked["landed"],
        "push_problems": checked["problems"],
        "reached_full": report["reached_full"],
    }


def print_report(result: dict) -> dict:
    report = result["report"]
    figures = summarize(result)
    print(f"\n{'route':<42} {'n':>6} {'err':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  ms")
    for route in sorted(report["times"]):
        times = report["times"][route]
        print(
            f"{route:<42} {len(times):>6} {report['failures'].get(route, 0):>5} "
            f"{percentile(times, 50):>7.0f} {percentile(times, 95):>7.0f} "
            f"{percentile(times, 99):>7.0f} {max(times):>7.0f}"
        )
    full = report["full_times"]
    if full:
        print(f"\nonce all {result['users']} users were running (and had settled):")
        for route in sorted(full):
            if full[route]:
                print(
                    f"  {route:<40} n {len(full[route]):>6}  p50 {percentile(full[route], 50):>6.0f}"
                    f"  p95 {percentile(full[route], 95):>6.0f}  p99 {percentile(full[route], 99):>6.0f}"
                )
    for sample in report["failure_samples"][:10]:
        print(f"  error: {sample}")
    for leak in report["leaks"][:10]:
        print(f"  cross-tenant: {leak}")
    for problem in figures["push_problems"][:10]:
        print(f"  push: {problem}")
    loads = [value for _, value in report["load"]]
    print(
        f"\nmachine: {os.cpu_count()} CPUs; load average (1 min) before {result['load_before'][0]:.1f}, "
        f"during the run min {min(loads):.1f} / mean {statistics.mean(loads):.1f} / "
        f"max {max(loads):.1f} ({len(loads)} samples)"
    )
    print(
        f"requests {figures['requests']}, errors {figures['errors']}, "
        f"cross-tenant or cross-school answers {figures['cross_tenant_answers']}; "
        f"pushes accepted {figures['pushes_accepted']} (imports {figures['pushes_imported']}, "
        f"landed {figures['pushes_landed']}); "
        f"wrong-token pushes {figures['wrong_token_pushes']}, refused {figures['wrong_token_refused']}"
    )
    p95 = figures["board_p95_full_ms"]
    targets = [
        ("0 errors", figures["errors"] == 0),
        ("0 cross-tenant or cross-school answers", figures["cross_tenant_answers"] == 0),
        (
            f"p95 of the boards ≤ {BOARD_P95_TARGET_MS:.0f} ms at {result['users']} users "
            f"(measured {'—' if p95 is None else f'{p95:.0f} ms'})",
            p95 is not None and figures["reached_full"] and p95 <= BOARD_P95_TARGET_MS,
        ),
        (
            "wrong-token pushes refused, with no effect",
            figures["wrong_token_refused"] == figures["wrong_token_pushes"]
            and not figures["push_problems"],
        ),
        (
            "every accepted push landed",
            figures["pushes_landed"] == figures["pushes_imported"] >= figures["pushes_accepted"]
            and not figures["push_problems"],
        ),
    ]
    print()
    for label, met in targets:
        print(f"  [{'met' if met else 'NOT MET'}] {label}")
    return figures


# -- entry points -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=2, help="users started per second")
    parser.add_argument("--run-time", type=int, default=300, help="seconds, ramp included")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--think", default="10,30", help="seconds between two actions: min,max")
    parser.add_argument("--push-every", default="60,120", help="seconds between two pushes")
    parser.add_argument(
        "--settle", type=float, default=30, help="seconds after the ramp before full-load times"
    )
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--extra-tenants", type=int, default=4)
    parser.add_argument("--extra-pupils", type=int, default=300)
    parser.add_argument("--home", help="RENKEI_HOME to build or reuse (default: a fresh one)")
    parser.add_argument("--prepare", nargs=2, metavar=("SPEC", "WORLD"), help=argparse.SUPPRESS)
    parser.add_argument("--verify", nargs=2, metavar=("WORLD", "PUSHES"), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    if args.prepare:
        spec = json.loads(Path(args.prepare[0]).read_text(encoding="utf-8"))
        prepare(spec, Path(args.prepare[1]))
        return
    if args.verify:
        world = json.loads(Path(args.verify[0]).read_text(encoding="utf-8"))
        pushes = json.loads(Path(args.verify[1]).read_text(encoding="utf-8"))
        print(json.dumps(verify(world, pushes)))
        return
    if args.jobs:
        run_jobs()
        return

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "DEBUG": "false"}
    if "DATABASE_URL" not in env:
        env["RENKEI_HOME"] = args.home or tempfile.mkdtemp(prefix="renkei-load-")
    out = Path(env.get("RENKEI_HOME") or tempfile.mkdtemp(prefix="renkei-load-")) / "load"
    shutil.rmtree(out / "pushes", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"data: renkei demo --no-serve in {env.get('RENKEI_HOME') or env['DATABASE_URL']} …",
        flush=True,
    )
    subprocess.run(
        [*RENKEI, "demo", "--no-serve"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    from renkei.demo.world import DEMO_MUNICIPALITIES, DEMO_PREFECTURE, DEMO_SMALL_MUNICIPALITIES

    tenants = [[c, n, DEMO_PREFECTURE, 600] for c, n in DEMO_MUNICIPALITIES]
    tenants += [[c, n, DEMO_PREFECTURE, p] for c, n, p in DEMO_SMALL_MUNICIPALITIES]
    tenants += extra_tenants(args.extra_tenants, args.extra_pupils)
    print(
        f"load: {args.users} users (+{args.spawn_rate:g}/s), {args.run_time} s or "
        f"{args.max_requests} requests, think {args.think} s, pushes every {args.push_every} s; gunicorn {args.workers} workers × 4 "
        f"threads; {len(tenants)} municipalities; logs in {out}",
        flush=True,
    )
    started = dt.datetime.now()
    try:
        result = run(
            env, out, tenants, users=args.users, spawn_rate=args.spawn_rate,
            run_time=args.run_time, max_requests=args.max_requests, workers=args.workers,
            think=args.think, push_every=args.push_every, settle=args.settle,
        )  # fmt: skip
    finally:
        if "DATABASE_URL" not in env:
            stop_embedded(Path(env["RENKEI_HOME"]))
    print(f"prepared in {result['prepared_seconds']:.0f} s; run started {started:%H:%M:%S}")
    print_report(result)


if __name__ == "__main__":
    main()
