"""``make compare``: results of several devices, runs, runtimes or variants side by side.

Read-only over result folders (``results/<device>/<run_id>/``); writes a Markdown report, a
self-contained HTML page, a JSON dump and plots into one output folder.

    from compare import load_results, build_comparison, make_plots, write_reports
    runs = load_results(["results", "pi=copied/pi-results"])
    comp = build_comparison(runs, by="device")
    write_reports(comp, make_plots(comp, "out/plots"), "out")

or ``python -m compare --results results,pi=copied/results --by device``.
"""

from ._cli import compare_folders
from .load import ResultError, Run, find_run_folders, load_results, load_run
from .match import AXES, Comparison, build_comparison
from .plots import make_plots
from .report import write_reports
from .stats import bootstrap_ratio_ci, compare_samples, mann_whitney_u

__all__ = ["AXES", "Comparison", "ResultError", "Run", "bootstrap_ratio_ci", "build_comparison",
           "compare_samples", "find_run_folders", "load_results", "load_run", "make_plots",
           "mann_whitney_u", "run_compare", "write_reports"]


def run_compare(results, by: str = "device", out=None, base: str | None = None):
    """Load, match, plot and write the reports; returns (Comparison, {kind: path})."""
    return compare_folders(results, by=by, out=out, base=base)
