"""Where a benchmark's results go: its Markdown report printed and written to ``--out`` (under
``docs/``), and the raw numbers beside it as JSON, so the report can be re-read and re-checked."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def write_outputs(out: str | None, text: str, result: Any) -> None:
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        Path(out).with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


def speech_data_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark on the spoken-word set shares: ``--data`` (made by
    ``make speech-data``), ``--threads`` and ``--out``; a benchmark adds its own."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--data", default="results/speech-data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    return parser


def has_speech_data(data: Path, needs: str) -> bool:
    """False, with one line on stderr saying how to make it, when ``data`` lacks the file ``needs``."""
    if (data / needs).is_file():
        return True
    print(f"error: {data} is not a speech-data set (no {needs}); run `make speech-data` first", file=sys.stderr)
    return False
