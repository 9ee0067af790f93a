"""The synthetic outbreak series and the detection-performance arithmetic."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance import outbreaks as ob

START = date(2023, 1, 2)  # a Monday


def test_the_same_seed_gives_the_same_series():
    a = ob.simulate(n_series=20, n_days=800, start=START, n_outbreaks=5, seed=7)
    b = ob.simulate(n_series=20, n_days=800, start=START, n_outbreaks=5, seed=7)
    assert np.array_equal(a.counts, b.counts) and a.outbreaks == b.outbreaks
    assert not np.array_equal(a.counts, ob.simulate(n_series=20, n_days=800, start=START, seed=8).counts)


@pytest.mark.parametrize(("season", "high", "low"), [("influenza", 1, 7), ("hfmd", 5, 12)])
def test_seasons_peak_where_the_disease_does(season, high, low):
    mu = ob.seasonal_mean(365 * 2, START, level=np.array([4.0]), season=season)[0]
    months = np.array([(START.toordinal() + i) for i in range(mu.size)])
    month = np.array([date.fromordinal(int(o)).month for o in months])
    assert mu[month == high].mean() > 2 * mu[month == low].mean()


def test_weekends_report_fewer_cases_and_levels_scale():
    mu = ob.seasonal_mean(28, START, level=np.array([2.0, 4.0]), season="flat")
    assert mu[0, 5] == pytest.approx(mu[0, 0] * 0.80 / 1.05) and mu[0, 6] == pytest.approx(mu[0, 0] * 0.70 / 1.05)
    assert np.allclose(mu[1], 2 * mu[0])


def test_outbreaks_add_their_cases_after_the_burn_in():
    sim = ob.simulate(n_series=30, n_days=900, start=START, level=0.0001, n_outbreaks=10, size=(30, 30),
                      duration=(10, 10), burn_in=365, seed=3)
    assert len(sim.outbreaks) == 10 and len({o.series for o in sim.outbreaks}) == 10
    for o in sim.outbreaks:
        assert o.start >= 365 and o.end < 900 and o.duration == 10
        # With a near-zero baseline the outbreak's cases are the series' cases in its window.
        assert abs(sim.counts[o.series, o.start:o.end + 1].sum() - o.size) <= 1
        assert 15 <= o.size <= 50


def test_evaluation_counts_detections_delays_and_false_alarms():
    alarm = np.zeros((3, 70), dtype=bool)
    outbreaks = [ob.Outbreak(0, 20, 10, 30), ob.Outbreak(1, 40, 7, 12)]
    alarm[0, 23] = alarm[0, 25] = True  # detected after 3 days
    alarm[1, 10] = True  # a false alarm before the outbreak; the outbreak itself is missed
    alarm[2, [5, 6]] = True  # two alarming days in a quiet series: one signal
    alarm[2, 9] = True  # and another
    perf = ob.evaluate(alarm, outbreaks)
    assert (perf.outbreaks, perf.detected, perf.median_delay_days, perf.false_alarms) == (2, 1, 3.0, 3)
    assert ob.evaluate(alarm, outbreaks, onsets=False).false_alarms == 4
    assert perf.detection_rate == 0.5
    assert perf.series_weeks == pytest.approx((3 * 70 - 10 - 7) / 7)
    assert perf.false_alarms_per_100_series_weeks == pytest.approx(100 * 3 / perf.series_weeks)


def test_weekly_evaluation_uses_week_steps():
    alarm = np.zeros((1, 10), dtype=bool)
    alarm[0, 4] = True  # week 4 covers days 28..34: the alarm is raised on day 34
    perf = ob.evaluate(alarm, [ob.Outbreak(0, 22, 14, 20)], days_per_step=7)  # weeks 3..5
    assert (perf.detected, perf.median_delay_days) == (1, 12.0)
    assert ob.weekly(np.arange(15, dtype=float)[None, :]).tolist() == [[21.0, 70.0]]


@pytest.mark.parametrize("kw", [{"n_series": 0}, {"season": "monsoon"}, {"n_outbreaks": 99},
                                {"dispersion": 0}])
def test_bad_simulation_arguments_are_refused(kw):
    args = {"n_series": 5, "n_days": 800, "start": START, **kw}
    with pytest.raises(Invalid) as exc:
        ob.simulate(**args)
    assert exc.value.code == "SURV-150"
