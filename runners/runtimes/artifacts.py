"""Artifacts an edge runtime makes from the PyTorch module, one per input shape (ExecuTorch's
``.pte``; LiteRT's ``.tflite`` next): where each comes from, checked before it is used.

A runtime with fixed-shape programs gets its artifact for a shape with one call,
:func:`obtain`, which tries, in order:

1. **this machine's cache** (``cache_dir``, ``<ONNX_DIR>/<runtime>/``): the file named by the
   key's digest and its JSON sidecar, used when the sidecar's key is this key (model hash, shape,
   recipe, exporter and runtime versions) and the file's sha256 is the sidecar's ("from cache");
2. **a manifest of artifacts made elsewhere** (``manifest_dir``, ``ARTIFACTS_DIR``: what
   ``make export RUNTIMES=...`` wrote on a laptop and ``make fleet`` shipped): an entry for this
   runtime, model and shape is used when the model hash (architecture and weights), the recipe and
   the versions of the runtime that loads the file match, and the file's sha256 and size are the
   entry's ("from manifest (made on <host>)").  Any other entry for the shape is refused with the
   reason (``Artifact.refused``: another version, another build of the model, a damaged file);
3. **converting here** (``convert``, the runtime's own export, written to the cache: "exported
   here") — unless the runtime says this machine cannot (``cannot_convert``: a converter with no
   wheel for it, an RNN too long to unroll here), in which case the shape is
   :class:`UnsupportedError` "no matching artifact and this machine cannot convert: ...".

Versions are compared by release (``1.4.1+cpu`` and ``1.4.1`` are one release: the local label
names the build's flavour, not the file format); what the exporter ran on (torch) is recorded but
need not match where the file is used — the file is loaded by the runtime, not by torch.

Nothing written here carries an absolute path: a manifest names its files relative to its own
folder and its host by name.  The manifest's format (``MANIFEST``, JSON)::

    {"schema": 1, "kind": "wavebench edge-runtime artifacts", "updated": ...,
     "artifacts": [{"runtime", "model", "tiny", "weights", "module_sha256", "weights_sha256",
                    "input_shape": [batch, samples], "batch_size", "duration_s",
                    "file": "<runtime>/<name>", "sha256", "bytes", "recipe",
                    "runtime_versions": {...}, "exporter_versions": {...}, "export_s",
                    "check": {"max_abs_err", "cosine"}, "made_on": {"host", "machine", "system", "python"},
                    "created", "key": {...}, ...what the runtime records of its export}],
     "failed": [{"runtime", "model", "input_shape", "reason", "made_on"}]}
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from models.audio_format import SAMPLE_RATE
from runners.runtimes.base import UnsupportedError

MANIFEST = "manifest.json"
SCHEMA = 1
KIND = "wavebench edge-runtime artifacts"
EXPORTED = "exported here"
CACHED = "from cache"
CANNOT_CONVERT = "no matching artifact and this machine cannot convert"
# the fields of an export's record that every runtime writes (the rest are the runtime's own)
COMMON_META = ("sha256", "bytes", "export_s", "check", "created")


def file_prefix(model: str, input_shape: tuple[int, int]) -> str:
    """The start of an artifact's file name: the model's name made safe, and the shape."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return f"{safe}-b{input_shape[0]}-n{input_shape[1]}-"


@dataclass(frozen=True)
class ArtifactKey:
    """What an artifact was made from and for.  ``runtime_versions`` (the packages that load the
    file) must match where it is used; ``exporter_versions`` (what made it) are recorded, and are
    part of this machine's cache key only."""

    runtime: str
    model: str
    module_sha256: str  # the module's architecture and weights (:func:`module_digests`)
    input_shape: tuple[int, int]  # (batch, samples)
    recipe: str  # how the runtime converts (its passes, precision): a new recipe is a new artifact
    suffix: str  # the file's extension, with its dot (".pte")
    runtime_versions: dict[str, str | None] = field(default_factory=dict)
    exporter_versions: dict[str, str | None] = field(default_factory=dict)
    weights_sha256: str = ""  # the weights alone (recorded: the module hash covers them)

    def cache_dict(self) -> dict[str, Any]:
        """The key as this machine's cache stores it in a sidecar (every version included)."""
        return {"model": self.model, "module_sha256": self.module_sha256, "input_shape": list(self.input_shape),
                **self.exporter_versions, **self.runtime_versions, "recipe": self.recipe}

    def file_name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.cache_dict(), sort_keys=True).encode()).hexdigest()[:16]
        return f"{file_prefix(self.model, self.input_shape)}{digest}{self.suffix}"

    def shape_text(self) -> str:
        return f"{self.input_shape[0]}x{self.input_shape[1]}"


@runtime_checkable
class Convertible(Protocol):
    """What a runtime with per-shape artifacts offers ``make export`` beside the ``Runtime``
    protocol (after ``load()``): the key of a shape's artifact, why a shape is not exported during a
    benchmark (``make export`` applies the same limits unless ``LONG_RNN=1``), and its export with
    no benchmark-time refusals (``UnsupportedError`` when it cannot be made)."""

    def artifact_key(self, shape: tuple[int, int]) -> ArtifactKey: ...

    def refusal(self, shape: tuple[int, int]) -> str | None: ...

    def export(self, shape: tuple[int, int]) -> tuple[bytes, dict[str, Any]]: ...


@dataclass
class Artifact:
    """An artifact ready to load: a file (``path``) or, exported without a cache, its bytes."""

    provenance: str  # EXPORTED, CACHED or "from manifest (made on <host>)"
    meta: dict[str, Any]  # the export's record: COMMON_META and the runtime's own fields
    path: Path | None = None
    data: bytes | None = None
    refused: list[str] = field(default_factory=list)  # manifest entries for this shape not used, and why

    @property
    def source(self) -> Path | bytes:
        """What the runtime loads: the file, or the bytes exported now."""
        if self.path is not None:
            return self.path
        assert self.data is not None
        return self.data

    @property
    def file_name(self) -> str | None:
        return self.path.name if self.path is not None else None

    @property
    def exported_here(self) -> bool:
        return self.provenance == EXPORTED


# --- what a module is -------------------------------------------------------------------------

def module_digests(module: Any) -> tuple[str, str]:
    """(module sha256, weights sha256): the weights hash covers every parameter and buffer (name,
    shape, dtype, bytes); the module hash is that and the architecture (its ``repr``)."""
    weights = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        weights.update(name.encode())
        weights.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    weights_hex = weights.hexdigest()
    return hashlib.sha256(repr(module).encode() + weights_hex.encode()).hexdigest(), weights_hex


def release(version: str | None) -> str | None:
    """A version without its local label (``1.4.1+cpu`` -> ``1.4.1``)."""
    return version.split("+", 1)[0].strip() if version else version


def this_host() -> dict[str, str]:
    """Who made an artifact: names only, never a path."""
    return {"host": socket.gethostname(), "machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version()}


def host_label(made_on: Any) -> str:
    if not isinstance(made_on, dict) or not made_on.get("host"):
        return "another machine"
    machine = made_on.get("machine")
    return f"{made_on['host']}, {machine}" if machine else str(made_on["host"])


def made_on_text(entry: dict[str, Any]) -> str:
    return f"from manifest (made on {host_label(entry.get('made_on'))})"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- this machine's cache -----------------------------------------------------------------------

def cache_path(cache_dir: str | Path, key: ArtifactKey) -> Path:
    return Path(cache_dir) / key.file_name()


def read_cached(cache_dir: str | Path | None, key: ArtifactKey) -> dict[str, Any] | None:
    """The sidecar of a cached artifact for ``key`` whose key and checksum still match, else None."""
    if cache_dir is None:
        return None
    path = cache_path(cache_dir, key)
    sidecar = path.with_suffix(".json")
    if not path.exists() or not sidecar.exists():
        return None
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key.cache_dict() or meta.get("sha256") != file_sha256(path):
        return None
    return meta


def write_cached(cache_dir: str | Path, key: ArtifactKey, data: bytes, meta: dict[str, Any]) -> Path:
    """Write ``data`` and its sidecar into the cache (the file first, replaced whole)."""
    path = cache_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "key": key.cache_dict()}, indent=1) + "\n")
    return path


# --- a manifest of artifacts made elsewhere ---------------------------------------------------------

class ManifestError(ValueError):
    """A manifest that cannot be read (the reason, one line)."""


def load_manifest(folder: str | Path | None) -> dict[str, Any] | None:
    """The manifest in ``folder``; None when there is none; :class:`ManifestError` when unreadable."""
    if folder is None:
        return None
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"the artifacts manifest cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("artifacts"), list):
        raise ManifestError("the artifacts manifest has no list of artifacts")
    return data


def empty_manifest() -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": KIND, "updated": None, "artifacts": [], "failed": []}


def save_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest whole (a reader never sees half of it)."""
    path = Path(folder) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {**manifest, "schema": SCHEMA, "kind": KIND, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def for_shape(entry: dict[str, Any], key: ArtifactKey) -> bool:
    """Whether ``entry`` is an artifact of ``key``'s runtime and model for its input shape."""
    return names(entry, key.runtime, key.model, key.input_shape)


def names(entry: dict[str, Any], runtime: str, model: str, input_shape: tuple[int, int]) -> bool:
    """Whether ``entry`` is an artifact of ``runtime`` for ``model`` at ``input_shape``."""
    return (entry.get("runtime") == runtime and entry.get("model") == model
            and list(entry.get("input_shape") or []) == list(input_shape))


def mismatch(entry: dict[str, Any], key: ArtifactKey) -> str | None:
    """Why an entry for ``key``'s shape cannot stand for it here (None: it matches)."""
    for name, here in key.runtime_versions.items():
        there = (entry.get("runtime_versions") or {}).get(name)
        if release(there) != release(here):
            return f"made for {name} {there or '(unknown version)'}, this machine has {name} {here or '(none)'}"
    if entry.get("module_sha256") != key.module_sha256:
        return (f"made from another build of {key.model} (architecture or weights differ: module sha256 "
                f"{str(entry.get('module_sha256'))[:12]}… there, {key.module_sha256[:12]}… here)")
    if entry.get("recipe") != key.recipe:
        return f"made with another recipe ({entry.get('recipe')!r}; this runner's: {key.recipe!r})"
    return None


def verify_file(folder: Path, entry: dict[str, Any]) -> str | None:
    """Why the entry's file cannot be trusted (None: it is there, whole and unchanged)."""
    name = str(entry.get("file") or "")
    path = folder / name
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return f"its file {name!r} is not a path inside the artifacts folder"
    if not path.is_file():
        return f"its file {name} is missing"
    size = path.stat().st_size
    if entry.get("bytes") is not None and size != entry.get("bytes"):
        return f"its file {name} has {size} bytes, the manifest says {entry.get('bytes')}: damaged or replaced"
    digest = file_sha256(path)
    if digest != entry.get("sha256"):
        return (f"checksum mismatch: {name} has sha256 {digest[:12]}…, the manifest says "
                f"{str(entry.get('sha256'))[:12]}…: damaged or replaced")
    return None


def from_manifest(folder: str | Path | None, key: ArtifactKey) -> tuple[Artifact | None, list[str]]:
    """The manifest's artifact for ``key`` when one matches and verifies; the reasons each other
    entry for the shape was refused."""
    try:
        manifest = load_manifest(folder)
    except ManifestError as exc:
        return None, [str(exc)]
    if manifest is None or folder is None:
        return None, []
    refused: list[str] = []
    for entry in manifest["artifacts"]:
        if not isinstance(entry, dict) or not for_shape(entry, key):
            continue
        why = mismatch(entry, key) or verify_file(Path(folder), entry)
        if why is None:
            return Artifact(made_on_text(entry), dict(entry), path=Path(folder) / str(entry["file"])), refused
        refused.append(f"{entry.get('file')} (made on {host_label(entry.get('made_on'))}) refused: {why}")
    return None, refused


# --- the one call a runtime makes --------------------------------------------------------------------

def obtain(key: ArtifactKey, *, convert: Callable[[], tuple[bytes, dict[str, Any]]],
           cache_dir: str | Path | None = None, manifest_dir: str | Path | None = None,
           cannot_convert: str | None = None) -> Artifact:
    """The artifact for ``key``: from this machine's cache, from a manifest made elsewhere, or
    converted now by ``convert`` (the runtime's export: ``(bytes, meta)`` with :data:`COMMON_META`;
    ``UnsupportedError`` when it cannot) and cached.  ``cannot_convert``: why this machine does not
    convert this shape (then only a cached or shipped artifact will do)."""
    meta = read_cached(cache_dir, key)
    if meta is not None and cache_dir is not None:
        return Artifact(CACHED, meta, path=cache_path(cache_dir, key))
    found, refused = from_manifest(manifest_dir, key)
    if found is not None:
        found.refused = refused
        return found
    if cannot_convert:
        more = f" (manifest: {'; '.join(refused)})" if refused else ""
        raise UnsupportedError(f"{CANNOT_CONVERT}: {cannot_convert}{more}")
    data, meta = convert()
    if cache_dir is None:
        return Artifact(EXPORTED, meta, data=data, refused=refused)
    return Artifact(EXPORTED, meta, path=write_cached(cache_dir, key, data, meta), refused=refused)


# --- writing a manifest (make export) ------------------------------------------------------------------

def manifest_entry(key: ArtifactKey, meta: dict[str, Any], file: str, made_on: dict[str, str],
                   **about: Any) -> dict[str, Any]:
    """A manifest's record of one artifact: ``key``, the export's ``meta``, the ``file`` (relative to
    the manifest's folder) and what else the caller knows (``tiny``, ``weights``)."""
    batch, samples = key.input_shape
    own = {k: v for k, v in meta.items() if k not in ("key",)}
    return {**own, **about, "runtime": key.runtime, "model": key.model, "module_sha256": key.module_sha256,
            "weights_sha256": key.weights_sha256, "input_shape": [batch, samples], "batch_size": batch,
            "duration_s": samples / SAMPLE_RATE, "file": file, "recipe": key.recipe,
            "runtime_versions": dict(key.runtime_versions), "exporter_versions": dict(key.exporter_versions),
            "made_on": dict(made_on), "key": key.cache_dict()}


def at_hand(runtime: str, model: str, input_shape: tuple[int, int], cache_dir: str | Path | None,
            manifest_dir: str | Path | None) -> bool:
    """Whether an artifact of ``runtime`` for ``model`` at ``input_shape`` is in this machine's cache
    or in the manifest, by name and shape only (no module is built: ``make bench``'s prediction
    asks before any worker starts).  One made from other weights or versions counts too: the
    prediction may then leave out an export that :func:`obtain` will still make."""
    if cache_dir is not None and any(p.suffix not in (".json", ".tmp")
                                     for p in Path(cache_dir).glob(f"{file_prefix(model, input_shape)}*")):
        return True  # the artifact itself: not a sidecar left alone, nor a half-written file
    try:
        manifest = load_manifest(manifest_dir)
    except ManifestError:
        return False
    return any(names(entry, runtime, model, input_shape) for entry in (manifest or {}).get("artifacts", []))


def same_artifact(entry: dict[str, Any], key: ArtifactKey) -> bool:
    """Whether ``entry`` was made from exactly ``key`` (every version too): make export's 'up to date'."""
    return for_shape(entry, key) and entry.get("key") == key.cache_dict()


def copy_into(folder: Path, key: ArtifactKey, source: Path | bytes) -> tuple[str, Path]:
    """Put an artifact's file into a manifest's folder: (its name relative to the folder, its path)."""
    rel = f"{key.runtime}/{key.file_name()}"
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if isinstance(source, bytes):
        tmp.write_bytes(source)
    else:
        shutil.copyfile(source, tmp)
    tmp.replace(target)
    return rel, target
