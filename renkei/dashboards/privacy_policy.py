"""The municipality's public 取扱い方針: what it holds about pupils and why, who sees what, how
long it is kept, and how a guardian opts out or makes a request.

Generated on every request from the tenant's real settings (the connectors it uses, the
fields they bring and their sensitivity, the roles, retention, k, alert thresholds), so the
page cannot say something the platform does not do. No login: guardians read it. It names
no pupil and no member of staff.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.shortcuts import render
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.connectors import registry, streams
from renkei.edudata import rights
from renkei.edudata.models import AccessLog, ConnectorSetting, ImportRun


@dataclass(frozen=True)
class Source:
    title: str
    enabled: bool  # False: imported before, switched off since (the data is still held)


@dataclass(frozen=True)
class HeldField:
    label: str
    sensitive: bool


@dataclass(frozen=True)
class HeldItem:
    label: str
    sources: tuple[str, ...]
    fields: tuple[HeldField, ...]

    @property
    def sensitive(self) -> bool:
        return any(f.sensitive for f in self.fields)


def sources_in_use(installed: dict[str, type]) -> dict[str, Source]:
    """The connectors whose data this municipality holds: enabled in 管理, or imported from
    at least once (switching a connector off does not delete what it brought)."""
    settings = dict(ConnectorSetting.objects.values_list("connector", "enabled"))
    imported = set(
        ImportRun.objects.filter(status=ImportRun.Status.SUCCEEDED)
        .values_list("connector", flat=True)
        .distinct()
    )
    used = {name for name, enabled in settings.items() if enabled} | imported
    return {
        name: Source(installed[name].title or name, settings.get(name, True))
        for name in sorted(used)
        if name in installed
    }


def pupil_models() -> list[type[models.Model]]:
    """Student and every model that holds rows about a pupil: the list 開示 works from
    (renkei.edudata.rights), so a new kind of record cannot be left off the page. Rollups
    are derived, not held."""
    return [h.model for h in rights.holdings() if not h.derived]


def held_items(installed: dict[str, type], sources: dict[str, Source]) -> list[HeldItem]:
    """What is held about pupils, model by model: from which of the municipality's systems,
    or recorded in Renkei itself. Kinds only a connector it does not use brings are left out."""
    brought_by: dict[type[models.Model], list[str]] = {}
    for name, connector in installed.items():
        for stream in connector().discover():
            for model in streams.models_filled_by(stream.name):
                brought_by.setdefault(model, [])
                if name in sources:
                    brought_by[model].append(sources[name].title)
    items = []
    for model in pupil_models():
        if model in brought_by:
            if not brought_by[model]:
                continue
            origin = tuple(brought_by[model])
        else:
            origin = (_("Renkei 上で教職員が記録"),)
        items.append(_item(model, origin))
    items.append(_item(AccessLog, (_("Renkei が自動で記録"),)))
    return items


def _item(model: type[models.Model], sources: tuple[str, ...]) -> HeldItem:
    sensitive = policy.sensitive_fields(model)
    fields = tuple(
        HeldField(str(f.verbose_name), f.name in sensitive)
        for f in model._meta.concrete_fields
        if not f.primary_key and not f.is_relation
    )
    return HeldItem(str(model._meta.verbose_name), sources, fields)


@dataclass(frozen=True)
class RoleReach:
    label: str
    summary: str
    records: tuple[str, ...]  # the kinds of a pupil's records the role reads (the rule table)
    pupils: str  # which pupils


def _role(role: Role) -> RoleReach:
    reads = policy.READS.get(role)
    if reads is None:
        return RoleReach(role.label, str(policy.ROLE_REACH[role]), (), "")
    records = tuple(
        str(label) for kind, label in policy.RECORDS_LABELS.items() if kind in reads.records
    )
    return RoleReach(
        role.label, str(policy.ROLE_REACH[role]), records, str(policy.REACH_LABELS[reads.reach])
    )


def privacy_policy(request):
    municipality = request.tenant
    installed, _problems = registry.discover()
    sources = sources_in_use(installed)
    return render(
        request,
        "dashboards/privacy_policy.html",
        {
            "municipality": municipality,
            "sources": sources.values(),
            "items": held_items(installed, sources),
            "roles": [_role(role) for role in Role],
        },
    )
