"""Municipality administration: imports, connector settings, opt-outs, the access log, widget
tokens and members. Tenant admins only (``admin_view``); they see aggregates and
administrative records, never a pupil's records: pupils appear here only by pseudonym."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zipfile
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from renkei.accounts import policy
from renkei.accounts.actions import MembershipError, do_add_membership, do_remove_membership
from renkei.accounts.models import ApiToken, IngestToken, Membership, Role
from renkei.accounts.tokens import (
    TokenError,
    do_issue_ingest_token,
    do_issue_token,
    do_revoke_token,
)
from renkei.connectors import inbox, jobs, registry, resumable, uploads
from renkei.connectors.actions import do_save_connector_setting
from renkei.connectors.error_report import error_report_download
from renkei.dashboards import audit_trail as audit_trail_pages
from renkei.dashboards.access import tenant_principal
from renkei.dashboards.manage import forms
from renkei.dashboards.manage.rights import OptOutDateForm
from renkei.dashboards.views import school_years
from renkei.edudata.metrics import METRICS
from renkei.edudata.models import (
    AccessLog,
    ConnectorSetting,
    ImportRun,
    OptOut,
    RightsRequest,
    School,
    Student,
)
from renkei.edudata.privacy import OptOutError, do_record_opt_out, do_withdraw_opt_out
from renkei.platform.csv_download import BOM, csv_download, line_writer
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

log = logging.getLogger(__name__)

FORBIDDEN_MANAGE = gettext_lazy(
    "自治体の管理画面は、この自治体の自治体管理者だけが使えます。"
    "必要なときは自治体管理者に役割の追加を依頼してください。"
)
PAGE_SIZE = 50
QUARANTINE_SHOWN = 100


def admin_view(view):
    """Signed in, with a role here, and a tenant admin of this municipality; 403 otherwise."""

    @login_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        principal = tenant_principal(request)
        policy.require(
            policy.may_administer_tenant(principal, request.tenant), str(FORBIDDEN_MANAGE)
        )
        request.principal = principal
        return view(request, *args, **kwargs)

    return wrapped


def _page(request, queryset, param: str = "page"):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get(param))


def _query_without(request, *names: str) -> str:
    """The current query string minus ``names`` (for pagination links that keep filters)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def _live_widget_tokens(municipality):
    return ApiToken.objects.live().filter(municipality=municipality, kind=ApiToken.Kind.WIDGET)


# -- overview -----------------------------------------------------------------------------------


@admin_view
def index(request):
    context = {
        "last_run": ImportRun.objects.order_by("-started_at", "-pk").first(),
        "open_opt_outs": OptOut.objects.filter(withdrawn_at__isnull=True).count(),
        "open_requests": RightsRequest.objects.filter(status=RightsRequest.Status.RECEIVED).count(),
        "live_widget_tokens": _live_widget_tokens(request.tenant).count(),
        "members": Membership.objects.filter(municipality=request.tenant).count(),
        "connector_settings": ConnectorSetting.objects.filter(enabled=True).count(),
    }
    return render(request, "dashboards/manage/index.html", context)


# -- imports ------------------------------------------------------------------------------------


@admin_view
def imports(request):
    runs = ImportRun.objects.order_by("-started_at", "-pk")
    return render(request, "dashboards/manage/imports.html", {"page": _page(request, runs)})


@csrf_exempt  # checked in _upload, once the size limit is in place (CSRF reads the body)
@admin_view
def import_new(request):
    """Upload one or many export files for a connector; the import is queued and its page
    shows it live."""
    installed, _problems = registry.discover()
    if request.method == "POST":
        limit = settings.RENKEI_UPLOAD_MAX_BYTES
        request.upload_handlers.insert(0, uploads.SizeLimit(request, limit))
        return _upload(request, installed, limit)
    form = forms.ImportUploadForm(installed)
    return _upload_page(request, form)


@csrf_protect
def _upload(request, installed, limit: int):
    form = forms.ImportUploadForm(installed, request.POST, request.FILES)
    if request.upload_too_large is not None:
        form.is_valid()
        form.add_error(None, uploads.too_large(request.upload_too_large))
        return _upload_page(request, form, status=413)
    if not form.is_valid():
        return _upload_page(request, form, status=400)
    sent = [uploads.Upload(f.name, f) for f in form.cleaned_data["files"]]
    upload_ids = form.cleaned_data["uploads"]
    try:
        sent += resumable.take(request.tenant.code, upload_ids, request.user.pk)
        run = jobs.do_queue_import(
            installed[form.cleaned_data["connector"]],
            request.tenant,
            actor=request.principal.actor(request.tenant),
            uploads=uploads.unpacked(sent, limit),
            kind=form.cleaned_data["kind"],
        )
    except (uploads.UploadError, resumable.ResumableError, zipfile.BadZipFile) as e:
        message = str(e) if isinstance(e, ValueError) else _("zip ファイルが壊れています。")
        form.add_error("files", message)
        return _upload_page(request, form, status=400)
    finally:
        for upload in sent:
            upload.content.close()
    resumable.discard(request.tenant.code, upload_ids)  # stored with the run now
    messages.success(
        request, _("取り込み #%(n)s を受け付けました。進み具合はこの画面に出ます。") % {"n": run.pk}
    )
    return redirect("manage:import_detail", run_id=run.pk)


def _upload_page(request, form, status: int = 200):
    return render(
        request,
        "dashboards/manage/import_new.html",
        {"form": form, "limit": uploads.limit_label(settings.RENKEI_UPLOAD_MAX_BYTES)},
        status=status,
    )


def _status(run: ImportRun, municipality) -> dict:
    """What the import's page shows live (import_progress.js polls it)."""
    elapsed = (timezone.now() - run.began_at).total_seconds() if run.began_at else 0
    live, rows = run.live, run.rows_so_far
    rate = round(rows / elapsed) if live and elapsed > 0 and rows else None
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "phase": run.phase,
        "phase_label": run.get_phase_display(),
        "rows_read": rows,
        "rows_accepted": run.rows_accepted,
        "rows_rejected": run.rows_rejected,
        "rows_per_second": rate,
        "seconds_left": _seconds_left(run, rate),
        "ahead": jobs.queue_position(run, municipality)
        if run.status == ImportRun.Status.QUEUED
        else 0,
        "cancel_requested": run.cancel_requested,
        "live": live,
    }


def _seconds_left(run: ImportRun, rate: int | None) -> int | None:
    """While it loads: the rows still to read at the rate so far (the expected rows are the
    files' lines, so this is an estimate, and None once the count is past them)."""
    if run.phase != ImportRun.Phase.LOADING or not rate or not run.rows_expected:
        return None
    left = run.rows_expected - run.progress_rows
    return round(left / rate) if left > 0 else None


@admin_view
def import_status(request, run_id: int):
    run = get_object_or_404(ImportRun, pk=run_id)
    response = JsonResponse(_status(run, request.tenant))
    response["Cache-Control"] = "no-store"
    return response


@admin_view
@require_POST
def import_cancel(request, run_id: int):
    get_object_or_404(ImportRun, pk=run_id)
    try:
        run = jobs.do_cancel_import(
            run_id, request.tenant, actor=request.principal.actor(request.tenant)
        )
    except jobs.ImportStateError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _cancel_message(run))
    return redirect("manage:import_detail", run_id=run_id)


def _cancel_message(run: ImportRun) -> str:
    if run.status == ImportRun.Status.CANCELLED:
        return _("取り込み #%(n)s を取り消しました。何も反映されません。") % {"n": run.pk}
    return _("取り込み #%(n)s の取り消しを依頼しました。止まりしだい、何も反映されません。") % {
        "n": run.pk
    }


@admin_view
def import_detail(request, run_id: int):
    run = get_object_or_404(ImportRun, pk=run_id)
    quarantine = run.quarantine.order_by("file", "line", "id").only(
        "file", "line", "column", "reason", "kind"
    )[:QUARANTINE_SHOWN]
    return render(
        request,
        "dashboards/manage/import_detail.html",
        {
            "run": run,
            "quarantine": quarantine,
            "quarantine_shown": QUARANTINE_SHOWN,
            "config_items": sorted(run.config.items()) if isinstance(run.config, dict) else [],
            "live": _status(run, request.tenant),
            "phases": ImportRun.Phase.choices,
        },
    )


@admin_view
def import_errors_csv(request, run_id: int):
    """The report of ``renkei errors`` (UTF-8 with BOM) without the rejected values,
    streamed (see error_report_lines)."""
    return error_report_download(get_object_or_404(ImportRun, pk=run_id), request.tenant)


# -- connector settings -------------------------------------------------------------------------


def _connector_or_404(name: str):
    connectors, _problems = registry.discover()
    if name not in connectors:
        raise Http404(_("コネクタ「%(name)s」はインストールされていません。") % {"name": name})
    return connectors[name]


@admin_view
def connectors(request):
    installed, problems = registry.discover()
    settings = {s.connector: s for s in ConnectorSetting.objects.all()}
    rows = [
        {"name": name, "cls": cls, "setting": settings.get(name)} for name, cls in installed.items()
    ]
    orphans = [s for name, s in settings.items() if name not in installed]
    return render(
        request,
        "dashboards/manage/connectors.html",
        {"rows": rows, "problems": problems, "orphans": orphans},
    )


@admin_view
def connector_edit(request, name: str):
    connector_cls = _connector_or_404(name)
    setting = ConnectorSetting.objects.filter(connector=name).first()
    if request.method == "POST":
        form = forms.ConnectorSettingForm(connector_cls, setting, request.POST)
        if form.is_valid():
            do_save_connector_setting(
                connector_cls,
                request.tenant,
                actor=request.principal.actor(request.tenant),
                config=form.config,
                config_fields=form.config_fields,
                enabled=form.cleaned_data["enabled"],
                inbox_enabled=form.cleaned_data["inbox_enabled"],
            )
            messages.success(
                request,
                _("コネクタ「%(name)s」の設定を保存しました。")
                % {"name": connector_cls.title or name},
            )
            return redirect("manage:connector_edit", name=name)
    else:
        form = forms.ConnectorSettingForm(connector_cls, setting)
    return render(
        request,
        "dashboards/manage/connector_edit.html",
        {
            "connector": connector_cls,
            "name": name,
            "setting": setting,
            "form": form,
            "config_fields": [form[n] for n in form.config_fields],
            "secret_set": {n for n in connector_cls.secret_fields if form.stored_secrets.get(n)},
            "inbox": inbox.location(request.tenant, name),
        },
    )


@admin_view
@require_POST
def connector_check(request, name: str):
    """Run the connector's own ``check`` with the stored setting; the answer is a message."""
    connector_cls = _connector_or_404(name)
    setting = ConnectorSetting.objects.filter(connector=name).first()
    if setting is None:
        messages.error(request, _("先に設定を保存してください。"))
        return redirect("manage:connector_edit", name=name)
    try:
        result = connector_cls().check(forms.connector_config(connector_cls, setting))
    except Exception as e:  # a vendor connector may fail in any way: report, never crash
        log.warning("connector check %s failed: %s", name, type(e).__name__)
        messages.error(
            request,
            _("接続を確認できませんでした（%(error)s）。設定を見直してください。")
            % {"error": type(e).__name__},
        )
    else:
        (messages.success if result.ok else messages.error)(
            request, _("接続の確認: %(message)s") % {"message": result.message}
        )
    return redirect("manage:connector_edit", name=name)


# -- opt-outs -----------------------------------------------------------------------------------


@admin_view
def opt_outs(request):
    form = forms.OptOutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        student = Student.objects.select_related("school").get(pk=form.cleaned_data["student_id"])
        try:
            do_record_opt_out(
                request.principal, request.tenant, student, requested_at=form.requested_at()
            )
        except (OptOutError, policy.AccessDenied) as e:
            form.add_error(None, str(e))
        else:
            messages.success(
                request,
                _(
                    "分析除外の申出を記録しました（仮名ID %(pseudonym)s）。"
                    "この児童生徒は集計から除かれます。"
                )
                % {"pseudonym": student.pseudonym},
            )
            return redirect("manage:opt_outs")
    base = OptOut.objects.select_related("student__school")
    open_page = _page(
        request, base.filter(withdrawn_at__isnull=True).order_by("-requested_at", "-pk"), "open"
    )
    withdrawn_page = _page(
        request,
        base.filter(withdrawn_at__isnull=False).order_by("-withdrawn_at", "-pk"),
        "withdrawn",
    )
    return render(
        request,
        "dashboards/manage/opt_outs.html",
        {
            "form": form,
            "open_page": open_page,
            "withdrawn_page": withdrawn_page,
        },
    )


@admin_view
@require_POST
def opt_out_withdraw(request, opt_out_id: int):
    opt_out = get_object_or_404(OptOut.objects.select_related("student__school"), pk=opt_out_id)
    dated = OptOutDateForm(request.POST)  # the day the withdrawal was asked for (optional)
    if not dated.is_valid():
        messages.error(request, " ".join(dated.errors.get("requested_on", [])))
        return redirect("manage:opt_outs")
    try:
        do_withdraw_opt_out(
            request.principal,
            request.tenant,
            opt_out.student,
            dated.cleaned_data["requested_on"],
        )
    except (OptOutError, policy.AccessDenied) as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request,
            _(
                "分析除外の申出を取り下げました（仮名ID %(pseudonym)s）。"
                "この児童生徒は再び集計に含まれます。"
            )
            % {"pseudonym": opt_out.student.pseudonym},
        )
    return redirect("manage:opt_outs")


# -- access log ---------------------------------------------------------------------------------

ACCESS_LOG_HEADER = ["日時", "利用者", "児童生徒（仮名ID）", "閲覧内容", "経路", "要配慮情報"]


def _access_log(request):
    form = forms.AccessLogFilterForm(request.GET or None)
    rows = form.filter(AccessLog.objects.order_by("-at", "-pk"))
    return form, rows


@admin_view
def access_log(request):
    form, rows = _access_log(request)
    return _access_log_page(request, form, rows)


def _access_log_page(request, form, rows, status: int = 200):
    return render(
        request,
        "dashboards/manage/access_log.html",
        {
            "form": form,
            "page": _page(request, rows),
            "query": _query_without(request, "page"),
        },
        status=status,
    )


@admin_view
def access_log_csv(request):
    """The filtered rows as CSV (UTF-8 with BOM for Excel), streamed. A filter with an error
    gets the page with the error, not a file."""
    form, rows = _access_log(request)
    if form.is_bound and not form.is_valid():
        return _access_log_page(request, form, rows, status=400)
    tenant = request.tenant
    writer = line_writer()

    def lines():
        # In a transaction: iterator() then reads through a server-side cursor, in chunks
        # (renkei.tenants.postgresql_backend).
        with in_tenant(tenant), transaction.atomic():
            yield BOM + writer.writerow(ACCESS_LOG_HEADER)
            values = rows.values_list(
                "at", "username", "student_pseudonym", "what", "via", "sensitive"
            )
            for at, username, pseudonym, what, via, sensitive in values.iterator(chunk_size=5000):
                yield writer.writerow(
                    [
                        timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S"),
                        username,
                        pseudonym,
                        what,
                        via,
                        "はい" if sensitive else "",
                    ]
                )

    stamp = timezone.localdate().strftime("%Y%m%d")
    return csv_download(lines(), f"access-log-{tenant.code}-{stamp}.csv")


# -- audit trail --------------------------------------------------------------------------------

AUDIT_TEMPLATE = "dashboards/manage/audit_trail.html"


def _tenant_events(request):
    return AuditEvent.objects.filter(municipality_code=request.tenant.code)


@admin_view
def audit_trail(request):
    return audit_trail_pages.trail_page(
        request, _tenant_events(request), template=AUDIT_TEMPLATE, context={}
    )


@admin_view
def audit_trail_csv(request):
    return audit_trail_pages.trail_csv(
        request,
        _tenant_events(request),
        filename=f"audit-{request.tenant.code}",
        page_template=AUDIT_TEMPLATE,
        context={},
    )


# -- widget tokens ------------------------------------------------------------------------------


def _widget_tokens(municipality):
    return (
        ApiToken.objects.filter(municipality=municipality, kind=ApiToken.Kind.WIDGET)
        .select_related("user")
        .order_by("-created_at", "-pk")
    )


def widget_snippets(request, token: ApiToken, secret: str, metric: str) -> dict[str, str]:
    """The copy-paste code for a new widget token: the web component, and an iframe."""
    spec = METRICS[metric]
    year = school_years()[-1]
    # A trend by month where the metric has one: months rarely fall under k, grades often do.
    breakdown = "month" if "month" in spec.dimensions else ""
    script = request.build_absolute_uri(static("renkei/widgets.js"))
    endpoint = request.build_absolute_uri(reverse("tenant-graphql"))
    breakdown_attr = f' breakdown="{breakdown}" kind="line"' if breakdown else ""
    component = (
        f'<script src="{script}" defer></script>\n'
        f'<renkei-chart endpoint="{endpoint}" token="{secret}" metric="{metric}" '
        f'school-year="{year}"{breakdown_attr}></renkei-chart>'
    )
    params = {"metric": metric, "school-year": year}
    if breakdown:
        params["breakdown"] = breakdown
        params["kind"] = "line"
    frame = request.build_absolute_uri(reverse("widget_frame", args=[token.pk]))
    iframe = (
        f'<iframe src="{frame}?{urlencode(params)}#token={secret}" '
        f'title="{spec.label_ja}（{request.tenant.name}）" width="720" height="480" '
        'style="border:0"></iframe>'
    )
    return {"component": component, "iframe": iframe}


@admin_view
def widgets(request):
    form = forms.WidgetTokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        metrics = form.ordered_metrics()
        try:
            issued = do_issue_token(
                request.user,
                request.tenant,
                actor=request.principal.actor(request.tenant),
                name=data["name"],
                role=Role.BOARD_ANALYST,
                widget=True,
                metrics=metrics,
                allowed_origins=data["allowed_origins"],
                expires_in=dt.timedelta(days=data["expires_in_days"]),
            )
        except TokenError as e:
            form.add_error(None, str(e))
    page = _page(request, _widget_tokens(request.tenant))
    for token in page:
        token.metric_labels = [METRICS[m].label_ja if m in METRICS else m for m in token.metrics]
    context = {"form": form, "page": page, "now": timezone.now()}
    if issued is not None:
        # Shown on this response only: rendered, never redirected with the secret in a URL.
        context["issued"] = issued
        context["snippets"] = widget_snippets(
            request, issued.token, issued.secret, form.ordered_metrics()[0]
        )
        context["form"] = forms.WidgetTokenForm()
        messages.success(
            request,
            _("ウィジェット用トークン「%(name)s」を発行しました。") % {"name": issued.token.name},
        )
    response = render(request, "dashboards/manage/widgets.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin_view
@require_POST
def widget_revoke(request, token_id: int):
    token = get_object_or_404(
        ApiToken, pk=token_id, municipality=request.tenant, kind=ApiToken.Kind.WIDGET
    )
    do_revoke_token(token, actor=request.principal.actor(request.tenant))
    messages.success(
        request,
        _("トークン「%(name)s」（%(prefix)s…）を失効させました。")
        % {"name": token.name, "prefix": token.prefix},
    )
    return redirect("manage:widgets")


# -- ingest tokens (the push API) -------------------------------------------------------------


@admin_view
def ingest_tokens(request):
    installed, _problems = registry.discover()
    form = forms.IngestTokenForm(installed, request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = do_issue_ingest_token(
                request.tenant,
                actor=request.principal.actor(request.tenant),
                name=data["name"],
                connectors=data["connectors"],
                allowed_ips=data["allowed_ips"],
                expires_in=dt.timedelta(days=data["expires_in_days"]),
            )
        except TokenError as e:
            form.add_error(None, str(e))
        else:
            form = forms.IngestTokenForm(installed)
    tokens = IngestToken.objects.filter(municipality=request.tenant).order_by("-created_at", "-pk")
    response = render(
        request,
        "dashboards/manage/ingest_tokens.html",
        {
            "form": form,
            "page": _page(request, tokens),
            "now": timezone.now(),
            "issued": issued,
            "api_base": request.build_absolute_uri(f"/m/{request.tenant.code}/api/v1/"),
        },
    )
    response["Cache-Control"] = "no-store"  # the page that shows a secret
    return response


@admin_view
@require_POST
def ingest_token_revoke(request, token_id: int):
    token = get_object_or_404(IngestToken, pk=token_id, municipality=request.tenant)
    do_revoke_token(token, actor=request.principal.actor(request.tenant))
    messages.success(
        request,
        _("トークン「%(name)s」（%(prefix)s…）を失効させました。")
        % {"name": token.name, "prefix": token.prefix},
    )
    return redirect("manage:ingest_tokens")


# -- members ------------------------------------------------------------------------------------


@admin_view
def members(request):
    form = forms.MembershipForm(request.tenant, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        membership = do_add_membership(
            form.user,
            data["role"],
            actor=request.principal.actor(request.tenant),
            municipality=request.tenant,
            school_codes=data["schools"],
        )
        messages.success(
            request,
            _("「%(user)s」に役割「%(role)s」を追加しました。")
            % {"user": form.user.get_username(), "role": membership.get_role_display()},
        )
        return redirect("manage:members")
    names = dict(School.objects.values_list("code", "name"))
    rows = (
        Membership.objects.filter(municipality=request.tenant)
        .select_related("user")
        .order_by("user__username", "role")
    )
    page = _page(request, rows)
    for m in page:
        m.schools = [(code, names.get(code, "")) for code in m.school_codes]
    return render(request, "dashboards/manage/members.html", {"form": form, "page": page})


@admin_view
@require_POST
def member_remove(request, membership_id: int):
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, municipality=request.tenant
    )
    username, label = membership.user.get_username(), membership.get_role_display()
    try:
        do_remove_membership(membership, actor=request.principal.actor(request.tenant))
    except Membership.DoesNotExist:
        raise Http404 from None  # removed by another admin meanwhile
    except MembershipError as e:
        messages.error(request, str(e))
        return redirect("manage:members")
    messages.success(
        request,
        _("「%(user)s」の役割「%(role)s」を削除しました。") % {"user": username, "role": label},
    )
    return redirect("manage:members")
