"""The GEMM peak benchmark: a positive rate, cached per host/device/dtype/runtime/threads."""

from __future__ import annotations

import json

import pytest

from runners.gemm_peak import achieved_flops_per_s, cache_key, measure_gemm_peak, utilization


@pytest.mark.parametrize("runtime", ["pytorch", "onnxruntime"])
def test_peak_is_measured_and_cached(tmp_path, runtime):
    cache = tmp_path / "gemm_peak.json"
    peak = measure_gemm_peak(1, "float32", runtime, cache_path=cache, seconds=0.2, sizes=(128, 256))
    assert peak > 1e8  # any CPU of this decade does > 0.1 GFLOP/s
    entry = json.loads(cache.read_text())[cache_key(1, "float32", runtime)]
    assert entry["flops_per_s"] == peak and entry["threads"] == 1 and entry["runtime"] == runtime
    # second call: from the cache, no measurement (a fake value proves it)
    data = json.loads(cache.read_text())
    data[cache_key(1, "float32", runtime)]["flops_per_s"] = 123.0
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
