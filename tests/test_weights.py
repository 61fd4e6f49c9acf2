"""Checkpoint loaders: every s3prl format written from a second, differently-seeded tiny model,
loaded into the registry's model, gives exactly that model's outputs; unsafe pickles never run."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error

import pytest
import torch

from models import weights as W
from models.build import build_weighted
from models.build import main as build_cli
from models.registry import get_spec

WAV = torch.randn(2, 4000, generator=torch.Generator().manual_seed(7)) * 0.1


def _pair(name: str):
    """(model to load into: seed 0, source model: seed 123), same tiny config."""
    spec = get_spec(name)
    target = spec.build(tiny=True)
    torch.manual_seed(123)
    source = spec.builder(True).eval()
    return target, source


def _outputs(model):
    with torch.inference_mode():
        return [o.clone() for o in model(WAV)]


def _assert_same(target, source):
    """Loaded outputs equal the source model's exactly, and differ from a fresh seed-0 model's."""
    got, want = _outputs(target), _outputs(source)
    fresh = _outputs(_fresh[id(target)])
    assert len(got) == len(want)
    assert any(not torch.equal(a, b) for a, b in zip(fresh, want)), "the two seeds gave the same weights"
    for a, b in zip(got, want):
        assert torch.equal(a, b)


_fresh: dict[int, torch.nn.Module] = {}


def _remember(name, target):
    _fresh[id(target)] = get_spec(name).build(tiny=True)


class Evil:
    """Pickles as a call to os.system: must never run when a checkpoint is read."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["tera", "mockingjay", "audio-albert"])
def test_s3prl_transformer_checkpoint(tmp_path, name):
    target, source = _pair(name)
    _remember(name, target)
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in source.transformer.state_dict().items()}  # legacy names, as s3prl renames them
    cfg = source.transformer.config
    marker = tmp_path / "pwned"
    ckpt = {
        "Transformer": state,
        "SpecHead": {"dense.weight": torch.randn(32, 32), "output.weight": torch.randn(80, 32)},
        "Optimizer": {"state": {}, "param_groups": [{"lr": 2e-4}]},
        "Global_step": 1000,
        "Settings": argparse.Namespace(config="upstream.yaml", seed=1337),  # needs more than weights_only
        "Evil": Evil(marker),
        "Config": {"transformer": {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
                                   "num_attention_heads": cfg.num_attention_heads,
                                   "share_layer": cfg.share_layer, "pre_layer_norm": False},
                   "task": {"sequence_length": 1500}},
    }
    path = tmp_path / "states-1000000.ckpt"
    torch.save(ckpt, path)
    label = W.load_weights(name, target, str(path))
    assert label.startswith("states-1000000.ckpt@")
    assert not marker.exists(), "reading the checkpoint ran pickled code"
    _assert_same(target, source)


def test_apc_checkpoint(tmp_path):
    target, source = _pair("apc")
    _remember("apc", target)
    ckpt = {"model": source.apc.state_dict(),
            "config": {"model": {"paras": {"num_layers": 3, "hidden_size": 16, "dropout": 0.1, "residual": True}},
                       "data": {"audio": {"feat_type": "fbank", "feat_dim": 80}}}}
    torch.save(ckpt, tmp_path / "apc_360hr.ckpt")
    W.load_weights("apc", target, str(tmp_path / "apc_360hr.ckpt"))
    _assert_same(target, source)


def _fairseq_cfg(model):
    cfg = model.model.config
    return {"encoder_layers": cfg.num_hidden_layers, "encoder_embed_dim": cfg.hidden_size,
            "encoder_attention_heads": cfg.num_attention_heads, "layer_norm_first": False}


@pytest.mark.parametrize("name,extra", [("wav2vec2-base", {"quantizer.vars": torch.randn(1, 8, 4),
                                                           "project_q.weight": torch.randn(8, 16),
                                                           "final_proj.weight": torch.randn(8, 32)}),
                                        ("hubert-base", {"label_embs_concat": torch.randn(504, 8),
                                                         "final_proj.weight": torch.randn(8, 32)})])
def test_s3prl_converted_fairseq_checkpoint(tmp_path, name, extra):
    target, source = _pair(name)
    _remember(name, target)
    state = W.transformers_to_fairseq(source.model.state_dict())
    assert "feature_extractor.conv_layers.0.0.weight" in state and "encoder.pos_conv.0.weight_g" in state
    ckpt = {"task_cfg": {"sample_rate": 16000, "normalize": False}, "model_cfg": _fairseq_cfg(source),
            "model_weight": {**state, **extra}}
    torch.save(ckpt, tmp_path / "converted.pt")
    W.load_weights(name, target, str(tmp_path / "converted.pt"))
    _assert_same(target, source)


def test_raw_fairseq_checkpoint_with_pickled_config(tmp_path):
    """fairseq's own files pickle an omegaconf config: read as placeholders, weights loaded."""
    target, source = _pair("hubert-base")
    _remember("hubert-base", target)
    marker = tmp_path / "pwned"
    ckpt = {"model": W.transformers_to_fairseq(source.model.state_dict()),
            "cfg": Evil(marker), "args": None, "optimizer_history": [{"criterion_name": "x"}]}
    torch.save(ckpt, tmp_path / "hubert_base_ls960.pt")
    W.load_weights("hubert-base", target, str(tmp_path / "hubert_base_ls960.pt"))
    assert not marker.exists()
    _assert_same(target, source)


def test_transformers_directory(tmp_path):
    from safetensors.torch import save_file

    target, source = _pair("wav2vec2-base")
    _remember("wav2vec2-base", target)
    state = {f"wav2vec2.{k}": v.contiguous() for k, v in source.model.state_dict().items()}
    state["project_hid.weight"] = torch.randn(8, 32)  # Wav2Vec2ForPreTraining head: dropped
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(source.model.config.to_dict()))
    label = W.load_weights("wav2vec2-base", target, str(tmp_path))
    assert label.startswith(tmp_path.name + "@")
    _assert_same(target, source)


def test_folder_of_checkpoints_and_mapping(tmp_path):
    target, source = _pair("apc")
    _remember("apc", target)
    torch.save({"model": source.apc.state_dict()}, tmp_path / "apc.ckpt")
    assert W.load_weights("apc", target, f"tera=/nowhere,apc={tmp_path}").startswith("apc.ckpt@")
    _assert_same(target, source)
    assert W.load_weights("tera", get_spec("tera").build(tiny=True), f"apc={tmp_path}") == "random"


def test_fairseq_names_match_s3prl_port_and_outputs_agree(tmp_path):
    """The mapping is checked against s3prl's own fairseq wav2vec 2.0 port, not just itself."""
    from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(5)
    cfg = Wav2Vec2Config(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                         encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4, final_dim=8,
                         conv_feature_layers="[(16,10,5)]+[(16,3,2)]*4+[(16,2,2)]*2")
    port = Wav2Vec2Model(cfg).eval()
    torch.save({"task_cfg": {}, "model_cfg": {"encoder_layers": 2, "encoder_embed_dim": 32},
                "model_weight": port.state_dict()}, tmp_path / "port.pt")
    target = get_spec("wav2vec2-base").build(tiny=True)
    W.load_weights("wav2vec2-base", target, str(tmp_path / "port.pt"))
    with torch.inference_mode():
        ours = target(WAV)[-1]
        theirs = port.extract_features(WAV, None, mask=False)
        theirs = theirs[0] if isinstance(theirs, tuple) else theirs["x"]
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-4), float((ours - theirs).abs().max())


def test_pickled_module_is_refused(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")
    with pytest.raises(W.WeightsError, match="unsafe unpickling"):
        W.load_weights("hubert-base", get_spec("hubert-base").build(tiny=True), str(tmp_path / "module.pt"))


def test_wrong_model_and_wrong_config(tmp_path):
    _, source = _pair("tera")
    torch.save({"Transformer": source.transformer.state_dict(),
                "Config": {"transformer": {"num_hidden_layers": 3, "hidden_size": 32}}}, tmp_path / "t.ckpt")
    with pytest.raises(W.WeightsError, match="num_hidden_layers 3"):
        W.load_weights("tera", get_spec("tera").build(tiny=True), str(tmp_path / "t.ckpt"))
    with pytest.raises(W.WeightsError, match="does not fit wav2vec2-base"):
        W.load_weights("wav2vec2-base", get_spec("wav2vec2-base").build(tiny=True), str(tmp_path / "t.ckpt"))
    torch.save({"Transformer": source.transformer.state_dict()}, tmp_path / "t2.ckpt")
    with pytest.raises(W.WeightsError, match="shape mismatches|missing"):
        W.load_weights("mockingjay", get_spec("mockingjay").build(tiny=False), str(tmp_path / "t2.ckpt"))


def test_unreadable_and_missing(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    model = get_spec("apc").build(tiny=True)
    with pytest.raises(W.WeightsError, match="cannot read"):
        W.load_weights("apc", model, str(bad))
    with pytest.raises(W.WeightsError, match="WEIGHTS=random"):
        W.load_weights("apc", model, str(tmp_path / "absent.ckpt"))
    assert W.load_weights("apc", model, "random") == "random"
    assert W.load_weights("logmel", get_spec("logmel").build(), "pretrained") == "none"


def test_a_model_without_parameters_is_labelled_none_whatever_was_asked():
    """log-mel has nothing to randomise or load: ``none``, never ``random`` (issue 23: a report
    called its features random-weight ones)."""
    logmel = get_spec("logmel").build(tiny=True)
    assert W.has_no_weights(logmel) and not W.has_no_weights(get_spec("apc").build(tiny=True))
    for source in ("random", "default", "pretrained", None):
        assert W.load_weights("logmel", logmel, source) == W.NO_WEIGHTS_LABEL == "none"
    for source in ("random", None, ""):
        assert build_weighted("logmel", True, source)[1] == "none"
        assert build_weighted("apc", True, source)[1] == "random"


def test_pretrained_offline_names_model_and_ways_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WAVEBENCH_WEIGHTS_CACHE", str(tmp_path))

    def no_network(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(W.urllib.request, "urlopen", no_network)
    with pytest.raises(W.WeightsError) as err:
        W.load_weights("tera", get_spec("tera").build(tiny=True), "pretrained")
    msg = str(err.value)
    assert "tera" in msg and "WEIGHTS=/path/to/checkpoint" in msg and "WEIGHTS=random" in msg
    assert "\n" not in msg
    assert build_cli(["hubert-base", "pretrained", "--tiny"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_pretrained_uses_cached_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEBENCH_WEIGHTS_CACHE", str(tmp_path))
    monkeypatch.setattr(W.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    target, source = _pair("apc")
    _remember("apc", target)
    cached = tmp_path / "apc" / "apc_360hr.ckpt"
    cached.parent.mkdir()
    torch.save({"model": source.apc.state_dict()}, cached)
    assert W.load_weights("apc", target, "pretrained").startswith("pretrained:apc_360hr.ckpt@")
    _assert_same(target, source)
