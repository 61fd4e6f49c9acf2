"""GE2E (Resemblyzer's voice encoder): exact weights from the installed package, the torch mel
front end against numpy/librosa references, the network against Resemblyzer's own forward.

Tolerances: the front end is float32 (a DFT as a convolution) against float64/float32 FFTs:
measured relative error 2e-6 at most (of the value plus 1e-3 of the largest value), asserted at
1e-4.  Embeddings are L2-normalised (components <= 1): measured max abs difference 1.4e-7
against Resemblyzer's pipeline on 1.5 s of audio, asserted at 1e-5 (float32 LSTM arithmetic in
a different order over 150 steps).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from models import weights as W
from models.build import build_weighted
from models.ge2e import CenteredPowerMel, GE2EEncoder, package_facts, resemblyzer_to_wavebench, slaney_mel_matrix
from models.registry import get_spec

HAVE_PACKAGE = importlib.util.find_spec("resemblyzer") is not None
needs_package = pytest.mark.skipif(not HAVE_PACKAGE, reason="resemblyzer not installed (pip install --no-deps resemblyzer==0.1.4)")


def _speechlike(n: int = 24000, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics with a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(0.5 ** k * np.sin((k + 1) * phase) for k in range(6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * x + 0.01 * rng.normal(size=n)).astype(np.float32)


def _pretrained() -> GE2EEncoder:
    model = get_spec("ge2e").build()
    W.load_weights("ge2e", model, "pretrained")
    return model.eval()


def _raw_state() -> dict[str, torch.Tensor]:
    from models.ge2e import packaged_weights_path

    return torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)["model_state"]


@needs_package
def test_packaged_weights_load_exactly_and_label_names_the_package():
    model = get_spec("ge2e").build()
    label = W.load_weights("ge2e", model, "pretrained")
    assert label.startswith("pretrained:resemblyzer-0.1.4/pretrained.pt@") and len(label.rsplit("@")[1]) == 12
    raw = _raw_state()
    mapped = resemblyzer_to_wavebench(raw)
    own = model.state_dict()
    assert set(mapped) == set(own)  # every tensor of the model comes from the file
    for key, tensor in mapped.items():
        assert torch.equal(own[key], tensor), key
    assert own["lstm.2.weight_hh_l0"].data_ptr() != raw["lstm.weight_hh_l2"].data_ptr()  # copied, not aliased
    assert torch.equal(own["lstm.2.weight_hh_l0"], raw["lstm.weight_hh_l2"])
    assert set(raw) - {k for k in raw if k.startswith(("lstm.", "linear."))} == {"similarity_weight", "similarity_bias"}


@needs_package
def test_default_weights_are_the_packaged_ones_except_for_toy_builds():
    assert W.resolve_source("ge2e", None) == "pretrained"
    assert W.resolve_source("ge2e", "default") == "pretrained"
    assert W.resolve_source("ge2e", "default", tiny=True) == "random"
    assert W.resolve_source("tera", "default") == "random"
    assert W.resolve_source("ge2e", "random") == "random"
    assert W.resolve_source("ge2e", "tera=/x.ckpt") == "random"  # a mapping: models not named stay random
    model, label = build_weighted("ge2e", False, "default")
    assert label.startswith("pretrained:resemblyzer-0.1.4/")
    assert package_facts()["license"] == "Apache Software License"


@needs_package
def test_resemblyzer_checkpoint_refused_by_other_models_and_toy_sizes(tmp_path):
    from models.ge2e import packaged_weights_path

    with pytest.raises(W.WeightsError, match="Resemblyzer .GE2E. checkpoint, which does not fit tera"):
        W.load_weights("tera", get_spec("tera").build(tiny=True), str(packaged_weights_path()))
    with pytest.raises(W.WeightsError, match="shape mismatches"):
        W.load_weights("ge2e", get_spec("ge2e").build(tiny=True), "pretrained")


def test_missing_package_is_one_actionable_error(monkeypatch):
    import models.ge2e as G

    monkeypatch.setattr(G.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(W.WeightsError, match=r"pip install --no-deps resemblyzer==0.1.4, or use WEIGHTS=random"):
        W.fetch_pretrained("ge2e")


def test_network_is_three_lstm_layers_and_a_normalised_relu_head():
    """Same maths as Resemblyzer's VoiceEncoder.forward (nn.LSTM(num_layers=3), hidden[-1],
    Linear, ReLU, L2 norm), with any weights: here seeded random ones."""
    ours = get_spec("ge2e").build()
    ref_lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
    ref_lstm.load_state_dict(_inverse_lstm(ours))
    wav = torch.from_numpy(_speechlike(12000))[None]
    with torch.inference_mode():
        outs = ours(wav)
        mel = ours.frontend(wav)
        seq, (hidden, _) = ref_lstm(mel)
        raw = torch.relu(ours.linear(hidden[-1]))
        want = raw / torch.norm(raw, dim=1, keepdim=True)
    assert len(outs) == 4 and all(o.shape == (1, 12000 // 160 + 1, 256) for o in outs)
    assert torch.allclose(outs[2], seq, atol=1e-6)
    assert torch.allclose(outs[-1][:, -1], want, atol=1e-6)
    assert torch.allclose(outs[-1].norm(dim=-1), torch.ones(1, outs[-1].shape[1]), atol=1e-5)


def _inverse_lstm(model: GE2EEncoder) -> dict[str, torch.Tensor]:
    """GE2EEncoder's per-layer LSTM tensors under nn.LSTM(num_layers=3) names."""
    out = {}
    for k, layer in enumerate(model.lstm):
        for name, tensor in layer.state_dict().items():
            out[name[:-1] + str(k)] = tensor  # weight_ih_l0 -> weight_ih_l{k}
    return out


def test_frontend_matches_a_numpy_reference_of_librosas_melspectrogram():
    """transformers' numpy spectrogram with librosa's settings (centre, zero padding, periodic
    Hann, power 2, Slaney filterbank): the reference for machines without librosa."""
    from transformers.audio_utils import spectrogram, window_function

    wav = _speechlike()
    want = spectrogram(wav.astype(np.float64), window_function(400, "hann", periodic=True), frame_length=400,
                       hop_length=160, power=2.0, center=True, pad_mode="constant",
                       mel_filters=slaney_mel_matrix().numpy().astype(np.float64), mel_floor=0.0,
                       dtype=np.float64).T
    got = CenteredPowerMel()(torch.from_numpy(wav)[None])[0].numpy()
    assert got.shape == want.shape == (24000 // 160 + 1, 40)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())


def test_frontend_matches_librosa():
    librosa = pytest.importorskip("librosa")
    wav = _speechlike(seed=1)
    # exactly resemblyzer.audio.wav_to_mel_spectrogram's call
    want = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).astype(np.float32).T
    got = CenteredPowerMel()(torch.from_numpy(wav)[None])[0].numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())
    np.testing.assert_allclose(slaney_mel_matrix().numpy().T, librosa.filters.mel(sr=16000, n_fft=400, n_mels=40),
                               rtol=1e-5, atol=1e-8)


@needs_package
def test_embeddings_match_resemblyzers_own_pipeline():
    pytest.importorskip("librosa")
    pytest.importorskip("webrtcvad")
    resemblyzer = pytest.importorskip("resemblyzer")
    threads = torch.get_num_threads()
    try:
        encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
        model = _pretrained()
        for seed, n in ((0, 24000), (3, 9000)):
            wav = _speechlike(n, seed)
            mel = resemblyzer.audio.wav_to_mel_spectrogram(wav)
            with torch.inference_mode():
                want = encoder(torch.from_numpy(mel)[None])[0].numpy()
                got = model(torch.from_numpy(wav)[None])[-1][0, -1].numpy()
            assert np.abs(got - want).max() < 1e-5, (seed, np.abs(got - want).max())
    finally:
        torch.set_num_threads(threads)


def test_frames_follow_the_centred_framing():
    spec = get_spec("ge2e")
    assert spec.centered and spec.frames(16000) == 101 and spec.frames(400) == 3 and spec.frames(399) == 0
    assert spec.frame_rate_hz == pytest.approx(100.0)


@needs_package
def test_pretrained_export_matches_pytorch(tmp_path):
    from export.onnx_export import export_model

    entry = export_model("ge2e", tmp_path, weights="pretrained")
    assert entry["weights"].startswith("pretrained:resemblyzer-0.1.4/")
    assert all(c["ok"] for c in entry["checks"]) and entry["params_unique"] == get_spec("ge2e").published_params
