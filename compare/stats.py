"""Statistics for comparing two sets of raw latency samples (numpy only, no scipy).

* :func:`mann_whitney_u` — two-sided Mann–Whitney U test: exact null distribution for small
  samples without ties, normal approximation with tie and continuity correction otherwise.
* :func:`bootstrap_ratio_ci` — percentile bootstrap CI of ``median(base) / median(other)``
  with a fixed seed, so reports are reproducible.
* :func:`compare_samples` — both, and the verdict used for the marks in the reports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
SEED = 20240611
EXACT_MAX_N = 30

# marks shown next to a ratio
MARK_SIGNIFICANT = ""
MARK_NOISE = "~"
MARK_UNTESTED = "?"


def rank_with_ties(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) and the sizes of the tie groups."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=float)
    _, start, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, counts)
    return ranks, counts


def _exact_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n under H0 (no ties), by the usual recurrence on probabilities."""
    # p[j] holds the distribution of U for sizes (i, j); rows over i are built in place.
    size = m * n + 1
    prev = [np.zeros(size) for _ in range(n + 1)]
    for j in range(n + 1):
        prev[j][0] = 1.0  # i = 0: U = 0 surely
    for i in range(1, m + 1):
        cur = [np.zeros(size) for _ in range(n + 1)]
        cur[0][0] = 1.0  # j = 0: U = 0 surely
        for j in range(1, n + 1):
            # the largest of the i+j values is from x (prob i/(i+j)): it beats all j y's
            shifted = np.zeros(size)
            shifted[j:] = prev[j][: size - j]
            cur[j] = (i / (i + j)) * shifted + (j / (i + j)) * cur[j - 1]
        prev = cur
    return np.cumsum(prev[n])


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test.  Returns ``(U of x, p-value)``.

    Exact when both samples have at most ``EXACT_MAX_N`` values and there are no ties;
    otherwise the normal approximation with tie correction and continuity correction
    (as ``scipy.stats.mannwhitneyu(..., method="asymptotic")``).
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        raise ValueError("mann_whitney_u needs two non-empty samples")
    ranks, ties = rank_with_ties(np.concatenate([a, b]))
    u1 = float(ranks[:m].sum() - m * (m + 1) / 2)
    u2 = m * n - u1
    has_ties = bool((ties > 1).any())
    if not has_ties and m <= EXACT_MAX_N and n <= EXACT_MAX_N:
        cdf = _exact_cdf(m, n)
        k = int(round(min(u1, u2)))
        p = min(1.0, 2.0 * float(cdf[k]))
        return u1, p
    big_n = m + n
    tie_term = float((ties ** 3 - ties).sum()) / (big_n * (big_n - 1))
    var = m * n / 12.0 * ((big_n + 1) - tie_term)
    if var <= 0:  # every value identical
        return u1, 1.0
    z = (abs(u1 - m * n / 2.0) - 0.5) / math.sqrt(var)
    p = math.erfc(max(z, 0.0) / math.sqrt(2.0))
    return u1, min(1.0, p)


def bootstrap_ratio_ci(base: Sequence[float], other: Sequence[float], *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(base) / median(other)`` (a speedup of other)."""
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, len(a), size=(resamples, len(a)))], axis=1)
    med_b = np.median(b[rng.integers(0, len(b), size=(resamples, len(b)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = med_a / med_b
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return float(lo), float(hi)


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
        excludes_one = math.isfinite(lo) and math.isfinite(hi) and (lo > 1.0 or hi < 1.0)
        significant = bool(p < alpha and excludes_one)
        return Significance(speedup, lo, hi, p, significant,
                            MARK_SIGNIFICANT if significant else MARK_NOISE, len(base), len(other))
    mb = base_median if base_median is not None else (float(np.median(base)) if base else None)
    mo = other_median if other_median is not None else (float(np.median(other)) if other else None)
    speedup = mb / mo if mb is not None and mo else None
    return Significance(speedup, None, None, None, None, MARK_UNTESTED, len(base), len(other))


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(p25, median, p75) of the samples."""
    q = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def geometric_mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return float(math.exp(sum(math.log(v) for v in vals) / len(vals)))
