"""Every reader sees a stored cell through ``CellRecord.from_dict``: records written by an older
version, hand-edited files and foreign keys must come back typed, and a JSON object that is not a
cell must count as damage, not crash a report."""

import json
import math
import warnings

import pytest

from runstore.folder import read_cells, read_records, scan_cells
from runstore.records import CellRecord


def stored(**changes):
    record = CellRecord(run_id="r1", timestamp="2026-11-29T07:39:42+0000", host="vm", device="cpu",
                        device_name="AMD EPYC", model="tera", runtime="onnxruntime",
                        provider="CPUExecutionProvider", variant="fp32", weights="random", batch_size=4,
                        duration_s=1.0, threads=2, latency_median_s=0.02, latency_samples_s=[0.02, 0.021]).to_dict()
    record.update(changes)
    return record


def test_record_of_an_older_version_gets_the_new_fields_empty():
    old = stored()
    for name in ("order", "round_medians_s", "canary_before_s", "drift", "speedup_paired", "fingerprint"):
        del old[name]
    cell = CellRecord.from_dict(old)
    assert cell.order is None and cell.drift is None and cell.speedup_paired is None
    assert cell.round_medians_s == [] and cell.fingerprint is None
    assert cell.latency_median_s == 0.02 and cell.latency_samples_s == [0.02, 0.021]


def test_values_are_typed_and_unknown_fields_kept_in_extra():
    cell = CellRecord.from_dict(stored(latency_mean_s=float("nan"), macs="12", batch_size=4.0, duration_s=1,
                                       drift="yes", speedup_paired=float("inf"), future_field={"a": 1},
                                       extra={"output_shape": [4, 49, 768]}))
    assert cell.latency_mean_s is None  # NaN: not measured, like every missing value
    assert cell.macs is None  # a string is not a count
    assert cell.batch_size == 4 and isinstance(cell.batch_size, int)
    assert cell.duration_s == 1.0 and isinstance(cell.duration_s, float)
    assert cell.drift is None and cell.speedup_paired is None
    assert cell.extra == {"output_shape": [4, 49, 768], "future_field": {"a": 1}}
    assert cell.threads == 2


def test_a_record_without_its_cell_is_not_a_cell_but_metadata_may_be_missing():
    with pytest.raises(ValueError, match="missing model"):
        CellRecord.from_dict({k: v for k, v in stored().items() if k != "model"})
    with pytest.raises(ValueError, match="missing runtime, duration_s"):
        CellRecord.from_dict({k: v for k, v in stored().items() if k not in ("runtime", "duration_s")})
    bare = CellRecord.from_dict({"model": "tera", "runtime": "pytorch", "batch_size": 1, "duration_s": 1,
                                 "status": "ok", "latency_median_s": 0.01})
    assert (bare.run_id, bare.host, bare.device, bare.threads, bare.provider) == (None, None, None, None, None)
    assert bare.latency_median_s == 0.01 and bare.duration_s == 1.0


def test_the_run_store_reads_typed_records_and_counts_non_cells_as_damage(tmp_path):
    lines = [json.dumps(stored()), json.dumps({"model": "tera", "note": "not a cell"}),
             json.dumps(stored(batch_size=1, latency_median_s=float("nan"))), json.dumps(stored(batch_size=8))[:40]]
    (tmp_path / "cells.jsonl").write_text("\n".join(lines) + "\n")
    scan = scan_cells(tmp_path)
    assert [c.batch_size for c in scan.cells] == [4, 1]
    assert [n for n, _ in scan.damaged] == [2] and scan.torn_last_line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_records(tmp_path)
    assert [str(w.message).endswith("cells.jsonl:2: unreadable record skipped") for w in caught] == [True]
    assert records[1].latency_median_s is None and not math.isnan(records[0].latency_median_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = read_cells(tmp_path)
    assert plain[0] == records[0].to_dict() and set(plain[1]) == set(CellRecord.__dataclass_fields__)
