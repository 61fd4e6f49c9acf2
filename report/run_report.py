"""The output side of a run: read ``run.json`` and ``cells.jsonl``, write the tables, plots and report.

Only plain files are read, so results copied from a Pi to a laptop can be re-reported there
(``python -m report.run_report results/rpi/<run_id>``).  What is written into the run folder:

* ``table.txt`` — the runtime comparison as printed at the end of ``make bench``;
* ``summary.csv`` — one row per cell, every scalar field;
* ``plots/*.png`` — latency, RTF (and memory, energy where measured) vs batch size and duration;
* ``report.md`` — the answer first (what was compared, which runtime won where and by how much,
  ``report/answer.py``), then the comparison, the plots, the computed discussion and the failed
  cells with their errors; the run, wall time, parameters, machine, GEMM peak, environment and
  settings last, as its appendix.

``cells.jsonl`` is append-only: a resumed run appends a newer record for a cell it re-measured,
so the latest record per :func:`runstore.records.cell_key` wins; a last line cut short by a killed
process is skipped.

Public API: :func:`load_cells`, :func:`load_run`, :func:`write_report`, :func:`render_report`,
:func:`answer_lines`, :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tabulate import tabulate

from report.answer import answer_section, terminal_lines
from report.discussion import discussion
from report.tables import (
    comparison_table,
    fmt_bytes,
    has_variants,
    is_ok,
    params_table,
    variants_table,
    write_summary_csv,
)
from runstore.folder import read_records as load_cells  # noqa: F401  (public name)
from runstore.folder import read_run_dict as load_run  # noqa: F401  (public name)
from runstore.identity import hardware_label, software_label
from runstore.lock import Holder, holder_of
from runstore.records import CellRecord

CELLS = "cells.jsonl"
RUN = "run.json"
REPORT = "report.md"
TABLE = "table.txt"
SUMMARY = "summary.csv"
PLOTS = "plots"
MAX_VALUE_CHARS = 100  # environment/settings values longer than this are cut in the report
MAX_ERROR_CHARS = 200
ENV_SKIP = {"schema", "collected_at", "timestamp"}


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- sections


def _md_cell(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A value safe inside a Markdown table cell: one line, pipes escaped, cut to ``limit``."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as dotted keys; nulls and empty lists dropped; absent devices in one row."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in ENV_SKIP or value is None:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value.get("present") is False:
                rows.append((name, "not present"))
            else:
                rows += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            scalars = [str(v) for v in value if not isinstance(v, (Mapping, list, tuple))]
            if scalars:
                rows.append((name, ", ".join(scalars)))
        elif key.endswith("_bytes") and isinstance(value, (int, float)):
            rows.append((name, fmt_bytes(value)))
        else:
            rows.append((name, str(value)))
    return rows


def _kv_table(data: Mapping[str, Any] | None, empty: str) -> str:
    rows = _flatten(data or {})
    if not rows:
        return empty
    return tabulate([(_md_cell(k), _md_cell(v)) for k, v in rows], headers=["", ""],
                    tablefmt="github", disable_numparse=True)


def _status_counts(cells: Sequence[CellRecord]) -> str:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[str(cell.status)] = counts.get(str(cell.status), 0) + 1
    if not counts:
        return "no cells recorded"
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def status_section(run: Mapping[str, Any], cells: Sequence[CellRecord],
                   holder: Holder | None = None) -> str:
    """The run's state in words: an interrupted or unfinished run must not pass for a complete one.
    ``holder``: the process measuring the run now (its lock, :func:`runstore.lock.holder_of`)."""
    status = run.get("status") or "unknown"
    interrupted_cells = sum(1 for c in cells if c.status == "interrupted")
    lines = []
    if status == "running" and holder is not None:
        lines.append(f"**Status: RUNNING.** Being measured by {holder.describe()}: results are partial "
                     "(the cells measured until this report was written).")
    elif status == "interrupted":
        lines.append("**Status: INTERRUPTED.** The run was stopped before it finished: the cells "
                     "below are the ones measured until then, and the sweep is incomplete. "
                     "Rerun the same command to resume.")
    elif status == "running":
        lines.append("**Status: RUNNING (or killed without finishing).** The run had not finished "
                     "when this report was written; results are partial.")
    elif status == "complete":
        lines.append("**Status: complete.**")
    else:
        lines.append(f"**Status: {status}.**")
    if run.get("hardware_note"):
        lines.append(f"**Hardware: {run['hardware_note']}.** A board profile run elsewhere (a rehearsal): "
                     "the figures are this machine's, not the board's.")
    if interrupted_cells and status != "interrupted":
        lines.append(f"{interrupted_cells} cell(s) carry the status `interrupted`.")
    lines.append(f"Cells: {len(cells)} ({_status_counts(cells)}).")
    return "\n\n".join(lines)


def _meta_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = ("run_id", "device", "device_name", "hardware_note", "profile_note", "host", "wavebench_version",
            "started", "finished", "command")
    return [(k, _md_cell(run[k])) for k in keys if run.get(k) is not None]


def fingerprint_section(run: Mapping[str, Any]) -> str:
    """The machine and software the cells were measured with, the GEMM rates, and the sessions.

    Every cell's ``fingerprint`` is the key shown here; a run never mixes two (a changed host,
    software or hardware starts a new run), so one fingerprint describes the whole run.
    """
    fingerprints = run.get("fingerprints") if isinstance(run.get("fingerprints"), Mapping) else {}
    fp = run.get("fingerprint")
    if not fp or fp not in fingerprints:
        return "No fingerprint recorded (a run from before wavebench recorded them); see Environment."
    ident = fingerprints[fp]
    sessions = [s for s in run.get("sessions") or [] if isinstance(s, Mapping)]
    rates: dict[str, float] = {}
    for session in sessions:
        rates.update(session.get("gemm_flops_per_s") or {})
    gemm = ", ".join(f"{key.split('|')[0]} {key.split('|')[1]} thread(s) {value / 1e9:,.1f}"
                     for key, value in sorted(rates.items())) + " GFLOP/s" if rates else \
        (sessions[-1].get("gemm_reason") if sessions else None) or "not measured"
    rows = [("fingerprint", fp), ("host", ident.get("host")),
            ("hardware", hardware_label(ident.get("hardware") or {})),
            ("software", software_label(ident.get("software") or {})),
            ("attainable GEMM rate (float32)", gemm)]
    table = tabulate([(k, _md_cell(v, 400)) for k, v in rows], headers=["", ""], tablefmt="github",
                     disable_numparse=True)
    history = tabulate([(i + 1, s.get("started"), s.get("finished"), s.get("status"), s.get("fingerprint"))
                        for i, s in enumerate(sessions)],
                       headers=["session", "started", "finished", "status", "fingerprint"], tablefmt="github",
                       disable_numparse=True)
    return table + "\n\n" + f"Sessions (each start or resume of this run):\n\n{history}"

MISSING_FIGURES = (("fidelity_error", "fidelity"), ("macs_reason", "MACs / utilisation"),
                   ("gemm_peak_reason", "GEMM peak / utilisation"))


def missing_figures_table(cells: Sequence[CellRecord]) -> str:
    """Ok cells with a figure that could not be computed (kept in ``extra``), one row per
    configuration and reason, so a null in the tables is explained where failures are."""
    groups: dict[tuple, int] = {}
    for cell in cells:
        if not is_ok(cell):
            continue
        for key, figure in MISSING_FIGURES:
            if cell.extra.get(key):
                reason = str(cell.extra[key]).strip().splitlines()[0]
                ident = (cell.model, cell.runtime, cell.provider, cell.variant)
                groups[ident + (figure, reason)] = groups.get(ident + (figure, reason), 0) + 1
    if not groups:
        return ""
    rows = [[_md_cell("" if v is None else v) for v in key[:5]] + [str(n), _md_cell(key[5], MAX_ERROR_CHARS)]
            for key, n in groups.items()]
    return "Figures not computed for cells measured ok:\n\n" + tabulate(
        rows, headers=["model", "runtime", "provider", "variant", "figure", "cells", "reason"],
        tablefmt="github", disable_numparse=True)


def failed_section(cells: Sequence[CellRecord]) -> str:
    """Every cell that is not ok, with its status and the first line of its error; then the
    figures that ok cells lack, with the reason."""
    failed = [c for c in cells if not is_ok(c)]
    missing = missing_figures_table(cells)
    if not failed:
        return "\n\n".join(x for x in ("None: every cell was measured ok.", missing) if x)
    rows = []
    for cell in failed:
        error = str(cell.error or "").strip().splitlines()
        identity = [cell.model, cell.runtime, cell.provider, cell.variant, cell.batch_size,
                    cell.duration_s, cell.status]
        rows.append([("" if v is None else _md_cell(f"{v:g}" if isinstance(v, float) else v))
                     for v in identity]
                    + [_md_cell(error[0], MAX_ERROR_CHARS) if error else ""])
    table = tabulate(rows, headers=["model", "runtime", "provider", "variant", "batch", "dur s",
                                    "status", "error"], tablefmt="github", disable_numparse=True)
    return "\n\n".join(x for x in (table, missing) if x)


def gemm_peak_section(cells: Sequence[CellRecord]) -> str:
    """Which GEMM peak each utilisation figure is against: its rate, when and under what load
    it was measured, and whether it came from the cache (a busy machine's peak is low)."""
    peaks: dict[tuple, Mapping[str, Any]] = {}
    for cell in cells:
        peak = cell.extra.get("gemm_peak")
        if isinstance(peak, Mapping) and peak.get("flops_per_s"):
            peaks[(cell.runtime, cell.threads)] = peak
    if not peaks:
        return ""
    rows = []
    for (runtime, threads), peak in peaks.items():
        load = peak.get("load_average")
        share = peak.get("others_cpu_share")
        note = "measured under load: utilisation overstated" if peak.get("under_load") else "quiet"
        if peak.get("remeasured_because"):
            note += f"; measured again: {peak['remeasured_because']}"
        rows.append([runtime, threads, f"{peak['flops_per_s'] / 1e9:,.1f}", peak.get("measured_at") or "?",
                     "cache" if peak.get("cached") else "this run",
                     " / ".join(f"{x:g}" for x in load) if load else "?",
                     f"{share:.0%}" if isinstance(share, (int, float)) else "?", peak.get("library") or "?",
                     _md_cell(note)])
    return ("Utilisation = achieved FLOP/s ÷ this attainable dense-matmul rate (`runners/gemm_peak.py`).\n\n"
            + tabulate(rows, headers=["runtime", "threads", "GFLOP/s", "measured at", "from", "load avg 1/5/15",
                                      "others' CPU", "library", "note"], tablefmt="github", disable_numparse=True))


def plots_section(plots: Iterable[Path] | str, run_dir: Path) -> str:
    """Relative links (the folder can be moved or copied), or why there are none."""
    if isinstance(plots, str):
        return plots
    links = [f"![{p.stem.replace('_', ' ')}]({p.relative_to(run_dir).as_posix()})" for p in plots]
    if not links:
        return "No plots: no line has two or more ok points."
    return "\n\n".join(links)


def _draw_plots(cells: Sequence[CellRecord], run: Mapping[str, Any],
                run_dir: Path) -> list[Path] | str:
    """The plots, or a sentence saying why not: a board without matplotlib still gets its tables."""
    try:
        # deferred: the report pulls matplotlib; measurement never loads it, and a report failure is logged, not fatal
        from report.plots import write_plots
    except ImportError as exc:
        return f"No plots: matplotlib could not be imported ({exc})."
    return write_plots(cells, run_dir / PLOTS, title=str(run.get("device_name") or ""))


def _manifest(run: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run's per-model manifest, which fills the gaps of the cells' sizes (a failed cell has none)."""
    models = run.get("models") or {}
    return models if isinstance(models, Mapping) else {}


APPENDIX = "Appendix: machine, environment and settings"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return "#" + "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -_").replace(" ", "-")


def contents_line(body: Sequence[str], appendix: Sequence[str]) -> str:
    """One line of links: the answer and its evidence, then the appendix's parts."""
    links = " · ".join(f"[{h}]({_anchor(h)})" for h in body)
    return (f"Contents: {links} · [Appendix]({_anchor(APPENDIX)}): "
            + " · ".join(f"[{h.lower()}]({_anchor(h)})" for h in appendix))


def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def wall_time_section(run: Mapping[str, Any]) -> str:
    """Predicted against actual wall time per session (``sessions[].wall_time``, ``bench/estimate.py``):
    how far the prediction printed before measuring was from what the run took."""
    rows = []
    for i, session in enumerate(run.get("sessions") or []):
        wall = session.get("wall_time") if isinstance(session, Mapping) else None
        if not isinstance(wall, Mapping):
            continue
        measure = wall.get("measure") or {}
        export = wall.get("export") or {}
        predicted, actual = measure.get("predicted_s"), measure.get("actual_s")
        low, high = measure.get("low_s"), measure.get("high_s")
        rows.append([i + 1, measure.get("cells", "—"), _fmt_duration(export.get("actual_s")),
                     _fmt_duration(predicted) + (f" [{_fmt_duration(low)}, {_fmt_duration(high)}]"
                                                 if low is not None and high is not None else ""),
                     _fmt_duration(actual),
                     f"{actual / predicted:.2f}" if isinstance(actual, (int, float)) and predicted else "—",
                     _fmt_duration(wall.get("predicted_s")), _fmt_duration(wall.get("actual_s"))])
    if not rows:
        return "No prediction recorded (a run from before wavebench predicted its wall time)."
    return ("Measuring time predicted before the first cell (from each cell's MACs, the measured GEMM rate "
            "and the stopping rule's caps: `bench/estimate.py`; [range] = every comparison stopping at its "
            "minimum rounds, or at its caps) against the time it took; h:mm:ss.\n\n"
            + tabulate(rows, headers=["session", "cells", "export & set-up", "measure predicted [range]", "measure actual",
                                      "actual / predicted", "session predicted", "session actual"],
                       tablefmt="github", disable_numparse=True))


def render_report(run: Mapping[str, Any], cells: Sequence[CellRecord],
                  plots: Sequence[Path] | str, run_dir: Path, holder: Holder | None = None) -> str:
    """The Markdown report from what was read and drawn; pure, so tests can check its text.

    The answer comes first (what was compared, which runtime won where, by how much and by which
    test), then its evidence (the comparison, the plots, the discussion, the failures); the
    machine, environment and settings follow as the appendix they are.
    """
    title = run.get("run_id") or run_dir.name
    device = " · ".join(str(run[k]) for k in ("device_name", "device") if run.get(k))
    meta = _meta_rows(run)
    models = run.get("models") if isinstance(run.get("models"), Mapping) else None
    variants = has_variants(cells)
    gemm = gemm_peak_section(cells)
    body: list[tuple[str, str]] = [
        ("The answer", answer_section(run, cells)),
        ("Runtime comparison", comparison_table(cells, fmt="github")),
        *([("Variants (against fp32 PyTorch, same run)", variants_table(cells, fmt="github"))] if variants else []),
        ("Plots", plots_section(plots, run_dir)),
        ("Discussion", discussion(cells, models).rstrip()),
        ("Failed and unsupported cells", failed_section(cells)),
    ]
    appendix: list[tuple[str, str]] = [
        ("Run", tabulate(meta, headers=["", ""], tablefmt="github", disable_numparse=True) if meta
         else "No run record."),
        ("Wall time", wall_time_section(run)),
        ("Parameters", params_table(cells, fmt="github", manifest=_manifest(run))),
        ("Machine fingerprint", fingerprint_section(run)),
        *([("GEMM peak", gemm)] if gemm else []),
        ("Environment", _kv_table(run.get("environment"), "No environment recorded.")),
        ("Settings", _kv_table(run.get("settings"), "No settings recorded.")),
    ]
    sections = [
        f"# wavebench run {title}" + (f" — {device}" if device else ""),
        status_section(run, cells, holder),
        contents_line([h for h, _ in body], [h for h, _ in appendix]),
        *[part for heading, text in body for part in (f"## {heading}", text)],
        f"## {APPENDIX}",
        "What the figures above were measured on and with: the run, the machine and its software, the "
        "GEMM rates behind the utilisation figures, and every setting.",
        *[part for heading, text in appendix for part in (f"### {heading}", text)],
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


# --------------------------------------------------------------------------- writing


def write_report(run_dir: str | Path) -> Path:
    """Write ``table.txt``, ``summary.csv``, ``plots/*.png`` and ``report.md``; return the report path.

    Works on any state a run can be left in: interrupted, still running, no ok cell, one runtime.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not (run_dir / RUN).exists() and not (run_dir / CELLS).exists():
        raise FileNotFoundError(f"{run_dir} holds neither {RUN} nor {CELLS}: not a wavebench run")
    run = load_run(run_dir)
    cells = load_cells(run_dir)
    table = comparison_table(cells)
    if has_variants(cells):
        table += "\n\nVariants (speed-up and output error against fp32 PyTorch, same run):\n" + variants_table(cells)
    (run_dir / TABLE).write_text(table + "\n", encoding="utf-8")
    write_summary_csv(cells, run_dir / SUMMARY)
    plots = _draw_plots(cells, run, run_dir)
    path = run_dir / REPORT
    path.write_text(render_report(run, cells, plots, run_dir, holder_of(run_dir)), encoding="utf-8")
    return path


def answer_lines(run_dir: str | Path) -> list[str]:
    """The run's answer for the terminal (``report/answer.py``): what the end of ``make bench``
    prints before the comparison table."""
    run_dir = Path(run_dir)
    return terminal_lines(load_run(run_dir), load_cells(run_dir))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m report.run_report RUN_DIR...``: (re)write each run's report; 2 on a bad folder."""
    parser = argparse.ArgumentParser(prog="python -m report.run_report",
                                     description="Write table.txt, summary.csv, plots and "
                                                 "report.md for finished or interrupted runs.")
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--print", action="store_true", help="also print the comparison table")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            path = write_report(run_dir)
        except (FileNotFoundError, ValueError, json.JSONDecodeError) as exc:
            print(f"wavebench report: {exc}", file=sys.stderr)
            return 2
        if args.print:
            print((run_dir / TABLE).read_text(encoding="utf-8"))
        holder = holder_of(run_dir)  # a reader never waits for the lock: it only says who holds it
        if holder is not None:
            print(f"note: {run_dir} is being measured by {holder.describe()}: "
                  "this report shows the cells measured so far", file=sys.stderr)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
