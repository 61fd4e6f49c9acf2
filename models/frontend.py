"""The log-mel front-end shared by `logmel`, `apc`, `tera`, `mockingjay` and `audio-albert`.

80 mel bins, 25 ms Hann window (400 samples), 10 ms hop (160 samples) at 16 kHz, no centre
padding (Kaldi's ``snip_edges``): ``frames = floor((N - 400) / 160) + 1``, so inputs shorter
than 400 samples are invalid.

Why the DFT is a strided convolution and not ``torch.stft``: the front-end is part of every
exported graph, and ONNX's ``STFT`` op is neither exportable by the TorchScript exporter
(complex tensors) nor implemented by every execution provider (TensorRT has none, so the
whole front-end would fall back to the CPU on a Jetson).  A convolution with a fixed
windowed-DFT basis computes the same power spectrum (checked against ``torch.stft`` in the
tests), runs on every provider, and its MACs are counted exactly like any other Conv.
The mel filterbank itself comes from ``transformers.audio_utils.mel_filter_bank`` (HTK mel
scale, no area normalisation, as Kaldi's fbank), not from hand-written maths.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.audio_format import SAMPLE_RATE

N_FFT = 400
HOP = 160
N_MELS = 80
LOG_FLOOR = 1e-6


def frames_for_samples(n_samples: int, win: int = N_FFT, hop: int = HOP) -> int:
    """Number of frames the front-end produces for ``n_samples`` (0 when too short)."""
    return 0 if n_samples < win else (n_samples - win) // hop + 1


def dft_basis(n_fft: int = N_FFT) -> torch.Tensor:
    """Windowed real-DFT basis as conv weights: (2 * (n_fft // 2 + 1), 1, n_fft).

    Rows ``[0, F)`` are the cosine (real) parts and ``[F, 2F)`` the sine (imaginary) parts,
    each multiplied by the periodic Hann window, as ``torch.stft(window=hann_window(n_fft))``.
    """
    n_freq = n_fft // 2 + 1
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    t = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_freq, dtype=torch.float64)[:, None]
    angle = 2.0 * math.pi * k * t / n_fft
    basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window], dim=0)
    return basis.to(torch.float32).unsqueeze(1)


def mel_matrix(n_fft: int = N_FFT, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_freq, n_mels) HTK mel filterbank from transformers' well-kept implementation."""
    # deferred: transformers is heavy (seconds); only the models that need it load it
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=sample_rate / 2,
        sampling_rate=sample_rate,
        norm=None,
        mel_scale="htk",
    )
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


class LogMel(nn.Module):
    """(B, N) 16 kHz waveform -> (B, T, 80) log-mel energies, T = floor((N - 400) / 160) + 1."""

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS) -> None:
        super().__init__()
        self.n_fft, self.hop, self.n_mels = n_fft, hop, n_mels
        self.n_freq = n_fft // 2 + 1
        # buffers, not parameters: nothing here is learned, so they count as 0 parameters
        self.register_buffer("basis", dft_basis(n_fft), persistent=False)
        self.register_buffer("mel", mel_matrix(n_fft, n_mels), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(wav.unsqueeze(1), self.basis, stride=self.hop)  # (B, 2F, T)
        real, imag = spec[:, : self.n_freq], spec[:, self.n_freq :]
        power = (real * real + imag * imag).transpose(1, 2)  # (B, T, F)
        return torch.log(torch.clamp(torch.matmul(power, self.mel), min=LOG_FLOOR))
