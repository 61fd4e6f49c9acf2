"""Edge-runtime artifacts made on one machine and used on another (issue 22): ``make export
RUNTIMES=executorch DEVICE=rpi`` writes per-shape programs for the profile's cells with a manifest
(``bench/edge_export.py``); a runner uses a manifest's artifact when the model hash, the shape and
the runtime's release match and the checksum verifies, refuses it with the reason otherwise and
then converts itself, or says it cannot (``runners/runtimes/artifacts.py``); ``make fleet`` picks
what each board gets (``fleet/artifacts.py``; shipping itself is tested over a real sshd in
tests/test_fleet.py).

The rules are tested on made-up files (no runtime needed); the tests with real ExecuTorch programs
(tiny log-mel, a few seconds per export) skip with the reason where executorch is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import socket
import tarfile
from pathlib import Path

import pytest

from runners.runtimes import UnsupportedError, artifacts
from runners.runtimes.artifacts import ArtifactKey

HAVE_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAVE_EXECUTORCH,
                                      reason="executorch is not installed (make setup-runtimes RUNTIMES=executorch)")


def key(**kw) -> ArtifactKey:
    fields = dict(runtime="executorch", model="logmel", module_sha256="a" * 64, input_shape=(1, 4000),
                  recipe="r1", suffix=".pte", runtime_versions={"executorch": "1.4.1+cpu"},
                  exporter_versions={"torch": "2.13.0+cpu", "executorch": "1.4.1+cpu"})
    fields.update(kw)
    return ArtifactKey(**fields)


MADE_ON = {"host": "laptop-7", "machine": "x86_64", "system": "Linux", "python": "3.11.9"}


def shipped(folder: Path, k: ArtifactKey, data: bytes = b"program bytes", **changes) -> dict:
    """A manifest in ``folder`` with one artifact of ``k`` (``changes`` edit its entry)."""
    meta = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "export_s": 3.0,
            "check": {"max_abs_err": 1e-6, "cosine": 1.0}, "undelegated_ops": ["aten.erf"], "created": "x"}
    rel, _ = artifacts.copy_into(folder, k, data)
    entry = {**artifacts.manifest_entry(k, meta, rel, MADE_ON, tiny=True, weights="random"), **changes}
    artifacts.save_manifest(folder, {**artifacts.empty_manifest(), "artifacts": [entry]})
    return entry


def never(*_):
    raise AssertionError("converted although a matching artifact was there")


def converts(data: bytes = b"exported here"):
    calls = []

    def convert():
        calls.append(1)
        return data, {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "export_s": 1.5,
                      "check": {"max_abs_err": 0.0, "cosine": 1.0}, "created": "now"}
    return convert, calls


# -- the rules, on made-up files -------------------------------------------------------------------

def test_a_matching_manifest_artifact_is_used_without_converting(tmp_path):
    entry = shipped(tmp_path / "shipped", key())
    # another build of the same release (no local label) on the board: the same release
    got = artifacts.obtain(key(runtime_versions={"executorch": "1.4.1"}), convert=never,
                           cache_dir=tmp_path / "cache", manifest_dir=tmp_path / "shipped")
    assert got.provenance == "from manifest (made on laptop-7, x86_64)"
    assert got.path == tmp_path / "shipped" / entry["file"] and got.file_name == Path(entry["file"]).name
    assert got.meta["undelegated_ops"] == ["aten.erf"] and got.refused == [] and not got.exported_here
    assert not (tmp_path / "cache").exists()  # nothing exported, nothing cached
    assert entry["file"].startswith("executorch/logmel-b1-n4000-") and entry["duration_s"] == 0.25


def test_an_artifact_for_another_runtime_release_is_refused_with_the_reason(tmp_path):
    shipped(tmp_path / "shipped", key(runtime_versions={"executorch": "1.5.0"}))
    convert, calls = converts()
    got = artifacts.obtain(key(), convert=convert, cache_dir=tmp_path / "cache", manifest_dir=tmp_path / "shipped")
    assert calls == [1] and got.provenance == "exported here"
    (why,) = got.refused
    assert "(made on laptop-7, x86_64) refused: made for executorch 1.5.0, this machine has executorch 1.4.1+cpu" in why
    assert got.path is not None and got.path.parent == tmp_path / "cache"  # converted here and cached
    again = artifacts.obtain(key(), convert=never, cache_dir=tmp_path / "cache", manifest_dir=tmp_path / "shipped")
    assert again.provenance == "from cache" and again.path == got.path


def test_a_damaged_artifact_is_refused_by_its_checksum(tmp_path):
    entry = shipped(tmp_path / "shipped", key())
    path = tmp_path / "shipped" / entry["file"]
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    convert, calls = converts()
    got = artifacts.obtain(key(), convert=convert, manifest_dir=tmp_path / "shipped")
    assert calls == [1] and got.provenance == "exported here" and got.data == b"exported here"
    assert "refused: checksum mismatch: executorch/logmel-b1-n4000-" in got.refused[0]
    assert "damaged or replaced" in got.refused[0]


def test_where_it_cannot_convert_the_shape_is_unsupported_with_both_reasons(tmp_path):
    shipped(tmp_path / "shipped", key(), module_sha256="b" * 64)  # other weights or architecture
    with pytest.raises(UnsupportedError) as err:
        artifacts.obtain(key(), convert=never, manifest_dir=tmp_path / "shipped",
                         cannot_convert="litert-torch has no Linux aarch64 wheel")
    text = str(err.value)
    assert text.startswith("no matching artifact and this machine cannot convert: litert-torch has no Linux "
                           "aarch64 wheel (manifest: executorch/logmel-b1-n4000-")
    assert "made from another build of logmel (architecture or weights differ" in text
    with pytest.raises(UnsupportedError, match="^no matching artifact and this machine cannot convert: no wheel$"):
        artifacts.obtain(key(), convert=never, manifest_dir=tmp_path / "absent", cannot_convert="no wheel")


def test_other_shapes_runtimes_and_an_unreadable_manifest(tmp_path):
    shipped(tmp_path / "shipped", key(input_shape=(2, 4000)))
    convert, calls = converts()
    got = artifacts.obtain(key(), convert=convert, manifest_dir=tmp_path / "shipped")
    assert got.refused == [] and calls == [1]  # nothing for this shape: nothing refused
    got = artifacts.obtain(key(runtime="litert", suffix=".tflite", input_shape=(2, 4000)), convert=convert,
                           manifest_dir=tmp_path / "shipped")
    assert got.refused == [] and calls == [1, 1]
    (tmp_path / "shipped" / "manifest.json").write_text("{not json")
    got = artifacts.obtain(key(), convert=convert, manifest_dir=tmp_path / "shipped")
    assert got.refused[0].startswith("the artifacts manifest cannot be read (JSONDecodeError")


def test_a_manifest_carries_no_absolute_path_and_names_its_host(tmp_path):
    entry = shipped(tmp_path / "shipped", key())
    text = (tmp_path / "shipped" / "manifest.json").read_text()
    assert str(tmp_path) not in text and not entry["file"].startswith("/")
    manifest = json.loads(text)
    assert manifest["schema"] == 1 and manifest["kind"] == "wavebench edge-runtime artifacts"
    for field in ("runtime", "model", "weights", "module_sha256", "weights_sha256", "input_shape", "file", "sha256",
                  "bytes", "runtime_versions", "exporter_versions", "export_s", "check", "made_on", "recipe"):
        assert field in manifest["artifacts"][0], field
    assert artifacts.this_host()["host"] == socket.gethostname()
    assert artifacts.release("1.4.1+cpu") == "1.4.1" and artifacts.release(None) is None


def test_module_digests_see_weights_and_architecture():
    import torch

    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert artifacts.module_digests(a) == artifacts.module_digests(b)
    with torch.no_grad():
        b.bias.add_(1.0)
    assert artifacts.module_digests(a)[1] != artifacts.module_digests(b)[1]
    c = torch.nn.Sequential(torch.nn.Linear(3, 2))
    c[0].load_state_dict(a.state_dict())
    module_a, weights_a = artifacts.module_digests(a)
    module_c, weights_c = artifacts.module_digests(c)
    assert module_a != module_c  # another architecture (and names) around the same numbers


# -- the profile's shapes (make export DEVICE=rpi on a laptop) ----------------------------------------

def test_make_export_makes_the_shapes_of_the_profile_it_is_given():
    from bench.edge_export import artifact_shapes, split_runtimes
    from bench.profiles import load_profile
    from bench.settings import build_settings

    settings = build_settings(load_profile("rpi"), models="logmel,tera", runtimes="pytorch", batch_sizes=None,
                              durations=None, reps=None, threads=None, providers=None, energy="none", tiny=True)
    # the Pi's sweep (batch 1, 2, 4 at 1 s; 1, 2, 4, 8 s at batch 1), whatever machine this is
    assert artifact_shapes(settings, "tera", "pytorch") == [(1, 16000), (2, 16000), (4, 16000), (1, 32000),
                                                            (1, 64000), (1, 128000)]
    short = build_settings(load_profile("rpi"), models="logmel", runtimes="pytorch", batch_sizes="2",
                           durations="0.25", reps=None, threads=None, providers=None, energy="none", tiny=True)
    assert artifact_shapes(short, "logmel", "pytorch") == [(2, 4000), (1, 16000)]  # and the fidelity probe's
    assert split_runtimes(("pytorch", "executorch")) == (False, ("executorch",))
    assert split_runtimes(("all",))[0] is True and "executorch" in split_runtimes(("all",))[1]
    assert split_runtimes(("onnxruntime",)) == (True, ())


# -- what make fleet ships to a board ------------------------------------------------------------------

def test_the_fleet_ships_a_board_only_what_its_run_can_use(tmp_path):
    from fleet.artifacts import ArtifactsError, pick
    from fleet.config import parse_hosts

    folder = tmp_path / "artifacts"
    first = shipped(folder, key(input_shape=(1, 16000)))
    other = key(model="tera", input_shape=(1, 16000))
    rel, _ = artifacts.copy_into(folder, other, b"tera program")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"].append({**first, "model": "tera", "input_shape": [1, 16000], "file": rel,
                                  "sha256": hashlib.sha256(b"tera program").hexdigest(), "bytes": 12})
    for shape in ((1, 4000), (8, 16000), (2, 32000)):  # shapes the Pi's default sweep never uses
        extra = key(input_shape=shape)
        name, _ = artifacts.copy_into(folder, extra, b"another logmel program")
        manifest["artifacts"].append({**first, "input_shape": list(shape), "file": name})
    manifest["unsupported"] = [{"runtime": "executorch", "model": "apc", "reason": "too long"}]
    (folder / "manifest.json").write_text(json.dumps(manifest))

    def board(**settings):
        return parse_hosts("pi@rpi5:rpi", {"TINY": "1", **settings})[0]

    both = pick(folder, board(RUNTIMES="pytorch,executorch"))
    assert both is not None and [e["model"] for e in both.entries] == ["logmel", "tera"]
    one = pick(folder, board(RUNTIMES="all", MODELS="logmel"))
    assert one is not None and [e["model"] for e in one.entries] == ["logmel"] and one.digest != both.digest
    assert pick(folder, board(RUNTIMES="executorch", MODELS="tera")).digest == pick(
        folder, board(RUNTIMES="executorch", MODELS="tera,apc")).digest  # named by what it holds
    assert pick(folder, board()) is None  # the Pi's profile measures PyTorch and ONNX Runtime only
    assert pick(folder, board(RUNTIMES="executorch", TINY="")) is None  # full size: none made
    assert pick(tmp_path / "none", board(RUNTIMES="executorch")) is None
    # only the shapes the board's plan uses: its sweep (BATCH_SIZES, DURATIONS, GRID, QUICK on its profile's) and the probe
    shapes = {name: [(e["model"], tuple(e["input_shape"])) for e in pick(folder, board(RUNTIMES="executorch", **more)).entries]
              for name, more in (("pi", {}), ("b8", {"BATCH_SIZES": "8"}), ("grid", {"BATCH_SIZES": "2", "GRID": "1"}),
                                 ("short", {"DURATIONS": "0.25", "MODELS": "logmel"}))}
    assert shapes == {"pi": [("logmel", (1, 16000)), ("tera", (1, 16000))],
                      "b8": [("logmel", (1, 16000)), ("logmel", (8, 16000)), ("tera", (1, 16000))],
                      "grid": [("logmel", (1, 16000)), ("logmel", (2, 32000)), ("tera", (1, 16000))],
                      "short": [("logmel", (1, 4000)), ("logmel", (1, 16000))]}
    assert len(pick(folder, parse_hosts("pi@rpi5:auto", {"TINY": "1", "RUNTIMES": "executorch"})[0]).entries) == 5
    with pytest.raises(ArtifactsError, match="BATCH_SIZES"):
        pick(folder, board(RUNTIMES="executorch", BATCH_SIZES="one"))
    buffer = io.BytesIO()
    both.write_tar(buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        names = tar.getnames()
        sums = tar.extractfile("SHA256SUMS").read().decode()
        sent = json.loads(tar.extractfile("manifest.json").read())
    assert names[:2] == ["manifest.json", "SHA256SUMS"] and set(names[2:]) == {e["file"] for e in both.entries}
    assert f"{first['sha256']}  {first['file']}" in sums and "unsupported" not in sent
    (folder / rel).unlink()
    with pytest.raises(ArtifactsError, match="names 'executorch/tera-b1-n16000-.*', which is not there"):
        pick(folder, board(RUNTIMES="executorch"))


# -- with real ExecuTorch programs ------------------------------------------------------------------------

def export_tiny_logmel(results: Path, *extra: str) -> int:
    import export.__main__ as export_main

    return export_main.main(["--runtimes", "executorch", "--device", "rpi", "--models", "logmel", "--tiny",
                             "--batch-sizes", "1", "--durations", "0.25", "--results", str(results), *extra])


def board_runtime(manifest_dir: Path, cache: Path, **kw):
    from runners.reference import build_reference
    from runners.runtimes import ExecuTorchRuntime

    runtime = ExecuTorchRuntime(lambda: build_reference("logmel", True, "random"), None, model="logmel",
                                artifact_dir=cache, manifest_dir=manifest_dir, **kw)
    runtime.load()
    return runtime


@needs_executorch
def test_make_export_writes_programs_and_a_manifest_a_board_uses(tmp_path, capsys, monkeypatch):
    from runners.audio import synthetic_batch

    for name in ("RUNTIMES", "DEVICE", "MODELS", "BATCH_SIZES", "DURATIONS", "GRID", "QUICK", "ONNX_DIR",
                 "ARTIFACTS_DIR", "FRESH", "WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    laptop = tmp_path / "laptop"
    assert export_tiny_logmel(laptop) == 0
    out = capsys.readouterr().out
    folder = laptop / "onnx" / "artifacts"
    manifest = json.loads((folder / "manifest.json").read_text())
    shapes = sorted(tuple(e["input_shape"]) for e in manifest["artifacts"])
    # the cell's, the fidelity probe's and the drift canary's (runners/canary.py)
    assert shapes == [(1, 4000), (1, 16000), (256, 256)], out
    assert not list(laptop.glob("onnx/*.onnx"))  # RUNTIMES=executorch: no ONNX export asked for
    entry = next(e for e in manifest["artifacts"] if e["input_shape"] == [1, 4000])
    assert entry["runtime"] == "executorch" and entry["model"] == "logmel" and entry["tiny"] is True
    assert entry["weights"] == "none" and entry["profile"] == "rpi"  # log-mel has no parameters
    assert entry["check"]["cosine"] > 0.9999
    assert entry["runtime_versions"]["executorch"] and entry["exporter_versions"]["torch"]
    assert entry["bytes"] == (folder / entry["file"]).stat().st_size and entry["export_s"] > 0
    assert str(tmp_path) not in (folder / "manifest.json").read_text()
    assert "edge artifacts: 3 made, 0 up to date" in out
    assert export_tiny_logmel(laptop) == 0 and "edge artifacts: 0 made, 3 up to date" in capsys.readouterr().out

    # the board: another cache, the shipped folder
    wav = synthetic_batch(1, 4000, seed=3)
    runtime = board_runtime(folder, tmp_path / "board-cache")
    runtime.outputs_numpy(runtime.make_call(runtime.prepare(wav))())
    facts = runtime.facts
    assert facts["runtime_artifact"] == f"from manifest (made on {socket.gethostname()}, {artifacts.this_host()['machine']})"
    assert facts["runtime_export_s"] is None and facts["runtime_artifact_refused"] is None
    assert facts["runtime_artifact_file"] == Path(entry["file"]).name
    assert not (tmp_path / "board-cache").exists()
    runtime.close()

    # another ExecuTorch release on the board: refused with the reason; where it cannot convert, unsupported
    edited = json.loads((folder / "manifest.json").read_text())
    for e in edited["artifacts"]:
        e["runtime_versions"]["executorch"] = "0.9.0"
    (folder / "manifest.json").write_text(json.dumps(edited))
    runtime = board_runtime(folder, tmp_path / "board-cache")
    runtime.refusal = lambda shape: "this board has no converter (a test)"
    with pytest.raises(UnsupportedError) as err:
        runtime.prepare(wav)
    assert str(err.value).startswith("no matching artifact and this machine cannot convert: this board has no "
                                     "converter (a test) (manifest: executorch/logmel-b1-n4000-")
    assert f"refused: made for executorch 0.9.0, this machine has executorch {facts['runtime_version']}" in str(err.value)
    runtime.close()

    # a damaged file: refused by its checksum, and this machine exports its own
    (folder / "manifest.json").write_text(json.dumps(manifest))
    path = folder / entry["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    runtime = board_runtime(folder, tmp_path / "board-cache")
    runtime.prepare(wav)
    assert runtime.facts["runtime_artifact"] == "exported here" and runtime.facts["runtime_export_s"] > 0
    assert "refused: checksum mismatch" in runtime.facts["runtime_artifact_refused"]
    runtime.close()


@needs_executorch
def test_make_export_lists_a_long_rnn_as_make_bench_would_unless_long_rnn_is_asked_for(tmp_path, monkeypatch):
    """APC's GRU above 0.25 s: not exported (it would run up to the 480 s time limit) but listed under
    ``unsupported`` with the runner's own reason; LONG_RNN=1 exports it (the export is faked here)."""
    from bench.edge_export import export_artifacts, export_settings
    from runners.runtimes.executorch import ExecuTorchRuntime

    exported = []

    def fake_export(self, shape):
        exported.append(tuple(shape))
        data = b"program %d" % shape[1]
        return data, {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "export_s": 0.1}

    monkeypatch.setattr(ExecuTorchRuntime, "export", fake_export)
    found = {"DEVICE": "rpi", "MODELS": "apc", "TINY": True, "BATCH_SIZES": "1", "DURATIONS": "0.25",
             "ONNX_DIR": str(tmp_path / "onnx"), "ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    settings = export_settings(found, ("executorch",))
    logged: list[str] = []
    outcome = export_artifacts(settings, ("executorch",), log=logged.append)
    # the cell at 0.25 s and the drift canary; the probe's 1 s is above the limit
    assert exported == [(1, 4000), (256, 256)]
    manifest = json.loads((tmp_path / "artifacts" / "manifest.json").read_text())
    assert [e["input_shape"] for e in manifest["artifacts"]] == [[1, 4000], [256, 256]]
    (refused,) = manifest["unsupported"]
    assert refused["model"] == "apc" and refused["input_shape"] == [1, 16000]
    assert refused["reason"] == ("ExecuTorch unrolls the GRU frame by frame at export: an input of 16000 samples is "
                                 "above the 4000-sample limit set for RNNs (its export takes minutes and GBs; "
                                 "docs/runtimes.md; make export RUNTIMES=executorch can make it on another machine)")
    assert outcome.unsupported and any("LONG_RNN=1" in line for line in logged)
    exported.clear()
    outcome = export_artifacts(settings, ("executorch",), long_rnn=True, log=logged.append)
    assert exported == [(1, 16000)] and outcome.made == 1 and outcome.up_to_date == 2
    manifest = json.loads((tmp_path / "artifacts" / "manifest.json").read_text())
    assert sorted(e["input_shape"] for e in manifest["artifacts"]) == [[1, 4000], [1, 16000], [256, 256]]
    assert manifest["unsupported"] == []


def test_the_fleet_ships_the_drift_canaries_to_every_board_measuring_litert_or_executorch(tmp_path):
    """The canary (model ``canary``, 256×256; bench/edge_export.py) is no cell's shape and no model of
    MODELS, of no size: a board measuring LiteRT gets it whatever its sweep, models and TINY."""
    from fleet.artifacts import pick
    from fleet.config import parse_hosts

    folder = tmp_path / "artifacts"
    first = shipped(folder, key(input_shape=(1, 16000)))
    manifest = json.loads((folder / "manifest.json").read_text())
    for model, shape, tiny in (("canary", (256, 256), None), ("logmel", (1, 4000), True)):
        k = key(runtime="litert", model=model, input_shape=shape, suffix=".tflite",
                runtime_versions={"ai-edge-litert": "2.3.0"})
        name, _ = artifacts.copy_into(folder, k, b"a litert model")
        manifest["artifacts"].append({**first, "runtime": "litert", "model": model, "input_shape": list(shape),
                                      "file": name, "tiny": tiny})
    name, _ = artifacts.copy_into(folder, key(model="canary", input_shape=(256, 256)), b"an executorch canary")
    manifest["artifacts"].append({**first, "model": "canary", "input_shape": [256, 256], "file": name, "tiny": None})
    (folder / "manifest.json").write_text(json.dumps(manifest))

    def picked(**settings):
        got = pick(folder, parse_hosts("pi@rpi5:rpi", settings)[0])
        return None if got is None else [(e["runtime"], e["model"]) for e in got.entries]

    assert picked(RUNTIMES="litert", MODELS="tera") == [("litert", "canary")]  # full size, another model
    assert picked(RUNTIMES="litert,executorch", TINY="1", DURATIONS="0.25", BATCH_SIZES="1") == [
        ("executorch", "canary"), ("executorch", "logmel"), ("litert", "canary"), ("litert", "logmel")]
    assert picked(RUNTIMES="executorch", TINY="1") == [("executorch", "canary"), ("executorch", "logmel")]
    assert picked(RUNTIMES="onnxruntime") is None
