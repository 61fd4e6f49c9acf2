"""Variants (fp16, int8, ORT optimisation levels) and models users bring (python:, onnx:, s3prl:, hf:)."""

from dataclasses import replace

import onnx
import pytest
import torch

from bench.profiles import load_profile
from bench.settings import SettingsError, build_settings
from bench.suite import run_suite
from export.onnx_export import export_model
from export.variants import VariantError, onnx_variant, parse_variant, torch_variant, variant_name
from models.registry import get_spec
from runstore.folder import read_cells

FAST = dict(min_time_s=0.02, max_time_s=0.3)


def settings(tmp_path, **kw):
    args = dict(models="tera", runtimes=None, batch_sizes="1", durations="0.5", reps=3, threads="1",
                providers=None, energy="none", tiny=True, results_dir=str(tmp_path / "results"), **FAST)
    args.update(kw)
    return replace(build_settings(load_profile("cpu"), **args), measure_peak=False)


def test_parse_variant():
    assert parse_variant("fp16") == ("fp16", "all")
    assert parse_variant("int8+opt=basic") == ("int8", "basic")
    assert variant_name("fp32", "disable") == "fp32+opt=disable" and variant_name("fp32") == "fp32"
    with pytest.raises(VariantError, match="unknown variant 'bf16'; valid: fp32, fp16, int8"):
        parse_variant("bf16")
    with pytest.raises(VariantError, match="malformed variant"):
        parse_variant("fp32+opt=max")


def test_plan_crosses_variants_with_ort_levels_for_onnxruntime_only(tmp_path):
    s = settings(tmp_path, variants="fp32,int8", ort_opts="basic,all")
    by_runtime = {}
    for c in s.plan():
        by_runtime.setdefault(c.runtime, []).append(c.variant)
    assert by_runtime["pytorch"] == ["fp32", "int8"]
    assert by_runtime["onnxruntime"] == ["fp32+opt=basic", "fp32", "int8+opt=basic", "int8"]
    with pytest.raises(SettingsError, match="unknown variant 'fp8'"):
        settings(tmp_path, variants="fp8")
    with pytest.raises(SettingsError, match="unknown ONNX Runtime optimisation level 'max'"):
        settings(tmp_path, ort_opts="max")


def test_onnx_variants_are_converted_once(tmp_path):
    entry = export_model("tera", tmp_path, tiny=True)
    fp16 = onnx_variant(entry["path"], "fp16")
    int8 = onnx_variant(entry["path"], "int8")
    g16 = onnx.load(str(fp16)).graph
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in g16.initializer)
    assert g16.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    ops8 = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "DynamicQuantizeLinear" in ops8 and ({"MatMulInteger", "DynamicQuantizeMatMul"} & ops8)
    mtime = fp16.stat().st_mtime_ns
    assert onnx_variant(entry["path"], "fp16") == fp16 and fp16.stat().st_mtime_ns == mtime


def test_torch_variants():
    model = get_spec("tera").build(tiny=True)
    q, dtype = torch_variant(model, "int8", "cpu")
    assert dtype == torch.float32
    assert any("quantized" in type(m).__module__ for m in q.modules())
    with pytest.raises(VariantError, match="CPU only"):
        torch_variant(get_spec("tera").build(tiny=True), "int8", "cuda")
    half, dtype = torch_variant(get_spec("tera").build(tiny=True), "fp16", "cpu")
    assert dtype == torch.float16 and next(half.parameters()).dtype == torch.float16


def test_variant_cells_record_speed_and_distance_from_fp32_pytorch(tmp_path):
    s = settings(tmp_path, variants="fp32,fp16,int8", ort_opts="disable,all")
    outcome = run_suite(s, progress=False, log=lambda m: None, environment={})
    cells = {(c["runtime"], c["variant"]): c for c in read_cells(outcome.run_dir)}
    assert set(cells) == {("pytorch", "fp32"), ("pytorch", "fp16"), ("pytorch", "int8"),
                          ("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("onnxruntime", "int8"),
                          ("onnxruntime", "fp32+opt=disable"), ("onnxruntime", "fp16+opt=disable"),
                          ("onnxruntime", "int8+opt=disable")}
    assert all(c["status"] == "ok" for c in cells.values()), [c["error"] for c in cells.values()]
    assert cells[("pytorch", "fp32")]["output_max_abs_err"] == 0.0
    fp32_err = cells[("onnxruntime", "fp32")]["output_max_abs_err"]
    assert fp32_err < 1e-4
    for key in (("onnxruntime", "int8"), ("pytorch", "int8"), ("onnxruntime", "fp16"), ("pytorch", "fp16")):
        assert cells[key]["output_max_abs_err"] > fp32_err  # reduced precision shows
        assert 0.99 < cells[key]["output_cosine"] <= 1.0
    # the same MACs whatever the variant
    assert len({c["macs"] for c in cells.values()}) == 1
    table = (outcome.run_dir / "table.txt").read_text()
    assert "speed-up vs fp32 PyTorch" in table and "int8+opt=disable" in table


FACTORY = '''
import torch

class Frames(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(320, 4)

    def forward(self, wav):
        n = wav.shape[1] // 320
        return self.proj(wav[:, : n * 320].reshape(wav.shape[0], n, 320))

def good():
    return Frames()

def not_a_module():
    return "frames"

def wrong_input():
    return torch.nn.Linear(3, 3)
'''


def test_python_factory_models(tmp_path):
    f = tmp_path / "user_model.py"
    f.write_text(FACTORY)
    s = settings(tmp_path, models=f"python:{f}:good")
    outcome = run_suite(s, progress=False, log=lambda m: None, environment={})
    cells = read_cells(outcome.run_dir)
    assert {c["runtime"] for c in cells} == {"pytorch", "onnxruntime"}
    assert all(c["status"] == "ok" and c["params_unique"] == 320 * 4 + 4 for c in cells)
    with pytest.raises(SettingsError, match="not_a_module\\(\\) returned str, expected a torch.nn.Module"):
        settings(tmp_path, models=f"python:{f}:not_a_module")
    with pytest.raises(SettingsError, match="does not take a \\(batch, samples\\) waveform batch"):
        settings(tmp_path, models=f"python:{f}:wrong_input")
    with pytest.raises(SettingsError, match="has no callable 'missing'"):
        settings(tmp_path, models=f"python:{f}:missing")
    with pytest.raises(SettingsError, match="malformed model spec 'python:x.py'"):
        settings(tmp_path, models="python:x.py")
    with pytest.raises(SettingsError, match="file nope.py not found"):
        settings(tmp_path, models="python:nope.py:good")


def test_onnx_file_models(tmp_path):
    entry = export_model("logmel", tmp_path / "onnx", tiny=True)
    s = settings(tmp_path, models=f"onnx:{entry['path']}")
    outcome = run_suite(s, progress=False, log=lambda m: None, environment={})
    cells = {c["runtime"]: c for c in read_cells(outcome.run_dir)}
    assert cells["onnxruntime"]["status"] == "ok"
    assert cells["onnxruntime"]["params_unique"] == entry["onnx_initializers"]
    assert cells["pytorch"]["status"] == "unsupported" and "no PyTorch model" in cells["pytorch"]["error"]
    # wrong input rank: refused before anything runs
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["b", "t", "c"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", "t", "c"])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    bad = tmp_path / "rank3.onnx"
    onnx.save(onnx.helper.make_model(graph), str(bad))
    with pytest.raises(SettingsError, match="has rank 3; expected rank 2 \\(batch, samples\\)"):
        settings(tmp_path, models=f"onnx:{bad}")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(SettingsError, match="is not a readable ONNX file"):
        settings(tmp_path, models=f"onnx:{tmp_path / 'junk.onnx'}")


def test_hf_directory_models(tmp_path):
    from transformers import Wav2Vec2Config

    from models.hf_models import TINY

    Wav2Vec2Config(**TINY).save_pretrained(tmp_path / "w2v")
    spec = get_spec(f"hf:{tmp_path / 'w2v'}")
    assert (spec.min_samples, spec.hop_samples) == (400, 320)
    s = settings(tmp_path, models=f"hf:{tmp_path / 'w2v'}", durations="0.5")
    outcome = run_suite(s, progress=False, log=lambda m: None, environment={})
    cells = read_cells(outcome.run_dir)
    assert all(c["status"] == "ok" for c in cells), [c["error"] for c in cells]
    assert all(c["extra"]["output_shape"][1] == spec.frames(8000) for c in cells)
    with pytest.raises(SettingsError, match="no config.json"):
        settings(tmp_path, models=f"hf:{tmp_path}")


def test_s3prl_checkpoint_models(tmp_path):
    torch.manual_seed(123)
    source = get_spec("tera").builder(True).eval()
    cfg = source.transformer.config
    ckpt = tmp_path / "tera.ckpt"
    torch.save({"Transformer": source.transformer.state_dict(),
                "Config": {"transformer": {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
                                           "num_attention_heads": cfg.num_attention_heads,
                                           "share_layer": cfg.share_layer, "pre_layer_norm": False}}}, ckpt)
    spec = get_spec(f"s3prl:tera:{ckpt}")
    model = spec.build(tiny=True)
    wav = torch.randn(1, 4000)
    with torch.inference_mode():
        assert torch.equal(model(wav)[-1], source(wav)[-1])
    with pytest.raises(SettingsError, match="unknown s3prl upstream 'tera2'; valid: apc, tera"):
        settings(tmp_path, models=f"s3prl:tera2:{ckpt}")
    with pytest.raises(SettingsError, match="checkpoint .*missing.ckpt not found"):
        settings(tmp_path, models=f"s3prl:tera:{tmp_path / 'missing.ckpt'}")


def test_bench_with_local_weights_labels_cells_and_exports_the_loaded_model(tmp_path):
    torch.manual_seed(321)
    source = get_spec("tera").builder(True).eval()
    ckpt = tmp_path / "tera-states.ckpt"
    torch.save({"Transformer": source.transformer.state_dict()}, ckpt)
    s = settings(tmp_path, weights=f"tera={ckpt}")
    outcome = run_suite(s, progress=False, log=lambda m: None, environment={})
    cells = read_cells(outcome.run_dir)
    assert {c["runtime"] for c in cells} == {"pytorch", "onnxruntime"}
    for c in cells:
        assert c["status"] == "ok" and c["weights"].startswith("tera-states.ckpt@")
    ort = next(c for c in cells if c["runtime"] == "onnxruntime")
    assert ort["output_max_abs_err"] < 1e-4  # the ONNX file holds the loaded weights, not random ones
    with pytest.raises(SettingsError, match="weights .*nope.ckpt not found; use WEIGHTS=/path/to/checkpoint or WEIGHTS=random"):
        settings(tmp_path, weights=str(tmp_path / "nope.ckpt"))
