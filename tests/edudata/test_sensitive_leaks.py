"""The leak walk (DESIGN rules 6 and 7): 心の天気 check-ins (with their comments), staff notes
and support records, and 心の相談 nurse visits are in no aggregate, federation answer, widget,
export, log or span.

One committed municipality of its own prefecture (the federation's fan-out reads with its own
connections) is walked three times: before any sensitive row, after adding many (check-ins
imported through the checkin connector, notes and support records through their actions,
心の相談 visits), and after changing them. A walk reads every rollup table, every metric of
the registry at every breakdown for the municipality and each school through the tenant API
as a widget token asks it, every metric field of the federation (prefecture and
municipality, every combination of its flags), the board of education's survey download,
and the admin's CSV downloads. The figures must be identical in the three walks, and the
distinctive texts and counts of the sensitive rows must appear in no answer, download, log
record (every logger at DEBUG) or span. The metrics and federation fields are found from the
registry and the schema, so a metric added later is walked without a change here.

Then the roles beside the teachers (養護教諭, スクールカウンセラー, スクールソーシャルワーカー, each
naming every school, each past the second factor) walk every entry point a person reaches:
the tenant API (pupil and class boards with every sensitive field, schools, metrics), the
board pages (class, pupil, health, assigned, absence) and the CSV downloads. A distinctive
text may appear only where the rule table (policy.READS) lets that role read it: the
nurse's 保健室 notes on the health pages, the SC's assigned pupil's care records on that
pupil's page, nothing for an SSW whose assignment was removed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
import sys
from pathlib import Path

import pytest
from django.test import Client
from graphql import GraphQLObjectType, get_named_type, is_leaf_type

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphql" / "federation"))
from fed_world import SCHOOL_YEAR, _code, build_world, drop_world

from renkei.accounts import policy
from renkei.accounts.tokens import do_issue_token
from renkei.connectors.pipeline import do_import
from renkei.edudata import assignments, notes, rollups
from renkei.edudata.metrics import METRICS, MUNICIPALITY_ONLY
from renkei.edudata.models import (
    AttendanceDay,
    Homeroom,
    NurseVisit,
    RollupCell,
    School,
    StaffNote,
    StudentIdentity,
    SurveyResponse,
)
from renkei.graphql.federation.schema import FederationContext
from renkei.graphql.federation.schema import schema as federation_schema
from renkei.graphql.widgets.bundle import ROOT as WIDGETS
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.slow

CODE = _code("47201")  # a prefecture no other test uses: its releases are this world's alone
PREFECTURE = CODE[:2]
LEAK_WORLD = {CODE: ("要配慮テスト市", 120, 41, 0)}
USERS = "leakwalk-"

MARK = "LEAK7Q"  # in every distinctive text below
COMMENT = f"ないしょのひとこと-{MARK}"
COMMENT_CHANGED = f"かえたひとこと-{MARK}"
NOTE = f"共有配慮-{MARK}"
CONCERN = f"支援の気がかり-{MARK}"
STEP = f"支援の対応-{MARK}"
NURSE_NOTE = f"心の相談の記録-{MARK}"
CHECKINS = 1009  # check-ins imported
MENTAL_VISITS = 7919  # 心の相談 visits: more than every other nurse visit of the world
SENSITIVE_CODES = ("心の相談", '"mental"')  # 心の相談 as a label or a category code

ACTOR = Actor.system("test")
QUERIES = dict(
    re.findall(
        r"^export const (\w+) = `([^`]*)`;",
        (WIDGETS / "src" / "queries.js").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    from django.contrib.auth import get_user_model

    from renkei.tenants.models import Release

    with django_db_blocker.unblock():
        built = build_world(LEAK_WORLD, days=40, with_users=False)
    yield built
    with django_db_blocker.unblock():
        drop_world(LEAK_WORLD, users=False)
        get_user_model().objects.filter(username__startswith=USERS).delete()
        Release.objects.filter(prefecture_id=PREFECTURE).delete()


def _subsets(items):
    return itertools.chain.from_iterable(
        itertools.combinations(items, n) for n in range(len(items) + 1)
    )


# -- the walk -----------------------------------------------------------------------------------


def _rollups(municipality) -> dict[str, list]:
    """Every rollup table's rows (all columns but the id), exactly."""
    tables = {}
    pending = list(RollupCell.__subclasses__())
    with in_tenant(municipality):
        while pending:
            model = pending.pop()
            pending += model.__subclasses__()
            if model._meta.abstract:
                continue
            names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
            tables[model.__name__] = sorted(model.objects.values_list(*names))
    assert tables.get("NurseVisitMonth")  # the walk means something
    return tables


def _tenant_api(clients: dict[str, Client], secret: str, schools: list[str]) -> dict[str, object]:
    """Every metric at every breakdown, for the municipality and each school, as a widget
    asks (a metric released to the municipality only, which widget tokens may not read: as
    its board of education asks)."""
    answers = {}
    for name, spec in sorted(METRICS.items()):
        if spec.scope == MUNICIPALITY_ONLY:
            client, auth = clients["board"], {}
        else:
            client, auth = clients["widget"], {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        for breakdown in _subsets(spec.dimensions):
            for school in (None, *schools):
                variables = {
                    "name": name,
                    "schoolYear": SCHOOL_YEAR,
                    "breakdown": list(breakdown),
                    "schoolCode": school,
                }
                response = client.post(
                    f"/m/{CODE}/graphql",
                    data=json.dumps({"query": QUERIES["TENANT_METRIC"], "variables": variables}),
                    content_type="application/json",
                    **auth,
                )
                body = response.json()
                assert response.status_code == 200 and not body.get("errors"), body
                answers[f"{name} {breakdown} {school}"] = body["data"]
    return answers


def _selection(object_type: GraphQLObjectType, depth: int = 0) -> str:
    """Every field without arguments below ``object_type`` (leaves as they are)."""
    fields = []
    for name, field in object_type.fields.items():
        if field.args:
            continue
        named = get_named_type(field.type)
        if is_leaf_type(named):
            fields.append(name)
        elif isinstance(named, GraphQLObjectType) and depth < 3:
            fields.append(f"{name} {{ {_selection(named, depth + 1)} }}")
    return " ".join(fields)


def _federation(analyst: policy.Principal) -> dict[str, object]:
    """Every field of the federation's Prefecture and Municipality that answers a metric, at
    every combination of its flags, as the prefecture's analyst asks."""
    graphql_schema = federation_schema._schema
    result_type = graphql_schema.get_type("MetricResult")
    cells = _selection(result_type)
    answers = {}
    walked = 0
    for type_name, root in (
        ("Prefecture", f'prefecture(code: "{PREFECTURE}")'),
        ("Municipality", f'municipality(code: "{CODE}")'),
    ):
        for name, field in graphql_schema.get_type(type_name).fields.items():
            if get_named_type(field.type) is not result_type:
                continue
            flags = [
                a for a, arg in field.args.items() if get_named_type(arg.type).name == "Boolean"
            ]
            for chosen in _subsets(flags):
                arguments = "".join(f", {flag}: true" for flag in chosen)
                query = (
                    f"{{ {root} {{ {name}(schoolYear: {SCHOOL_YEAR}{arguments}) {{ {cells} }} }} }}"
                )
                result = federation_schema.execute_sync(
                    query, context_value=FederationContext(principal=analyst)
                )
                assert not result.errors, (query, result.errors)
                answers[f"{type_name}.{name} {chosen}"] = result.data
                walked += 1
    assert walked >= 2 * len(METRICS)  # every metric is a field of both
    listed = federation_schema.execute_sync(
        f"{{ metrics {{ {_selection(graphql_schema.get_type('MetricDefinition'))} }} }}",
        context_value=FederationContext(principal=analyst),
    )
    answers["metrics"] = listed.data
    return answers


def walk(
    municipality, clients: dict[str, Client], secret: str, analyst: policy.Principal
) -> tuple[dict, dict[str, str]]:
    """(figures, downloads): what must not change, and what must not name anything."""
    with in_tenant(municipality):
        schools = list(School.objects.order_by("code").values_list("code", flat=True))
        runs = list(municipality_runs())
    survey = clients["board"].get(f"/m/{CODE}/analysis/long-term-absence/survey.csv")
    assert survey.status_code == 200
    figures = {
        "rollups": _rollups(municipality),
        "tenant_api": _tenant_api(clients, secret, schools),
        "federation": _federation(analyst),
        "survey_csv": _text(survey),
    }
    downloads = {}
    for url in ("access-log.csv", "audit.csv", *(f"imports/{run}/errors.csv" for run in runs)):
        response = clients["admin"].get(f"/m/{CODE}/manage/{url}")
        assert response.status_code == 200, url
        downloads[url] = _text(response)
    return figures, downloads


def _text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def municipality_runs():
    from renkei.edudata.models import ImportRun

    return ImportRun.objects.order_by("id").values_list("id", flat=True)


# -- the sensitive rows ---------------------------------------------------------------------------


def _teacher(municipality) -> policy.Principal:
    with in_tenant(municipality):
        schools = frozenset(School.objects.values_list("code", flat=True))
    return policy.Principal(
        user_id=None,
        username=f"{USERS}teacher",
        grants=(policy.Grant("teacher", CODE, None, schools),),
        step_up=True,
    )


def add_sensitive_rows(municipality, tmp_path: Path) -> None:
    """Check-ins through the connector (one on a day with no enrolment: quarantined), notes
    and support records through their actions, 心の相談 visits with a note."""
    with in_tenant(municipality):
        emails = dict(
            StudentIdentity.objects.exclude(principal_name="").values_list(
                "student_id", "principal_name"
            )
        )
        days = AttendanceDay.objects.filter(student_id__in=emails).order_by("date", "student_id")
        pairs = list(days.values_list("student_id", "date")[:CHECKINS])
    assert len(pairs) == CHECKINS
    moods = itertools.cycle(["はれ", "くもり", "あめ", "かみなり"])
    lines = ["タイムスタンプ,メールアドレス,心の天気,ひとこと"]
    lines += [
        f"{day:%Y/%m/%d} 8:00:00,{emails[pupil]},{next(moods)},{COMMENT}" for pupil, day in pairs
    ]
    lines.append(f"2020/06/01 8:00:00,{emails[pairs[0][0]]},あめ,{COMMENT}")  # not enrolled
    export = tmp_path / "心の天気.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = do_import("checkin", municipality, actor=ACTOR, paths=[export])
    assert (run.status, run.rows_accepted, run.rows_rejected) == ("succeeded", CHECKINS, 1)

    teacher = _teacher(municipality)
    pupils = sorted({pupil for pupil, _ in pairs})[:30]
    with in_tenant(municipality):
        for pupil in pupils:
            notes.do_add_staff_note(teacher, municipality, pupil, "consideration", NOTE)
            case = notes.do_open_support_case(
                teacher, municipality, pupil, CONCERN, dt.date(2025, 6, 30)
            )
            notes.do_add_support_action(
                teacher,
                municipality,
                case.pk,
                done_on=dt.date(2025, 5, 20),
                done_by="担任",
                text=STEP,
            )
        visits = [
            NurseVisit(
                student_id=pupil,
                # 11:00 JST plus n seconds and a fraction: apart from each other and from the
                # imported visits (whole minutes)
                visited_at=dt.datetime.combine(day, dt.time(2, 0), dt.UTC)
                + dt.timedelta(seconds=n, microseconds=123),
                reason_category="mental",
                note=NURSE_NOTE,
            )
            for (pupil, day), n in zip(itertools.cycle(pairs), range(MENTAL_VISITS), strict=False)
        ]
        NurseVisit.objects.bulk_create(visits)
        from django.db import transaction

        with transaction.atomic():
            rollups.refresh([SCHOOL_YEAR])  # as an import of the visits would
        assert SurveyResponse.objects.count() == CHECKINS
        assert NurseVisit.objects.filter(reason_category="mental").count() >= MENTAL_VISITS


def change_sensitive_rows(municipality) -> None:
    """Other moods and comments, half the 心の相談 visits gone, the others moved a month, more
    notes: still nothing to count."""
    from django.db import transaction

    teacher = _teacher(municipality)
    with in_tenant(municipality), transaction.atomic():
        for checkin in SurveyResponse.objects.all():
            checkin.answers = {"weather": "かみなり", "comment": COMMENT_CHANGED}
            checkin.save(update_fields=["answers"])
        mental = NurseVisit.objects.filter(reason_category="mental").order_by("id")
        ids = list(mental.values_list("id", flat=True))
        NurseVisit.objects.filter(id__in=ids[: len(ids) // 2]).delete()
        for visit in NurseVisit.objects.filter(id__in=ids[len(ids) // 2 :]):
            visit.visited_at += dt.timedelta(days=30)
            visit.save(update_fields=["visited_at"])
        pupil = StaffNote.objects.values_list("student_id", flat=True).first()
        notes.do_add_staff_note(teacher, municipality, pupil, "observation", NOTE)
        rollups.refresh([SCHOOL_YEAR])


# -- the roles beside the teachers -----------------------------------------------------------------

CARE_ROLES = {"nurse": "school_nurse", "sc": "school_counselor", "ssw": "school_social_worker"}
SECRETS = (NOTE, CONCERN, STEP, COMMENT, COMMENT_CHANGED, NURSE_NOTE)
PUPIL_BOARD_QUERY = """query($id: ID!) { studentBoard(studentId: $id) {
  pupil { id name } attendance { date status reason } health { date symptoms }
  nurseVisits { visitedAt reasonCategory note } assessments { name score }
  surveys { survey answers freeCommentWithheld } } }"""
CLASS_BOARD_QUERY = """query($id: ID!) { classBoard(homeroomId: $id) {
  pupils { pupil { id name } alerts { message } } } }"""


def _verified(user) -> Client:
    """A client signed in as ``user`` and past the second factor (TOTP) in the municipality."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    verified = client.post(
        f"/m/{CODE}/accounts/verify/", {"otp_token": f"{totp(device.bin_key):06d}"}
    )
    assert verified.status_code == 302
    return client


def _answer(response) -> str:
    body = _text(response) if response.streaming else response.content.decode()
    return f"{response.status_code} {body}"


def _entry_points(
    client: Client, pupils: list[int], homerooms: list[int], runs: list[int]
) -> dict[str, str]:
    """What one person gets from every entry point: pages, downloads, the tenant API."""
    base = f"/m/{CODE}"
    urls = [
        f"{base}/",
        f"{base}/boards/classes/",
        f"{base}/boards/health/",
        f"{base}/boards/assigned/",
        f"{base}/boards/long-term-absence/",
        f"{base}/analysis/long-term-absence/",
        f"{base}/analysis/long-term-absence/survey.csv",
        f"{base}/analysis/schools/",
        f"{base}/manage/access-log.csv",
        f"{base}/manage/audit.csv",
        *(f"{base}/manage/imports/{run}/errors.csv" for run in runs),
        *(f"{base}/boards/classes/{h}/" for h in homerooms),
        *(f"{base}/boards/health/?homeroom={h}" for h in homerooms),
    ]
    for pupil in pupils:
        urls += [
            f"{base}/boards/students/{pupil}/",
            f"{base}/boards/health/students/{pupil}/",
            f"{base}/boards/assigned/{pupil}/",
        ]
    answers = {url: _answer(client.get(url)) for url in urls}
    asks = [(f"studentBoard {p}", PUPIL_BOARD_QUERY, {"id": p}) for p in pupils]
    asks += [(f"classBoard {h}", CLASS_BOARD_QUERY, {"id": h}) for h in homerooms]
    asks.append(("schools", "{ schools { code name } }", {}))
    for name in sorted(METRICS)[:3]:
        variables = {"name": name, "schoolYear": SCHOOL_YEAR, "breakdown": [], "schoolCode": None}
        asks.append((f"metric {name}", QUERIES["TENANT_METRIC"], variables))
    for key, query, variables in asks:
        response = client.post(
            f"{base}/graphql",
            data=json.dumps({"query": query, "variables": variables}),
            content_type="application/json",
        )
        answers[f"graphql {key}"] = _answer(response)
    return answers


def role_walk(municipality) -> dict:
    """Each new role, naming every school, walks every entry point after the SC was assigned
    one pupil with records and the SSW was assigned the same pupil and removed again."""
    from django.contrib.auth import get_user_model

    from renkei.accounts.models import Membership

    with in_tenant(municipality):
        schools = sorted(School.objects.values_list("code", flat=True))
        noted = sorted(set(StaffNote.objects.values_list("student_id", flat=True)))
        homerooms = sorted(Homeroom.objects.values_list("pk", flat=True))[:3]
        runs = list(municipality_runs())
    users = {}
    for key, role in CARE_ROLES.items():
        users[key] = get_user_model().objects.create_user(username=f"{USERS}{key}")
        Membership.objects.create(
            user=users[key], role=role, municipality=municipality, school_codes=schools
        )
    manager = policy.Principal(
        user_id=None,
        username=f"{USERS}manager",
        grants=(policy.Grant("school_manager", CODE, None, frozenset(schools)),),
        step_up=True,
    )
    assigned = noted[0]
    with in_tenant(municipality):
        assignments.do_assign_pupil(manager, municipality, assigned, f"{USERS}sc")
        removed = assignments.do_assign_pupil(manager, municipality, assigned, f"{USERS}ssw")
        assignments.do_unassign_pupil(manager, municipality, assigned, removed.pk)
    pupils = noted[:6]
    return {
        "assigned": assigned,
        "answers": {
            key: _entry_points(_verified(user), pupils, homerooms, runs)
            for key, user in users.items()
        },
    }


def _may_show(role: str, secret: str, where: str, assigned: int) -> bool:
    """Where the rule table lets ``role`` read ``secret`` (policy.READS)."""
    if role == "nurse":
        return secret == NURSE_NOTE and f"/m/{CODE}/boards/health/students/" in where
    if role == "sc":
        care = secret in (NOTE, CONCERN, STEP, COMMENT_CHANGED)
        return care and where == f"/m/{CODE}/boards/assigned/{assigned}/"
    return False


# -- the test ---------------------------------------------------------------------------------


def _span_text(span) -> str:
    parts = [span.name, repr(dict(span.attributes or {}))]
    parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    return "\n".join(parts)


def _numbers(value) -> set:
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    return {value} if isinstance(value, int | float) and not isinstance(value, bool) else set()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def walks(world, otel, django_db_blocker, tmp_path_factory):
    """The three walks, every log record (every logger at DEBUG) and every span of them."""
    from django.contrib.auth import get_user_model

    from renkei.accounts.models import Membership

    exporter, _reader = otel
    exporter.clear()
    records = _Records()
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    levels = [logger.level for logger in loggers]
    logging.getLogger().addHandler(records)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        with django_db_blocker.unblock():
            municipality = world.municipality(CODE)
            clients, users = {}, {}
            for key, role in (("admin", "tenant_admin"), ("board", "board_analyst")):
                users[key] = get_user_model().objects.create_user(username=f"{USERS}{key}")
                Membership.objects.create(user=users[key], role=role, municipality=municipality)
                clients[key] = Client()
                clients[key].force_login(users[key])
            secret = do_issue_token(
                users["board"],
                municipality,
                actor=ACTOR,
                name="leak walk",
                metrics=list(METRICS),
                widget=True,
            ).secret
            clients["widget"] = Client()
            analyst = get_user_model().objects.create_user(username=f"{USERS}pref")
            Membership.objects.create(
                user=analyst, role="prefecture_analyst", prefecture_id=PREFECTURE
            )
            args = (clients, secret, policy.principal_for(analyst))

            before, _ = walk(municipality, *args)
            add_sensitive_rows(municipality, tmp_path_factory.mktemp("checkins"))
            after, downloads = walk(municipality, *args)
            change_sensitive_rows(municipality)
            changed, downloads_changed = walk(municipality, *args)
            roles = role_walk(municipality)
    finally:
        logging.getLogger().removeHandler(records)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    return {
        "before": before,
        "after": after,
        "changed": changed,
        "downloads": "\n".join([*downloads.values(), *downloads_changed.values()]),
        "roles": roles,
        "logs": "\n".join(
            f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records.records
        ),
        "spans": "\n".join(_span_text(s) for s in exporter.get_finished_spans()),
    }


@pytest.mark.parametrize("part", ["rollups", "tenant_api", "federation", "survey_csv"])
def test_adding_or_changing_sensitive_rows_moves_no_figure(walks, part, db):
    assert walks["after"][part] == walks["before"][part], f"{part}: changed by adding them"
    assert walks["changed"][part] == walks["before"][part], f"{part}: changed by changing them"


def test_no_answer_names_them_or_their_counts(walks, db):
    text = json.dumps([walks["after"], walks["changed"]], ensure_ascii=False)
    assert MARK not in text
    for code in SENSITIVE_CODES:
        assert code not in text
    assert {CHECKINS, MENTAL_VISITS} & _numbers([walks["after"], walks["changed"]]) == set()


@pytest.mark.parametrize("place", ["downloads", "logs", "spans"])
def test_no_download_log_or_span_names_them(walks, place, db):
    content = walks[place]
    assert len(content) > 1000  # they were recorded
    assert MARK not in content, f"a sensitive text is in the {place}"
    assert "心の相談" not in content, f"心の相談 is in the {place}"


@pytest.mark.parametrize("role", sorted(CARE_ROLES))
def test_the_new_roles_read_only_what_the_rule_table_gives_them(walks, role, db):
    answers, assigned = walks["roles"]["answers"][role], walks["roles"]["assigned"]
    assert len(answers) > 30
    shown = {
        (secret, where)
        for where, answer in answers.items()
        for secret in SECRETS
        if secret in answer
    }
    leaked = {(s, w) for s, w in shown if not _may_show(role, s, w, assigned)}
    assert leaked == set(), f"{role} read what its role does not give it"
    # and they do read what it gives them (the walk reached the records)
    expected = {"nurse": {NURSE_NOTE}, "sc": {NOTE, CONCERN, STEP, COMMENT_CHANGED}, "ssw": set()}
    assert {s for s, _w in shown} == expected[role]
    refused = [w for w, answer in answers.items() if answer.startswith("403")]
    assert f"/m/{CODE}/boards/classes/" in refused and f"/m/{CODE}/manage/audit.csv" in refused
