"""The prefecture analyst's comparison page: municipalities side by side in code order,
suppressed cells marked 秘匿; a municipality's own pages stay closed to them."""

from __future__ import annotations

import pytest
from browser_support import screenshot, sign_in, wait_widgets

from renkei.demo.world import DEMO_MUNICIPALITIES, DEMO_SMALL_MUNICIPALITIES

pytestmark = pytest.mark.slow

ANALYST = "pref-13"
# The demo's wards and cities, and its small towns and villages, in code order.
MUNICIPALITIES = sorted(
    [code for code, _ in DEMO_MUNICIPALITIES] + [code for code, _, _ in DEMO_SMALL_MUNICIPALITIES]
)


def choose(page, metric: str, year: str, breakdown: str | None) -> None:
    """Pick in the form and submit, as a user would."""
    form = page.locator("main form").filter(has=page.locator("select[name=metric]"))
    form.locator("select[name=metric]").select_option(metric)
    form.locator("select[name=year]").select_option(year)
    if breakdown is not None and form.locator("select[name=breakdown]").count():
        options = form.locator("select[name=breakdown] option").evaluate_all(
            "els => els.map(e => e.value)"
        )
        if breakdown in options:
            form.locator("select[name=breakdown]").select_option(breakdown)
    with page.expect_navigation():
        form.locator("button[type=submit], input[type=submit]").first.click()


def candidates(page) -> list[tuple[str, str, str | None]]:
    """long-term absence by grade first (small cells are likely there), then the rest."""
    metrics = page.locator("select[name=metric] option").evaluate_all(
        "els => els.map(e => e.value)"
    )
    years = page.locator("select[name=year] option").evaluate_all("els => els.map(e => e.value)")[
        ::-1
    ]
    metrics.sort(key=lambda m: (m != "long_term_absence", m))
    return [(m, y, b) for m in metrics for b in ("grade", "", "month") for y in years]


def test_prefecture_comparison(page, demo_server):
    server = demo_server
    sign_in(page, server.base_url, ANALYST)

    # given the comparison page
    response = page.goto(f"{server.base_url}/prefecture/")
    assert response.status == 200, response.status
    assert (
        page.locator("select[name=metric]").count() and page.locator("select[name=year]").count()
    ), "the page has no metric/year form"

    # when the analyst picks a metric and year where some cells are suppressed
    table = page.locator('table[data-testid="comparison"]')
    tried = []
    for metric, year, breakdown in candidates(page)[:30]:
        choose(page, metric, year, breakdown)
        tried.append((metric, year, breakdown))
        if table.locator('td[data-suppressed="true"]').count():
            break
    else:
        pytest.fail(
            f"no suppressed cell in any of {tried}; alerts: "
            f"{page.locator('[role=alert]').all_inner_texts()}"
        )
    print(f"\n[browser] suppressed cells at metric={metric} year={year} breakdown={breakdown}")

    # then the municipalities are columns in code order, then the prefecture's total
    codes = table.locator("thead th[data-code]").evaluate_all("els => els.map(e => e.dataset.code)")
    assert codes[:-1] == MUNICIPALITIES and codes[-1] == "__total__", codes

    # and the suppressed cells say 秘匿 and give no number, next to released values
    assert table.locator("td.num").count(), "no released value at all next to the 秘匿 cells"
    in_table = table.locator('td[data-suppressed="true"]').all_text_contents()
    assert all(t.strip() == "秘匿" for t in in_table), in_table

    # and the chart of the same metric settles; its accessible table (folded in a <details>,
    # hence textContent) marks its suppressed cells the same way
    wait_widgets(page, 1, selector="renkei-chart")
    chart = page.locator("renkei-chart").first
    assert chart.get_attribute("data-state") == "ready", (
        chart.get_attribute("data-state"),
        chart.locator("[role=alert]").all_inner_texts(),
    )
    assert chart.locator("canvas").count(), "renkei-chart drew no canvas"
    assert (chart.get_attribute("data-suppressed-count") or "").isdigit(), chart.get_attribute(
        "data-suppressed-count"
    )
    in_chart = chart.locator('[data-suppressed="true"]').all_text_contents()
    assert all(t.strip() == "秘匿" for t in in_chart), in_chart
    screenshot(page, "prefecture-comparison", tablet=True)

    # when the analyst opens a municipality's own page
    response = page.goto(f"{server.base_url}/m/131130/")

    # then 403 with a message
    assert response.status == 403, response.status
    assert page.locator("[role=alert]").count(), "the 403 page has no [role=alert] message"
    screenshot(page, "prefecture-municipality-403")


def test_analyst_token_reads_the_federation_api(page, demo_server):
    base = demo_server.base_url
    sign_in(page, base, ANALYST)

    # given the comparison page, the analyst follows the link to 連携用トークン
    page.goto(f"{base}/prefecture/")
    page.get_by_role("link", name="連携用トークン").click()
    page.wait_for_url(f"{base}/prefecture/token/")

    # when they choose 7 days and issue a token
    page.get_by_label("有効期間").select_option("7")
    with page.expect_navigation():
        page.get_by_role("button", name="トークンを発行する").click()
    token = page.get_by_test_id("analyst-token").input_value()
    assert token.startswith("rkf1."), token
    screenshot(page, "prefecture-token", tablet=True)
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 1, f"the token page is {wide}px wider than the window"

    # then a program without the browser's session reads the prefecture with it over HTTP
    query = '{ prefecture(code: "13") { name } }'
    api = page.context.request
    page.context.clear_cookies()
    answer = api.post(
        f"{base}/federation/graphql",
        data={"query": query},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200 and answer.json()["data"]["prefecture"]["name"] == "東京都"
    # and without the token the same request is refused
    anonymous = api.post(f"{base}/federation/graphql", data={"query": query}).json()
    assert anonymous["data"] == {"prefecture": None}, anonymous
