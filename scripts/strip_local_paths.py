"""Strip the absolute paths of the machine that made them from committed example results.

Used once on the reports under ``docs/`` that were written before run.json became portable
(issue 10) and that cannot be regenerated without a long run on a quiet machine: the command
line becomes ``python -m runners ...``, paths inside the checkout that wrote them become
relative, and any other local path is cut to its name (``runstore.folder.portable_text``).
Nothing measured is changed.

    .venv/bin/python scripts/strip_local_paths.py --was-root /work/main FILE...
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runstore.folder import portable_text  # noqa: E402


def strip(text: str, was_root: str) -> str:
    root = was_root.rstrip("/")
    text = re.sub(re.escape(root) + r"/runners/__main__\.py", "python -m runners", text)
    text = re.sub(r"(?<![\w./~…-])" + re.escape(root) + r"/", "", text)
    return portable_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--was-root", required=True, help="the checkout the files were written from")
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args(argv)
    for path in args.files:
        before = path.read_text(encoding="utf-8")
        after = strip(before, args.was_root)
        if after != before:
            path.write_text(after, encoding="utf-8")
            print(f"{path}: stripped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
