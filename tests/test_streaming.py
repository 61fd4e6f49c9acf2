"""The streaming path: chunking, state carried across chunks, the two runtimes of Silero VAD
(the files its package ships) against each other and against Silero's own ONNX wrapper."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from runners import streaming as ST

needs_silero = pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None,
                                  reason="silero-vad not installed (pip install --no-deps silero-vad)")


def _speech_and_silence(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Silence, then a voiced harmonic 'vowel' with a syllable envelope, then silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * ST.SAMPLE_RATE)
    t = np.arange(n) / ST.SAMPLE_RATE
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / ST.SAMPLE_RATE
    voiced = sum(np.sin((k + 1) * phase) / (k + 1) for k in range(12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    gate = (t > seconds / 3) & (t < 2 * seconds / 3)
    return (0.3 * voiced * gate + 0.002 * rng.normal(size=n)).astype(np.float32)


def test_chunks_are_in_order_and_the_last_is_zero_padded():
    wave = np.arange(1100, dtype=np.float32)
    chunks = ST.chunks_of(wave, 512)
    assert [c.shape for c in chunks] == [(1, 512)] * 3
    assert np.array_equal(np.concatenate([c[0] for c in chunks])[:1100], wave)
    assert np.all(chunks[-1][0, 1100 - 1024:] == 0) and chunks[-1][0, 75] == 1099


def test_fidelity_counts_decisions_on_the_threshold():
    f = ST.fidelity(np.array([0.1, 0.6, 0.49, 0.9]), np.array([0.1, 0.4, 0.51, 0.9]))
    assert f.max_abs_diff == pytest.approx(0.2) and f.decision_agreement == 0.5 and f.chunks == 4
    assert f.mean_abs_diff == pytest.approx((0 + 0.2 + 0.02 + 0) / 4)
    with pytest.raises(ValueError, match="different lengths"):
        ST.fidelity(np.zeros(3), np.zeros(4))


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ST.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ST.StreamingError, match=r"pip install --no-deps silero-vad"):
        ST.silero_files()


@needs_silero
def test_both_runtimes_agree_chunk_by_chunk_and_the_state_matters():
    import torch

    threads = torch.get_num_threads()
    try:
        files = ST.silero_files()
        assert files.license == "MIT License" and files.torchscript.name == "silero_vad.jit"
        pt, ox = ST.TorchScriptSilero(files.torchscript, 1), ST.OnnxSilero(files.onnx, 1)
        wave = _speech_and_silence()
        a, b = ST.stream(pt, wave), ST.stream(ox, wave)
        assert a.outputs.shape == b.outputs.shape == (-(-len(wave) // 512),)
        assert a.audio_s == pytest.approx(3.0) and a.rtf > 0 and len(a.chunk_seconds) == a.outputs.size
        f = ST.fidelity(a.outputs, b.outputs)
        assert f.max_abs_diff < 1e-4 and f.decision_agreement == 1.0
        third = len(a.outputs) // 3
        assert a.outputs[third + 5: 2 * third - 2].mean() > 0.5 > a.outputs[: third - 2].max()  # it hears the vowel
        # streaming from a fresh state is reproducible; without the carried state the outputs differ
        assert np.array_equal(ST.stream(ox, wave).outputs, b.outputs)
        stateless = []
        for chunk in ST.chunks_of(wave, 512):
            ox.reset()
            stateless.append(ox.step(chunk))
        assert np.abs(np.array(stateless) - b.outputs).max() > 0.05
    finally:
        torch.set_num_threads(threads)


@needs_silero
def test_onnx_driver_equals_silero_own_wrapper():
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad.utils_vad import OnnxWrapper

        files = ST.silero_files()
        wave = _speech_and_silence(2.0, seed=1)
        ours = ST.stream(ST.OnnxSilero(files.onnx, 1), wave).outputs
        wrapper = OnnxWrapper(str(files.onnx), force_onnx_cpu=True)
        theirs = np.array([float(wrapper(torch.from_numpy(c[0]), 16000)) for c in ST.chunks_of(wave, 512)])
        assert np.array_equal(ours, theirs)
    finally:
        torch.set_num_threads(threads)


@needs_silero
def test_per_chunk_latency_uses_the_harness_with_the_state_carried():
    from runners.harness import TimingPolicy

    runner = ST.OnnxSilero(ST.silero_files().onnx, 1)
    chunk = _speech_and_silence(1.0)[None, 8000:8512].copy()
    timing = ST.chunk_latency(runner, chunk, TimingPolicy(min_reps=5, min_time_s=0.01, max_time_s=0.5,
                                                          warmup_calls=1, warmup_time_s=0.0))
    assert len(timing.samples_s) >= 5 and timing.stats.median > 0
    assert np.any(runner.state != 0)  # the calls advanced the recurrent state
