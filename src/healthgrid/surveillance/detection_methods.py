"""The detectors applied to the platform's matrices (:mod:`.detection_data`): which method
watches which stream, with the configured parameters, and the alarms they give on the days
detected. One detector call per method over the whole matrix (the moving percentile: one per
distinct P_x; the scan: one per disease and day, each over all counties at once).

- ``case:<disease>`` — the fixed threshold (one case ⇒ signal) for the catalogue's
  fixed-threshold diseases and subtypes (plague, cholera, SARS, polio, novel influenza,
  pulmonary anthrax, pneumonia of unknown cause); the CIDARS moving percentile for the
  other notifiable diseases (7-day window, 5 weeks × 5 years, P_x from the catalogue);
  the space–time permutation scan over counties (Kulldorff et al. 2005).
- ``<feed>:<metric>`` — EARS C3 on the daily counts (Hutwagner et al. 2003) and, where the
  rows carry totals, CUSUM on the share (syndrome share, test positivity) against the share
  of the previous ``cusum_baseline_days`` (2 guard days), restarted after each alarm.

"Enough baseline" for the moving percentile: at least ``mpm_min_years`` (3) of the
``mpm_years`` (5) years have all their 5 weekly windows observed, i.e. 15 of 25 baseline
points, the county having reported on every day of them (days before a county's first card
are unobserved). With less there is no threshold and no signal.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ..config import SurveillanceSettings
from .catalogue import Catalogue
from .detection_data import Matrix, case_matrix, county_centres, feed_matrix
from .detectors import cidars, cusum, ears, scan
from .detectors.threshold import evaluated
from .feed_domain import stream_of

BLOCK_ELEMENTS = 4_000_000  # gathered baseline values per block (32 MB of float64)
CUSUM_GUARD_DAYS = 2


@dataclass(frozen=True)
class Alarm:
    stream: str
    disease: str | None
    county_code: str
    method: str
    day: date
    observed: float
    threshold: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def case_lookback(cfg: SurveillanceSettings) -> int:
    """Days of history the case methods need before the first day detected."""
    return 366 * cfg.mpm_years + 7 * cfg.mpm_half_width_weeks + cidars.WINDOW_DAYS + max(cfg.scan_study_days, 0)


def feed_lookback(cfg: SurveillanceSettings) -> int:
    return max(7 + ears.C2_LAG + 2, cfg.cusum_baseline_days + CUSUM_GUARD_DAYS + cfg.cusum_warmup_days)


def split_diseases(catalogue: Catalogue, diseases: set[str], on: date) -> tuple[set[str], dict[int, list[str]]]:
    """The fixed-threshold diseases, and the others grouped by their P_x."""
    fixed: set[str] = set()
    by_px: dict[int, list[str]] = {}
    for code in sorted(diseases):
        entry = catalogue.find(code, on)
        if entry is None:
            continue
        if entry.fixed_threshold:
            fixed.add(code)
        else:
            by_px.setdefault(catalogue.mpm_percentile(code, on), []).append(code)
    return fixed, by_px


def fixed_subtypes(catalogue: Catalogue, on: date) -> list[str]:
    """Subtypes watched by the fixed threshold within a disease that is not (pulmonary anthrax)."""
    return sorted(s.code for d in catalogue.valid_on(on) if not d.fixed_threshold
                  for s in d.subtypes if s.fixed_threshold)


def _alarms_at(m: Matrix, rows: list[int], cols: list[int], stat: np.ndarray, thr: np.ndarray, alarm: np.ndarray,
               method: str, detail=None) -> list[Alarm]:
    """Alarms from ``[rows, cols]``-shaped arrays (only where ``alarm``)."""
    out = []
    for i, j in zip(*np.nonzero(alarm), strict=True):
        key = m.keys[rows[i]]
        stream, disease = (f"case:{key[0]}", key[0]) if len(key) == 2 else (stream_of(key[0], key[1]), None)
        extra = detail(rows[i], cols[j]) if detail else {}
        threshold = float(thr[i, j]) if np.isfinite(thr[i, j]) else None
        out.append(Alarm(stream, disease, key[-1], method, m.day(cols[j]), float(stat[i, j]), threshold, extra))
    return out


def fixed_alarms(m: Matrix, diseases: set[str], cols: list[int]) -> list[Alarm]:
    rows = [i for i, k in enumerate(m.keys) if k[0] in diseases]
    if not rows or not cols:
        return []
    x = np.nan_to_num(m.counts[np.ix_(rows, cols)])
    return _alarms_at(m, rows, cols, x, np.ones_like(x), x >= 1, "fixed", lambda r, c: {"cases": int(m.counts[r, c])})


def mpm_at(x: np.ndarray, start: date, cols: list[int], *, percentile: float, cfg: SurveillanceSettings):
    """CIDARS moving percentile (:func:`detectors.cidars.moving_percentile`) evaluated on the
    columns ``cols`` only, with the same helpers, so a day costs one day's work."""
    sums = cidars.window_sums(x)
    ends = cidars.baseline_ends(start, x.shape[1], years_back=cfg.mpm_years,
                                half_width_weeks=cfg.mpm_half_width_weeks)[cols]
    need = cfg.mpm_min_years * (2 * cfg.mpm_half_width_weeks + 1)
    padded = np.concatenate([sums, np.full((x.shape[0], 1), np.nan)], axis=1)
    thr = np.full((x.shape[0], len(cols)), np.nan)
    block = max(1, BLOCK_ELEMENTS // max(1, x.shape[0] * ends.shape[1]))
    for first in range(0, len(cols), block):
        thr[:, first:first + block] = cidars.percentile_last_axis(padded[:, ends[first:first + block]], percentile,
                                                                  need)
    found = evaluated(sums[:, cols], thr)
    return found._replace(alarm=found.alarm & (found.statistic >= cfg.mpm_min_cases))


def mpm_alarms(m: Matrix, by_px: dict[int, list[str]], cols: list[int], cfg: SurveillanceSettings) -> list[Alarm]:
    out: list[Alarm] = []
    for px, codes in sorted(by_px.items()):
        rows = [i for i, k in enumerate(m.keys) if k[0] in set(codes)]
        if not rows or not cols:
            continue
        found = mpm_at(m.counts[rows], m.start, cols, percentile=px, cfg=cfg)
        out += _alarms_at(m, rows, cols, found.statistic, found.threshold, found.alarm, "mpm",
                          lambda r, c, px=px: {"percentile": px, "window_days": cidars.WINDOW_DAYS})
    return out


def ears_c3(m: Matrix, cfg: SurveillanceSettings):
    return ears.c3(m.counts, baseline=7, cutoff=cfg.ears_cutoff, min_sigma=cfg.ears_min_sigma)


def ears_alarms(m: Matrix, cols: list[int], cfg: SurveillanceSettings) -> list[Alarm]:
    if not m.keys or not cols:
        return []
    found = ears_c3(m, cfg)
    rows = list(range(len(m.keys)))
    alarm = found.alarm[:, cols] & (np.nan_to_num(m.counts[:, cols]) >= cfg.ears_min_count)
    return _alarms_at(m, rows, cols, found.statistic[:, cols], found.threshold[:, cols], alarm, "ears_c3",
                      lambda r, c: {"count": int(m.counts[r, c])})


def baseline_share(share: np.ndarray, totals: np.ndarray, baseline: int, guard: int = CUSUM_GUARD_DAYS) -> np.ndarray:
    """Share over days t-guard-baseline+1 .. t-guard, NaN unless half of them were reported."""
    c = np.concatenate([np.zeros((share.shape[0], 1)), np.cumsum(np.nan_to_num(share), axis=1)], axis=1)
    n = np.concatenate([np.zeros((share.shape[0], 1)), np.cumsum(np.nan_to_num(totals), axis=1)], axis=1)
    k = np.concatenate([np.zeros((share.shape[0], 1)), np.cumsum(~np.isnan(totals), axis=1)], axis=1)
    out = np.full(share.shape, np.nan)
    t = np.arange(share.shape[1])
    hi, lo = t - guard + 1, t - guard - baseline + 1
    ok = lo >= 0
    hi, lo, t = hi[ok], lo[ok], t[ok]
    days, cases, visits = k[:, hi] - k[:, lo], c[:, hi] - c[:, lo], n[:, hi] - n[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, t] = np.where((days * 2 >= baseline) & (visits > 0), cases / visits, np.nan)
    return out


def cusum_share(m: Matrix, cfg: SurveillanceSettings):
    """CUSUM of the standardised share, with the expected share of the baseline (p0)."""
    p0 = baseline_share(m.share, m.totals, cfg.cusum_baseline_days)
    z = cusum.standardise_proportion(m.share, m.totals, p0)
    return cusum.cusum(z, k=cfg.cusum_k, h=cfg.cusum_h, reset=True), p0


def cusum_alarms(m: Matrix, cols: list[int], cfg: SurveillanceSettings) -> list[Alarm]:
    if not m.keys or not cols or m.totals is None or np.isnan(m.totals).all():
        return []
    found, p0 = cusum_share(m, cfg)
    rows = list(range(len(m.keys)))

    def detail(r: int, c: int) -> dict[str, Any]:
        return {"count": int(m.share[r, c]), "total": int(m.totals[r, c]),
                "share": round(float(m.share[r, c] / m.totals[r, c]), 4), "expected_share": round(float(p0[r, c]), 4)}

    return _alarms_at(m, rows, cols, found.statistic[:, cols], found.threshold[:, cols], found.alarm[:, cols],
                      "cusum", detail)


def scan_alarms(session: Session, m: Matrix, diseases: set[str], cols: list[int],
                cfg: SurveillanceSettings) -> tuple[list[Alarm], int]:
    """Clusters with p <= ``scan_p_value``, one alarm at each cluster's centre county; and the
    number of scans run."""
    out: list[Alarm] = []
    runs = 0
    for disease in sorted(diseases):
        rows = [i for i, k in enumerate(m.keys) if k[0] == disease]
        centres = county_centres(session, [m.keys[i][1] for i in rows]) if len(rows) >= 2 else {}
        rows = [i for i in rows if m.keys[i][1] in centres]
        if len(rows) < 2:
            continue
        coords = [centres[m.keys[i][1]] for i in rows]
        for col in cols:
            lo = col - cfg.scan_study_days + 1
            x = np.nan_to_num(m.counts[rows, max(lo, 0):col + 1])
            if lo < 0 or x[:, -cfg.scan_max_days:].sum() < cfg.scan_min_cases:
                continue
            runs += 1
            seed = zlib.crc32(f"{disease}|{m.day(col).isoformat()}".encode())
            found = scan.space_time_permutation(x, coords, max_days=cfg.scan_max_days, replicates=cfg.scan_replicates,
                                                seed=seed, min_cases=cfg.scan_min_cases, max_clusters=3)
            for cl in found.clusters:
                if cl.p_value <= cfg.scan_p_value:
                    out.append(_cluster_alarm(m, rows, col, disease, cl))
    return out, runs


def _cluster_alarm(m: Matrix, rows: list[int], col: int, disease: str, cl: scan.Cluster) -> Alarm:
    counties = [m.keys[rows[i]][1] for i in cl.counties]
    days = cl.last_day - cl.first_day + 1
    return Alarm(f"case:{disease}", disease, counties[0], "scan", m.day(col), float(cl.observed), None, {
                     "counties": counties, "first_day": m.day(col - days + 1).isoformat(), "days": days,
                     "expected": round(float(cl.expected), 3), "relative_risk": round(float(cl.relative_risk), 3),
                     "llr": round(float(cl.llr), 3), "p_value": round(float(cl.p_value), 4),
                     "radius_km": round(float(cl.radius_km), 1)})


# -- the series behind one signal (its page's chart) -------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """Daily values of the days before a signal: the counts (and totals), and the method's
    statistic with its threshold in the same units (NaN-free lists: None where missing)."""

    days: list[date]
    counts: list[float | None]
    totals: list[float | None]
    statistic: list[float | None]
    threshold: list[float | None]
    statistic_kind: str  # daily_cases | cases_7d | cluster_cases | c3 | cusum


def _listed(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]


def curve_for(session: Session, *, stream: str, county_code: str, method: str, detected_on: date,
              detail: dict[str, Any], cfg: SurveillanceSettings, days: int = 56) -> Curve:
    first = detected_on - timedelta(days=days - 1)
    span = [first + timedelta(days=i) for i in range(days)]
    kind, source = stream.split(":", 1)
    if kind == "case":
        counties = list(detail.get("counties") or [county_code]) if method == "scan" else [county_code]
        lookback = case_lookback(cfg) if method == "mpm" else 0
        m = case_matrix(session, first - timedelta(days=lookback), detected_on, diseases=[source], counties=counties)
        x = np.nansum(m.counts, axis=0, keepdims=True) if m.keys else np.zeros((1, m.n_days))
        cols = [m.col(d) for d in span]
        counts = x[0, cols]
        if method == "mpm":
            found = mpm_at(x, m.start, cols, percentile=float(detail.get("percentile", 50)), cfg=cfg)
            return Curve(span, _listed(counts, days), [None] * days, _listed(found.statistic[0], days),
                         _listed(found.threshold[0], days), "cases_7d")
        threshold = np.ones(days) if method == "fixed" else None
        return Curve(span, _listed(counts, days), [None] * days, _listed(counts, days), _listed(threshold, days),
                     "cluster_cases" if method == "scan" else "daily_cases")
    m = feed_matrix(session, first - timedelta(days=feed_lookback(cfg)), detected_on, feed=kind, metric=source,
                    counties=[county_code])
    if not m.keys:
        return Curve(span, [None] * days, [None] * days, [None] * days, [None] * days, method)
    cols = [m.col(d) for d in span]
    if method == "cusum":
        found, _ = cusum_share(m, cfg)
        return Curve(span, _listed(m.share[0, cols], days), _listed(m.totals[0, cols], days),
                     _listed(found.statistic[0, cols], days), _listed(found.threshold[0, cols], days), "cusum")
    found = ears_c3(m, cfg)
    return Curve(span, _listed(m.counts[0, cols], days), _listed(m.totals[0, cols], days),
                 _listed(found.statistic[0, cols], days), _listed(found.threshold[0, cols], days), "c3")
