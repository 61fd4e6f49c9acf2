"""Statistics of latency samples: robust ones first, and a verdict on noise.

The median and its distribution-free 95% confidence interval (order statistics with exact
binomial ranks) lead, because one spike must not decide the story; mean and standard
deviation are kept for those who want them.  IQR/median > 10% marks a measurement noisy, as
``torch.utils.benchmark`` does (the threshold is :mod:`runstore.verdict`'s, the one the report reads).

The median's CI stays written out here rather than taken from scipy: it runs inside the worker, where
latency is measured, and needs nothing beyond numpy (``tests/test_stats_harness.py`` checks its ranks
against ``scipy.stats.binom``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from runstore.verdict import CONFIDENCE, is_noisy_spread


@dataclass
class LatencyStats:
    mean: float
    std: float
    median: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    iqr: float
    ci95_low: float
    ci95_high: float
    n: int
    noisy: bool

    def to_fields(self) -> dict[str, float | int | bool]:
        """The cell-record field names (``latency_*_s``)."""
        d = asdict(self)
        out: dict[str, float | int | bool] = {f"latency_{k}_s": v for k, v in d.items()
                                              if k not in ("n", "noisy")}
        out["latency_n"] = self.n
        out["latency_noisy"] = self.noisy
        return out


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bounding the median's CI.

    The largest j with P(Binomial(n, 1/2) <= j - 1) <= (1 - confidence) / 2 gives the interval
    [x_(j), x_(n - j + 1)] (1-based).  Below n = 6 no such j exists at 95%: the interval is
    [min, max], whose coverage is then 1 - 2^(1-n).
    """
    if n < 1:
        raise ValueError("no samples")
    tail = (1.0 - confidence) / 2.0
    cdf, j = 0.0, 0
    while True:
        # P(B = j) in log space: exact for any n without overflowing
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) - n * math.log(2))
        if cdf > tail:
            break
        j += 1
    # P(B <= j - 1) <= tail: the lower bound is the j-th order statistic (1-based), if j >= 1
    if j == 0:
        return 0, n - 1
    return j - 1, n - j


def median_ci(samples: np.ndarray | list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    xs = np.sort(np.asarray(samples, dtype=np.float64))
    lo, hi = median_ci_ranks(len(xs), confidence)
    return float(xs[lo]), float(xs[hi])


def summarize(samples: np.ndarray | list[float]) -> LatencyStats:
    xs = np.asarray(samples, dtype=np.float64)
    if xs.size == 0:
        raise ValueError("no samples to summarize")
    q25, median, q75, p90, p95, p99 = np.percentile(xs, [25, 50, 75, 90, 95, 99])
    lo, hi = median_ci(xs)
    iqr = float(q75 - q25)
    return LatencyStats(
        mean=float(xs.mean()),
        std=float(xs.std(ddof=1)) if xs.size > 1 else 0.0,
        median=float(median), p90=float(p90), p95=float(p95), p99=float(p99),
        min=float(xs.min()), max=float(xs.max()), iqr=iqr,
        ci95_low=lo, ci95_high=hi, n=int(xs.size),
        noisy=is_noisy_spread(iqr, float(median)),
    )


def relative_ci_width(samples: np.ndarray | list[float]) -> float:
    """Width of the median's 95% CI relative to the median (inf when undefined)."""
    xs = np.asarray(samples, dtype=np.float64)
    if xs.size < 2:
        return math.inf
    lo, hi = median_ci(xs)
    med = float(np.median(xs))
    return (hi - lo) / med if med > 0 else math.inf
