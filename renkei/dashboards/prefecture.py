"""都道府県 EBPM page: the prefecture's municipalities side by side for one metric and year.

The page asks the federation GraphQL schema (the same one gateways use) with the analyst's
session, so it can only ever show released, disclosure-controlled tables. Municipalities are
columns in code order - a comparison, not a ranking.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from strawberry.utils.str_converters import to_camel_case  # as the schema names fields

from renkei.accounts import policy
from renkei.dashboards import audit_trail as audit_trail_pages
from renkei.dashboards.views import chosen_year
from renkei.edudata.metrics import METRICS, MUNICIPALITY, PREFECTURE_WIDE_METRICS, TOTAL
from renkei.edudata.models import school_year_of
from renkei.graphql.federation import auth
from renkei.graphql.federation.schema import FederationContext, schema
from renkei.platform.models import AuditEvent
from renkei.tenants.codes import PREFECTURES

BREAKDOWNS = {
    "": "byMunicipality: true",
    "grade": "byMunicipality: true, byGrade: true",
    "month": "byMunicipality: true, byMonth: true",
}
QUERY = """
query Compare($code: String!, $year: Int!) {
  prefecture(code: $code) {
    name
    result: %(field)s(schoolYear: $year, %(flags)s) {
      metric { name labelJa labelEn unit descriptionJa descriptionEn }
      dimensions k complete
      labels { dimension code label labelEn }
      cells { key value pupils suppressed reason }
      municipalities { code name status reason }
    }
  }
}
"""
# The year's revisions and which municipalities closed it (改訂履歴), from the same schema.
HISTORY_QUERY = """
query History($code: String!, $year: Int!) {
  prefecture(code: $code) {
    revisions(schoolYear: $year) { municipalityCode municipalityName kind kindLabel revisedOn }
    municipalities { code name closedSchoolYears }
  }
}
"""
log = logging.getLogger(__name__)
TOKEN_DAYS = (1, 7, 30)  # a gateway's token is renewed by a person: keep the choice short
NOT_ANALYST = gettext_lazy("都道府県の比較は、都道府県の分析担当者だけが見られます。")


def _prefecture_code(principal: policy.Principal) -> str:
    codes = policy.analyst_prefectures(principal)
    policy.require(bool(codes), NOT_ANALYST)
    return codes[0]


def comparison(
    principal: policy.Principal, prefecture_code: str, metric: str, year: int, breakdown: str
) -> tuple[dict | None, str | None]:
    """Run the federation query; (the result, None) or (None, the error's message)."""
    query = QUERY % {"field": to_camel_case(metric), "flags": BREAKDOWNS[breakdown]}
    answer = schema.execute_sync(
        query,
        variable_values={"code": prefecture_code, "year": year},
        context_value=FederationContext(principal=principal),
    )
    if answer.errors:
        return None, answer.errors[0].message
    return answer.data["prefecture"]["result"], None


def revision_history(principal: policy.Principal, prefecture_code: str, year: int) -> dict | None:
    """The year's 改訂履歴: its revisions (newest first) and, per municipality, whether it
    closed the year (its figures final). None when the schema refuses."""
    answer = schema.execute_sync(
        HISTORY_QUERY,
        variable_values={"code": prefecture_code, "year": year},
        context_value=FederationContext(principal=principal),
    )
    if answer.errors:
        return None
    data = answer.data["prefecture"]
    return {
        "revisions": data["revisions"],
        "municipalities": [
            {"code": m["code"], "name": m["name"], "closed": year in m["closedSchoolYears"]}
            for m in data["municipalities"]
        ],
    }


def side_by_side(result: dict, english: bool = False) -> dict:
    """Rows = every combination of the other dimensions, columns = municipalities (by code)
    and the prefecture total last."""
    dims = result["dimensions"]
    where = dims.index(MUNICIPALITY)
    field = "labelEn" if english else "label"
    labels = {(label["dimension"], label["code"]): label[field] for label in result["labels"]}
    names = {m["code"]: m["name"] for m in result["municipalities"]}
    columns = [*sorted(names), TOTAL]
    rows: dict[tuple, dict] = {}
    for cell in result["cells"]:
        rest = tuple(code for i, code in enumerate(cell["key"]) if i != where)
        rows.setdefault(rest, {})[cell["key"][where]] = cell
    other = [d for d in dims if d != MUNICIPALITY]

    def row_label(key: tuple) -> str:
        parts = [labels.get((d, code), code) for d, code in zip(other, key, strict=True)]
        return " / ".join(parts) or _("計")

    return {
        "columns": [{"code": c, "label": names.get(c) or _("計")} for c in columns],
        "rows": [
            {"label": row_label(key), "cells": [rows[key].get(c) for c in columns]} for key in rows
        ],
    }


@login_required
def prefecture_home(request):
    principal = policy.principal_for(request)
    code = _prefecture_code(principal)
    current = school_year_of(timezone.localdate())
    years = list(range(current - 4, current + 1))
    notes = []  # what was asked for but could not be shown, said on the page
    metric = request.GET.get("metric", "long_term_absence")
    if metric in METRICS and metric not in PREFECTURE_WIDE_METRICS:  # 不登校: never here
        notes.append(
            _(
                "指標「%(label)s」は市区町村の教育委員会と学校だけに公開されます。長期欠席を表示しています。"
            )
            % {"label": METRICS[metric].label_ja}
        )
        metric = "long_term_absence"
    elif metric not in PREFECTURE_WIDE_METRICS:
        notes.append(
            _("指標「%(asked)s」はありません。長期欠席を表示しています。") % {"asked": metric[:40]}
        )
        metric = "long_term_absence"
    year, year_note = chosen_year(request, years, current - 1)
    if year_note:
        notes.append(year_note)
    spec = PREFECTURE_WIDE_METRICS[metric]
    breakdown = request.GET.get("breakdown", "")
    if breakdown not in BREAKDOWNS or (breakdown and breakdown not in spec.dimensions):
        notes.append(
            _("この指標は「%(asked)s」で内訳できません。内訳なしで表示しています。")
            % {"asked": breakdown[:40]}
        )
        breakdown = ""
    result, error = comparison(principal, code, metric, year, breakdown)
    english = (get_language() or "ja").startswith("en")
    return render(
        request,
        "dashboards/prefecture.html",
        {
            "prefecture_name": PREFECTURES.get(code, code),
            "prefecture_code": code,
            "metrics": [
                (name, s.label_en if english else s.label_ja)
                for name, s in PREFECTURE_WIDE_METRICS.items()
            ],
            "metric": metric,
            "spec": spec,
            "years": years,
            "year": year,
            "breakdowns": [
                ("", _("内訳なし")),
                *[
                    (d, {"grade": _("学校種・学年別"), "month": _("月別")}[d])
                    for d in spec.dimensions
                ],
            ],
            "breakdown": breakdown,
            "error": error,
            "notes": notes,
            "result": result,
            "table": side_by_side(result, english) if result else None,
            "has_months": "month" in spec.dimensions,
            "history": revision_history(principal, code, year),
        },
    )


@login_required
@never_cache  # the page that shows a token must not be kept by any cache
def analyst_token(request):
    """Issue a bearer token for the federation API (a gateway, or an analyst's own script).

    The token acts for this user in their prefecture only, until it expires or their password
    changes; it is shown once and never stored.
    """
    principal = policy.principal_for(request)
    code = _prefecture_code(principal)
    issued = error = None
    days = TOKEN_DAYS[0]
    if request.method == "POST":
        chosen = request.POST.get("days", "")
        if chosen in {str(d) for d in TOKEN_DAYS}:
            days = int(chosen)
            token = auth.do_issue_analyst_token(
                request.user, code, actor=principal.actor(), ttl_seconds=days * 86400
            )
            issued = {"token": token, "expires": timezone.now() + dt.timedelta(days=days)}
            log.info(
                "analyst token issued: user %s, prefecture %s, %d day(s)",
                request.user.pk,
                code,
                days,
            )
        else:
            error = _("有効期間は %(choices)s 日のどれかを選んでください。") % {
                "choices": "・".join(str(d) for d in TOKEN_DAYS)
            }
    return render(
        request,
        "dashboards/prefecture_token.html",
        {
            "prefecture_name": PREFECTURES.get(code, code),
            "prefecture_code": code,
            "token_days": TOKEN_DAYS,
            "days": days,
            "issued": issued,
            "error": error,
            "example_year": school_year_of(timezone.localdate()) - 1,
            "endpoint": request.build_absolute_uri(reverse("federation-graphql")),
        },
    )


# -- the prefecture's own audit trail ----------------------------------------------------------

AUDIT_TEMPLATE = "dashboards/prefecture_audit.html"


def _prefecture_events(request):
    principal = policy.principal_for(request)
    code = _prefecture_code(principal)
    events = AuditEvent.objects.filter(prefecture_code=code)
    return events, {"prefecture_name": PREFECTURES.get(code, code), "prefecture_code": code}


@login_required
def audit_trail(request):
    """What was done in this prefecture's name: its analysts' federation tokens, the
    municipalities that joined it, and the roles given in it."""
    events, context = _prefecture_events(request)
    return audit_trail_pages.trail_page(request, events, template=AUDIT_TEMPLATE, context=context)


@login_required
def audit_trail_csv(request):
    events, context = _prefecture_events(request)
    return audit_trail_pages.trail_csv(
        request,
        events,
        filename=f"audit-prefecture-{context['prefecture_code']}",
        page_template=AUDIT_TEMPLATE,
        context=context,
    )
