"""Per-cell peak memory over the loaded-model baseline."""

import numpy as np

from runners.memory import PeakRSSTracker


def write_status(proc, rss_kb, hwm_kb):
    (proc / "status").write_text(f"Name:\tpython\nVmHWM:\t{hwm_kb} kB\nVmRSS:\t{rss_kb} kB\n")


def test_peak_is_over_the_loaded_baseline_not_the_cell_start(tmp_path):
    (tmp_path / "clear_refs").write_text("")
    write_status(tmp_path, rss_kb=1000, hwm_kb=1000)
    t = PeakRSSTracker(tmp_path)
    t.set_baseline()
    write_status(tmp_path, rss_kb=1500, hwm_kb=1500)  # an arena kept 500 kB from an earlier cell
    t.reset()
    assert (tmp_path / "clear_refs").read_text() == "5"
    write_status(tmp_path, rss_kb=1500, hwm_kb=3000)  # this cell peaked at 3000 kB
    assert t.peak_over_baseline() == 2000 * 1024


def test_unresettable_peak_is_none_with_a_reason(tmp_path):
    write_status(tmp_path, 1000, 1000)
    t = PeakRSSTracker(tmp_path / "missing")
    t.reset()
    assert t.peak_over_baseline() is None and "cannot reset peak RSS" in t.reason


def test_real_process_peak_sees_a_freed_allocation():
    t = PeakRSSTracker()
    t.set_baseline()
    t.reset()
    block = np.ones(25_000_000)  # 200 MB, touched, then freed
    del block
    peak = t.peak_over_baseline()
    assert 190e6 < peak < 260e6
