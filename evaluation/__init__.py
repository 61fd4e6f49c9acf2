"""Accuracy vs efficiency on real data: embeddings per layer, a linear probe, Pareto report.

``python -m evaluation --data DIR`` (``make eval DATA=DIR``) runs the lab suite on a labelled
audio folder in both runtimes and writes ``results/eval/<run>/report.md``;
``python -m evaluation.demo_data OUT`` (``make demo-data``) writes a small labelled demo set.
Notebook use: ``from evaluation.run import EvalSettings, evaluate``.
"""
