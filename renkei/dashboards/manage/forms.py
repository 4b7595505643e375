"""Forms of the municipality administration pages.

Every form checks what the database would refuse (its CHECK and UNIQUE constraints) before
anything is written, and says what is wrong in Japanese next to the field concerned.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from pathlib import Path
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from pydantic import BaseModel, ValidationError

from renkei.accounts.models import SCHOOL_SCOPED_ROLES, Membership, Role
from renkei.accounts.tokens import MAX_LIFETIME, TokenError, normalize_networks, normalize_origin
from renkei.connectors.pipeline import stored_config_values
from renkei.connectors.sdk import japanese_reason
from renkei.edudata.metrics import PREFECTURE_WIDE_METRICS
from renkei.edudata.models import School, StudentIdentity

# -- connector settings -------------------------------------------------------------------------

_LIST_HELP = _l("1 行に 1 つずつ書いてください。")


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _kind(annotation: Any) -> tuple[str, bool, tuple[str, ...]]:
    """How a config field is edited: ("bool" | "int" | "float" | "choice" | "list" | "text"),
    whether it may be empty (None), and the choices of a Literal."""
    inner, optional = _unwrap_optional(annotation)
    origin = typing.get_origin(inner)
    if inner is bool:
        return "bool", optional, ()
    if inner is int:
        return "int", optional, ()
    if inner is float:
        return "float", optional, ()
    if origin is typing.Literal:
        return "choice", optional, tuple(str(a) for a in typing.get_args(inner))
    if origin in (list, tuple, set, frozenset):
        return "list", optional, ()
    return "text", optional, ()  # str, Path, dates and anything else: typed as text


def field_label(name: str, info) -> str:
    return info.title or info.description or name


def _initial(value: Any, kind: str) -> Any:
    if value is None:
        return "" if kind != "bool" else False
    if kind == "list":
        return "\n".join(str(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    return value


class ConnectorSettingForm(forms.Form):
    """Built from a connector's pydantic ``Config``: one input per field, secrets as password
    inputs that are never pre-filled (blank keeps the stored value)."""

    enabled = forms.BooleanField(label=_l("この設定を使う（有効）"), required=False)
    inbox_enabled = forms.BooleanField(
        label=_l("受信箱に置かれたファイルを取り込む"),
        required=False,
        help_text=_l(
            "校務システムの定期書き出しや SFTP・S3 の同期で受信箱に置かれたファイルを、"
            "数分ごとに自動で取り込みます（この設定が有効なときだけ）。"
        ),
    )

    def __init__(self, connector_cls, setting=None, *args, **kwargs):
        self.connector_cls = connector_cls
        self.setting = setting
        self.stored_secrets = setting.secret_values() if setting else {}
        stored = dict(setting.config) if setting else {}
        initial = {
            "enabled": setting.enabled if setting else True,
            "inbox_enabled": setting.inbox_enabled if setting else False,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.config_fields: list[str] = []
        self.kinds: dict[str, tuple[str, bool]] = {}
        secrets = connector_cls.secret_fields
        server_paths = connector_cls.Config.server_path_fields()
        for name, info in connector_cls.Config.model_fields.items():
            if name in server_paths or name in connector_cls.Config.per_run_fields:
                continue  # the operator's, in a config file; or the upload's (ConnectorConfig)
            kind, optional, choices = _kind(info.annotation)
            self.kinds[name] = (kind, optional)
            label = field_label(name, info)
            if label != name:
                label = f"{label}（{name}）"
            if name in secrets:
                help_text = (
                    _("設定済みです。変更するときだけ入力してください（空欄なら今の値のまま）。")
                    if self.stored_secrets.get(name)
                    else ""
                )
                field = forms.CharField(
                    label=label,
                    required=False,
                    strip=False,
                    help_text=help_text,
                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                )
            elif kind == "bool":
                field = forms.BooleanField(label=label, required=False)
            elif kind == "choice":
                options = [("", _l("（未指定）"))] if optional else []
                extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
                shown = extra.get("choice_labels") or {}  # a label per value, if the field has one
                field = forms.ChoiceField(
                    label=label,
                    required=False,
                    choices=options + [(c, shown.get(c, c)) for c in choices],
                )
            elif kind == "list":
                field = forms.CharField(
                    label=label,
                    required=False,
                    help_text=_LIST_HELP,
                    widget=forms.Textarea(attrs={"rows": 3}),
                )
            elif kind in ("int", "float"):
                attrs = {"step": "any"} if kind == "float" else {"step": "1"}
                field = forms.CharField(
                    label=label, required=False, widget=forms.NumberInput(attrs=attrs)
                )
            else:
                field = forms.CharField(label=label, required=False)
            if info.title and info.description and not field.help_text:
                field.help_text = info.description  # the title is the label: explain below it
            if name not in secrets:
                value = (
                    stored[name]
                    if name in stored
                    else (
                        None if info.is_required() else info.get_default(call_default_factory=True)
                    )
                )
                self.initial[name] = _initial(value, kind)
            self.fields[name] = field
            self.config_fields.append(name)

    def is_secret(self, name: str) -> bool:
        return name in self.connector_cls.secret_fields

    def _raw_values(self) -> dict[str, Any]:
        """The cleaned form as input to the pydantic model (secrets: new or stored)."""
        data: dict[str, Any] = {}
        for name in self.config_fields:
            kind, optional = self.kinds[name]
            value = self.cleaned_data.get(name)
            if self.is_secret(name):
                data[name] = value or self.stored_secrets.get(name, "")
                continue
            if kind == "bool":
                data[name] = bool(value)
                continue
            text = (value or "").strip() if isinstance(value, str) else value
            if kind == "list":
                items = [line.strip() for line in (text or "").splitlines() if line.strip()]
                if items or not optional:
                    data[name] = items
                else:
                    data[name] = None
            elif text in ("", None):
                if optional:
                    data[name] = None
                # otherwise left out: the model's default applies (or it says "required")
            else:
                data[name] = text
        return data

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.config = self.connector_cls.Config.model_validate(self._raw_values())
        except ValidationError as e:
            for error in e.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                reason = japanese_reason(error)
                if name in self.fields:
                    self.add_error(name, f"{name}: {reason}")
                else:
                    self.add_error(None, f"{name}: {reason}" if name else reason)
            return cleaned
        self._ask_for_secrets_when_the_destination_changes()
        return cleaned

    def _ask_for_secrets_when_the_destination_changes(self) -> None:
        """A kept (blank) secret goes with the stored destination only: when a field outside
        the connector's ``secret_safe_fields`` changes, the secrets must be typed again."""
        kept = [
            name
            for name in self.connector_cls.secret_fields
            if name in self.fields
            and not self.cleaned_data.get(name)
            and self.stored_secrets.get(name)
        ]
        if not kept or self.setting is None:
            return
        stored = self.setting.config
        dumped = self.config.model_dump(mode="json")
        changed = [
            name
            for name in self.config_fields
            if name not in self.connector_cls.secret_fields
            and name not in self.connector_cls.secret_safe_fields
            and name in stored
            and stored[name] != dumped.get(name)
        ]
        if changed:
            for name in kept:
                self.add_error(
                    name,
                    _(
                        "%(fields)s を変えたときは、%(name)s も入力し直してください"
                        "（保存済みの値は、前の接続先にだけ使います）。"
                    )
                    % {"fields": "・".join(changed), "name": name},
                )


def connector_config(connector_cls, setting) -> BaseModel:
    """The stored setting as the connector's validated Config (secrets decrypted)."""
    return connector_cls.Config.model_validate(stored_config_values(connector_cls, setting))


# -- opt-outs -----------------------------------------------------------------------------------

# No opt-out predates the platform; a typo like 0001-01-01 would not even fit a timestamp.
EARLIEST_REQUEST = dt.date(2000, 1, 1)


class OptOutForm(forms.Form):
    school = forms.ModelChoiceField(
        label=_l("学校"), queryset=School.objects.none(), empty_label=_l("（学校を選んでください）")
    )
    source_id = forms.CharField(
        label=_l("児童生徒の ID（校務システムでの ID）"),
        max_length=100,
        help_text=_l(
            "学校の校務システム（C4th、スズキ校務、OneRoster など）に登録されている ID です。"
            "氏名では探せません。"
        ),
    )
    requested_on = forms.DateField(
        label=_l("申出日（空欄なら今日）"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = School.objects.order_by("code")

    def clean_requested_on(self):
        day = self.cleaned_data.get("requested_on")
        if day and day > timezone.localdate():
            raise forms.ValidationError(_("申出日に未来の日付は指定できません。"))
        if day and day < EARLIEST_REQUEST:
            raise forms.ValidationError(
                _("申出日は %(day)s 以降の日付にしてください。")
                % {"day": EARLIEST_REQUEST.isoformat()}
            )
        return day

    def clean(self):
        cleaned = super().clean()
        school, source_id = cleaned.get("school"), (cleaned.get("source_id") or "").strip()
        if school is None or not source_id:
            return cleaned
        students = list(
            StudentIdentity.objects.filter(student__school=school, source_id=source_id)
            .values_list("student_id", flat=True)
            .distinct()
        )
        if not students:
            self.add_error(
                "source_id",
                _(
                    "%(school)s（%(code)s）に ID「%(id)s」の児童生徒は"
                    "見つかりません。学校と ID を確かめてください。"
                )
                % {"school": school.name, "code": school.code, "id": source_id},
            )
        elif len(students) > 1:
            self.add_error(
                "source_id",
                _(
                    "%(school)s で ID「%(id)s」に当たる児童生徒が複数います。"
                    "学校の校務システムの管理者に確認してください。"
                )
                % {"school": school.name, "id": source_id},
            )
        else:
            cleaned["student_id"] = students[0]
        return cleaned

    def requested_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("requested_on")
        if day is None:
            return None
        return timezone.make_aware(dt.datetime.combine(day, dt.time()))


# -- access log ---------------------------------------------------------------------------------


class DateRangeFilterForm(forms.Form):
    """The period of a log's filter (閲覧記録, 操作記録): dates in Japan time, both optional."""

    date_from = forms.DateField(
        label=_l("期間（から）"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_l("期間（まで）"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("「まで」は「から」以降の日付にしてください。"))
        return cleaned

    def filter(self, queryset):
        """The rows the filter asks for; none while it has an error (never all of them)."""
        if self.is_bound and not self.is_valid():
            return queryset.none()
        data = self.cleaned_data if self.is_bound else {}
        if data.get("date_from"):
            queryset = queryset.filter(at__date__gte=data["date_from"])
        if data.get("date_to"):
            queryset = queryset.filter(at__date__lte=data["date_to"])
        return self.narrow(queryset, data)

    def narrow(self, queryset, data: dict):
        """The subclass's own filters."""
        return queryset


class AccessLogFilterForm(DateRangeFilterForm):
    username = forms.CharField(label=_l("利用者（部分一致）"), required=False, max_length=150)
    pseudonym = forms.CharField(
        label=_l("児童生徒（仮名ID、完全一致）"), required=False, max_length=32
    )
    sensitive = forms.BooleanField(label=_l("要配慮情報の閲覧だけ"), required=False)
    field_order = ["username", "pseudonym", "date_from", "date_to", "sensitive"]

    def narrow(self, queryset, data: dict):
        if data.get("username"):
            queryset = queryset.filter(username__icontains=data["username"].strip())
        if data.get("pseudonym"):
            queryset = queryset.filter(student_pseudonym=data["pseudonym"].strip())
        if data.get("sensitive"):
            queryset = queryset.filter(sensitive=True)
        return queryset


# -- widget tokens ------------------------------------------------------------------------------


class WidgetTokenForm(forms.Form):
    name = forms.CharField(label=_l("名前（どこで使うか）"), max_length=100)
    metrics = forms.MultipleChoiceField(
        label=_l("表示できる指標"), widget=forms.CheckboxSelectMultiple, choices=[]
    )
    allowed_origins = forms.CharField(
        label=_l("埋め込むサイト（オリジン）"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_l("1 行に 1 つ、https://example.jp の形で書いてください（パスは書けません）。"),
    )
    expires_in_days = forms.IntegerField(
        label=_l("有効期間（日）"), initial=90, min_value=1, max_value=MAX_LIFETIME.days
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Not the MUNICIPALITY_ONLY metrics (不登校): a token may be embedded anywhere.
        self.fields["metrics"].choices = [
            (m.name, m.label_ja) for m in PREFECTURE_WIDE_METRICS.values()
        ]

    def clean_allowed_origins(self):
        lines = [
            line.strip()
            for line in self.cleaned_data["allowed_origins"].splitlines()
            if line.strip()
        ]
        origins, problems = [], []
        for line in lines:
            try:
                origins.append(normalize_origin(line))
            except TokenError as e:
                problems.append(str(e))
        if problems:
            raise forms.ValidationError(problems)
        if not origins:
            raise forms.ValidationError(_("埋め込むサイトを 1 つ以上書いてください。"))
        return origins

    def ordered_metrics(self) -> list[str]:
        """The chosen metrics in the registry's order (the snippet shows the first)."""
        chosen = set(self.cleaned_data["metrics"])
        return [name for name in PREFECTURE_WIDE_METRICS if name in chosen]


# -- members ------------------------------------------------------------------------------------

TENANT_ROLES = (
    Role.TENANT_ADMIN,
    Role.TEACHER,
    Role.SCHOOL_MANAGER,
    Role.SCHOOL_NURSE,
    Role.SCHOOL_COUNSELOR,
    Role.SCHOOL_SOCIAL_WORKER,
    Role.BOARD_ANALYST,
)


def check_schools_for_role(form: forms.Form, role: str | None, schools: list[str]) -> None:
    """The roles that work in schools name one or more; the others name none."""
    if role in SCHOOL_SCOPED_ROLES and not schools:
        form.add_error(
            "schools",
            _("「%(role)s」には所属校を 1 つ以上選んでください。") % {"role": Role(role).label},
        )
    elif role and role not in SCHOOL_SCOPED_ROLES and schools:
        form.add_error(
            "schools",
            _(
                "この役割には所属校を指定できません（教員・管理職・養護教諭・"
                "スクールカウンセラー・スクールソーシャルワーカーだけです）。"
            ),
        )


class MembershipForm(forms.Form):
    username = forms.CharField(
        label=_l("ユーザー名"),
        max_length=150,
        help_text=_l("既にアカウントのある人のユーザー名です。"),
    )
    role = forms.ChoiceField(label=_l("役割"), choices=[(r.value, r.label) for r in TENANT_ROLES])
    schools = forms.MultipleChoiceField(
        label=_l("所属校"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[],
        help_text=_l(
            "教員・管理職・養護教諭は所属校を、スクールカウンセラー・スクールソーシャルワーカーは"
            "担当する学校を 1 つ以上選んでください。自治体管理者・教育委員会では選べません。"
        ),
    )

    def __init__(self, municipality, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.municipality = municipality
        self.fields["schools"].choices = [
            (s.code, f"{s.name}（{s.code}）") for s in School.objects.order_by("code")
        ]

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(
                _("ユーザー「%(user)s」は登録されていません。先にアカウントを作ってください。")
                % {"user": username}
            )
        self.user = user
        return username

    def clean(self):
        cleaned = super().clean()
        role, schools = cleaned.get("role"), cleaned.get("schools") or []
        check_schools_for_role(self, role, schools)
        user = getattr(self, "user", None)
        if (
            user is not None
            and role
            and Membership.objects.filter(
                user=user, role=role, municipality=self.municipality
            ).exists()
        ):
            self.add_error(
                "role",
                _("「%(user)s」は既にこの自治体で「%(role)s」の役割を持っています。")
                % {"user": user.get_username(), "role": Role(role).label},
            )
        return cleaned


# -- upload -----------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files:
            if not self.required:
                return []
            raise forms.ValidationError(_("取り込むファイルを 1 つ以上選んでください。"))
        empty = [f.name for f in files if not f.size]
        if empty:
            raise forms.ValidationError(
                _("空のファイルは取り込めません: %(names)s") % {"names": "、".join(empty)}
            )
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class ImportUploadForm(forms.Form):
    connector = forms.ChoiceField(label=_l("コネクタ（書き出した校務システム）"))
    kind = forms.ChoiceField(
        label=_l("出力形式"),
        required=False,
        help_text=_l("選ぶと、ほかの形式のファイルは取り込まずに理由を示します。"),
    )
    files = MultipleFileField(
        label=_l("ファイル"),
        help_text=_l("CSV などの書き出しファイル、またはその zip。複数まとめて選べます。"),
        required=False,
    )
    # Files import_upload.js already sent (resumable, tus): their upload ids, comma-separated.
    uploads = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, connectors: dict[str, type], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connectors = connectors
        self.fields["connector"].choices = [
            (name, f"{cls.title or name}（{name}）") for name, cls in connectors.items()
        ]
        self.fields["kind"].choices = [("", _("見出しから判別する"))] + [
            (cls.title or name, [(f"{name}:{k}", label) for k, label in kinds.items()])
            for name, cls in connectors.items()
            if (kinds := cls.export_kinds())
        ]

    def clean_kind(self) -> str:
        """The kind alone (the choice is ``connector:kind``), checked against the connector."""
        connector, _sep, kind = self.cleaned_data["kind"].partition(":")
        if kind and connector != self.data.get("connector"):
            raise forms.ValidationError(_("この出力形式は、選んだコネクタのものではありません。"))
        return kind

    def clean_uploads(self) -> list[str]:
        ids = [i for i in self.cleaned_data["uploads"].split(",") if i.strip()]
        for upload_id in ids:
            try:
                uuid.UUID(upload_id.strip())
            except ValueError:
                raise forms.ValidationError(
                    _("送信済みファイルの指定が正しくありません。")
                ) from None
        return [i.strip() for i in ids]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("files") and not cleaned.get("uploads") and "files" not in self.errors:
            self.add_error("files", _("取り込むファイルを 1 つ以上選んでください。"))
        return cleaned


# -- ingest tokens ----------------------------------------------------------------------------


class IngestTokenForm(forms.Form):
    name = forms.CharField(label=_l("名前（事業者・用途）"), max_length=100)
    connectors = forms.MultipleChoiceField(
        label=_l("使えるコネクタ"), widget=forms.CheckboxSelectMultiple, choices=[]
    )
    allowed_ips = forms.CharField(
        label=_l("送信元 IP（任意）"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_l(
            "1 行に 1 つ、203.0.113.10 や 203.0.113.0/24 の形で。空なら送信元を限りません。"
        ),
    )
    expires_in_days = forms.IntegerField(
        label=_l("有効期間（日）"), initial=90, min_value=1, max_value=MAX_LIFETIME.days
    )

    def __init__(self, connectors: dict[str, type], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connectors"].choices = [
            (name, f"{cls.title or name}（{name}）") for name, cls in connectors.items()
        ]

    def clean_allowed_ips(self):
        try:
            return normalize_networks(self.cleaned_data["allowed_ips"].splitlines())
        except TokenError as e:
            raise forms.ValidationError(str(e)) from None
