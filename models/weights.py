"""Real weights for the registry's models, read from s3prl's own checkpoint formats.

``load_weights(model_name, model, source)`` fills a model built by ``spec.build()`` and returns
the label stored in the cell record's ``weights`` field.  ``source`` is one of:

* ``random`` (or empty): keep the seeded random weights (label ``random``);
* ``default`` (or unset): each model's own default: ``random``, except models whose trained
  weights ship inside an installed package (``PACKAGED``; ``ge2e``: ``pretrained``);
* ``pretrained``: the weights shipped in an installed package (``ge2e``: Resemblyzer's
  ``pretrained.pt``, no network), else the published checkpoint at s3prl's download location (cached under
  ``$WAVEBENCH_WEIGHTS_CACHE``, default ``~/.cache/wavebench/weights``; a cached file is used
  offline).  No network and no cached file -> :class:`WeightsError` naming the model and the
  two ways out (``WEIGHTS=/path/to/ckpt`` or ``WEIGHTS=random``);
* a path: a checkpoint file, a transformers model directory (``model.safetensors`` or
  ``pytorch_model.bin`` [+ ``config.json``]), or a folder holding one entry per model
  (``<dir>/<model>.ckpt|.pt|.safetensors`` or ``<dir>/<model>/``);
* ``model=path,model2=path2``: per-model paths (models not named keep random weights).

Formats recognised (by their keys, not their file names):

==========================  ================================================================
s3prl Mockingjay/TERA/ALBERT ``{"Transformer": state, "SpecHead": ..., "Config"|"Upstream_Config"}``
                             -> ``model.transformer`` (``gamma``/``beta`` renamed as s3prl does;
                             ``SpecHead`` is the training-only reconstruction head)
s3prl APC                    ``{"model": {"rnn_layers.*", "postnet.*"}, "config": ...}`` -> ``model.apc``
Resemblyzer (GE2E)           ``{"model_state": {"lstm.*", "linear.*"}, ...}`` -> ``ge2e`` (``lstm.*_lK`` ->
                             ``lstm.K.*_l0``: one module per layer, tensors unchanged)
s3prl converted fairseq      ``{"task_cfg", "model_cfg", "model_weight"}`` (wav2vec 2.0, HuBERT)
raw fairseq                  ``{"model": {...}, "cfg"|"args": ...}``
transformers                 a state dict with transformers' names (``wav2vec2.``/``hubert.``
                             prefixes stripped), e.g. a hub ``model.safetensors``
==========================  ================================================================

fairseq names are mapped onto transformers' ``Wav2Vec2Model``/``HubertModel`` (same
architecture): ``feature_extractor.conv_layers.i.0.weight`` -> ``...conv_layers.i.conv.weight``,
``post_extract_proj`` -> ``feature_projection.projection``, ``encoder.pos_conv.0.weight_g/_v`` ->
the weight-norm parametrisation, ``self_attn``/``fc1``/``fc2`` -> ``attention``/``feed_forward``.
Training-only tensors (quantizer, ``project_q``, ``final_proj``, label embeddings, ``SpecHead``)
are dropped and listed in the log.

Safety: ``.safetensors`` files are read with safetensors; everything else first with
``torch.load(weights_only=True)``.  Older s3prl checkpoints also pickle non-tensor objects
(``argparse.Namespace`` settings, optimizer or scheduler objects, omegaconf configs).  Those are
read with a restricted unpickler: torch's weights-only allow-list resolves to the real objects,
every other class becomes an inert placeholder that stores its arguments and runs none of the
checkpoint's code.  If the weights themselves sit inside such an object (a pickled module),
the checkpoint is refused with a message: it would need unsafe unpickling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import types
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from models.ge2e import (
    GE2EEncoder,
    PackagedWeightsMissing,
    package_facts,
    packaged_weights_path,
    resemblyzer_to_wavebench,
)

log = logging.getLogger(__name__)

# s3prl's published default checkpoints (the URLs its hubconf.py files download)
PRETRAINED_URLS: dict[str, str] = {
    "apc": "https://huggingface.co/leo19941227/apc_series/resolve/main/apc_360hr.ckpt",
    "tera": "https://huggingface.co/s3prl/tera/resolve/main/"
            "tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
    "mockingjay": "https://huggingface.co/s3prl/mockingjay/resolve/main/"
                  "mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1/states-500000.ckpt",
    "audio-albert": "https://huggingface.co/s3prl/audio_albert/resolve/main/"
                    "audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
    "wav2vec2-base": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wav2vec_small.pt",
    "wav2vec2-large": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wav2vec_vox_new.pt",
    "hubert-base": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/hubert_base_ls960.pt",
    "hubert-large": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/hubert_large_ll60k.pt",
}
NO_WEIGHTS_LABEL = "none"  # the label of a model without parameters (log-mel): nothing to load or randomise
# models whose trained weights ship inside an installed package: `pretrained` reads them there
# (no network), and they are what an unset WEIGHTS (`default`) loads
PACKAGED = {"ge2e": "resemblyzer"}
DOWNLOAD_TIMEOUT_S = 15.0
CKPT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")

# tensors of the pre-training objectives that inference never touches
TRAINING_ONLY = re.compile(r"^(quantizer\.|project_q\.|project_hid\.|final_proj\.|label_embs_concat|"
                           r"target_glu\.|project_inp\.|SpecHead|lm_head\.|dropout_features)")


class WeightsError(RuntimeError):
    """Weights could not be loaded; the message names the model and what to do."""


# ---------------------------------------------------------------- safe reading

class _Placeholder:
    """Stands in for any class outside the allow-list: stores its arguments, runs nothing."""

    _wavebench_placeholder = True

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Placeholder":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on dict subclasses
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:  # APPENDS on list subclasses
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("list", []).extend(values)

    def __repr__(self) -> str:
        return f"<placeholder {type(self).__module__}.{type(self).__name__}>"


def _allowed_globals() -> dict[str, Any]:
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    from torch import _weights_only_unpickler as wou

    allowed = dict(wou._get_allowed_globals())
    allowed.update({"builtins.dict": dict, "builtins.list": list, "builtins.tuple": tuple,
                    "builtins.frozenset": frozenset, "builtins.int": int, "builtins.float": float,
                    "builtins.str": str, "builtins.bytes": bytes, "builtins.bool": bool,
                    "builtins.slice": slice})
    return allowed


def _restricted_pickle_module(placeholders: set[str]) -> types.ModuleType:
    allowed = _allowed_globals()
    cache: dict[str, type] = {}

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = f"{module}.{name}"
            if key in allowed:
                return allowed[key]
            placeholders.add(key)
            if key not in cache:
                cache[key] = type(name, (_Placeholder,), {"__module__": module})
            return cache[key]

    mod = types.ModuleType("wavebench_restricted_pickle")
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    return mod


def read_checkpoint(path: str | Path) -> tuple[Any, list[str]]:
    """Read a checkpoint without running its code: (object, classes replaced by placeholders)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise WeightsError(f"checkpoint {path} is empty")
    if path.suffix == ".safetensors":
        # deferred: safetensors is needed only for .safetensors checkpoints
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), []
        except Exception as exc:
            raise WeightsError(f"cannot read {path} as safetensors: {exc}") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True), []
    except pickle.UnpicklingError as exc:
        first_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except Exception as exc:
        raise WeightsError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    placeholders: set[str] = set()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False,
                         pickle_module=_restricted_pickle_module(placeholders))
    except Exception as exc:
        raise WeightsError(f"cannot read checkpoint {path} safely ({first_error}; restricted "
                           f"reader: {type(exc).__name__}: {exc})") from exc
    log.info("%s: non-tensor objects read as inert placeholders: %s", path.name, ", ".join(sorted(placeholders)))
    return obj, sorted(placeholders)


def _is_placeholder(obj: Any) -> bool:
    return getattr(obj, "_wavebench_placeholder", False)


def _tensor_dict(obj: Any, what: str, path: Path, placeholders: list[str]) -> dict[str, torch.Tensor]:
    if _is_placeholder(obj):
        raise WeightsError(
            f"{path}: {what} is a pickled {type(obj).__module__}.{type(obj).__name__} object, not a state "
            f"dict; reading it would need unsafe unpickling (running the checkpoint's code). In an "
            f"environment you trust, re-save it with torch.save(obj.state_dict(), 'weights.pt').")
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: {what} is a {type(obj).__name__}, expected a state dict")
    out = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            out[str(key)] = value
        elif _is_placeholder(value):
            raise WeightsError(f"{path}: {what}[{key!r}] is a pickled {type(value).__name__}; refusing "
                               f"unsafe unpickling (classes needed: {', '.join(placeholders)})")
    return out


def _plain(obj: Any) -> Any:
    """Config objects as plain Python (placeholders of dict-like configs give their items)."""
    if _is_placeholder(obj):
        for attr in ("items", "state", "kwargs"):
            value = getattr(obj, attr, None)
            if isinstance(value, Mapping) and value:
                return {k: _plain(v) for k, v in value.items()}
        return {}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------- name mapping

def fairseq_to_transformers(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """fairseq/s3prl wav2vec 2.0 and HuBERT names -> transformers names; (mapped, dropped)."""
    out: dict[str, torch.Tensor] = {}
    dropped = []
    rules = [
        (r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$", r"feature_extractor.conv_layers.\1.conv.\2"),
        (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
        (r"^feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
        (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
        (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
        (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
        (r"^encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
        (r"^encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
        (r"^encoder\.pos_conv\.0\.parametrizations\.weight\.original([01])$",
         r"encoder.pos_conv_embed.conv.parametrizations.weight.original\1"),
        (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
        (r"^encoder\.layers\.(\d+)\.self_attn\.(k_proj|v_proj|q_proj|out_proj)\.(weight|bias)$",
         r"encoder.layers.\1.attention.\2.\3"),
        (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
        (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
        (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
        (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
        (r"^mask_emb$", "masked_spec_embed"),
    ]
    compiled = [(re.compile(p), r) for p, r in rules]
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                break
        else:
            dropped.append(key)
    return out, dropped


def transformers_to_fairseq(state: Mapping[str, torch.Tensor], layer_norm_extractor: bool = False) -> dict[str, torch.Tensor]:
    """The inverse mapping (used by the tests to write fairseq-format checkpoints)."""
    rules = [
        (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)$", r"feature_extractor.conv_layers.\1.0.\2"),
        (r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)$",
         r"feature_extractor.conv_layers.\1.2.1.\2" if layer_norm_extractor else r"feature_extractor.conv_layers.\1.2.\2"),
        (r"^feature_projection\.layer_norm\.(weight|bias)$", r"layer_norm.\1"),
        (r"^feature_projection\.projection\.(weight|bias)$", r"post_extract_proj.\1"),
        (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
        (r"^encoder\.layers\.(\d+)\.attention\.(k_proj|v_proj|q_proj|out_proj)\.(weight|bias)$",
         r"encoder.layers.\1.self_attn.\2.\3"),
        (r"^encoder\.layers\.(\d+)\.layer_norm\.(weight|bias)$", r"encoder.layers.\1.self_attn_layer_norm.\2"),
        (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(weight|bias)$", r"encoder.layers.\1.fc1.\2"),
        (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(weight|bias)$", r"encoder.layers.\1.fc2.\2"),
        (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
        (r"^masked_spec_embed$", "mask_emb"),
    ]
    out = {}
    for key, value in state.items():
        for p, r in rules:
            if re.match(p, key):
                out[re.sub(p, r, key)] = value
                break
        else:
            out[key] = value  # encoder.layer_norm.* keeps its name
    return out


def _hf_hub_names(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A transformers state dict (hub file): strip model prefixes, new weight-norm names."""
    out, dropped = {}, []
    for key, value in state.items():
        k = re.sub(r"^(wav2vec2|hubert|model)\.", "", key)
        k = k.replace("pos_conv_embed.conv.weight_g", "pos_conv_embed.conv.parametrizations.weight.original0")
        k = k.replace("pos_conv_embed.conv.weight_v", "pos_conv_embed.conv.parametrizations.weight.original1")
        if TRAINING_ONLY.match(k) or k.startswith(("lm_head", "project_hid", "classifier", "projector")):
            dropped.append(key)
        else:
            out[k] = value
    return out, dropped


# ---------------------------------------------------------------- loading into modules

OPTIONAL_MISSING = {"masked_spec_embed"}  # used only for masking during pre-training


def _load_into(target: nn.Module, state: dict[str, torch.Tensor], model_name: str, path: Path,
               fmt: str, optional_missing: set[str] = OPTIONAL_MISSING) -> None:
    own = target.state_dict()
    missing = [k for k in own if k not in state and k not in optional_missing]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in state if k in own and state[k].shape != own[k].shape]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:3])})")
    if missing:
        problems.append(f"{len(missing)} tensors missing from the checkpoint ({', '.join(missing[:4])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unknown tensors ({', '.join(unexpected[:4])})")
    if problems:
        raise WeightsError(f"{model_name}: {path} ({fmt}) does not fit this model's architecture: "
                           + "; ".join(problems) + ". Is it the checkpoint of this model?")
    with torch.no_grad():
        for key, tensor in own.items():
            if key in state:
                tensor.copy_(state[key].to(tensor.dtype))


def _transformer_config(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("Upstream_Config", "Config"):
        cfg = _plain(ckpt.get(key))
        if isinstance(cfg, Mapping) and isinstance(cfg.get("transformer"), Mapping):
            return dict(cfg["transformer"])
    return {}


def _check_config(model_name: str, path: Path, pairs: list[tuple[str, Any, Any]]) -> None:
    bad = [f"{name} {ck} (model {mine})" for name, ck, mine in pairs if ck is not None and mine is not None and ck != mine]
    if bad:
        raise WeightsError(f"{model_name}: {path} was trained with a different configuration: checkpoint "
                           + ", ".join(bad) + ". Is it the checkpoint of this model?")


def _load_s3prl_transformer(model_name: str, model: nn.Module, ckpt: Mapping[str, Any], path: Path,
                            placeholders: list[str]) -> str:
    if not hasattr(model, "transformer"):
        raise WeightsError(f"{model_name}: {path} is an s3prl Mockingjay/TERA/Audio-ALBERT checkpoint, "
                           f"which does not fit {model_name}")
    state = _tensor_dict(ckpt["Transformer"], "'Transformer'", path, placeholders)
    state = {k.replace("gamma", "weight").replace("beta", "bias"): v for k, v in state.items()}
    cfg = _transformer_config(ckpt)
    tcfg = model.transformer.config
    _check_config(model_name, path, [
        ("hidden_size", cfg.get("hidden_size"), tcfg.hidden_size),
        ("num_hidden_layers", cfg.get("num_hidden_layers"), tcfg.num_hidden_layers),
        ("num_attention_heads", cfg.get("num_attention_heads"), tcfg.num_attention_heads),
        ("share_layer", cfg.get("share_layer"), getattr(tcfg, "share_layer", None)),
        ("pre_layer_norm", cfg.get("pre_layer_norm"), getattr(tcfg, "pre_layer_norm", None)),
    ])
    _load_into(model.transformer, state, model_name, path, "s3prl transformer checkpoint")
    return "s3prl-transformer"


def _load_apc(model_name: str, model: nn.Module, ckpt: Mapping[str, Any], path: Path, placeholders: list[str]) -> str:
    if not hasattr(model, "apc"):
        raise WeightsError(f"{model_name}: {path} is an s3prl APC checkpoint, which does not fit {model_name}")
    state = _tensor_dict(ckpt["model"], "'model'", path, placeholders)
    paras = _plain(ckpt.get("config", {})).get("model", {}).get("paras", {}) if isinstance(_plain(ckpt.get("config", {})), Mapping) else {}
    apc = model.apc
    _check_config(model_name, path, [
        ("hidden_size", paras.get("hidden_size"), apc.hidden_size),
        ("num_layers", paras.get("num_layers"), apc.num_layers),
        ("residual", paras.get("residual"), apc.rnn_residual),
    ])
    if paras.get("vq"):
        raise WeightsError(f"{model_name}: {path} is a VQ-APC checkpoint; the registry's apc has no VQ layers")
    _load_into(apc, state, model_name, path, "s3prl APC checkpoint")
    return "s3prl-apc"


def _load_ge2e(model_name: str, model: nn.Module, ckpt: Mapping[str, Any], path: Path, placeholders: list[str]) -> str:
    if not isinstance(model, GE2EEncoder):
        raise WeightsError(f"{model_name}: {path} is a Resemblyzer (GE2E) checkpoint, which does not fit {model_name}")
    state = _tensor_dict(ckpt["model_state"], "'model_state'", path, placeholders)
    _load_into(model, resemblyzer_to_wavebench(state, len(model.lstm)), model_name, path, "Resemblyzer checkpoint")
    return "resemblyzer"


def _hf_target(model_name: str, model: nn.Module, path: Path) -> nn.Module:
    target = getattr(model, "model", None)
    if target is None or not hasattr(target, "feature_extractor"):
        raise WeightsError(f"{model_name}: {path} is a wav2vec 2.0/HuBERT checkpoint, which does not fit {model_name}")
    return target


def _load_fairseq(model_name: str, model: nn.Module, state: dict[str, torch.Tensor], path: Path,
                  model_cfg: Mapping[str, Any], fmt: str) -> str:
    target = _hf_target(model_name, model, path)
    cfg = target.config
    _check_config(model_name, path, [
        ("encoder_layers", model_cfg.get("encoder_layers"), cfg.num_hidden_layers),
        ("encoder_embed_dim", model_cfg.get("encoder_embed_dim"), cfg.hidden_size),
        ("encoder_attention_heads", model_cfg.get("encoder_attention_heads"), cfg.num_attention_heads),
        ("layer_norm_first", model_cfg.get("layer_norm_first"), cfg.do_stable_layer_norm),
    ])
    mapped, dropped = fairseq_to_transformers(state)
    unknown = [k for k in dropped if not TRAINING_ONLY.match(k)]
    if unknown:
        raise WeightsError(f"{model_name}: {path} ({fmt}) has tensors with no transformers counterpart: "
                           f"{', '.join(unknown[:5])}")
    if dropped:
        log.info("%s: training-only tensors not used for inference: %s", model_name, ", ".join(dropped))
    _load_into(target, mapped, model_name, path, fmt)
    return fmt


def _load_state_dict_file(model_name: str, model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> str:
    """A flat state dict: the registry module's own names, or transformers' names."""
    own = model.state_dict()
    if state and all(k in own for k in state):
        _load_into(model, state, model_name, path, "wavebench state dict")
        return "state-dict"
    if any(k.startswith("feature_extractor.conv_layers.") and ".0.weight" in k for k in state):
        return _load_fairseq(model_name, model, state, path, {}, "fairseq state dict")
    mapped, dropped = _hf_hub_names(state)
    target = _hf_target(model_name, model, path)
    if dropped:
        log.info("%s: tensors not used for inference: %s", model_name, ", ".join(dropped))
    _load_into(target, mapped, model_name, path, "transformers state dict")
    return "transformers"


def _load_file(model_name: str, model: nn.Module, path: Path) -> str:
    obj, placeholders = read_checkpoint(path)
    if _is_placeholder(obj):
        _tensor_dict(obj, "the checkpoint", path, placeholders)  # raises with the message
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: a {type(obj).__name__}, not a checkpoint dictionary")
    if "model_state" in obj:
        return _load_ge2e(model_name, model, obj, path, placeholders)
    if "Transformer" in obj:
        return _load_s3prl_transformer(model_name, model, obj, path, placeholders)
    if "model_weight" in obj:  # s3prl's converted fairseq checkpoints
        state = _tensor_dict(obj["model_weight"], "'model_weight'", path, placeholders)
        return _load_fairseq(model_name, model, state, path, _plain(obj.get("model_cfg")) or {}, "s3prl-fairseq")
    if "model" in obj and not isinstance(obj.get("model"), torch.Tensor):
        inner = obj["model"]
        if isinstance(inner, Mapping) and any(str(k).startswith("rnn_layers.") for k in inner):
            return _load_apc(model_name, model, obj, path, placeholders)
        state = _tensor_dict(inner, "'model'", path, placeholders)
        cfg = _plain(obj.get("cfg")) or {}
        model_cfg = cfg.get("model", {}) if isinstance(cfg, Mapping) else {}
        if not model_cfg and obj.get("args") is not None:
            args = obj["args"]
            model_cfg = _plain(args) or dict(getattr(args, "__dict__", {}))
        return _load_fairseq(model_name, model, state, path, model_cfg if isinstance(model_cfg, Mapping) else {}, "fairseq")
    if "state_dict" in obj:
        state = _tensor_dict(obj["state_dict"], "'state_dict'", path, placeholders)
        return _load_state_dict_file(model_name, model, state, path)
    state = _tensor_dict(obj, "the checkpoint", path, placeholders)
    if not state:
        raise WeightsError(f"{model_name}: {path} holds no tensors in a format wavebench knows "
                           f"(keys: {', '.join(map(str, list(obj)[:6]))})")
    return _load_state_dict_file(model_name, model, state, path)


def _load_hf_dir(model_name: str, model: nn.Module, folder: Path) -> str:
    target = _hf_target(model_name, model, folder)
    config = folder / "config.json"
    if config.exists():
        cfg = json.loads(config.read_text())
        mine = target.config
        _check_config(model_name, folder, [(k, cfg.get(k), getattr(mine, k, None)) for k in
                                           ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                            "intermediate_size", "do_stable_layer_norm")])
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            obj, placeholders = read_checkpoint(folder / name)
            state = _tensor_dict(obj, name, folder / name, placeholders)
            return _load_state_dict_file(model_name, model, state, folder / name)
    raise WeightsError(f"{model_name}: {folder} has neither model.safetensors nor pytorch_model.bin")


# ---------------------------------------------------------------- sources

def _file_label(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in CKPT_SUFFIXES)
    for p in files:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return f"{path.name}@{h.hexdigest()[:12]}"


def cache_dir() -> Path:
    return Path(os.environ.get("WAVEBENCH_WEIGHTS_CACHE", Path.home() / ".cache" / "wavebench" / "weights"))


def _no_way(model_name: str, why: str) -> WeightsError:
    return WeightsError(f"{model_name}: no pretrained weights ({why}); use WEIGHTS=/path/to/checkpoint "
                        f"(loads offline) or WEIGHTS=random")


def packaged_weights(model_name: str) -> tuple[Path, str] | None:
    """(file, label prefix) of weights shipped inside an installed package; None for other models."""
    if model_name not in PACKAGED:
        return None
    try:
        path = packaged_weights_path()
    except PackagedWeightsMissing as exc:
        raise WeightsError(f"{model_name}: {exc}, or use WEIGHTS=random") from None
    facts = package_facts()
    return path, f"{facts['name'].lower()}-{facts['version']}/"


def fetch_pretrained(model_name: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """The published checkpoint of ``model_name``: shipped in an installed package, or cached,
    or downloaded when missing."""
    packaged = packaged_weights(model_name)
    if packaged is not None:
        return packaged[0]
    url = PRETRAINED_URLS.get(model_name)
    if url is None:
        raise _no_way(model_name, "s3prl publishes no checkpoint in a format wavebench maps onto this model")
    target = cache_dir() / model_name / url.rsplit("/", 1)[-1].split("?")[0]
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise _no_way(model_name, f"download of {url} failed: {reason}") from exc
    tmp.replace(target)
    return target


def resolve_source(model_name: str, source: str | None, tiny: bool = False) -> str:
    """The part of a ``WEIGHTS`` value that applies to ``model_name`` (``a=p,b=q`` mappings);
    ``default`` becomes the model's own default (``random`` for toy-size builds: packaged
    weights fit the full size only)."""
    source = (source or "default").strip()
    if "=" in source and not Path(source).exists():
        mapping = dict(part.split("=", 1) for part in source.split(",") if "=" in part)
        source = mapping.get(model_name, "random").strip() or "random"
    if source.lower() == "default":
        return "pretrained" if model_name in PACKAGED and not tiny else "random"
    return source


def has_no_weights(model: nn.Module) -> bool:
    """A model without parameters (log-mel: a fixed filterbank, kept in buffers) has no weights: its
    label is ``none``, never ``random`` — a report must not call its features random or trained."""
    return not any(p.numel() for p in model.parameters())


def load_weights(model_name: str, model: nn.Module, source: str | None, tiny: bool = False) -> str:
    """Load ``source`` into ``model`` (built by the registry for ``model_name``); return the label.

    Labels: ``random``, ``none`` (a model without parameters, whatever ``source`` says),
    ``pretrained:<file>@<sha12>``, ``<file or folder name>@<sha12>``.  Raises :class:`WeightsError`
    with an actionable message.
    """
    if has_no_weights(model):
        return NO_WEIGHTS_LABEL
    source = resolve_source(model_name, source, tiny)
    if source.lower() == "random":
        return "random"
    if source.lower() == "pretrained":
        path = fetch_pretrained(model_name)
        _load_file(model_name, model, path)
        packaged = packaged_weights(model_name)
        return f"pretrained:{packaged[1] if packaged else ''}{_file_label(path)}"
    path = Path(source).expanduser()
    if not path.exists():
        raise WeightsError(f"{model_name}: weights {path} not found; use WEIGHTS=/path/to/checkpoint or WEIGHTS=random")
    if path.is_dir():
        if (path / "model.safetensors").exists() or (path / "pytorch_model.bin").exists():
            _load_hf_dir(model_name, model, path)
            return _file_label(path)
        entries = [path / f"{model_name}{s}" for s in CKPT_SUFFIXES] + [path / model_name]
        for entry in entries:
            if entry.exists():
                return load_weights(model_name, model, str(entry))
        raise WeightsError(f"{model_name}: {path} holds no checkpoint for this model (looked for "
                           f"{model_name}.ckpt/.pt/.safetensors or {model_name}/); use WEIGHTS=random to skip it")
    _load_file(model_name, model, path)
    return _file_label(path)
