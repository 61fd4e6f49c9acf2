"""A small labelled audio set, generated deterministically: ``python -m evaluation.demo_data OUT``.

Six sound classes that differ in spectral and temporal structure, every parameter drawn from
a seeded generator per clip, so the same command writes the same files on every machine:

=============  =================================================================
``tone``       a steady harmonic tone (fundamental 150-1200 Hz, 1-4 harmonics)
``chirp``      a sine sweeping up or down over 2-4 octaves
``noise``      band-pass noise bursts (1-3 per clip, random band and length)
``clicks``     a click train (8-40 clicks/s, jittered), short decaying impulses
``am_tone``    a tone amplitude-modulated at 3-12 Hz (tremolo, "syllable" rate)
``fm_warble``  a tone frequency-modulated by a slow sine (vibrato +/- 5-20 %)
=============  =================================================================

Each clip lasts 0.8-1.2 s (variable lengths, as real data), gets a random gain (-20 to 0 dB)
and white plus low-frequency noise at a random SNR (5-25 dB).  A quarter of the files are
written at 44.1 kHz and some in stereo, so the reader's resampling and mix-down are exercised.

Where ``espeak-ng`` is installed, spoken keywords (``say_yes``, ``say_no``, ...) are added in
several voices and speeds (classes of their own).  Layout: ``OUT/<label>/<label>_NNN.wav``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from evaluation.data import load_clip
from models.audio_format import SAMPLE_RATE

CLASSES = ("tone", "chirp", "noise", "clicks", "am_tone", "fm_warble")
KEYWORDS = ("yes", "no", "up", "down", "left", "right")
VOICES = ("en", "en-us", "en+f3", "en+m3")
SPEEDS = (120, 160, 200)


def _tone(rng: np.random.Generator, t: np.ndarray, f0: float) -> np.ndarray:
    n_harm = rng.integers(1, 5)
    return sum(0.7 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 2 * np.pi)) for k in range(n_harm))


def _bandpass_noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    # deferred: scipy is needed only on this path of make eval
    from scipy.signal import butter, sosfilt

    lo = rng.uniform(200, 3000)
    hi = min(lo * rng.uniform(1.5, 3.0), sr / 2 * 0.95)
    sos = butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, rng.normal(size=n))


def synth(label: str, rng: np.random.Generator, duration: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One clean clip of class ``label`` (peak about 1)."""
    n = int(duration * sr)
    t = np.arange(n) / sr
    if label == "tone":
        x = _tone(rng, t, rng.uniform(150, 1200))
    elif label == "chirp":
        f0 = rng.uniform(150, 600)
        f1 = f0 * 2 ** rng.uniform(2, 4)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        freq = f0 * (f1 / f0) ** (t / duration)
        x = np.sin(2 * np.pi * np.cumsum(freq) / sr)
    elif label == "noise":
        x = np.zeros(n)
        for _ in range(rng.integers(1, 4)):
            length = int(rng.uniform(0.1, 0.4) * sr)
            start = rng.integers(0, max(n - length, 1))
            burst = _bandpass_noise(rng, length, sr) * np.hanning(length)
            x[start:start + length] += burst[: n - start]
    elif label == "clicks":
        x = np.zeros(n)
        rate = rng.uniform(8, 40)
        pos = rng.uniform(0, 1 / rate)
        decay = np.exp(-np.arange(int(0.004 * sr)) / (0.0008 * sr))
        while pos < duration:
            i = int(pos * sr)
            seg = decay[: n - i] * rng.choice([-1, 1])
            x[i:i + len(seg)] += seg
            pos += (1 / rate) * rng.uniform(0.7, 1.3)
    elif label == "am_tone":
        x = _tone(rng, t, rng.uniform(150, 1200))
        x *= 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 12) * t + rng.uniform(0, 2 * np.pi)))
    elif label == "fm_warble":
        f0 = rng.uniform(200, 1200)
        depth = rng.uniform(0.05, 0.2)
        freq = f0 * (1 + depth * np.sin(2 * np.pi * rng.uniform(2, 8) * t))
        x = np.sin(2 * np.pi * np.cumsum(freq) / sr)
    else:
        raise ValueError(f"unknown demo class {label!r}; valid: {', '.join(CLASSES)}")
    return x / max(np.max(np.abs(x)), 1e-9)


def _degrade(rng: np.random.Generator, x: np.ndarray, sr: int) -> np.ndarray:
    """Random gain and noise (white + brown-ish) at a random SNR."""
    snr_db = rng.uniform(5, 25)
    noise = rng.normal(size=len(x)) + 0.3 * np.cumsum(rng.normal(size=len(x))) / np.sqrt(sr)
    p_sig = np.mean(x ** 2) + 1e-12
    noise *= np.sqrt(p_sig / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    y = x + noise
    y = y / max(np.max(np.abs(y)), 1e-9) * 10 ** (rng.uniform(-20, 0) / 20) * 0.9
    return y


def write_demo(out: str | Path, per_class: int = 20, seed: int = 0, classes: tuple[str, ...] = CLASSES,
               keywords: bool | None = None) -> dict[str, int]:
    """Write the demo set to ``out``; returns clips per class.  ``keywords=None``: when espeak-ng exists."""
    # deferred: soundfile (libsndfile) is needed only to read or write audio files
    import soundfile as sf

    out = Path(out)
    counts: dict[str, int] = {}
    for ci, label in enumerate(classes):
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, ci, i])
            sr = 44_100 if i % 4 == 3 else SAMPLE_RATE
            duration = float(rng.uniform(0.8, 1.2))
            x = _degrade(rng, synth(label, rng, duration, sr), sr).astype(np.float32)
            if i % 8 == 7:  # stereo: a slightly different gain per channel
                x = np.stack([x, x * 0.8], axis=1)
            sf.write(str(folder / f"{label}_{i:03d}.wav"), x, sr, subtype="PCM_16")
        counts[label] = per_class
    if keywords is None:
        keywords = shutil.which("espeak-ng") is not None
    if keywords:
        counts.update(write_keywords(out, per_class, seed))
    return counts


def write_keywords(out: Path, per_class: int, seed: int = 0) -> dict[str, int]:
    """Spoken keywords with espeak-ng: voices x speeds x pitch, plus noise and gain."""
    # deferred: soundfile (libsndfile) is needed only to read or write audio files
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for wi, word in enumerate(KEYWORDS):
            folder = out / f"say_{word}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rng = np.random.default_rng([seed, 1000 + wi, i])
                voice, speed = VOICES[i % len(VOICES)], SPEEDS[(i // len(VOICES)) % len(SPEEDS)]
                pitch = int(rng.integers(20, 80))
                raw = Path(tmp) / "say.wav"
                subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), word],
                               check=True, capture_output=True, timeout=30)
                x = load_clip(raw, 1).astype(np.float64)
                pad = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
                x = np.concatenate([np.zeros(pad), x, np.zeros(int(0.1 * SAMPLE_RATE))])
                x = _degrade(rng, x / max(np.max(np.abs(x)), 1e-9), SAMPLE_RATE).astype(np.float32)
                sf.write(str(folder / f"say_{word}_{i:03d}.wav"), x, SAMPLE_RATE, subtype="PCM_16")
            counts[f"say_{word}"] = per_class
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.demo_data", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output folder (DATA/<label>/*.wav)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keywords", choices=("auto", "yes", "no"), default="auto",
                        help="spoken keywords with espeak-ng (auto: when installed)")
    args = parser.parse_args(argv)
    if args.per_class < 2:
        print("error: --per-class must be at least 2", file=sys.stderr)
        return 2
    want = None if args.keywords == "auto" else args.keywords == "yes"
    if want and shutil.which("espeak-ng") is None:
        print("error: --keywords yes needs espeak-ng (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    counts = write_demo(args.out, args.per_class, args.seed, keywords=want)
    kw = "" if any(k.startswith("say_") for k in counts) else " (espeak-ng not installed: no spoken keywords)"
    print(f"wrote {sum(counts.values())} clips in {len(counts)} classes to {args.out}{kw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
