"""Detectors: hand-computed statistics, edge cases, and batch == one series at a time."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance.detectors import cidars, cusum, ears, threshold

NAN = np.nan
Z999 = 3.090232306167813  # qnorm(0.999), R earsC default for C1/C2
Z975 = 1.959963984540054  # qnorm(0.975), R earsC default for C3
BASE = [5, 3, 5, 3, 5, 3, 4]  # mean 4, sample sd exactly 1


def row(values):
    return np.array([values], dtype=float)


# --- fixed threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "cut", "stat", "alarm"),
    [
        ([0, 1, NAN, 3], 1, [0, 1, NAN, 3], [False, True, False, True]),
        ([0, 1, NAN, 3], 2, [0, 1, NAN, 3], [False, False, False, True]),
        ([0, 0, 0], 1, [0, 0, 0], [False, False, False]),
    ],
)
def test_fixed_threshold_one_case_is_a_signal(counts, cut, stat, alarm):
    found = threshold.fixed(row(counts), cut)
    np.testing.assert_array_equal(found.statistic[0], stat)
    np.testing.assert_array_equal(found.alarm[0], alarm)


def test_counts_must_be_two_dimensional():
    with pytest.raises(Invalid) as err:
        threshold.fixed(np.array([1.0, 2.0]))
    assert err.value.code == "SURV-102"


# --- EARS, hand-computed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "c1_stat", "classic_alarm", "r_alarm"),
    [
        (8, 4.0, True, True),
        (7, 3.0, False, False),  # strictly greater than 3
        (7.05, 3.05, True, False),  # classic 3 vs R's mean + 3.09 sd: the forms differ
        (4, 0.0, False, False),
        (1, -3.0, False, False),
    ],
)
def test_c1_against_hand_computed_values(x, c1_stat, classic_alarm, r_alarm):
    counts = row(BASE + [x])
    classic = ears.c1(counts)
    assert np.all(np.isnan(classic.statistic[0, :7])) and not classic.alarm[0, :7].any()
    assert classic.statistic[0, 7] == pytest.approx(c1_stat)
    assert classic.threshold[0, 7] == 3.0
    assert classic.alarm[0, 7] == classic_alarm
    bound = ears.c1_upperbound(counts)
    assert bound.statistic[0, 7] == x
    assert bound.threshold[0, 7] == pytest.approx(4 + Z999)
    assert bound.alarm[0, 7] == r_alarm


def test_c2_skips_the_two_guard_days():
    counts = row(BASE + [100, 100, 9])
    found = ears.c2(counts)
    assert np.all(np.isnan(found.statistic[0, :9]))
    assert found.statistic[0, 9] == pytest.approx(5.0)
    assert found.alarm[0, 9]
    assert ears.c2_upperbound(counts).threshold[0, 9] == pytest.approx(4 + Z999)
    assert ears.c1(counts).statistic[0, 9] < 3  # C1's baseline holds the guard days


C3_HEAD = [5, 3, 5, 3, 5, 3, 4, 5, 3]  # every C2 baseline for days 9, 10, 11 has mean 4, sd 1


@pytest.mark.parametrize(
    ("tail", "c3_stat", "classic_alarm", "r_bound", "r_alarm"),
    [
        # C2 = 2, 1, 3 -> excess 1, 0, 2 -> C3 = 3; R bound = 7 + (1.96 - (1 + 0))
        ([6, 5, 7], 3.0, True, 7 + Z975 - 1, False),
        # C2 = 3, 1, 0 -> excess 2, 0, 0 -> C3 = 2 (not > 2); R: 4 + (1.96 - 2) < 4 alarms
        ([7, 5, 4], 2.0, False, 4 + Z975 - 2, True),
        ([4, 4, 4], 0.0, False, 4 + Z975, False),
    ],
)
def test_c3_against_hand_computed_values(tail, c3_stat, classic_alarm, r_bound, r_alarm):
    counts = row(C3_HEAD + tail)
    classic = ears.c3(counts)
    assert np.all(np.isnan(classic.statistic[0, :11]))
    assert classic.statistic[0, 11] == pytest.approx(c3_stat)
    assert classic.alarm[0, 11] == classic_alarm
    bound = ears.c3_upperbound(counts)
    assert bound.threshold[0, 11] == pytest.approx(r_bound)
    assert bound.alarm[0, 11] == r_alarm


@pytest.mark.parametrize(
    ("x", "min_sigma", "stat", "classic_alarm", "bound", "r_alarm"),
    [
        (5, 0.0, np.inf, True, 4.0, True),  # sd 0: any rise above the mean alarms
        (4, 0.0, 0.0, False, 4.0, False),  # at the mean: 0, not NaN
        (3, 0.0, -np.inf, False, 4.0, False),
        (5, 1.0, 1.0, False, 4 + Z999, False),  # minSigma floors the sd
    ],
)
def test_zero_variance_baseline(x, min_sigma, stat, classic_alarm, bound, r_alarm):
    counts = row([4] * 7 + [x])
    classic = ears.c1(counts, min_sigma=min_sigma)
    assert classic.statistic[0, 7] == stat
    assert classic.alarm[0, 7] == classic_alarm
    upper = ears.c1_upperbound(counts, min_sigma=min_sigma)
    assert upper.threshold[0, 7] == pytest.approx(bound)
    assert upper.alarm[0, 7] == r_alarm


def test_missing_day_blanks_every_statistic_whose_window_holds_it():
    counts = row(BASE + [20, 20, NAN, 20] + BASE)
    found = ears.c1(counts)
    assert found.alarm[0, 7]
    assert np.all(np.isnan(found.statistic[0, 9:17]))  # day 9 itself, then days 10..16 whose baseline holds it
    assert not found.alarm[0, 9:17].any()
    assert not np.isnan(found.statistic[0, 17])


EARS = [ears.c1, ears.c2, ears.c3, ears.c1_upperbound, ears.c2_upperbound, ears.c3_upperbound]


@pytest.mark.parametrize("detector", EARS)
def test_series_shorter_than_the_baseline_gives_no_alarm(detector):
    found = detector(np.full((3, 7), 50.0))
    assert np.all(np.isnan(found.statistic)) and np.all(np.isnan(found.threshold))
    assert not found.alarm.any()
    assert found.statistic.shape == (3, 7)


def test_baseline_under_three_days_is_refused():
    with pytest.raises(Invalid) as err:
        ears.c1(row(BASE + [1]), baseline=2)
    assert err.value.code == "SURV-104"


# --- CUSUM -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reset", "stat", "alarm"),
    [
        (False, [0, 1, 2, 0, 2, NAN, 2], [False, False, True, False, True, False, True]),
        (True, [0, 1, 2, 0, 2, NAN, 0], [False, False, True, False, True, False, False]),
    ],
)
def test_cusum_against_hand_computed_values(reset, stat, alarm):
    found = cusum.cusum(row([0, 2, 2, -1, 3, NAN, 1]), k=1, h=2, reset=reset)
    np.testing.assert_array_equal(found.statistic[0], stat)
    np.testing.assert_array_equal(found.alarm[0], alarm)


def test_cusum_without_reset_is_the_lindley_closed_form():
    z = np.random.default_rng(3).normal(size=(200, 300))
    y = z - 0.5
    total = np.cumsum(y, axis=1)
    expected = total - np.minimum(0, np.minimum.accumulate(total, axis=1))
    np.testing.assert_allclose(cusum.cusum(z, k=0.5, h=4).statistic, expected, atol=1e-9)


def test_standardisation_of_counts_and_proportions():
    np.testing.assert_allclose(cusum.standardise_counts(row([9, 1, 3]), row([4, 4, 0])), row([2.5, -1.5, NAN]))
    z = cusum.standardise_proportion(row([30, 5]), row([100, 0]), 0.2)
    np.testing.assert_allclose(z, row([2.5, NAN]))


# --- CIDARS moving percentile ----------------------------------------------------------------

START = date(2023, 1, 1)


def cidars_example():
    """One year back, same / previous / next week: baseline sums 7, 14, 21 for 2024-01-20."""
    counts = np.zeros((1, 400))
    counts[0, 6:13] = 1  # window ending 2023-01-13 (index 12)
    counts[0, 13:20] = 2  # ending 2023-01-20 (19)
    counts[0, 20:27] = 3  # ending 2023-01-27 (26)
    counts[0, 384] = 15  # 2024-01-20
    return counts


@pytest.mark.parametrize(
    ("day", "pct", "stat", "thr", "alarm"),
    [
        (384, 50, 15, 14.0, True),
        (384, 80, 15, 18.2, False),  # 14 + 0.6 * (21 - 14)
        (383, 50, 0, 13.0, False),  # baseline 6, 13, 20
        (10, 50, NAN, NAN, False),  # no past year yet
    ],
)
def test_moving_percentile_against_hand_computed_values(day, pct, stat, thr, alarm):
    found = cidars.moving_percentile(cidars_example(), START, percentile=pct, years_back=1)
    np.testing.assert_allclose(found.statistic[0, day], stat)
    np.testing.assert_allclose(found.threshold[0, day], thr)
    assert found.alarm[0, day] == alarm


def test_missing_baseline_day_needs_min_baseline_to_be_lowered():
    counts = cidars_example()
    counts[0, 8] = NAN  # the 7 in the baseline of 2024-01-20 is now missing
    strict = cidars.moving_percentile(counts, START, years_back=1)
    assert np.isnan(strict.threshold[0, 384]) and np.isnan(strict.statistic[0, 384])
    assert not strict.alarm[0, 384]
    lenient = cidars.moving_percentile(counts, START, years_back=1, min_baseline=2)
    assert lenient.threshold[0, 384] == pytest.approx(17.5)  # P50 of 14, 21


def test_leap_day_maps_to_28_february():
    assert cidars.same_day_years_ago(date(2024, 2, 29), 1) == date(2023, 2, 28)
    assert cidars.same_day_years_ago(date(2024, 2, 29), 4) == date(2020, 2, 29)


def test_no_cases_never_signal_even_over_a_zero_baseline():
    found = cidars.moving_percentile(np.zeros((2, 800)), START, years_back=1)
    assert not found.alarm.any()
    assert (found.threshold[~np.isnan(found.threshold)] == 0).all()


def spec_mpm_signal(daily_counts, today, years_back, half_width_weeks, pct, min_cases=1):
    """The reference of domain-rules.md §5.4, transcribed."""
    cur = sum(daily_counts.get(today - timedelta(d), 0) for d in range(7))
    baseline = []
    for y in range(1, years_back + 1):
        try:
            anchor = today.replace(year=today.year - y)
        except ValueError:
            anchor = today.replace(year=today.year - y, day=28)
        for k in range(-half_width_weeks, half_width_weeks + 1):
            end = anchor + timedelta(weeks=k)
            baseline.append(sum(daily_counts.get(end - timedelta(d), 0) for d in range(7)))
    thr = np.percentile(baseline, pct)
    return cur >= min_cases and cur > thr, cur, thr


@pytest.mark.parametrize(("years", "weeks", "pct"), [(5, 2, 50), (3, 1, 75)])
def test_moving_percentile_matches_the_spec_reference(years, weeks, pct):
    start = date(2019, 1, 1)
    counts = np.random.default_rng(7).poisson(2.0, size=(2, 365 * years + 120)).astype(float)
    found = cidars.moving_percentile(counts, start, percentile=pct, years_back=years, half_width_weeks=weeks)
    evaluable = np.flatnonzero(~np.isnan(found.threshold[0]))
    assert len(evaluable) > 60
    for s in range(2):
        daily = {start + timedelta(t): counts[s, t] for t in range(counts.shape[1])}
        for t in evaluable[::7]:
            alarm, cur, thr = spec_mpm_signal(daily, start + timedelta(int(t)), years, weeks, pct)
            assert found.statistic[s, t] == cur
            assert found.threshold[s, t] == pytest.approx(thr)
            assert found.alarm[s, t] == alarm


def test_percentile_helper_matches_numpy_with_and_without_gaps():
    values = np.random.default_rng(1).poisson(5, size=(50, 9)).astype(float)
    for pct in (0, 45, 50, 75, 80, 100):
        np.testing.assert_allclose(cidars.percentile_last_axis(values, pct, 9), np.percentile(values, pct, axis=1))
    values[::3, 2] = NAN
    np.testing.assert_allclose(cidars.percentile_last_axis(values, 65, 8), np.nanpercentile(values, 65, axis=1))


def test_moving_percentile_short_series_gives_no_alarm():
    found = cidars.moving_percentile(np.full((4, 300), 9.0), START)
    assert np.all(np.isnan(found.statistic)) and not found.alarm.any()


# --- vectorisation: a batch equals one series at a time --------------------------------------


def random_batch(n_series, n_days, seed):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0.2, 20, size=(n_series, 1)), size=(n_series, n_days)).astype(float)
    counts[rng.random(counts.shape) < 0.01] = NAN
    counts[:50] = np.round(counts[:50] / 100)  # some quiet series: zero-variance baselines
    return counts


DETECTORS = {
    "fixed": threshold.fixed,
    "c1": ears.c1,
    "c2": ears.c2,
    "c3": ears.c3,
    "c1_upperbound": ears.c1_upperbound,
    "c2_upperbound": ears.c2_upperbound,
    "c3_upperbound": ears.c3_upperbound,
    "cusum": lambda c: cusum.cusum(cusum.standardise_counts(c, 5.0), reset=True),
}


@pytest.mark.parametrize("name", DETECTORS)
def test_batch_of_1000_equals_each_series_alone(name):
    counts = random_batch(1000, 60, seed=11)
    batch = DETECTORS[name](counts)
    for s in range(counts.shape[0]):
        alone = DETECTORS[name](counts[s : s + 1])
        for got, want in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(got[s], want[0])


def test_moving_percentile_batch_of_1000_equals_each_series_alone(monkeypatch):
    monkeypatch.setattr(cidars, "BLOCK_ELEMENTS", 50_000)  # several day blocks in the batch
    counts = random_batch(1000, 365 * 2 + 30, seed=12)
    batch = cidars.moving_percentile(counts, START, years_back=2, percentile=75, min_baseline=4)
    assert batch.alarm.any()
    for s in range(counts.shape[0]):
        alone = cidars.moving_percentile(counts[s : s + 1], START, years_back=2, percentile=75, min_baseline=4)
        for got, want in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(got[s], want[0])
