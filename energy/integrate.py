"""Turning power samples into joules: the trapezoid rule, clipped to a window.

Samples are ``(t, watts)`` pairs in time order.  The window ``[t0, t1]`` is usually bracketed by
samples taken exactly at its edges (the harness reads the sensor at start and stop); when it is
not (an external meter's CSV), the power at an edge is interpolated between its neighbours.
Coverage is checked, never assumed: a window that starts before the first sample or ends after
the last one (beyond ``tolerance_s``) is not integrated.  For a power that varies linearly
between samples the result is exact.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Sequence


class CoverageError(ValueError):
    """The samples do not cover the window."""


def _at(times: Sequence[float], watts: Sequence[float], t: float) -> float:
    """Linear interpolation of the power at ``t`` (held constant outside the samples)."""
    if t <= times[0]:
        return watts[0]
    if t >= times[-1]:
        return watts[-1]
    i = bisect_right(times, t)
    ta, tb, wa, wb = times[i - 1], times[i], watts[i - 1], watts[i]
    if tb == ta:
        return wb
    return wa + (wb - wa) * (t - ta) / (tb - ta)


def trapezoid(times: Sequence[float], watts: Sequence[float], t0: float, t1: float, tolerance_s: float = 0.0) -> float:
    """Joules between ``t0`` and ``t1``.  Raises :class:`CoverageError` if the samples don't cover it."""
    if len(times) != len(watts):
        raise ValueError("times and watts differ in length")
    if t1 < t0:
        raise ValueError(f"window ends ({t1}) before it starts ({t0})")
    if not times:
        raise CoverageError("no samples")
    if times[0] > t0 + tolerance_s or times[-1] < t1 - tolerance_s:
        raise CoverageError(
            f"samples span [{times[0]:.3f}, {times[-1]:.3f}] but the window is [{t0:.3f}, {t1:.3f}]"
        )
    lo, hi = bisect_left(times, t0), bisect_right(times, t1)
    pts_t = [t0] + [t for t in times[lo:hi] if t0 < t < t1] + [t1]
    pts_w = [_at(times, watts, t0)] + [w for t, w in zip(times[lo:hi], watts[lo:hi]) if t0 < t < t1] + [_at(times, watts, t1)]
    return sum((pts_t[i + 1] - pts_t[i]) * (pts_w[i + 1] + pts_w[i]) / 2.0 for i in range(len(pts_t) - 1))


def largest_gap(times: Sequence[float], t0: float, t1: float) -> float:
    """The longest stretch inside ``[t0, t1]`` without a sample (edges included)."""
    inside = [t0] + [t for t in times if t0 < t < t1] + [t1]
    return max((b - a for a, b in zip(inside, inside[1:])), default=0.0)
