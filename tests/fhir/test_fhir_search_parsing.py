"""Pure search-parameter parsing: values, modifiers, OR / AND, paging, and the coded
errors for everything the parser refuses."""

from __future__ import annotations

import pytest

from healthgrid.fhir import ANY, NoMatch, ParamType, Reference, SearchParamDef, Token, any_of
from healthgrid.fhir.outcome import FhirError
from healthgrid.fhir.search import ID_PARAM, SearchRequest, parse_search, split_escaped, unescape

PARAMS = (
    ID_PARAM,
    SearchParamDef("name", ParamType.STRING, "name", modifiers=("exact", "contains"),
                   multiple_or=False, repeatable=False),
    SearchParamDef("alias", ParamType.STRING, "alias, OR and AND allowed", modifiers=("contains",)),
    SearchParamDef("identifier", ParamType.TOKEN, "identifier"),
    SearchParamDef("active", ParamType.TOKEN, "boolean", codes=("true", "false")),
    SearchParamDef("partof", ParamType.REFERENCE, "parent", targets=("Organization",)),
    SearchParamDef("subject", ParamType.REFERENCE, "two targets", targets=("Patient", "Group")),
)


def parse(query: list[tuple[str, str]], *, default_count: int = 20, max_count: int = 100) -> SearchRequest:
    return parse_search("Organization", query, PARAMS, default_count=default_count, max_count=max_count)


def values(query: list[tuple[str, str]]) -> list[tuple[str, str | None, tuple]]:
    return [(c.name, c.modifier, c.values) for c in parse(query).clauses]


@pytest.mark.parametrize(("query", "expected"), [
    ([("name", "人民医院")], [("name", None, ("人民医院",))]),
    ([("name:exact", "广州市第一人民医院")], [("name", "exact", ("广州市第一人民医院",))]),
    ([("name:contains", "医院")], [("name", "contains", ("医院",))]),
    ([("name", r"a\,b")], [("name", None, ("a,b",))]),
    ([("alias", "a,b")], [("alias", None, ("a", "b"))]),
    ([("alias", "a"), ("alias", "b")], [("alias", None, ("a",)), ("alias", None, ("b",))]),
    ([("identifier", "GZ001")], [("identifier", None, (Token(None, "GZ001"),))]),
    ([("identifier", "http://x|GZ001")], [("identifier", None, (Token("http://x", "GZ001"),))]),
    ([("identifier", "|GZ001")], [("identifier", None, (Token("", "GZ001"),))]),
    ([("identifier", "http://x|")], [("identifier", None, (Token("http://x", None),))]),
    ([("identifier", r"http://x|a\|b")], [("identifier", None, (Token("http://x", "a|b"),))]),
    ([("identifier", "A,http://x|B")], [("identifier", None, (Token(None, "A"), Token("http://x", "B")))]),
    ([("active", "true")], [("active", None, (Token(None, "true"),))]),
    ([("partof", "Organization/12")], [("partof", None, (Reference("Organization", "12"),))]),
    ([("partof", "12")], [("partof", None, (Reference("Organization", "12"),))]),
    ([("partof:Organization", "12")], [("partof", "Organization", (Reference("Organization", "12"),))]),
    ([("subject", "7")], [("subject", None, (Reference(None, "7"),))]),
    ([("subject", "Group/7")], [("subject", None, (Reference("Group", "7"),))]),
    ([("_id", "div-440106,site-3")], [("_id", None, ("div-440106", "site-3"))]),
])
def test_values_are_parsed_into_typed_clauses(query, expected):
    assert values(query) == expected


@pytest.mark.parametrize(("query", "code", "names"), [
    ([("colour", "red")], "FHIR-002", "colour"),
    ([("_sort", "name")], "FHIR-002", "_sort"),
    ([("_include", "Organization:partof")], "FHIR-002", "_include"),
    ([("name:missing", "true")], "FHIR-004", ":missing"),
    ([("identifier:text", "x")], "FHIR-004", ":text"),
    ([("partof:Patient", "1")], "FHIR-004", ":Patient"),
    ([("name", "")], "FHIR-003", "empty value"),
    ([("alias", "a,")], "FHIR-003", "empty alternative"),
    ([("name", "a,b")], "FHIR-003", "comma-separated"),
    ([("name", "a"), ("name", "b")], "FHIR-003", "only once"),
    ([("identifier", "a|b|c")], "FHIR-003", "more than one '|'"),
    ([("identifier", "|")], "FHIR-003", "neither a system nor a code"),
    ([("active", "yes")], "FHIR-003", "'yes' is not one of true, false"),
    ([("partof", "Patient/1")], "FHIR-003", "expected a reference to Organization"),
    ([("partof:Organization", "Patient/1")], "FHIR-003", "expected a reference to Organization"),
    ([("partof", "Organization/1/_history/2")], "FHIR-003", "Type/id"),
    ([("partof", "http://elsewhere/fhir/Organization/1")], "FHIR-003", "absolute references"),
    ([("partof", "Organization/a b")], "FHIR-003", "not a valid resource id"),
    ([("_id", "x" * 65)], "FHIR-003", "not a valid resource id"),
    ([("_id", "a_b")], "FHIR-003", "not a valid resource id"),
    ([("_count", "-1")], "FHIR-003", "_count"),
    ([("_count", "abc")], "FHIR-003", "_count"),
    ([("_count", "1.5")], "FHIR-003", "_count"),
    ([("_count", "")], "FHIR-003", "_count"),
    ([("_count", "5"), ("_count", "6")], "FHIR-003", "more than once"),
    ([("_offset", "-5")], "FHIR-003", "_offset"),
    ([("_offset", "99999999999")], "FHIR-003", "at most"),
    ([("_summary", "true")], "FHIR-003", "_summary"),
])
def test_refused_parameters_name_the_parameter_with_a_stable_code(query, code, names):
    with pytest.raises(FhirError) as caught:
        parse(query)
    assert caught.value.code == code
    assert caught.value.status == 400
    assert names in caught.value.message


@pytest.mark.parametrize(("query", "count", "offset"), [
    ([], 20, 0),
    ([("_count", "5")], 5, 0),
    ([("_count", "0")], 0, 0),
    ([("_count", "007")], 7, 0),
    ([("_count", "5000")], 100, 0),  # lowered to max_count
    ([("_count", "9" * 5000)], 100, 0),  # no int() of a 5,000-digit number
    ([("_offset", "40"), ("_count", "10")], 10, 40),
    ([("_summary", "count")], 0, 0),
    ([("_summary", "false"), ("_count", "3")], 3, 0),
    ([("_count", "0"), ("_totalMethod", "count")], 0, 0),
    ([("_format", "json"), ("_pretty", "true"), ("_total", "accurate")], 20, 0),
])
def test_paging_parameters(query, count, offset):
    request = parse(query)
    assert (request.count, request.offset) == (count, offset)
    assert request.clauses == ()


def test_unknown_parameter_message_lists_what_is_supported():
    with pytest.raises(FhirError) as caught:
        parse([("colour", "red")])
    supported = "supported: _id, active, alias, identifier, name, partof, subject, _count, _offset"
    assert supported in caught.value.message
    assert caught.value.fhir_code == "not-supported"


def test_query_items_keep_raw_values_and_effective_paging():
    request = parse([("name:exact", r"a\,b"), ("identifier", "x|1,x|2"), ("_count", "500"),
                     ("_format", "json")])
    assert request.query_items() == [("name:exact", r"a\,b"), ("identifier", "x|1,x|2"),
                                     ("_count", "100"), ("_offset", "0")]
    assert request.query_items(offset=100)[-1] == ("_offset", "100")


@pytest.mark.parametrize(("text", "sep", "parts"), [
    ("a,b,c", ",", ["a", "b", "c"]),
    (r"a\,b,c", ",", [r"a\,b", "c"]),
    (r"a\\,b", ",", [r"a\\", "b"]),
    ("sys|code", "|", ["sys", "code"]),
    (r"sys\|x|code", "|", [r"sys\|x", "code"]),
    ("plain", ",", ["plain"]),
    ("trailing\\", ",", ["trailing\\"]),
])
def test_split_escaped(text, sep, parts):
    assert split_escaped(text, sep) == parts


@pytest.mark.parametrize(("text", "plain"), [
    (r"a\,b", "a,b"), (r"a\|b", "a|b"), (r"a\$b", "a$b"), (r"a\\b", "a\\b"), (r"a\nb", r"a\nb"),
])
def test_unescape(text, plain):
    assert unescape(text) == plain


def to_int(token: Token):
    if token.code is None:
        return ANY
    return int(token.code) if token.code.isdigit() else None


@pytest.mark.parametrize(("query", "expected"), [
    ([], None),
    ([("identifier", "1,2,3")], {1, 2, 3}),
    ([("identifier", "1,2,3"), ("identifier", "2,3,4")], {2, 3}),
    ([("identifier", "1,x")], {1}),
    ([("identifier", "http://x|"), ("identifier", "5")], {5}),
])
def test_any_of_intersects_occurrences(query, expected):
    assert any_of(parse(query), "identifier", to_int) == expected


@pytest.mark.parametrize("query", [
    [("identifier", "1"), ("identifier", "2")],
    [("identifier", "x,y")],
])
def test_any_of_raises_no_match_when_nothing_can_match(query):
    with pytest.raises(NoMatch):
        any_of(parse(query), "identifier", to_int)


def test_read_is_a_search_on_id():
    request = SearchRequest.for_id("Organization", "12")
    assert [(c.name, c.values) for c in request.clauses] == [("_id", ("12",))]
    assert request.count == 1
