"""Statistics for comparing two sets of raw latency samples: ``scipy.stats``, with fixed choices.

* :func:`mann_whitney_u` — two-sided Mann–Whitney U test (``scipy.stats.mannwhitneyu``): the exact
  null distribution for samples of at most ``EXACT_MAX_N`` values without ties, the normal
  approximation with tie and continuity correction otherwise.  The method is chosen here, not by
  scipy's ``"auto"`` (whose cut-off has changed between versions), so a report does not move when
  scipy is upgraded.
* :func:`bootstrap_ratio_ci` — percentile bootstrap CI (``scipy.stats.bootstrap``,
  ``method="percentile"``) of ``median(base) / median(other)`` with a fixed seed, so reports are
  reproducible.  It is the CI of the very estimator the tables print (the ratio of the two
  medians), so the printed point and its interval belong together.
* :func:`compare_samples` — both, and the verdict used for the marks in the reports.

These replaced hand-written versions (an exact-distribution recurrence, a rank-with-ties, a
resampling loop); ``tests/test_scipy_statistics.py`` holds their outputs on the committed example
runs and checks that scipy gives the same numbers.  The 10% noise threshold, the 95% level and
the "CI excludes 1" reading are :mod:`runstore.verdict`'s, shared with ``report/`` and the worker.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

from runstore.verdict import ALPHA, CONFIDENCE, excludes_one

BOOTSTRAP_RESAMPLES = 2000
SEED = 20240611
EXACT_MAX_N = 30

# marks shown next to a ratio
MARK_SIGNIFICANT = ""
MARK_NOISE = "~"
MARK_UNTESTED = "?"


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test.  Returns ``(U of x, p-value)``.

    Exact when both samples have at most ``EXACT_MAX_N`` values and there are no ties;
    otherwise the normal approximation with tie correction and continuity correction.
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("mann_whitney_u needs two non-empty samples")
    both = np.concatenate([a, b])
    has_ties = len(np.unique(both)) < len(both)
    if not has_ties and len(a) <= EXACT_MAX_N and len(b) <= EXACT_MAX_N:
        method = "exact"
    else:
        method = "asymptotic"
        if np.all(both == both[0]):  # every value identical: no evidence at all (scipy gives nan)
            return len(a) * len(b) / 2.0, 1.0
    result = stats.mannwhitneyu(a, b, alternative="two-sided", use_continuity=True, method=method)
    return float(result.statistic), min(1.0, float(result.pvalue))


def _ratio_of_medians(base: np.ndarray, other: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.median(base, axis=axis) / np.median(other, axis=axis)


def bootstrap_ratio_ci(base: Sequence[float], other: Sequence[float], *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED,
                       level: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(base) / median(other)`` (a speedup of other).

    Each side is resampled on its own (the runs are independent), base first, from one
    ``numpy.random.default_rng(seed)``.  NaN when a resampled median is not positive.
    """
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    result = stats.bootstrap((a, b), _ratio_of_medians, n_resamples=resamples, method="percentile",
                             confidence_level=level, vectorized=True, paired=False,
                             rng=np.random.default_rng(seed))
    lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return math.nan, math.nan
    return lo, hi


@dataclass
class Significance:
    """The comparison of one group's samples against the base group's."""

    speedup: float | None  # median(base) / median(other): > 1 means other is faster
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool | None  # None: could not be tested (no raw samples)
    mark: str
    n_base: int
    n_other: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_samples(base: Sequence[float] | None, other: Sequence[float] | None, *,
                    base_median: float | None = None, other_median: float | None = None,
                    alpha: float = ALPHA, seed: int = SEED,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> Significance:
    """Speedup of ``other`` over ``base`` with its significance.

    Significant means both: the Mann–Whitney p-value is below ``alpha`` *and* the bootstrap
    CI of the ratio of medians excludes 1.  Without raw samples (fewer than 2 on a side) the
    ratio of the stored medians is reported, marked untested (``?``).
    """
    base = [float(v) for v in (base if base is not None else []) if v is not None and math.isfinite(v)]
    other = [float(v) for v in (other if other is not None else []) if v is not None and math.isfinite(v)]
    if len(base) >= 2 and len(other) >= 2:
        mb, mo = float(np.median(base)), float(np.median(other))
        speedup = mb / mo if mo > 0 else None
        _, p = mann_whitney_u(base, other)
        lo, hi = bootstrap_ratio_ci(base, other, seed=seed, resamples=resamples)
        significant = bool(p < alpha and excludes_one(lo, hi))
        return Significance(speedup, lo, hi, p, significant,
                            MARK_SIGNIFICANT if significant else MARK_NOISE, len(base), len(other))
    mb = base_median if base_median is not None else (float(np.median(base)) if base else None)
    mo = other_median if other_median is not None else (float(np.median(other)) if other else None)
    speedup = mb / mo if mb is not None and mo else None
    return Significance(speedup, None, None, None, None, MARK_UNTESTED, len(base), len(other))


def geometric_mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return float(math.exp(sum(math.log(v) for v in vals) / len(vals)))
