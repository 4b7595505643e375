"""The OneRoster 1.2 CSV (Japan profile) connector, on small hand-written sets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from renkei.connectors.builtin.oneroster import (
    OneRosterConnector,
    parse_grade,
    parse_user_ids,
)
from renkei.connectors.records import (
    EnrollmentRecord,
    HomeroomRecord,
    Origin,
    SchoolRecord,
    StudentRecord,
)
from renkei.connectors.sdk import RowError, RunState, SourceError

B1 = "B113211300012"  # renkei.demo.world.demo_school_codes("131130")[0]
C1 = "C113211300011"

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


ORGS = """\
sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId
org-district,,,渋谷区教育委員会,district,131130,NULL
org-b1,,,渋谷区立第一小学校,school,B113211300012,org-district
org-c1,,,渋谷区立第一中学校,school,C113211300011,org-district
"""
SESSIONS = """\
sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear
sy-2025,,,2025年度,schoolYear,2025-04-01,2026-03-31,,2025
"""
CLASSES = """\
sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods,metadata.jp.specialNeeds
cls-b1-3-1,,,3年1組,P3,crs-1,,homeroom,,org-b1,sy-2025,,,,false
cls-c1-1-2,,,1年2組,J1,crs-2,,homeroom,,org-c1,sy-2025,,,,false
cls-math,,,数学1年,J1,crs-3,,scheduled,,org-c1,sy-2025,数学,,,false
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
                "u-taro",
                "s0000001@m131130.example.ed.jp",
                "{c4th:C0001234},{suzuki:S0001234}",
                "太郎",
                "山田",
                "P3",
                "org-b1",
                "タロウ",
                "ヤマダ",
            ),
            user(
                "u-hanako",
                "s0000002@m131130.example.ed.jp",
                "",
                "花子",
                "髙橋",
                "J1",
                "org-c1",
                "ハナコ",
                "タカハシ",
            ),
            user(
                "u-teacher",
                "t0000001@m131130.example.ed.jp",
                "",
                "誠",
                "佐藤",
                "",
                "org-b1",
                "マコト",
                "サトウ",
            ),
        ]
    )
    + "\n"
)
ROLES = """\
sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId
r1,,,u-taro,primary,student,2025-04-01,2026-03-31,org-b1,
r2,,,u-hanako,primary,student,2025-04-01,2026-03-31,org-c1,
r3,,,u-teacher,primary,teacher,2025-04-01,2026-03-31,org-b1,
"""
ENROLLMENTS = """\
sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate,metadata.jp.ShussekiNo,metadata.jp.PublicFlg
e1,,,cls-b1-3-1,org-b1,u-teacher,teacher,true,2025-04-01,2026-03-31,,
e2,,,cls-b1-3-1,org-b1,u-taro,student,false,2025-04-01,2026-03-31,12,
e3,,,cls-c1-1-2,org-c1,u-hanako,student,false,2025-04-01,2026-03-31,5,
e4,,,cls-math,org-c1,u-hanako,student,false,2025-04-01,2026-03-31,,
"""
DEMOGRAPHICS = """\
sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus
u-taro,,,2016-05-12,male,,,,,,,,,,,
u-hanako,,,2012-11-30,female,,,,,,,,,,,
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


def read_all(*paths: Path):
    connector = OneRosterConnector()
    return list(connector.read(connector.Config(paths=list(paths)), RunState()))


def errors(items):
    return [i for i in items if isinstance(i, RowError)]


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
        source_id="u-taro",
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
        source_id="u-hanako",
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
        student_source_id="u-taro",
        school_code=B1,
        school_year=2025,
        homeroom_name="3年1組",
        attendance_number=12,
    ),
    EnrollmentRecord(
        origin=Origin(file="enrollments.csv", line=4),
        student_source_id="u-hanako",
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
    assert [i.student_source_id for i in items if isinstance(i, EnrollmentRecord)] == ["u-hanako"]


def test_user_with_unknown_org_is_a_row_error_with_its_line(tmp_path):
    users = USERS.replace(",org-c1,,ハナコ", ",org-nowhere,,ハナコ")
    items = read_all(write_set(tmp_path / "set", users=users))
    user_error, enrollment_error = errors(items)
    assert user_error.origin == Origin(file="users.csv", line=3)
    assert user_error.column == "primaryOrgSourcedId"
    assert user_error.value == "org-nowhere"
    assert "orgs.csv にありません" in user_error.reason
    # the enrollment of that pupil is quarantined too, never dropped silently
    assert enrollment_error.origin == Origin(file="enrollments.csv", line=4)
    assert "取り込めませんでした" in enrollment_error.reason
    assert [i.source_id for i in items if isinstance(i, StudentRecord)] == ["u-taro"]


def test_user_whose_org_is_the_district_is_a_row_error(tmp_path):
    users = USERS.replace(",org-c1,,ハナコ", ",org-district,,ハナコ")
    [error, _enrollment] = errors(read_all(write_set(tmp_path / "set", users=users)))
    assert "学校ではありません" in error.reason and error.origin.line == 3


def test_class_of_an_unknown_school_is_a_row_error(tmp_path):
    classes = CLASSES.replace("homeroom,,org-c1", "homeroom,,org-gone")
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
    assert births == {"u-taro": "2016-05", "u-hanako": "2012-11"}


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
    taro = next(i for i in items if isinstance(i, StudentRecord) and i.source_id == "u-taro")
    assert taro.birth_year_month == ""


def test_bad_attendance_number_and_bad_school_code_are_row_errors(tmp_path):
    enrollments = ENROLLMENTS.replace("2026-03-31,12,", "2026-03-31,十二,")
    orgs = ORGS.replace("C113211300011", "C1-13211")
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
    roles = ROLES + "r4,,,u-ghost,primary\n"
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
        [("org-b1", "student"), ("org-c1", "student"), ("org-b1", "teacher")],
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
    assert read_all(folder) == EXPECTED


def test_without_roles_or_role_column_is_a_source_error(tmp_path):
    folder = write_set(
        tmp_path / "set", roles=None, manifest=manifest(bulk=tuple(b for b in BULK if b != "roles"))
    )
    with pytest.raises(SourceError, match=r"roles\.csv"):
        read_all(folder)


def test_tobedeleted_rows_are_skipped(tmp_path):
    users = USERS.replace("u-hanako,,,true", "u-hanako,tobedeleted,,true")
    items = read_all(write_set(tmp_path / "set", users=users))
    assert [i.source_id for i in items if isinstance(i, StudentRecord)] == ["u-taro"]
