"""compare: loading and refusing result folders, matching, significance, missing cells, reports.

Every test builds its own synthetic result folders (compare.fake) — no real run needed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from compare import ResultError, build_comparison, load_results
from compare._cli import main
from compare.fake import example_environment, make_cell, write_run
from compare.stats import bootstrap_ratio_ci, compare_samples, mann_whitney_u
from compare.tables import latency_table

# --------------------------------------------------------------------------------------------
# statistics


def test_mann_whitney_exact_known_values():
    # complete separation of 4 vs 4: P = 2 / C(8, 4) = 2/70
    assert mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8]) == (0.0, pytest.approx(2 / 70))
    # interleaved: U = 10 of 25, exact two-sided p = 0.6905 (scipy.stats.mannwhitneyu)
    u, p = mann_whitney_u([1, 2, 3, 4, 5], [1.5, 2.5, 3.5, 4.5, 5.5])
    assert u == 10.0 and p == pytest.approx(0.690476, abs=1e-5)


def test_mann_whitney_ties_use_normal_approximation():
    # by hand: U=3, mu=12.5, tie-corrected var=21.53, z=(9.5-0.5)/4.64 -> p=0.0524
    u, p = mann_whitney_u([1, 1, 2, 2, 3], [2, 3, 3, 4, 4])
    assert u == 3.0 and p == pytest.approx(0.05241, abs=1e-4)
    assert mann_whitney_u([1, 1, 1], [1, 1, 1])[1] == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_identical_distributions_are_not_significant(seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(np.log(0.1), 0.05, 20)
    b = rng.lognormal(np.log(0.1), 0.05, 20)
    sig = compare_samples(a, b)
    assert sig.significant is False and sig.mark == "~"
    assert sig.ci_low < 1.0 < sig.ci_high


@pytest.mark.parametrize("n", [5, 10, 50])
def test_clear_2x_shift_is_significant(n):
    rng = np.random.default_rng(n)
    base = rng.lognormal(np.log(0.2), 0.05, n)
    other = rng.lognormal(np.log(0.1), 0.05, n)
    sig = compare_samples(base, other)
    assert sig.significant is True and sig.mark == ""
    assert sig.speedup == pytest.approx(2.0, rel=0.1) and sig.ci_low > 1.0 and sig.p_value < 0.05


def test_small_shift_with_few_samples_is_noise():
    a = make_cell("m", median_s=0.100, spread=0.05, n=10, seed=1)["latency_samples_s"]
    b = make_cell("m", median_s=0.096, spread=0.05, n=10, seed=2)["latency_samples_s"]
    sig = compare_samples(a, b)
    assert sig.speedup == pytest.approx(1.0417, rel=1e-3) and sig.significant is False


def test_without_raw_samples_the_ratio_is_untested():
    sig = compare_samples([], [], base_median=0.2, other_median=0.1)
    assert sig.speedup == 2.0 and sig.significant is None and sig.mark == "?"


def test_bootstrap_is_reproducible():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 0.1, 15), rng.normal(2, 0.1, 15)
    assert bootstrap_ratio_ci(a, b) == bootstrap_ratio_ci(a, b)
    lo, hi = bootstrap_ratio_ci(a, b)
    assert lo < np.median(a) / np.median(b) < hi


# --------------------------------------------------------------------------------------------
# synthetic result folders


def two_devices(root: Path) -> Path:
    """cpu at 1 thread and rpi at 4: apc 2x slower on the Pi; logmel the same (noise);
    tera only on the cpu; hubert failed (oom) on the Pi."""
    write_run(root, "cpu", "20250101-000000", [
        make_cell("apc", "pytorch", median_s=0.10, seed=1, threads=1),
        make_cell("apc", "onnxruntime", median_s=0.08, seed=2, threads=1),
        make_cell("logmel", "pytorch", median_s=0.002, seed=3, threads=1),
        make_cell("tera", "pytorch", median_s=0.3, seed=4, threads=1),
        make_cell("hubert-base", "pytorch", median_s=0.5, seed=5, threads=1),
    ], host="laptop", environment=example_environment("Intel i7", 8))
    write_run(root, "rpi", "20250102-000000", [
        make_cell("apc", "pytorch", median_s=0.20, seed=11, threads=4),
        make_cell("apc", "onnxruntime", median_s=0.16, seed=12, threads=4),
        make_cell("logmel", "pytorch", median_s=0.002, seed=13, threads=4),
        make_cell("hubert-base", "pytorch", status="oom", threads=4),
    ], host="pi", environment=example_environment("Cortex-A76", 4))
    return root


def row_by(comp, **fields):
    rows = [r for r in comp.rows if all(r.fields.get(k) == v for k, v in fields.items())]
    assert len(rows) == 1, (fields, [r.fields for r in comp.rows])
    return rows[0]


def test_match_by_device(tmp_path):
    comp = build_comparison(load_results([str(two_devices(tmp_path / "results"))]), "device")
    assert [g.label for g in comp.groups] == ["cpu", "rpi"]
    apc = row_by(comp, model="apc", runtime="pytorch")
    assert apc.settings == "provider=cpu, threads=1|4"  # threads differ but the cells match
    sig = apc.ratios[1]
    assert sig.speedup == pytest.approx(0.5, rel=0.05) and sig.significant is True
    logmel = row_by(comp, model="logmel")
    assert logmel.ratios[1].significant is False
    tera = row_by(comp, model="tera")
    assert tera.entries[1] is None and tera.ratios[1] is None and tera.missing == [1]
    hubert = row_by(comp, model="hubert-base")
    assert hubert.entries[1].status == "oom" and hubert.ratios[1] is None

    texts = {tuple(c.text for c in row[:2]): [c.text for c in row] for row in latency_table(comp).rows}
    assert "missing" in texts[("tera", "pytorch")]
    assert "oom" in texts[("hubert-base", "pytorch")]
    assert "2.00× slower" in texts[("apc", "pytorch")]
    assert any(t.startswith("~") for t in texts[("logmel", "pytorch")])


def test_match_by_runtime_inside_each_run(tmp_path):
    comp = build_comparison(load_results([str(two_devices(tmp_path / "results"))]), "runtime")
    assert [g.label for g in comp.groups] == ["pytorch", "onnxruntime"]
    row = row_by(comp, context="cpu/20250101-000000", model="apc")
    assert row.settings == "provider=cpu|CPUExecutionProvider"
    assert row.ratios[1].speedup == pytest.approx(1.25, rel=0.05) and row.ratios[1].significant
    assert row_by(comp, context="rpi/20250102-000000", model="apc").ratios[1].significant
    assert row_by(comp, context="cpu/20250101-000000", model="tera").missing == [1]


def test_match_by_variant(tmp_path):
    write_run(tmp_path, "cpu", "r1", [
        make_cell("apc", "onnxruntime", variant="fp32", median_s=0.1, seed=1),
        make_cell("apc", "onnxruntime", variant="int8", median_s=0.05, seed=2),
        make_cell("tera", "onnxruntime", variant="int8", median_s=0.05, seed=3),
    ])
    comp = build_comparison(load_results([str(tmp_path)]), "variant")
    assert [g.label for g in comp.groups] == ["fp32", "int8"]
    assert row_by(comp, model="apc").ratios[1].speedup == pytest.approx(2.0, rel=0.05)
    assert row_by(comp, model="tera").missing == [0]


def test_latest_record_per_cell_wins_inside_a_run(tmp_path):
    folder = write_run(tmp_path, "cpu", "r1", [
        make_cell("apc", median_s=0.5, seed=1), make_cell("apc", median_s=0.1, seed=2)])
    run = load_results([str(folder)])[0]
    assert len(run.cells) == 1
    assert next(iter(run.cells.values())).latency_median_s == pytest.approx(0.1)


def test_later_run_of_a_device_wins(tmp_path):
    write_run(tmp_path, "cpu", "20250101-000000", [make_cell("apc", median_s=0.5, seed=1)])
    write_run(tmp_path, "cpu", "20250105-000000", [make_cell("apc", median_s=0.1, seed=1)])
    write_run(tmp_path, "rpi", "20250102-000000", [make_cell("apc", median_s=0.2, seed=1)])
    comp = build_comparison(load_results([str(tmp_path)]), "device")
    assert comp.groups[0].label == "cpu" and len(comp.groups[0].runs) == 2
    assert row_by(comp, model="apc").entries[0].median == pytest.approx(0.1)
    by_run = build_comparison(load_results([str(tmp_path)]), "run")
    assert len(by_run.groups) == 3


def test_same_device_name_on_two_hosts_and_labels(tmp_path):
    write_run(tmp_path / "a", "cpu", "r1", [make_cell("apc", median_s=0.1, seed=1)], host="laptop1")
    write_run(tmp_path / "b", "cpu", "r1", [make_cell("apc", median_s=0.2, seed=2)], host="laptop2")
    comp = build_comparison(load_results([str(tmp_path / "a"), str(tmp_path / "b")]), "device")
    assert [g.label for g in comp.groups] == ["cpu@laptop1", "cpu@laptop2"]
    comp = build_comparison(load_results([f"old={tmp_path / 'a'}", f"new={tmp_path / 'b'}"]), "device")
    assert [g.label for g in comp.groups] == ["old", "new"]
    comp = build_comparison(load_results([f"old={tmp_path / 'a'}", f"new={tmp_path / 'b'}"]),
                            "device", base="new")
    assert comp.base.label == "new"
    with pytest.raises(ValueError, match="no such group"):
        build_comparison(load_results([str(tmp_path / "a")]), "device", base="nope")


def test_a_board_profile_run_elsewhere_is_labelled_with_the_hardware_measured(tmp_path):
    write_run(tmp_path, "cpu", "r1", [make_cell("apc", median_s=0.1, seed=1)])
    rehearsal = write_run(tmp_path, "rpi", "r2", [make_cell("apc", median_s=0.1, seed=2)])
    meta = json.loads((rehearsal / "run.json").read_text())
    meta.update(device_name="AMD EPYC 7B13", hardware_note="rpi profile on AMD EPYC 7B13 x86_64 — not a Raspberry Pi")
    (rehearsal / "run.json").write_text(json.dumps(meta))
    comp = build_comparison(load_results([str(tmp_path)]), "device")
    assert [g.label for g in comp.groups] == ["cpu", "rpi on AMD EPYC 7B13"]
    assert "rpi on AMD EPYC 7B13/r2" in [g.label for g in build_comparison(load_results([str(tmp_path)]), "run").groups]


def test_several_providers_in_one_group_pair_by_setting(tmp_path):
    write_run(tmp_path, "cpu", "r1", [make_cell("apc", "onnxruntime", median_s=0.1, seed=1)])
    write_run(tmp_path, "jetson", "r2", [
        make_cell("apc", "onnxruntime", provider="CUDAExecutionProvider", median_s=0.02, seed=2),
        make_cell("apc", "onnxruntime", provider="TensorrtExecutionProvider", median_s=0.01, seed=3)])
    comp = build_comparison(load_results([str(tmp_path)]), "device")
    assert len(comp.rows) == 2
    speedups = sorted(round(r.ratios[1].speedup) for r in comp.rows)
    assert speedups == [5, 10]
    assert all(r.entries[0] is not None for r in comp.rows)  # the cpu cell faces both


# --------------------------------------------------------------------------------------------
# loading and refusing


def test_discovery_of_root_device_and_run_folders(tmp_path):
    root = two_devices(tmp_path / "results")
    (root / "compare" / "20250101-000000").mkdir(parents=True)  # earlier reports are ignored
    assert len(load_results([str(root)])) == 2
    assert len(load_results([str(root / "rpi")])) == 1
    assert len(load_results([str(root / "rpi" / "20250102-000000")])) == 1
    assert len(load_results([str(root), str(root / "rpi")])) == 2  # no duplicates


def test_truncated_last_line_is_skipped_but_a_broken_line_is_refused(tmp_path):
    folder = write_run(tmp_path, "cpu", "r1", [make_cell("apc", seed=1), make_cell("tera", seed=2)])
    cells = folder / "cells.jsonl"
    cells.write_text(cells.read_text() + '{"model": "hub')
    run = load_results([str(folder)])[0]
    assert len(run.cells) == 2 and run.skipped_lines == 1 and run.warnings
    lines = cells.read_text().splitlines()
    cells.write_text("\n".join([lines[0], "not json", lines[1]]) + "\n")
    with pytest.raises(ResultError, match=r"cells.jsonl:2: not a wavebench cell record"):
        load_results([str(folder)])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


BAD_FOLDERS = {
    "empty": (lambda p: p.mkdir(parents=True), "not a wavebench result"),
    "other-files": (lambda p: (p.mkdir(parents=True), (p / "notes.txt").write_text("hi")),
                    "not a wavebench result"),
    "no-run-json": (lambda p: (p.mkdir(parents=True), (p / "cells.jsonl").write_text("")),
                    "not a wavebench result"),
    "run-json-not-json": (lambda p: (p.mkdir(parents=True), (p / "run.json").write_text("{oops"),
                                     (p / "cells.jsonl").write_text("")), "unreadable JSON"),
    "foreign-run-json": (lambda p: (p.mkdir(parents=True),
                                    (p / "run.json").write_text('{"name": "pyperf"}'),
                                    (p / "cells.jsonl").write_text("")), "missing schema_version"),
    "future-schema": (lambda p: write_run(p.parent, p.name, "r1", [make_cell("apc")],
                                          schema_version=2, wavebench_version="9.0"),
                      "incompatible results (schema_version 2 from wavebench 9.0"),
    "no-cells": (lambda p: (write_run(p.parent, p.name, "r1", []),
                            (p / "r1" / "cells.jsonl").unlink()), "cells.jsonl missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_bad_folders_are_refused_and_nothing_is_written(tmp_path, capsys, case):
    good = two_devices(tmp_path / "results")
    bad = tmp_path / "bad" / case
    make, message = BAD_FOLDERS[case]
    make(bad)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    rc = main(["--results", f"{good},{bad}", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and str(bad) in err
    assert err.count("\n") == 1 and err.startswith("compare: error: ")
    assert not out.exists() and snapshot(tmp_path) == before


def test_missing_folder_and_bad_axis(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--by", "colour"])
    assert exc.value.code == 2


def test_out_inside_a_result_folder_is_refused(tmp_path, capsys):
    root = two_devices(tmp_path / "results")
    before = snapshot(root)
    rc = main(["--results", str(root), "--out", str(root / "cpu" / "20250101-000000" / "cmp")])
    assert rc == 2 and "never writes into results" in capsys.readouterr().err
    assert snapshot(root) == before


# --------------------------------------------------------------------------------------------
# the command line and the reports


def test_cli_end_to_end(tmp_path, capsys):
    root = two_devices(tmp_path / "results")
    before = snapshot(root)
    out = tmp_path / "out"
    assert main(["--results", str(root), "--by", "device", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2.00× slower" in printed and "missing" in printed and "wrote html" in printed
    assert snapshot(root) == before  # read-only
    md = (out / "compare.md").read_text()
    assert "## Latency" in md and "## Environment" in md and "cpu median [IQR] ms |" in md
    assert "missing" in md and "~" in md and "oom" in md
    assert "![speedup over cpu](plots/speedup.png)" in md
    assert "Intel i7" in md and "Cortex-A76" in md
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["latency_apc.png", "latency_hubert-base.png", "latency_logmel.png",
                     "latency_tera.png", "speedup.png"]
    assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    data = json.loads((out / "compare.json").read_text())
    assert data["groups"] == ["cpu", "rpi"] and len(data["rows"]) == 5

    page = (out / "compare.html").read_text()
    assert page.count('<table class="sortable"') == 4
    assert page.count("data:image/png;base64,") == len(plots)
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page


def test_cli_by_runtime_and_run(tmp_path):
    root = two_devices(tmp_path / "results")
    for by in ("runtime", "run", "variant"):
        out = tmp_path / f"out-{by}"
        assert main(["--results", str(root), "--by", by, "--out", str(out), "--quiet"]) == 0
        assert (out / "compare.html").exists()


def test_default_out_dir_is_under_results_compare(tmp_path, monkeypatch, capsys):
    root = two_devices(tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet"]) == 0  # default --results results
    (made,) = (tmp_path / "results" / "compare").iterdir()
    assert (made / "compare.md").exists()
    # a second compare still reads the same two runs: the report folder is not a run
    assert main(["--quiet", "--out", str(tmp_path / "again")]) == 0
    assert len(json.loads((tmp_path / "again" / "compare.json").read_text())["groups"]) == 2
    assert os.path.isdir(root)


def test_single_group_is_shown_alone_with_a_note(tmp_path, capsys):
    write_run(tmp_path, "cpu", "r1", [make_cell("apc", seed=1)])
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "only one group" in capsys.readouterr().err
