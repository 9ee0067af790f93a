"""Distribution functions the Farrington detectors need, vectorised, in plain NumPy.

NumPy has no log-gamma or incomplete beta/gamma function and SciPy is not a runtime dependency,
so the few that :mod:`.farrington` needs are here:

- :func:`lgamma` — Lanczos approximation (g = 7, 9 terms; Press et al., *Numerical Recipes*,
  3rd ed. 2007, §6.1), relative error about 1e-15 for x > 0.
- :func:`betainc` — regularised incomplete beta I_x(a, b) by Lentz's continued fraction
  (Numerical Recipes §6.4), used for the t test of the trend and the negative binomial CDF.
- :func:`gammaincc` — regularised upper incomplete gamma Q(a, x): series / continued fraction
  (Numerical Recipes §6.2), used for the Poisson CDF.
- :func:`t_two_sided_p` — R's ``2 * pt(-|t|, df)``, as ``summary.glm`` reports it.
- :func:`nbinom_quantile`, :func:`poisson_quantile` — R's ``qnbinom(p, size, prob)`` and
  ``qpois(p, lambda)``: the smallest integer y with CDF(y) >= p, searched from R's
  Cornish-Fisher start (R ``src/nmath/qnbinom.c``, ``qpois.c``), stepping with the pmf.

Accuracy is about 1e-12 relative on the CDFs, so a quantile can differ from R's only when a
CDF value lies within that distance of p.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

_LANCZOS_G = 7.0
_LANCZOS = np.array([
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
])  # fmt: skip
_TINY = 1e-300
_EPS = np.finfo(float).eps
_MAXIT = 20_000


def lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0 (NaN elsewhere)."""
    x = np.asarray(x, dtype=float)
    small = x < 0.5  # lgamma(x) = lgamma(x + 1) - log(x) keeps the Lanczos series where it is exact
    z = np.where(small, x + 1.0, x) - 1.0
    series = _LANCZOS[0] + sum(c / (z + i) for i, c in enumerate(_LANCZOS[1:], start=1))
    t = z + _LANCZOS_G + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 0.5 * np.log(2 * np.pi) + (z + 0.5) * np.log(t) - t + np.log(series)
        out = np.where(small, out - np.log(x), out)
    return np.where(x > 0, out, np.nan)


def _lentz(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Continued fraction of the incomplete beta (Numerical Recipes ``betacf``), elementwise."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    active = np.ones(x.shape, dtype=bool)
    for m in range(1, _MAXIT):
        if not active.any():
            break
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + num / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            delta = d * c
            h = np.where(active, h * delta, h)
        active &= np.abs(delta - 1.0) > 1e-15
    return h


def betainc(a: object, b: object, x: object) -> np.ndarray:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, x)))
    out = np.full(x.shape, np.nan)
    ok = (a > 0) & (b > 0) & (x >= 0) & (x <= 1)
    out[ok & (x == 0)] = 0.0
    out[ok & (x == 1)] = 1.0
    inner = ok & (x > 0) & (x < 1)
    if inner.any():
        aa, bb, xx = a[inner], b[inner], x[inner]
        flip = xx > (aa + 1.0) / (aa + bb + 2.0)  # I_x(a, b) = 1 - I_{1-x}(b, a) converges faster
        pa, pb, px = np.where(flip, bb, aa), np.where(flip, aa, bb), np.where(flip, 1.0 - xx, xx)
        log_front = pa * np.log(px) + pb * np.log1p(-px) - (lgamma(pa) + lgamma(pb) - lgamma(pa + pb))
        part = np.exp(log_front) * _lentz(pa, pb, px) / pa
        out[inner] = np.where(flip, 1.0 - part, part)
    return out


def gammaincc(a: object, x: object) -> np.ndarray:
    """Regularised upper incomplete gamma Q(a, x) for a > 0, x >= 0."""
    a, x = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(x, dtype=float))
    out = np.full(x.shape, np.nan)
    ok = (a > 0) & (x >= 0)
    out[ok & (x == 0)] = 1.0
    series, fraction = ok & (x > 0) & (x < a + 1.0), ok & (x >= a + 1.0)
    if series.any():
        out[series] = 1.0 - _gamma_series(a[series], x[series])
    if fraction.any():
        out[fraction] = _gamma_fraction(a[fraction], x[fraction])
    return out


def _gamma_series(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(a, x) by its series (Numerical Recipes ``gser``)."""
    ap, term = a.copy(), 1.0 / a
    total = term.copy()
    active = np.ones(a.shape, dtype=bool)
    for _ in range(_MAXIT):
        if not active.any():
            break
        ap = ap + 1.0
        term = np.where(active, term * x / ap, 0.0)
        total += term
        active &= np.abs(term) > np.abs(total) * 1e-16
    return total * np.exp(-x + a * np.log(x) - lgamma(a))


def _gamma_fraction(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Q(a, x) by its continued fraction (Numerical Recipes ``gcf``, modified Lentz)."""
    b = x + 1.0 - a
    c = np.full(a.shape, 1.0 / _TINY)
    d = 1.0 / b
    h = d.copy()
    active = np.ones(a.shape, dtype=bool)
    for i in range(1, _MAXIT):
        if not active.any():
            break
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        delta = d * c
        h = np.where(active, h * delta, h)
        active &= np.abs(delta - 1.0) > 1e-15
    return np.exp(-x + a * np.log(x) - lgamma(a)) * h


def t_two_sided_p(t: object, df: object) -> np.ndarray:
    """P(|T_df| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2); NaN where df <= 0 or t is NaN."""
    t, df = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = np.where(np.isinf(t), 0.0, df / (df + t * t))
    return betainc(df / 2.0, 0.5, x)


def nbinom_quantile(p: float, size: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """R ``qnbinom(p, size, prob)``: smallest y with P(Y <= y) >= p (0 when size == 0)."""
    size, prob = np.broadcast_arrays(np.asarray(size, dtype=float), np.asarray(prob, dtype=float))
    out = np.where((size >= 0) & (prob > 0) & (prob <= 1) & np.isfinite(size), 0.0, np.nan)
    live = (out == 0) & (size > 0) & (prob < 1)
    r, pr = size[live], prob[live]
    q, pp = 1.0 / pr, (1.0 - pr) / pr
    log_prob, log_1mp = np.log(pr), np.log1p(-pr)

    def cdf(y: np.ndarray) -> np.ndarray:
        return betainc(r, y + 1.0, pr)

    def pmf(y: np.ndarray) -> np.ndarray:
        return np.exp(lgamma(y + r) - lgamma(r) - lgamma(y + 1.0) + r * log_prob + y * log_1mp)

    def ratio(y: np.ndarray) -> np.ndarray:  # pmf(y + 1) / pmf(y)
        return (y + r) / (y + 1.0) * (1.0 - pr)

    sd = np.sqrt(r * pp * q)
    out[live] = _discrete_quantile(p, r * pp, sd, (q + pp) / sd, cdf, pmf, ratio)
    return out


def poisson_quantile(p: float, lam: np.ndarray) -> np.ndarray:
    """R ``qpois(p, lambda)``: smallest y with P(Y <= y) >= p (0 when lambda == 0)."""
    lam = np.asarray(lam, dtype=float)
    out = np.where((lam >= 0) & np.isfinite(lam), 0.0, np.nan)
    live = (out == 0) & (lam > 0)
    mu = lam[live]
    log_mu = np.log(mu)

    def cdf(y: np.ndarray) -> np.ndarray:
        return gammaincc(y + 1.0, mu)

    def pmf(y: np.ndarray) -> np.ndarray:
        return np.exp(y * log_mu - mu - lgamma(y + 1.0))

    def ratio(y: np.ndarray) -> np.ndarray:
        return mu / (y + 1.0)

    out[live] = _discrete_quantile(p, mu, np.sqrt(mu), 1.0 / np.sqrt(mu), cdf, pmf, ratio)
    return out


def _discrete_quantile(p: float, mean, sd, skew, cdf, pmf, ratio) -> np.ndarray:  # noqa: ANN001
    """Cornish-Fisher start (as R's nmath), then step down or up by one with the pmf."""
    z = NormalDist().inv_cdf(p)
    y = np.maximum(np.round(mean + sd * (z + skew * (z * z - 1.0) / 6.0)), 0.0)
    c, f = cdf(y), pmf(y)
    down = c >= p
    while True:  # down while CDF(y - 1) = CDF(y) - pmf(y) is still >= p
        step = down & (y > 0) & (c - f >= p)
        if not step.any():
            break
        c, y = np.where(step, c - f, c), np.where(step, y - 1.0, y)
        f = np.where(step, f / ratio(y), f)
    while True:  # up while CDF(y) < p: CDF(y + 1) = CDF(y) + pmf(y + 1)
        step = ~down & (c < p)
        if not step.any():
            break
        f = np.where(step, f * ratio(y), f)
        y = np.where(step, y + 1.0, y)
        c = np.where(step, c + f, c)
    return y
