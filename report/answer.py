"""The answer a reader of a run wants first: what was compared, and which runtime won where.

``report.md`` and the terminal summary at the end of ``make bench`` both open with it, before any
table of the machine or the settings (those are the report's appendix, ``report/run_report.py``).
Nothing here is computed afresh: the verdict is the discussion's (``report/discussion.py``, whose
first sentence names the significance test used), the speed-ups are the ones its verdicts carry,
and the machine and settings lines are read from ``run.json``.

Public API: :func:`compared_lines`, :func:`verdict_lines`, :func:`headline_table`,
:func:`answer_section`, :func:`terminal_lines`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from tabulate import tabulate

from report.discussion import runtime_paragraph, runtime_verdicts
from runstore.identity import software_label
from runstore.records import CellRecord

RUNTIME_NAMES = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}


def _mapping(value: Any) -> Mapping[str, Any]:
    """A run.json entry that should be an object, or an empty one (an old or damaged run)."""
    return value if isinstance(value, Mapping) else {}


def _fmt_num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _listed(values: Any) -> str:
    return ", ".join(_fmt_num(v) for v in values or [])


def _in_order(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v is not None))


def _runtimes_line(cells: Sequence[CellRecord], settings: Mapping[str, Any]) -> str:
    """'PyTorch (cpu) and ONNX Runtime (CPUExecutionProvider); variants fp32' from what was measured."""
    setups: dict[str, list[str]] = {}
    for cell in cells:
        runtime = str(cell.runtime)
        setups.setdefault(runtime, [])
        if cell.provider and cell.provider not in setups[runtime]:
            setups[runtime].append(str(cell.provider))
    if not setups:
        setups = {str(r): [] for r in settings.get("runtimes") or []}
    parts = [RUNTIME_NAMES.get(r, r) + (f" ({', '.join(p)})" if p else "") for r, p in setups.items()]
    variants = _in_order([c.variant for c in cells]) or list(settings.get("variants") or [])
    text = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts)
    return text + (f"; variants {_listed(variants)}" if variants else "")


def machine_line(run: Mapping[str, Any]) -> str:
    """The machine in one line: its name, the profile, the cores, the libraries measured."""
    ident = _mapping(_mapping(run.get("fingerprints")).get(str(run.get("fingerprint"))))
    hardware, software = _mapping(ident.get("hardware")), _mapping(ident.get("software"))
    parts = [str(run.get("device_name") or hardware.get("model") or "unknown machine")]
    if run.get("device"):
        parts.append(f"profile {run['device']}")
    cores = hardware.get("usable_cores") or hardware.get("logical_cores")
    if cores:
        parts.append(f"{cores} usable core(s)")
    libraries = {k: software[k] for k in ("torch", "onnxruntime") if software.get(k)}
    if libraries:
        parts.append(software_label(libraries))
    if run.get("host"):
        parts.append(f"host {run['host']}")
    text = ", ".join(parts)
    if run.get("hardware_note"):
        text += f" ({run['hardware_note']})"
    return text


def settings_line(settings: Mapping[str, Any]) -> str:
    """The settings that decide what a figure means, in one line (every setting: the appendix)."""
    if not settings:
        return "not recorded"
    sweep = "every combination" if settings.get("grid") else "two lines through the grid"
    parts = [f"batch {_listed(settings.get('batch_sizes'))} × duration {_listed(settings.get('durations'))} s "
             f"({sweep})", f"threads {_listed(settings.get('threads'))}"]
    if settings.get("reps") is not None:
        parts.append(f"REPS={settings['reps']}")
    if settings.get("min_time_s") is not None and settings.get("max_time_s") is not None:
        parts.append(f"{_fmt_num(settings['min_time_s'])}–{_fmt_num(settings['max_time_s'])} s measured "
                     f"per cell and runtime")
    if isinstance(settings.get("ci_target"), (int, float)):
        parts.append(f"CI target {settings['ci_target']:.0%}")
    for key, label in (("order", "order"), ("energy", "energy"), ("weights", "weights")):
        if settings.get(key):
            parts.append(f"{label} {settings[key]}")
    flags = [name for name in ("quick", "tiny") if settings.get(name)]
    if flags:
        parts.append(", ".join(f"{f.upper()}=1" for f in flags))
    return ", ".join(parts)


def compared_lines(run: Mapping[str, Any], cells: Sequence[CellRecord]) -> list[str]:
    """What was compared: models, runtimes, the machine and the settings, one line each."""
    settings = _mapping(run.get("settings"))
    models = _in_order([c.model for c in cells]) or list(settings.get("models") or [])
    return [f"**Models:** {_listed(models) or 'none recorded'}",
            f"**Runtimes:** {_runtimes_line(cells, settings)}",
            f"**Machine:** {machine_line(run)}",
            f"**Settings:** {settings_line(settings)}"]


def verdict_lines(cells: Sequence[CellRecord]) -> list[str]:
    """Which runtime won where and by how much, and the test used: the discussion's verdict."""
    return runtime_paragraph(runtime_verdicts(cells))


def headline_table(cells: Sequence[CellRecord], fmt: str = "github") -> str:
    """Per model (and setup, where several were measured): the verdict counts and the speed-ups."""
    verdicts = runtime_verdicts(cells)
    outcome = {id(row): name for name, rows in (("faster", verdicts.faster), ("slower", verdicts.slower),
                                                ("same", verdicts.same), ("no CI", verdicts.no_ci))
               for row in rows}
    varying = [i for i in range(4) if len({r.setup[i] for _, r in verdicts.speedups} - {None}) > 1]
    groups: dict[tuple, list[tuple[float | None, str]]] = {}
    for value, row in verdicts.speedups:
        key = (row.model, *(row.setup[i] for i in varying))
        groups.setdefault(key, []).append((value, outcome.get(id(row), "")))
    if not groups:
        return ""
    rows = []
    for key, entries in groups.items():
        values = [v for v, _ in entries if v is not None]
        gmean = math.exp(sum(math.log(v) for v in values) / len(values)) if values else None
        count = {name: sum(1 for _, o in entries if o == name) for name in ("faster", "slower", "same")}
        label = str(key[0]) + (f" [{' · '.join(_fmt_num(v) for v in key[1:] if v is not None)}]" if varying else "")
        rows.append([label, len(entries), count["faster"], count["slower"], count["same"],
                     f"{gmean:.2f}×" if gmean else "—",
                     f"{min(values):.2f}×–{max(values):.2f}×" if values else "—"])
    return tabulate(rows, headers=["model", "cells", "ORT faster", "ORT slower", "indistinguishable",
                                   "speed-up (geo. mean)", "range"], tablefmt=fmt, disable_numparse=True)


def answer_section(run: Mapping[str, Any], cells: Sequence[CellRecord]) -> str:
    """The report's first section: what was compared, then the verdict and its figures."""
    parts = ["\n\n".join(compared_lines(run, cells)),
             "\n".join(f"- {line}" for line in verdict_lines(cells))]
    table = headline_table(cells)
    if table:
        parts.append("Per model: the verdict's cells, and the geometric mean and range of their speed-ups PyTorch / "
                     "ONNX Runtime (the estimator the verdict names and the comparison below prints; above 1: ONNX "
                     "Runtime faster).\n\n" + table)
    return "\n\n".join(parts)


def terminal_lines(run: Mapping[str, Any], cells: Sequence[CellRecord]) -> list[str]:
    """What the end of ``make bench`` prints first: what was compared, the verdict, its figures."""
    settings = _mapping(run.get("settings"))
    lines = [f"compared: {_runtimes_line(cells, settings)} on {machine_line(run)}"]
    lines += [f"- {line}" for line in verdict_lines(cells)]
    table = headline_table(cells, fmt="simple")
    return lines + ([""] + table.splitlines() if table else [])
