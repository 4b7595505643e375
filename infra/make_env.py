#!/usr/bin/env python3
"""Write infra/.env with fresh random secrets for the local compose stack (once; an existing
file is kept). Renkei refuses to start with a missing or published secret."""

import base64
import secrets
import sys
from pathlib import Path

ENV = Path(__file__).resolve().parent / ".env"

if ENV.exists():
    sys.exit(f"{ENV} exists; remove it to generate new secrets.")
ENV.write_text(
    f"DJANGO_SECRET_KEY={secrets.token_urlsafe(48)}\n"
    f"RENKEI_SERVICE_TOKEN_KEY={secrets.token_urlsafe(48)}\n"
    f"RENKEI_MASTER_KEY={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}\n"
)
ENV.chmod(0o600)
print(f"wrote {ENV}")
