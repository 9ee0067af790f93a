"""Space-time permutation scan: hand-computed expected counts and log LRs, an exact permutation
p-value by enumeration, an injected cluster found, noise not flagged, determinism, coded errors.

Neither R ``scanstatistics`` nor ``rsatscan`` is installed (not in Debian) and SaTScan is not
available offline, so the hand computations below are the reference.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance.detectors import scan

# Two counties, three days. C = 8; county totals 4, 4; day totals 3, 2, 3.
TINY = np.array([[1, 0, 3], [2, 2, 0]], dtype=float)
TWO_POINTS = [(0.0, 0.0), (10.0, 0.0)]
LLR_C0_LAST_DAY = 3 * math.log(3 / 1.5) + 5 * math.log(5 / 6.5)  # c = 3, mu = 4 x 3 / 8


def tiny(coords=TWO_POINTS, **settings):
    return scan.space_time_permutation(TINY, coords, **{"max_days": 2, **settings})


def grid(side: int, step: float = 10.0) -> np.ndarray:
    return np.array([(step * i, step * j) for i in range(side) for j in range(side)])


def noise(seed: int, n_counties: int, n_days: int) -> np.ndarray:
    """Poisson counts, county rates x a weekday effect: no space-time interaction."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(4, 0.5, n_counties)[:, None] * (1 + 0.3 * (np.arange(n_days) % 7 < 5))[None, :]
    return rng.poisson(rate).astype(float)


def plus_around(xy: np.ndarray, centre: int, step: float = 10.0) -> list[int]:
    return sorted(np.nonzero(np.hypot(*(xy - xy[centre]).T) <= step + 1e-9)[0].tolist())


# --- hand-computed pieces -----------------------------------------------------------------------


def test_expected_is_row_total_times_column_total_over_grand_total():
    np.testing.assert_allclose(scan.expected(TINY), [[1.5, 1.0, 1.5], [1.5, 1.0, 1.5]])
    assert scan.expected(np.zeros((2, 3))).sum() == 0


@pytest.mark.parametrize(
    ("c", "mu", "total", "llr"),
    [
        (3, 1.5, 8, LLR_C0_LAST_DAY),
        (3, 2.5, 8, 3 * math.log(3 / 2.5) + 5 * math.log(5 / 5.5)),
        (2, 2.5, 8, 0.0),  # fewer than expected: not scanned for
        (2, 2.0, 8, 0.0),
        (8, 2.0, 8, 8 * math.log(4)),  # every case inside: the outside term vanishes
    ],
)
def test_log_likelihood_ratio_by_hand(c, mu, total, llr):
    assert scan.log_lr(c, mu, total) == pytest.approx(llr)


def test_tiny_example_most_likely_cluster_by_hand():
    found = tiny(metric="planar", min_cases=1, seed=1, replicates=99)
    best = found.clusters[0]
    assert best.counties.tolist() == [0] and best.centre == 0 and best.radius_km == 0
    assert (best.first_day, best.last_day) == (2, 2)
    assert (best.observed, best.expected) == (3, pytest.approx(1.5))
    assert best.observed_over_expected == pytest.approx(2.0)
    assert best.relative_risk == pytest.approx((3 / 1.5) / (5 / 6.5))
    assert best.llr == pytest.approx(LLR_C0_LAST_DAY)
    assert found.total_cases == 8 and len(found.clusters) == 1  # county 1 has no excess anywhere


def test_monte_carlo_p_value_matches_exact_enumeration():
    """All C(8,4) = 70 ways to give the 8 date slots to county 0's four cases are equally likely."""
    slots = np.array([2, 2, 2, 1, 1, 0, 0, 0])  # the day of each case slot (day totals 3, 2, 3)
    observed_best = LLR_C0_LAST_DAY
    at_least = 0
    for mine in itertools.combinations(range(8), 4):
        county0 = np.zeros(8, dtype=bool)
        county0[list(mine)] = True
        table = np.array([[np.sum(county0 & (slots == d)) for d in range(3)], [0, 0, 0]])
        table[1] = [3, 2, 3] - table[0]
        mu = scan.expected(table)
        best = max(
            float(scan.log_lr(table[z, 3 - length :].sum(), mu[z, 3 - length :].sum(), 8))
            for z in range(2)
            for length in (1, 2)
        )
        at_least += best >= observed_best - 1e-12
    assert at_least == 10  # of 70
    exact = at_least / 70
    found = tiny(metric="planar", min_cases=1, seed=7, replicates=20_000)
    assert found.clusters[0].p_value == pytest.approx(exact, abs=0.01)


def test_single_case_is_not_a_cluster_by_default():
    counts = np.array([[0, 0, 1], [3, 3, 0]], dtype=float)
    assert scan.space_time_permutation(counts, TWO_POINTS, metric="planar", max_days=1, replicates=9).clusters == ()
    one = scan.space_time_permutation(counts, TWO_POINTS, metric="planar", max_days=1, min_cases=1, replicates=9)
    assert one.clusters[0].counties.tolist() == [0]
    assert one.clusters[0].llr == pytest.approx(math.log(7) + 6 * math.log(6 / (7 - 1 / 7)))  # mu = 1 x 1 / 7


def test_counties_at_the_same_distance_enter_the_circle_together():
    xy = np.array([(0, 0), (10, 0), (-10, 0), (0, 10), (0, -10)], dtype=float)
    circ = scan.circles(scan.distances(xy, 5, "planar"), np.ones(5), 1.0)
    assert circ.valid[0].tolist() == [True, False, False, False, True]


def test_circles_stop_at_the_maximum_share():
    xy = np.array([(0, 0), (1, 0), (3, 0), (6, 0)], dtype=float)
    circ = scan.circles(scan.distances(xy, 4, "planar"), np.array([1.0, 1.0, 1.0, 1.0]), 0.5)
    assert circ.order.shape[1] == 2  # never more than 2 of 4 equal weights
    assert circ.valid.all()


def test_haversine_one_degree():
    arc = 2 * math.pi * scan.EARTH_RADIUS_KM / 360
    dist = scan.distances([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)], 3, "haversine")
    assert dist[0, 1] == pytest.approx(arc) and dist[0, 2] == pytest.approx(arc)
    assert dist[1, 2] == pytest.approx(dist[2, 1]) and dist[1, 1] == 0


# --- behaviour on synthetic grids --------------------------------------------------------------


def test_injected_cluster_is_found_with_its_counties_and_days():
    xy = grid(8)
    counts = noise(0, 64, 56)
    cluster = plus_around(xy, 27)  # county 27 and its four neighbours, 10 km away
    counts[cluster, -3:] += 4
    found = scan.space_time_permutation(counts, xy, metric="planar", seed=11)
    best = found.clusters[0]
    assert sorted(best.counties.tolist()) == cluster
    assert (best.first_day, best.last_day) == (53, 55)
    assert best.p_value < 0.05 and best.observed > best.expected


def test_two_injected_clusters_come_out_as_primary_and_secondary():
    xy = grid(8)
    counts = noise(1, 64, 56)
    strong, weaker = plus_around(xy, 18), plus_around(xy, 45)
    counts[strong, -3:] += 5
    counts[weaker, -2:] += 5
    found = scan.space_time_permutation(counts, xy, metric="planar", seed=2)
    first, second = found.clusters[:2]
    assert sorted(first.counties.tolist()) == strong and sorted(second.counties.tolist()) == weaker
    assert first.p_value < 0.05 and second.p_value < 0.05
    assert first.llr >= second.llr
    chosen = [set(c.counties.tolist()) for c in found.clusters]
    assert all(a.isdisjoint(b) for a, b in itertools.combinations(chosen, 2))


def test_pure_noise_gives_no_significant_cluster():
    found = scan.space_time_permutation(noise(3, 64, 56), grid(8), metric="planar", seed=5)
    assert found.clusters[0].p_value > 0.2
    assert found.null_llr.shape == (999,)


def test_same_seed_same_result_and_batches_do_not_matter(monkeypatch):
    counts, xy = noise(4, 36, 28), grid(6)
    one = scan.space_time_permutation(counts, xy, metric="planar", seed=9, replicates=50)
    two = scan.space_time_permutation(counts, xy, metric="planar", seed=9, replicates=50)
    np.testing.assert_array_equal(one.null_llr, two.null_llr)
    assert [c.p_value for c in one.clusters] == [c.p_value for c in two.clusters]
    monkeypatch.setattr(scan, "BLOCK_ELEMENTS", 1)  # one replicate per batch
    np.testing.assert_array_equal(scan.space_time_permutation(counts, xy, metric="planar", seed=9,
                                                              replicates=50).null_llr, one.null_llr)  # fmt: skip
    other = scan.space_time_permutation(counts, xy, metric="planar", seed=10, replicates=50)
    assert not np.array_equal(other.null_llr, one.null_llr)


def test_no_cases_no_cluster():
    found = scan.space_time_permutation(np.zeros((2, 5)), [(116.4, 39.9), (121.5, 31.2)], max_days=3)
    assert found.clusters == () and found.total_cases == 0


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: scan.space_time_permutation(np.array([[1, np.nan]]), [(0, 0)]), "SURV-140"),
        (lambda: scan.space_time_permutation(np.array([[1, -1]]), [(0, 0)]), "SURV-140"),
        (lambda: scan.space_time_permutation(np.array([[1, 0.5]]), [(0, 0)]), "SURV-140"),
        (lambda: scan.space_time_permutation(np.ones(3), [(0, 0)]), "SURV-102"),
        (lambda: tiny(coords=[(0, 0)]), "SURV-141"),
        (lambda: tiny(coords=[(0, 0), (0, "x")]), "SURV-141"),
        (lambda: tiny(coords=[(0, 0), (0, 95)]), "SURV-141"),
        (lambda: tiny(max_share=0), "SURV-142"),
        (lambda: tiny(max_days=4), "SURV-143"),
        (lambda: tiny(replicates=0), "SURV-144"),
        (lambda: tiny(metric="manhattan"), "SURV-145"),
        (lambda: tiny(min_cases=0), "SURV-146"),
        (lambda: tiny(population=[1, -1]), "SURV-147"),
        (lambda: tiny(population=[1]), "SURV-147"),
    ],
)
def test_bad_input_is_a_coded_error(call, code):
    with pytest.raises(Invalid) as err:
        call()
    assert err.value.code == code
