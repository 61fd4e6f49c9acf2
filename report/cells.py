"""Cell accessors and pairing: what every table, plot and paragraph of a report reads from a cell.

Everything here reads plain cell dicts (as :func:`runstore.folder.read_cells` returns them).  The
statistics were computed by the harness when the cell was measured; these helpers only read them
(the one exception: the IQR is recomputed from the raw samples when a record lacks it).

The pairing of a PyTorch cell with an ONNX Runtime cell (:func:`pair_cells`), the speed-up a report
prints with the CI that belongs to it (:func:`speedup_estimate`) and the significance test
(:func:`compare_medians`) live here because the tables, the discussion and the plots use the same
definitions: one definition, one answer.  The noise threshold is :mod:`runstore.verdict`'s, the
one the worker used when it flagged ``latency_noisy``.

Public API: :func:`is_ok`, :func:`as_float`, :func:`ci95`, :func:`iqr`, :func:`iqr_ratio`,
:func:`is_noisy`, :func:`rtf`, :func:`pair_cells`, :func:`speedup_estimate`, :func:`speedup`,
:func:`ratio_of_medians`, :func:`paired_ci`, :func:`compare_medians`, :func:`estimator_legend`,
:func:`model_sizes`, :data:`PairedCell`, :data:`SpeedupEstimate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from runstore.verdict import NOISY_IQR_RATIO, excludes_one, is_noisy_spread
from runstore.verdict import iqr as samples_iqr

PYTORCH = "pytorch"
ORT = "onnxruntime"
RUNTIME_LABELS = {PYTORCH: "PyTorch", ORT: "ONNX Runtime"}
NOISY_PERCENT = f"{NOISY_IQR_RATIO:.0%}"  # "10%", for sentences that name the threshold
SIZE_FIELDS = ("params_total", "params_unique", "params_used", "model_bytes", "onnx_bytes")


# --------------------------------------------------------------------------- cell accessors


def is_ok(cell: Mapping[str, Any] | None) -> bool:
    """A cell whose median can be used: status ``ok`` *and* a median (a half-written record is not)."""
    return bool(cell) and cell.get("status") == "ok" and as_float(cell.get("latency_median_s")) is not None


def as_float(value: Any) -> float | None:
    """A finite float, or None: JSON ``null``, NaN and strings never reach arithmetic."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def ci95(cell: Mapping[str, Any]) -> tuple[float, float] | None:
    """The 95% CI of the median as recorded by the harness, or None when it was not computed."""
    low, high = as_float(cell.get("latency_ci95_low_s")), as_float(cell.get("latency_ci95_high_s"))
    if low is None or high is None:
        return None
    return (low, high)


def iqr(cell: Mapping[str, Any]) -> float | None:
    """The IQR of the latency samples: the recorded one, else recomputed from the raw samples."""
    recorded = as_float(cell.get("latency_iqr_s"))
    if recorded is not None:
        return recorded
    samples = [s for s in (as_float(x) for x in cell.get("latency_samples_s") or []) if s is not None]
    if len(samples) < 2:
        return None
    return samples_iqr(samples)


def iqr_ratio(cell: Mapping[str, Any]) -> float | None:
    """IQR / median: the relative spread torch.utils.benchmark calls noisy above 10%."""
    spread, median = iqr(cell), as_float(cell.get("latency_median_s"))
    if spread is None or not median:
        return None
    return spread / median


def is_noisy(cell: Mapping[str, Any]) -> bool:
    """Flagged noisy by the harness, or IQR/median above 10% when the flag is missing."""
    if cell.get("latency_noisy") is True:
        return True
    spread, median = iqr(cell), as_float(cell.get("latency_median_s"))
    return spread is not None and median is not None and is_noisy_spread(spread, median)


def rtf(cell: Mapping[str, Any]) -> float | None:
    """Real-time factor: the recorded one, else median / (batch × duration) as the contract defines."""
    recorded = as_float(cell.get("rtf"))
    if recorded is not None:
        return recorded
    median = as_float(cell.get("latency_median_s"))
    audio = (as_float(cell.get("batch_size")) or 0) * (as_float(cell.get("duration_s")) or 0)
    return median / audio if median is not None and audio > 0 else None

# --------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class PairedCell:
    """One row of the comparison: the same model and input under PyTorch and ONNX Runtime.

    ``pt``/``ort`` are None when that runtime has no record for this cell.  Cells pair on model,
    variant, threads, batch size and duration; providers are listed per runtime (a PyTorch CPU
    run is compared with every ONNX Runtime execution provider of the same setup).
    """

    model: str
    batch_size: int
    duration_s: float
    variant: Any
    threads: Any
    pt_provider: Any
    ort_provider: Any
    pt: dict | None
    ort: dict | None

    @property
    def setup(self) -> tuple:
        """What separates groups of rows that must not be mixed."""
        return (self.variant, self.threads, self.pt_provider, self.ort_provider)


def sort_num(value: Any) -> float:
    """A sort key for a numeric field: its float, missing or non-numeric values last."""
    v = as_float(value)
    return v if v is not None else math.inf


def pair_cells(cells: Iterable[Mapping[str, Any]]) -> list[PairedCell]:
    """PyTorch and ONNX Runtime records of the same cell side by side, grouped by setup.

    Rows come out by setup (first seen), then model (first seen: the suite's order), then batch
    size and duration ascending.  Records of other runtimes are left out.
    """
    groups: dict[tuple, dict[str, dict[Any, dict[tuple, dict]]]] = {}
    model_order: dict[str, int] = {}
    for cell in cells:
        runtime = cell.get("runtime")
        if runtime not in (PYTORCH, ORT):
            continue
        model_order.setdefault(cell.get("model"), len(model_order))
        group = groups.setdefault((cell.get("model"), cell.get("variant"), cell.get("threads")),
                                  {PYTORCH: {}, ORT: {}})
        shape = (cell.get("batch_size"), cell.get("duration_s"))
        group[runtime].setdefault(cell.get("provider"), {})[shape] = dict(cell)

    rows: list[PairedCell] = []
    for (model, variant, threads), by_runtime in groups.items():
        shapes = sorted({s for provs in by_runtime.values() for p in provs.values() for s in p},
                        key=lambda s: (sort_num(s[0]), sort_num(s[1])))
        for ptp in list(by_runtime[PYTORCH]) or [None]:
            for ortp in list(by_runtime[ORT]) or [None]:
                for b, d in shapes:
                    rows.append(PairedCell(
                        model, b, d, variant, threads, ptp, ortp,
                        by_runtime[PYTORCH].get(ptp, {}).get((b, d)),
                        by_runtime[ORT].get(ortp, {}).get((b, d))))
    setup_order: dict[tuple, int] = {}
    for row in rows:
        setup_order.setdefault(row.setup, len(setup_order))
    return sorted(rows, key=lambda r: (setup_order[r.setup], model_order[r.model],
                                       sort_num(r.batch_size), sort_num(r.duration_s)))


PAIRED = "paired"  # the median of the per-round ratios PyTorch / ONNX Runtime (interleaved rounds)
MEDIANS = "medians"  # PyTorch median / ONNX Runtime median
ESTIMATOR_WORDS = {
    PAIRED: "median of the per-round ratios PyTorch / ONNX Runtime from interleaved rounds",
    MEDIANS: "PyTorch median / ONNX Runtime median",
}


@dataclass(frozen=True)
class SpeedupEstimate:
    """The speed-up a report prints and the 95% CI that belongs to it (None: it has none).

    ``estimator`` says which estimate ``value`` is: :data:`PAIRED` (``speedup_paired``, whose CI is
    ``speedup_ci95_low/high``, both computed from the same interleaved rounds) or :data:`MEDIANS`
    (the ratio of the two medians, which has no CI of its own in a run).  Printing the ratio of
    medians beside the paired CI put points outside their own intervals (apc batch 8 ``2.09×
    [1.93, 2.08]`` in docs/bench-report), so the two are never mixed.
    """

    value: float
    ci: tuple[float, float] | None
    estimator: str


def ratio_of_medians(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> float | None:
    """PyTorch median / ONNX Runtime median: above 1 means ONNX Runtime is faster."""
    if not (is_ok(pt) and is_ok(ort)):
        return None
    ort_median = as_float(ort["latency_median_s"])
    return as_float(pt["latency_median_s"]) / ort_median if ort_median else None


def speedup_estimate(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> SpeedupEstimate | None:
    """The paired speed-up with its CI when the rounds were interleaved, else the ratio of medians
    (without a CI); None when the two cells are not both ok.

    A recorded CI that does not contain its recorded point is not printed (it cannot be that
    point's interval); the significance test (:func:`compare_medians`) still reads it.
    """
    if not (is_ok(pt) and is_ok(ort)):
        return None
    paired = as_float(ort.get("speedup_paired"))
    if paired is not None and paired > 0:
        interval = paired_ci(ort)
        if interval is not None and not interval[0] <= paired <= interval[1]:
            interval = None
        return SpeedupEstimate(paired, interval, PAIRED)
    ratio = ratio_of_medians(pt, ort)
    return SpeedupEstimate(ratio, None, MEDIANS) if ratio is not None else None


def speedup(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> float | None:
    """The speed-up a report prints (:func:`speedup_estimate`'s value): above 1, ONNX Runtime is faster."""
    found = speedup_estimate(pt, ort)
    return found.value if found is not None else None


def estimator_legend(estimators: Iterable[str]) -> str:
    """What the printed speed-ups are, for a legend or a sentence: one estimator, or which where."""
    found = set(estimators)
    if found == {PAIRED}:
        return ESTIMATOR_WORDS[PAIRED]
    if found == {MEDIANS}:
        return ESTIMATOR_WORDS[MEDIANS]
    return (f"{ESTIMATOR_WORDS[PAIRED]} where the cell has them, else "
            f"{ESTIMATOR_WORDS[MEDIANS]}")


def paired_ci(ort: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The 95% CI of the speed-up from interleaved rounds (on the ONNX Runtime record), if any."""
    if not is_ok(ort):
        return None
    low, high = as_float(ort.get("speedup_ci95_low")), as_float(ort.get("speedup_ci95_high"))
    return (low, high) if low is not None and high is not None else None


def compare_medians(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> str | None:
    """``faster``/``slower`` (ONNX Runtime vs PyTorch) when significant, ``same`` when not,
    ``no-ci`` when there is nothing to test, None when not both ok.

    Interleaved runs carry a CI of the speed-up from paired rounds: significant when it excludes
    1.  Otherwise (grouped runs, older records) the 95% CIs of the two medians must not overlap.
    """
    if not (is_ok(pt) and is_ok(ort)):
        return None
    paired = paired_ci(ort)
    if paired is not None:
        return ("same" if not excludes_one(*paired) else "faster" if paired[0] > 1 else "slower")
    pt_ci, ort_ci = ci95(pt), ci95(ort)
    if pt_ci is None or ort_ci is None:
        return "no-ci"
    if ort_ci[1] < pt_ci[0]:
        return "faster"
    if ort_ci[0] > pt_ci[1]:
        return "slower"
    return "same"

# --------------------------------------------------------------------------- parameters


def model_sizes(source: Any) -> dict[str, dict[str, Any]]:
    """Per-model size fields from cells, a ``{model: entry}`` dict, or a manifest ``{"models": ...}``.

    From cells the first non-null value per model and field wins (every cell of a model carries
    the same counts; a failed cell may carry none).
    """
    if isinstance(source, Mapping):
        entries = source.get("models", source)
        if isinstance(entries, Mapping):
            items = [({"model": name} | dict(e)) for name, e in entries.items() if isinstance(e, Mapping)]
        else:
            items = [dict(e) for e in entries if isinstance(e, Mapping)]
    else:
        items = [dict(e) for e in source if isinstance(e, Mapping)]
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        row = out.setdefault(str(item.get("model")), {})
        for key in SIZE_FIELDS:
            if row.get(key) is None and as_float(item.get(key)) is not None:
                row[key] = item[key]
    return out
