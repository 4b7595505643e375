"""The audit trail as pages: 管理 › 操作記録 for a municipality's admins, and the prefecture's
own events for its analysts. One filter form, one table, one CSV for both."""

from __future__ import annotations

import json

from django import forms
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from renkei.dashboards.manage.forms import DateRangeFilterForm
from renkei.platform.audit import ACTIONS, VIA_LABELS
from renkei.platform.csv_download import BOM, csv_download, line_writer
from renkei.platform.models import AuditEvent

PAGE_SIZE = 50
CSV_HEADER = [
    _l("日時"),
    _l("実行者"),
    _l("役割"),
    _l("経路"),
    _l("操作"),
    _l("対象"),
    _l("変更内容"),
]


class AuditFilterForm(DateRangeFilterForm):
    action = forms.ChoiceField(label=_l("操作"), required=False)
    username = forms.CharField(label=_l("実行者（部分一致）"), required=False, max_length=150)
    field_order = ["action", "username", "date_from", "date_to"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("すべて")), *ACTIONS.items()]

    def narrow(self, queryset, data: dict):
        if data.get("action"):
            queryset = queryset.filter(action=data["action"])
        if data.get("username"):
            queryset = queryset.filter(username__icontains=data["username"].strip())
        return queryset


def change_lines(changes: dict) -> list[str]:
    """An event's changes as short lines: ``name: before → after`` or ``name: value``."""
    lines = []
    for name, value in changes.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            lines.append(f"{name}: {_plain(value['before'])} → {_plain(value['after'])}")
        else:
            lines.append(f"{name}: {_plain(value)}")
    return lines


def _plain(value) -> str:
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _labelled(event: AuditEvent) -> AuditEvent:
    event.action_label = ACTIONS.get(event.action, event.action)
    event.via_label = VIA_LABELS.get(event.via, event.via)
    event.change_lines = change_lines(event.changes)
    return event


def trail_page(request, events, *, template: str, context: dict, status: int = 200):
    """The filtered events, newest first, a page at a time."""
    form = AuditFilterForm(request.GET or None)
    rows = form.filter(events.order_by("-at", "-pk"))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page:
        _labelled(event)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        template,
        {**context, "form": form, "page": page, "query": params.urlencode()},
        status=status,
    )


def trail_csv(request, events, *, filename: str, page_template: str, context: dict):
    """The filtered events as CSV (UTF-8 with BOM for Excel), streamed. A filter with an error
    gets the page with the error, not a file."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return trail_page(request, events, template=page_template, context=context, status=400)
    rows = form.filter(events.order_by("-at", "-pk"))
    writer = line_writer()

    def lines():
        yield BOM + writer.writerow([str(h) for h in CSV_HEADER])
        with transaction.atomic():  # iterator() then reads in chunks (a server-side cursor)
            for event in rows.iterator(chunk_size=2000):
                _labelled(event)
                yield writer.writerow(
                    [
                        timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S"),
                        event.username,
                        event.role,
                        event.via_label,
                        event.action_label,
                        event.target,
                        " / ".join(event.change_lines),
                    ]
                )

    stamp = timezone.localdate().strftime("%Y%m%d")
    return csv_download(lines(), f"{filename}-{stamp}.csv")
