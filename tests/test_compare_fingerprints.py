"""compare and fingerprints: no group mixes software stacks; a machine that changed under one name is said.

Runs are synthetic (compare.fake), with fingerprints shaped as the suite writes them
(``runstore.identity``): the case of issue 17, an "AMD EPYC" VM that moved from a CPU with
AVX-512 to one without between two days, GEMM rate 482 -> 217 GFLOP/s.
"""

from __future__ import annotations

import json

import pytest

from compare._cli import main
from compare.fake import make_cell, write_run
from compare.load import load_results
from compare.match import build_comparison
from runstore.identity import fingerprint_hash, identity

ZEN4_FLAGS = ["sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]
ZEN3_FLAGS = ["sse4_2", "avx", "f16c", "fma", "avx2"]


def environment(torch="2.13.0", flags=ZEN4_FLAGS, model_number=17):
    return {"software": {"wavebench": "0.1.0", "wavebench_git_commit": "0123456789abcdef", "python": "3.11.2",
                         "packages": {"torch": torch, "onnxruntime": "1.22.0", "numpy": "2.2.6"},
                         "onnxruntime_providers": ["CPUExecutionProvider"]},
            "cpu": {"model": "AMD EPYC", "vendor": "AuthenticAMD", "family": 25, "model_number": model_number,
                    "stepping": 1, "kernel_flags": list(flags), "logical_cores": 2}}


def run_with(root, run_id, env, *, ort_gemm, medians=(0.10, 0.05), host="vm"):
    ident = identity(host, env)
    fp = fingerprint_hash(ident)
    cells = [make_cell("logmel", "pytorch", median_s=medians[0], seed=1, fingerprint=fp),
             make_cell("logmel", "onnxruntime", median_s=medians[1], seed=2, fingerprint=fp)]
    session = {"started": run_id, "status": "complete", "fingerprint": fp, "environment": env,
               "gemm_flops_per_s": {"onnxruntime|1": ort_gemm, "pytorch|1": 224e9}}
    return write_run(root, "cpu", run_id, cells, host=host, environment=env, fingerprint=fp,
                     fingerprints={fp: ident}, sessions=[session], device_name="AMD EPYC")


def test_same_device_name_on_other_hardware_and_gemm_rate_is_said_plainly(tmp_path):
    run_with(tmp_path, "20261129-100000", environment(), ort_gemm=482e9)
    run_with(tmp_path, "20261201-100000", environment(flags=ZEN3_FLAGS, model_number=1), ort_gemm=217e9)
    comp = build_comparison(load_results([str(tmp_path)]), by="run")
    hw, gemm = [w for w in comp.warnings if "both labelled cpu (AMD EPYC)" in w]
    assert hw == ("`cpu/20261129-100000` and `cpu/20261201-100000` are both labelled cpu (AMD EPYC) but run on "
                  "different hardware: CPU model 17 → 1; CPU flags: avx512f, avx512dq, avx512cd, avx512bw, "
                  "avx512vl gone")
    assert "measured GEMM rate differs beyond the ±25% noise: onnxruntime 1 thread(s) 482 → 217 GFLOP/s (-55%)" in gemm
    assert "pytorch" not in gemm.split("noise:")[1].split(":")[0]  # 224 -> 224 is not news


def test_same_hardware_within_the_noise_gives_no_note(tmp_path):
    run_with(tmp_path, "20261129-100000", environment(), ort_gemm=482e9)
    run_with(tmp_path, "20261201-100000", environment(), ort_gemm=430e9)  # -11%
    comp = build_comparison(load_results([str(tmp_path)]), by="run")
    assert not [w for w in comp.warnings if "both labelled" in w]


def test_a_device_group_never_pools_two_software_stacks(tmp_path, capsys):
    run_with(tmp_path / "results", "20261129-100000", environment(torch="2.12.0"), ort_gemm=482e9)
    run_with(tmp_path / "results", "20261201-100000", environment(torch="2.13.0"), ort_gemm=482e9,
             medians=(0.2, 0.1))
    # the later run re-measured only pytorch: the "cpu" group would hold 2.13 pytorch and 2.12 ORT cells
    later = tmp_path / "results" / "cpu" / "20261201-100000" / "cells.jsonl"
    later.write_text(later.read_text().splitlines()[0] + "\n")
    out = tmp_path / "out"
    assert main(["--results", str(tmp_path / "results"), "--by", "device", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("compare: error: group 'cpu' mixes cells measured with "
                                                    "different software (torch 2.12.0 → 2.13.0: ")
    assert "--by run (BY=run)" in err and not out.exists()
    # along runs, each group is one run and one stack: allowed, and the difference is named
    assert main(["--results", str(tmp_path / "results"), "--by", "run", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert ("software differs between `cpu/20261129-100000` and `cpu/20261201-100000`: torch 2.12.0 → 2.13.0"
            in err)
    md = (out / "compare.md").read_text()
    assert "torch 2.12.0 → 2.13.0" in md
    # the environment table shows each run's fingerprint, CPU identity, flags and GEMM rates
    env = " ".join(md.split("## Environment")[1].split("##")[0].split())
    assert "| CPU identity | AuthenticAMD family 25 model 17 stepping 1 | AuthenticAMD family 25 model 17" in env
    assert "| GEMM GFLOP/s (runtime threads) | onnxruntime t1 482, pytorch t1 224 |" in env
    assert "| CPU kernel flags | sse4_2, avx, f16c, fma, avx2, avx512f," in env


@pytest.mark.parametrize("by", ["runtime", "variant"])
def test_within_run_axes_refuse_two_stacks_in_one_group(tmp_path, by):
    run_with(tmp_path, "20261129-100000", environment(torch="2.12.0"), ort_gemm=482e9)
    run_with(tmp_path, "20261201-100000", environment(torch="2.13.0"), ort_gemm=482e9)
    with pytest.raises(ValueError, match="torch 2.12.0 → 2.13.0"):
        build_comparison(load_results([str(tmp_path)]), by=by)
    # one run alone is one stack
    comp = build_comparison(load_results([str(tmp_path / "cpu" / "20261201-100000")]), by=by)
    assert not [w for w in comp.warnings if "software" in w]


def test_a_run_from_before_fingerprints_is_read_from_its_environment(tmp_path):
    old_env = environment(torch="2.12.0")
    write_run(tmp_path, "cpu", "20261101-100000", [make_cell("logmel", "pytorch", seed=3)], host="vm",
              environment=old_env)
    run_with(tmp_path, "20261201-100000", environment(torch="2.13.0"), ort_gemm=482e9)
    comp = build_comparison(load_results([str(tmp_path)]), by="run")
    assert any(w.endswith("torch 2.12.0 → 2.13.0") for w in comp.warnings)
    data = json.loads((tmp_path / "cpu" / "20261101-100000" / "run.json").read_text())
    assert "fingerprints" not in data
