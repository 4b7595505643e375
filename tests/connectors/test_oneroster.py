"""The OneRoster 1.2 CSV (Japan profile) connector, on small hand-written sets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from renkei.connectors.actions import do_save_connector_setting
from renkei.connectors.builtin import oneroster_jp
from renkei.connectors.builtin.oneroster import (
    OneRosterConnector,
    parse_grade,
    parse_user_ids,
)
from renkei.connectors.error_report import error_report_lines
from renkei.connectors.pipeline import do_import
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    RosterScopeRecord,
    SchoolRecord,
    StudentRecord,
)
from renkei.connectors.sdk import CsvRow, RowError, RowWarning, RunState, SourceError
from renkei.demo.synth import ONEROSTER_HEADERS
from renkei.edudata.models import StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

# A set that follows the Japan profile: UUID sourcedIds, 学校コード with their check digit.
B1 = "B113211300019"
C1 = "C113211300017"
ACTOR = Actor.system("test")
SY = "5e0b1c2d-0000-4000-8000-000000002025"
ORG_DISTRICT = "0a000000-0000-4000-8000-000000131130"
ORG_B1 = "0b000000-0000-4000-8000-0000000000b1"
ORG_C1 = "0c000000-0000-4000-8000-0000000000c1"
CLS_B1 = "c1a55000-0000-4000-8000-000000000311"  # 3年1組
CLS_C1 = "c1a55000-0000-4000-8000-000000000112"  # 1年2組
CLS_MATH = "c1a55000-0000-4000-8000-00000000a001"
TARO = "7a000000-0000-4000-8000-000000000001"
HANAKO = "7a000000-0000-4000-8000-000000000002"
TEACHER = "7e000000-0000-4000-8000-000000000001"


def uuid_n(prefix: str, n: int) -> str:
    return f"{prefix}000000-0000-4000-8000-{n:012d}"


BULK = ("academicSessions", "classes", "demographics", "enrollments", "orgs", "roles", "users")
ALL_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItemLearningObjectiveIds",
    "lineItems",
    "lineItemScoreScales",
    "orgs",
    "resources",
    "resultLearningObjectiveIds",
    "results",
    "resultScoreScales",
    "roles",
    "scoreScales",
    "userProfiles",
    "userResources",
    "users",
)


def manifest(bulk=BULK, version="1.2", **modes):
    lines = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
    for name in ALL_FILES:
        lines.append(f"file.{name},{modes.get(name, 'bulk' if name in bulk else 'absent')}")
    return "\n".join(lines) + "\n"


ORGS = f"""\
sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId
{ORG_DISTRICT},,,渋谷区教育委員会,district,131130,NULL
{ORG_B1},,,渋谷区立第一小学校,school,{B1},{ORG_DISTRICT}
{ORG_C1},,,渋谷区立第一中学校,school,{C1},{ORG_DISTRICT}
"""
SESSIONS = f"""\
sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear
{SY},,,2025年度,schoolYear,2025-04-01,2026-03-31,,2025
"""
CLASSES_HEADER = (
    "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,"
    "location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods,"
    "metadata.jp.specialNeeds"
)
CLASSES = f"""\
{CLASSES_HEADER}
{CLS_B1},,,3年1組,P3,{uuid_n("c0", 1)},,homeroom,,{ORG_B1},{SY},,,,false
{CLS_C1},,,1年2組,J1,{uuid_n("c0", 2)},,homeroom,,{ORG_C1},{SY},,,,false
{CLS_MATH},,,数学1年,J1,{uuid_n("c0", 3)},,scheduled,,{ORG_C1},{SY},数学,,,false
"""
USERS_HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,"
    "userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,"
    "preferredFamilyName,primaryOrgSourcedId,pronouns,metadata.jp.kanaGivenName,"
    "metadata.jp.kanaFamilyName,metadata.jp.kanaMiddleName,metadata.jp.homeClass"
)


def user(sourced_id, username, user_ids, given, family, grades, org, kana_given, kana_family):
    return (
        f'{sourced_id},,,true,{username},"{user_ids}",{given},{family},,,{username},,,,'
        f"{grades},,,,,,,{org},,{kana_given},{kana_family},,"
    )


USERS = (
    "\n".join(
        [
            USERS_HEADER,
            user(
                TARO,
                "s0000001@m131130.example.ed.jp",
                "{c4th:C0001234},{suzuki:S0001234}",
                "太郎",
                "山田",
                "P3",
                ORG_B1,
                "タロウ",
                "ヤマダ",
            ),
            user(
                HANAKO,
                "s0000002@m131130.example.ed.jp",
                "",
                "花子",
                "髙橋",
                "J1",
                ORG_C1,
                "ハナコ",
                "タカハシ",
            ),
            user(
                TEACHER,
                "t0000001@m131130.example.ed.jp",
                "",
                "誠",
                "佐藤",
                "",
                ORG_B1,
                "マコト",
                "サトウ",
            ),
        ]
    )
    + "\n"
)
ROLES_HEADER = (
    "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,"
    "orgSourcedId,userProfileSourcedId"
)
ROLES = f"""\
{ROLES_HEADER}
{uuid_n("4e", 1)},,,{TARO},primary,student,2025-04-01,2026-03-31,{ORG_B1},
{uuid_n("4e", 2)},,,{HANAKO},primary,student,2025-04-01,2026-03-31,{ORG_C1},
{uuid_n("4e", 3)},,,{TEACHER},primary,teacher,2025-04-01,2026-03-31,{ORG_B1},
"""
ENROLLMENTS_HEADER = (
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,"
    "primary,beginDate,endDate,metadata.jp.ShussekiNo,metadata.jp.PublicFlg"
)
ENROLLMENTS = f"""\
{ENROLLMENTS_HEADER}
{uuid_n("e0", 1)},,,{CLS_B1},{ORG_B1},{TEACHER},teacher,true,2025-04-01,2026-03-31,,
{uuid_n("e0", 2)},,,{CLS_B1},{ORG_B1},{TARO},student,false,2025-04-01,2026-03-31,12,
{uuid_n("e0", 3)},,,{CLS_C1},{ORG_C1},{HANAKO},student,false,2025-04-01,2026-03-31,5,
{uuid_n("e0", 4)},,,{CLS_MATH},{ORG_C1},{HANAKO},student,false,2025-04-01,2026-03-31,,
"""
DEMOGRAPHICS_HEADER = (
    "sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,"
    "blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,"
    "demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,countryOfBirthCode,"
    "stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus"
)
DEMOGRAPHICS = f"""\
{DEMOGRAPHICS_HEADER}
{TARO},,,2016-05-12,male,,,,,,,,,,,
{HANAKO},,,2012-11-30,female,,,,,,,,,,,
"""
FILES = {
    "manifest": manifest(),
    "orgs": ORGS,
    "academicSessions": SESSIONS,
    "classes": CLASSES,
    "users": USERS,
    "roles": ROLES,
    "enrollments": ENROLLMENTS,
    "demographics": DEMOGRAPHICS,
}


def write_set(folder: Path, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (FILES | overrides).items():
        if text is not None:
            (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def read_all(*paths: Path, jp_profile: str = "lenient"):
    connector = OneRosterConnector()
    config = connector.Config(paths=list(paths), jp_profile=jp_profile)
    # The set's declaration that it is complete (RosterScopeRecord) is left out here: it
    # is no row, and tests/connectors/test_leaving.py tests it.
    return [i for i in connector.read(config, RunState()) if not isinstance(i, RosterScopeRecord)]


def errors(items):
    return [i for i in items if isinstance(i, RowError)]


def warnings(items):
    return [i for i in items if isinstance(i, RowWarning)]


EXPECTED = [
    SchoolRecord(origin=Origin(file="orgs.csv", line=3), code=B1, name="渋谷区立第一小学校"),
    SchoolRecord(origin=Origin(file="orgs.csv", line=4), code=C1, name="渋谷区立第一中学校"),
    HomeroomRecord(
        origin=Origin(file="classes.csv", line=2),
        school_code=B1,
        school_year=2025,
        grade=3,
        name="3年1組",
    ),
    HomeroomRecord(
        origin=Origin(file="classes.csv", line=3),
        school_code=C1,
        school_year=2025,
        grade=1,
        name="1年2組",
    ),
    StudentRecord(
        origin=Origin(file="users.csv", line=2),
        source_id=TARO,
        school_code=B1,
        grade=3,
        birth_year_month="2016-05",
        sex="male",
        family_name="山田",
        given_name="太郎",
        family_name_kana="ヤマダ",
        given_name_kana="タロウ",
        principal_name="s0000001@m131130.example.ed.jp",
        other_ids={"c4th": "C0001234", "suzuki": "S0001234"},
    ),
    StudentRecord(
        origin=Origin(file="users.csv", line=3),
        source_id=HANAKO,
        school_code=C1,
        grade=1,
        birth_year_month="2012-11",
        sex="female",
        family_name="髙橋",
        given_name="花子",
        family_name_kana="タカハシ",
        given_name_kana="ハナコ",
        principal_name="s0000002@m131130.example.ed.jp",
        other_ids={},
    ),
    EnrollmentRecord(
        origin=Origin(file="enrollments.csv", line=3),
        student_source_id=TARO,
        school_code=B1,
        school_year=2025,
        homeroom_name="3年1組",
        attendance_number=12,
    ),
    EnrollmentRecord(
        origin=Origin(file="enrollments.csv", line=4),
        student_source_id=HANAKO,
        school_code=C1,
        school_year=2025,
        homeroom_name="1年2組",
        attendance_number=5,
    ),
]


def test_directory_gives_exact_records_in_dependency_order(tmp_path):
    # when
    items = read_all(write_set(tmp_path / "set"))
    # then: the district, the teacher, the 担任 enrollment and the 授業クラス are not records
    assert items == EXPECTED
    assert [i.origin for i in items] == [e.origin for e in EXPECTED]


def test_discover_names_the_streams():
    assert [s.name for s in OneRosterConnector().discover()] == [
        "schools",
        "homerooms",
        "students",
        "enrollments",
    ]


def test_zip_with_a_folder_inside_gives_the_same_records(tmp_path):
    folder = write_set(tmp_path / "RO_20250407_131130")
    archive = tmp_path / "RO_20250407_131130.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in folder.iterdir():
            zf.write(path, f"RO_20250407_131130/{path.name}")
    assert read_all(archive) == EXPECTED
    assert OneRosterConnector().check(OneRosterConnector.Config(paths=[archive])).ok


def test_loose_csv_files_are_one_set(tmp_path):
    folder = write_set(tmp_path / "set")
    assert read_all(*sorted(folder.iterdir())) == EXPECTED


def test_utf8_with_bom_and_cp932_files_are_decoded(tmp_path):
    folder = write_set(tmp_path / "set")
    (folder / "users.csv").write_bytes(USERS.encode("cp932"))
    (folder / "orgs.csv").write_bytes(ORGS.encode("utf-8-sig"))
    assert read_all(folder) == EXPECTED


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_missing_manifest_is_a_source_error(tmp_path, container):
    folder = write_set(tmp_path / "set", manifest=None)
    path = folder
    if container == "zip":
        path = tmp_path / "set.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for file in folder.iterdir():
                zf.write(file, file.name)
    with pytest.raises(SourceError, match=r"manifest\.csv がありません"):
        read_all(path)
    check = OneRosterConnector().check(OneRosterConnector.Config(paths=[path]))
    assert not check.ok and "manifest.csv がありません" in check.message


def test_bulk_file_missing_is_a_source_error_naming_it(tmp_path):
    folder = write_set(tmp_path / "set", enrollments=None)
    with pytest.raises(
        SourceError, match=r"file\.enrollments が bulk.*enrollments\.csv がありません"
    ):
        read_all(folder)


def test_absent_files_are_not_read(tmp_path):
    # given: the manifest declares enrollments and demographics absent (the files are there)
    folder = write_set(
        tmp_path / "set",
        manifest=manifest(bulk=("academicSessions", "classes", "orgs", "roles", "users")),
    )
    items = read_all(folder)
    assert not errors(items)
    assert {i.stream for i in items} == {"schools", "homerooms", "students"}
    assert all(i.birth_year_month == "" for i in items if i.stream == "students")


def test_delta_is_refused(tmp_path):
    folder = write_set(tmp_path / "set", manifest=manifest(users="delta"))
    with pytest.raises(SourceError, match="delta"):
        read_all(folder)


def test_missing_column_fails_before_the_first_record(tmp_path):
    folder = write_set(tmp_path / "set", enrollments=ENROLLMENTS.replace("userSourcedId", "user"))
    connector = OneRosterConnector()
    stream = connector.read(connector.Config(paths=[folder]), RunState())
    with pytest.raises(SourceError, match=r"enrollments\.csv: 必須の列がありません: userSourcedId"):
        next(stream)


def test_check_reports_a_missing_path(tmp_path):
    result = OneRosterConnector().check(OneRosterConnector.Config(paths=[tmp_path / "nothing.zip"]))
    assert not result.ok and "ありません" in result.message


@pytest.mark.parametrize(
    ("code", "school_type", "grade"),
    [
        ("P1", "B1", 1),
        ("P6", "B1", 6),
        ("E3", "B1", 3),
        ("E6", "", 6),
        ("J1", "C1", 1),
        ("J3", "C1", 3),
        ("J3", "C2", 9),
        ("H2", "D1", 2),
        ("H1", "D2", 4),
        ("Ｐ３", "B1", 3),
        (" p4 ", "B1", 4),
        ("07", "C1", 1),
        ("03", "B1", 3),
        ("09", "C2", 9),
    ],
)
def test_grade_codes(code, school_type, grade):
    assert parse_grade(code, school_type) == grade


@pytest.mark.parametrize("code", ["P7", "J4", "H4", "K1", "3", "", "P0", "07"])
def test_bad_grade_codes(code):
    with pytest.raises(ValueError, match="学年コード"):
        parse_grade(code, "B1")


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("{c4th:C0001234},{suzuki:S0001234}", {"c4th": "C0001234", "suzuki": "S0001234"}),
        ("{C4TH:C0001234}", {"c4th": "C0001234"}),
        (" {c4th:C1}, {suzuki:S2} ", {"c4th": "C1", "suzuki": "S2"}),
        ("{ldap:uid=taro,ou=pupils}", {"ldap": "uid=taro,ou=pupils"}),
        ("", {}),
    ],
)
def test_user_ids(text, ids):
    assert parse_user_ids(text) == ids


@pytest.mark.parametrize("text", ["c4th:C0001234", "{c4th:C1} junk", "{c4th}", "{c4th:C1}{x"])
def test_malformed_user_ids(text):
    with pytest.raises(ValueError, match="userIds"):
        parse_user_ids(text)


def test_malformed_user_ids_is_a_row_error(tmp_path):
    users = USERS.replace("{c4th:C0001234},{suzuki:S0001234}", "c4th=C0001234")
    items = read_all(write_set(tmp_path / "set", users=users))
    user_error, enrollment_error = errors(items)
    assert (user_error.origin, user_error.column, user_error.value) == (
        Origin(file="users.csv", line=2),
        "userIds",
        "c4th=C0001234",
    )
    # the pupil's enrollment cannot stand alone either, and says why
    assert (enrollment_error.origin, enrollment_error.column) == (
        Origin(file="enrollments.csv", line=3),
        "userSourcedId",
    )
    assert [i.student_source_id for i in items if isinstance(i, EnrollmentRecord)] == [HANAKO]


def test_user_with_unknown_org_is_a_row_error_with_its_line(tmp_path):
    users = USERS.replace(f",{ORG_C1},,ハナコ", ",org-nowhere,,ハナコ")
    items = read_all(write_set(tmp_path / "set", users=users))
    user_error, enrollment_error = errors(items)
    assert user_error.origin == Origin(file="users.csv", line=3)
    assert user_error.column == "primaryOrgSourcedId"
    assert user_error.value == "org-nowhere"
    assert "orgs.csv にありません" in user_error.reason
    # the enrollment of that pupil is quarantined too, never dropped silently
    assert enrollment_error.origin == Origin(file="enrollments.csv", line=4)
    assert "取り込めませんでした" in enrollment_error.reason
    assert [i.source_id for i in items if isinstance(i, StudentRecord)] == [TARO]


def test_user_whose_org_is_the_district_is_a_row_error(tmp_path):
    users = USERS.replace(f",{ORG_C1},,ハナコ", f",{ORG_DISTRICT},,ハナコ")
    [error, _enrollment] = errors(read_all(write_set(tmp_path / "set", users=users)))
    assert "学校ではありません" in error.reason and error.origin.line == 3


def test_class_of_an_unknown_school_is_a_row_error(tmp_path):
    classes = CLASSES.replace(f"homeroom,,{ORG_C1}", "homeroom,,org-gone")
    items = read_all(write_set(tmp_path / "set", classes=classes))
    class_error, enrollment_error = errors(items)
    assert (class_error.origin, class_error.column) == (
        Origin(file="classes.csv", line=3),
        "schoolSourcedId",
    )
    assert enrollment_error.origin == Origin(file="enrollments.csv", line=4)
    assert enrollment_error.column == "classSourcedId"


def test_birth_date_keeps_year_and_month_only(tmp_path):
    items = read_all(write_set(tmp_path / "set"))
    births = {i.source_id: i.birth_year_month for i in items if isinstance(i, StudentRecord)}
    assert births == {TARO: "2016-05", HANAKO: "2012-11"}


@pytest.mark.parametrize("bad", ["2016/05/12", "2016-02-30", "平成28年5月12日", "20160512"])
def test_malformed_birth_date_is_a_row_error(tmp_path, bad):
    demographics = DEMOGRAPHICS.replace("2016-05-12", bad)
    items = read_all(write_set(tmp_path / "set", demographics=demographics))
    [error] = errors(items)
    assert (error.origin, error.column, error.value) == (
        Origin(file="demographics.csv", line=2),
        "birthDate",
        bad,
    )
    assert "birthDate" in error.reason
    # the pupil is still read, without a birth month
    taro = next(i for i in items if isinstance(i, StudentRecord) and i.source_id == TARO)
    assert taro.birth_year_month == ""


def test_bad_attendance_number_and_bad_school_code_are_row_errors(tmp_path):
    enrollments = ENROLLMENTS.replace("2026-03-31,12,", "2026-03-31,十二,")
    orgs = ORGS.replace(C1, "C1-13211")
    items = read_all(write_set(tmp_path / "set", enrollments=enrollments, orgs=orgs))
    found = {(e.origin.file, e.origin.line, e.column): e.reason for e in errors(items)}
    assert "学校コード" in found["orgs.csv", 4, "identifier"]
    assert found["enrollments.csv", 3, "metadata.jp.ShussekiNo"] == "数値として読めません"
    # everything that hangs on the rejected school is quarantined with a reason
    assert "取り込めませんでした" in found["classes.csv", 3, "schoolSourcedId"]
    assert "取り込めませんでした" in found["users.csv", 3, "primaryOrgSourcedId"]
    assert ("enrollments.csv", 4, "classSourcedId") in found
    assert len(found) == 5


def test_row_with_too_few_cells_is_a_row_error(tmp_path):
    roles = ROLES + f"{uuid_n('4e', 4)},,,u-ghost,primary\n"
    [error] = errors(read_all(write_set(tmp_path / "set", roles=roles)))
    assert error.origin == Origin(file="roles.csv", line=5)
    assert "列の数が足りません" in error.reason


def test_user_without_a_role_is_a_row_error(tmp_path):
    roles = "\n".join(ROLES.splitlines()[:-1]) + "\n"  # the teacher's role is gone
    [error] = errors(read_all(write_set(tmp_path / "set", roles=roles)))
    assert (error.origin, error.column) == (Origin(file="users.csv", line=4), "sourcedId")


def test_oneroster_1_1_role_column(tmp_path):
    # given: 1.1 style, users.csv has role and orgSourcedIds, there is no roles.csv
    header = USERS_HEADER.replace("enabledUser,", "enabledUser,orgSourcedIds,role,")
    lines = [header]
    for line, (org, role) in zip(
        USERS.splitlines()[1:],
        [(ORG_B1, "student"), (ORG_C1, "student"), (ORG_B1, "teacher")],
        strict=True,
    ):
        head, rest = line.split(",true,", 1)
        lines.append(f"{head},true,{org},{role},{rest}")
    folder = write_set(
        tmp_path / "set",
        roles=None,
        users="\n".join(lines) + "\n",
        manifest=manifest(bulk=tuple(b for b in BULK if b != "roles"), version="1.1"),
    )
    items = read_all(folder)
    assert [i for i in items if not isinstance(i, RowWarning)] == EXPECTED
    # a 1.1 users.csv is not the Japan profile's: said once, for the file
    [warning] = warnings(items)
    assert (warning.origin, warning.column) == (Origin(file="users.csv", line=1), "orgSourcedIds")
    assert warning.reason.startswith("OneRoster 日本プロファイル JP-HEADER: ")
    with pytest.raises(SourceError, match=r"JP-HEADER: users\.csv の見出しの 5 列目"):
        read_all(folder, jp_profile="strict")


def test_without_roles_or_role_column_is_a_source_error(tmp_path):
    folder = write_set(
        tmp_path / "set", roles=None, manifest=manifest(bulk=tuple(b for b in BULK if b != "roles"))
    )
    with pytest.raises(SourceError, match=r"roles\.csv"):
        read_all(folder)


def test_a_pupil_marked_tobedeleted_is_read_as_left(tmp_path):
    # a bulk file may still list a pupil marked for deletion: that pupil left (転出: 1年,
    # on a day the file does not give, so the import's)
    users = USERS.replace(f"{HANAKO},,,true", f"{HANAKO},tobedeleted,,true")
    items = read_all(write_set(tmp_path / "set", users=users))
    students = {i.source_id: i for i in items if isinstance(i, StudentRecord)}
    assert (students[TARO].left_on, students[TARO].leaving_reason) == (None, None)
    assert (students[HANAKO].left_on, students[HANAKO].leaving_reason) == (None, "transferred")


# -- the Japan profile's rules (oneroster_jp), lenient and strict ------------------------------


def test_a_set_that_follows_the_profile_passes_strict_with_no_finding(tmp_path):
    assert read_all(write_set(tmp_path / "set"), jp_profile="strict") == EXPECTED


def replace_everywhere(**files_to_replace) -> dict[str, str]:
    """The fixture's files with each ``old`` id replaced by ``new`` in every file (an id is
    referred to from other files)."""
    texts = {name: text for name, text in FILES.items() if name != "manifest"}
    for old, new in files_to_replace.values():
        texts = {name: text.replace(old, new) for name, text in texts.items()}
    return texts


@pytest.mark.parametrize(
    ("file", "line", "old"),
    [
        ("orgs", 3, ORG_B1),
        ("academicSessions", 2, SY),
        ("classes", 2, CLS_B1),
        ("users", 2, TARO),
        ("roles", 2, uuid_n("4e", 1)),
        ("enrollments", 3, uuid_n("e0", 2)),
    ],
)
def test_jp_uuid_each_file_own_sourced_id(tmp_path, file, line, old):
    folder = write_set(tmp_path / "set", **replace_everywhere(id=(old, "ID-0001")))
    # lenient: the row is read as before, the violation is a warning naming file, row, column
    lenient = read_all(folder)
    assert not errors(lenient)
    [warning] = warnings(lenient)
    assert (warning.origin, warning.column, warning.value) == (
        Origin(file=f"{file}.csv", line=line),
        "sourcedId",
        "ID-0001",
    )
    assert warning.reason.startswith("OneRoster 日本プロファイル JP-UUID: ")
    assert "UUID ではありません" in warning.reason
    records = [i for i in lenient if not isinstance(i, RowWarning)]
    assert len(records) == len(EXPECTED)
    # strict: the same finding is a row error and the row is not read
    strict = read_all(folder, jp_profile="strict")
    assert not warnings(strict)
    assert (errors(strict)[0].origin, errors(strict)[0].reason) == (
        warning.origin,
        warning.reason,
    )
    assert len([i for i in strict if not isinstance(i, RowError)]) < len(EXPECTED)


def test_jp_uuid_strict_rejects_what_hangs_on_the_row_and_says_why(tmp_path):
    # given: 太郎's users.csv row has a school-system id, not a UUID
    folder = write_set(tmp_path / "set", **replace_everywhere(taro=(TARO, "S0000001")))
    items = read_all(folder, jp_profile="strict")
    found = {(e.origin.file, e.origin.line, e.column): e.reason for e in errors(items)}
    assert set(found) == {("users.csv", 2, "sourcedId"), ("enrollments.csv", 3, "userSourcedId")}
    assert "JP-UUID" in found["users.csv", 2, "sourcedId"]
    assert "取り込めませんでした" in found["enrollments.csv", 3, "userSourcedId"]
    assert [i.source_id for i in items if isinstance(i, StudentRecord)] == [HANAKO]


def test_jp_uuid_strict_role_row_rejected_is_named_on_the_user(tmp_path):
    folder = write_set(tmp_path / "set", **replace_everywhere(role=(uuid_n("4e", 2), "r2")))
    found = {
        (e.origin.file, e.origin.line): e.reason
        for e in errors(read_all(folder, jp_profile="strict"))
    }
    assert "JP-UUID" in found["roles.csv", 3]
    assert "roles.csv の行に誤りがあり取り込めませんでした" in found["users.csv", 3]


def test_jp_uuid_strict_session_rejected_is_named_on_its_classes(tmp_path):
    folder = write_set(tmp_path / "set", **replace_everywhere(sy=(SY, "sy-2025")))
    found = {
        (e.origin.file, e.origin.line): e.reason
        for e in errors(read_all(folder, jp_profile="strict"))
    }
    assert "JP-UUID" in found["academicSessions.csv", 2]
    # the title 「3年1組」 has no year: the class says which session it could not use
    assert "学期 sy-2025 は academicSessions.csv の行に誤りがあり" in found["classes.csv", 2]


@pytest.mark.parametrize("code", ["E4", "Ｐ３", "p3", "03", "P3,K1"])
def test_jp_grade_on_users(tmp_path, code):
    cell = f'"{code}"' if "," in code else code
    users = USERS.replace(",P3,", f",{cell},", 1)
    folder = write_set(tmp_path / "set", users=users)
    lenient = read_all(folder)
    [warning] = warnings(lenient)
    assert (warning.origin, warning.column, warning.value) == (
        Origin(file="users.csv", line=2),
        "grades",
        code,
    )
    assert warning.reason.startswith("OneRoster 日本プロファイル JP-GRADE: ")
    # read as before: the pupil is there (a grade parse_grade knows) ...
    taro = [i for i in lenient if isinstance(i, StudentRecord) and i.source_id == TARO]
    assert [t.grade for t in taro] == ([4] if code == "E4" else [3])
    # ... and strict rejects the row with the same reason
    strict = read_all(folder, jp_profile="strict")
    assert errors(strict)[0].reason == warning.reason
    assert TARO not in [i.source_id for i in strict if isinstance(i, StudentRecord)]


def test_jp_grade_on_a_class_strict_rejects_the_class_and_its_enrollments(tmp_path):
    classes = CLASSES.replace(",3年1組,P3,", ",3年1組,03,")
    folder = write_set(tmp_path / "set", classes=classes)
    lenient = read_all(folder)
    assert [(w.origin.file, w.origin.line, w.column) for w in warnings(lenient)] == [
        ("classes.csv", 2, "grades")
    ]
    assert [i.grade for i in lenient if isinstance(i, HomeroomRecord)] == [3, 1]
    found = {(e.origin.file, e.origin.line) for e in errors(read_all(folder, jp_profile="strict"))}
    assert found == {("classes.csv", 2), ("enrollments.csv", 3)}


@pytest.mark.parametrize("code", oneroster_jp.JP_GRADES)
def test_every_profile_grade_code_passes(code):
    row = CsvRow(2, [TARO, code], ["sourcedId", "grades"])
    assert oneroster_jp.row_findings("users", row) == []


def test_jp_schoolcode_check_digit(tmp_path):
    # given: the school's 学校コード with a wrong last digit (…12 where …19 is right)
    folder = write_set(tmp_path / "set", orgs=ORGS.replace(B1, "B113211300012"))
    lenient = read_all(folder)
    [warning] = warnings(lenient)
    assert (warning.origin, warning.column, warning.value) == (
        Origin(file="orgs.csv", line=3),
        "identifier",
        "B113211300012",
    )
    assert warning.reason.startswith("OneRoster 日本プロファイル JP-SCHOOLCODE: ")
    assert "正しくは B113211300019" in warning.reason
    assert [i.code for i in lenient if isinstance(i, SchoolRecord)] == ["B113211300012", C1]
    # strict: the school is refused, and its class, pupil and enrollment say why
    strict = read_all(folder, jp_profile="strict")
    found = {(e.origin.file, e.origin.line): e.reason for e in errors(strict)}
    assert found["orgs.csv", 3] == warning.reason
    assert "取り込めませんでした" in found["classes.csv", 2]
    assert "取り込めませんでした" in found["users.csv", 2]
    assert ("enrollments.csv", 3) in found
    assert [i.code for i in strict if isinstance(i, SchoolRecord)] == [C1]


def test_jp_schoolcode_is_not_asked_of_a_district_nor_twice_of_a_malformed_code(tmp_path):
    # the district's 6-digit code is not a 学校コード; a malformed one is an error already
    orgs = ORGS.replace(B1, "B1-13211")
    items = read_all(write_set(tmp_path / "set", orgs=orgs))
    assert not warnings(items)
    assert "学校コード" in errors(items)[0].reason


def test_jp_header_out_of_order(tmp_path):
    # given: the two metadata.jp columns of enrollments.csv in the other order
    header = ENROLLMENTS_HEADER.replace(
        "metadata.jp.ShussekiNo,metadata.jp.PublicFlg",
        "metadata.jp.PublicFlg,metadata.jp.ShussekiNo",
    )
    lines = [header] + [
        line.rsplit(",", 2)[0] + f",{line.rsplit(',', 2)[2]},{line.rsplit(',', 2)[1]}"
        for line in ENROLLMENTS.splitlines()[1:]
    ]
    folder = write_set(tmp_path / "set", enrollments="\n".join(lines) + "\n")
    lenient = read_all(folder)
    # lenient: one warning for the file (line 1, its header), every row read as before
    [warning] = warnings(lenient)
    assert (warning.origin, warning.column) == (
        Origin(file="enrollments.csv", line=1),
        "metadata.jp.PublicFlg",
    )
    assert warning.reason.startswith(
        "OneRoster 日本プロファイル JP-HEADER: enrollments.csv の見出しの 11 列目は"
        "「metadata.jp.ShussekiNo」のはずが、「metadata.jp.PublicFlg」です"
    )
    assert [i for i in lenient if not isinstance(i, RowWarning)] == EXPECTED
    # strict: the file is refused, before any record, with what to do
    connector = OneRosterConnector()
    stream = connector.read(connector.Config(paths=[folder], jp_profile="strict"), RunState())
    with pytest.raises(SourceError, match=r"JP-HEADER: enrollments\.csv .*lenient にしてください"):
        next(stream)


@pytest.mark.parametrize(("extra", "finding"), [("metadata.vendor.classNo", False), ("note", True)])
def test_jp_header_allows_metadata_extensions_only_after_the_profile_columns(
    tmp_path, extra, finding
):
    orgs = ORGS.replace("parentSourcedId\n", f"parentSourcedId,{extra}\n", 1)
    orgs = "\n".join(line if i == 0 else line + "," for i, line in enumerate(orgs.splitlines()))
    items = read_all(write_set(tmp_path / "set", orgs=orgs + "\n"))
    assert [(w.origin.file, w.origin.line, w.column) for w in warnings(items)] == (
        [("orgs.csv", 1, extra)] if finding else []
    )


def test_synthetic_data_writes_the_profile_header_order():
    # the demo's generator and the profile's rules must not drift apart
    for name, columns in oneroster_jp.JP_HEADERS.items():
        assert tuple(ONEROSTER_HEADERS[name]) == columns, name


# -- through the pipeline: the tenant's setting decides, and the counts add up -----------------


def nonconformant_set(folder: Path) -> Path:
    """太郎 keeps his school-system id and 第一小学校 a 学校コード with a wrong check digit."""
    texts = replace_everywhere(taro=(TARO, "S0000001"), school=(B1, "B113211300012"))
    return write_set(folder, **texts)


def findings_of(run, municipality):
    with in_tenant(municipality):
        return sorted(run.quarantine.values_list("kind", "file", "line", "column"))


@pytest.mark.django_db
def test_lenient_import_accepts_every_row_and_reports_each_violation(tmp_path, shibuya):
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[nonconformant_set(tmp_path / "s")])
    assert run.status == "succeeded", run.message
    # 2 schools, 2 homerooms, 2 pupils, 2 enrollments: all accepted
    assert (run.rows_read, run.rows_accepted, run.rows_rejected, run.warnings) == (8, 8, 0, 2)
    assert findings_of(run, shibuya) == [
        ("warning", "orgs.csv", 3, "identifier"),
        ("warning", "users.csv", 2, "sourcedId"),
    ]
    with in_tenant(shibuya):
        assert StudentIdentity.objects.filter(source_system="oneroster").count() == 2
        report = "".join(error_report_lines(run, values=False)).splitlines()
    assert report[0] == "\ufeffファイル,行,列,理由,種別"
    assert all(line.endswith(",警告") for line in report[1:]) and len(report) == 3
    assert any("JP-SCHOOLCODE" in line for line in report)


@pytest.mark.django_db
def test_strict_import_from_the_tenant_setting_quarantines_violating_rows(tmp_path, shibuya):
    with in_tenant(shibuya):
        do_save_connector_setting(
            OneRosterConnector,
            shibuya,
            actor=ACTOR,
            config=OneRosterConnector.Config(jp_profile="strict"),
            config_fields=["jp_profile"],
            enabled=True,
            inbox_enabled=False,
        )
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[nonconformant_set(tmp_path / "s")])
    assert run.status == "succeeded", run.message
    assert run.config["jp_profile"] == "strict"
    # 第一小学校 and all of 太郎's rows (school, homeroom, pupil, enrollment) are quarantined
    assert (run.rows_read, run.rows_accepted, run.rows_rejected, run.warnings) == (8, 4, 4, 0)
    assert run.rows_read == run.rows_accepted + run.rows_rejected
    assert findings_of(run, shibuya) == [
        ("error", "classes.csv", 2, "schoolSourcedId"),
        ("error", "enrollments.csv", 3, "classSourcedId"),
        ("error", "orgs.csv", 3, "identifier"),
        ("error", "users.csv", 2, "sourcedId"),
    ]
    with in_tenant(shibuya):
        assert list(
            StudentIdentity.objects.filter(source_system="oneroster").values_list(
                "source_id", flat=True
            )
        ) == [HANAKO]


@pytest.mark.django_db
def test_strict_import_refuses_a_set_with_a_header_out_of_order(tmp_path, shibuya):
    # given: two (empty) columns of users.csv in the other order
    users = USERS.replace(
        "metadata.jp.kanaMiddleName,metadata.jp.homeClass",
        "metadata.jp.homeClass,metadata.jp.kanaMiddleName",
        1,
    )
    folder = write_set(tmp_path / "s", users=users)
    lenient = do_import("oneroster", shibuya, actor=ACTOR, paths=[folder])
    run = do_import(
        "oneroster", shibuya, actor=ACTOR, paths=[folder], config={"jp_profile": "strict"}
    )
    assert run.status == "failed"
    assert (
        "JP-HEADER: users.csv の見出しの 26 列目は「metadata.jp.kanaMiddleName」のはずが、"
        "「metadata.jp.homeClass」です" in run.message
    )
    assert run.rows_read == 0
    # lenient read the same files (the columns are found by name) with one warning for the file
    assert (lenient.status, lenient.rows_read, lenient.rows_rejected) == ("succeeded", 8, 0)
    assert findings_of(lenient, shibuya) == [("warning", "users.csv", 1, "metadata.jp.homeClass")]
