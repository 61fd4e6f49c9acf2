"""GE2E speaker encoder (Resemblyzer's voice encoder), built in wavebench's own code.

Resemblyzer (Jemine, Resemble AI; Apache-2.0) ships a trained GE2E network (Wan et al. 2018)
in its wheel (``resemblyzer/pretrained.pt``).  Its own package cannot be imported without
librosa and webrtcvad, and its mel front end is librosa (numpy, not exportable), so the whole
pipeline is reproduced here in torch and only the weights file is read from the installed
package (:func:`packaged_weights_path`, located without importing it).

Reference pipeline (resemblyzer 0.1.4, ``audio.wav_to_mel_spectrogram`` + ``VoiceEncoder``):

* ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40)``:
  periodic Hann window, ``center=True`` with zero padding of ``n_fft // 2`` on both sides
  (librosa >= 0.10's default ``pad_mode="constant"``), power spectrum (``power=2``), Slaney mel
  scale with Slaney area normalisation; **not** log-compressed.  ``T = N // 160 + 1`` frames.
* ``LSTM(40 -> 256, 3 layers)``; the last layer's final hidden state -> ``Linear(256 -> 256)``
  -> ``ReLU`` -> divided by its L2 norm.

Here the DFT is the front end's strided convolution (:func:`models.frontend.dft_basis`) and
the filterbank comes from ``transformers.audio_utils.mel_filter_bank`` with the Slaney settings
(the same formula as librosa's ``filters.mel``).  The network is run one LSTM layer at a
time so every layer's states are outputs (the suite probes each layer).

Outputs (the registry contract, all ``(B, T, 256)``): the three LSTM layers' states and the
*running embedding*: the head (linear, ReLU, L2 norm) applied at every frame.  The LSTM is
causal, so the running embedding at frame ``t`` is exactly Resemblyzer's embedding of the audio
up to ``t``; at the last frame it is the utterance embedding of a single-partial pass.  Padding
after a clip never changes its valid frames.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.frontend import HOP, N_FFT, SAMPLE_RATE, dft_basis

GE2E_MELS = 40
GE2E_HIDDEN = 256
GE2E_LAYERS = 3
GE2E_EMBEDDING = 256
NORM_EPS = 1e-12  # only guards an all-zero ReLU output (the reference would return NaN there)
PACKAGE = "resemblyzer"
PACKAGE_VERSION = "0.1.4"
WEIGHTS_FILE = "pretrained.pt"


def slaney_mel_matrix(n_fft: int = N_FFT, n_mels: int = GE2E_MELS, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_freq, n_mels) Slaney-scale, Slaney-normalised filterbank (librosa's ``filters.mel`` default)."""
    # deferred: transformers is heavy; only building the model needs its filterbank
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                         max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney",
                         mel_scale="slaney")
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


class CenteredPowerMel(nn.Module):
    """(B, N) -> (B, T, 40) mel power, ``T = N // 160 + 1`` (librosa ``center=True``, zero pad)."""

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = GE2E_MELS) -> None:
        super().__init__()
        self.n_fft, self.hop, self.n_freq = n_fft, hop, n_fft // 2 + 1
        self.register_buffer("basis", dft_basis(n_fft), persistent=False)
        self.register_buffer("mel", slaney_mel_matrix(n_fft, n_mels), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        half = self.n_fft // 2
        padded = nn.functional.pad(wav.unsqueeze(1), (half, half))
        spec = nn.functional.conv1d(padded, self.basis, stride=self.hop)
        real, imag = spec[:, : self.n_freq], spec[:, self.n_freq :]
        power = (real * real + imag * imag).transpose(1, 2)
        return torch.matmul(power, self.mel)


class GE2EEncoder(nn.Module):
    """Resemblyzer's voice encoder: mel power -> 3 x LSTM(256) -> Linear(256) -> ReLU -> L2 norm."""

    def __init__(self, hidden: int = GE2E_HIDDEN, layers: int = GE2E_LAYERS,
                 embedding: int = GE2E_EMBEDDING, n_mels: int = GE2E_MELS) -> None:
        super().__init__()
        self.frontend = CenteredPowerMel(n_mels=n_mels)
        # one single-layer LSTM per layer (same maths as nn.LSTM(num_layers=3)) so each layer's
        # states are outputs; checkpoint names lstm.*_l{k} map to lstm.{k}.*_l0
        self.lstm = nn.ModuleList(nn.LSTM(n_mels if k == 0 else hidden, hidden, 1, batch_first=True)
                                  for k in range(layers))
        self.linear = nn.Linear(hidden, embedding)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.frontend(wav)
        states = []
        for layer in self.lstm:
            x, _ = layer(x)
            states.append(x)
        raw = torch.relu(self.linear(x))
        running = raw / torch.clamp(torch.linalg.vector_norm(raw, dim=-1, keepdim=True), min=NORM_EPS)
        return tuple(states) + (running,)


# GE2E's learned similarity scale and offset (w, b of the training loss): inference never uses
# them (Resemblyzer itself loads with strict=False and ignores them)
TRAINING_ONLY = ("similarity_weight", "similarity_bias")


def resemblyzer_to_wavebench(state: dict[str, torch.Tensor], layers: int = GE2E_LAYERS) -> dict[str, torch.Tensor]:
    """Resemblyzer ``model_state`` names -> :class:`GE2EEncoder` names (tensors unchanged;
    the training-only loss parameters dropped)."""
    out = {}
    for key, value in state.items():
        if key in TRAINING_ONLY:
            continue
        if key.startswith("lstm."):
            param = key[len("lstm."):]  # weight_ih_l2, bias_hh_l0, ...
            base, _, layer = param.rpartition("_l")
            if not layer.isdigit() or int(layer) >= layers:
                out[key] = value  # left unknown: the loader reports it
                continue
            out[f"lstm.{layer}.{base}_l0"] = value
        else:
            out[key] = value
    return out


class PackagedWeightsMissing(LookupError):
    """The package that ships the weights is not installed (message: how to install it)."""


def packaged_weights_path() -> Path:
    """``pretrained.pt`` inside the installed resemblyzer package (found without importing it:
    its ``__init__`` imports librosa and webrtcvad, which wavebench does not install)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PackagedWeightsMissing(
            f"the ge2e weights ship in the {PACKAGE} package, which is not installed: "
            f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise PackagedWeightsMissing(f"the installed {PACKAGE} package has no {WEIGHTS_FILE}; reinstall it: "
                                     f"pip install --no-deps --force-reinstall {PACKAGE}=={PACKAGE_VERSION}")
    return path


def package_facts() -> dict[str, str]:
    """Version and licence of the installed resemblyzer, from its own metadata."""
    meta = importlib.metadata.metadata(PACKAGE)
    licence = meta.get("License") or ""
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if not licence or licence == "UNKNOWN":
        licence = ", ".join(classifiers)
    return {"name": meta["Name"], "version": meta["Version"], "license": licence}
