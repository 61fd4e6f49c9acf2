"""``python -m report`` on the committed runs under ``docs/`` reproduces every file it wrote there.

The report, its tables and ``summary.csv`` must come back byte for byte from ``run.json`` and
``cells.jsonl`` alone (issue 23: typed records to the last reader, no published figure moves).
The plots are compared byte for byte too when this matplotlib is the release that drew them (a
PNG names it in its ``Software`` text chunk); another release may rasterise text differently, so
there only the set of plots is compared.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import pytest

from report.run_report import main as report_main

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ["docs/bench-report", "docs/variants-report"]
INPUTS = {"run.json", "cells.jsonl", "gemm_peak.json"}  # what a run folder holds before its report


def drawn_by(png: Path) -> str | None:
    """The matplotlib release named in a PNG's ``Software`` chunk."""
    match = re.search(rb"Matplotlib version([0-9][^ ,\x00]*)", png.read_bytes()[:4096])
    return match.group(1).decode() if match else None


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in INPUTS}


@pytest.mark.parametrize("name", COMMITTED)
def test_python_m_report_reproduces_the_committed_report(name, tmp_path, capsys):
    committed = ROOT / name
    run = tmp_path / Path(name).name
    run.mkdir()
    for file in INPUTS:
        if (committed / file).exists():
            shutil.copy2(committed / file, run / file)
    assert report_main([str(run)]) == 0
    want, got = outputs(committed), outputs(run)
    assert sorted(got) == sorted(want)
    texts = [f for f in want if not f.endswith(".png")]
    assert texts and [f for f in texts if got[f] != want[f]] == []
    plots = [f for f in want if f.endswith(".png")]
    assert plots
    same_release = [f for f in plots if drawn_by(committed / f) == matplotlib.__version__]
    assert [f for f in same_release if got[f] != want[f]] == []
