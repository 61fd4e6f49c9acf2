"""Re-rooted reads of sysfs/procfs: the one sysfs root of the project.

Every reader (the energy sensors, the environment fingerprint, the platform detector) names the files it reads by their real absolute path
(``/sys/class/powercap/intel-rapl:0/energy_uj``) so the code reads like the kernel docs, and
resolves them through a :class:`SysRoot`.  Tests build fake trees for a laptop, a server or a
Jetson under a temporary directory and point a ``SysRoot`` at it; users can do the same with
the environment variable ``WAVEBENCH_SYSFS_ROOT`` (default ``/``), e.g. to replay a tree copied
from a device.
"""

from __future__ import annotations

import glob as _glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

ROOT_ENV = "WAVEBENCH_SYSFS_ROOT"


def _natural_key(text: str) -> list:
    """Sort ``intel-rapl:10`` after ``intel-rapl:9`` and ``hwmon10`` after ``hwmon2``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class SysRoot:
    """The directory that stands for ``/`` when reading sysfs and procfs."""

    path: Path = Path("/")

    @classmethod
    def resolve(cls, root: "str | os.PathLike | SysRoot | None" = None, env: Mapping[str, str] | None = None) -> "SysRoot":
        """An explicit ``root`` wins (a ``SysRoot`` is used as is); else ``$WAVEBENCH_SYSFS_ROOT``; else ``/``."""
        if isinstance(root, SysRoot):
            return root
        if root is None:
            root = (os.environ if env is None else env).get(ROOT_ENV) or "/"
        return cls(Path(root))

    def real(self, path: str) -> Path:
        """The file that stands for the absolute path ``path`` under this root."""
        return self.path / path.lstrip("/")

    def exists(self, path: str) -> bool:
        return self.real(path).exists()

    def read_text(self, path: str) -> str:
        """The file's content, stripped.  Raises ``FileNotFoundError``/``PermissionError``/``OSError``."""
        with open(self.real(path), "r", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()

    def read_int(self, path: str) -> int:
        text = self.read_text(path)
        try:
            return int(text)
        except ValueError:
            raise OSError(f"{self.real(path)}: expected an integer, found {text[:40]!r}") from None

    def read_optional(self, path: str) -> str | None:
        """The content, or ``None`` when the file is absent (other errors still raise)."""
        try:
            return self.read_text(path)
        except FileNotFoundError:
            return None

    def read_lenient(self, path: str) -> str | None:
        """The stripped content with device-tree NULs removed, or ``None`` on any error.

        For the environment fingerprint and the platform detector, where nothing missing may raise.
        """
        try:
            data = self.real(path).read_bytes()
        except (OSError, ValueError):
            return None
        return data.replace(b"\x00", b"").decode("utf-8", "replace").strip()

    def glob(self, pattern: str) -> list[str]:
        """Absolute (un-rooted) paths matching ``pattern``, in natural order."""
        base = str(self.path).rstrip("/")
        hits = _glob.glob(str(self.real(pattern)))
        return sorted(("/" + os.path.relpath(hit, base).lstrip("/") for hit in hits), key=_natural_key)

    def __str__(self) -> str:
        return str(self.path)


def sysfs_root(root: "str | os.PathLike | SysRoot | None" = None) -> Path:
    """The directory every sysfs/procfs/etc path is read under (see :meth:`SysRoot.resolve`)."""
    return SysRoot.resolve(root).path
