"""Deterministic synthetic audio: the input every benchmark cell feeds its model.

Latency and FLOPs of these models do not depend on what the audio says, but they can depend
on its numbers (denormals, exact zeros, clipping), so the input is speech-like rather than
zeros: a harmonic tone with a slowly gliding pitch (100-250 Hz fundamental, 8 harmonics with
decaying amplitude), syllable-rate amplitude modulation (4 Hz) and white noise at -30 dB,
peak about 0.5.  Each row of a batch uses its own seed, derived from (seed, row, samples), so
a cell's input is identical across runs, runtimes and machines.
"""

from __future__ import annotations

import numpy as np

from models.audio_format import SAMPLE_RATE


def synthetic_waveform(n_samples: int, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    rng = np.random.default_rng([seed, n_samples])
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    f0_start, f0_end = rng.uniform(100, 250, size=2)
    duration = max(n_samples / sample_rate, 1e-9)
    f0 = f0_start + (f0_end - f0_start) * t / duration
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum((0.6 ** k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))
    signal = voice * envelope
    signal = 0.5 * signal / max(np.max(np.abs(signal)), 1e-9)
    signal += rng.normal(0.0, 0.5 * 10 ** (-30 / 20), size=n_samples)
    return signal.astype(np.float32)


def synthetic_batch(batch_size: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """(batch_size, n_samples) float32; row i is ``synthetic_waveform(n_samples, seed + i)``."""
    if batch_size < 1 or n_samples < 1:
        raise ValueError(f"batch_size and n_samples must be >= 1, got {batch_size}, {n_samples}")
    return np.stack([synthetic_waveform(n_samples, seed + i) for i in range(batch_size)])
