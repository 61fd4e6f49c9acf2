"""Model variants: the same model in other precisions, for both runtimes.

- ``fp32``: the exported model as is.
- ``fp16``: PyTorch ``model.half()`` with a half-precision input; for ONNX Runtime the graph is
  converted with ONNX Runtime's own float16 converter (``onnxruntime.transformers.float16``,
  inputs and outputs kept float32), or — on the TensorRT provider — the fp32 graph is built by
  TensorRT in fp16 (``trt_fp16_enable``).
- ``int8``: dynamic quantisation of the matrix products in both runtimes, so the two are the same
  recipe: ONNX Runtime's ``quantize_dynamic`` restricted to ``MatMul``/``Gemm``/``LSTM`` (int8
  weights, activations quantised at run time; ``LSTM`` becomes ``DynamicQuantizeLSTM``) and
  PyTorch's ``quantize_dynamic`` of the ``nn.Linear`` and ``nn.LSTM`` layers (CPU only).  GRUs
  (APC) stay fp32 in both: ONNX Runtime has no quantised GRU.  Convolutions stay fp32: ONNX Runtime's ``ConvInteger`` on the CPU made
  wav2vec 2.0 slower than fp32 and moved its output by a max abs error of 1.3 (cosine 0.992).

A variant cell may also carry an ONNX Runtime graph optimisation level other than the default
(``all``): it is written ``<variant>+opt=<level>`` (e.g. ``fp32+opt=basic``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

from export.onnx_export import file_sha256

VARIANTS = ("fp32", "fp16", "int8")
ORT_OPT_LEVELS = ("disable", "basic", "extended", "all")
INT8_OPS = ("MatMul", "Gemm", "LSTM")
TORCH_INT8_MODULES = ("Linear", "LSTM")  # the same layers on the PyTorch side
RECIPES = {"fp16": "onnxruntime.transformers.float16 keep_io_types", "int8": f"quantize_dynamic QInt8 {INT8_OPS}"}


class VariantError(ValueError):
    pass


def parse_variant(text: str) -> tuple[str, str]:
    """``"fp16+opt=basic"`` -> ("fp16", "basic"); ``"int8"`` -> ("int8", "all")."""
    base, _, rest = text.partition("+")
    opt = "all"
    if rest:
        key, _, value = rest.partition("=")
        if key != "opt" or value not in ORT_OPT_LEVELS:
            raise VariantError(f"malformed variant {text!r}; expected <{'|'.join(VARIANTS)}>[+opt=<"
                               f"{'|'.join(ORT_OPT_LEVELS)}>]")
        opt = value
    if base not in VARIANTS:
        raise VariantError(f"unknown variant {base!r}; valid: {', '.join(VARIANTS)}")
    return base, opt


def variant_name(base: str, opt: str = "all") -> str:
    return base if opt == "all" else f"{base}+opt={opt}"


def onnx_variant(fp32_path: str | Path, variant: str) -> Path:
    """The ONNX file for ``variant`` next to the fp32 one (made once, re-made if the fp32 changed)."""
    fp32_path = Path(fp32_path)
    if variant == "fp32":
        return fp32_path
    if variant not in ("fp16", "int8"):
        raise VariantError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    out = fp32_path.with_name(fp32_path.stem + f".{variant}.onnx")
    stamp = out.with_suffix(".json")
    source_digest = file_sha256(fp32_path)
    wanted = {"source": fp32_path.name, "source_sha256": source_digest, "variant": variant,
              "recipe": RECIPES[variant]}
    if out.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return out
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # the quantiser logs advice for image models at WARNING
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the converters print progress
            _convert(fp32_path, out, variant)
    finally:
        root_logger.setLevel(level)
    stamp.write_text(json.dumps(wanted))
    return out


def _convert(fp32_path: Path, out: Path, variant: str) -> None:
    if variant == "fp16":
        # deferred: onnx is loaded only where a graph is read or written
        import onnx

        # deferred: onnxruntime is heavy and optional on a PyTorch-only path
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(fp32_path))
        converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
        onnx.save(converted, str(out))
    else:
        # deferred: onnxruntime is heavy and optional on a PyTorch-only path
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32_path), str(out), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(INT8_OPS))


def torch_variant(model, variant: str, device: str):
    """(model, input dtype) for ``variant`` of a PyTorch model on ``device``."""
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch

    if variant == "fp32":
        return model, torch.float32
    if variant == "fp16":
        return model.half(), torch.float16
    if variant == "int8":
        if device != "cpu":
            raise VariantError(f"PyTorch int8 (dynamic quantisation) runs on the CPU only, not on {device}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                model, {getattr(torch.nn, m) for m in TORCH_INT8_MODULES}, dtype=torch.qint8)
        return quantized, torch.float32
    raise VariantError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")

