"""Searchset Bundles: paging links (self, first, previous, next, last) and entries."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from healthgrid.fhir.bundle import page_links, searchset
from healthgrid.fhir.search import Clause, SearchRequest

BASE = "http://example.test/fhir"


def offsets(links: list[dict[str, str]]) -> dict[str, int]:
    return {link["relation"]: int(dict(parse_qsl(urlsplit(link["url"]).query))["_offset"]) for link in links}


@pytest.mark.parametrize(("total", "count", "offset", "expected"), [
    (0, 10, 0, {"self": 0, "first": 0, "last": 0}),
    (5, 10, 0, {"self": 0, "first": 0, "last": 0}),
    (10, 10, 0, {"self": 0, "first": 0, "last": 0}),
    (11, 10, 0, {"self": 0, "first": 0, "next": 10, "last": 10}),
    (25, 10, 10, {"self": 10, "first": 0, "previous": 0, "next": 20, "last": 20}),
    (25, 10, 20, {"self": 20, "first": 0, "previous": 10, "last": 20}),
    (25, 10, 5, {"self": 5, "first": 0, "previous": 0, "next": 15, "last": 20}),
    (25, 10, 100, {"self": 100, "first": 0, "previous": 20, "last": 20}),  # past the end
    (25, 0, 0, {"self": 0}),  # totals only: nothing to page
])
def test_page_links(total, count, offset, expected):
    request = SearchRequest("Organization", (), count=count, offset=offset)
    links = page_links(f"{BASE}/Organization", request, total)
    assert offsets(links) == expected
    assert all(link["url"].startswith(f"{BASE}/Organization?") for link in links)


def test_links_carry_every_search_parameter_and_survive_a_round_trip():
    clauses = (Clause("name", "exact", ("第一人民医院",), "第一人民医院"),
               Clause("identifier", None, (), r"sys|a\,b,sys|c"))
    request = SearchRequest("Organization", clauses, count=2, offset=2)
    links = {link["relation"]: link["url"] for link in page_links(f"{BASE}/Organization", request, 9)}
    query = parse_qsl(urlsplit(links["next"]).query)
    assert query == [("name:exact", "第一人民医院"), ("identifier", r"sys|a\,b,sys|c"),
                     ("_count", "2"), ("_offset", "4")]
    assert links["next"].isascii()  # Chinese is percent-encoded


def test_searchset_entries_have_full_urls_and_match_mode():
    resources = [{"resourceType": "Organization", "id": "1"}, {"resourceType": "Organization", "id": "2"}]
    bundle = searchset(BASE, SearchRequest("Organization", count=2), 7, resources)
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 7
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"{BASE}/Organization/1", f"{BASE}/Organization/2"]
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"}
    assert [e["resource"] for e in bundle["entry"]] == resources


def test_empty_searchset_has_no_entry_array():
    bundle = searchset(BASE, SearchRequest("Organization", count=0), 42, [])
    assert "entry" not in bundle
    assert bundle["total"] == 42
    assert [link["relation"] for link in bundle["link"]] == ["self"]
