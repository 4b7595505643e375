"""改訂履歴 on the prefecture page: the year's revisions of the analyst's own prefecture and
which of its municipalities closed the year; never another prefecture's."""

from __future__ import annotations

import datetime as dt

from renkei.tenants.models import ClosedSchoolYear, Prefecture, Revision


def test_the_prefecture_page_shows_its_own_revisions_and_closings(
    client, make_user, shibuya, shinjuku, osaka
):
    # given a revision in 渋谷区 (東京都), one in 大阪市 and 新宿区's year closed
    Revision.objects.create(
        municipality=shibuya, school_year=2025, kind="purge", revised_on=dt.date(2026, 11, 2)
    )
    Revision.objects.create(
        municipality=osaka, school_year=2025, kind="import", revised_on=dt.date(2026, 11, 3)
    )
    Revision.objects.create(
        municipality=shibuya, school_year=2024, kind="import", revised_on=dt.date(2026, 5, 3)
    )
    ClosedSchoolYear.objects.create(municipality=shinjuku, school_year=2025)
    analyst = make_user("rev-pref", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    client.force_login(analyst)
    # when 東京都's analyst opens the page for 2025年度
    html = client.get("/prefecture/?metric=long_term_absence&year=2025").content.decode()
    # then the year's revision of 渋谷区 is listed, with its day and kind,
    section = html[html.index('data-testid="revisions"') :]
    assert "改訂履歴（2025年度）" in section
    assert "2026-11-02" in section and "保存期間経過による削除" in section
    # not 大阪府's, nor another year's
    assert "大阪市" not in section and "2026-11-03" not in section
    assert "2026-05-03" not in section
    # and 新宿区 closed the year, 渋谷区 did not
    closing = section[section.index('data-testid="closing"') :]
    shinjuku_row = closing[closing.index("新宿区") :].split("</tr>")[0]
    shibuya_row = closing[closing.index("渋谷区") :].split("</tr>")[0]
    assert "締め済み" in shinjuku_row and "締めていない" in shibuya_row
