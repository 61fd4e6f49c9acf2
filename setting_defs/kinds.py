"""How a setting's text becomes a value: the parsers the definitions (``setting_defs.table``) name.

Every parser takes what the user typed (a make variable, a flag, a ``fleet.toml`` value) or a value
already typed by a caller (a test passing ``reps=3``), and returns the typed value or raises
:class:`SettingError` with one line naming the setting, the bad value and what is valid.  Nothing
here imports the rest of the project: ``export/`` and ``flops/`` read the same definitions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


class SettingError(ValueError):
    """A bad setting: one line naming the value and what is valid (exit code 2 at a command line)."""


def is_unset(value: Any) -> bool:
    """A make variable that is empty is unset, as in make."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_list(text: Any, kind: type, name: str) -> tuple | None:
    """``"1,2,4"`` -> (1, 2, 4); each value must be > 0 for numbers."""
    if is_unset(text):
        return None
    items = list(text) if isinstance(text, (list, tuple)) else str(text).split(",")
    values = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if kind is str:
            values.append(item)
            continue
        try:
            value = kind(item)
        except ValueError:
            raise SettingError(f"{name}={item!r} is not a number; expected a comma-separated list of "
                               f"positive {'integers' if kind is int else 'numbers'}") from None
        if value <= 0:
            raise SettingError(f"{name}={item} must be > 0")
        values.append(value)
    if not values:
        raise SettingError(f"{name} is empty")
    return tuple(values)


def parse_count(text: Any, name: str) -> int | None:
    """A whole number >= 1 typed by the user (``REPS=0`` and ``REPS=ten`` are refused)."""
    if is_unset(text):
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SettingError(f"{name}={str(text).strip()!r} is not a whole number; expected an integer >= 1") from None
    if value < 1:
        raise SettingError(f"{name}={value} must be >= 1")
    return value


def parse_positive(text: Any, name: str) -> float | None:
    """A number > 0 (seconds, watts, a fraction)."""
    if is_unset(text):
        return None
    try:
        value = float(str(text).strip())
    except ValueError:
        raise SettingError(f"{name}={str(text).strip()!r} is not a number; expected a number > 0") from None
    if not value > 0:
        raise SettingError(f"{name}={value:g} must be > 0")
    return value


def parse_flag(text: Any, name: str) -> bool:
    """``1`` on, ``0`` or unset off (``QUICK=1``); anything else is refused rather than guessed."""
    if isinstance(text, bool):
        return text
    if is_unset(text) or str(text).strip() == "0":
        return False
    if str(text).strip() == "1":
        return True
    raise SettingError(f"{name}={str(text).strip()!r} is not a switch; valid: 1 (on), 0 or unset (off)")


def parse_text(text: Any, name: str) -> str | None:
    return None if is_unset(text) else str(text).strip()


def choice_parser(choices: tuple[str, ...]) -> Callable[[Any, str], str | None]:
    """One of ``choices`` (or unset)."""
    def parse(text: Any, name: str) -> str | None:
        if is_unset(text):
            return None
        value = str(text).strip()
        if value not in choices:
            raise SettingError(f"{name}={value!r} is not valid; valid: {', '.join(choices)}")
        return value
    return parse


def check_writable(path: str | Path, name: str, flag: str | None = None, noun: str = "folder") -> None:
    """A folder that must be creatable and writable, checked before anything is written."""
    target = Path(path).expanduser().resolve()
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        how = f"{name}=... / {flag}" if flag else f"{name}=..."
        raise SettingError(f"{noun} {path} is not writable (checked {probe}); choose another with {how}")


def check_folder(path: str | Path, name: str, flag: str | None = None, hint: str = "") -> None:
    """A folder that is only read (it must exist and be readable), checked before anything runs."""
    target = Path(path).expanduser()
    if not target.is_dir():
        what = "is a file, not a folder" if target.exists() else "no such folder"
        how = f"; set {name}=... / {flag} to another" if flag else ""
        raise SettingError(f"{name}={path}: {what}{f' ({hint})' if hint else ''}{how}")
    if not os.access(target, os.R_OK | os.X_OK):
        raise SettingError(f"{name}={path}: the folder is not readable")


def check_file(path: str | Path, name: str) -> None:
    """A file that must exist and be readable before anything runs."""
    target = Path(path).expanduser()
    if not target.is_file():
        what = "is a folder, not a file" if target.is_dir() else "no such file"
        raise SettingError(f"{name}={path}: {what}")
    if not os.access(target, os.R_OK):
        raise SettingError(f"{name}={path}: the file is not readable")
