"""Which software and hardware measured each cell, and what compare must say or refuse about it.

* **Software** (wavebench commit, torch, onnxruntime, ... — :mod:`runstore.identity`): cells
  measured under two software stacks are never pooled into one group, unless the axis is the
  one that separates them (``--by run``: one group per run, and a run never mixes stacks); then
  a note says which versions differ.  Mixing raises :class:`MixedSoftware` (exit 2, nothing
  written).
* **Hardware**: runs that carry the same device label and device name but a different hardware
  fingerprint (another CPU model or flags behind the same name), or whose measured GEMM rates
  differ by more than :data:`GEMM_NOISE`, get a plain note: the "same device" was not the same
  machine, and a ratio between them measures the machine as much as the software.

A cell names its fingerprint (``fingerprint``, a key of ``run.json``'s ``fingerprints``); a run
written before fingerprints existed is read from its ``environment``, the best there is.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

from runstore.identity import differences, fingerprint_hash, identity
from runstore.records import CellRecord

from .load import Run

# The threshold: on this project's VM, PyTorch's GEMM (MKL, 2 threads) measured 221-224 GFLOP/s
# on 2026-11-29 and 202 on 2026-12-01 (-10%, same kernels), while ONNX Runtime's (MLAS) went
# 476-482 -> 217 (-55%) when the VM moved to a CPU without full-width AVX-512 units.  25% sits
# above the first and far below the second.  A probe taken under heavy load says nothing: five
# back-to-back probes at a load average of 15 on the 2 vCPUs ranged 5.6-89 GFLOP/s, so a note
# may also mean "measured on a busy machine" (the note says both).
GEMM_NOISE = 0.25


class MixedSoftware(ValueError):
    """A group would pool cells measured under different software stacks."""


def cell_identity(run: Run, record: CellRecord) -> dict[str, Any]:
    """The identity (host, software, hardware) a cell was measured with."""
    recorded = run.meta.get("fingerprints")
    fp = record.fingerprint or run.meta.get("fingerprint")
    if isinstance(recorded, Mapping) and fp in recorded:
        return dict(recorded[fp])
    return identity(run.host, run.environment)  # a run from before fingerprints


def run_identity(run: Run) -> dict[str, Any]:
    recorded = run.meta.get("fingerprints")
    fp = run.meta.get("fingerprint")
    if isinstance(recorded, Mapping) and fp in recorded:
        return dict(recorded[fp])
    return identity(run.host, run.environment)


def _label(run: Run) -> str:
    return run.label or f"{run.device}/{run.run_id}"


def check_software(by: str, groups: Sequence[tuple[str, Iterable[tuple[Run, CellRecord]]]]) -> list[str]:
    """Notes on software across groups; raises :class:`MixedSoftware` when one group mixes stacks.

    ``groups``: (label, [(run, cell record), ...]) per group.
    """
    notes: list[str] = []
    per_group: list[tuple[str, dict[str, Any] | None]] = []
    for label, entries in groups:
        stacks: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for run, record in sorted(entries, key=lambda e: e[0].started):  # older stack first
            software = cell_identity(run, record).get("software") or {}
            runs = stacks.setdefault(fingerprint_hash(software), (software, []))[1]
            if _label(run) not in runs:
                runs.append(_label(run))
        if len(stacks) > 1 and by != "run":
            (a, runs_a), (b, runs_b) = list(stacks.values())[:2]
            what = "; ".join(differences({"software": a}, {"software": b}))
            raise MixedSoftware(
                f"group {label!r} mixes cells measured with different software ({what}: "
                f"{', '.join(runs_a)} vs {', '.join(runs_b)}); compare them with --by run (BY=run), "
                "or give only runs of one software stack")
        per_group.append((label, next(iter(stacks.values()))[0] if len(stacks) == 1 else None))
    base_label, base = per_group[0] if per_group else ("", None)
    for label, software in per_group[1:]:
        if base is None or software is None:
            continue
        diff = differences({"software": base}, {"software": software})
        if diff:
            notes.append(f"software differs between `{base_label}` and `{label}`: {'; '.join(diff)}")
    return notes


def gemm_rates(run: Run) -> dict[str, float]:
    """The attainable GEMM FLOP/s per ``runtime|threads`` the run measured with (latest session
    wins); for a run from before sessions, derived from its cells (achieved / utilization)."""
    rates: dict[str, float] = {}
    for session in run.meta.get("sessions") or []:
        for key, value in (session.get("gemm_flops_per_s") or {}).items():
            if isinstance(value, (int, float)) and value > 0:
                rates[key] = float(value)
    if rates:
        return rates
    derived: dict[str, list[float]] = {}
    for cell in run.cells.values():
        achieved, share = cell.achieved_flops_per_s, cell.utilization
        if isinstance(achieved, (int, float)) and isinstance(share, (int, float)) and share > 0:
            derived.setdefault(f"{cell.runtime}|{cell.threads}", []).append(achieved / share)
    return {key: statistics.median(values) for key, values in derived.items()}


def _hardware_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Hardware differences, leaving out what one side did not record (an older run)."""
    a = {k: v for k, v in a.items() if v is not None and b.get(k) is not None}
    b = {k: v for k, v in b.items() if k in a}
    return differences({"hardware": a}, {"hardware": b})


def hardware_notes(runs: Sequence[Run], noise: float = GEMM_NOISE) -> list[str]:
    """Plain notes for runs labelled as the same device whose hardware or GEMM rate differs."""
    notes: list[str] = []
    by_name: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.started):
        by_name.setdefault((run.device, str(run.meta.get("device_name") or run.device)), []).append(run)
    for (device, name), same in by_name.items():
        first = same[0]
        first_hw = run_identity(first).get("hardware") or {}
        first_rates = gemm_rates(first)
        for other in same[1:]:
            diff = _hardware_differences(first_hw, run_identity(other).get("hardware") or {})
            if diff:
                notes.append(f"`{_label(first)}` and `{_label(other)}` are both labelled {device} "
                             f"({name}) but run on different hardware: {'; '.join(diff)}")
            moved = []
            rates = gemm_rates(other)
            for key in sorted(set(first_rates) & set(rates)):
                change = rates[key] / first_rates[key] - 1
                if abs(math.log1p(change)) > math.log1p(noise):
                    runtime, _, threads = key.partition("|")
                    moved.append(f"{runtime} {threads} thread(s) {first_rates[key] / 1e9:,.0f} → "
                                 f"{rates[key] / 1e9:,.0f} GFLOP/s ({change:+.0%})")
            if moved:
                notes.append(f"`{_label(first)}` and `{_label(other)}` are both labelled {device} ({name}) "
                             f"but their measured GEMM rate differs beyond the ±{noise:.0%} noise: "
                             + "; ".join(moved) + ": another or a busier machine behind the same name, "
                             "so their ratios measure the machine as much as the software")
    return notes
