"""Daily detection on seeded data: an injected outbreak is signalled on the right day and in
the right county, flat data gives nothing, every method (fixed threshold in real time and
daily, moving percentile, EARS C3, CUSUM, the space-time scan), idempotence and backfill."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from healthgrid import outbox
from healthgrid.config import SurveillanceSettings
from healthgrid.errors import Invalid
from healthgrid.surveillance import detection, jobs
from healthgrid.surveillance import detection_methods as dm
from healthgrid.surveillance.detection_data import case_matrix
from healthgrid.surveillance.detectors import cidars
from healthgrid.surveillance.models import DetectorRun, Signal

from .signal_fixtures import (
    DAY,
    NOW,
    add_card,
    at_local,
    card_row,
    daily_cards,
    feed_rows,
    history,
    insert_cards,
    insert_feed,
    make_world,
    tune,
)

MUMPS, PLAGUE, HFMD = "3600", "0100", "4000"  # P80 moving percentile; fixed threshold; P75


@pytest.fixture
def world(session):
    w = make_world(session)
    tune(session, scan_enabled=False)
    return w


def signals(session, **where):
    stmt = select(Signal).order_by(Signal.id)
    for k, v in where.items():
        stmt = stmt.where(getattr(Signal, k) == v)
    return session.scalars(stmt).all()


def seed_mumps(session, world, *, years=6, outbreak_from=None, status="reported"):
    """One mumps case a day in counties A and B for ``years``; from ``outbreak_from`` five
    more a day in county A."""
    first = DAY - timedelta(days=365 * years)
    rows = daily_cards(MUMPS, world.county(0), history(first, DAY)) + daily_cards(MUMPS, world.county(1),
                                                                                  history(first, DAY))
    if outbreak_from is not None:
        extra = daily_cards(MUMPS, world.county(0), history(outbreak_from, DAY, 5))
        rows += [{**r, "status": status} for r in extra]
    insert_cards(session, rows)


def test_an_injected_outbreak_is_signalled_on_its_first_day_in_its_county(session, world):
    start = DAY - timedelta(days=1)
    seed_mumps(session, world, outbreak_from=start)
    before = detection.run_day(session, start - timedelta(days=1), now=NOW)
    assert before["signals"] == {} and signals(session) == []
    report = detection.run_day(session, start, now=NOW)
    assert report["alarms"] == {"mpm": 1} and report["signals"] == {"created": 1}
    [s] = signals(session)
    assert (s.stream, s.disease, s.county_code, s.method, s.detected_on) == (f"case:{MUMPS}", MUMPS, world.county(0),
                                                                            "mpm", start)
    assert s.observed == 12 and s.threshold == 7  # 7 days of 1 + 5, against P80 of the 25 baseline weeks (all 7)
    assert s.status == "generated" and s.detail["percentile"] == 80
    assert report["signal_ids"] == [s.id]


def test_flat_data_gives_no_signal(session, world):
    seed_mumps(session, world)
    report = detection.run_day(session, DAY, now=NOW)
    assert report["alarms"] == {} and signals(session) == []
    assert report["case_series"] == 2


def test_without_three_years_of_baseline_there_is_no_moving_percentile_signal(session, world):
    first = DAY - timedelta(days=365 * 2 + 30)  # the counties began reporting two years ago
    insert_cards(session, daily_cards(MUMPS, world.county(0), history(first, DAY))
                 + daily_cards(MUMPS, world.county(0), history(DAY, DAY, 20)))
    assert detection.run_day(session, DAY, now=NOW)["alarms"] == {}


def test_deleted_cards_count_nowhere(session, world):
    seed_mumps(session, world, outbreak_from=DAY, status="deleted")
    assert detection.run_day(session, DAY, now=NOW)["alarms"] == {}


def test_a_day_is_detected_once(session, world):
    seed_mumps(session, world, outbreak_from=DAY)
    first = detection.run_day(session, DAY, now=NOW)
    again = detection.run_day(session, DAY, now=NOW)
    assert again["skipped"] is True and again["signal_ids"] == first["signal_ids"]
    assert len(signals(session)) == 1
    run = session.get(DetectorRun, DAY)
    assert run.finished_at is not None and run.report["signals"] == {"created": 1}


def test_a_day_not_over_is_not_detected(session, world):
    with pytest.raises(Invalid) as exc:
        detection.run_day(session, DAY + timedelta(days=1), now=NOW)
    assert exc.value.code == "SURV-481"


def test_the_moving_percentile_on_chosen_days_equals_the_detector_on_all_days():
    rng = np.random.default_rng(3)
    start = date(2018, 1, 1)
    x = rng.poisson(2.0, size=(6, 366 * 6)).astype(float)
    x[2, :400] = np.nan
    cfg = SurveillanceSettings()
    cols = [2000, 2100, 2195]
    mine = dm.mpm_at(x, start, cols, percentile=75, cfg=cfg)
    ref = cidars.moving_percentile(x, start, percentile=75, years_back=cfg.mpm_years,
                                   half_width_weeks=cfg.mpm_half_width_weeks,
                                   min_baseline=cfg.mpm_min_years * (2 * cfg.mpm_half_width_weeks + 1))
    np.testing.assert_array_equal(mine.threshold, ref.threshold[:, cols])
    np.testing.assert_array_equal(mine.alarm, ref.alarm[:, cols])


def test_cases_are_counted_by_the_local_day_of_diagnosis(session, world):
    early = card_row(PLAGUE, world.county(1), at_local(DAY, 5))  # 05:00 China time = 21:00 UTC the day before
    assert early["diagnosed_at"].date() == DAY - timedelta(days=1)
    insert_cards(session, [early, card_row(MUMPS, world.county(1), at_local(DAY - timedelta(days=9)))])
    m = case_matrix(session, DAY - timedelta(days=2), DAY, diseases=[PLAGUE])
    assert m.keys == [(PLAGUE, world.county(1))] and m.counts.tolist() == [[0.0, 0.0, 1.0]]
    # before a county's first card its days are unobserved, not zero
    assert np.isnan(case_matrix(session, DAY - timedelta(days=12), DAY, diseases=[PLAGUE]).counts[0, :3]).all()


# -- fixed threshold ------------------------------------------------------------------------------

def test_a_plague_case_raises_a_signal_at_once_through_the_outbox(session, world):
    card = add_card(session, PLAGUE, world.county(1), DAY)
    outbox.publish(session, "surveillance.card_reported", {
        "card_id": card.id, "disease": PLAGUE, "subtype": None, "county_code": world.county(1),
        "diagnosed_at": card.diagnosed_at.isoformat(), "fixed_threshold": True})
    outbox.deliver_pending(session, jobs.HANDLERS)
    [s] = signals(session)
    assert (s.method, s.county_code, s.detected_on, s.detail["card_ids"]) == ("fixed", world.county(1), DAY,
                                                                              [card.id])
    outbox.deliver_pending(session, jobs.HANDLERS)  # the signal_generated event: the county CDC is told
    assert session.get(Signal, s.id).status == "notified"
    # the daily run finds the same case and does not signal it twice
    report = detection.run_day(session, DAY, now=NOW)
    assert report["alarms"] == {"fixed": 1} and report["signals"] == {"deduped": 1}
    assert len(signals(session)) == 1


def test_a_second_case_joins_the_open_signal_with_its_card(session, world):
    first, second = (add_card(session, PLAGUE, world.county(0), DAY) for _ in range(2))
    for card in (first, second, second):  # the second event is delivered twice
        jobs.on_card_reported(session, {"card_id": card.id, "fixed_threshold": True})
    [s] = signals(session)
    assert s.detail["card_ids"] == [first.id, second.id] and s.observed == 2


def test_a_card_that_is_not_fixed_threshold_or_outside_the_region_raises_nothing(session, world):
    mumps = add_card(session, MUMPS, world.county(0), DAY)
    jobs.on_card_reported(session, {"card_id": mumps.id, "fixed_threshold": False})
    away = add_card(session, PLAGUE, "990101", DAY)
    jobs.on_card_reported(session, {"card_id": away.id, "fixed_threshold": True})
    deleted = add_card(session, PLAGUE, world.county(0), DAY, status="deleted")
    jobs.on_card_reported(session, {"card_id": deleted.id, "fixed_threshold": True})
    assert signals(session) == []


def test_the_daily_run_signals_a_fixed_threshold_case_the_real_time_path_missed(session, world):
    card = add_card(session, "1900", world.county(2), DAY, subtype="1901")  # pulmonary anthrax
    report = detection.run_day(session, DAY, now=NOW)
    [s] = signals(session)
    assert (s.stream, s.method, s.detail["card_ids"]) == ("case:1900", "fixed", [card.id])
    assert report["signals"] == {"created": 1}


# -- feeds ------------------------------------------------------------------------------------------

def test_a_jump_in_ili_share_and_count_is_one_signal_in_its_county(session, world):
    days = history(DAY - timedelta(days=60), DAY - timedelta(days=1))
    flat = {d: (10, 200) for d in days}
    insert_feed(session, feed_rows("fever", "ILI", world.county(0), {**flat, DAY: (40, 200)}, source="HA")
                + feed_rows("fever", "ILI", world.county(1), {**flat, DAY: (10, 200)}, source="HB"))
    report = detection.run_day(session, DAY, now=NOW)
    assert report["alarms"] == {"cusum": 1, "ears_c3": 1}
    assert report["signals"] == {"created": 1, "deduped": 1}  # one open signal per stream and county
    [s] = signals(session)
    assert (s.stream, s.county_code, s.method, s.detected_on) == ("fever:ILI", world.county(0), "cusum", DAY)
    assert s.detail["share"] == 0.2 and s.detail["expected_share"] == 0.05 and s.threshold == 2.26


def test_pharmacy_sales_without_totals_are_watched_by_ears(session, world):
    days = history(DAY - timedelta(days=30), DAY - timedelta(days=1))
    insert_feed(session, feed_rows("pharmacy", "antipyretic", world.county(2),
                                   {**{d: (30, None) for d in days}, DAY: (90, None)}))
    detection.run_day(session, DAY, now=NOW)
    [s] = signals(session)
    assert (s.stream, s.method, s.detail["count"]) == ("pharmacy:antipyretic", "ears_c3", 90)


def test_a_missing_day_of_a_feed_is_missing_not_zero(session, world):
    """Read as 0, the gap would make the jump to 90 an alarm; missing, EARS waits for a full
    baseline (as R's earsC does)."""
    days = history(DAY - timedelta(days=30), DAY - timedelta(days=1))
    rows = {**{d: (30, None) for d in days if d != DAY - timedelta(days=5)}, DAY: (90, None)}
    insert_feed(session, feed_rows("pharmacy", "cough", world.county(0), rows))
    assert detection.run_day(session, DAY, now=NOW)["alarms"] == {}


# -- the space-time scan -----------------------------------------------------------------------------

def test_a_cluster_in_one_county_is_found_by_the_scan(session, world):
    tune(session, scan_enabled=True, scan_replicates=199, scan_p_value=0.05)
    first = DAY - timedelta(days=70)  # too little history for the moving percentile
    rows = []
    for i in range(3):
        rows += daily_cards(HFMD, world.county(i), history(first, DAY, 2))
    rows += daily_cards(HFMD, world.county(1), history(DAY - timedelta(days=2), DAY, 10))
    insert_cards(session, rows)
    report = detection.run_day(session, DAY, now=NOW)
    assert report["scans"] == 1 and report["alarms"] == {"scan": 1}
    [s] = signals(session)
    assert (s.method, s.county_code, s.stream) == ("scan", world.county(1), f"case:{HFMD}")
    assert s.detail["counties"][0] == world.county(1) and s.detail["p_value"] <= 0.05
    assert s.observed > s.detail["expected"]


def test_the_scan_finds_nothing_when_cases_are_spread_evenly(session, world):
    tune(session, scan_enabled=True, scan_replicates=99, scan_p_value=0.05)
    rows = []
    for i in range(3):
        rows += daily_cards(HFMD, world.county(i), history(DAY - timedelta(days=70), DAY, 2))
    insert_cards(session, rows)
    assert detection.run_day(session, DAY, now=NOW)["alarms"] == {}


# -- backfill and the worker ----------------------------------------------------------------------------

def test_backfill_runs_each_day_once_and_raises_on_the_outbreak_day(session, world):
    start = DAY - timedelta(days=3)
    seed_mumps(session, world, outbreak_from=start + timedelta(days=2))
    seen = []
    report = detection.backfill(session, start, DAY, after_day=lambda s, day, ids: seen.append((day, ids)), now=NOW)
    assert report["days"] == 4 and report["signals_created"] == 1
    [s] = signals(session)
    assert s.detected_on == start + timedelta(days=2)
    assert s.generated_at == detection.detection_time(session, s.detected_on)  # as the daily job would have
    assert [d for d, _ in seen] == [start + timedelta(days=i) for i in range(4)]
    assert [ids for _, ids in seen] == [[], [], [s.id], []]
    assert session.scalar(select(func.count()).select_from(DetectorRun)) == 4
    assert detection.backfill(session, start, DAY, now=NOW)["days_skipped"] == 4


def test_the_tick_detects_yesterday_once_after_the_detection_hour(session, world):
    seed_mumps(session, world, outbreak_from=DAY)
    too_early = detection.detection_time(session, DAY) - timedelta(minutes=30)  # 00:30 the next morning
    assert jobs.tick(session, too_early)["surveillance_detected"] == 0
    assert jobs.tick(session, NOW)["surveillance_detected"] == 1
    assert jobs.tick(session, NOW)["surveillance_detected"] == 0
    assert len(signals(session)) == 1
    # the worker was down three days: it catches up every day missed
    assert jobs.tick(session, NOW + timedelta(days=3))["surveillance_detected"] == 3
    assert session.scalar(select(func.max(DetectorRun.day))) == DAY + timedelta(days=3)
