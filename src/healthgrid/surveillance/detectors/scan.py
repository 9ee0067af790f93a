"""Prospective space-time permutation scan statistic over counties, vectorised.

Source: Kulldorff M, Heffernan R, Hartman J, Assunção R, Mostashari F. "A space-time
permutation scan statistic for disease outbreak detection". PLoS Med 2005;2(3):e59.
Input: whole case counts ``counts[county, day]`` (the study period, last column = today) and
one centroid per county. No population is needed: the model compares each place's share of
recent cases with its share of all cases in the study period.

The model, as in the paper:

- c_zd = cases in county z on day d, C = all cases. Expected under no space-time interaction:
  mu_zd = (cases of z over all days) x (cases on d over all counties) / C. For a cylinder A
  (a set of counties x a set of days) mu_A = sum of mu_zd, which is
  (row total of its counties) x (column total of its days) / C.
- GLR: for c_A > mu_A, log LR = c ln(c/mu) + (C - c) ln((C - c)/(C - mu)); 0 otherwise (only
  excess risk is scanned for). The cylinder with the largest log LR is the most likely cluster.
- Monte Carlo inference: each replicate randomly permutes the case dates among the cases, which
  keeps both marginals (cases per county, cases per day), so every mu_A is the same in all
  replicates. p = (1 + replicates whose largest log LR >= the observed) / (1 + replicates).

Choices of this implementation (each a parameter where it is a choice):

- Cylinders: circles centred on each county centroid holding the counties whose centroids lie
  within the radius, i.e. the k nearest; counties at the same distance enter together (a circle
  cannot hold one and not the other), so on a regular grid a centre and 2 of its 4 equidistant
  neighbours is not a cylinder. Circles grow while they hold at most ``max_share`` (0.5) of the
  study period's cases (the permutation model has no population at risk; SaTScan counts the
  share in cases too), or of ``population`` when given.
- Time windows: prospective surveillance, so every window ends on the last day, of 1 ..
  ``max_days`` (7) days. (Windows ending earlier are of no use for today's alarm.)
- Distances: great-circle (haversine, mean Earth radius 6371.0088 km) from lon/lat degrees;
  ``metric="planar"`` takes coordinates already projected to km (x, y) and uses Euclid.
- ``min_cases`` (2): a cylinder with fewer observed cases is not a cluster (a single case is
  never an outbreak; SaTScan's default minimum for high-rate clusters). Applied alike to the
  replicates, so the test stays exact.
- Secondary clusters: the best cylinders whose counties do not overlap any better one (SaTScan's
  default "no geographical overlap"), each given a p-value against the same null distribution
  of the replicates' maxima (conservative for secondary clusters, as in SaTScan). All
  windows end on the last day, so overlapping in space means overlapping cylinders.
- Relative risk as SaTScan defines it: (c/mu) / ((C - c)/(C - mu)), the risk inside the
  cylinder over the risk outside; ``observed / expected`` is reported beside it (the paper's
  figure).
- Replicates are drawn in batches (memory bounded); rows are shuffled one after another from
  one ``numpy.random.default_rng(seed)``, so a seed gives the same result whatever the batch.

Counts must be whole and non-negative with no missing day (a permutation needs every case;
pass 0 for days without cases). With no case at all there is no cluster.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...errors import Invalid
from .threshold import as_counts

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
TIE_KM = 1e-9  # centroids closer in distance than this are "at the same distance"
BLOCK_ELEMENTS = 4_000_000  # ~32 MB of float64 per batch of replicate cylinders
METRICS = ("haversine", "planar")


class Cluster(NamedTuple):
    """One cylinder: counties (indices into the input, nearest the centre first) x days."""

    counties: np.ndarray
    centre: int
    radius_km: float
    first_day: int  # column index of the window's first day
    last_day: int  # always the last column (prospective)
    observed: int
    expected: float
    observed_over_expected: float
    relative_risk: float
    llr: float
    p_value: float


class ScanResult(NamedTuple):
    """Most likely cluster first, then the secondary ones; ``null_llr`` = each replicate's maximum."""

    clusters: tuple[Cluster, ...]
    total_cases: int
    null_llr: np.ndarray


class Circles(NamedTuple):
    """For each centre i: ``order[i, k]`` = k-th nearest county, ``radius[i, k]`` its distance;
    ``valid[i, k]`` when the k + 1 nearest form a circle within the size limit."""

    order: np.ndarray
    radius: np.ndarray
    valid: np.ndarray


def haversine_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Great-circle distance between every pair of points given in degrees: a square array, km."""
    lam, phi = np.radians(lon), np.radians(lat)
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distances(coords: object, n_counties: int, metric: str) -> np.ndarray:
    """Distance matrix in km from ``coords[county] = (lon, lat)`` or planar ``(x_km, y_km)``."""
    if metric not in METRICS:
        raise Invalid("SURV-145", f"metric must be one of {list(METRICS)}; got {metric!r}")
    try:
        xy = np.asarray(coords, dtype=float)
    except (TypeError, ValueError) as exc:
        raise Invalid("SURV-141", "coordinates must be numeric pairs, one per county") from exc
    if xy.shape != (n_counties, 2) or not np.isfinite(xy).all():
        raise Invalid("SURV-141", f"coordinates must be finite, shape ({n_counties}, 2); got {xy.shape}")
    if metric == "planar":
        return np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise Invalid("SURV-141", "coordinates must be (lon, lat) in degrees: |lon| <= 180, |lat| <= 90")
    return haversine_km(xy[:, 0], xy[:, 1])


def circles(dist: np.ndarray, weight: np.ndarray, max_share: float) -> Circles:
    """Circles around every centroid, up to ``max_share`` of the total ``weight``; ties enter together."""
    order = np.argsort(dist, axis=1, kind="stable")
    radius = np.take_along_axis(dist, order, axis=1)
    inside = np.cumsum(weight[order], axis=1)
    small = inside <= max_share * weight.sum() * (1 + 1e-12)
    closes = np.ones(radius.shape, dtype=bool)  # the next county is strictly farther away
    closes[:, :-1] = radius[:, 1:] - radius[:, :-1] > TIE_KM
    valid = small & closes
    k_max = max(1, int(np.max(np.nonzero(valid.any(axis=0))[0], initial=0)) + 1)
    return Circles(order[:, :k_max], radius[:, :k_max], valid[:, :k_max])


def expected(counts: np.ndarray) -> np.ndarray:
    """mu_zd = (row total of z) x (column total of d) / C, Kulldorff et al. 2005; 0 when C = 0."""
    total = counts.sum()
    if total == 0:
        return np.zeros(counts.shape)
    return np.outer(counts.sum(axis=1), counts.sum(axis=0)) / total


def log_lr(c: np.ndarray, mu: np.ndarray, total: float) -> np.ndarray:
    """c ln(c/mu) + (C - c) ln((C - c)/(C - mu)) where c > mu, else 0 (Kulldorff et al. 2005)."""
    c, mu = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(mu, dtype=float))
    high = c > mu
    rest = total - c
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = c * np.log(c / mu)
        outside = np.where(rest > 0, rest * np.log(rest / (total - mu)), 0.0)
    return np.where(high, inside + outside, 0.0)


def recent_sums(by_offset: np.ndarray) -> np.ndarray:
    """``by_offset[..., z, l]`` = cases l days before the last -> cases of the last l + 1 days."""
    return np.cumsum(by_offset, axis=-1)


def cylinder_counts(recent: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``recent[..., z, L]`` -> cases in every cylinder ``[..., centre, k, L]`` (k + 1 nearest counties)."""
    return np.cumsum(recent[..., order, :], axis=-2)


class Model(NamedTuple):
    """What every replicate shares: the circles, the expected counts, the constants."""

    circles: Circles
    mu: np.ndarray  # [centre, k, L]; +inf where (centre, k) is not a valid circle
    total: float
    min_cases: int
    max_days: int


def build_model(x: np.ndarray, circ: Circles, max_days: int, min_cases: int) -> Model:
    """Expected cases of every cylinder: circle's row total x window's column total / C."""
    total = float(x.sum())
    inside = np.cumsum(x.sum(axis=1)[circ.order], axis=1)
    days = np.cumsum(x.sum(axis=0)[::-1][:max_days])
    mu = inside[:, :, None] * days[None, None, :] / total
    mu[~circ.valid] = np.inf
    return Model(circ, mu, total, min_cases, max_days)


def cylinder_llr(counts_in: np.ndarray, model: Model) -> np.ndarray:
    """Log LR of every cylinder; 0 below ``min_cases`` and outside the valid circles."""
    llr = log_lr(counts_in, model.mu, model.total)
    return np.where(counts_in >= model.min_cases, llr, 0.0)


def case_slots(x: np.ndarray, max_days: int) -> tuple[np.ndarray, np.ndarray]:
    """One slot per case, most recent day first: the county of each case, and the day offset
    (0 = last day) of the slots that fall in the longest window."""
    n_counties, n_days = x.shape
    per_day = x[:, ::-1].T.astype(np.int64)  # [offset, county]
    labels = np.repeat(np.tile(np.arange(n_counties, dtype=np.int32), n_days), per_day.ravel())
    offsets = np.repeat(np.arange(max_days), per_day[:max_days].sum(axis=1))
    return labels, offsets


def null_maxima(x: np.ndarray, model: Model, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Largest log LR of each replicate, drawn in batches.

    Permuting the dates among the cases = shuffling the county labels over the date slots; only
    the slots inside the longest window are counted.
    """
    n_counties = x.shape[0]
    labels, offsets = case_slots(x, model.max_days)
    width = n_counties * model.max_days
    batch = max(1, BLOCK_ELEMENTS // max(model.mu.size, labels.size))
    out = np.empty(replicates)
    for first in range(0, replicates, batch):
        b = min(batch, replicates - first)
        shuffled = rng.permuted(np.broadcast_to(labels, (b, labels.size)), axis=1)[:, : offsets.size]
        index = np.arange(b)[:, None] * width + shuffled * model.max_days + offsets[None, :]
        by_offset = np.bincount(index.ravel(), minlength=b * width).reshape(b, n_counties, model.max_days)
        llr = cylinder_llr(cylinder_counts(recent_sums(by_offset), model.circles.order), model)
        out[first : first + b] = llr.reshape(b, -1).max(axis=1)
    return out


def best_per_circle(llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every (centre, k): the largest log LR over the windows, and that window's length index."""
    window = np.argmax(llr, axis=2)
    return np.take_along_axis(llr, window[..., None], axis=2)[..., 0], window


def pick_clusters(llr: np.ndarray, circ: Circles, max_clusters: int) -> list[tuple[int, int, int]]:
    """(centre, k, window index) of the best cylinder, then of the best ones sharing no county
    with any chosen before; stops at ``max_clusters`` or when no cylinder has log LR > 0."""
    best, window = best_per_circle(llr)
    used = np.zeros(circ.order.shape[0], dtype=bool)
    chosen: list[tuple[int, int, int]] = []
    while len(chosen) < max_clusters:
        overlap = np.cumsum(used[circ.order], axis=1) > 0
        free = np.where(overlap, 0.0, best)
        i, k = np.unravel_index(np.argmax(free), free.shape)
        if free[i, k] <= 0:
            break
        chosen.append((int(i), int(k), int(window[i, k])))
        used[circ.order[i, : k + 1]] = True
    return chosen


def describe(pick: tuple[int, int, int], counts_in: np.ndarray, model: Model, n_days: int,
             null: np.ndarray) -> Cluster:  # fmt: skip
    """The figures of one chosen cylinder."""
    i, k, w = pick
    c, mu, total = float(counts_in[i, k, w]), float(model.mu[i, k, w]), model.total
    llr = float(log_lr(c, mu, total))
    with np.errstate(divide="ignore"):
        rr = (c / mu) / ((total - c) / (total - mu)) if c < total else np.inf
    p = (1 + np.count_nonzero(null >= llr * (1 - 1e-12))) / (1 + null.size)
    return Cluster(
        counties=model.circles.order[i, : k + 1].copy(), centre=i, radius_km=float(model.circles.radius[i, k]),
        first_day=n_days - 1 - w, last_day=n_days - 1, observed=int(c), expected=mu,
        observed_over_expected=c / mu, relative_risk=float(rr), llr=llr, p_value=float(p),
    )  # fmt: skip


def whole_counts(counts: object) -> np.ndarray:
    """``counts[county, day]`` as floats holding whole, non-negative numbers with no gap."""
    x = as_counts(counts)
    if x.size and not (np.isfinite(x).all() and (x >= 0).all() and (x == np.round(x)).all()):
        raise Invalid("SURV-140", "the scan needs whole case counts >= 0 on every day (0, not NaN, for no cases)")
    return x


def _check(x: np.ndarray, max_share: float, max_days: int, replicates: int, min_cases: int, max_clusters: int,
           population: object) -> np.ndarray:  # fmt: skip
    """The circles' size weights (population, or cases); coded errors for bad settings."""
    if not 0 < max_share <= 1:
        raise Invalid("SURV-142", f"max_share must be in (0, 1]; got {max_share}")
    if not 1 <= max_days <= x.shape[1]:
        raise Invalid("SURV-143", f"max_days must be in 1..{x.shape[1]} (the days given); got {max_days}")
    if replicates < 1:
        raise Invalid("SURV-144", f"replicates must be >= 1; got {replicates}")
    if min_cases < 1 or max_clusters < 1:
        raise Invalid("SURV-146", f"min_cases and max_clusters must be >= 1; got {min_cases}, {max_clusters}")
    if population is None:
        return x.sum(axis=1)
    weight = np.asarray(population, dtype=float)
    if weight.shape != (x.shape[0],) or not (np.isfinite(weight).all() and (weight >= 0).all()):
        raise Invalid("SURV-147", f"population must be one number >= 0 per county ({x.shape[0]}); got {weight.shape}")
    return weight


def space_time_permutation(
    counts: object, coords: object, *, metric: str = "haversine", max_share: float = 0.5, max_days: int = 7,
    replicates: int = 999, seed: int | None = None, min_cases: int = 2, max_clusters: int = 5,
    population: object = None,
) -> ScanResult:  # fmt: skip
    """Prospective space-time permutation scan (Kulldorff et al. 2005) of ``counts[county, day]``.

    ``coords[county]`` = (lon, lat) in degrees, or (x, y) in km with ``metric="planar"``.
    Returns the most likely cluster and the non-overlapping secondary ones, each with its
    Monte Carlo p-value over ``replicates`` permutations drawn from ``seed``; clusters are
    reported whatever their p-value, the caller decides the cut-off.
    """
    x = whole_counts(counts)
    weight = _check(x, max_share, max_days, replicates, min_cases, max_clusters, population)
    circ = circles(distances(coords, x.shape[0], metric), weight, max_share)
    if x.sum() == 0:
        return ScanResult((), 0, np.zeros(0))
    model = build_model(x, circ, max_days, min_cases)
    observed = cylinder_counts(recent_sums(x[:, ::-1][:, :max_days]), circ.order)
    picks = pick_clusters(cylinder_llr(observed, model), circ, max_clusters)
    null = null_maxima(x, model, replicates, np.random.default_rng(seed))
    clusters = tuple(describe(p, observed, model, x.shape[1], null) for p in picks)
    return ScanResult(clusters, int(model.total), null)
