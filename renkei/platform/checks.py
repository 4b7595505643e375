"""Django system checks of the platform: ``renkei check --deploy`` (and ``migrate``,
``runserver``) report a missing or forgeable secret as an error, one line per variable."""

from __future__ import annotations

import os

from django.core.checks import Error, Tags, register

from renkei.platform import deploy_secrets


@register(Tags.security)
def secrets_check(app_configs=None, **kwargs) -> list[Error]:
    return [Error(line, id="renkei.E001") for line in deploy_secrets.problems(os.environ)]
