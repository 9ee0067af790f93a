"""The feed rows' rules, table-driven, and the CSV format (pure: no database)."""

from __future__ import annotations

from datetime import date

import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance import feed_domain as fd

TODAY = date(2025, 3, 11)
GOOD = {"fever": {"source": "H001", "division_code": "930102", "date": "2025-03-10", "metric": "ILI",
                  "count": 12, "total": 240},
        "pharmacy": {"source": "P-17", "division_code": "930102001000", "date": "2025-03-10",
                     "metric": "antipyretic", "count": "35"},
        "school": {"source": "S930102001/3-2", "division_code": "930102001000", "date": "2025-03-10",
                   "metric": "fever", "count": 4, "total": 45},
        "lab": {"source": "LAB1", "division_code": "930102", "date": "2025-03-10", "metric": "influenza_a",
                "count": 9, "total": 60}}


@pytest.mark.parametrize("feed", sorted(GOOD))
def test_a_good_row_of_each_feed_passes(feed):
    row, errors = fd.check_row(fd.FEEDS[feed], GOOD[feed], row=1, today=TODAY)
    assert errors == []
    assert row.county_code == "930102" and row.day == date(2025, 3, 10) and row.count >= 0


CASES = [
    # (feed, changes, code, field)
    ("fever", {"metric": "antipyretic"}, "SURV-507", "metric"),  # a pharmacy metric on the fever feed
    ("lab", {"metric": "ILI"}, "SURV-507", "metric"),
    ("fever", {"date": "2025-03-12"}, "SURV-506", "date"),  # tomorrow
    ("fever", {"date": "2025-02-30"}, "SURV-505", "date"),
    ("fever", {"date": "10/03/2025"}, "SURV-505", "date"),
    ("fever", {"date": "1999-12-31"}, "SURV-505", "date"),
    ("fever", {"count": -1}, "SURV-508", "count"),
    ("fever", {"count": "12.5"}, "SURV-508", "count"),
    ("fever", {"count": "twelve"}, "SURV-508", "count"),
    ("fever", {"count": True}, "SURV-508", "count"),
    ("fever", {"total": None}, "SURV-509", "total"),  # required for fever clinics
    ("lab", {"total": ""}, "SURV-509", "total"),  # required for laboratories
    ("fever", {"total": -3}, "SURV-509", "total"),
    ("fever", {"total": 5}, "SURV-510", "total"),  # fewer visits than syndrome visits
    ("school", {"total": 3}, "SURV-510", "total"),
    ("school", {"source": "S930102001"}, "SURV-502", "source"),  # no class
    ("fever", {"source": ""}, "SURV-502", "source"),
    ("fever", {"source": "x" * 61}, "SURV-502", "source"),
    ("fever", {"source": "a,b"}, "SURV-502", "source"),
    ("fever", {"division_code": "93010"}, "SURV-503", "division_code"),
    ("fever", {"division_code": "930102001"}, "SURV-503", "division_code"),
    ("fever", {"colour": "red"}, "SURV-501", "colour"),
]


@pytest.mark.parametrize(("feed", "changes", "code", "field"), CASES)
def test_a_bad_row_gets_a_coded_error_naming_the_field(feed, changes, code, field):
    row, errors = fd.check_row(fd.FEEDS[feed], {**GOOD[feed], **changes}, row=7, today=TODAY)
    assert row is None
    assert (code, field) in {(e.code, e.field) for e in errors}
    assert all(e.row == 7 for e in errors)


def test_total_is_optional_for_pharmacies_and_schools():
    for feed in ("pharmacy", "school"):
        row, errors = fd.check_row(fd.FEEDS[feed], {**GOOD[feed], "total": ""}, row=1, today=TODAY)
        assert errors == [] and row.total is None


def test_every_error_of_a_row_is_reported_not_only_the_first():
    _, errors = fd.check_row(fd.FEEDS["fever"], {"source": "", "division_code": "x", "date": "tomorrow",
                                                 "metric": "?", "count": -1}, row=3, today=TODAY)
    assert {e.code for e in errors} == {"SURV-502", "SURV-503", "SURV-505", "SURV-507", "SURV-508", "SURV-509"}


def test_a_row_that_is_not_an_object_is_refused():
    _, errors = fd.check_row(fd.FEEDS["fever"], ["H001", "930102"], row=1, today=TODAY)
    assert [e.code for e in errors] == ["SURV-501"]


def test_a_repeated_source_date_and_metric_in_one_batch_is_a_duplicate_naming_the_first():
    other_metric = {**GOOD["fever"], "metric": "SARI"}
    good, errors = fd.check_rows(fd.FEEDS["fever"], [GOOD["fever"], other_metric, dict(GOOD["fever"])], today=TODAY)
    assert len(good) == 2
    assert [(e.row, e.code) for e in errors] == [(3, "SURV-511")] and "row 1" in errors[0].message


def test_errors_are_counted_by_code():
    _, errors = fd.check_rows(fd.FEEDS["lab"], [{**GOOD["lab"], "count": -1}, {**GOOD["lab"], "total": None},
                                                {**GOOD["lab"], "count": -2, "date": "2025-03-02"}], today=TODAY)
    assert fd.errors_by_code(errors) == {"SURV-508": 2, "SURV-509": 1}


def test_an_unknown_feed_is_refused():
    with pytest.raises(Invalid) as exc:
        fd.feed_of("wastewater")
    assert exc.value.code == "SURV-500"


def test_every_metric_has_a_chinese_and_an_english_name():
    for feed in fd.FEEDS.values():
        assert feed.zh and feed.en
        for code, (zh, en) in feed.metrics.items():
            assert zh and en and fd.stream_of(feed.code, code) == f"{feed.code}:{code}"


# -- CSV -------------------------------------------------------------------------------------------

def test_a_csv_with_the_documented_header_gives_its_rows():
    text = ("source,division_code,date,metric,count,total\nH001,930102,2025-03-10,ILI,12,240\n\n"
            "H002,930102,2025-03-10,SARI,1,\n")
    rows = fd.parse_feed_csv(text)
    assert rows == [{"source": "H001", "division_code": "930102", "date": "2025-03-10", "metric": "ILI", "count": "12",
                     "total": "240"},
                    {"source": "H002", "division_code": "930102", "date": "2025-03-10", "metric": "SARI", "count": "1",
                     "total": ""}]
    good, errors = fd.check_rows(fd.FEEDS["fever"], rows, today=TODAY)
    assert len(good) == 1 and [(e.row, e.code) for e in errors] == [(2, "SURV-509")]


def test_columns_may_come_in_any_order_and_total_may_be_left_out():
    rows = fd.parse_feed_csv("metric,count,source,date,division_code\nantipyretic,30,P1,2025-03-10,930102\n")
    assert rows[0]["metric"] == "antipyretic" and "total" not in rows[0]


def test_a_gb18030_file_with_a_bom_less_chinese_source_is_decoded():
    text = "source,division_code,date,metric,count,total\n第一小学/三年级2班,930102,2025-03-10,fever,3,40\n"
    rows = fd.parse_feed_csv(text.encode("gb18030"))
    assert rows[0]["source"] == "第一小学/三年级2班"
    assert fd.parse_feed_csv(("\ufeff" + text).encode("utf-8"))[0]["source"] == "第一小学/三年级2班"


@pytest.mark.parametrize(("text", "code"), [
    ("", "SURV-522"),
    ("source,division,date,metric,count\n", "SURV-522"),  # a misspelt column
    ("source,division_code,date,metric\n", "SURV-522"),  # count missing
    ("source,division_code,date,metric,count,count\n", "SURV-522"),
    ("source,division_code,date,metric,count\nH1,930102,2025-03-10,ILI,1,2,3\n", "SURV-523"),
    (b"\xff\xfe\x00\x81\xff", "SURV-521"),
])
def test_a_bad_file_is_refused_with_a_clear_code(text, code):
    with pytest.raises(Invalid) as exc:
        fd.parse_feed_csv(text)
    assert exc.value.code == code
