"""`renkei demo`: a working platform on a fresh machine, reused when run again.

Called by the CLI (the composition root) only: it may call every area.
"""

from __future__ import annotations

from renkei.demo.world import (
    DEMO_MUNICIPALITIES,
    DEMO_PASSWORD,
    DEMO_PAST_YEARS,
    DEMO_PREFECTURE,
    DEMO_SMALL_MUNICIPALITIES,
    demo_users,
    totp_secret_hex,
)


def prepare(verbosity: int = 0) -> None:
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import do_onboard_municipality
    from renkei.tenants.models import Municipality
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=verbosity)
    sizes = {code: pupils for code, _, pupils in DEMO_SMALL_MUNICIPALITIES}
    boards = dict(DEMO_MUNICIPALITIES)
    for code, name in [*DEMO_MUNICIPALITIES, *((c, n) for c, n, _ in DEMO_SMALL_MUNICIPALITIES)]:
        municipality = Municipality.objects.filter(code=code).first()
        if municipality is None:
            municipality = do_onboard_municipality(
                code, name, DEMO_PREFECTURE, actor=Actor.system("demo")
            )
        # Earlier years where teachers use the boards; the small towns serve the prefecture's
        # tables of the current year (and keep the demo's start quick).
        load_demo_data(
            municipality,
            students=sizes.get(code, DEMO_STUDENTS),
            past_years=DEMO_PAST_YEARS if code in boards else 0,
        )
    _ensure_users()
    for code, _ in DEMO_MUNICIPALITIES:
        _classify_long_absences(Municipality.objects.get(code=code))
        _school_records(Municipality.objects.get(code=code))
        _homeroom_teacher(Municipality.objects.get(code=code))
        _assign_counselor(Municipality.objects.get(code=code))


DEMO_STUDENTS = 600  # each of DEMO_MUNICIPALITIES
# 八王子市 runs スズキ校務 in the demo, the others C4th: both connectors get exercised.
DEMO_VENDOR = {"132012": "suzuki"}


def load_demo_data(municipality, students: int = 600, past_years: int = 0) -> None:
    """Synthetic data for a demo municipality, written in each system's own format and
    loaded through the real connectors (OneRoster roster, C4th or スズキ校務, Microsoft 365
    report exports, 心の天気 from a form, a 学習eポータル's xAPI log and a drill's learning
    history), after ``past_years`` school years before it in C4th or スズキ校務, oldest first (a
    roster sets each pupil's school and grade to its year's: the latest import must be the
    current year's). Skipped when an import already succeeded."""
    from renkei.connectors.pipeline import do_import
    from renkei.demo import synth
    from renkei.edudata.models import ImportRun
    from renkei.platform import environment
    from renkei.platform.audit import Actor
    from renkei.tenants.context import in_tenant

    with in_tenant(municipality):
        if ImportRun.objects.filter(status=ImportRun.Status.SUCCEEDED).exists():
            return
    out = environment.home() / "demo-data" / municipality.code
    summary = synth.generate(
        municipality.code,
        out,
        students=students,
        seed=int(municipality.code),
        past_years=past_years,
    )
    vendor = DEMO_VENDOR.get(municipality.code, "c4th")
    past = [
        (vendor, sorted((out / "past" / str(year.school_year) / vendor).glob("*.csv")))
        for year in summary.past_years
    ]
    steps = [
        *past,
        ("oneroster", [out / "oneroster"]),
        (vendor, sorted((out / vendor).glob("*.csv"))),
        ("msgraph", [out / "msgraph"]),
        ("checkin", sorted((out / "checkin").glob("*.csv"))),
        ("xapi", sorted((out / "xapi").glob("*.jsonl"))),
        ("drill", sorted((out / "drill").glob("*.csv"))),
    ]
    for connector, paths in steps:
        if not paths:  # a tiny demo municipality may have no check-ins or learning logs
            continue
        run = do_import(connector, municipality, actor=Actor.system("demo"), paths=paths)
        if run.status != ImportRun.Status.SUCCEEDED:
            raise RuntimeError(
                f"demo import {connector} into {municipality.code} failed: {run.message}"
            )
        print(
            f"  {municipality.name}: {connector} 取り込み {run.rows_accepted:,} 行"
            f"（除外 {run.rows_rejected:,} 行）",
            flush=True,
        )


def _ensure_users() -> None:
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from renkei.accounts.actions import do_add_membership
    from renkei.accounts.models import Membership
    from renkei.platform.audit import Actor
    from renkei.tenants.models import Municipality, Prefecture

    user_model = get_user_model()

    def user(username: str, **extra):
        u, created = user_model.objects.get_or_create(username=username, defaults=extra)
        if created:
            u.set_password(DEMO_PASSWORD)
            u.save()
        TOTPDevice.objects.get_or_create(
            user=u, name="demo", defaults={"key": totp_secret_hex(username), "confirmed": True}
        )
        return u

    def give(username: str, role: str, school_codes=(), **where) -> None:
        account = user(username)
        if not Membership.objects.filter(user=account, role=role, **where).exists():
            do_add_membership(
                account, role, actor=Actor.system("demo"), school_codes=school_codes, **where
            )

    user("admin", is_staff=True, is_superuser=True)
    for code, _ in DEMO_MUNICIPALITIES:
        municipality = Municipality.objects.get(code=code)
        for username, role, schools in demo_users(code):
            give(username, role, municipality=municipality, school_codes=schools)
    give(
        f"pref-{DEMO_PREFECTURE}",
        "prefecture_analyst",
        prefecture=Prefecture.for_code(DEMO_PREFECTURE),
    )


def _classify_long_absences(municipality) -> None:
    """Each school's classification of its long-term absentees (30+ days) in every year of the
    register, so 長期欠席 shows 不登校 over the years: 病気 where illness is most of the days
    (the page's own suggestion), otherwise mostly 不登校 and some その他. Recorded through the
    school page's action by one stand-in for the schools' staff (the demo has staff accounts
    at one school only). Skipped when there are classifications."""
    from renkei.accounts import policy
    from renkei.edudata import absence
    from renkei.edudata.models import AbsenceClassification, School, Student
    from renkei.tenants.context import in_tenant

    with in_tenant(municipality):
        if AbsenceClassification.objects.exists():
            return
        staff = policy.Principal(
            user_id=None,
            username="demo-school-staff",
            grants=(
                policy.Grant(
                    role="teacher",
                    municipality_code=municipality.code,
                    prefecture_code=None,
                    school_codes=frozenset(School.objects.values_list("code", flat=True)),
                ),
            ),
            step_up=True,
        )
        for year in absence.register_years():
            for i, pupil in enumerate(absence.long_absences(Student.objects.all(), year)):
                reason = pupil.suggested or (
                    absence.LongAbsenceReason.OTHER
                    if i % 5 == 4
                    else absence.LongAbsenceReason.FUTOKO
                )
                absence.do_classify_long_absence(
                    staff, municipality, pupil.student.pk, year, reason
                )


def _school_records(municipality) -> None:
    """A few of the records staff write (共有配慮事項, 日常所見, a 支援記録 with a follow-up
    due), written as the demo teacher through the same actions as the pupil board, for the
    first long-term absentee of the teacher's school. Skipped when there are records."""
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from django.utils import timezone

    from renkei.accounts import policy
    from renkei.edudata import absence, access, notes
    from renkei.edudata.models import AttendanceDay, StaffNote, school_year_of
    from renkei.tenants.context import in_tenant

    teacher = get_user_model().objects.get(username=f"teacher-{municipality.code}")
    principal = policy.principal_for(teacher, step_up=True)
    with in_tenant(municipality):
        if StaffNote.objects.exists():
            return
        # the demo's data ends before today: the day its boards show
        as_of = AttendanceDay.objects.aggregate(last=Max("date"))["last"]
        if as_of is None:
            return
        pupils = absence.long_absences(
            access.visible_students(principal, municipality), school_year_of(as_of)
        )
        if not pupils:
            return
        pupil = pupils[0].student.pk
        notes.do_add_staff_note(
            principal, municipality, pupil, "consideration", "卵アレルギー。給食は除去食。"
        )
        notes.do_add_staff_note(
            principal, municipality, pupil, "observation", "登校した日は保健室で過ごすことが多い。"
        )
        case = notes.do_open_support_case(
            principal, municipality, pupil, "欠席が続いている。", as_of - dt.timedelta(days=20)
        )
        notes.do_add_support_action(
            principal,
            municipality,
            case.pk,
            done_on=min(as_of - dt.timedelta(days=14), timezone.localdate()),
            done_by="担任・スクールカウンセラー",
            text="保護者と面談。週 1 回、放課後に別室で学習することにした。",
            follow_up_on=as_of + dt.timedelta(days=3),
        )


def _homeroom_teacher(municipality) -> None:
    """The demo manager makes the demo teacher 担任 of the first class of their school in the
    latest school year (so the teacher reads that class's check-in comments). Skipped when a
    class has one."""
    from django.contrib.auth import get_user_model

    from renkei.accounts import policy
    from renkei.edudata import homerooms
    from renkei.edudata.models import Homeroom
    from renkei.tenants.context import in_tenant

    manager = get_user_model().objects.get(username=f"manager-{municipality.code}")
    principal = policy.principal_for(manager, step_up=True)
    with in_tenant(municipality):
        if Homeroom.objects.exclude(teachers=[]).exists():
            return
        first = (
            Homeroom.objects.filter(school__code__in=principal.school_codes_in(municipality))
            .order_by("-school_year", "grade", "name")
            .first()
        )
        if first is not None:
            homerooms.do_set_homeroom_teachers(
                principal, municipality, first.pk, [f"teacher-{municipality.code}"]
            )


def _assign_counselor(municipality) -> None:
    """The demo manager assigns the pupil with the demo's school records to the demo SC (so
    sc-<code> reads them after the second factor; ssw-<code> has no pupil yet). Skipped when
    there is an assignment."""
    from django.contrib.auth import get_user_model

    from renkei.accounts import policy
    from renkei.edudata import assignments
    from renkei.edudata.models import PupilAssignment, StaffNote
    from renkei.tenants.context import in_tenant

    manager = get_user_model().objects.get(username=f"manager-{municipality.code}")
    principal = policy.principal_for(manager, step_up=True)
    with in_tenant(municipality):
        pupil = StaffNote.objects.values_list("student_id", flat=True).first()
        if pupil is None or PupilAssignment.objects.exists():
            return
        assignments.do_assign_pupil(principal, municipality, pupil, f"sc-{municipality.code}")


def print_welcome(port: int = 8000) -> None:
    import base64

    base = f"http://127.0.0.1:{port}"
    print("\nRenkei 連携 デモ環境の準備ができました。\n")
    print(f"  トップページ       {base}/")
    for code, name in DEMO_MUNICIPALITIES:
        print(f"  {name:<6}         {base}/m/{code}/   （または http://{code}.localhost:{port}/）")
    print(f"  管理画面           {base}/admin/   （admin / {DEMO_PASSWORD}）")
    print(f"\nデモ用アカウント（パスワードはすべて {DEMO_PASSWORD}）:")
    for code, name in DEMO_MUNICIPALITIES[:1]:
        for username, role, _ in demo_users(code):
            print(f"  {username:<18} {role}（{name}）")
    print(f"  pref-{DEMO_PREFECTURE:<13} prefecture_analyst（東京都）")
    print("  他の自治体も同じ形式です（例: teacher-131041）。")
    code = DEMO_MUNICIPALITIES[0][0]
    print("\nダッシュボード:")
    print(f"  学級ボード（教員）         {base}/m/{code}/boards/classes/")
    print(f"  長期欠席（教育委員会）     {base}/m/{code}/analysis/long-term-absence/")
    print(f"  学校カルテ（教育委員会）   {base}/m/{code}/analysis/schools/")
    print(f"  市区町村の比較（都道府県） {base}/prefecture/")
    print(f"  管理（自治体管理者）       {base}/m/{code}/manage/")
    print(f"  保健（養護教諭）           {base}/m/{code}/boards/health/")
    print(f"  担当児童生徒（SC・SSW）    {base}/m/{code}/boards/assigned/")
    print(f"  取扱い方針（公開・ログイン不要） {base}/m/{code}/privacy/")
    print("\n二要素認証（TOTP）の秘密鍵（認証アプリに登録）:")
    for username in (
        "teacher-131130",
        "manager-131130",
        "admin-131130",
        "nurse-131130",
        "sc-131130",
    ):
        secret = base64.b32encode(bytes.fromhex(totp_secret_hex(username))).decode()
        print(f"  {username:<18} {secret}")
    print()
