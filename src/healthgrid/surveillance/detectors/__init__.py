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

Not here yet: Farrington / Noufaily, the space-time scan, comparisons with R.
"""

from . import cidars, cusum, ears, threshold
from .threshold import Detection

__all__ = ["Detection", "cidars", "cusum", "ears", "threshold"]
