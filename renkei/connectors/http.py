"""HTTP for connectors that fetch their data themselves (Microsoft Graph, an LRS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests


class Session(requests.Session):
    """A session whose ``ca_bundle`` and timeout always apply. Plain requests lets the
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment override ``Session.verify``
    (psf/requests#3829), which would silently ignore a configured CA."""

    def __init__(self, timeout: float, ca_bundle: Path | None = None) -> None:
        super().__init__()
        self.timeout = timeout
        self.ca_bundle = str(ca_bundle) if ca_bundle else None

    def request(
        self,
        method: str | bytes,
        url: str | bytes,  # type: ignore[override]
        *args: Any,
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return super().request(method, url, *args, **kwargs)


def origin(url: str) -> str:
    """scheme://host[:port] of ``url``, lower case: what may receive our credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
