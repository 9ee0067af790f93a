"""Searchset Bundles and their paging links.

Paging is offset-based: ``_count`` (page size) and ``_offset`` (matches skipped) are
carried in every link, so a link is a complete, stateless query — any worker can serve
any page and nothing is kept between requests. Links are absolute, built from the
request's own base URL: clients follow them verbatim, and fhirpy refuses a next link that
does not start with its configured base.

A provider that does not count its matches (``total`` None) still pages: the Bundle then
has no ``total`` (R4 bundle.html: total is optional) and no ``last`` link, and ``next``
appears when the provider says there is more.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .search import SearchRequest


def page_links(type_url: str, request: SearchRequest, total: int | None,
               more: bool = False) -> list[dict[str, str]]:
    """self, and — when there is a page size — first, previous, next and last (no last
    when the total is unknown)."""
    def url(**paging: int) -> str:
        return f"{type_url}?{urlencode(request.query_items(**paging), safe=':/|,$')}"

    links = [{"relation": "self", "url": url()}]
    count, offset = request.count, request.offset
    if count == 0:
        return links
    last = max(0, (total - 1) // count * count) if total is not None else None
    links.append({"relation": "first", "url": url(offset=0)})
    if offset > 0:
        back = offset - count if last is None else min(offset - count, last)
        links.append({"relation": "previous", "url": url(offset=max(0, back))})
    if (offset + count < total) if total is not None else more:
        links.append({"relation": "next", "url": url(offset=offset + count)})
    if last is not None:
        links.append({"relation": "last", "url": url(offset=last)})
    return links


def searchset(base: str, request: SearchRequest, total: int | None,
              resources: list[dict[str, Any]], more: bool = False, *,
              included: list[dict[str, Any]] = (), outcomes: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """Matches first, then the ``_include``d resources (R4 search.html#include: mode include,
    not counted in total), then OperationOutcomes about what could not be included."""
    type_url = f"{base}/{request.resource_type}"
    entries = [entry(base, r) for r in resources] + [entry(base, r, mode="include") for r in included]
    entries += [{"resource": o, "search": {"mode": "outcome"}} for o in outcomes]
    return searchset_bundle(total, entries, links=page_links(type_url, request, total, more))


def entry(base: str, resource: dict[str, Any], **search: Any) -> dict[str, Any]:
    """A searchset entry; ``search`` adds to ``{"mode": "match"}`` (a score, extensions, or
    another mode)."""
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource,
            "search": {"mode": "match", **search}}


def searchset_bundle(total: int | None, entries: list[dict[str, Any]],
                     links: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A searchset Bundle around ready-made entries (searches and operations such as $match)."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": datetime.now(UTC).isoformat(timespec="milliseconds")},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    if links:
        bundle["link"] = links
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
