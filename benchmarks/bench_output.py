"""Where a benchmark's results go: its Markdown report printed and written to ``--out`` (under
``docs/``), and the raw numbers beside it as JSON, so the report can be re-read and re-checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_outputs(out: str | None, text: str, result: Any) -> None:
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        Path(out).with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
