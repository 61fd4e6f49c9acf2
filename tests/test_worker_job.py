"""The worker job crosses the process boundary as JSON: it must come back equal, and a parent that
sends a wrong or incomplete job must be told which key, not see a crashed cell."""

import json
from dataclasses import fields, replace

import pytest

from bench.job import CellShape, WorkerJob
from bench.plan import RuntimeConfig
from bench.profiles import load_profile
from bench.settings import build_settings
from bench.suite import make_job
from energy import FIELDS as ENERGY_FIELDS
from runners.harness import TimingPolicy
from runstore.folder import RunFolder
from runstore.records import CellRecord
from worker.process import add_energy


def a_job(**changes) -> WorkerJob:
    job = WorkerJob(model="logmel", runtime="onnxruntime", provider="CPUExecutionProvider", variant="int8",
                    threads=2, run_id="r1", device="cpu", device_name="AMD EPYC", host="vm",
                    cells=[CellShape(1, 1.0), CellShape(4, 2.5)], onnx_path="onnx/logmel.int8.onnx",
                    gemm_peak={"flops_per_s": 2.1e11, "library": "MLAS"}, policy=TimingPolicy(min_reps=12, speedup_ci=0.2))
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def test_job_survives_the_json_line_to_the_worker():
    job = a_job(fake_timing={"call_s": {"onnxruntime": 0.002}, "canary_s": 0.003})
    back = WorkerJob.from_dict(json.loads(json.dumps(job.to_dict())))
    assert back == job
    assert back.cells == [CellShape(1, 1.0), CellShape(4, 2.5)]
    assert back.name == "logmel-onnxruntime-CPUExecutionProvider-int8-t2"


def test_unknown_key_is_refused_by_name():
    data = a_job().to_dict()
    data["onnx_pth"] = "typo.onnx"
    with pytest.raises(ValueError, match=r"unknown worker job field\(s\): onnx_pth; valid: .*onnx_path"):
        WorkerJob.from_dict(data)


def test_missing_key_is_refused_by_name():
    data = a_job().to_dict()
    del data["run_id"]
    with pytest.raises(ValueError, match="incomplete worker job: .*run_id"):
        WorkerJob.from_dict(data)
    no_cells = a_job().to_dict()
    del no_cells["cells"]
    with pytest.raises(ValueError, match="incomplete worker job: .*cells"):
        WorkerJob.from_dict(no_cells)


def test_suite_builds_the_job_from_settings_and_the_export_manifest(tmp_path):
    settings = build_settings(load_profile("cpu"), models="logmel", runtimes="pytorch,onnxruntime",
                              batch_sizes="1,4", durations="1", reps=None, threads="2", providers=None,
                              energy="none", results_dir=str(tmp_path / "results"), onnx_dir=str(tmp_path / "onnx"),
                              variants="fp32,int8")
    folder = RunFolder(tmp_path / "results" / "cpu" / "r1")
    manifest = {"weights": "random", "variant_files": {"fp32": "onnx/logmel.onnx", "int8": "onnx/logmel.int8.onnx"}}
    config = RuntimeConfig("logmel", "onnxruntime", "CPUExecutionProvider", "int8", 2)
    shapes = [CellShape(1, 1.0), CellShape(4, 1.0)]
    job = make_job(settings, folder, "vm", "AMD EPYC", config, shapes, manifest)
    assert (job.model, job.runtime, job.variant, job.threads) == ("logmel", "onnxruntime", "int8", 2)
    assert job.onnx_path == "onnx/logmel.int8.onnx"  # the variant's graph is what this worker loads
    assert job.flops_onnx_path == "onnx/logmel.onnx"  # MACs are counted on the fp32 graph
    assert job.cells == [CellShape(1, 1.0), CellShape(4, 1.0)]
    assert job.run_id == folder.run_id and job.energy == "none"
    trt = make_job(settings, folder, "vm", "AMD EPYC", replace(config, provider="TensorrtExecutionProvider"),
                   shapes, manifest)
    assert trt.onnx_path == "onnx/logmel.onnx"  # TensorRT builds its own engine from the fp32 graph
    assert WorkerJob.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_energy_fields_are_declared_record_fields_and_the_rest_goes_to_extra():
    assert set(ENERGY_FIELDS) <= {f.name for f in fields(CellRecord)}
    rec = a_job().base_record(CellShape(1, 1.0))
    measured = {name: None for name in ENERGY_FIELDS}
    measured.update(energy_j=0.5, energy_source="rapl", energy_domains={"package-0": {"calls": 3}})
    add_energy(rec, measured)
    assert (rec.energy_j, rec.energy_source, rec.energy_reason) == (0.5, "rapl", None)
    assert rec.extra == {"energy_domains": {"package-0": {"calls": 3}}}


def test_the_worker_parses_a_command_cell_once_into_a_shape():
    assert CellShape.from_dict({"batch_size": "2", "duration_s": 4}) == CellShape(2, 4.0)
    assert a_job().base_record(CellShape(2, 4.0)).duration_s == 4.0
