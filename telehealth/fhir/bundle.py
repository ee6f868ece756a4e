"""Bundles assembled from stored JSON text: searchsets, history and transaction responses.

fhir.resources serialises a 50-entry Bundle at ~29 per second per core, so bundles are built
by joining the stored text of each resource into a small JSON frame instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from telehealth.fhir.store import StoredVersion, instant
from telehealth.timeutil import utcnow


def _frame(bundle_type: str, total: int | None, links: Sequence[tuple[str, str]]) -> str:
    head: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    head["timestamp"] = instant(utcnow())
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": relation, "url": url} for relation, url in links]
    return json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]


def searchset(
    base: str,
    matches: Iterable[StoredVersion],
    included: Iterable[StoredVersion],
    total: int | None,
    links: Sequence[tuple[str, str]],
) -> str:
    entries = [
        f'{{"fullUrl":"{base}/{s.resource_type}/{s.resource_id}","resource":{s.text},'
        f'"search":{{"mode":"match"}}}}'
        for s in matches
    ]
    entries.extend(
        f'{{"fullUrl":"{base}/{s.resource_type}/{s.resource_id}","resource":{s.text},'
        f'"search":{{"mode":"include"}}}}'
        for s in included
    )
    return _frame("searchset", total, links) + ',"entry":[' + ",".join(entries) + "]}"


def history(base: str, versions: Iterable[StoredVersion], links: Sequence[tuple[str, str]]) -> str:
    entries = []
    for s in versions:
        url = f"{s.resource_type}/{s.resource_id}"
        method = "DELETE" if s.deleted else "POST" if s.version_id == 1 else "PUT"
        request = json.dumps(
            {"method": method, "url": url if method != "POST" else s.resource_type}
        )
        response = json.dumps(
            {
                "status": "410" if s.deleted else "200",
                "etag": s.etag,
                "lastModified": instant(s.last_updated),
            }
        )
        resource = "" if s.deleted else f'"resource":{s.text},'
        entries.append(
            f'{{"fullUrl":"{base}/{url}",{resource}"request":{request},"response":{response}}}'
        )
    return _frame("history", None, links) + ',"entry":[' + ",".join(entries) + "]}"


def response_bundle(bundle_type: str, entries: Sequence[dict[str, Any]]) -> str:
    """A batch-response or transaction-response; entries carry stored text under ``_text``."""
    parts = []
    for entry in entries:
        text = entry.pop("_text", None)
        body = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        if text is not None:
            body = f'{body[:-1]},"resource":{text}}}'
        parts.append(body)
    return _frame(bundle_type, None, []) + ',"entry":[' + ",".join(parts) + "]}"
