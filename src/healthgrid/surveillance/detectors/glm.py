"""Quasi-Poisson log-linear GLMs for many series sharing one design, fitted by batched IRLS.

The Farrington detectors fit, for every evaluated week, the same design (the baseline weeks of
that week) to thousands of series. :func:`fit_quasipoisson` does them all at once: arrays
``y[series, obs]``, ``x[obs, p]``, and the p x p normal equations ``X'WX`` for every series from
one matrix product ``w @ (x_i x_j)`` ([series, obs] x [obs, distinct products]), inverted with
``np.linalg.inv`` on [series, p, p].

It follows R's ``glm.fit(family = quasipoisson(link = "log"))`` step for step, so that the
thresholds built on it agree with R's ``surveillance`` package to rounding:

- start mu = y + 0.1, eta = log(mu) (the Poisson ``initialize``), whatever the prior weights;
- iterate z = eta + (y - mu)/mu, w = prior * mu, weighted least squares, mu = max(exp(eta),
  DBL_EPSILON) (R's ``poisson()$linkinv``);
- stop when |dev - dev_old| / (|dev| + 0.1) < 1e-8, at most 25 iterations (``glm.control``); a
  series that reaches 25 iterations is reported as not converged, and a series stops iterating
  as soon as it has converged, as each of R's separate fits does;
- like R, the working weights kept after the loop (used for the covariance, the hat values and
  the dispersion) are those the last iteration started from, while mu is the updated one;
- dispersion = sum(w * ((y - mu)/mu)^2) / (n_ok - rank), R's ``summary.glm`` for quasi families.

Observations with prior weight 0 (missing counts) are left out, as R's ``glm`` leaves out NA
rows. A design column with no weighted observation (a seasonal level whose weeks are all
missing) gets coefficient 0 and is not counted in the rank, where R reports NA and drops the
column: the fitted values are the same. Not reproduced: R's step halving when the deviance is
infinite (exp overflow at eta > 709, far beyond disease counts).

Normal equations rather than R's QR: with the time column centred on the predicted week
(:mod:`.farrington` does) they lose only a few digits, well inside the tolerance the R
comparison tests use. A batch holding a singular X'WX is inverted one series at a time with
``pinv`` (rare fallback: fewer observed baseline weeks than parameters; only that batch).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPSILON = 1e-8  # glm.control(epsilon)
MAXIT = 25  # glm.control(maxit)
DBL_EPSILON = np.finfo(float).eps
LOG_EPS = float(np.log(DBL_EPSILON))  # log of R's floor on mu


class GlmFit(NamedTuple):
    """One fit per series; ``cov_unscaled`` is (X'WX)^-1, ``dispersion`` the Pearson estimate."""

    coef: np.ndarray  # [S, p]
    mu: np.ndarray  # [S, n]
    weights: np.ndarray  # [S, n] working weights of the last iteration
    cov_unscaled: np.ndarray  # [S, p, p]
    dispersion: np.ndarray  # [S]
    df_residual: np.ndarray  # [S]
    converged: np.ndarray  # [S] bool


def y_log_y(y: np.ndarray) -> np.ndarray:
    """y log y, 0 at y = 0 (the deviance's saturated term, computed once per fit)."""
    return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)


def deviance(y: np.ndarray, ylogy: np.ndarray, mu: np.ndarray, log_mu: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Poisson deviance per series: 2 sum prior * (y log(y/mu) - (y - mu))."""
    return 2.0 * np.sum(prior * (ylogy - y * log_mu - y + mu), axis=-1)


def _solve(a: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solutions and inverses of the batch a[k, p, p]; per-series pinv if any is singular."""
    try:
        inv = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        inv = np.stack([np.linalg.pinv(m) for m in a])  # rare fallback: one loop over this batch
    return np.einsum("kij,kj->ki", inv, rhs), inv


def products(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of x_i x_j ([obs, k]) and where each of the p*p entries comes from.

    X'WX = (w @ columns)[:, index]: with an intercept, a trend and 0/1 seasonal dummies, 21
    distinct columns stand for 121 entries, so the batched product is six times smaller.
    Columns are matched by a projection and the match verified (all columns kept if it fails).
    """
    n_obs, p = x.shape
    outer = (x[:, :, None] * x[:, None, :]).reshape(n_obs, p * p)
    keys = np.sin(np.arange(1.0, n_obs + 1.0)) @ outer
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    columns = outer[:, first]
    if not np.array_equal(columns[:, index], outer):
        return outer, np.arange(p * p)
    return columns, index.reshape(-1)


def fit_quasipoisson(x: np.ndarray, y: np.ndarray, prior: np.ndarray) -> GlmFit:
    """Fit log E[y] = x @ beta for each row of ``y`` (NaN allowed where ``prior`` is 0)."""
    n_series, n_obs = y.shape
    p = x.shape[1]
    y = np.where(prior > 0, y, 0.0)
    ylogy = y_log_y(y)
    columns, index = products(x)
    absent = ((prior > 0).astype(float) @ (x != 0).astype(float)) == 0  # [S, p] columns with no data
    pad = absent[:, :, None] * np.eye(p)  # coefficient fixed at 0 for an absent column
    mu = y + 0.1
    eta = np.log(mu)
    dev_old = deviance(y, ylogy, mu, eta, prior)
    coef = np.zeros((n_series, p))
    weights = np.zeros((n_series, n_obs))
    cov = np.zeros((n_series, p, p))
    converged = np.zeros(n_series, dtype=bool)
    active = np.arange(n_series)
    for _ in range(MAXIT):
        if active.size == 0:
            break
        rows = slice(None) if active.size == n_series else active  # no copies while all iterate
        m, yy = mu[rows], y[rows]
        w = prior[rows] * m
        z = eta[rows] + (yy - m) / m
        a = (w @ columns)[:, index].reshape(-1, p, p) + pad[rows]
        beta, inv = _solve(a, (w * z) @ x)
        eta_new = beta @ x.T
        mu_new = np.maximum(np.exp(eta_new), DBL_EPSILON)
        dev = deviance(yy, ylogy[rows], mu_new, np.maximum(eta_new, LOG_EPS), prior[rows])
        coef[rows], weights[rows], cov[rows], eta[rows], mu[rows] = beta, w, inv, eta_new, mu_new
        done = np.abs(dev - dev_old[rows]) / (np.abs(dev) + 0.1) < EPSILON
        dev_old[rows] = dev
        converged[active[done]] = True
        active = active[~done]
    return _finish(GlmFit(coef, mu, weights, cov, np.empty(0), np.empty(0), converged), y, prior, absent)


def _finish(fit: GlmFit, y: np.ndarray, prior: np.ndarray, absent: np.ndarray) -> GlmFit:
    """Residual degrees of freedom and the Pearson dispersion (R ``summary.glm``)."""
    df = np.sum(prior > 0, axis=1) - (absent.shape[1] - absent.sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = np.sum(fit.weights * ((y - fit.mu) / fit.mu) ** 2, axis=1)
        dispersion = np.where(df > 0, pearson / df, np.nan)
    return fit._replace(dispersion=dispersion, df_residual=df)


def hat_values(x: np.ndarray, fit: GlmFit) -> np.ndarray:
    """Diagonal of the weighted hat matrix, w_i x_i' (X'WX)^-1 x_i, set to 1 above 1 - 10 eps (as R)."""
    h = fit.weights * np.sum((x @ fit.cov_unscaled) * x, axis=-1)
    return np.where(h > 1 - 10 * DBL_EPSILON, 1.0, h)
