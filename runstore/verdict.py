"""What a record's numbers mean: the thresholds and small statistics every side reads the same way.

The worker decides ``latency_noisy`` when it measures a cell; the report recomputes the same verdict
for an older record that lacks the flag; the report and ``make compare`` both call a difference
significant when a 95% CI of the speed-up excludes 1.  When each side wrote its own copy of these,
they could drift apart (a cell noisy in the table but not in the discussion), so they are defined
here, once, below everything that measures or reads: ``runners/``, ``report/`` and ``compare/`` may
all import the run store.  numpy only: this runs inside the worker, where latency is measured.

Public API: :data:`NOISY_IQR_RATIO`, :data:`CONFIDENCE`, :data:`ALPHA`, :func:`quartiles`,
:func:`iqr`, :func:`is_noisy_spread`, :func:`excludes_one`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# torch.utils.benchmark's "this is noisy" warning: IQR / median above 10%
NOISY_IQR_RATIO = 0.10
# every confidence interval wavebench prints is a 95% one (the median's, the paired speed-up's,
# compare's bootstrap interval) ...
CONFIDENCE = 0.95
# ... and compare's Mann–Whitney test is read at the matching level (1 - CONFIDENCE, written out)
ALPHA = 0.05


def quartiles(samples: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """(p25, median, p75) of the samples, numpy's linear interpolation (what every table shows)."""
    q25, median, q75 = np.percentile(np.asarray(samples, dtype=np.float64), [25, 50, 75])
    return float(q25), float(median), float(q75)


def iqr(samples: Sequence[float] | np.ndarray) -> float:
    """The interquartile range p75 - p25 of the samples."""
    q25, _, q75 = quartiles(samples)
    return q75 - q25


def is_noisy_spread(iqr_s: float, median_s: float) -> bool:
    """IQR / median above :data:`NOISY_IQR_RATIO` (False when the median is not positive)."""
    return bool(median_s > 0 and iqr_s / median_s > NOISY_IQR_RATIO)


def excludes_one(low: float | None, high: float | None) -> bool:
    """A CI of a ratio that lies wholly above or below 1: the difference is significant."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return False
    return bool(low > 1.0 or high < 1.0)
