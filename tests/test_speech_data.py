"""`make speech-data`: the synthesised spoken-word set (labels, determinism, bad input)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from evaluation import speech_data as S
from evaluation.data import discover, load_clip

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
SMALL = ["--words", "yes,no", "--voices", "espeak-us-m1,espeak-us-f2", "--snrs", "10,20"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "info.json"}


@needs_espeak
def test_grid_and_both_label_sets(tmp_path):
    out = tmp_path / "speech"
    assert S.main([str(out), *SMALL]) == 0
    words, voices = _rows(out / "manifest.csv"), _rows(out / "voice.csv")
    assert [r["path"] for r in words] == [r["path"] for r in voices] and len(words) == 2 * 2 * 2 * 2
    assert Counter(r["label"] for r in words) == {"yes": 8, "no": 8}
    assert Counter(r["label"] for r in voices) == {"espeak-us-m1": 8, "espeak-us-f2": 8}
    assert _rows(out / "word.csv") == words
    clips = _rows(out / "clips.csv")
    for row, w, v in zip(clips, words, voices):  # the two label sets describe the same clip
        assert (row["word"], row["voice"]) == (w["label"], v["label"]) and w["path"].startswith(f"clips/{w['label']}/")
    assert Counter(r["snr_db"] for r in clips) == {"10.0": 8, "20.0": 8}
    info = json.loads((out / "info.json").read_text())
    assert info["clips"] == 16 and info["seed"] == 0 and info["synthesisers"]["espeak-ng"].startswith("eSpeak NG")
    assert "/" not in info["synthesisers"]["espeak-ng"]  # no install path of this machine
    # `make eval DATA=...` reads the folder (word) and voice.csv unchanged
    assert discover(out).labels == ["no", "yes"] and discover(out).layout == "csv"
    assert discover(out / "voice.csv").labels == ["espeak-us-f2", "espeak-us-m1"]
    x = load_clip(out / words[0]["path"])
    assert 0.3 < len(x) / 16000 < 3 and 0.05 < np.abs(x).max() <= 0.91
    assert not (tmp_path / "speech.partial").exists()


@needs_espeak
def test_same_seed_same_files_other_seed_other_noise(tmp_path):
    args = ["--words", "up,go", "--voices", "espeak-gb-m3,espeak-scot-f4", "--snrs", "5"]
    assert S.main([str(tmp_path / "a"), *args]) == 0
    assert S.main([str(tmp_path / "b"), *args]) == 0
    assert S.main([str(tmp_path / "c"), *args, "--seed", "1"]) == 0
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b and len(a) == 16 + 4  # 16 clips, manifest, word, voice, clips.csv
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith(".wav"))
    # regenerating into an existing set replaces it
    assert S.main([str(tmp_path / "a"), *args]) == 0 and _digest(tmp_path / "a") == a


@pytest.mark.parametrize("args,message", [
    (["--voices", "espeak-us-m1,nobody"], "unknown: nobody"),
    (["--voices", "espeak-us-m1"], "need at least 2 of"),
    (["--words", "yes,No!"], "bad: No!"),
    (["--words", "yes"], "at least 2 distinct"),
    (["--snrs", "loud"], "--snrs 'loud'"),
    (["--snrs", "5,nan"], "finite"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "speech"
    assert S.main([str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_output_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert S.main([str(target), *SMALL]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "x"


def test_missing_synthesiser_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no espeak-ng, no flite on PATH
    assert S.main([str(tmp_path / "speech"), "--voices", "espeak-us-m1,flite-slt"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: espeak-ng is not installed (apt-get install espeak-ng); it synthesises the voices "
                   "espeak-us-m1")
    assert not (tmp_path / "speech").exists() and not (tmp_path / "speech.partial").exists()


def test_plan_balances_snrs_over_words_and_voices():
    clips = S.plan(("yes", "no"), S.ESPEAK_VOICES[:3], (5.0, 10.0, 20.0))
    assert len(clips) == 2 * 3 * 2 * 2 and len({c.file for c in clips}) == len(clips)
    for key in ("word", "voice"):
        groups: dict[object, Counter] = {}
        for c in clips:
            groups.setdefault(getattr(c, key), Counter())[c.snr_db] += 1
        assert all(set(g) == {5.0, 10.0, 20.0} for g in groups.values()), key


def test_version_line_drops_install_paths():
    assert S.version_line("eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x/espeak-ng-data\n") == "eSpeak NG text-to-speech: 1.51"
    assert S.version_line("  Carnegie Mellon\n  version: flite-2.2\n") == "version: flite-2.2"


def test_second_label_set_reuses_the_embeddings_fingerprint(tmp_path):
    """Embeddings depend on the audio only: voice.csv over the same clips shares the cache key."""
    import os

    import soundfile as sf

    from evaluation.data import data_fingerprint

    for i in range(4):
        sf.write(str(tmp_path / f"c{i}.wav"), np.full(800, 0.1 * (i + 1), dtype=np.float32), 16000)
    (tmp_path / "word.csv").write_text("path,label\n" + "".join(f"c{i}.wav,{'ab'[i % 2]}\n" for i in range(4)))
    (tmp_path / "voice.csv").write_text("path,label\n" + "".join(f"c{i}.wav,{'xy'[i // 2]}\n" for i in range(4)))
    word, voice = discover(tmp_path / "word.csv"), discover(tmp_path / "voice.csv")
    assert [c.label for c in word.clips] != [c.label for c in voice.clips]
    before = data_fingerprint(word)
    assert before == data_fingerprint(voice)
    st = os.stat(tmp_path / "c2.wav")
    os.utime(tmp_path / "c2.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the audio "changed"
    assert data_fingerprint(word) != before
