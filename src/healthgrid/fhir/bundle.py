"""Searchset Bundles and their paging links.

Paging is offset-based: ``_count`` (page size) and ``_offset`` (matches skipped) are
carried in every link, so a link is a complete, stateless query — any worker can serve
any page and nothing is kept between requests. Links are absolute, built from the
request's own base URL: clients follow them verbatim, and fhirpy refuses a next link that
does not start with its configured base.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .search import SearchRequest


def page_links(type_url: str, request: SearchRequest, total: int) -> list[dict[str, str]]:
    """self, and — when there is a page size — first, previous, next and last."""
    def url(**paging: int) -> str:
        return f"{type_url}?{urlencode(request.query_items(**paging), safe=':/|,$')}"

    links = [{"relation": "self", "url": url()}]
    count, offset = request.count, request.offset
    if count == 0:
        return links
    last = max(0, (total - 1) // count * count)
    links.append({"relation": "first", "url": url(offset=0)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(offset=max(0, min(offset - count, last)))})
    if offset + count < total:
        links.append({"relation": "next", "url": url(offset=offset + count)})
    links.append({"relation": "last", "url": url(offset=last)})
    return links


def searchset(base: str, request: SearchRequest, total: int,
              resources: list[dict[str, Any]]) -> dict[str, Any]:
    type_url = f"{base}/{request.resource_type}"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": datetime.now(UTC).isoformat(timespec="milliseconds")},
        "type": "searchset",
        "total": total,
        "link": page_links(type_url, request, total),
    }
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match"}} for r in resources]
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
