"""The run record: what ``run.json`` holds, typed.

``make bench`` builds a :class:`RunRecord` and the run store writes it (``RunFolder.write_run``);
every reader gets it back through :func:`runstore.folder.read_run`, whichever wavebench version
wrote the file.  The file format does not change with the type: ``to_dict`` gives exactly the keys
(and their order) of the file a record was read from, so reading and writing a run.json again is
byte-for-byte the same.

Reading is tolerant, like :meth:`runstore.records.CellRecord.from_dict`:

- a field the file lacks (an older writer) is ``None``, and is not written back unless it is
  given a value;
- a key this version does not know goes to ``extra`` and is written back as it was;
- a value of the wrong kind (a hand-edited file: ``"status": 3``) is kept as it was in ``extra``
  under its own key, and the field reads ``None``.

A new run.json key is one line: a field of :class:`RunRecord` (or of :class:`RunSession` for a
per-session key), declared where it should appear in a new file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

Section = TypeVar("Section", bound="RunSection")


@dataclass
class RunSection:
    """What :class:`RunRecord` and :class:`RunSession` share: tolerant reading and a writer that
    keeps the file's keys.  Subclasses declare their fields."""

    # fields written even when None in a record built by this version (null says "none", on purpose)
    WRITTEN_NULL: ClassVar[tuple[str, ...]] = ()
    # fields that hold a list of sections, by their section type
    SECTION_LISTS: ClassVar[dict[str, type["RunSection"]]] = {}

    # keys of the file this version does not know (and values of the wrong kind, under their key)
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)
    # the file's keys in its order; None for a record built by this version
    read_keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record: the fields that hold a value, the keys of the file it
        was read from (null included) in the file's order, then ``extra``'s unknown keys."""
        extra, read_keys = self.extra, self.read_keys
        own = _own_fields(type(self))
        out: dict[str, Any] = dict.fromkeys(read_keys or ())  # the file's keys, in its order
        for f in own:
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = [s.to_dict() for s in value] if f.name in self.SECTION_LISTS else value
            elif f.name in extra:  # a value of the wrong kind, kept as it was read
                out[f.name] = extra[f.name]
            elif read_keys is None and f.name in self.WRITTEN_NULL:
                out[f.name] = None
        names = {f.name for f in own}
        out.update((k, v) for k, v in extra.items() if k not in names)
        return out

    @classmethod
    def from_dict(cls: type[Section], data: dict[str, Any]) -> Section:
        """A record as stored, from any wavebench version (see the module docstring)."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, found {type(data).__name__}")
        kinds = {f.name: _kind(str(f.type)) for f in _own_fields(cls)}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            kind = kinds.get(key)
            section = cls.SECTION_LISTS.get(key)
            if kind is None:
                extra[key] = value
            elif value is None:
                continue
            elif section is not None and isinstance(value, list) and all(isinstance(v, dict) for v in value):
                kwargs[key] = [section.from_dict(v) for v in value]
            elif section is None and _is_kind(value, kind):
                kwargs[key] = value
            else:
                extra[key] = value
        return cls(**kwargs, extra=extra, read_keys=tuple(data))


@dataclass
class RunSession(RunSection):
    """One start or resume of a run: when, on what (its fingerprint and environment), how it ended,
    and the GEMM rates it measured with (a measurement, so not part of the fingerprint's hash)."""

    started: str | None = None
    status: str | None = None
    fingerprint: str | None = None
    command: str | None = None
    environment: dict[str, Any] | None = None
    finished: str | None = None
    gemm_flops_per_s: dict[str, float] | None = None  # attainable rate per "runtime|threads"
    gemm_reason: str | None = None  # why there is none
    wall_time: dict[str, Any] | None = None  # predicted and actual seconds, per phase (bench/estimate.py)


@dataclass
class RunRecord(RunSection):
    """``run.json``: the run's identity, settings, environment, status and sessions.  Fields are
    in the order a new file has them."""

    WRITTEN_NULL: ClassVar[tuple[str, ...]] = ("profile_note", "hardware_note")
    SECTION_LISTS: ClassVar[dict[str, type[RunSection]]] = {"sessions": RunSession}

    schema_version: int | None = None
    wavebench_version: str | None = None
    run_id: str | None = None
    device: str | None = None
    device_name: str | None = None
    host: str | None = None
    settings: dict[str, Any] | None = None  # bench.settings.Settings.to_dict()
    settings_hash: str | None = None
    profile_note: str | None = None  # which profile ``auto`` chose, and why
    hardware_note: str | None = None  # a board profile measured on other hardware (a rehearsal)
    environment: dict[str, Any] | None = None  # the first session's (host.environment)
    status: str | None = None  # running, complete, interrupted
    started: str | None = None
    command: str | None = None  # what the user typed (make bench ... or python -m runners ...)
    throttle: dict[str, Any] | None = None  # "before" and "after" snapshots
    fingerprint: str | None = None  # the hash of this run's host, software and hardware
    fingerprints: dict[str, Any] | None = None  # fingerprint -> the identity it hashes
    sessions: list[RunSession] | None = None
    models: dict[str, Any] | None = None  # the export manifest entry of each model
    finished: str | None = None
    counts: dict[str, int] | None = None  # cells per status
    predicted_wall_s: float | None = None  # the latest session's, predicted before it measured
    actual_wall_s: float | None = None  # and what it took


RUN_FIELDS = frozenset(f.name for f in fields(RunRecord)) - {"extra", "read_keys"}


def _own_fields(cls: type) -> list[Any]:
    """The declared fields of a section, without ``extra`` and ``read_keys``."""
    return [f for f in fields(cls) if f.name not in ("extra", "read_keys")]


def _kind(annotation: str) -> type:
    for name, kind in (("int", int), ("str", str), ("dict", dict), ("list", list), ("float", float)):
        if annotation.startswith(name):
            return kind
    raise TypeError(f"run record field of unknown kind: {annotation}")


def _is_kind(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)
