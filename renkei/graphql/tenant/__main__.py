"""``python -m renkei.graphql.tenant``: rewrite the committed schema snapshot (schema.graphql)
after an intended API change."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
django.setup()

from renkei.graphql.tenant.schema import write_snapshot  # noqa: E402 - needs django.setup()

print(f"wrote {write_snapshot()}")
