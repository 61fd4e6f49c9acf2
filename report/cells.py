"""Cell accessors and pairing: what every table, plot and paragraph of a report reads from a cell.

Everything here reads typed :class:`runstore.records.CellRecord`\ s (as
:func:`runstore.folder.read_records` returns them) through their attributes, so a misspelt field is
an error, not a silent ``None``.  The statistics were computed by the harness when the cell was
measured; these helpers only read them (the one exception: the IQR is recomputed from the raw
samples when a record lacks it).

The pairing of the records of every compared runtime of one cell, the base runtime
(``SPEEDUP_BASE``: PyTorch by default, :func:`speedup_base`) first (:func:`pair_cells`), the
speed-up of each other runtime over the base that a report prints with the CI that belongs to it
(:func:`speedup_estimate`) and the significance test (:func:`compare_medians`) live here because the tables, the discussion and the plots use the same
definitions: one definition, one answer.  The noise threshold is :mod:`runstore.verdict`'s, the
one the worker used when it flagged ``latency_noisy``.

Public API: :func:`is_ok`, :func:`as_float`, :func:`ci95`, :func:`iqr`, :func:`iqr_ratio`,
:func:`is_noisy`, :func:`rtf`, :func:`runtime_label`, :func:`short_label`, :func:`speedup_base`,
:func:`recorded_base`, :func:`compared_runtimes`, :func:`pair_cells`, :func:`speedup_estimate`,
:func:`speedup`, :func:`ratio_of_medians`, :func:`paired_against`, :func:`paired_ci`,
:func:`compare_medians`, :func:`estimator_words`, :func:`estimator_legend`,
:func:`model_sizes`, :func:`manifest_sizes`, :func:`sizes_with_manifest`, :data:`PairedCell`,
:data:`SpeedupEstimate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Any, Iterable, Mapping, TypeGuard

from runstore.records import DEFAULT_BASE, DEFAULT_RUNTIMES, CellRecord, run_base
from runstore.records import RUNTIMES as KNOWN_RUNTIMES
from runstore.verdict import NOISY_IQR_RATIO, excludes_one, is_noisy_spread
from runstore.verdict import iqr as samples_iqr

PYTORCH = "pytorch"
ORT = "onnxruntime"
RUNTIME_LABELS = {PYTORCH: "PyTorch", ORT: "ONNX Runtime", "openvino": "OpenVINO", "executorch": "ExecuTorch",
                  "litert": "LiteRT"}
SHORT_LABELS = {PYTORCH: "PT", ORT: "ORT", "openvino": "OV", "executorch": "ET", "litert": "LRT"}
DEFAULT_PAIR = DEFAULT_RUNTIMES  # the default comparison: PyTorch and ONNX Runtime
NOISY_PERCENT = f"{NOISY_IQR_RATIO:.0%}"  # "10%", for sentences that name the threshold
SIZE_FIELDS = ("params_total", "params_unique", "params_used", "model_bytes", "onnx_bytes")


# --------------------------------------------------------------------------- cell accessors


def is_ok(cell: CellRecord | None) -> TypeGuard[CellRecord]:
    """A cell whose median can be used: status ``ok`` *and* a median (a half-written record is not)."""
    return cell is not None and cell.status == "ok" and as_float(cell.latency_median_s) is not None


def as_float(value: Any) -> float | None:
    """A finite float, or None: JSON ``null``, NaN and strings never reach arithmetic."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def ci95(cell: CellRecord) -> tuple[float, float] | None:
    """The 95% CI of the median as recorded by the harness, or None when it was not computed."""
    low, high = as_float(cell.latency_ci95_low_s), as_float(cell.latency_ci95_high_s)
    if low is None or high is None:
        return None
    return (low, high)


def iqr(cell: CellRecord) -> float | None:
    """The IQR of the latency samples: the recorded one, else recomputed from the raw samples."""
    recorded = as_float(cell.latency_iqr_s)
    if recorded is not None:
        return recorded
    samples = [s for s in (as_float(x) for x in cell.latency_samples_s or []) if s is not None]
    if len(samples) < 2:
        return None
    return samples_iqr(samples)


def iqr_ratio(cell: CellRecord) -> float | None:
    """IQR / median: the relative spread torch.utils.benchmark calls noisy above 10%."""
    spread, median = iqr(cell), as_float(cell.latency_median_s)
    if spread is None or not median:
        return None
    return spread / median


def is_noisy(cell: CellRecord) -> bool:
    """Flagged noisy by the harness, or IQR/median above 10% when the flag is missing."""
    if cell.latency_noisy is True:
        return True
    spread, median = iqr(cell), as_float(cell.latency_median_s)
    return spread is not None and median is not None and is_noisy_spread(spread, median)


def rtf(cell: CellRecord) -> float | None:
    """Real-time factor: the recorded one, else median / (batch × duration) as the contract defines."""
    recorded = as_float(cell.rtf)
    if recorded is not None:
        return recorded
    median = as_float(cell.latency_median_s)
    audio = audio_seconds(cell)
    return median / audio if median is not None and audio > 0 else None


def audio_seconds(cell: CellRecord) -> float:
    """The audio seconds of the cell's batch (batch × duration; 0 when either is missing)."""
    return (as_float(cell.batch_size) or 0) * (as_float(cell.duration_s) or 0)

# --------------------------------------------------------------------------- pairing


def runtime_label(runtime: Any) -> str:
    """'PyTorch', 'ONNX Runtime', 'OpenVINO', 'ExecuTorch'; another name as it is."""
    return RUNTIME_LABELS.get(str(runtime), str(runtime))


def short_label(runtime: Any) -> str:
    """'PT', 'ORT', 'OV', 'ET' for column headers; another name as it is."""
    return SHORT_LABELS.get(str(runtime), str(runtime))


def recorded_base(cell: CellRecord) -> str:
    """The runtime this record's speed-up is against: its ``speedup_base``, PyTorch in a record
    written before ``SPEEDUP_BASE`` existed."""
    return cell.speedup_base or DEFAULT_BASE


def speedup_base(cells: Iterable[CellRecord]) -> str:
    """The runtime a run's speed-ups are against (``SPEEDUP_BASE``, recorded in its records);
    PyTorch for records written before the setting existed (:func:`runstore.records.run_base`)."""
    return run_base(cells)


def compared_runtimes(cells: Iterable[CellRecord], base: str | None = None) -> tuple[str, ...]:
    """The runtimes a report puts side by side: the base first, then every other runtime the
    cells name (in :data:`runstore.records.RUNTIMES`' order, unknown names after).  A run of one
    runtime still shows the other of the default pair (PyTorch or ONNX Runtime), whose column
    then says it was not measured."""
    cells = list(cells)
    base = base or speedup_base(cells)
    found = list(dict.fromkeys(str(c.runtime) for c in cells))
    others = [r for r in KNOWN_RUNTIMES if r in found and r != base]
    others += [r for r in found if r not in KNOWN_RUNTIMES and r != base]
    if not others and base in DEFAULT_PAIR:
        others = [r for r in DEFAULT_PAIR if r != base]
    return (base, *others)


@dataclass(frozen=True)
class PairedCell:
    """One row of the comparison: the same model and input under every compared runtime.

    ``runtimes`` are the compared runtimes, the base (``SPEEDUP_BASE``) first; ``cells`` and
    ``providers`` hold each one's record and provider in the same order (None when that runtime
    has no record for this cell).  Cells pair on model, variant, threads, batch size and duration;
    providers are listed per runtime (a PyTorch CPU run is compared with every ONNX Runtime
    execution provider of the same setup).  ``pt``/``ort`` are the PyTorch and ONNX Runtime
    records, as in a two-runtime run.
    """

    model: str
    batch_size: int
    duration_s: float
    variant: Any
    threads: Any
    runtimes: tuple[str, ...]
    providers: tuple[Any, ...]
    cells: tuple[CellRecord | None, ...]

    def cell(self, runtime: str) -> CellRecord | None:
        """This row's record of ``runtime`` (None: not measured here, or not compared)."""
        return self.cells[self.runtimes.index(runtime)] if runtime in self.runtimes else None

    def provider(self, runtime: str) -> Any:
        return self.providers[self.runtimes.index(runtime)] if runtime in self.runtimes else None

    @property
    def base(self) -> str:
        return self.runtimes[0]

    @property
    def others(self) -> tuple[str, ...]:
        """The runtimes compared with the base, in column order."""
        return self.runtimes[1:]

    @property
    def base_cell(self) -> CellRecord | None:
        return self.cells[0]

    @property
    def pt(self) -> CellRecord | None:
        return self.cell(PYTORCH)

    @property
    def ort(self) -> CellRecord | None:
        return self.cell(ORT)

    @property
    def pt_provider(self) -> Any:
        return self.provider(PYTORCH)

    @property
    def ort_provider(self) -> Any:
        return self.provider(ORT)

    @property
    def setup(self) -> tuple:
        """What separates groups of rows that must not be mixed: variant, threads, and each
        runtime's provider (in ``runtimes``' order)."""
        return (self.variant, self.threads, *self.providers)

    def setup_of(self, runtimes: Iterable[str]) -> tuple:
        """:attr:`setup` for some of the runtimes only (one pairing of the base with another)."""
        return (self.variant, self.threads, *(self.provider(r) for r in runtimes))


def sort_num(value: Any) -> float:
    """A sort key for a numeric field: its float, missing or non-numeric values last."""
    v = as_float(value)
    return v if v is not None else math.inf


def pair_cells(cells: Iterable[CellRecord], base: str | None = None) -> list[PairedCell]:
    """The records of every compared runtime (:func:`compared_runtimes`) of the same cell side by
    side, grouped by setup; ``base`` (default: the run's, :func:`speedup_base`) first.

    Rows come out by setup (first seen), then model (first seen: the suite's order), then batch
    size and duration ascending.  A runtime that ran under several providers gives one row per
    provider (and per combination with the other runtimes' providers).
    """
    cells = list(cells)
    runtimes = compared_runtimes(cells, base)
    groups: dict[tuple, dict[str, dict[Any, dict[tuple, CellRecord]]]] = {}
    model_order: dict[str, int] = {}
    for cell in cells:
        runtime = cell.runtime
        if runtime not in runtimes:
            continue
        model_order.setdefault(cell.model, len(model_order))
        group = groups.setdefault((cell.model, cell.variant, cell.threads), {r: {} for r in runtimes})
        shape = (cell.batch_size, cell.duration_s)
        group[runtime].setdefault(cell.provider, {})[shape] = cell

    rows: list[PairedCell] = []
    for (model, variant, threads), by_runtime in groups.items():
        shapes = sorted({s for provs in by_runtime.values() for p in provs.values() for s in p},
                        key=lambda s: (sort_num(s[0]), sort_num(s[1])))
        choices = [list(by_runtime[r]) or [None] for r in runtimes]
        for providers in product(*choices):
            for b, d in shapes:
                rows.append(PairedCell(
                    model, b, d, variant, threads, runtimes, tuple(providers),
                    tuple(by_runtime[r].get(p, {}).get((b, d)) for r, p in zip(runtimes, providers))))
    setup_order: dict[tuple, int] = {}
    for row in rows:
        setup_order.setdefault(row.setup, len(setup_order))
    return sorted(rows, key=lambda r: (setup_order[r.setup], model_order[r.model],
                                       sort_num(r.batch_size), sort_num(r.duration_s)))


PAIRED = "paired"  # the median of the per-round ratios base / other runtime (interleaved rounds)
MEDIANS = "medians"  # base median / other runtime's median


def estimator_words(estimator: str, base: str = PYTORCH, other: str = ORT) -> str:
    """What a printed speed-up is, naming the runtimes (labels, e.g. 'PyTorch', or 'X')."""
    if estimator == PAIRED:
        return f"median of the per-round ratios {base} / {other} from interleaved rounds"
    return f"{base} median / {other} median"


ESTIMATOR_WORDS = {
    PAIRED: estimator_words(PAIRED, "PyTorch", "ONNX Runtime"),
    MEDIANS: estimator_words(MEDIANS, "PyTorch", "ONNX Runtime"),
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


def ratio_of_medians(base: CellRecord | None, other: CellRecord | None) -> float | None:
    """Base median / other median (PyTorch / ONNX Runtime in the default comparison): above 1
    means the other runtime is faster."""
    if base is None or other is None or not (is_ok(base) and is_ok(other)):
        return None
    base_median, other_median = as_float(base.latency_median_s), as_float(other.latency_median_s)
    return base_median / other_median if base_median is not None and other_median else None


def paired_against(base: CellRecord | None, other: CellRecord | None) -> bool:
    """``other``'s paired speed-up (if any) is against ``base``: the runtime its record names as
    its base (PyTorch in older records) and, where recorded, the base's provider.  None as
    ``base``: whatever the record was paired with."""
    if base is None or other is None:
        return base is None
    provider = other.extra.get("speedup_base_provider")
    return recorded_base(other) == base.runtime and (provider is None or provider == base.provider)


def speedup_estimate(base: CellRecord | None, other: CellRecord | None) -> SpeedupEstimate | None:
    """The paired speed-up base / other with its CI when the rounds were interleaved (and paired
    with this base), else the ratio of medians (without a CI); None when the two cells are not
    both ok.

    A recorded CI that does not contain its recorded point is not printed (it cannot be that
    point's interval); the significance test (:func:`compare_medians`) still reads it.
    """
    if base is None or other is None or not (is_ok(base) and is_ok(other)):
        return None
    paired = as_float(other.speedup_paired) if paired_against(base, other) else None
    if paired is not None and paired > 0:
        interval = paired_ci(other, base)
        if interval is not None and not interval[0] <= paired <= interval[1]:
            interval = None
        return SpeedupEstimate(paired, interval, PAIRED)
    ratio = ratio_of_medians(base, other)
    return SpeedupEstimate(ratio, None, MEDIANS) if ratio is not None else None


def speedup(base: CellRecord | None, other: CellRecord | None) -> float | None:
    """The speed-up a report prints (:func:`speedup_estimate`'s value): above 1, ``other`` is faster."""
    found = speedup_estimate(base, other)
    return found.value if found is not None else None


def estimator_legend(estimators: Iterable[str], base: str = "PyTorch", other: str = "ONNX Runtime") -> str:
    """What the printed speed-ups are, for a legend or a sentence: one estimator, or which where
    (``base``/``other``: the runtimes' labels)."""
    found = set(estimators)
    paired, medians = estimator_words(PAIRED, base, other), estimator_words(MEDIANS, base, other)
    if found == {PAIRED}:
        return paired
    if found == {MEDIANS}:
        return medians
    return f"{paired} where the cell has them, else {medians}"


def paired_ci(other: CellRecord | None, base: CellRecord | None = None) -> tuple[float, float] | None:
    """The 95% CI of the speed-up from interleaved rounds (on the other runtime's record), if any
    (and, given ``base``, if it was paired with that base)."""
    if other is None or not is_ok(other) or not paired_against(base, other):
        return None
    low, high = as_float(other.speedup_ci95_low), as_float(other.speedup_ci95_high)
    return (low, high) if low is not None and high is not None else None


def compare_medians(base: CellRecord | None, other: CellRecord | None) -> str | None:
    """``faster``/``slower`` (the other runtime vs the base: ONNX Runtime vs PyTorch by default)
    when significant, ``same`` when not, ``no-ci`` when there is nothing to test, None when not
    both ok.

    Interleaved runs carry a CI of the speed-up from paired rounds: significant when it excludes
    1.  Otherwise (grouped runs, older records) the 95% CIs of the two medians must not overlap.
    """
    if base is None or other is None or not (is_ok(base) and is_ok(other)):
        return None
    paired = paired_ci(other, base)
    if paired is not None:
        return ("same" if not excludes_one(*paired) else "faster" if paired[0] > 1 else "slower")
    base_ci, other_ci = ci95(base), ci95(other)
    if base_ci is None or other_ci is None:
        return "no-ci"
    if other_ci[1] < base_ci[0]:
        return "faster"
    if other_ci[0] > base_ci[1]:
        return "slower"
    return "same"

# --------------------------------------------------------------------------- parameters


def record_sizes(cell: CellRecord) -> dict[str, Any]:
    """The size fields of one record, by name (the keys of :data:`SIZE_FIELDS`)."""
    return {"params_total": cell.params_total, "params_unique": cell.params_unique,
            "params_used": cell.params_used, "model_bytes": cell.model_bytes, "onnx_bytes": cell.onnx_bytes}


def _fill_sizes(out: dict[str, dict[str, Any]], model: str, sizes: Mapping[str, Any]) -> None:
    """Set the fields ``out[model]`` still lacks from ``sizes`` (first non-null value wins)."""
    row = out.setdefault(model, {})
    for key in SIZE_FIELDS:
        if row.get(key) is None and as_float(sizes.get(key)) is not None:
            row[key] = sizes[key]


def model_sizes(cells: Iterable[CellRecord]) -> dict[str, dict[str, Any]]:
    """Per-model size fields from cells: the first non-null value per model and field wins (every
    cell of a model carries the same counts; a failed cell may carry none)."""
    out: dict[str, dict[str, Any]] = {}
    for cell in cells:
        _fill_sizes(out, str(cell.model), record_sizes(cell))
    return out


def manifest_sizes(manifest: Any) -> dict[str, dict[str, Any]]:
    """Per-model size fields from a run's manifest: ``run.json``'s ``models`` (``{model: entry}``),
    or the whole ``{"models": ...}``; entries that are not objects are left out."""
    entries = manifest.get("models", manifest) if isinstance(manifest, Mapping) else manifest
    if isinstance(entries, Mapping):
        items = [({"model": name} | dict(e)) for name, e in entries.items() if isinstance(e, Mapping)]
    else:
        items = [dict(e) for e in entries or [] if isinstance(e, Mapping)]
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        _fill_sizes(out, str(item.get("model")), item)
    return out


def sizes_with_manifest(cells: Iterable[CellRecord], manifest: Any = None) -> dict[str, dict[str, Any]]:
    """The cells' sizes, the run's manifest filling the gaps (a failed cell has none); models in
    the cells' order, then those only the manifest names."""
    out = model_sizes(cells)
    for model, sizes in manifest_sizes(manifest).items() if manifest else ():
        _fill_sizes(out, model, sizes)
    return out
