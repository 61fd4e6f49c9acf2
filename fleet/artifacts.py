"""What of the laptop's edge-runtime artifacts a board gets: the ones its run can use.

``make export RUNTIMES=executorch DEVICE=rpi`` writes per-shape artifacts and ``manifest.json`` into
``ARTIFACTS_DIR`` (``runners/runtimes/artifacts.py`` documents the format).  For each board the
fleet picks the entries of the runtimes that board measures (``RUNTIMES``; ``all`` is every one;
unset: its profile's), of its models (``MODELS``, when set), of its size (``TINY``) and of the input
shapes its run will use — its plan's cells and the fidelity probe's input, derived from its profile
and settings (``BATCH_SIZES``, ``DURATIONS``, ``GRID``, ``QUICK``) as ``make export`` derives them
(``bench.edge_export.artifact_shapes``; a board on ``auto`` gets every shape, its profile being
chosen on the board) — plus the runtime's drift canary where ``make export`` makes one
(LiteRT's: a board without the converter has no other), and ships
them as one folder — the picked entries' manifest, their files and a ``SHA256SUMS`` the board
checks before it keeps anything — named by the digest of what it holds
(``<board dir>/artifacts/<digest>/``).  A board that has that folder already gets nothing; the
run is pointed at it (``--artifacts-dir``), and its id includes the digest, so other artifacts
make another run.  Nothing is shipped when nothing fits: the boards that measure PyTorch and
ONNX Runtime only never see the folder.

The manifest is read as plain JSON here: the laptop's fleet loads no runtime package.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from bench.edge_export import artifact_shapes, canary_artifacts
from bench.profiles import ProfileError, load_profile
from bench.settings import Settings, sweep_lists
from fleet.config import Board
from setting_defs import SettingError, setting

MANIFEST = "manifest.json"  # runners.runtimes.artifacts.MANIFEST (not imported: see above)
SUMS = "SHA256SUMS"
EVERY = "all"


class ArtifactsError(ValueError):
    """The laptop's artifacts cannot be shipped as they are (one line: what to do)."""


@dataclass(frozen=True)
class Shipment:
    """The artifacts one board gets: the manifest's picked entries, from ``folder``."""

    folder: Path
    manifest: dict[str, Any]
    digest: str

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.manifest["artifacts"])

    @property
    def bytes(self) -> int:
        return sum(int(e.get("bytes") or 0) for e in self.entries)

    def describe(self) -> str:
        runtimes = sorted({str(e.get("runtime")) for e in self.entries})
        return (f"{len(self.entries)} {'/'.join(runtimes)} artifact(s), {self.bytes / 1e6:.1f} MB "
                f"({self.digest})")

    def write_tar(self, out: IO[bytes]) -> None:
        """The shipment as a tar stream: manifest.json, SHA256SUMS and every file (paths as in the manifest)."""
        sums = "".join(f"{e['sha256']}  {e['file']}\n" for e in self.entries)
        with tarfile.open(fileobj=out, mode="w|") as tar:
            for name, data in ((MANIFEST, (json.dumps(self.manifest, indent=1, sort_keys=True) + "\n").encode()),
                               (SUMS, sums.encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            for entry in self.entries:
                path = self.folder / str(entry["file"])
                info = tarfile.TarInfo(str(entry["file"]))
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)


def board_runtimes(board: Board) -> set[str] | None:
    """The runtimes the board's run measures; None: every one (``RUNTIMES=all``)."""
    text = board.settings.get("RUNTIMES", "")
    names = {n.strip() for n in text.split(",") if n.strip()}
    if not names:
        try:
            names = set(load_profile(board.profile).runtimes) if board.profile != "auto" else set()
        except ProfileError:
            names = set()
    return None if EVERY in names else names


def board_shapes(board: Board, runtimes: set[str], models: set[str]) -> set[tuple[str, str, int, int]] | None:
    """(runtime, model, batch, samples) of every input the board's run of ``runtimes`` × ``models``
    uses; None when the board's profile is ``auto`` (its sweep is decided on the board).
    :class:`ArtifactsError` for a sweep setting the board's run would refuse."""
    if board.profile == "auto":
        return None
    try:
        profile = load_profile(board.profile)
        quick = bool(setting("QUICK").value(board.settings.get("QUICK")))
        grid = bool(setting("GRID").value(board.settings.get("GRID")))
        batches, durations = sweep_lists(profile, board.settings.get("BATCH_SIZES"), board.settings.get("DURATIONS"),
                                         quick)
    except (ProfileError, SettingError) as exc:
        raise ArtifactsError(f"board {board.name}: {exc}") from None
    settings = Settings(device=profile.name, models=tuple(sorted(models)), runtimes=tuple(sorted(runtimes)),
                        batch_sizes=batches, durations=durations, grid=grid, quick=quick)
    shapes = set()
    for runtime in settings.runtimes:
        for model in settings.models:
            try:
                shapes |= {(runtime, model, b, n) for b, n in artifact_shapes(settings, model, runtime)}
            except ValueError:  # a model this checkout does not know (or the canary): not a cell's shape
                continue
        shapes |= {(runtime, model, *shape) for model, shape in canary_artifacts(runtime)}
    return shapes


def is_canary(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` is a runtime's drift canary (bench/edge_export.py): every board measuring the
    runtime gets it, whatever its models and size."""
    return (entry.get("model"), tuple(entry.get("input_shape") or ())) in canary_artifacts(str(entry.get("runtime")))


def pick(folder: str | Path | None, board: Board) -> Shipment | None:
    """The artifacts of ``folder``'s manifest that ``board``'s run can use; None when there is no
    manifest or nothing fits.  :class:`ArtifactsError` for a manifest that cannot be read or names
    a file that is not there."""
    if folder is None:
        return None
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        entries = [e for e in manifest["artifacts"] if isinstance(e, dict)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactsError(f"ARTIFACTS_DIR={folder}: its {MANIFEST} cannot be read ({exc}); "
                             "make export RUNTIMES=... writes it again") from None
    runtimes = board_runtimes(board)
    models = {m.strip() for m in board.settings.get("MODELS", "").split(",") if m.strip()}
    tiny = board.settings.get("TINY", "").strip() == "1"
    picked = [e for e in entries
              if (runtimes is None or e.get("runtime") in runtimes)
              and (is_canary(e) or (not models or e.get("model") in models) and bool(e.get("tiny", False)) == tiny)]
    shapes = board_shapes(board, {str(e.get("runtime")) for e in picked}, {str(e.get("model")) for e in picked})
    if shapes is not None:
        picked = [e for e in picked if (e.get("runtime"), e.get("model"), *(e.get("input_shape") or [])) in shapes]
    if not picked:
        return None
    for entry in picked:
        name = str(entry.get("file") or "")
        parts = PurePosixPath(name).parts
        if not name or name.startswith("/") or ".." in parts or not (folder / name).is_file():
            raise ArtifactsError(f"ARTIFACTS_DIR={folder}: {MANIFEST} names {name!r}, which is not there; "
                                 "make export RUNTIMES=... writes it again")
    picked.sort(key=lambda e: (str(e.get("runtime")), str(e.get("model")), list(e.get("input_shape") or [])))
    shipped = {k: v for k, v in manifest.items() if k not in ("artifacts", "unsupported")}
    shipped["artifacts"] = picked
    digest = hashlib.sha256(json.dumps([[e.get("file"), e.get("sha256")] for e in picked]).encode()).hexdigest()[:16]
    return Shipment(folder, shipped, digest)
