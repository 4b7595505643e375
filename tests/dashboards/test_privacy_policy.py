"""The public 取扱い方針 page: no login, generated from the municipality's real settings (its
connectors, the fields they bring and their sensitivity, the roles, retention, k, alert
thresholds), and no pupil's name anywhere on it."""

from __future__ import annotations

import re

import pytest

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.connectors.pipeline import do_import
from renkei.dashboards.privacy_policy import pupil_models
from renkei.edudata.models import AccessLog, ImportRun, Student, StudentIdentity
from renkei.platform.audit import Actor
from renkei.tenants.actions import do_change_municipality_settings
from renkei.tenants.context import in_tenant

PAGE = "/m/131130/privacy/"
ACTOR = Actor.system("test")


def _files(folder):
    return sorted(folder.iterdir())


def _page(client, url=PAGE) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _item_row(html: str, label: str) -> str:
    """The table row of one kind of information (its label in the row's header cell)."""
    match = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', html, re.S)
    assert match, f"{label} is not on the page"
    return match.group(1)


def test_anyone_reads_it_without_signing_in_and_it_states_the_real_settings(db, client, shibuya):
    html = _page(client)
    assert "渋谷区 教育データの取扱い方針" in html
    assert "学校を離れた日から 5 年" in html
    assert "10 人未満" in html
    assert "連続 3 日、月 10 日、年間 30 日" in html

    do_change_municipality_settings(
        shibuya,
        actor=ACTOR,
        retention_years=7,
        min_cell_size=15,
        alert_consecutive_absence_days=4,
    )
    html = _page(client)
    assert "学校を離れた日から 7 年" in html
    assert "15 人未満" in html
    assert "連続 4 日" in html
    # every page of the municipality links to it
    assert PAGE in _page(client, "/m/131130/accounts/login/")


def test_an_unknown_municipality_has_no_page(db, client):
    assert client.get("/m/999999/privacy/").status_code == 404


def test_the_information_held_follows_the_connectors_in_use(db, client, shibuya, synth_data):
    html = _page(client)
    assert "まだ学校のシステムとの連携はありません" in html
    # records staff write in Renkei are held whatever the connectors
    assert "Renkei 上で教職員が記録" in _item_row(html, "支援記録")
    assert "Renkei が自動で記録" in _item_row(html, "閲覧記録")
    assert '<th scope="row">Microsoft 365 利用</th>' not in html

    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == ImportRun.Status.SUCCEEDED
    html = _page(client)
    assert "OneRoster 1.2 CSV" in html
    assert "OneRoster" in _item_row(html, "児童生徒の識別情報")
    assert "姓（かな）" in _item_row(html, "児童生徒の識別情報")
    # the page describes kinds of information, never a pupil
    with in_tenant(shibuya):
        names = list(StudentIdentity.objects.values_list("family_name", "given_name"))
        pseudonyms = list(Student.objects.values_list("pseudonym", flat=True))
    assert names
    for family, given in names:
        if family and given:
            assert f"{family} {given}" not in html and f"{family}{given}" not in html
    assert not any(p in html for p in pseudonyms)

    run = do_import("c4th", shibuya, actor=ACTOR, paths=_files(synth_data / "c4th"))
    assert run.status == ImportRun.Status.SUCCEEDED
    row = _item_row(_page(client), "保健室利用")
    assert "EDUCOM Manager C4th" in row
    assert "記録<strong>（要配慮）</strong>" in row  # the nurse's note is sensitive
    assert "来室理由<strong>（要配慮）" not in row


def test_every_kind_of_pupil_record_is_described(db, client, shibuya, synth_data):
    """Nothing held about a pupil is left off: every model hanging off Student is on the page
    once the connectors that bring it are in use, with a label of its own for every field."""
    run = do_import("oneroster", shibuya, actor=ACTOR, paths=[synth_data / "oneroster"])
    assert run.status == ImportRun.Status.SUCCEEDED, run.message
    for connector in ("c4th", "checkin", "drill", "xapi", "msgraph"):
        run = do_import(connector, shibuya, actor=ACTOR, paths=_files(synth_data / connector))
        assert run.status == ImportRun.Status.SUCCEEDED, (connector, run.message)
    html = _page(client)
    missing = []
    for model in [*pupil_models(), AccessLog]:
        if model._meta.verbose_name == "健康観察":
            continue  # only the example vendor's app brings it: not in use here

        row = _item_row(html, str(model._meta.verbose_name))
        for field in model._meta.concrete_fields:
            if field.primary_key or field.is_relation:
                continue
            label = str(field.verbose_name)
            if label not in row or label == field.name.replace("_", " "):  # no label of its own
                missing.append(f"{model.__name__}.{field.name} ({label})")
    assert not missing, missing


def test_every_role_says_what_it_reaches(db, client, shibuya):
    assert set(policy.ROLE_REACH) == set(Role)
    html = _page(client)
    for role in Role:
        assert f'<th scope="row">{role.label}</th><td>{policy.ROLE_REACH[role]}</td>' in html
    # the records each school role reads come from the rule table itself
    nurse = re.search(r'<th scope="row">養護教諭</th>.*?</tr>', html, re.S).group(0)
    assert "健康観察・保健室利用" in nurse and "支援記録" not in nurse.split("</td>", 1)[1]
    counselor = re.search(r'<th scope="row">スクールカウンセラー</th>.*?</tr>', html, re.S).group(0)
    assert "管理職が担当として割り当てた児童生徒だけ" in counselor
    board = re.search(r'<th scope="row">教育委員会（分析）</th>.*?</tr>', html, re.S).group(0)
    assert "見ません</td>" in board


@pytest.mark.parametrize(("language", "heading"), [("ja", "保存期間"), ("en", "Retention")])
def test_japanese_by_default_english_on_request(db, client, shibuya, language, heading):
    client.cookies["django_language"] = language
    assert heading in _page(client)
