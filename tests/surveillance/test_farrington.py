"""Farrington / Noufaily pieces against hand-computed values; shapes, NaN, coded errors.

The R comparisons on real data are in test_r_reference.py; here each piece is checked on its own:
baseline windows and seasonal levels, the power-transformed bound, limit54, the trend rule,
reweighting, the negative binomial bound, and the intercept-only fit whose threshold has a
closed form (mean m, dispersion phi, n baseline weeks:
U = (m^(2/3) + z * (2/3) * m^(1/6) * sqrt(phi * (1 + 1/n)))^(3/2)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance.detectors import farrington as fa
from healthgrid.surveillance.detectors import special

Z975 = 1.959963984540054  # qnorm(0.975): R algo.farrington's two-sided alpha = 0.05
NAN = np.nan


def weekly(baseline_value, n=320, current=None):  # noqa: ANN001, ANN201
    """One series of n weeks, every week = baseline_value (a callable of the week index or a number)."""
    x = np.array([baseline_value(t) if callable(baseline_value) else baseline_value for t in range(n)], dtype=float)
    if current is not None:
        x[-1] = current
    return x[None, :]


# --- baseline windows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "b", "w", "first_window", "last_window"),
    [
        (263, 5, 3, range(0, 7), range(208, 215)),
        (300, 3, 2, range(142, 147), range(246, 251)),
        (100, 1, 0, range(48, 49), range(48, 49)),
    ],
)
def test_reference_weeks_are_b_years_of_2w_plus_1_weeks(t, b, w, first_window, last_window):
    rows = fa.reference_weeks(t, b=b, w=w, period=52)
    assert rows.size == b * (2 * w + 1)
    assert list(rows[: 2 * w + 1]) == list(first_window)
    assert list(rows[-(2 * w + 1) :]) == list(last_window)


def test_seasonal_blocks_cut_each_gap_into_nine_levels_of_five_weeks():
    rows, levels = fa.seasonal_blocks(263, b=5, w=3, period=52, periods=10, past=26)
    level_of = dict(zip(rows.tolist(), levels.tolist(), strict=True))
    assert [level_of[t] for t in range(0, 7)] == [10] * 7  # window around 263 - 5*52 = 3
    assert [level_of[t] for t in range(7, 52)] == [j for j in range(1, 10) for _ in range(5)]
    assert [level_of[t] for t in range(208, 215)] == [10] * 7  # window of the last year
    assert max(rows) == 236  # weeks 237..263 (the last 26 and t) are left out
    assert rows.size == 5 * 7 + 5 * 45 - 23


def test_seasonal_blocks_give_the_remainder_to_the_first_levels():
    rows, levels = fa.seasonal_blocks(264, b=1, w=4, period=52, periods=10, past=4)
    gap = levels[(rows > 216) & (rows < 260)]  # 43 weeks = 7 levels of 5, then 2 of 4
    assert np.bincount(gap)[1:].tolist() == [5] * 7 + [4] * 2


def test_past_weeks_shorter_than_the_window_keep_part_of_the_current_window():
    rows, levels = fa.seasonal_blocks(263, b=5, w=3, period=52, periods=1, past=1)
    assert {260, 261} <= set(rows.tolist()) and 262 not in rows and 263 not in rows
    assert set(levels.tolist()) == {1}


# --- thresholds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("power", "expected"),
    [
        ("2/3", (4 ** (2 / 3) + 1.96 * (2 / 3) * 4 ** (1 / 6)) ** 1.5),
        ("1/2", (2 + 1.96 * 0.5) ** 2),
        ("none", 4 + 1.96 * 2),
    ],
)
def test_power_transformed_bound_by_hand(power, expected):
    # mu0 = 4, se(mu0) = 0, phi = 1: tau = 1
    got = fa.delta_bound(np.array([4.0]), np.array([0.0]), np.array([1.0]), 1.96, power)
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_two_thirds_power_bound_adds_the_estimation_error():
    # tau = phi + se^2 / mu0 = 2 + 4 / 4 = 3
    got = fa.delta_bound(np.array([4.0]), np.array([2.0]), np.array([2.0]), 1.96, "2/3")
    assert got[0] == pytest.approx((4 ** (2 / 3) + 1.96 * math.sqrt(4 / 9 * 4 ** (1 / 3) * 3)) ** 1.5)


@pytest.mark.parametrize(
    ("mean", "phi", "expected"),
    [
        (4.0, 1.0, 8),  # qpois(0.95, 4)
        (2.0, 2.0, 6),  # NB size 2, prob 1/2: CDF(5) = 0.9375, CDF(6) = 0.96484
        (0.0, 1.0, 0),
        (1e-9, 3.0, 0),
    ],
)
def test_negative_binomial_bound_is_the_95_percent_quantile(mean, phi, expected):
    assert fa.nb_bound(np.array([mean]), np.array([phi]), 0.05)[0] == expected


def test_intercept_only_farrington_bound_has_a_closed_form():
    base = [3, 5, 4, 6, 2, 5, 4]  # each year's 7 reference weeks; mean 29/7
    # t = 319: the reference weeks 319 - 52i + (-3..3) are the weeks with (week - 4) % 52 in 0..6
    x = weekly(lambda t: base[(t - 4) % 52] if (t - 4) % 52 < 7 else 50, current=4)
    found = fa.farrington(x, weeks=1, trend=False, reweight=False)
    m, n = 29 / 7, 35
    phi = max(sum((v - m) ** 2 / m for v in base) * 5 / (n - 1), 1.0)
    expected = (m ** (2 / 3) + Z975 * (2 / 3) * m ** (1 / 6) * math.sqrt(phi * (1 + 1 / n))) ** 1.5
    assert found.threshold[0, -1] == pytest.approx(expected, rel=1e-7)
    assert found.statistic[0, -1] == 4 and not found.alarm[0, -1]


# --- limit54, trend, reweighting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_four", "evaluated", "alarm"),
    [
        ([0, 0, 0, 4], False, False),  # 4 < 5 cases in 4 weeks: no threshold, no alarm
        ([1, 0, 0, 4], True, True),
        ([0, 0, 0, 30], True, True),  # the current week counts (R >= 0.9-7)
        ([2, 2, 1, 0], True, False),
    ],
)
def test_limit54_needs_five_cases_in_the_last_four_weeks(last_four, evaluated, alarm):
    x = weekly(lambda t: 1 if t % 3 == 0 else 0)
    x[0, -4:] = last_four
    found = fa.farrington(x, weeks=1)
    assert (not np.isnan(found.threshold[0, -1])) == evaluated
    assert found.alarm[0, -1] == alarm


def test_limit54_is_configurable():
    x = weekly(lambda t: 1 if t % 3 == 0 else 0, current=4)
    x[0, -4:-1] = 0
    assert np.isnan(fa.farrington(x, weeks=1).threshold[0, -1])
    assert not np.isnan(fa.farrington(x, weeks=1, limit54=(4, 4)).threshold[0, -1])


def trend_series(rate):  # noqa: ANN001, ANN201
    return weekly(lambda t: round(40 * math.exp(rate * t)), current=20)


def test_a_downward_trend_is_kept():
    x = trend_series(-0.004)
    with_trend, flat = fa.farrington(x, weeks=1), fa.farrington(x, weeks=1, trend=False)
    assert with_trend.threshold[0, -1] < flat.threshold[0, -1] - 1


def test_an_upward_trend_that_would_extrapolate_is_dropped():
    x = trend_series(0.004)
    assert fa.farrington(x, weeks=1).threshold[0, -1] == fa.farrington(x, weeks=1, trend=False).threshold[0, -1]


def test_no_trend_with_fewer_than_three_years():
    x = trend_series(-0.004)
    assert (
        fa.farrington(x, weeks=1, b=2).threshold[0, -1] == fa.farrington(x, weeks=1, b=2, trend=False).threshold[0, -1]
    )


@pytest.mark.parametrize(
    ("s", "threshold", "expected"),
    [
        ([0.5, 2.0, 4.0], 1.0, np.array([1.0, 0.25, 0.0625]) * 3 / 1.3125),
        ([0.5, 2.0, 4.0], 2.58, np.array([1.0, 1.0, 1 / 16]) * 3 / 2.0625),
        ([0.5, np.inf, 1.0], 1.0, [1.5, 0.0, 1.5]),  # hat value 1: weight 0, as in R
    ],
)
def test_anscombe_weights_downweight_large_residuals_and_average_one(s, threshold, expected):
    got = fa.anscombe_weights(np.array([s]), np.ones((1, 3), dtype=bool), threshold)
    np.testing.assert_allclose(got[0], expected)


def test_reweighting_lowers_the_bound_after_a_past_outbreak():
    x = weekly(lambda t: 5 + (t % 2), current=14)
    x[0, 266] = 60  # an outbreak in last year's reference window (264..270)
    plain = fa.farrington(x, weeks=1, reweight=False, trend=False)
    reweighted = fa.farrington(x, weeks=1, trend=False)
    assert reweighted.threshold[0, -1] < plain.threshold[0, -1]
    assert reweighted.alarm[0, -1] and not plain.alarm[0, -1]


# --- shapes, missing data, batches ----------------------------------------------------------------


def test_weeks_without_a_full_baseline_are_not_evaluated():
    rng = np.random.default_rng(7)
    x = rng.poisson(6, size=(3, 270)).astype(float)
    found = fa.farrington(x)  # every week from 52*5 + 3 = 263 on
    assert found.threshold.shape == x.shape
    assert np.all(np.isnan(found.threshold[:, :263])) and not found.alarm[:, :263].any()
    assert np.all(~np.isnan(found.threshold[:, 263:]))
    assert np.all(np.isnan(fa.noufaily(x, weeks=[10, 20]).threshold))


def test_missing_weeks_are_left_out_and_a_missing_current_week_is_not_evaluated():
    rng = np.random.default_rng(3)
    x = rng.poisson(6, size=(2, 300)).astype(float)
    x[0, 250] = NAN  # in the baseline of week 299 (299 - 52 = 247, window 244..250)
    x[1, 299] = NAN
    for detector in (fa.farrington, fa.noufaily):
        found = detector(x, weeks=1)
        assert not np.isnan(found.threshold[0, -1])
        assert np.isnan(found.statistic[1, -1]) and np.isnan(found.threshold[1, -1]) and not found.alarm[1, -1]


@pytest.mark.parametrize("detector", [fa.farrington, fa.noufaily, fa.flexible])
def test_a_batch_equals_one_series_at_a_time(detector):
    rng = np.random.default_rng(11)
    season = 6 + 4 * np.sin(np.arange(330) * 2 * np.pi / 52)
    x = rng.negative_binomial(3, 3 / (3 + season), size=(6, 330)).astype(float)
    x[2] = 0.0  # a series with no cases at all
    x[3, 300:] += 25  # an outbreak
    batch = detector(x, weeks=20)
    for s in range(x.shape[0]):
        single = detector(x[s : s + 1], weeks=20)
        np.testing.assert_allclose(single.threshold[0], batch.threshold[s], rtol=1e-9)
        np.testing.assert_array_equal(single.alarm[0], batch.alarm[s])
    assert batch.alarm[3, -20:].any() and not batch.alarm[2].any()


@pytest.mark.parametrize(
    ("weeks", "evaluated"),
    [(3, [327, 328, 329]), ([300, 329, 300], [300, 329])],
)
def test_weeks_selects_the_evaluated_weeks(weeks, evaluated):
    x = np.random.default_rng(5).poisson(8, size=(1, 330)).astype(float)
    found = fa.noufaily(x, weeks=weeks)
    assert np.flatnonzero(~np.isnan(found.threshold[0])).tolist() == evaluated


# --- special functions ---------------------------------------------------------------------------


def test_special_functions_against_known_values():
    assert special.lgamma(np.array([0.5]))[0] == pytest.approx(0.5 * math.log(math.pi), rel=1e-14)
    assert special.lgamma(np.array([10.0]))[0] == pytest.approx(math.log(362880), rel=1e-14)
    # two-sided t test p-value: t = 2.0 on 33 df (R: 2 * pt(-2, 33))
    assert special.t_two_sided_p(2.0, 33.0) == pytest.approx(0.053786231882546151, rel=1e-10)
    assert special.gammaincc(1.0, 1.0) == pytest.approx(math.exp(-1), rel=1e-13)
    assert special.poisson_quantile(0.95, np.array([100.0, 2000.0])).tolist() == [117, 2074]


# --- coded errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda x: fa.farrington(x, b=0), "SURV-120"),
        (lambda x: fa.farrington(x, w=-1), "SURV-120"),
        (lambda x: fa.farrington(x, period=5, w=3), "SURV-120"),
        (lambda x: fa.farrington(x, alpha=1.0), "SURV-121"),
        (lambda x: fa.noufaily(x, alpha=0), "SURV-121"),
        (lambda x: fa.farrington(x, limit54=(5, 0)), "SURV-122"),
        (lambda x: fa.farrington(x, power="3/4"), "SURV-123"),
        (lambda x: fa.flexible(x, threshold_method="exact"), "SURV-124"),
        (lambda x: fa.flexible(x, periods=0), "SURV-125"),
        (lambda x: fa.flexible(x, periods=50), "SURV-125"),
        (lambda x: fa.farrington(x, weeks=0), "SURV-126"),
        (lambda x: fa.farrington(x, weeks=[400]), "SURV-126"),
        (lambda x: fa.flexible(x, weights_threshold=0), "SURV-127"),
        (lambda x: fa.flexible(x, p_trend=0), "SURV-127"),
        (lambda x: fa.flexible(x, past_weeks_not_included=52), "SURV-127"),
        (lambda x: fa.farrington(np.zeros(300)), "SURV-102"),
    ],
)
def test_bad_parameters_give_coded_errors(call, code):
    with pytest.raises(Invalid) as err:
        call(np.zeros((1, 300)))
    assert err.value.code == code
