"""A labelled spoken-word set synthesised on this machine: ``python -m evaluation.speech_data OUT``.

Real speech without a download: Debian's ``espeak-ng`` (formant synthesis; voice variants) and,
when asked for, ``flite`` (CMU's statistical voices, a different kind of voice) say a fixed list
of words.  Every clip is one point of the grid words x voices x speaking rates x pitches, so
the two label sets are balanced by construction:

* ``manifest.csv`` / ``word.csv``: ``path,label`` with the word spoken (what ``make eval
  DATA=OUT`` reads: a folder with a ``manifest.csv``);
* ``voice.csv``: the same clips labelled with the voice speaking (``make eval DATA=OUT/voice.csv``).

Each clip then goes through a small "room": a synthetic impulse response (exponentially
decaying noise, RT60 0.15-0.6 s, mixed with the dry signal), a silent lead-in of random length,
room-like noise (pink-ish: brown + white, plus a low hum) at one of the SNRs (cycled over the
grid, so every word and voice meets every SNR), and a random gain (-20 to 0 dB).  Every random
draw comes from ``numpy.random.default_rng([seed, clip index])``: the same seed and the same
synthesiser versions write the same files (``info.json`` records both).  16 kHz mono PCM16.

Bad input (an unknown voice, a malformed word or SNR, OUT an existing file) and a missing
synthesiser are one line on stderr and exit 2, before anything is written.  The set is written
to ``OUT.partial`` and renamed at the end, so OUT is either complete or absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.data import load_clip

SAMPLE_RATE = 16_000
WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
SNRS_DB = (5.0, 10.0, 20.0)


@dataclass(frozen=True)
class Voice:
    """One voice: its label, the synthesiser (Debian package = command) and its settings."""

    label: str
    synth: str  # espeak-ng | flite
    name: str  # espeak-ng voice+variant, or flite voice
    pitches: tuple[int, int]  # espeak-ng -p (0-99) or flite int_f0_target_mean (Hz)


ESPEAK_VOICES = (
    Voice("espeak-us-m1", "espeak-ng", "en-us+m1", (35, 65)),
    Voice("espeak-us-f2", "espeak-ng", "en-us+f2", (35, 65)),
    Voice("espeak-gb-m3", "espeak-ng", "en-gb+m3", (35, 65)),
    Voice("espeak-scot-f4", "espeak-ng", "en-gb-scotland+f4", (35, 65)),
)
# flite's clustergen voices follow int_f0_target_mean; its diphone voices (kal, rms) ignore it
FLITE_VOICES = (
    Voice("flite-slt", "flite", "slt", (150, 200)),
    Voice("flite-awb", "flite", "awb", (100, 130)),
)
VOICES = {v.label: v for v in ESPEAK_VOICES + FLITE_VOICES}
RATES = ("slow", "fast")
ESPEAK_RATE_WPM = {"slow": 140, "fast": 200}
FLITE_STRETCH = {"slow": 1.15, "fast": 0.85}
PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite"}


class SpeechDataError(ValueError):
    """Bad usage or a missing synthesiser (exit 2)."""


@dataclass(frozen=True)
class ClipPlan:
    index: int
    word: str
    voice: Voice
    rate: str
    pitch: int
    snr_db: float

    @property
    def file(self) -> str:
        return f"clips/{self.word}/{self.word}_{self.voice.label}_{self.rate}_p{self.pitch}.wav"


def plan(words: tuple[str, ...], voices: tuple[Voice, ...], snrs: tuple[float, ...]) -> list[ClipPlan]:
    """The grid, in a fixed order; SNRs cycle over it so each SNR meets every word and voice."""
    out = []
    for word in words:
        for voice in voices:
            for rate in RATES:
                for pitch in voice.pitches:
                    i = len(out)
                    out.append(ClipPlan(i, word, voice, rate, pitch, snrs[i % len(snrs)]))
    return out


def check_synths(voices: tuple[Voice, ...]) -> dict[str, str]:
    """{synthesiser: version line}; a missing one raises with the package to install."""
    versions = {}
    for synth in sorted({v.synth for v in voices}):
        exe = shutil.which(synth)
        if exe is None:
            raise SpeechDataError(f"{synth} is not installed (apt-get install {PACKAGES[synth]}); "
                                  f"it synthesises the voices {', '.join(v.label for v in voices if v.synth == synth)}")
        res = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        versions[synth] = version_line(res.stdout + res.stderr)
    return versions


def version_line(text: str) -> str:
    """The version from ``--version`` output, without the install paths espeak-ng prints."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    pick = next((ln for ln in lines if "version" in ln.lower()), lines[0] if lines else "unknown")
    return re.split(r"\s+Data at:", pick)[0].strip()


def synthesise(voice: Voice, word: str, rate: str, pitch: int, tmp: Path) -> np.ndarray:
    """The dry utterance, float64 at 16 kHz, peak 1."""
    raw = tmp / "say.wav"
    if voice.synth == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(ESPEAK_RATE_WPM[rate]), "-p", str(pitch), "-w", str(raw), word]
    else:
        cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={FLITE_STRETCH[rate]}",
               "--setf", f"int_f0_target_mean={pitch}", "-t", word, "-o", str(raw)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    x = load_clip(raw, 1).astype(np.float64)
    return x / max(float(np.max(np.abs(x))), 1e-9)


def room(rng: np.random.Generator, dry: np.ndarray, snr_db: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Lead-in, reverberation, room noise at ``snr_db`` (over the speech), random gain."""
    # deferred: scipy is heavy and only the generator needs it
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.6)
    n_ir = int(rt60 * sr)
    t = np.arange(n_ir) / sr
    ir = rng.normal(size=n_ir) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[0] = 0.0
    ir *= rng.uniform(0.2, 0.5) / np.sqrt(np.sum(ir ** 2))  # reverberant energy below the direct path
    ir[0] = 1.0
    lead = int(rng.uniform(0.05, 0.3) * sr)
    speech = np.concatenate([np.zeros(lead), dry, np.zeros(int(0.15 * sr))])
    wet = fftconvolve(speech, ir)[: len(speech)]
    n = len(wet)
    brown = np.cumsum(rng.normal(size=n))
    brown -= np.linspace(brown[0], brown[-1], n)  # no drift
    brown /= np.std(brown) + 1e-12
    hum = np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * np.arange(n) / sr + rng.uniform(0, 2 * np.pi))
    noise = brown + 0.3 * rng.normal(size=n) + 0.2 * hum
    active = wet[lead: lead + len(dry)]
    p_speech = float(np.mean(active ** 2)) + 1e-12
    noise *= np.sqrt(p_speech / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    y = wet + noise
    return y / max(float(np.max(np.abs(y))), 1e-9) * 10 ** (rng.uniform(-20, 0) / 20) * 0.9


def write_speech_data(out: str | Path, seed: int = 0, words: tuple[str, ...] = WORDS,
                      voices: tuple[Voice, ...] = ESPEAK_VOICES, snrs: tuple[float, ...] = SNRS_DB) -> dict[str, int]:
    """Write the set to ``out`` (replacing an earlier one); returns clips per word and per voice."""
    # deferred: soundfile loads libsndfile; argument checks run without it
    import soundfile as sf

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpeechDataError(f"output {out} is a file; give a folder (it is created)")
    versions = check_synths(voices)
    clips = plan(words, voices, snrs)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in clips:
            rng = np.random.default_rng([seed, c.index])
            y = room(rng, synthesise(c.voice, c.word, c.rate, c.pitch, Path(tmp)), c.snr_db).astype(np.float32)
            path = partial / c.file
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), y, SAMPLE_RATE, subtype="PCM_16")
            rows.append(c)
    for name, key in (("manifest.csv", "word"), ("word.csv", "word"), ("voice.csv", "voice")):
        with open(partial / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for c in rows:
                w.writerow([c.file, c.word if key == "word" else c.voice.label])
    with open(partial / "clips.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "word", "voice", "synthesiser", "rate", "pitch", "snr_db"])
        for c in rows:
            w.writerow([c.file, c.word, c.voice.label, c.voice.synth, c.rate, c.pitch, c.snr_db])
    info = {"generator": "evaluation.speech_data", "seed": seed, "words": list(words),
            "voices": [v.label for v in voices], "rates": list(RATES), "snrs_db": list(snrs),
            "synthesisers": versions, "clips": len(rows), "sample_rate": SAMPLE_RATE,
            "label_sets": {"word": "manifest.csv (= word.csv)", "voice": "voice.csv"}}
    (partial / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    counts: dict[str, int] = {}
    for c in rows:
        counts[f"word:{c.word}"] = counts.get(f"word:{c.word}", 0) + 1
        counts[f"voice:{c.voice.label}"] = counts.get(f"voice:{c.voice.label}", 0) + 1
    return counts


WORD_RE = re.compile(r"^[a-z]+$")


def parse_args(argv: list[str] | None) -> tuple[Path, int, tuple[str, ...], tuple[Voice, ...], tuple[float, ...]]:
    p = argparse.ArgumentParser(prog="python -m evaluation.speech_data", description=__doc__.split("\n")[0])
    p.add_argument("out", help="output folder (manifest.csv, word.csv, voice.csv, clips/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--words", default=",".join(WORDS), help=f"comma list of lower-case words (default {','.join(WORDS)})")
    p.add_argument("--voices", default=",".join(v.label for v in ESPEAK_VOICES),
                   help=f"comma list; valid: {', '.join(VOICES)}; or 'all' (espeak-ng and flite)")
    p.add_argument("--snrs", default=",".join(f"{s:g}" for s in SNRS_DB), help="comma list of SNRs in dB")
    args = p.parse_args(argv)
    words = tuple(w.strip() for w in args.words.split(",") if w.strip())
    bad = [w for w in words if not WORD_RE.match(w)]
    if len(words) < 2 or bad or len(set(words)) != len(words):
        raise SpeechDataError(f"--words {args.words!r}: need at least 2 distinct lower-case words (a-z)"
                              + (f"; bad: {', '.join(bad)}" if bad else ""))
    names = list(VOICES) if args.voices.strip() == "all" else [v.strip() for v in args.voices.split(",") if v.strip()]
    unknown = [n for n in names if n not in VOICES]
    if unknown or len(set(names)) < 2:
        raise SpeechDataError(f"--voices {args.voices!r}: need at least 2 of {', '.join(VOICES)} (or all)"
                              + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    try:
        snrs = tuple(float(s) for s in args.snrs.split(",") if s.strip())
    except ValueError:
        raise SpeechDataError(f"--snrs {args.snrs!r}: expected a comma list of numbers (dB), e.g. 5,10,20") from None
    if not snrs or not all(np.isfinite(snrs)):
        raise SpeechDataError(f"--snrs {args.snrs!r}: expected a comma list of finite numbers (dB), e.g. 5,10,20")
    return Path(args.out), args.seed, words, tuple(dict.fromkeys(VOICES[n] for n in names)), snrs


def main(argv: list[str] | None = None) -> int:
    try:
        out, seed, words, voices, snrs = parse_args(argv)
        counts = write_speech_data(out, seed, words, voices, snrs)
    except SpeechDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = sum(v for k, v in counts.items() if k.startswith("word:"))
    print(f"wrote {n} clips to {out}: {len(words)} words x {len(voices)} voices x {len(RATES)} rates x 2 pitches "
          f"(labels: {out / 'manifest.csv'} = word, {out / 'voice.csv'} = voice)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
