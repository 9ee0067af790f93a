"""Farrington (1996) and improved Farrington (Noufaily et al. 2013) for weekly series, batched.

Sources: Farrington CP, Andrews NJ, Beale AD, Catchpole MA. "A statistical algorithm for the
early detection of outbreaks of infectious disease". J R Stat Soc A 1996;159:547-563.
Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A. "An improved algorithm
for outbreak detection in multiple surveillance systems". Stat Med 2013;32(7):1206-1222.
Reference implementation: R ``surveillance`` (1.20.3) ``algo.farrington`` (what
``farrington()`` runs), ``farringtonFlexible`` and their internals, read from the installed
package; the R comparison tests (tests/surveillance/test_r_reference.py) hold us to them.

For each evaluated week t, all series at once (:mod:`.glm`; the loop is over weeks only):

1. Baseline: :func:`farrington` takes weeks t - 52i - w .. t - 52i + w for i = 1..b (b years x
   (2w+1) weeks). :func:`flexible` and :func:`noufaily` take R's ``blocks``: those windows,
   and with ``periods`` > 1 also the weeks between them, cut into ``periods`` - 1 seasonal
   levels (the windows are level ``periods``), minus the last ``past_weeks_not_included``
   weeks and t. Weeks are counted by index (52 per year), as R does for an ``sts`` without
   dates; with dates R steps back calendar years, which drifts by a week over 5 years.
2. Quasi-Poisson log-linear GLM: intercept, time trend, seasonal factor. Reweighting: Anscombe
   residuals s_i (with hat values), weight gamma * s_i^-2 where s_i > threshold (1 in
   ``algo.farrington``, 2.58 advised by Noufaily), gamma otherwise, scaled to average 1;
   refit; phi = max(dispersion, 1).
3. The trend stays if b >= 3, its t test has p < ``p_trend`` (0.05; 1 for Noufaily) and the
   fitted mean at t does not exceed the baseline maximum; otherwise refit without it.
4. Upper bound at t. ``delta`` (Farrington): with mu0, its standard error and phi, the bound
   is (mu0^e + z * sd)^(1/e) for the power e (2/3 removes the skewness). ``nbplugin``
   (Noufaily): the (1 - alpha) quantile of a negative binomial with mean mu0 and variance
   phi * mu0 (Poisson when phi = 1). ``muan``: the same at a (1 - alpha) quantile of mu0.
5. limit54: no alarm, and no threshold (NaN), unless ``cases`` were reported over the last
   ``weeks`` weeks including t (5 in 4).

Statistic = the observed count, threshold = the upper bound, alarm as R decides it: score
(x - f)/(U - f) > 1 with f the fitted mean (the link-scale eta for ``nbplugin``/``muan``, a
quirk of R kept so alarms match), and x != 0 in the flexible variants. That is x > U except
when U < eta, possible only under extreme overdispersion; R gives no alarm there and so do we.

R's own quirks, reproduced so thresholds match:

- ``algo.farrington`` puts ``qnorm(1 - alpha/2)`` in the bound (its alpha is two-sided), and
  ``farringtonFlexible`` ``qnorm(1 - alpha)``; both default to alpha = 0.05.
- ``farringtonFlexible`` stores the reweighting weights in ``model$weights``, where
  ``summary.glm`` expects the working weights, so the dispersion its summary reports is
  sum(omega (y - mu)^2 / mu^2) / (n - p), roughly the Pearson dispersion over mu. That value is used for the trend's
  t test and, because ``dispersion`` is passed inside ``newdata`` of ``predict.glm``, for the
  standard error of mu0 (``delta`` and ``muan`` bounds). ``algo.farrington`` uses the Pearson
  dispersion for the t test and phi for the standard error. Both reproduced.
- If the fit without trend does not converge, ``algo.farrington`` uses it anyway and
  ``farringtonFlexible`` gives no result (NaN here).

Deliberate differences from R (each also noted in the tests):

- Weeks without a full baseline (t < 52b + w) are NaN; ``algo.farrington`` would use the part
  that exists (and warns), ``farringtonFlexible`` stops.
- Where limit54 holds back, the threshold is NaN; ``algo.farrington`` reports 0
  (``farringtonFlexible`` reports NA, as we do).
- Missing weeks (NaN): left out of the baseline fit, as ``farringtonFlexible`` does (R's
  ``algo.farrington`` fails); limit54 sums the weeks present, where R gives NA.
- ``periods`` must leave at least one week per level between windows; R then builds
  overlapping blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from ...errors import Invalid
from .glm import DBL_EPSILON, GlmFit, fit_quasipoisson, hat_values
from .special import nbinom_quantile, poisson_quantile, t_two_sided_p
from .threshold import Detection, as_counts

POWERS = {"2/3": 2.0 / 3.0, "1/2": 0.5, "none": 1.0}  # R powertrans; 2/3 is Farrington et al. 1996's
METHODS = ("delta", "nbplugin", "muan")


class Rules(NamedTuple):
    """Everything one run needs; built and checked by the public functions."""

    b: int
    w: int
    period: int
    alpha: float
    z: float
    reweight: bool
    weights_threshold: float
    trend: bool
    p_trend: float
    limit54: tuple[int, int]
    power: str
    periods: int
    past: int
    method: str
    flexible: bool


def farrington(
    counts: object, *, b: int = 5, w: int = 3, alpha: float = 0.05, weeks: int | Sequence[int] | None = None,
    reweight: bool = True, trend: bool = True, power: str = "2/3", limit54: tuple[int, int] = (5, 4),
    period: int = 52,
) -> Detection:  # fmt: skip
    """R ``algo.farrington`` / ``farrington()``: two-sided alpha, reweighting threshold 1, p < 0.05 trend."""
    _check_common(b, w, period, alpha, limit54, power)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    rules = Rules(b, w, period, alpha, z, reweight, 1.0, trend, 0.05, tuple(limit54), power, 1, w, "delta", False)
    return detect(counts, rules, weeks)


def flexible(
    counts: object, *, b: int = 5, w: int = 3, alpha: float = 0.05, weeks: int | Sequence[int] | None = None,
    reweight: bool = True, weights_threshold: float = 2.58, trend: bool = True, p_trend: float = 0.05,
    limit54: tuple[int, int] = (5, 4), power: str = "2/3", periods: int = 1,
    past_weeks_not_included: int | None = None, threshold_method: str = "delta", period: int = 52,
) -> Detection:  # fmt: skip
    """R ``farringtonFlexible`` with its defaults (one-sided alpha)."""
    _check_common(b, w, period, alpha, limit54, power)
    past = w if past_weeks_not_included is None else past_weeks_not_included
    _check_flexible(b, w, period, weights_threshold, p_trend, periods, past, threshold_method)
    z = NormalDist().inv_cdf(1 - alpha)
    rules = Rules(b, w, period, alpha, z, reweight, weights_threshold, trend, p_trend, tuple(limit54), power,
                  periods, past, threshold_method, True)  # fmt: skip
    return detect(counts, rules, weeks)


def noufaily(
    counts: object, *, b: int = 5, w: int = 3, alpha: float = 0.05, weeks: int | Sequence[int] | None = None,
    limit54: tuple[int, int] = (5, 4), period: int = 52,
) -> Detection:  # fmt: skip
    """Improved Farrington: ``farringtonFlexible`` with the settings its manual advises for Noufaily
    et al. (2013): 10 seasonal levels, reweighting threshold 2.58, last 26 weeks left out,
    trend kept whenever it does not extrapolate (p_trend = 1), negative binomial plug-in bound.
    """
    return flexible(counts, b=b, w=w, alpha=alpha, weeks=weeks, weights_threshold=2.58, p_trend=1.0,
                    limit54=limit54, periods=10, past_weeks_not_included=26, threshold_method="nbplugin",
                    period=period)  # fmt: skip


def _check_common(b: int, w: int, period: int, alpha: float, limit54: tuple[int, int], power: str) -> None:
    if not (b >= 1 and w >= 0 and period >= 2 * w + 1):
        raise Invalid("SURV-120", f"need b >= 1 years, w >= 0 and period >= 2w + 1; got b={b}, w={w}, period={period}")
    if not 0 < alpha < 1:
        raise Invalid("SURV-121", f"alpha must be in (0, 1); got {alpha}")
    if len(limit54) != 2 or not (limit54[0] >= 0 and limit54[1] >= 1):
        raise Invalid("SURV-122", f"limit54 must be (cases >= 0, weeks >= 1); got {limit54}")
    if power not in POWERS:
        raise Invalid("SURV-123", f"power must be one of {sorted(POWERS)}; got {power!r}")


def _check_flexible(
    b: int, w: int, period: int, weights_threshold: float, p_trend: float, periods: int, past: int, method: str
) -> None:
    if method not in METHODS:
        raise Invalid("SURV-124", f"threshold_method must be one of {list(METHODS)}; got {method!r}")
    if not (periods >= 1 and (periods == 1 or period - 2 * w - 1 >= periods - 1)):
        raise Invalid("SURV-125", f"periods must be >= 1 and leave a week per level between windows; got {periods}")
    if not (weights_threshold > 0 and 0 < p_trend <= 1 and 0 <= past < period):
        raise Invalid(
            "SURV-127",
            "need weights_threshold > 0, 0 < p_trend <= 1, 0 <= past_weeks_not_included < period; "
            f"got {weights_threshold}, {p_trend}, {past}",
        )


def evaluated_weeks(weeks: int | Sequence[int] | None, n_weeks: int, first: int) -> np.ndarray:
    """0-based weeks to evaluate: all with a full baseline (None), the last ``weeks``, or a list."""
    if weeks is None:
        return np.arange(first, n_weeks)
    if isinstance(weeks, (int, np.integer)):
        if not 1 <= weeks <= n_weeks:
            raise Invalid("SURV-126", f"weeks must be between 1 and {n_weeks}; got {weeks}")
        return np.arange(n_weeks - weeks, n_weeks)
    idx = np.asarray(weeks)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or np.any((idx < 0) | (idx >= n_weeks)):
        raise Invalid("SURV-126", f"weeks must be a list of week indices in 0..{n_weeks - 1}")
    return np.unique(idx)


def reference_weeks(t: int, *, b: int, w: int, period: int) -> np.ndarray:
    """``algo.farrington``'s baseline for week t: t - period*i + (-w..w), i = b..1 (may be < 0)."""
    return np.concatenate([np.arange(t - period * i - w, t - period * i + w + 1) for i in range(b, 0, -1)])


def seasonal_blocks(t: int, *, b: int, w: int, period: int, periods: int, past: int) -> tuple[np.ndarray, np.ndarray]:
    """R ``blocks`` (farringtonFlexible) for week t: baseline weeks and their level 1..periods.

    Needs t >= period*b + w. Windows around t - period*i (and t itself) are level ``periods``;
    the gap after each window is cut into periods - 1 runs, longer runs first.
    """
    level = np.zeros(t + 1, dtype=int)
    level[t - w : t + 1] = periods
    for i in range(1, b + 1):
        ref = t - period * i
        level[ref - w : ref + w + 1] = periods
        if periods > 1:
            gap = period - 2 * w - 1
            sizes = np.full(periods - 1, gap // (periods - 1))
            sizes[: gap % (periods - 1)] += 1
            starts = ref + w + 1 + np.concatenate([[0], np.cumsum(sizes)])
            for j in range(periods - 1):
                level[starts[j] : starts[j + 1]] = j + 1
    level[max(t - past, 0) :] = 0
    rows = np.flatnonzero(level)
    return rows, level[rows]


def design(t: int, rules: Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Baseline rows, the design without trend (intercept + level dummies, reference = the
    current-week level, so the prediction at t is the intercept) and the time column (centred on t).
    """
    if rules.flexible:
        rows, levels = seasonal_blocks(t, b=rules.b, w=rules.w, period=rules.period, periods=rules.periods,
                                       past=rules.past)  # fmt: skip
    else:
        rows = reference_weeks(t, b=rules.b, w=rules.w, period=rules.period)
        levels = np.full(rows.size, rules.periods)
    dummies = [(levels == j).astype(float) for j in np.unique(levels) if j != rules.periods]
    base = np.column_stack([np.ones(rows.size), *dummies])
    return rows, base, (rows - t).astype(float)


def anscombe_weights(s: np.ndarray, present: np.ndarray, threshold: float) -> np.ndarray:
    """R ``algo.farrington.assign.weights``: gamma * s^-2 above ``threshold``, gamma below, mean 1.

    Rows not ``present`` get weight 0; an infinite residual (hat value 1) gets weight 0, as in R.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        big = present & (s > threshold)
        inv2 = np.where(big, 1.0 / (s * s), 1.0)
        gamma = present.sum(axis=1) / np.sum(np.where(present, inv2, 0.0), axis=1)
    return np.where(present, gamma[:, None] * inv2, 0.0)


class Fitted(NamedTuple):
    """A reweighted fit, whether the first fit converged, and the dispersion R's summary reports."""

    fit: GlmFit
    converged: np.ndarray
    summary_dispersion: np.ndarray


def _fit(x: np.ndarray, y: np.ndarray, present: np.ndarray, rules: Rules) -> Fitted:
    """Fit, reweight with Anscombe residuals and refit (step 2)."""
    first = fit_quasipoisson(x, y, present.astype(float))
    if not rules.reweight:
        return Fitted(first, first.converged, first.dispersion)
    phi = np.maximum(first.dispersion, 1.0)
    yy = np.where(present, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.5 * (yy ** (2 / 3) * first.mu ** (-1 / 6) - np.sqrt(first.mu))
        s = s / np.sqrt(phi[:, None] * (1.0 - hat_values(x, first)))
    omega = anscombe_weights(s, present, rules.weights_threshold)
    fit = fit_quasipoisson(x, y, omega)
    if not rules.flexible:
        return Fitted(fit, first.converged, fit.dispersion)
    # farringtonFlexible stores omega in model$weights, where summary.glm expects the working weights
    with np.errstate(divide="ignore", invalid="ignore"):
        summary = np.sum(omega * ((yy - fit.mu) / fit.mu) ** 2, axis=1) / fit.df_residual
    return Fitted(fit, first.converged, np.where(fit.df_residual > 0, summary, np.nan))


class Prediction(NamedTuple):
    """The chosen model's prediction at t, per series."""

    eta: np.ndarray  # log mean
    var_link: np.ndarray  # x0' (X'WX)^-1 x0 (unscaled)
    phi: np.ndarray  # max(dispersion, 1)
    summary_dispersion: np.ndarray  # what R's summary.glm reports for the model object
    usable: np.ndarray  # bool


def predict(y: np.ndarray, base: np.ndarray, time: np.ndarray, rules: Rules) -> Prediction:
    """Fit with trend, keep it where the Farrington conditions hold, else refit without (step 3)."""
    present = ~np.isnan(y)
    out = Prediction(*(np.full(y.shape[0], np.nan) for _ in range(4)), np.zeros(y.shape[0], dtype=bool))
    keep = np.zeros(y.shape[0], dtype=bool)
    if rules.trend:
        x = np.column_stack([base[:, :1], time, base[:, 1:]])
        fitted = _fit(x, y, present, rules)
        fit = fitted.fit
        with np.errstate(divide="ignore", invalid="ignore"):
            t = fit.coef[:, 1] / np.sqrt(fitted.summary_dispersion * fit.cov_unscaled[:, 1, 1])
        mu0 = np.maximum(np.exp(np.minimum(fit.coef[:, 0], 709.0)), DBL_EPSILON)
        ymax = np.max(np.where(present, y, -np.inf), axis=1)
        p = t_two_sided_p(t, fit.df_residual)
        keep = fitted.converged & (rules.b >= 3) & (p < rules.p_trend) & (mu0 <= ymax)
        _store(out, keep, fitted)
    rest = np.flatnonzero(~keep)
    fitted = _fit(base, y[rest], present[rest], rules)
    _store(out, rest, fitted)
    out.usable[rest] = fitted.converged | (not rules.flexible)
    return out


def _store(out: Prediction, where: np.ndarray, fitted: Fitted) -> None:
    pick = (lambda a: a[where]) if where.dtype == bool else (lambda a: a)
    out.eta[where] = pick(fitted.fit.coef[:, 0])
    out.var_link[where] = pick(fitted.fit.cov_unscaled[:, 0, 0])
    out.phi[where] = pick(np.maximum(fitted.fit.dispersion, 1.0))
    out.summary_dispersion[where] = pick(fitted.summary_dispersion)
    out.usable[where] = True


def delta_bound(mu0: np.ndarray, se: np.ndarray, phi: np.ndarray, z: float, power: str) -> np.ndarray:
    """Farrington et al. 1996 (R ``algo.farrington.threshold``): (mu0^e + z * sd)^(1/e), sd by the delta method."""
    tau = phi + se**2 / mu0
    e = POWERS[power]
    sd = {"2/3": np.sqrt(4 / 9 * mu0 ** (1 / 3) * tau), "1/2": np.sqrt(tau / 4), "none": np.sqrt(mu0 * tau)}[power]
    return (mu0**e + z * sd) ** (1 / e)


def nb_bound(mean: np.ndarray, phi: np.ndarray, alpha: float) -> np.ndarray:
    """Noufaily et al. 2013: (1 - alpha) quantile of NB(size = mean/(phi-1), prob = 1/phi), Poisson at phi = 1."""
    upper = np.full(mean.shape, np.nan)
    nb, pois = (phi > 1) & np.isfinite(mean), (phi == 1) & np.isfinite(mean)
    upper[nb] = nbinom_quantile(1 - alpha, mean[nb] / (phi[nb] - 1), 1 / phi[nb])
    upper[pois] = poisson_quantile(1 - alpha, mean[pois])
    return upper


def bound(pred: Prediction, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound and the fitted value R's score compares with (mu0, or eta for the NB methods)."""
    # algo.farrington scales the prediction's standard error by phi; farringtonFlexible (see the
    # module docstring) by its summary dispersion
    scale = pred.summary_dispersion if rules.flexible else pred.phi
    with np.errstate(over="ignore", invalid="ignore"):
        if rules.method == "delta":
            mu0 = np.maximum(np.exp(pred.eta), DBL_EPSILON)
            se = np.sqrt(pred.var_link * scale) * mu0
            return delta_bound(mu0, se, pred.phi, rules.z, rules.power), mu0
        shift = rules.z * np.sqrt(pred.var_link * scale) if rules.method == "muan" else 0.0
        return nb_bound(np.exp(pred.eta + shift), pred.phi, rules.alpha), pred.eta


def enough_cases(x: np.ndarray, t: int, limit54: tuple[int, int]) -> np.ndarray:
    """limit54 (Farrington et al. 1996, section 3.8 per R's manual): >= cases in the last weeks, t included."""
    cases, weeks = limit54
    return np.nansum(x[:, max(t - weeks + 1, 0) : t + 1], axis=1) >= cases


def detect(counts: object, rules: Rules, weeks: int | Sequence[int] | None) -> Detection:
    """Run ``rules`` on every evaluated week; weeks without a full baseline stay NaN."""
    x = as_counts(counts)
    first = rules.period * rules.b + rules.w
    upper = np.full(x.shape, np.nan)
    alarm = np.zeros(x.shape, dtype=bool)
    for t in evaluated_weeks(weeks, x.shape[1], first):
        if t < first:
            continue
        rows, base, time = design(int(t), rules)
        pred = predict(x[:, rows], base, time, rules)
        u, fitted = bound(pred, rules)
        obs = x[:, t]
        ok = pred.usable & enough_cases(x, int(t), rules.limit54) & ~np.isnan(obs) & ~np.isnan(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = (obs - fitted) / (u - fitted)
        alarm[:, t] = ok & (score > 1) & ((obs != 0) | (not rules.flexible))
        upper[:, t] = np.where(ok, u, np.nan)
    return Detection(np.where(np.isnan(upper), np.nan, x), upper, alarm)
