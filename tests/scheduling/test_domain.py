"""Pure scheduling rules: quota split, release times, channels, the state machine, and the
exam planner with its rules as data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from healthgrid.errors import Conflict, Invalid
from healthgrid.scheduling import domain as d
from healthgrid.scheduling import exams

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("capacity", "ratio", "reserved"), [
    (0, 0.3, 0), (1, 0.3, 1), (10, 0.3, 3), (11, 0.3, 4), (30, 0.3, 9), (40, 0.0, 0), (7, 1.0, 7), (20, 0.5, 10)])
def test_reserved_places_are_the_ceiling_of_the_ratio_and_at_least_one(capacity, ratio, reserved):
    assert d.reserved_places(capacity, ratio) == reserved


def test_split_spreads_reserved_places_over_the_session_and_channels_by_share():
    pools = d.split_pools(40, 0.3, {"web": 0.6, "phone": 0.2, "kiosk": 0.1, "window": 0.1})
    assert len(pools) == 40
    assert pools.count("reserved") == 12
    # 28 public places by share: 16.8, 5.6, 2.8, 2.8 -> floors 16, 5, 2, 2, remainders to web, kiosk, window
    assert {p: pools.count(p) for p in d.CHANNELS} == {"web": 17, "phone": 5, "kiosk": 3, "window": 3}
    # reserved places in both halves of the session, not bunched at the start
    assert "reserved" in pools[:20] and "reserved" in pools[20:]


def test_channel_counts_use_the_largest_remainder_and_sum_to_the_places():
    counts = d.channel_counts(7, {"web": 1, "phone": 1, "kiosk": 1})
    assert sum(counts.values()) == 7 and counts["window"] == 0 and max(counts.values()) - min(
        v for c, v in counts.items() if c != "window") == 1


@pytest.mark.parametrize("shares", [{"fax": 1.0}, {"web": -1, "phone": 2}, {"web": 0, "phone": 0}])
def test_bad_channel_shares_are_refused(shares):
    with pytest.raises(Invalid) as err:
        d.check_shares(shares)
    assert err.value.code == "SCHED-015"


def _times(day=date(2026, 12, 1)):
    spec = d.TemplateSpec(1, "am", 8 * 60, 11 * 60 + 30, 15, 2)
    rule = d.ReleaseRule(open_days_ahead=7, release_minute=15 * 60, reserve_lead_days=14, release_back_hours=48)
    return spec, d.session_times(day, spec, rule, TZ)


def test_session_times_follow_the_release_rule_in_local_time():
    spec, t = _times()
    assert spec.capacity == 14 * 2
    assert t.starts_at == datetime(2026, 12, 1, 8, 0, tzinfo=TZ)
    assert t.public_release_at == datetime(2026, 11, 24, 15, 0, tzinfo=TZ)
    assert t.referral_open_at == datetime(2026, 11, 10, 15, 0, tzinfo=TZ)
    assert t.release_back_at == datetime(2026, 11, 29, 8, 0, tzinfo=TZ)


@pytest.mark.parametrize(("pool", "at", "released_back", "code"), [
    ("web", datetime(2026, 11, 24, 14, 59, tzinfo=TZ), False, "SCHED-003"),  # a minute before the release
    ("web", datetime(2026, 11, 24, 15, 0, tzinfo=TZ), False, None),
    ("reserved", datetime(2026, 11, 10, 14, 0, tzinfo=TZ), False, "SCHED-003"),
    ("reserved", datetime(2026, 11, 11, 9, 0, tzinfo=TZ), False, None),  # referrers two weeks earlier
    ("reserved", datetime(2026, 11, 30, 9, 0, tzinfo=TZ), True, None),
    ("web", datetime(2026, 12, 1, 8, 0, tzinfo=TZ), False, "SCHED-004"),  # the session has started
])
def test_pools_open_at_their_release(pool, at, released_back, code):
    _spec, t = _times()
    if code is None:
        d.check_pool_open(pool, at.astimezone(UTC), t, released_back=released_back)
    else:
        with pytest.raises(Conflict) as err:
            d.check_pool_open(pool, at.astimezone(UTC), t, released_back=released_back)
        assert err.value.code == code


@pytest.mark.parametrize(("pool", "channel", "referral", "code"), [
    ("web", "web", False, None), ("web", "phone", False, "SCHED-007"), ("reserved", "web", False, "SCHED-005"),
    ("reserved", "phone", True, None), ("kiosk", "fax", False, "SCHED-007")])
def test_a_place_is_booked_through_its_channel_and_reserved_ones_only_for_referrals(pool, channel, referral, code):
    if code is None:
        d.check_channel(pool, channel, referral=referral)
    else:
        with pytest.raises((Conflict, Invalid)) as err:
            d.check_channel(pool, channel, referral=referral)
        assert err.value.code == code


@pytest.mark.parametrize(("current", "target", "ok"), [
    ("booked", "cancelled", True), ("booked", "arrived", True), ("booked", "noshow", True),
    ("arrived", "fulfilled", True), ("proposed", "booked", True), ("cancelled", "booked", False),
    ("fulfilled", "cancelled", False), ("noshow", "arrived", False), ("arrived", "cancelled", False)])
def test_appointment_state_machine(current, target, ok):
    if ok:
        assert d.check_transition(current, target) == target
    else:
        with pytest.raises(Conflict) as err:
            d.check_transition(current, target)
        assert err.value.code == "SCHED-012"


@pytest.mark.parametrize(("value", "minutes"), [("08:00", 480), ("8:30", 510), ("24:00", 1440)])
def test_clock_times_parse(value, minutes):
    assert d.parse_clock(value, "start") == minutes


@pytest.mark.parametrize("value", ["8", "25:00", "08:61", "noon", ""])
def test_bad_clock_times_are_refused(value):
    with pytest.raises(Invalid):
        d.parse_clock(value, "start")


def test_no_show_suspension_threshold():
    assert not d.suspended(2, 3) and d.suspended(3, 3) and not d.suspended(10, 0)


# -- the exam planner -------------------------------------------------------------------------------

CAT = exams.catalogue()
MON = date(2026, 11, 30)


def _cands(kind: str, days: list[date], hours=(8, 9, 10, 14, 15), start_id=0) -> list[exams.Candidate]:
    out = []
    for i, (day, h) in enumerate((dd, hh) for dd in days for hh in hours):
        at = datetime(day.year, day.month, day.day, h, tzinfo=TZ).astimezone(UTC)
        out.append(exams.Candidate(start_id + i, day, "am" if h < 12 else "pm", at, at + timedelta(minutes=30),
                                   kind, 1))
    return out


def _all(codes, days):
    return {c: _cands(CAT.items[c].equipment, days, start_id=100 * n) for n, c in enumerate(codes)}


def test_the_catalogue_loads_and_its_rules_name_known_items():
    assert {"US-ABD", "CT-CONTRAST", "NM-THYROID", "GI-BARIUM"} <= set(CAT.items)
    kinds = {r.kind for r in CAT.rules}
    assert kinds == {"fasting_first", "not_same_day", "before"}


def test_several_exams_fit_in_one_trip_with_fasting_exams_first_in_the_morning():
    codes = ["CT-PLAIN", "US-ABD", "ECG"]
    plan = exams.plan_exams(CAT, codes, _all(codes, [MON, MON + timedelta(1)]))
    assert plan.trips == 1
    assert plan.order[0] == "US-ABD" and plan.assignments["US-ABD"].part == "am"
    assert not exams.violations(CAT, plan.assignments)


def test_contrast_ct_and_thyroid_scan_are_never_on_the_same_day():
    codes = ["CT-CONTRAST", "NM-THYROID"]
    plan = exams.plan_exams(CAT, codes, _all(codes, [MON, MON + timedelta(1)]))
    assert plan.trips == 2
    assert plan.assignments["CT-CONTRAST"].day != plan.assignments["NM-THYROID"].day


def test_barium_study_comes_after_the_abdominal_ultrasound():
    codes = ["GI-BARIUM", "US-ABD"]
    plan = exams.plan_exams(CAT, codes, _all(codes, [MON]))
    assert plan.trips == 1
    assert plan.assignments["US-ABD"].starts_at < plan.assignments["GI-BARIUM"].starts_at


def test_ordering_rule_holds_across_days_when_the_ultrasound_is_only_free_later():
    cands = {"GI-BARIUM": _cands("DR", [MON, MON + timedelta(2)], start_id=0),
             "US-ABD": _cands("US", [MON + timedelta(1)], start_id=100)}
    plan = exams.plan_exams(CAT, ["GI-BARIUM", "US-ABD"], cands)
    assert plan.assignments["GI-BARIUM"].day == MON + timedelta(2)  # not before the ultrasound


def test_the_plan_minimises_trips_before_earliness():
    # CT only on Tuesday; ECG on Monday and Tuesday: one trip on Tuesday beats two trips from Monday.
    cands = {"CT-PLAIN": _cands("CT", [MON + timedelta(1)], start_id=0),
             "ECG": _cands("ECG", [MON, MON + timedelta(1)], start_id=100)}
    plan = exams.plan_exams(CAT, ["CT-PLAIN", "ECG"], cands)
    assert plan.trips == 1 and {s.day for s in plan.assignments.values()} == {MON + timedelta(1)}


def test_no_plan_when_a_fasting_exam_has_only_afternoon_places():
    cands = {"US-ABD": _cands("US", [MON], hours=(14, 15))}
    assert exams.plan_exams(CAT, ["US-ABD"], cands) is None
    assert exams.unplannable_reasons(CAT, ["US-ABD"], cands, 1)


@pytest.mark.parametrize("codes", [[], ["US-ABD", "US-ABD"], ["XYZ"], ["ECG"] * 7])
def test_bad_exam_lists_are_refused(codes):
    with pytest.raises(Invalid) as err:
        exams.check_items(CAT, codes)
    assert err.value.code == "SCHED-023"


def test_instructions_list_each_exam_and_the_rules_that_shaped_the_plan():
    codes = ["GI-BARIUM", "US-ABD"]
    plan = exams.plan_exams(CAT, codes, _all(codes, [MON]))
    lines = exams.instructions(CAT, plan, 0)
    assert any("禁食" in line for line in lines) and any("钡" in line for line in lines)


@pytest.mark.parametrize(("status", "reason", "rebooked_as", "days_after", "ok"), [
    ("cancelled", "stop_clinic: 医生外出会诊", None, 0, True),
    ("cancelled", "stop_clinic: 医生外出会诊", None, 14, True),
    ("cancelled", "stop_clinic: 医生外出会诊", None, 15, False),  # the window has closed
    ("cancelled", "stop_clinic: 医生外出会诊", 42, 1, False),  # once only
    ("cancelled", "行程有变", None, 0, False),  # the patient cancelled: book anew
    ("booked", None, None, 0, False)])
def test_only_a_stop_clinic_cancellation_is_rebooked_once_within_two_weeks(status, reason, rebooked_as,
                                                                            days_after, ok):
    day = date(2026, 12, 1)
    refusal = d.rebook_refusal(status, reason, rebooked_as, day, day + timedelta(days=days_after))
    assert (refusal is None) == ok
    assert d.stop_reason("stop_clinic: 医生外出会诊") == "医生外出会诊" and d.stop_reason("行程有变") is None
