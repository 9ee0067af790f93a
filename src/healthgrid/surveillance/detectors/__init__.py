"""Outbreak detectors: pure functions over many count series at once.

Every detector takes a 2-D float array ``counts[series, day]`` (NaN = missing) and returns a
:class:`Detection` of three arrays with the input's shape: ``statistic``, ``threshold`` and
``alarm``. Where a detector cannot be evaluated (not enough baseline, missing data) the
statistic and threshold are NaN and the alarm is False. No I/O, no database; NumPy only.

- :mod:`.threshold` — fixed threshold, one case ⇒ signal (CIDARS 固定阈值法)
- :mod:`.ears` — EARS C1, C2, C3 (Hutwagner et al. 2003), classic cut-offs and the R
  ``surveillance::earsC`` upper-bound form
- :mod:`.cusum` — Page's one-sided CUSUM on standardised counts or proportions
- :mod:`.cidars` — CIDARS moving percentile method (移动百分位数法)
- :mod:`.farrington` — Farrington (1996) and improved Farrington (Noufaily et al. 2013), weekly,
  batched quasi-Poisson GLMs (:mod:`.glm`, :mod:`.special`), matched against R ``surveillance``
- :mod:`.scan` — prospective space-time permutation scan over counties (Kulldorff et al. 2005);
  it finds clusters (counties x days) rather than a :class:`Detection` per series
"""

from . import cidars, cusum, ears, farrington, scan, threshold
from .threshold import Detection

__all__ = ["Detection", "cidars", "cusum", "ears", "farrington", "scan", "threshold"]
