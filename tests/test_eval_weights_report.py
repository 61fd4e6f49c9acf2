"""The evaluation report's sentences about weights agree with its own table (issue 23).

``make eval MODELS=logmel,ge2e`` once wrote "Every model except `logmel` ... was evaluated with
random, untrained weights" above a table whose GE2E rows carry the packaged pretrained weights:
the caption tested ``"random" in weights`` over all records, and log-mel's records said
``random`` though it has no weights.  Now a parameter-free model is labelled ``none`` (older
records that said ``random`` are read as ``none``), and every sentence is built from the records
of the table.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from evaluation.records import EvalRecord
from evaluation.report import accuracy_table, render_markdown, weights_label, weights_sentences

PRETRAINED = "pretrained:resemblyzer-0.1.4/pretrained.pt@39373b86598f"


def _record(model: str, runtime: str, weights: str, params: int) -> EvalRecord:
    return EvalRecord.from_dict({"model": model, "runtime": runtime, "weights": weights, "params_total": params, "status": "ok",
            "accuracy": 0.9, "accuracy_layer": 0, "accuracy_last": 0.9, "accuracy_last_layer": 0,
            "accuracy_per_layer": [0.9], "accuracy_std_per_layer": [0.01], "chance_accuracy": 0.125,
            "real_clip_latency_median_s": 0.01, "real_rtf": 0.01, "macs_per_audio_s": 1e6})


def _records(logmel_label: str = "random") -> list[EvalRecord]:
    """logmel (as an older version labelled it, or ``none``), ge2e pretrained, tera random; both runtimes."""
    out = []
    for runtime in ("pytorch", "onnxruntime"):
        out += [_record("logmel", runtime, logmel_label, 0), _record("ge2e", runtime, PRETRAINED, 1423616),
                _record("tera", runtime, "random", 21327360)]
    return out


def _render(records: list[EvalRecord]) -> str:
    run = SimpleNamespace(folder=Path("speech-word"), records=records,
                          settings=SimpleNamespace(seed=0, batch_size=8, threads=None, bench_run=None))
    data_info = {"dataset": "speech-data", "layout": "csv", "clips_used": 128, "clips_listed": 128,
                 "audio_s": 133.9, "classes": ["go", "no"], "probe_method": "stratified 5-fold", "skipped": []}
    return render_markdown(run, data_info, [])


def _table_weights(report: str) -> dict[str, set[str]]:
    """model -> the weights column of its rows in the report's accuracy table."""
    out: dict[str, set[str]] = {}
    for line in report.splitlines():
        cols = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cols) == 10 and cols[1] in ("pytorch", "onnxruntime"):
            out.setdefault(cols[0], set()).add(cols[2])
    return out


def _caution(report: str) -> str:
    (line,) = [x for x in report.splitlines() if x.startswith("**Random weights.**")]
    return line


def test_parameter_free_model_is_labelled_none_also_in_older_records():
    old, new = _records("random"), _records("none")
    for records in (old, new):
        assert [weights_label(r) for r in records[:3]] == ["none", PRETRAINED, "random"]
        assert "| logmel  | pytorch     | none " in accuracy_table(records)
    # a model with parameters keeps what its record says
    assert weights_label(_record("apc", "pytorch", "random", 10)) == "random"


def test_logmel_ge2e_tera_sentences_agree_with_the_table():
    for records in (_records("random"), _records("none")):
        report = _render(records)
        table = _table_weights(report)
        assert table == {"logmel": {"none"}, "ge2e": {PRETRAINED}, "tera": {"random"}}
        caution = _caution(report)
        named_random = re.search(r"\*\*Random weights\.\*\* (.*?) (?:was|were) evaluated", caution).group(1)
        assert named_random == "`tera`"  # exactly the models whose rows say random
        assert [m for m, w in table.items() if w == {"random"}] == ["tera"]
        assert "`ge2e` carries trained weights" in caution
        assert "`logmel` has no weights" in caution
        assert "Only the features of `logmel` and `ge2e` are meaningful here" in caution
        assert "Every model except" not in report
        assert (f"Weights: `logmel` none (no parameters), `ge2e` {PRETRAINED}, `tera` random."
                in report)


def test_no_caution_without_random_weights_and_plural_when_several():
    records = [r for r in _records("none") if r.model != "tera"]
    summary, caution = weights_sentences(records)
    assert caution == [] and "**Random weights.**" not in _render(records)
    assert summary == f"Weights: `logmel` none (no parameters), `ge2e` {PRETRAINED}."

    records = [_record(m, "pytorch", "random", 10) for m in ("apc", "tera", "hubert-base")]
    _, (caution,) = weights_sentences(records)
    assert caution.startswith("**Random weights.** `apc`, `tera` and `hubert-base` were evaluated with random")
    assert "No model's features here are meaningful" in caution and "carries" not in caution


def test_weights_hint_survives_the_portable_paths_of_a_report():
    from runstore.folder import portable_text

    assert "`WEIGHTS=path/to/ckpt`" in portable_text(_caution(_render(_records())))
