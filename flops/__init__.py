"""MACs and FLOPs of each model: the ONNX graph count, the analytic formulas, the per-cell cache.

``from flops import macs_for, count_onnx, analytic_count``; the report and command line
(``python -m flops``, ``make flops``) live in :mod:`flops.report` and are not imported here
(they pull tabulate and matplotlib, which measurement code never needs).
"""

from flops.cache import MacsCache, macs_for
from flops.formulas import AnalyticCount, analytic_count, arch_config, conv_out, torch_flop_count
from flops.graph import CorruptOnnxError, CountError, FlopCount, GraphCounter, NodeCount, count_onnx, layer_of

__all__ = ["AnalyticCount", "CorruptOnnxError", "CountError", "FlopCount", "GraphCounter", "MacsCache", "NodeCount",
           "analytic_count", "arch_config", "conv_out", "count_onnx", "layer_of", "macs_for", "torch_flop_count"]
