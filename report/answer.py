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

from report.cells import runtime_label, short_label
from report.discussion import RuntimeVerdicts, all_runtime_verdicts, runtime_paragraph
from runstore.identity import software_label
from runstore.records import CellRecord
from setting_defs.table import OPTIONAL_RUNTIME_PACKAGES

PACKAGE_OF = {"litert": "ai-edge-litert"}  # a runtime whose distribution has another name


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
    parts = [runtime_label(r) + (f" ({', '.join(p)})" if p else "") for r, p in setups.items()]
    variants = _in_order([c.variant for c in cells]) or list(settings.get("variants") or [])
    text = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts)
    return text + (f"; variants {_listed(variants)}" if variants else "")


def machine_line(run: Mapping[str, Any], runtimes: Sequence[str] = ()) -> str:
    """The machine in one line: its name, the profile, the cores, the libraries measured (torch,
    onnxruntime, and an optional runtime's library where ``runtimes`` name it)."""
    ident = _mapping(_mapping(run.get("fingerprints")).get(str(run.get("fingerprint"))))
    hardware, software = _mapping(ident.get("hardware")), _mapping(ident.get("software"))
    parts = [str(run.get("device_name") or hardware.get("model") or "unknown machine")]
    if run.get("device"):
        parts.append(f"profile {run['device']}")
    cores = hardware.get("usable_cores") or hardware.get("logical_cores")
    if cores:
        parts.append(f"{cores} usable core(s)")
    # openvino, executorch: named as their packages; LiteRT's package is ai-edge-litert
    optional = [p for p in (PACKAGE_OF.get(r, r) for r in runtimes) if p in OPTIONAL_RUNTIME_PACKAGES]
    libraries = {k: software[k] for k in ("torch", "onnxruntime", *optional) if software.get(k)}
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
    base = settings.get("speedup_base")
    if base and (base != "pytorch" or len(settings.get("runtimes") or ()) > 2):
        parts.append(f"speed-ups against {runtime_label(base)} (SPEEDUP_BASE)")
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
            f"**Machine:** {machine_line(run, _measured(cells, settings))}",
            f"**Settings:** {settings_line(settings)}"]


def _measured(cells: Sequence[CellRecord], settings: Mapping[str, Any]) -> list[str]:
    return _in_order([c.runtime for c in cells]) or [str(r) for r in settings.get("runtimes") or []]


def verdict_lines(cells: Sequence[CellRecord]) -> list[str]:
    """Which runtime won where and by how much, and the test used: the discussion's verdict (for
    each runtime against the base when the run compared several, each paragraph led by its name)."""
    all_verdicts = all_runtime_verdicts(cells)
    if len(all_verdicts) == 1:
        return runtime_paragraph(all_verdicts[0])
    lines = []
    for verdicts in all_verdicts:
        paragraph = runtime_paragraph(verdicts)
        lead = f"{runtime_label(verdicts.other)} against {runtime_label(verdicts.base)}: "
        lines += [lead + paragraph[0], *paragraph[1:]]
    return lines


def _headline_rows(verdicts: RuntimeVerdicts, with_runtime: bool) -> list[list[Any]]:
    """Per model (and setup, where several were measured) of one pairing: the verdict counts and
    the speed-ups' geometric mean and range."""
    outcome = {id(row): name for name, rows in (("faster", verdicts.faster), ("slower", verdicts.slower),
                                                ("same", verdicts.same), ("no CI", verdicts.no_ci))
               for row in rows}
    varying = verdicts.varying()
    groups: dict[tuple, list[tuple[float | None, str]]] = {}
    for value, row in verdicts.speedups:
        setup = verdicts.setup(row)
        key = (row.model, *(setup[i] for i in varying))
        groups.setdefault(key, []).append((value, outcome.get(id(row), "")))
    rows = []
    for key, entries in groups.items():
        values = [v for v, _ in entries if v is not None]
        gmean = math.exp(sum(math.log(v) for v in values) / len(values)) if values else None
        count = {name: sum(1 for _, o in entries if o == name) for name in ("faster", "slower", "same")}
        label = str(key[0]) + (f" [{' · '.join(_fmt_num(v) for v in key[1:] if v is not None)}]" if varying else "")
        rows.append([label, *([runtime_label(verdicts.other)] if with_runtime else []), len(entries),
                     count["faster"], count["slower"], count["same"], f"{gmean:.2f}×" if gmean else "—",
                     f"{min(values):.2f}×–{max(values):.2f}×" if values else "—"])
    return rows


def headline_table(cells: Sequence[CellRecord], fmt: str = "github") -> str:
    """Per model (and setup, where several were measured): the verdict counts and the speed-ups;
    one row per model and runtime when several runtimes were compared with the base."""
    all_verdicts = all_runtime_verdicts(cells)
    if len(all_verdicts) == 1:
        rows = _headline_rows(all_verdicts[0], with_runtime=False)
        other = short_label(all_verdicts[0].other)
        headers = ["model", "cells", f"{other} faster", f"{other} slower", "indistinguishable",
                   "speed-up (geo. mean)", "range"]
    else:
        rows = [row for verdicts in all_verdicts for row in _headline_rows(verdicts, with_runtime=True)]
        base = short_label(all_verdicts[0].base)
        headers = ["model", "runtime", "cells", f"faster than {base}", f"slower than {base}", "indistinguishable",
                   f"speed-up {base}/runtime (geo. mean)", "range"]
    if not rows:
        return ""
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def _headline_legend(cells: Sequence[CellRecord]) -> str:
    all_verdicts = all_runtime_verdicts(cells)
    base = runtime_label(all_verdicts[0].base)
    if len(all_verdicts) == 1:
        other = runtime_label(all_verdicts[0].other)
        return (f"Per model: the verdict's cells, and the geometric mean and range of their speed-ups {base} / "
                f"{other} (the estimator the verdict names and the comparison below prints; above 1: {other} "
                "faster).")
    return (f"Per model and runtime: the verdict's cells against {base} (the base, SPEEDUP_BASE), and the "
            f"geometric mean and range of their speed-ups {base} / that runtime (the estimator the verdict "
            "names and the comparison below prints; above 1: that runtime faster).")


def answer_section(run: Mapping[str, Any], cells: Sequence[CellRecord]) -> str:
    """The report's first section: what was compared, then the verdict and its figures."""
    parts = ["\n\n".join(compared_lines(run, cells)),
             "\n".join(f"- {line}" for line in verdict_lines(cells))]
    table = headline_table(cells)
    if table:
        parts.append(_headline_legend(cells) + "\n\n" + table)
    return "\n\n".join(parts)


def terminal_lines(run: Mapping[str, Any], cells: Sequence[CellRecord]) -> list[str]:
    """What the end of ``make bench`` prints first: what was compared, the verdict, its figures."""
    settings = _mapping(run.get("settings"))
    lines = [f"compared: {_runtimes_line(cells, settings)} on {machine_line(run, _measured(cells, settings))}"]
    lines += [f"- {line}" for line in verdict_lines(cells)]
    table = headline_table(cells, fmt="simple")
    return lines + ([""] + table.splitlines() if table else [])
