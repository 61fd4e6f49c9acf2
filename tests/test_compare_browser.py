"""The HTML report in a real headless Chromium: no console errors, tables sortable, plots decoded.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it).  Skipped,
saying so, when ``/usr/bin/chromium`` is absent.  The screenshot is kept at
``$WAVEBENCH_ARTIFACTS/compare/compare-report.png`` (default ``artifacts/`` at the repo root,
git-ignored).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compare._cli import main
from compare.fake import example_environment, make_cell, write_run

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio"]

HAVE_CHROMIUM = os.access(CHROMIUM, os.X_OK)
# CI can insist: WAVEBENCH_REQUIRE_CHROMIUM=1 turns the skip into a failure.
REQUIRED = os.environ.get("WAVEBENCH_REQUIRE_CHROMIUM") == "1"
pytestmark = pytest.mark.skipif(
    not HAVE_CHROMIUM and not REQUIRED,
    reason=f"{CHROMIUM} not installed (apt-get install -y chromium); the HTML report is only "
           "checked in a real browser")


def test_chromium_present_when_required():
    assert HAVE_CHROMIUM, f"WAVEBENCH_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing"


def chromium(args: list[str], profile: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def console_lines(stderr: str) -> list[str]:
    """Every console message Chromium logged (errors, warnings, CSP violations, uncaught)."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    env = example_environment("AMD EPYC", 2)
    for threads in (1, 2):
        cells = []
        for i, (model, base) in enumerate([("logmel", 0.002), ("apc", 0.03), ("wav2vec2-base", 0.2)]):
            for rt, factor in (("pytorch", 1.0), ("onnxruntime", 0.75)):
                for dur in (1, 2, 4):
                    if model == "apc" and rt == "onnxruntime" and dur == 4 and threads == 2:
                        continue  # a missing cell
                    speed = 1.0 if model == "logmel" else 1.0 / (1.8 if threads == 2 else 1.0)
                    cells.append(make_cell(model, rt, median_s=base * dur * factor * speed,
                                           seed=100 * threads + 10 * i + dur, threads=threads,
                                           duration_s=dur))
        write_run(root, f"cpu-{threads}t", f"2025010{threads}-000000", cells, environment=env,
                  settings={"threads": threads})
    out = tmp_path_factory.mktemp("report")
    assert main(["--results", str(root), "--out", str(out), "--quiet"]) == 0
    return out / "compare.html"


def test_page_renders_without_console_errors_and_sorts(report, tmp_path):
    proc = chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                     "--dump-dom", report.as_uri() + "#selftest"], tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_lines(proc.stderr) == [], "\n".join(console_lines(proc.stderr))
    dom = proc.stdout
    assert 'data-selfcheck="ok"' in dom, dom[-2000:]
    m = re.search(r'<output id="selfcheck"[^>]*>(.*?)</output>', dom, re.S)
    assert m, "the page's self-check did not run"
    check = json.loads(html.unescape(m.group(1)))
    assert check["errors"] == []
    assert check["table_ids"] == ["table-summary", "table-latency", "table-environment", "table-runs"]
    assert check["rows"][1] == 18  # latency: 3 models x 2 runtimes x 3 durations
    assert check["images"] == 4 and check["images_decoded"] == 4  # speedup + 3 models
    assert check["sort_checked"] and check["sort_ok"] is True
    assert "missing" in dom and "AMD EPYC" in dom


def test_screenshot(report, tmp_path):
    shot = tmp_path / "compare.png"
    proc = chromium(["--hide-scrollbars", "--window-size=1400,2200", "--virtual-time-budget=10000",
                     f"--screenshot={shot}", report.as_uri()], tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # not a blank page
    keep = Path(os.environ.get("WAVEBENCH_ARTIFACTS", REPO / "artifacts")) / "compare"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, keep / "compare-report.png")
    shutil.copyfile(report, keep / "compare-report.html")
