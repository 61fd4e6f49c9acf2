"""The scipy.stats statistics give the numbers the hand-written ones gave (issue 23).

``tests/fixtures/hand_statistics_outputs.json`` holds what the hand-written Mann–Whitney U
(exact distribution and normal approximation), percentile bootstrap, rank-with-ties and Spearman's
rho computed — on the committed example runs (``docs/examples/compare/results``,
``docs/bench-report``, ``docs/variants-report``) and on a few synthetic samples that reach the
exact path and ties — before they were replaced by ``scipy.stats``.  The old code is gone; its
outputs stay here, so a published figure cannot move unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare import build_comparison, load_results
from compare.stats import bootstrap_ratio_ci, compare_samples, mann_whitney_u
from report.discussion import energy_paragraph, rank_correlations, ranks, spearman
from runstore.folder import read_records, read_run

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "tests/fixtures/hand_statistics_outputs.json").read_text())
EXAMPLES = ROOT / "docs/examples/compare/results"
REL = 1e-12  # scipy and the old code differ in the last bit at most


def _same(value, expected):
    if expected is None or isinstance(expected, (bool, str)):
        return value == expected
    return value == pytest.approx(expected, rel=REL, abs=1e-300)


def _comparison(name: str):
    if name == "threads":
        runs = sorted(p for p in (EXAMPLES / "cpu").iterdir())
        return build_comparison(load_results([f"cpu-1t={runs[0]}", f"cpu-2t={runs[1]}"]), "device")
    return build_comparison(load_results([str(EXAMPLES)]), "runtime")


@pytest.mark.parametrize("name", ["threads", "runtime"])
def test_compare_example_ratios_are_unchanged(name):
    comp = _comparison(name)
    found = [(comp.row_label(row), comp.groups[gi].label, row, gi)
             for row in comp.rows for gi in range(1, len(row.entries))]
    expected = EXPECTED["compare"][name]
    assert [(label, group) for label, group, _, _ in found] == [(e["row"], e["group"]) for e in expected]
    for (label, _, row, gi), exp in zip(found, expected):
        sig = row.ratios[gi].to_dict()
        for key, value in exp["ratio"].items():
            assert _same(sig[key], value), (label, key, sig[key], value)
        base, other = row.entries[0].samples, row.entries[gi].samples
        u, p = mann_whitney_u(base, other)
        assert u == exp["mann_whitney"][0] and _same(p, exp["mann_whitney"][1]), label
        lo, hi = bootstrap_ratio_ci(base, other)
        assert _same(lo, exp["bootstrap_ci"][0]) and _same(hi, exp["bootstrap_ci"][1]), label


def test_synthetic_samples_exact_path_and_ties_are_unchanged():
    cases = EXPECTED["synthetic"]["samples"]
    assert any(len(c["x"]) <= 30 and len(c["y"]) <= 30 for c in cases)  # the exact distribution
    assert any(len(set(c["x"] + c["y"])) < len(c["x"] + c["y"]) for c in cases)  # ties
    for case in cases:
        u, p = mann_whitney_u(case["x"], case["y"])
        assert u == case["mann_whitney"][0] and _same(p, case["mann_whitney"][1])
        lo, hi = bootstrap_ratio_ci(case["x"], case["y"])
        assert _same(lo, case["bootstrap_ci"][0]) and _same(hi, case["bootstrap_ci"][1])
        sig = compare_samples(case["x"], case["y"]).to_dict()
        for key, value in case["compare"].items():
            assert _same(sig[key], value), key


def test_spearman_and_ranks_are_unchanged():
    for case in EXPECTED["synthetic"]["spearman"]:
        assert _same(spearman(case["x"], case["y"]), case["rho"])
        assert ranks(case["x"]).tolist() == case["ranks_x"]
        assert ranks(case["y"]).tolist() == case["ranks_y"]


@pytest.mark.parametrize("folder", ["docs/bench-report", "docs/variants-report"])
def test_report_rank_correlations_of_committed_runs_are_unchanged(folder):
    cells = read_records(ROOT / folder)
    models = read_run(ROOT / folder).models
    found = rank_correlations(cells, models)
    expected = EXPECTED["report"][folder]
    assert len(found) == len(expected) > 0
    for corr, exp in zip(found, expected):
        assert (corr.series, corr.size, corr.batch, corr.duration, corr.models) == (
            exp["series"], exp["size"], exp["batch"], exp["duration"], exp["models"])
        assert _same(corr.rho, exp["rho"])
        disagreement = list(corr.biggest_disagreement) if corr.biggest_disagreement else None
        assert disagreement == exp["biggest_disagreement"]
    assert energy_paragraph(cells, models) == EXPECTED["report"][folder + ":energy"]


def test_spearman_is_undefined_for_constant_or_short_input():
    assert spearman([1.0], [2.0]) is None
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    with pytest.raises(ValueError):
        spearman([1.0, 2.0], [1.0])


def test_mann_whitney_of_identical_values_is_not_significant():
    assert mann_whitney_u([1, 1, 1], [1, 1, 1]) == (4.5, 1.0)
