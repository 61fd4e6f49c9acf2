"""The fleet: which boards, with which profile, and the settings each board's run gets.

Two ways to name the boards, both checked completely before anything is contacted (a bad entry
is :class:`ConfigError`, exit code 2 at the command line):

- ``HOSTS=pi@rpi5.local:rpi,nvidia@orin.local:jetson`` — ``[user@]host:profile``; ``host`` is
  anything ``ssh`` accepts as a destination, an alias of ``~/.ssh/config`` included (a port or
  ProxyJump goes there, not here);
- ``FLEET=fleet.toml`` — the same plus a per-board folder, settings and environment
  (format in docs/fleet.md).

Settings are ``make bench``'s variables; the fleet file's ``[settings]`` are the base, a
board's own ``settings`` table overrides them for that board, and variables given on the
command line now (``make fleet MODELS=...``) override both.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bench.profiles import profile_names
from setting_defs import fleet_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

# the variables a board's run gets are the settings defined as forwarded (setting_defs:
# fleet=True); DEVICE comes from the board's profile and RESULTS_DIR/ONNX_DIR are the board's own folders
DEFAULT_DIR = "~/wavebench"
HOST_RE = re.compile(r"^(?:[A-Za-z0-9._][A-Za-z0-9._+-]*@)?[A-Za-z0-9_][A-Za-z0-9._-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BOARD_KEYS = ("host", "profile", "name", "dir", "venv", "settings", "env")


class ConfigError(ValueError):
    """A bad HOSTS/FLEET entry; the message is one line naming the value and what is valid."""


@dataclass(frozen=True)
class Board:
    """One board: where to reach it, which device profile it runs, and what its run gets."""

    host: str                      # ssh destination: [user@]host or a ~/.ssh/config alias
    profile: str                   # a bench/device_profiles name, or auto
    name: str                      # label in progress bars and messages (default: host)
    dir: str = DEFAULT_DIR         # the board's wavebench folder (code/, venv/, results/, runs/)
    venv: str = ""                 # the board's virtual environment (default: <dir>/venv)
    settings: Mapping[str, str] = field(default_factory=dict)  # make bench variables
    env: Mapping[str, str] = field(default_factory=dict)       # extra environment for the run

    @property
    def venv_path(self) -> str:
        return self.venv or self.dir.rstrip("/") + "/venv"

    def run_id(self, commit: str, artifacts: str = "") -> str:
        """Names this board's run of this commit and these settings (and the edge-runtime artifacts
        shipped with it: their digest, when there are any); the same command gives the same id,
        which is how a re-run finds (re-attaches to, or resumes) its run."""
        key: dict[str, object] = {"commit": commit, "host": self.host, "profile": self.profile, "dir": self.dir,
                                  "settings": dict(sorted(self.settings.items())), "env": dict(sorted(self.env.items()))}
        if artifacts:
            key["artifacts"] = artifacts
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def valid_profiles() -> list[str]:
    return profile_names() + ["auto"]


def parse_hosts(text: str, settings: Mapping[str, str]) -> list[Board]:
    """``user@host:profile,...`` -> boards with the same settings."""
    boards = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        host, sep, profile = entry.rpartition(":")
        if not sep:
            raise ConfigError(f"HOSTS entry {entry!r} has no profile; write user@host:profile "
                              f"with profile one of {', '.join(valid_profiles())}")
        boards.append(make_board({"host": host, "profile": profile}, settings, f"HOSTS entry {entry!r}"))
    if not boards:
        raise ConfigError("HOSTS is empty; write HOSTS=user@host:profile,... or FLEET=fleet.toml")
    check_unique(boards)
    return boards


def load_fleet(path: str | Path, cli_settings: Mapping[str, str]) -> list[Board]:
    """The boards of a fleet.toml; ``cli_settings`` (given on the command line) win."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"FLEET={path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"FLEET={path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"FLEET={path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"settings", "board"}
    if unknown:
        raise ConfigError(f"FLEET={path}: unknown table {sorted(unknown)[0]!r}; valid: settings, board")
    base = check_settings(data.get("settings", {}), f"FLEET={path} [settings]")
    entries = data.get("board")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"FLEET={path}: no [[board]] entries; each needs host and profile")
    boards = []
    for i, entry in enumerate(entries, start=1):
        where = f"FLEET={path} board {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: not a table")
        own = check_settings(entry.get("settings", {}), f"{where} settings")
        boards.append(make_board(entry, {**base, **own, **cli_settings}, where))
    check_unique(boards)
    return boards


def make_board(entry: Mapping[str, Any], settings: Mapping[str, str], where: str) -> Board:
    unknown = set(entry) - set(BOARD_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; valid: {', '.join(BOARD_KEYS)}")
    host, profile = str(entry.get("host", "")), str(entry.get("profile", ""))
    if not host or not HOST_RE.match(host):
        raise ConfigError(f"{where}: host {host!r} is not [user@]host (letters, digits, . _ -; "
                          "a port, IPv6 address or jump host goes into ~/.ssh/config as an alias)")
    if profile not in valid_profiles():
        raise ConfigError(f"{where}: unknown profile {profile!r}; valid: {', '.join(valid_profiles())}")
    name = str(entry.get("name", "") or host.split("@")[-1])
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: name {name!r} must be letters, digits, . _ - (it names files)")
    folders = {}
    for key in ("dir", "venv"):
        value = str(entry.get(key, ""))
        if any(c in value for c in "\n\0'\"$`\\") or value.startswith("-"):
            raise ConfigError(f"{where}: {key} {value!r} must be a plain path (no quotes, $, backslash)")
        folders[key] = value
    env = entry.get("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{where}: env must be a table of NAME = \"value\"")
    for key in env:
        if not ENV_NAME_RE.match(str(key)):
            raise ConfigError(f"{where}: env name {key!r} is not a valid variable name")
    return Board(host=host, profile=profile, name=name, dir=folders["dir"] or DEFAULT_DIR,
                 venv=folders["venv"], settings=dict(settings),
                 env={str(k): str(v) for k, v in env.items()})


def check_settings(table: Any, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of NAME = value")
    out = {}
    for key, value in table.items():
        if key not in fleet_names():
            raise ConfigError(f"{where}: unknown setting {key!r}; valid: {', '.join(fleet_names())}")
        if isinstance(value, bool):
            value = "1" if value else ""
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out[key] = str(value)
    return out


def check_unique(boards: list[Board]) -> None:
    seen: dict[str, Board] = {}
    for board in boards:
        if board.name in seen:
            raise ConfigError(f"board {board.name!r} is listed twice; give each a distinct name "
                              "(fleet.toml: name = \"...\")")
        seen[board.name] = board
    places = [(b.host, b.dir) for b in boards]
    for place in set(places):
        if places.count(place) > 1:
            raise ConfigError(f"two boards use {place[0]}:{place[1]}; one folder holds one board's runs "
                              "(fleet.toml: dir = \"...\")")


def settings_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The make variables set now (empty ones are unset, as in make)."""
    return {k: environ[k] for k in fleet_names() if environ.get(k, "") != ""}
