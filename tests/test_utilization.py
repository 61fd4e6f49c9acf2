"""The GEMM peak benchmark: a positive rate, cached per host/device/dtype/runtime/threads."""

from __future__ import annotations

import json

import pytest

from runners.gemm_peak import (
    achieved_flops_per_s,
    cache_key,
    cpu_name,
    gemm_peak_entry,
    library_version,
    measure_gemm_peak,
    others_cpu_share,
    stale_because,
    usable_cores,
    utilization,
)


@pytest.mark.parametrize("runtime", ["pytorch", "onnxruntime"])
def test_peak_is_measured_and_cached(tmp_path, runtime):
    cache = tmp_path / "gemm_peak.json"
    peak = measure_gemm_peak(1, "float32", runtime, cache_path=cache, seconds=0.2, sizes=(128, 256))
    assert peak > 1e8  # any CPU of this decade does > 0.1 GFLOP/s
    entry = json.loads(cache.read_text())[cache_key(1, "float32", runtime)]
    assert entry["flops_per_s"] == peak and entry["threads"] == 1 and entry["runtime"] == runtime
    assert entry["measured_at"] and entry["library"] == library_version(runtime)
    assert isinstance(entry["under_load"], bool) and len(entry["load_average"]) == 3
    # second call: from the cache when it was measured on a quiet machine (a fake value proves it)
    data = json.loads(cache.read_text())
    data[cache_key(1, "float32", runtime)].update(flops_per_s=123.0, under_load=False)
    cache.write_text(json.dumps(data))
    assert measure_gemm_peak(1, "float32", runtime, cache_path=cache) == 123.0


def test_corrupt_cache_is_remeasured(tmp_path):
    cache = tmp_path / "gemm_peak.json"
    cache.write_text("{not json")
    assert measure_gemm_peak(1, cache_path=cache, seconds=0.1, sizes=(64,)) > 0
    assert cache_key(1, "float32", "pytorch") in json.loads(cache.read_text())


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown runtime"):
        measure_gemm_peak(1, runtime="tflite", cache_path=None)
    with pytest.raises(ValueError, match="threads"):
        measure_gemm_peak(0, cache_path=None)


def test_utilization():
    assert utilization(25e9, 100e9) == pytest.approx(0.25)
    assert utilization(None, 100e9) is None and utilization(1e9, None) is None and utilization(1e9, 0) is None
    assert achieved_flops_per_s(2_000_000, 0.5) == 4_000_000
    assert achieved_flops_per_s(None, 0.5) is None and achieved_flops_per_s(10, 0) is None


def cached(**changes):
    entry = {"flops_per_s": 123.0, "device_name": cpu_name(), "usable_cores": usable_cores(),
             "library": library_version("pytorch"), "under_load": False, "measured_at": "2026-11-30T08:00:00+0000"}
    return {**entry, **changes}


@pytest.mark.parametrize("changes,because", [
    ({"under_load": True}, "it was measured under load"),
    ({"device_name": "Another CPU"}, "the CPU changed (Another CPU -> "),
    ({"usable_cores": 999}, "the usable cores changed (999 -> "),
    ({"library": "torch 0.1"}, "the library changed (torch 0.1 -> torch "),
])
def test_a_peak_from_a_busy_or_different_machine_is_measured_again(tmp_path, changes, because):
    cache = tmp_path / "gemm_peak.json"
    cache.write_text(json.dumps({cache_key(1, "float32", "pytorch"): cached(**changes)}))
    entry = gemm_peak_entry(1, cache_path=cache, seconds=0.1, sizes=(64,))
    assert entry["cached"] is False and entry["remeasured_because"].startswith(because)
    assert entry["flops_per_s"] != 123.0 and entry["measured_at"] != "2026-11-30T08:00:00+0000"
    assert json.loads(cache.read_text())[cache_key(1, "float32", "pytorch")]["flops_per_s"] == entry["flops_per_s"]


def test_a_quiet_peak_of_this_machine_is_reused_with_its_record(tmp_path):
    cache = tmp_path / "gemm_peak.json"
    cache.write_text(json.dumps({cache_key(1, "float32", "pytorch"): cached()}))
    entry = gemm_peak_entry(1, cache_path=cache)
    assert entry["cached"] is True and entry["flops_per_s"] == 123.0
    assert entry["measured_at"] == "2026-11-30T08:00:00+0000"
    assert stale_because(cached(), cpu_name(), usable_cores(), library_version("pytorch")) is None
    assert stale_because({"flops_per_s": 1.0}, "x", 1, "y") == "it has no load record"  # an old cache file


def test_others_cpu_share_takes_out_this_process(monkeypatch):
    import os

    monkeypatch.setattr(os, "sysconf", lambda name: 100)
    # 1000 jiffies passed; 600 busy, of which 1 s (100 jiffies) was this process
    assert others_cpu_share((0, 0), (600, 1000), own_cpu_s=1.0) == pytest.approx(0.5)
    assert others_cpu_share((0, 0), (100, 1000), own_cpu_s=1.0) == 0.0
    assert others_cpu_share(None, (1, 2), 0.0) is None and others_cpu_share((5, 5), (5, 5), 0.0) is None
