"""年度の締め (管理): the board closes a school year that has ended, so that its released
figures are final (renkei.edudata.history). Tenant admins only, as every 管理 page."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.dashboards.manage.views import admin_view
from renkei.edudata import history


@admin_view
def school_years(request):
    municipality = request.tenant
    if request.method == "POST":
        year = request.POST.get("school_year", "")
        if request.POST.get("confirm") != "yes":
            messages.error(
                request,
                _("締めると元に戻せません。確認の欄にチェックを入れてから締めてください。"),
            )
        elif not year.isdigit():
            messages.error(request, _("年度は西暦の数字で指定してください（例: 2025）。"))
        else:
            try:
                history.do_close_school_year(request.principal, municipality, int(year))
            except (history.ClosingError, policy.AccessDenied) as e:
                messages.error(request, str(e))
            else:
                messages.success(
                    request,
                    _("%(year)s年度を締めました。この年度の公開値は今後変わりません。")
                    % {"year": year},
                )
        return redirect("manage:school_years")
    closed = sorted(history.closed_years(municipality).values(), key=lambda c: -c.school_year)
    open_years = [
        {"year": y, "deadline": history.closing_deadline(y)}
        for y in reversed(history.years_to_close(municipality))
    ]
    return render(
        request,
        "dashboards/manage/school_years.html",
        {"closed": closed, "open_years": open_years},
    )
