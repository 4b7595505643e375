"""Exact counts from remote municipalities that trust their prefecture's aggregator.

A municipality that runs its own deployment normally answers the prefecture with its own
released table (``renkei.graphql.federation.fanout``), and is not part of the prefecture's
joint protection. When that deployment names the prefecture as a trusted aggregator
(``RENKEI_FEDERATION_TRUSTED_AGGREGATORS`` there) and the prefecture marks it ``"trusted"``
(``RENKEI_FEDERATION_REMOTES`` here), it sends instead the exact rows a local municipality's
schema gives a release - the same statements, run in its own database - over the signed
channel (a service token bound to each request body). The municipality is then protected
jointly with the rest of the prefecture like a local one.

The rows are held in this process for the computation only, as a local municipality's are:
never returned, logged or stored. Only the data version and *k* of the remote are kept, so
that a short outage of the remote serves the release of its last known version.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import requests
from django.conf import settings

from renkei.platform import service_tokens
from renkei.tenants.codes import CodeError, validate_municipality_code

log = logging.getLogger(__name__)

#: The request for a remote's data version and k (instead of a family of rows).
VERSION = "version"


class ExactError(Exception):
    """A trusted remote did not give its exact counts; the message says why (Japanese)."""


def remote_entries() -> list[dict[str, Any]]:
    """The valid entries of ``settings.RENKEI_FEDERATION_REMOTES`` (a JSON list of
    ``{"code", "url", "name"?, "trusted"?}`` objects, or an already parsed list), with their
    codes checked; a bad entry is logged and left out, the others stand. The one reading of
    the setting: the release engine, this module and the federation's fan-out all use it."""
    raw = settings.RENKEI_FEDERATION_REMOTES
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        log.error("RENKEI_FEDERATION_REMOTES is not JSON; no remote municipality is used")
        return []
    valid = []
    for entry in entries or ():
        try:
            code = validate_municipality_code(str(entry["code"]))
            valid.append({**entry, "code": code, "url": str(entry["url"])})
        except (KeyError, TypeError, CodeError) as e:
            log.error("RENKEI_FEDERATION_REMOTES: ignoring %r (%s)", entry, e)
    return valid


def trusted_remotes(prefecture_code: str) -> dict[str, str]:
    """Code -> URL of the prefecture's remote municipalities marked ``trusted``."""
    return {
        e["code"]: e["url"]
        for e in remote_entries()
        if e.get("trusted") is True and e["code"].startswith(prefecture_code)
    }


# code -> (data version, k, when asked): what each trusted remote reported last.
_SEEN: dict[str, tuple[int, int, float]] = {}
# code -> the data version whose rows it failed to send: left out until its data changes.
_BROKEN: dict[str, int] = {}
_SEEN_LOCK = threading.Lock()


def forget() -> None:
    """Forget every remote's version and failures (tests)."""
    with _SEEN_LOCK:
        _SEEN.clear()
        _BROKEN.clear()


def versions(
    prefecture_code: str, *, exclude: str | None = None
) -> list[tuple[str, int, int, str]]:
    """(code, data version, k, url) of each trusted remote of the prefecture.

    A version is asked again once it is older than ``RENKEI_FEDERATION_TRUSTED_VERSION_TTL``
    seconds, so that every question of the prefecture (a teacher's dashboard included) does
    not wait on another deployment. A remote that cannot be asked counts with the version
    it reported last, so its release is still served; one never heard from is left out (the
    federation reports it missing).
    """
    found = []
    for code, url in sorted(trusted_remotes(prefecture_code).items()):
        if code == exclude:
            continue
        with _SEEN_LOCK:
            seen = _SEEN.get(code)
        if (
            seen is None
            or time.monotonic() - seen[2] >= settings.RENKEI_FEDERATION_TRUSTED_VERSION_TTL
        ):
            try:
                data = _post(code, url, {"municipality": code, "exact": VERSION})
                seen = (int(data["data_version"]), int(data["k"]), time.monotonic())
                with _SEEN_LOCK:
                    _SEEN[code] = seen
            except (ExactError, KeyError, TypeError, ValueError) as e:
                log.warning(
                    "federation: trusted remote %s gave no version (%s); %s",
                    code,
                    e if isinstance(e, ExactError) else type(e).__name__,
                    "using the last one" if seen else "left out",
                )
                if seen is None:
                    continue
        with _SEEN_LOCK:
            broken = _BROKEN.get(code) == seen[0]
        if broken:
            log.warning(
                "federation: trusted remote %s left out (its rows of version %s failed)",
                code,
                seen[0],
            )
            continue
        found.append((code, seen[0], seen[1], url))
    return found


def rows(code: str, url: str, data_version: int, family: str, params: list[Any]) -> list[tuple]:
    """The remote's rows of one family (the statements of ``renkei.edudata.metrics``).

    On failure the remote is left out of :func:`versions` until it reports another data
    version, so that the question asked again is answered without it (metrics.compute)."""
    try:
        data = _post(code, url, {"municipality": code, "exact": family, "params": params})
        try:
            if int(data["data_version"]) != data_version:
                raise ExactError("読み取り中に遠隔自治体のデータが更新されました。")
            return [_row(row) for row in data["rows"]]
        except (KeyError, TypeError, ValueError):
            raise ExactError("応答の形式が不正です。") from None
    except ExactError as e:
        with _SEEN_LOCK:
            _BROKEN[code] = data_version
        log.warning("federation: trusted remote %s: %s rows failed (%s)", code, family, e)
        raise


def _row(row: Any) -> tuple:
    if not isinstance(row, list) or not all(type(v) in (str, int) for v in row):
        raise ValueError("a row is a list of strings and integers")
    return tuple(row)


def _post(code: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    token = service_tokens.issue_service_token(
        code, prefecture_code=code[:2], digest=service_tokens.request_digest(body)
    )
    try:
        response = requests.post(
            url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=settings.RENKEI_FEDERATION_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as e:
        raise ExactError(f"接続できませんでした（{type(e).__name__}）。") from None
    if response.status_code != 200:
        raise ExactError(f"HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise ExactError("応答の形式が不正です。") from None
    if not isinstance(data, dict):
        raise ExactError("応答の形式が不正です。")
    return data
