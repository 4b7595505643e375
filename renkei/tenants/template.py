"""The migrated template schema that new tenants are cloned from (TENANT_BASE_SCHEMA)."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists


def migrate_all(verbosity: int = 1) -> None:
    """Bring public, the template and every tenant up to date (run on every deploy)."""
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    ensure_template(verbosity=verbosity, migrate=True)
    call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)


def ensure_template(*, verbosity: int = 0, migrate: bool = False) -> None:
    """Create the template schema if missing; migrate it when asked (or when just created)."""
    name = settings.TENANT_BASE_SCHEMA
    created = False
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')  # a constant from settings, not input
        created = True
    if created or migrate:
        call_command("migrate_schemas", tenant=True, schema_name=name, interactive=False,
                     verbosity=verbosity)
    connection.set_schema_to_public()
