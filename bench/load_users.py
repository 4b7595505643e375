"""The simulated users of bench/load.py: a locustfile, run by locust in its own process.

    locust -f bench/load_users.py --headless --host http://127.0.0.1:PORT  (bench/load.py does it)

Reads the world that ``bench/load.py --prepare`` wrote (``RENKEI_LOAD_WORLD``: tenants, their
schools, pupils and names, the accounts and ingest tokens) and plays, against the real server:

* teachers: sign in through the login form, step up with their TOTP code, open the class list,
  a class board (page + the widget's GraphQL query) and a pupil board of their class (page, the
  board's query and, stepped up, its sensitive part);
* board analysts: sign in, open 長期欠席 and a school's karte (pages + the widgets' metric query);
* prefecture analysts: sign in on the public host, issue a federation token on
  /prefecture/token/ and query the federation with it (POST /federation/graphql, bearer);
* vendors: push a C4th attendance file to their municipality's ingest API and follow it;
* a vendor with a wrong token: no token, a made-up one, another municipality's, or one that
  does not allow the connector. Each must be refused (401/403).

Every answer is checked against what the user may see: a pupil in a board answer must be one of
the teacher's own school, with that pupil's own name; no body may carry a pupil name, school
name or municipality name that only another school, municipality or prefecture has. Such an
answer counts as a cross-tenant answer (and a failure). At the end the measurements go to
``RENKEI_LOAD_REPORT`` (JSON) for bench/load.py to print and check.

Settings from the environment: ``RENKEI_LOAD_THINK`` ("min,max" seconds between two actions of
one user; default 10,30), ``RENKEI_LOAD_PUSH_EVERY`` (the same for vendors; 60,120),
``RENKEI_LOAD_SETTLE`` (seconds after the last user started before "at full load" times are
taken; 30), ``RENKEI_LOAD_MAX_REQUESTS`` (stop after that many), ``RENKEI_LOAD_EACH`` (that many
users of every kind instead of the weighted mix; the smoke test).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import re
import threading
import time
import uuid
from urllib.parse import urlsplit

import gevent
from django_otp.oath import totp
from locust import HttpUser, between, events, task

with open(os.environ["RENKEI_LOAD_WORLD"], encoding="utf-8") as _world:
    WORLD = json.load(_world)
REPORT = os.environ.get("RENKEI_LOAD_REPORT", "")
THINK = tuple(float(x) for x in os.environ.get("RENKEI_LOAD_THINK", "10,30").split(","))
PUSH_EVERY = tuple(float(x) for x in os.environ.get("RENKEI_LOAD_PUSH_EVERY", "60,120").split(","))
SETTLE = float(os.environ.get("RENKEI_LOAD_SETTLE", "30") or 0)
MAX_REQUESTS = int(os.environ.get("RENKEI_LOAD_MAX_REQUESTS", "0") or 0)
EACH = int(os.environ.get("RENKEI_LOAD_EACH", "0") or 0)
CANARY = os.environ.get("RENKEI_LOAD_CANARY", "") == "1"
UNTIL_DONE = os.environ.get("RENKEI_LOAD_UNTIL_DONE", "") == "1"
PASSWORD = WORLD["password"]

# What the widgets send (renkei/graphql/widgets/src/boards.js and queries.js).
CLASS_BOARD = """query RenkeiClassBoard($homeroomId: ID!, $asOf: Date) {
  classBoard(homeroomId: $homeroomId, asOf: $asOf) {
    asOf homeroom { id name grade schoolYear school { name } }
    rules { rule threshold description }
    pupils { attendanceNumber pupil { id name nameKana optedOut }
      absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
      alerts { rule days threshold firstDate lastDate message } alertsExcludedReason
      recentAttendance(days: 14) { date status } }
    learningWeeks { weekStart pupils activePupils totalMinutes medianMinutes } } }"""
STUDENT_BOARD = """query RenkeiStudentBoard($studentId: ID!, $asOf: Date) {
  me { stepUp }
  studentBoard(studentId: $studentId, asOf: $asOf) {
    asOf pupil { id name nameKana grade optedOut school { name } }
    homeroom { name schoolYear } attendanceNumber
    absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message } alertsExcludedReason
    attendance { date status statusLabel } health { date condition }
    nurseVisits { visitedAt reasonCategory }
    assessments { name subject takenOn kind score maxScore }
    evaluations { term subject rating viewpoints { name grade } }
    m365Usage { date app active }
    learningWeeks { weekStart minutes activities subjects { subject minutes activities } } } }"""
STUDENT_BOARD_SENSITIVE = """query RenkeiStudentBoardSensitive($studentId: ID!, $asOf: Date) {
  studentBoard(studentId: $studentId, asOf: $asOf) {
    attendance { date reason } health { date symptoms } nurseVisits { visitedAt note }
    surveys { survey answeredOn answers freeCommentWithheld } } }"""
TENANT_METRIC = """query RenkeiWidgetMetric($name: String!, $schoolYear: Int!,
    $breakdown: [String!], $schoolCode: String) {
  metrics { name labelJa unit dimensions categories }
  metric(name: $name, schoolYear: $schoolYear, breakdown: $breakdown, schoolCode: $schoolCode) {
    metric schoolCode schoolYear unit dimensions k
    cells { key { dimension value label } pupils value suppressed reason numerator denominator }
  } }"""
FEDERATION = """query($code: String!, $year: Int!) { prefecture(code: $code) { code name
  longTermAbsence(schoolYear: $year, byMunicipality: true, byGrade: true) { ...Result }
  attendanceRate(schoolYear: $year, byMunicipality: true) { ...Result } } }
fragment Result on MetricResult { schoolYear dimensions k complete
  labels { dimension code label } cells { key pupils value suppressed reason }
  missing { code name status reason } }"""

# -- what each user may see -----------------------------------------------------------------

# A pupil's name as the API writes it: "姓 名" in kanji, hiragana or katakana. Every pair of
# neighbouring words of one script is a candidate (overlapping: "です やまだ たろう" gives
# "です やまだ" and "やまだ たろう"), so text around a name never hides it.
NAME_RES = [
    re.compile(rf"(?<![{chars}])(?=([{chars}]+ [{chars}]+))")
    for chars in ("一-龥々ヶ", "ぁ-ゖー", "ァ-ヺー")
]


def name_candidates(text: str) -> set[str]:
    return {found for pattern in NAME_RES for found in pattern.findall(text)}


TENANTS = WORLD["tenants"]
ALL_NAMES: set[str] = set()
for _t in TENANTS.values():
    for _name, _kana, _schools in _t["pupils"].values():
        ALL_NAMES.update((_name, _kana))
ALL_SCHOOLS = {name for t in TENANTS.values() for name in t["schools"].values()}


class Scope:
    """What one user may see: the pupils of ``pupil_schools`` (by id, under their own names),
    the names of ``schools`` and of the municipalities ``municipalities``. ``leaks(text)``
    lists what in a body belongs to anyone else."""

    def __init__(self, municipalities=(), schools=(), pupil_schools=()):
        self.other_municipalities = [
            t["name"] for c, t in TENANTS.items() if c not in set(municipalities)
        ]
        self.schools = {
            name for c in municipalities for s, name in TENANTS[c]["schools"].items()
            if s in set(schools)
        }  # fmt: skip
        self.pupils = {
            int(pk): (name, kana)
            for c in municipalities
            for pk, (name, kana, at) in TENANTS[c]["pupils"].items()
            if set(pupil_schools).intersection(at)
        }
        self.forbidden_names = ALL_NAMES - {n for pair in self.pupils.values() for n in pair}
        self.forbidden_schools = sorted(ALL_SCHOOLS - self.schools)

    @classmethod
    def teacher(cls, code: str, school: str) -> Scope:
        return cls([code], [school], [school])

    @classmethod
    def board(cls, code: str) -> Scope:
        return cls([code], TENANTS[code]["schools"])

    @classmethod
    def prefecture(cls, prefecture: str) -> Scope:
        return cls([c for c, t in TENANTS.items() if t["prefecture"] == prefecture])

    def leaks(self, text: str) -> list[str]:
        found = [f"pupil name {n}" for n in name_candidates(text) & self.forbidden_names]
        found += [f"school {s}" for s in self.forbidden_schools if s in text]
        found += [f"municipality {m}" for m in self.other_municipalities if m in text]
        return found

    def pupil_leaks(self, pupils) -> list[str]:
        """Pupils of a board answer: each must be one of ours, under its own name."""
        found = []
        for pupil in pupils:
            mine = self.pupils.get(int(pupil["id"]))
            if mine is None:
                found.append(f"pupil #{pupil['id']} of another school or municipality")
            elif pupil.get("name") not in (None, mine[0]):
                found.append(f"pupil #{pupil['id']} under another name")
        return found


# -- measurements -----------------------------------------------------------------------------

STATE: dict = {"full": False, "requests": 0, "environment": None}
TIMES: dict[str, list[float]] = collections.defaultdict(list)
FULL_TIMES: dict[str, list[float]] = collections.defaultdict(list)
FAILURES: dict[str, int] = collections.Counter()
SAMPLES: list[str] = []
LEAKS: list[str] = []
CANARY_LEAKS: list[str] = []
PUSHES: list[dict] = []  # accepted (202)
ATTEMPTS: dict[str, dict] = {}  # every push with a valid token, by its Idempotency-Key
REFUSALS: dict[str, int] = collections.Counter()
LOAD: list[tuple[float, float]] = []
LOCK = threading.Lock()


@events.spawning_complete.add_listener
def _full(user_count, **_kw):
    """Measure "at full load" once every user runs and the sign-in rush has settled."""

    def settled():
        gevent.sleep(SETTLE)
        STATE["full"] = True

    gevent.spawn(settled)


@events.request.add_listener
def _measured(request_type, name, response_time, exception, context, **_kw):
    TIMES[name].append(response_time)
    if STATE["full"]:
        FULL_TIMES[name].append(response_time)
    if exception is not None:
        FAILURES[name] += 1
        if len(SAMPLES) < 30:
            SAMPLES.append(f"{name}: {exception}"[:400])
    STATE["requests"] += 1
    if MAX_REQUESTS and STATE["requests"] == MAX_REQUESTS:
        gevent.spawn(STATE["environment"].runner.quit)


DONE: set[str] = set()


def _done(user) -> None:
    """One kind of user finished a whole action; with ``RENKEI_LOAD_UNTIL_DONE=1`` (the smoke
    test) the load stops once every kind has, instead of after a fixed time a busy machine may
    not give every kind."""
    DONE.add(type(user).__name__)
    kinds = {cls.__name__ for cls in STATE["environment"].user_classes}
    if UNTIL_DONE and kinds <= DONE and not STATE.get("stopping"):
        STATE["stopping"] = True
        gevent.spawn(STATE["environment"].runner.quit)


@events.init.add_listener
def _started(environment, **_kw):
    STATE["environment"] = environment
    host = urlsplit(environment.host or "").hostname
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"the load test drives loopback only, not {environment.host!r}")

    def sample():
        while True:
            LOAD.append((time.time(), os.getloadavg()[0]))
            gevent.sleep(5)

    gevent.spawn(sample)


@events.quitting.add_listener
def _write_report(environment, **_kw):
    LOAD.append((time.time(), os.getloadavg()[0]))
    if not REPORT:
        return
    report = {
        "times": TIMES,
        "full_times": FULL_TIMES,
        "failures": FAILURES,
        "failure_samples": SAMPLES,
        "leaks": LEAKS,
        "canary_leaks": CANARY_LEAKS,
        "pushes": PUSHES,
        "attempts": ATTEMPTS,
        "refusals": REFUSALS,
        "load": LOAD,
        "reached_full": STATE["full"],
    }
    with open(REPORT, "w", encoding="utf-8") as out:
        json.dump(report, out, ensure_ascii=False)


def _users(kind: str):
    """The accounts of one kind, spread over municipalities (and schools), in turn."""
    pools = {
        "teacher": [(code, a) for code, t in TENANTS.items() for a in t["teachers"]],
        "board": [(code, a) for code, t in TENANTS.items() for a in t["boards"]],
        "vendor": [(code, s) for code, t in TENANTS.items() for s in t["vendor"]["slots"]],
    }[kind]
    by_tenant = collections.defaultdict(list)
    for code, account in pools:
        by_tenant[code].append(account)
    ordered = [
        (code, a)
        for row in itertools.zip_longest(*by_tenant.values())
        for code, a in zip(by_tenant, row, strict=True)
        if a is not None
    ]
    return itertools.cycle(ordered)


ACCOUNTS = {kind: _users(kind) for kind in ("teacher", "board", "vendor")}
ANALYSTS = itertools.cycle(
    [(pref, a) for pref, p in WORLD["prefectures"].items() for a in p["analysts"]]
)
INTRUSIONS = itertools.count()


# -- the users --------------------------------------------------------------------------------


class RenkeiUser(HttpUser):
    abstract = True
    wait_time = between(*THINK)
    canary = False

    def check(self, response, scope: Scope, *, pupils=(), expect=(200,)) -> dict | None:
        """Fail the request on a wrong status, a GraphQL error or a leak; returns JSON."""
        payload = None
        if response.status_code not in expect:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        text = response.text
        if "json" in response.headers.get("Content-Type", ""):
            payload = response.json()
            text = json.dumps(payload, ensure_ascii=False)
            if isinstance(payload, dict) and payload.get("errors"):
                response.failure(f"GraphQL errors: {text[:300]}")
                return None
        leaks = scope.leaks(text)
        if pupils and payload is not None:
            leaks += scope.pupil_leaks(pupils(payload))
        if leaks and self.canary:  # found what it was built to find: not a failure
            CANARY_LEAKS.extend(leaks)
        elif leaks:
            with LOCK:
                LEAKS.append(f"{response.request.method} {response.url}: {', '.join(leaks)[:300]}")
            response.failure("cross-tenant or cross-school data: " + ", ".join(leaks)[:300])
            return None
        response.success()
        return payload

    def sign_in(self, prefix: str, username: str) -> bool:
        self.client.get(f"{prefix}/accounts/login/", name="sign in (form)")
        with self.client.post(
            f"{prefix}/accounts/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
                "next": f"{prefix}/",
            },
            allow_redirects=False,
            name="sign in",
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"sign-in of {username} answered {response.status_code}")
                return False
        return True

    def graphql(self, path: str, query: str, variables: dict, name: str, token: str = ""):
        """What a widget sends: the session with its CSRF token, or a bearer token."""
        if token:
            headers = {"Authorization": f"Bearer {token}"}
        else:
            headers = {"X-CSRFToken": self.client.cookies.get("csrftoken", "")}
        return self.client.post(
            path,
            data=json.dumps({"query": query, "variables": variables}),
            headers={"Content-Type": "application/json", **headers},
            name=name,
            catch_response=True,
        )


class Teacher(RenkeiUser):
    """教員: class and pupil boards of their school, stepped up for the sensitive part."""

    weight = 12

    def on_start(self):
        self.code, account = next(ACCOUNTS["teacher"])
        self.prefix = f"/m/{self.code}"
        self.scope = Scope.teacher(self.code, account["school"])
        self.homerooms = account["homerooms"]
        self.pupil_ids: list[int] = []
        self.ready = self.sign_in(self.prefix, account["username"])
        if self.ready:
            self.step_up(account["totp"])

    def step_up(self, key: str, attempts: int = 2) -> None:
        """Type the authenticator's code; once more with the next code if it expired on the
        way (an overloaded server can take longer than the code's 30 s)."""
        for attempt in range(attempts):
            with self.client.post(
                f"{self.prefix}/accounts/verify/",
                data={
                    "otp_token": f"{totp(bytes.fromhex(key)):06d}",
                    "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
                },
                allow_redirects=False,
                name="step-up (TOTP)",
                catch_response=True,
            ) as response:
                if response.status_code == 302:
                    return
                if attempt + 1 < attempts:
                    response.success()  # retyped below
                else:
                    response.failure(f"step-up answered {response.status_code} twice")

    @task(3)
    def class_board(self):
        if not self.ready:
            return
        with self.client.get(
            f"{self.prefix}/boards/classes/", name="teacher: class list", catch_response=True
        ) as r:
            self.check(r, self.scope)
        homeroom = random.choice(self.homerooms)
        with self.client.get(
            f"{self.prefix}/boards/classes/{homeroom}/",
            name="board: class board page",
            catch_response=True,
        ) as r:
            self.check(r, self.scope)
        with self.graphql(
            f"{self.prefix}/graphql",
            CLASS_BOARD,
            {"homeroomId": homeroom, "asOf": None},
            "board: class board data (GraphQL)",
        ) as r:
            payload = self.check(
                r,
                self.scope,
                pupils=lambda p: [x["pupil"] for x in p["data"]["classBoard"]["pupils"]],
            )
        if payload:
            self.pupil_ids = [
                int(x["pupil"]["id"]) for x in payload["data"]["classBoard"]["pupils"]
            ]
        if self.canary:
            _done(self)

    @task(2)
    def pupil_board(self):
        if not self.ready or not self.pupil_ids:
            return
        pupil = random.choice(self.pupil_ids)
        with self.client.get(
            f"{self.prefix}/boards/students/{pupil}/",
            name="board: pupil board page",
            catch_response=True,
        ) as r:
            self.check(r, self.scope)
        with self.graphql(
            f"{self.prefix}/graphql",
            STUDENT_BOARD,
            {"studentId": pupil, "asOf": None},
            "board: pupil board data (GraphQL)",
        ) as r:
            self.check(r, self.scope, pupils=lambda p: [p["data"]["studentBoard"]["pupil"]])
        with self.graphql(
            f"{self.prefix}/graphql",
            STUDENT_BOARD_SENSITIVE,
            {"studentId": pupil, "asOf": None},
            "board: pupil board sensitive (GraphQL)",
        ) as r:
            self.check(r, self.scope)
        _done(self)


class BoardAnalyst(RenkeiUser):
    """教育委員会: the municipality's statistics, never a pupil."""

    weight = 4

    def on_start(self):
        self.code, username = next(ACCOUNTS["board"])
        self.prefix = f"/m/{self.code}"
        self.scope = Scope.board(self.code)
        self.year = TENANTS[self.code]["school_year"]
        self.ready = self.sign_in(self.prefix, username)

    def metric(self, name: str, **variables):
        with self.graphql(
            f"{self.prefix}/graphql",
            TENANT_METRIC,
            {"name": name, "schoolYear": self.year, **variables},
            "dashboard: metric (GraphQL)",
        ) as r:
            self.check(r, self.scope)

    @task(2)
    def long_term_absence(self):
        if not self.ready:
            return
        with self.client.get(
            f"{self.prefix}/analysis/long-term-absence/",
            name="dashboard: 長期欠席 page",
            catch_response=True,
        ) as r:
            self.check(r, self.scope)
        self.metric("long_term_absence", breakdown=["grade"])
        self.metric("attendance_rate", breakdown=["month"])

    @task(1)
    def school_karte(self):
        if not self.ready:
            return
        school = random.choice(list(TENANTS[self.code]["schools"]))
        with self.client.get(
            f"{self.prefix}/analysis/schools/{school}/",
            name="dashboard: school karte page",
            catch_response=True,
        ) as r:
            self.check(r, self.scope)
        self.metric("attendance_rate", breakdown=["month"], schoolCode=school)
        _done(self)


class PrefectureAnalyst(RenkeiUser):
    """都道府県: the federation, with a token issued on the prefecture's token page."""

    weight = 2

    def on_start(self):
        self.prefecture, username = next(ANALYSTS)
        self.scope = Scope.prefecture(self.prefecture)
        self.year = WORLD["prefectures"][self.prefecture]["school_year"]
        self.token = ""
        if not self.sign_in("", username):
            return
        self.client.get("/prefecture/token/", name="prefecture: token page")
        with self.client.post(
            "/prefecture/token/",
            data={"days": "1", "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")},
            name="prefecture: issue token",
            catch_response=True,
        ) as r:
            found = re.search(r'data-testid="analyst-token">([^<]+)<', r.text)
            if r.status_code != 200 or not found:
                r.failure(f"no token issued ({r.status_code})")
                return
            self.token = found.group(1).strip()
        self.client.cookies.clear()  # from here on the bearer token only, as a gateway would

    @task
    def federation(self):
        if not self.token:
            return
        with self.graphql(
            "/federation/graphql",
            FEDERATION,
            {"code": self.prefecture, "year": self.year},
            "prefecture: federation (GraphQL)",
            token=self.token,
        ) as r:
            self.check(r, self.scope)
        _done(self)


def _push(client, code: str, token: str | None, path: str, name: str, key: str):
    headers = {"Idempotency-Key": key}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with open(path, "rb") as f:
        return client.post(
            f"/m/{code}/api/v1/imports",
            data={"connector": "c4th", "kind": "attendance"},
            files={"files": ("attendance.csv", f.read(), "text/csv")},
            headers=headers,
            name=name,
            catch_response=True,
        )


class Vendor(RenkeiUser):
    """校務支援システム: pushes its municipality's attendance marks and follows the import."""

    weight = 1
    wait_time = between(*PUSH_EVERY)

    def on_start(self):
        self.code, self.slot = next(ACCOUNTS["vendor"])
        self.token = TENANTS[self.code]["vendor"]["token"]
        self.scope = Scope([self.code])
        self.sent: list[int] = []

    @task
    def push(self):
        key = f"load-{uuid.uuid4()}"
        ATTEMPTS[key] = {"tenant": self.code, "slot": self.slot}  # before: its answer may be lost
        with _push(
            self.client, self.code, self.token, self.slot["file"], "vendor: push import", key
        ) as r:
            payload = self.check(r, self.scope, expect=(202,))
        if payload:
            with LOCK:
                PUSHES.append({"tenant": self.code, "run": payload["id"], "slot": self.slot})
            self.sent.append(payload["id"])
        if self.sent:
            run = random.choice(self.sent)
            with self.client.get(
                f"/m/{self.code}/api/v1/imports/{run}",
                headers={"Authorization": f"Bearer {self.token}"},
                name="vendor: import state",
                catch_response=True,
            ) as r:
                self.check(r, self.scope)
            _done(self)


class WrongTokenVendor(RenkeiUser):
    """A vendor with a wrong token: every push must be refused, and change nothing."""

    weight = 1
    wait_time = between(*PUSH_EVERY)

    @task
    def push(self):
        codes = sorted(TENANTS)
        n = next(INTRUSIONS)
        code = codes[n % len(codes)]
        tenant = TENANTS[code]
        other = TENANTS[codes[(n + 1) % len(codes)]]
        kind, token = [
            ("none", None),
            ("made up", "ri_" + "".join(random.choices("abcdefghijkmnpqrstuvwxyz", k=43))),
            ("another municipality's", other["vendor"]["token"]),
            ("not for this connector", tenant["vendor"]["other_connector_token"]),
        ][n % 4]
        expected = 403 if kind == "not for this connector" else 401
        with _push(
            self.client,
            code,
            token,
            tenant["vendor"]["intruder_file"],
            "wrong token: push",
            f"wrong-{uuid.uuid4()}",
        ) as r:
            with LOCK:
                REFUSALS[f"{kind}: {r.status_code}"] += 1
            if r.status_code != expected:
                r.failure(f"a push with {kind} token answered {r.status_code}, not {expected}")
            else:
                r.success()
        _done(self)


if CANARY:

    class CrossedWires(Teacher):
        """The checker's own test (``RENKEI_LOAD_CANARY=1``): a teacher whose scope is another
        municipality's school, so every board it opens must be reported (as ``canary_leaks``)."""

        canary = True
        fixed_count = 1

        def on_start(self):
            super().on_start()
            other = next(c for c in sorted(TENANTS) if c != self.code and TENANTS[c]["teachers"])
            self.scope = Scope.teacher(other, TENANTS[other]["teachers"][0]["school"])


def _each(n: int) -> None:
    """The smoke test: ``n`` users of every kind (a loop variable at module level would be
    taken by locust for one more user class)."""
    for kind in (Teacher, BoardAnalyst, PrefectureAnalyst, Vendor, WrongTokenVendor):
        kind.fixed_count = n


if EACH:
    _each(EACH)
