"""The tables of a comparison, as plain data (:class:`Table`), and their text renderings.

A :class:`Table` carries, per cell, the text shown and a sort value, so the same table is
printed by tabulate (terminal, Markdown) and rendered as a sortable HTML table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from .match import Comparison, Entry, Row
from .stats import MARK_NOISE, MARK_UNTESTED, Significance, geometric_mean

MISSING = "missing"


@dataclass
class Cell:
    text: str
    sort: float | str | None = None  # None: sort by text
    title: str | None = None  # tooltip in HTML
    css: str | None = None  # a class in HTML (faster, slower, noise, missing, status)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    id: str
    note: str | None = None
    numeric: list[bool] = field(default_factory=list)

    def text_rows(self) -> list[list[str]]:
        return [[c.text for c in row] for row in self.rows]

    def render(self, fmt: str = "github") -> str:
        align = ["right" if n else "left" for n in self.numeric] or None
        return tabulate(self.text_rows(), headers=self.headers, tablefmt=fmt,
                        colalign=align, disable_numparse=True)


# --------------------------------------------------------------------------------------------
# formatting


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    ms = seconds * 1000.0
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _shown_as_slower(sig: Significance) -> bool:
    """A ratio printed as its inverse, ``1 / speedup`` "× slower" (and so is its CI)."""
    return sig.speedup is not None and sig.speedup < 1 and abs(sig.speedup - 1.0) >= 0.005


def fmt_ratio(sig: Significance) -> str:
    """'1.43× faster', '~1.04× slower', '?2.10× faster'."""
    if sig.speedup is None or not math.isfinite(sig.speedup) or sig.speedup <= 0:
        return "—"
    mark = sig.mark
    if abs(sig.speedup - 1.0) < 0.005:
        return f"{mark}1.00× same"
    if sig.speedup >= 1:
        return f"{mark}{sig.speedup:.2f}× faster"
    return f"{mark}{1 / sig.speedup:.2f}× slower"


def fmt_ci(sig: Significance) -> str:
    """The bootstrap CI the same way round as :func:`fmt_ratio` prints its point: of the speedup,
    or of the slowdown ``1 / speedup`` (bounds swapped) beside a "× slower", so the printed point
    always lies inside the printed interval."""
    if sig.ci_low is None or sig.ci_high is None or sig.p_value is None:
        return "no raw samples"
    p = fmt_p(sig.p_value)
    low, high = sig.ci_low, sig.ci_high
    if _shown_as_slower(sig) and low > 0:
        low, high = 1 / high, 1 / low
    return f"{low:.2f}–{high:.2f}, p{p if p.startswith('<') else '=' + p}"


def fmt_p(p: float) -> str:
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def _num(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_num(x) for x in v) if v else "—"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "—" if v is None else str(v)


def latency_cell(entry: Entry | None) -> Cell:
    if entry is None:
        return Cell(MISSING, sort=math.inf, css="missing", title="no such cell in this group")
    if entry.status != "ok":
        err = entry.record.error
        return Cell(entry.status, sort=math.inf, css="status",
                    title=str(err) if err else f"status {entry.status}")
    q25, med, q75 = entry.quartiles
    if med is None:
        return Cell("—", sort=math.inf, css="status", title="no latency recorded")
    n = len(entry.samples)
    if q25 is None:
        return Cell(f"{fmt_ms(med)}", sort=med, title="median only (no raw samples)")
    return Cell(f"{fmt_ms(med)} [{fmt_ms(q25)}–{fmt_ms(q75)}]", sort=med,
                title=f"median {fmt_ms(med)} ms, IQR {fmt_ms(q25)}–{fmt_ms(q75)} ms, n={n}")


def ratio_cells(row: Row, gi: int) -> tuple[Cell, Cell]:
    sig = row.ratios[gi]
    if sig is None:
        base, other = row.entries[0], row.entries[gi]
        why = ("missing in base" if base is None else "missing" if other is None
               else "not ok")
        return Cell("—", sort=math.nan, css="missing", title=why), Cell("", sort=math.nan)
    if sig.significant is None:
        css = "untested"
    elif not sig.significant:
        css = "noise"
    else:
        css = "faster" if (sig.speedup or 0) > 1 else "slower"
    title = f"speedup {sig.speedup:.4f} (base median / this median)"
    if sig.p_value is not None:
        title += (f"; 95% bootstrap CI {sig.ci_low:.3f}–{sig.ci_high:.3f}; Mann–Whitney "
                  f"p={sig.p_value:.2g}; n={sig.n_base}/{sig.n_other}")
    return (Cell(fmt_ratio(sig), sort=sig.speedup, css=css, title=title),
            Cell(fmt_ci(sig), sort=sig.p_value if sig.p_value is not None else math.nan))


# --------------------------------------------------------------------------------------------
# the tables


def _identity_columns(comp: Comparison) -> list[str]:
    cols = ["run"] if comp.context_label else []
    cols += ["model"]
    for name in ("runtime", "provider", "variant"):
        if any(name in row.fields for row in comp.rows[:1]):
            cols.append(name)
    cols += ["batch", "dur (s)"]
    if any("threads" in row.fields for row in comp.rows[:1]):
        cols.append("threads")
    return cols


def _identity_cells(comp: Comparison, row: Row) -> list[Cell]:
    f = row.fields
    cells = [Cell(str(f["context"]))] if comp.context_label else []
    cells.append(Cell(str(f.get("model"))))
    for name in ("runtime", "provider", "variant"):
        if name in f:
            cells.append(Cell(_num(f.get(name))))
    cells.append(Cell(_num(f.get("batch_size")), sort=float(f.get("batch_size") or 0)))
    cells.append(Cell(_num(f.get("duration_s")), sort=float(f.get("duration_s") or 0)))
    if "threads" in f:
        t = f.get("threads")
        cells.append(Cell(_num(t), sort=float(t) if t is not None else math.nan))
    return cells


def latency_table(comp: Comparison) -> Table:
    ident = _identity_columns(comp)
    headers = list(ident)
    headers += [f"{g.label} median [IQR] ms" for g in comp.groups]
    for g in comp.groups[1:]:
        headers += [f"{g.label} vs {comp.base.label}", "95% CI, p"]
    headers.append("settings")
    numeric = [False] * len(ident) + [True] * (len(headers) - len(ident) - 1) + [False]
    for i, h in enumerate(ident):
        if h in ("batch", "dur (s)", "threads"):
            numeric[i] = True
    rows = []
    for row in comp.rows:
        cells = _identity_cells(comp, row)
        cells += [latency_cell(e) for e in row.entries]
        for gi in range(1, len(comp.groups)):
            cells += list(ratio_cells(row, gi))
        cells.append(Cell(row.settings or ""))
        rows.append(cells)
    note = (f"Speedup of each group over {comp.base.label} = median({comp.base.label}) / "
            f"median(group) (\"× slower\": its inverse); 95% CI = the percentile bootstrap CI of that "
            f"same ratio of medians, the same way round. No mark: significant (Mann–Whitney U "
            f"p < 0.05 and the 95% bootstrap CI of the ratio of medians excludes 1). {MARK_NOISE}: not significant "
            f"(noise). {MARK_UNTESTED}: no raw samples, not tested. missing: the cell was not "
            "run in that group.")
    return Table("Latency", headers, rows, id="latency", note=note, numeric=numeric)


def summary_table(comp: Comparison) -> Table:
    headers = ["group", "vs", "cells", "matched", "faster", "slower", "noise ~",
               "untested ?", "missing here", "missing in base", "not ok", "geomean speedup"]
    rows = []
    for gi, g in enumerate(comp.groups):
        present = [r for r in comp.rows if r.entries[gi] is not None]
        not_ok = sum(1 for r in present if not r.entries[gi].ok)
        if gi == 0:
            rows.append([Cell(g.label), Cell("(base)"), Cell(str(len(present)), sort=len(present)),
                         *[Cell("") for _ in range(5)],
                         Cell(str(sum(1 for r in comp.rows if r.entries[0] is None))),
                         Cell(""), Cell(str(not_ok), sort=not_ok), Cell("")])
            continue
        sigs = [r.ratios[gi] for r in comp.rows if r.ratios[gi] is not None]
        faster = sum(1 for s in sigs if s.significant and s.speedup > 1)
        slower = sum(1 for s in sigs if s.significant and s.speedup < 1)
        noise = sum(1 for s in sigs if s.significant is False)
        untested = sum(1 for s in sigs if s.significant is None)
        miss_here = sum(1 for r in comp.rows if r.entries[gi] is None)
        miss_base = sum(1 for r in comp.rows if r.entries[0] is None and r.entries[gi] is not None)
        gm = geometric_mean([s.speedup for s in sigs])
        gm_text = "—" if gm is None else (f"{gm:.2f}× faster" if gm >= 1 else f"{1 / gm:.2f}× slower")
        rows.append([Cell(g.label), Cell(comp.base.label), Cell(str(len(present)), sort=len(present)),
                     Cell(str(len(sigs)), sort=len(sigs)), Cell(str(faster), sort=faster, css="faster"),
                     Cell(str(slower), sort=slower, css="slower"), Cell(str(noise), sort=noise),
                     Cell(str(untested), sort=untested), Cell(str(miss_here), sort=miss_here),
                     Cell(str(miss_base), sort=miss_base), Cell(str(not_ok), sort=not_ok),
                     Cell(gm_text, sort=gm if gm is not None else math.nan)])
    numeric = [False, False] + [True] * (len(headers) - 2)
    return Table("Summary", headers, rows, id="summary", numeric=numeric,
                 note="geomean speedup: geometric mean of the speedups over the matched cells.")


def runs_table(comp: Comparison) -> Table:
    headers = ["group", "device", "device name", "host", "run id", "status", "wavebench",
               "cells", "threads", "path"]
    rows = []
    for g in comp.groups:
        for run in g.runs:
            m = run.meta
            settings = m.get("settings") if isinstance(m.get("settings"), dict) else {}
            rows.append([Cell(g.label), Cell(str(m.get("device"))), Cell(str(m.get("device_name") or "—")),
                         Cell(str(m.get("host") or "—")), Cell(str(m.get("run_id"))),
                         Cell(str(m.get("status") or "—")),
                         Cell(str(m.get("wavebench_version") or "—")),
                         Cell(str(len(run.cells)), sort=len(run.cells)),
                         Cell(_num(settings.get("threads"))), Cell(str(run.path))])
    return Table("Runs", headers, rows, id="runs")


# --------------------------------------------------------------------------------------------
# environment side by side


def _dig(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _gib(b: Any) -> str | None:
    return f"{b / 1024 ** 3:.1f} GiB" if isinstance(b, (int, float)) else None


def _yes(v: Any) -> str | None:
    return None if v is None else ("yes" if v else "no")


def _throttle(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    """Before/after temperatures and Pi flags from run.json ``throttle: {before, after}``."""
    t = meta.get("throttle") if isinstance(meta.get("throttle"), dict) else {}
    out = []
    for when in ("before", "after"):
        snap = t.get(when) or meta.get(f"throttle_{when}")
        if not isinstance(snap, dict):
            out.append(None)
            continue
        parts = []
        if snap.get("max_temp_c") is not None:
            parts.append(f"{snap['max_temp_c']:.1f} °C")
        flags = _dig(snap, "rpi", "throttled", "flags")
        if flags is not None:
            parts.append(", ".join(flags) if flags else "no throttle flags")
        out.append("; ".join(parts) or None)
    return out[0], out[1]


def _cpu_id(e: Any) -> str | None:
    cpu = _dig(e, "cpu") or {}
    if cpu.get("family") is not None:
        return f"{cpu.get('vendor')} family {cpu['family']} model {cpu.get('model_number')} stepping {cpu.get('stepping')}"
    cores = cpu.get("arm_cores") or []
    return " + ".join(f"{c.get('name') or c.get('part')} (part {c.get('part')}, variant {c.get('variant')}, "
                      f"revision {c.get('revision')})" for c in cores) or None


def _gemm(m: dict[str, Any]) -> str | None:
    """The attainable GEMM rates the run measured with (latest session wins), GFLOP/s."""
    rates: dict[str, float] = {}
    for session in m.get("sessions") or []:
        rates.update(session.get("gemm_flops_per_s") or {})
    return ", ".join(f"{k.replace('|', ' t')} {v / 1e9:,.0f}" for k, v in sorted(rates.items())) or None


ENV_FACTS = [
    ("fingerprint", lambda e, m: m.get("fingerprint")),
    ("host", lambda e, m: _dig(e, "host", "hostname") or m.get("host")),
    ("platform", lambda e, m: _dig(e, "platform", "kind")),
    ("OS / kernel", lambda e, m: " / ".join(x for x in (_dig(e, "host", "os_release"),
                                                        _dig(e, "host", "kernel")) if x) or None),
    ("arch", lambda e, m: _dig(e, "host", "machine")),
    ("CPU", lambda e, m: _dig(e, "cpu", "model")),
    ("CPU identity", lambda e, m: _cpu_id(e)),
    ("CPU kernel flags", lambda e, m: (", ".join(_dig(e, "cpu", "kernel_flags")) or "none of note")
     if _dig(e, "cpu", "kernel_flags") is not None else None),
    ("caches", lambda e, m: " ".join(f"{k} {v // 1024} KiB" for k, v in (_dig(e, "cpu", "caches") or {}).items())
     or None),
    ("GEMM GFLOP/s (runtime threads)", lambda e, m: _gemm(m)),
    ("cores (logical / physical)", lambda e, m: (
        f"{_num(_dig(e, 'cpu', 'logical_cores'))} / {_num(_dig(e, 'cpu', 'physical_cores'))}"
        if _dig(e, "cpu", "logical_cores") is not None else None)),
    ("governor", lambda e, m: _dig(e, "cpu", "governor")),
    ("boost", lambda e, m: _yes(_dig(e, "cpu", "boost"))),
    ("memory", lambda e, m: _gib(_dig(e, "memory", "total_bytes"))),
    ("GPU", lambda e, m: _dig(e, "gpu", "name") if _dig(e, "gpu", "present") else "none"
     if _dig(e, "gpu") else None),
    ("GPU driver", lambda e, m: _dig(e, "gpu", "driver_version")),
    ("GPU power limit", lambda e, m: (f"{_dig(e, 'gpu', 'power_limit_w'):.0f} W"
                                      if _dig(e, "gpu", "power_limit_w") is not None else None)),
    ("Jetson", lambda e, m: _dig(e, "jetson", "model") if _dig(e, "jetson", "present") else None),
    ("Jetson power mode", lambda e, m: _dig(e, "jetson", "power_mode")),
    ("Jetson clocks pinned", lambda e, m: _yes(_dig(e, "jetson", "clocks_pinned"))),
    ("Raspberry Pi", lambda e, m: _dig(e, "rpi", "model") if _dig(e, "rpi", "present") else None),
    ("Pi temperature", lambda e, m: (f"{_dig(e, 'rpi', 'temperature_c'):.1f} °C"
                                     if _dig(e, "rpi", "temperature_c") is not None else None)),
    ("Pi throttled", lambda e, m: (", ".join(_dig(e, "rpi", "throttled", "flags")) or "no flags")
     if _dig(e, "rpi", "throttled", "flags") is not None else None),
    ("load avg at start (1/5/15 min)", lambda e, m: " / ".join(
        f"{x:.2f}" for x in _dig(e, "thermal", "load_avg")) if _dig(e, "thermal", "load_avg")
        else None),
    ("before run", lambda e, m: _throttle(m)[0]),
    ("after run", lambda e, m: _throttle(m)[1]),
    ("Python", lambda e, m: _dig(e, "software", "python")),
    ("torch", lambda e, m: _dig(e, "software", "packages", "torch")),
    ("onnxruntime", lambda e, m: _dig(e, "software", "packages", "onnxruntime")),
    ("ORT providers", lambda e, m: ", ".join(_dig(e, "software", "onnxruntime_providers") or [])
     or None),
    ("s3prl", lambda e, m: _dig(e, "software", "packages", "s3prl")),
    ("transformers", lambda e, m: _dig(e, "software", "packages", "transformers")),
    ("numpy", lambda e, m: _dig(e, "software", "packages", "numpy")),
    ("wavebench", lambda e, m: _dig(e, "software", "wavebench") or m.get("wavebench_version")),
    ("wavebench commit", lambda e, m: (_dig(e, "software", "wavebench_git_commit") or "")[:12] or None),
]


def environment_table(comp: Comparison) -> Table:
    """Key facts of each group's environment (its latest run's), groups side by side."""
    cols = [(g.label, g.runs[-1]) for g in comp.groups if g.runs]
    # within-run axes: groups share runs; show each run once instead
    if comp.context_label:
        seen, cols = set(), []
        for g in comp.groups:
            for r in g.runs:
                if id(r) not in seen:
                    seen.add(id(r))
                    cols.append((f"{r.device}/{r.run_id}", r))
    headers = ["fact"] + [label for label, _ in cols]
    rows = []
    for name, getter in ENV_FACTS:
        values = []
        for _, run in cols:
            try:
                v = getter(run.environment, run.meta)
            except Exception:  # a malformed environment must not break the report
                v = None
            values.append("—" if v in (None, "") else str(v))
        if all(v == "—" for v in values):
            continue
        rows.append([Cell(name)] + [Cell(v) for v in values])
    return Table("Environment", headers, rows, id="environment")


def all_tables(comp: Comparison) -> list[Table]:
    return [summary_table(comp), latency_table(comp), environment_table(comp), runs_table(comp)]
