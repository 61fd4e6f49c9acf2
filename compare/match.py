"""Group runs along one axis and match their cells into rows.

Axes (``--by``):

* ``device`` — one group per device (several runs of one device merge, the later run wins per
  cell); cells match on model, runtime, variant, batch size and duration.  Threads and
  execution provider are settings of a device (a Pi runs 4 threads, a Jetson the CUDA EP), so
  they are shown, not matched — unless a group has several of them for one cell, then cells
  pair by equal settings.
* ``run`` — one group per run folder, matched like ``device``.
* ``runtime`` — every runtime of a run side by side (pytorch, onnxruntime, openvino, executorch, litert)
  inside each run: the run is part of the row, the provider is a setting.  The base is the
  runtime the runs' speed-ups were against (``SPEEDUP_BASE``, recorded in each record; PyTorch
  in records written before it) when they agree, else the first.
* ``variant`` — fp32 vs fp16/int8 ... inside each run.

A :class:`Comparison` holds groups (the first is the base of every ratio), rows, and per row
one :class:`Entry` per group (``None`` when the cell is missing in that group), plus the
significance of each group against the base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runstore.records import RUNTIMES, CellRecord, cell_key, run_base
from runstore.verdict import quartiles

from .fingerprints import check_software, hardware_notes
from .load import Run
from .stats import Significance, compare_samples

AXES = ("device", "run", "runtime", "variant")

# fields that identify a row (besides the run, for within-run axes), and the "settings" that
# are shown and only used to pair cells when a group holds several for one row.
MATCH_FIELDS = {
    "device": ("model", "runtime", "variant", "batch_size", "duration_s"),
    "run": ("model", "runtime", "variant", "batch_size", "duration_s"),
    "runtime": ("model", "variant", "batch_size", "duration_s", "threads"),
    "variant": ("model", "runtime", "provider", "batch_size", "duration_s", "threads"),
}
SETTING_FIELDS = {
    "device": ("provider", "threads"),
    "run": ("provider", "threads"),
    "runtime": ("provider",),
    "variant": (),
}
VARIANT_ORDER = ("fp32", "fp16", "bf16", "int8")


def record_value(record: CellRecord, name: str) -> Any:
    """A record's field by name, for the fields an axis matches or groups on (:data:`MATCH_FIELDS`,
    :data:`SETTING_FIELDS`, ``--by``): the one place compare reads a record by field name; a name
    that is not a field of :class:`CellRecord` raises ``AttributeError``."""
    return getattr(record, name)


@dataclass
class Entry:
    """One group's cell in a row."""

    record: CellRecord
    run: Run

    @property
    def status(self) -> str:
        return str(self.record.status or "ok")

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median is not None

    @property
    def samples(self) -> list[float]:
        return [float(s) for s in self.record.latency_samples_s if s is not None]

    @property
    def median(self) -> float | None:
        s = self.samples
        if s:
            return quartiles(s)[1]
        return self.record.latency_median_s

    @property
    def quartiles(self) -> tuple[float | None, float | None, float | None]:
        s = self.samples
        if len(s) >= 2:
            return quartiles(s)
        return None, self.record.latency_median_s, None

    def value(self, name: str) -> Any:
        """The record's field ``name`` (see :func:`record_value`)."""
        return record_value(self.record, name)


@dataclass
class Row:
    key: tuple  # the match key, with the context (run label) first for within-run axes
    fields: dict[str, Any]  # model, runtime, ... for display
    entries: list[Entry | None]  # one per group
    settings: str  # the unmatched settings per group, for display
    ratios: list[Significance | None] = field(default_factory=list)  # per group; base: None

    @property
    def missing(self) -> list[int]:
        return [i for i, e in enumerate(self.entries) if e is None]


@dataclass
class Group:
    label: str
    runs: list[Run]

    @property
    def environment(self) -> dict[str, Any]:
        return self.runs[-1].environment if self.runs else {}


@dataclass
class Comparison:
    by: str
    groups: list[Group]
    rows: list[Row]
    context_label: str | None  # "run" for within-run axes
    warnings: list[str] = field(default_factory=list)

    @property
    def base(self) -> Group:
        return self.groups[0]

    def row_label(self, row: Row) -> str:
        return cell_label(row.fields)


def _fmt_num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def cell_label(fields: dict[str, Any]) -> str:
    parts = []
    if fields.get("context"):
        parts.append(str(fields["context"]))
    parts.append(str(fields.get("model")))
    for name in ("runtime", "provider", "variant"):
        if name in fields and fields[name] is not None:
            parts.append(str(fields[name]))
    parts.append(f"b{_fmt_num(fields.get('batch_size'))}")
    parts.append(f"{_fmt_num(fields.get('duration_s'))}s")
    if fields.get("threads") is not None:
        parts.append(f"t{fields['threads']}")
    return " ".join(parts)


def run_label(run: Run) -> str:
    return run.label or f"{run.device_label}/{run.run_id}"


def _device_labels(runs: list[Run]) -> dict[int, str]:
    """Group label per run for --by device: the label given, else the device name (with the
    hardware measured when a board profile ran elsewhere); when machines share a device name
    (two laptops ran DEVICE=cpu), the host is added."""
    hosts: dict[str, set] = {}
    for r in runs:
        hosts.setdefault(r.device_label, set()).add(r.host)
    out = {}
    for i, r in enumerate(runs):
        if r.label:
            out[i] = r.label
        elif len(hosts[r.device_label]) > 1:
            out[i] = f"{r.device_label}@{r.host}"
        else:
            out[i] = r.device_label
    return out


def _value_order(by: str, values: set) -> list:
    if by == "runtime":
        known = [v for v in RUNTIMES if v in values]
    elif by == "variant":
        known = [v for v in VARIANT_ORDER if v in values]
    else:
        known = []
    return known + sorted((v for v in values if v not in known), key=str)


def _sort_key(row: Row) -> tuple:
    f = row.fields
    return (str(f.get("context") or ""), str(f.get("model")), str(f.get("runtime") or ""),
            str(f.get("provider") or ""), str(f.get("variant") or ""),
            float(f.get("batch_size") or 0), float(f.get("duration_s") or 0),
            float(f.get("threads") or 0), row.settings)


def _settings_text(setting_fields: tuple, entries: list[Entry | None]) -> str:
    parts = []
    for name in setting_fields:
        vals = [None if e is None else e.value(name) for e in entries]
        present = [v for v in vals if v is not None]
        if not present:
            continue
        if len(set(map(str, present))) == 1:
            parts.append(f"{name}={present[0]}")
        else:
            parts.append(f"{name}=" + "|".join("—" if v is None else str(v) for v in vals))
    return ", ".join(parts)


def build_comparison(runs: list[Run], by: str = "device", *, base: str | None = None,
                     seed: int | None = None) -> Comparison:
    """Group ``runs`` along ``by``, match their cells into rows, test each ratio."""
    if by not in AXES:
        raise ValueError(f"--by {by!r}: expected one of {', '.join(AXES)}")
    runs = sorted(runs, key=lambda r: (r.order, r.started))
    # 1. (group label, context) -> {full cell key -> Entry}, later runs win
    group_labels: list[str] = []
    cells: dict[str, dict[tuple, Entry]] = {}
    warnings: list[str] = [w for r in runs for w in r.warnings]

    def add(label: str, key: tuple, entry: Entry) -> None:
        if label not in cells:
            cells[label] = {}
            group_labels.append(label)
        cells[label][key] = entry

    group_runs: dict[str, list[Run]] = {}
    if by in ("device", "run"):
        labels = _device_labels(runs) if by == "device" else {}
        run_labels = [labels[i] if by == "device" else run_label(r) for i, r in enumerate(runs)]
        for label, r in zip(run_labels, runs):  # groups in input order
            group_runs.setdefault(label, []).append(r)
            if label not in cells:
                cells[label] = {}
                group_labels.append(label)
        # several runs in one group: the later run wins per cell
        for label, r in sorted(zip(run_labels, runs), key=lambda lr: lr[1].started):
            for rec in r.cells.values():
                add(label, cell_label_key(rec, None), Entry(rec, r))
        context_label = None
    else:
        values = {record_value(rec, by) for r in runs for rec in r.cells.values()}
        for value in _value_order(by, values):
            cells[str(value)] = {}
            group_labels.append(str(value))
        for r in runs:
            ctx = run_label(r)
            for rec in r.cells.values():
                label = str(record_value(rec, by))
                group_runs.setdefault(label, [])
                if r not in group_runs[label]:
                    group_runs[label].append(r)
                add(label, cell_label_key(rec, ctx), Entry(rec, r))
        context_label = "run"
    if base is None and by == "runtime":
        base = recorded_base(runs, group_labels)
    if base is not None:
        if base not in group_labels:
            raise ValueError(f"--base {base!r}: no such group (groups: {', '.join(group_labels)})")
        group_labels.remove(base)
        group_labels.insert(0, base)
    groups = [Group(label, group_runs.get(label, [])) for label in group_labels]
    # one software stack per group (else MixedSoftware, a ValueError: exit 2); machines that
    # changed under one device name are said plainly
    warnings += check_software(by, [(label, [(e.run, e.record) for e in cells[label].values()])
                                    for label in group_labels])
    warnings += hardware_notes(runs)

    # 2. rows: match key -> per group the list of entries
    match_fields = MATCH_FIELDS[by]
    setting_fields = SETTING_FIELDS[by]
    by_match: dict[tuple, list[list[Entry]]] = {}
    for gi, label in enumerate(group_labels):
        for (ctx, _), entry in cells[label].items():
            mkey = (ctx,) + tuple(entry.value(f) for f in match_fields)
            by_match.setdefault(mkey, [[] for _ in group_labels])[gi].append(entry)

    rows: list[Row] = []
    for mkey, per_group in by_match.items():
        fields = dict(zip(match_fields, mkey[1:]))
        if mkey[0] is not None:
            fields = {"context": mkey[0], **fields}
        multi = [gi for gi, es in enumerate(per_group) if len(es) > 1]
        if not multi:
            combos = [[es[0] if es else None for es in per_group]]
        else:
            subkeys: list[tuple] = []
            for gi in multi:
                for e in per_group[gi]:
                    sk = tuple(e.value(f) for f in setting_fields)
                    if sk not in subkeys:
                        subkeys.append(sk)
            combos = []
            for sk in subkeys:
                combo: list[Entry | None] = []
                for gi, es in enumerate(per_group):
                    if len(es) == 1:
                        combo.append(es[0])
                    elif len(es) > 1:
                        combo.append(next((e for e in es if tuple(e.value(f) for f in setting_fields)
                                           == sk), None))
                    else:
                        combo.append(None)
                combos.append(combo)
        for combo in combos:
            rows.append(Row(mkey, fields, combo, _settings_text(setting_fields, combo)))
    rows.sort(key=_sort_key)

    # 3. ratios against the base group
    for row in rows:
        base_entry = row.entries[0]
        row.ratios = [None]
        for other in row.entries[1:]:
            if base_entry is None or other is None or not base_entry.ok or not other.ok:
                row.ratios.append(None)
                continue
            kwargs = {"seed": seed} if seed is not None else {}
            row.ratios.append(compare_samples(base_entry.samples, other.samples,
                                              base_median=base_entry.median,
                                              other_median=other.median, **kwargs))
    if len(groups) < 2:
        warnings.append(f"only one group ({groups[0].label if groups else 'none'}) along "
                        f"--by {by}: nothing to compare against; showing it alone")
    return Comparison(by, groups, rows, context_label, warnings)


def recorded_base(runs: list[Run], labels: list[str]) -> str | None:
    """The runtime the runs' own speed-ups were against (``SPEEDUP_BASE``, in their records;
    PyTorch in records written before it), when every run agrees and it is a group; else None."""
    found = {run_base(r.cells.values()) for r in runs}
    return found.pop() if len(found) == 1 and next(iter(found)) in labels else None


def cell_label_key(record: CellRecord, context: str | None) -> tuple:
    """(context, full cell key): the identity of a cell inside a group."""
    return (context, cell_key(record))
