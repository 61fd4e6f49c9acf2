"""Labelled audio datasets: find the layout, list the clips, read them as 16 kHz mono.

Layouts recognised by :func:`discover`, first match wins:

* a ``.csv`` file: a manifest with a header ``path,label[,split]`` (paths relative to the file);
* ESC-50: ``meta/esc50.csv`` (``filename,fold,target,category,...``) and ``audio/``; the probe
  uses the dataset's own 5 folds (leave one fold out);
* Google Speech Commands: ``validation_list.txt`` and ``testing_list.txt`` beside one folder per
  word; every other clip is ``train`` (``_background_noise_`` is not a class);
* a folder with a ``manifest.csv``: as a manifest;
* a folder ``DATA/<label>/*.wav|flac|ogg``: one class per subfolder (the probe uses stratified
  k-fold).

Reading (:func:`load_clip`): soundfile decodes, channels are averaged (mono mix-down), and
other sample rates are resampled to 16 kHz with ``scipy.signal.resample_poly`` (a polyphase
filter with a Kaiser-windowed anti-aliasing low-pass).  Unreadable, empty, non-finite or
too-short files raise :class:`BadClip` with the reason; :func:`load_dataset` skips them, counts
them and keeps the list for the report -- they never stop a run.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from models.audio_format import SAMPLE_RATE

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SC_NOISE = "_background_noise_"


class DataError(ValueError):
    """The data folder or manifest cannot be used (bad usage: exit 2)."""


class BadClip(Exception):
    """One clip cannot be used; the message is the reason shown in the report."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    split: str | None = None  # train / validation / test, or "fold3" for ESC-50


@dataclass
class Dataset:
    name: str
    layout: str  # folder | csv | speech_commands | esc50
    root: Path
    clips: list[Clip]
    split_method: str  # given | folds | kfold

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.clips})

    def describe(self) -> str:
        counts = Counter(c.label for c in self.clips)
        return (f"{self.name} ({self.layout}): {len(self.clips)} clips, {len(counts)} classes, "
                f"splits: {self.split_method}")


@dataclass
class LoadedData:
    dataset: Dataset
    clips: list[Clip]  # the usable clips, in the dataset's order
    waves: list[np.ndarray]  # float32 mono 16 kHz, one per usable clip
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def audio_seconds(self) -> float:
        return sum(len(w) for w in self.waves) / SAMPLE_RATE

    def lengths(self) -> np.ndarray:
        return np.array([len(w) for w in self.waves], dtype=np.int64)


# ---------------------------------------------------------------- layouts

def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _read_manifest(path: Path) -> list[Clip]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "path" not in fields or "label" not in fields:
            raise DataError(f"{path}: a manifest needs a header with path,label[,split]; found {reader.fieldnames}")
        reader.fieldnames = fields
        clips = []
        for row in reader:
            if not (row.get("path") or "").strip():
                continue
            p = Path(row["path"].strip())
            clips.append(Clip(p if p.is_absolute() else path.parent / p, row["label"].strip(),
                              (row.get("split") or "").strip() or None))
    return clips


def _speech_commands(root: Path) -> list[Clip]:
    lists = {}
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        for line in (root / name).read_text().splitlines():
            if line.strip():
                lists[line.strip().replace("\\", "/")] = split
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != SC_NOISE and not p.name.startswith(".")):
        for f in _audio_files(folder):
            rel = f.relative_to(root).as_posix()
            clips.append(Clip(f, folder.name, lists.get(rel, "train")))
    return clips


def _esc50(root: Path) -> list[Clip]:
    clips = []
    with open(root / "meta" / "esc50.csv", newline="") as f:
        for row in csv.DictReader(f):
            clips.append(Clip(root / "audio" / row["filename"], row["category"], f"fold{row['fold']}"))
    return clips


def discover(data: str | Path) -> Dataset:
    """Recognise the layout of ``data`` and list its clips (nothing is decoded yet)."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"data {data} not found")
    if data.is_file():
        if data.suffix.lower() != ".csv":
            raise DataError(f"{data}: expected a folder or a CSV manifest (path,label[,split])")
        clips, layout, root = _read_manifest(data), "csv", data.parent
    elif (data / "meta" / "esc50.csv").exists():
        clips, layout, root = _esc50(data), "esc50", data
    elif (data / "validation_list.txt").exists() and (data / "testing_list.txt").exists():
        clips, layout, root = _speech_commands(data), "speech_commands", data
    elif (data / "manifest.csv").exists():
        clips, layout, root = _read_manifest(data / "manifest.csv"), "csv", data
    else:
        clips, root, layout = [], data, "folder"
        for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
            clips += [Clip(f, folder.name) for f in _audio_files(folder)]
    if not clips:
        raise DataError(f"{data}: no audio clips found (expected DATA/<label>/*.wav|flac|ogg, a CSV "
                        f"manifest path,label[,split], Speech Commands or ESC-50)")
    splits = {c.split for c in clips}
    if layout == "esc50":
        method = "folds"
    elif None not in splits and {"train", "test"} <= splits:
        method = "given"
    else:
        method = "kfold"
    return Dataset(_dataset_name(data, layout), layout, root, clips, method)


def _dataset_name(data: Path, layout: str) -> str:
    if layout == "esc50":
        return "ESC-50"
    if layout == "speech_commands":
        return "Speech Commands"
    return data.stem if data.is_file() else data.name


def limit_per_class(dataset: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """A deterministic subset of at most ``n`` clips per class and split (for quick runs)."""
    if not n:
        return dataset
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str | None], list[Clip]] = {}
    for clip in dataset.clips:
        groups.setdefault((clip.label, clip.split), []).append(clip)
    keep = set()
    for key in sorted(groups, key=lambda k: (k[0], k[1] or "")):
        members = groups[key]
        idx = rng.permutation(len(members))[:n]
        keep.update(members[i].path for i in idx)
    clips = [c for c in dataset.clips if c.path in keep]
    return Dataset(dataset.name, dataset.layout, dataset.root, clips, dataset.split_method)


# ---------------------------------------------------------------- reading

def resample(wave: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from ``sr`` to ``target``."""
    if sr == target:
        return wave
    # deferred: scipy is needed only on this path of make eval
    from scipy.signal import resample_poly

    g = gcd(int(sr), int(target))
    return resample_poly(wave, target // g, int(sr) // g)


def load_clip(path: str | Path, min_samples: int = 400) -> np.ndarray:
    """16 kHz mono float32 samples of ``path``, or :class:`BadClip` with the reason."""
    # deferred: soundfile (libsndfile) is needed only to read or write audio files
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise BadClip("file not found")
    if path.stat().st_size == 0:
        raise BadClip("empty file (0 bytes)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise BadClip(f"unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if data.size == 0:
        raise BadClip("no samples")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wave)):
        raise BadClip("non-finite samples")
    wave = resample(wave.astype(np.float64), sr).astype(np.float32)
    if len(wave) < min_samples:
        raise BadClip(f"too short: {len(wave)} samples at 16 kHz (< {min_samples}, "
                      f"{min_samples / SAMPLE_RATE * 1000:.0f} ms)")
    return np.ascontiguousarray(wave)


def load_dataset(dataset: Dataset, min_samples: int = 400, progress: bool = False) -> LoadedData:
    """Decode every clip; bad ones are skipped and listed with their reasons."""
    clips, waves, skipped = [], [], []
    items = dataset.clips
    if progress:
        # deferred: tqdm is needed only when a progress bar is shown
        from tqdm import tqdm

        items = tqdm(items, desc=f"reading {dataset.name}", unit="clip", leave=False)
    for clip in items:
        try:
            waves.append(load_clip(clip.path, min_samples))
            clips.append(clip)
        except BadClip as exc:
            skipped.append((str(clip.path), str(exc)))
    if not clips:
        raise DataError(f"{dataset.name}: none of the {len(dataset.clips)} clips could be used "
                        f"(first problem: {skipped[0][0]}: {skipped[0][1]})")
    return LoadedData(dataset, clips, waves, skipped)


def data_fingerprint(dataset: Dataset, min_samples: int = 400) -> str:
    """Hash of the clip list with each file's size and mtime: changes when the audio changes.

    Labels and splits are left out: embeddings depend on the audio only, so a second label set
    over the same clips in the same order (``make speech-data``'s ``voice.csv``) reuses them."""
    h = hashlib.sha256(f"audio-v2|{min_samples}".encode())
    for clip in dataset.clips:
        try:
            st = clip.path.stat()
            stamp = f"{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{clip.path}|{stamp}\n".encode())
    return h.hexdigest()[:16]
