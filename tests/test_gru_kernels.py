"""The GRU kernel probe (benchmarks/gru_kernels.py): its NumPy reference is PyTorch's GRU, its two
ONNX graphs compute that GRU under ONNX Runtime, a runtime that is wrong is reported as such, and
the CPU features are read from an auxv as the kernel lays it out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import gru_kernels as gk

SMALL = gk.Case(inputs=6, hidden=5, frames=7, batch=2, input_scale=2.0)


def test_reference_is_pytorchs_gru():
    torch = pytest.importorskip("torch")
    w = gk.draw(SMALL, seed=3)
    with torch.inference_mode():
        got = gk.torch_gru(w).double()(torch.from_numpy(w["x"]).double()).numpy()
    want = gk.reference(w)
    assert want.shape == (7, 2, 5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.abs(want).max() > 0.1  # not a trivially small output


def test_both_onnx_graphs_compute_the_gru(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    w = gk.draw(SMALL, seed=4)
    want = gk.reference(w)
    for graph in (gk.gru_op_graph(w), gk.unrolled_graph(w)):
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": w["x"]})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


def test_gate_order_matters(tmp_path):
    """Swapping the z and r gates (the PyTorch-to-ONNX reordering) changes the output: the check
    would catch a reordering mistake."""
    w = gk.draw(SMALL, seed=5)
    swapped = dict(w, Wz=w["Wr"], Wr=w["Wz"])
    assert np.abs(gk.reference(swapped) - gk.reference(w)).max() > 1e-2


def test_check_reports_every_runtime_and_flags_a_wrong_one(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(gk, "CASES", {"small": SMALL})
    monkeypatch.setattr(gk, "EDGE_CASES", ())
    said = gk.make(tmp_path, ["small"])
    assert said == ["small: weights, GRU-op and unrolled ONNX graphs"]

    def wrong(folder, case, w):  # a runtime whose tanh is off in its last bits and then some
        return gk.reference(w, np.float32) * 0.9, "wrong 1.0"

    monkeypatch.setitem(gk.RUNNERS, "wrong", ("a bad kernel", wrong))
    # in this process (the monkeypatched runner exists only here), so only the runtimes asserted on:
    # the others' kernels (OpenVINO's, PyTorch's with oneDNN toggled) stay out of the test process,
    # as the tool's own default keeps every runtime in a child
    asked = ["numpy-float32", "onnxruntime-gru", "onnxruntime-unrolled", "executorch", "wrong"]
    rows = {r.runtime: r for r in gk.check(tmp_path, asked, isolate=False) if r.case == "small"}
    assert set(rows) == set(asked)
    assert rows["numpy-float32"].status == "ok" and rows["numpy-float32"].max_abs_err < 1e-5
    assert rows["onnxruntime-gru"].status == "ok" and rows["onnxruntime-unrolled"].status == "ok"
    assert rows["wrong"].status == "differs" and rows["wrong"].cosine == pytest.approx(1.0)  # scaled: cosine 1, error not
    assert rows["wrong"].max_abs_err == pytest.approx(0.1 * np.abs(gk.reference(gk.draw(SMALL))).max(), rel=1e-4)
    assert rows["executorch"].status == "absent" and "not made" in rows["executorch"].note


def test_check_command_writes_a_run_and_exit_codes(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(gk, "CASES", {"small": SMALL})
    monkeypatch.setattr(gk, "EDGE_CASES", ())
    assert gk.main(["check", str(tmp_path)]) == 2
    assert "no gru-*.npz" in capsys.readouterr().err
    assert gk.main(["make", str(tmp_path), "--cases", "huge"]) == 2
    assert "unknown case 'huge'; valid: small" in capsys.readouterr().err
    assert gk.main(["make", str(tmp_path)]) == 0
    assert gk.main(["check", str(tmp_path), "--runtimes", "cuda"]) == 2
    out = tmp_path / "run.json"
    assert gk.main(["check", str(tmp_path), "--runtimes", "onnxruntime-gru,numpy-float32", "--label", "here",
                    "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["machine"]["label"] == "here"
    assert {r["runtime"] for r in run["rows"]} == {"onnxruntime-gru", "numpy-float32", "onnxruntime"}
    assert gk.verdict(run) == "4 ok, 0 off"
    run["rows"][0].update(status="differs", cosine=0.83)
    assert gk.verdict(run).startswith("3 ok, 1 off: numpy-float32 (small, cosine 0.8300)")
    text = gk.report([run, dict(run, machine=dict(run["machine"], label="there", qemu_cpu="max", hwcaps=["sve"]))])
    assert "| small | numpy-float32 | " in text and "**differs**" in text
    assert "| there | " in text and "| max | sve |" in text


def test_hwcaps_from_an_auxv():
    sve, sve2, bf16 = 1 << 22, 1 << 1, 1 << 14
    pairs = [(6, 4096), (16, sve | (1 << 20)), (26, sve2 | bf16), (0, 0)]  # AT_PAGESZ, AT_HWCAP, AT_HWCAP2, AT_NULL
    auxv = np.array(pairs, dtype=np.uint64).tobytes()
    assert gk.hwcaps(auxv) == ["asimddp", "sve", "sve2", "bf16"]
    assert gk.hwcaps(np.array([(16, 1 << 10), (0, 0)], dtype=np.uint64).tobytes()) == ["asimdhp"]


def test_each_runtime_runs_in_a_child_and_a_crash_is_a_row(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(gk, "CASES", {"small": SMALL})
    monkeypatch.setattr(gk, "EDGE_CASES", ())
    gk.make(tmp_path, ["small"])
    [row] = gk.check(tmp_path, ["numpy-float32"])  # a real child process, its rows read back
    assert (row.case, row.runtime, row.status) == ("small", "numpy-float32", "ok")
    assert row.max_abs_err is not None and 0 < row.max_abs_err < 1e-5
    crash = tmp_path / "crash.sh"  # what a kernel that SIGSEGVs under an emulator looks like from outside
    crash.write_text("#!/bin/sh\necho 'qemu: uncaught target signal 11' >&2\nkill -SEGV $$\n")
    crash.chmod(0o755)
    monkeypatch.setattr(gk.sys, "executable", str(crash))
    rows = gk.check(tmp_path, ["onnxruntime-gru"])
    assert [(r.case, r.runtime, r.status) for r in rows] == [("small", "onnxruntime-gru", "error"),
                                                              ("activations", "onnxruntime-activations", "error")]
    assert rows[0].note == "the process died: killed by signal 11 (SIGSEGV); last words: qemu: uncaught target signal 11"
