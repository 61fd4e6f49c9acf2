"""Dependencies by need: a board gets what ``make bench`` needs and nothing more.

requirements.txt is make bench's set (make fleet installs only it on each board); the test and
lint tools, the evaluation's packages and the dynamo exporter's are sets of their own, installed by
the make targets that need them.  These tests read the requirement files, pyproject.toml and every
import in the tree: no test or lint tool in the bench set, every imported package declared in the
set of the code that imports it, and pyproject.toml saying the same as the files.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from runners.runtimes.packages import OPTIONAL

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
# the optional runtimes' sets (requirements-<runtime>.txt): make bench's code imports them deferred,
# only when RUNTIMES asks for one, and refuses the run with how to install it when it is missing
RUNTIME_SETS = tuple(OPTIONAL)
TOOLS = {"pytest", "ruff", "mypy", "vermin"}
# import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "onnx_tool": "onnx-tool", "silero_vad": "silero-vad",
                "pynvml": "nvidia-ml-py", "ai_edge_litert": "ai-edge-litert", "litert_torch": "litert-torch"}
# installed by scripts/setup_env.sh itself (kept when the board has its own build, or --no-deps)
BY_SETUP = {"torch", "onnxruntime", "s3prl", "resemblyzer", "silero-vad"}
# the code make bench (and make fleet, make report, make compare, ...) runs, and what else may use more
BENCH_DIRS = ("runners", "bench", "worker", "export", "models", "flops", "energy", "report", "compare",
              "runstore", "host", "fleet")
EVAL_DIRS = ("evaluation",)
OTHER_DIRS = ("tests", "benchmarks", "scripts")


def requirement_names(path: Path) -> set[str]:
    """The distribution names a requirement file lists (lower case, ``_`` as ``-``)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            found = re.match(r"[A-Za-z0-9._-]+", line)
            assert found, line
            names.add(found.group(0).lower().replace("_", "-"))
    return names


def requirement_lines(path: Path) -> list[str]:
    """A file's requirements as pyproject.toml would write them (quotes and spaces aside)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return sorted(re.sub(r"[\s'\"]", "", line) for line in lines if line)


def sets() -> dict[str, set[str]]:
    found = {"bench": requirement_names(REPO / "requirements.txt")}
    for path in sorted(REPO.glob("requirements-*.txt")):
        found[path.stem.removeprefix("requirements-")] = requirement_names(path)
    return found


def test_the_bench_set_installs_no_test_or_lint_tool():
    """What make bench and make fleet put on a board: none of the tools, nor the other sets."""
    found = sets()
    assert set(found) == {"bench", "dev", "eval", "dynamo", *RUNTIME_SETS}
    for runtime in RUNTIME_SETS:
        assert DISTRIBUTION.get(OPTIONAL[runtime].module, OPTIONAL[runtime].module) in found[runtime], runtime
        assert not found["bench"] & found[runtime], runtime  # installed only when asked for
    assert found["dev"] == TOOLS
    assert found["eval"] == {"scikit-learn", "soundfile"}
    assert found["dynamo"] == {"onnxscript"}
    assert not found["bench"] & (TOOLS | found["eval"] | found["dynamo"]), found["bench"]
    assert {"scipy", "safetensors", "onnx", "transformers"} <= found["bench"]
    # set-up installs requirements.txt and no other requirement file
    setup = (REPO / "scripts" / "setup_env.sh").read_text()
    assert re.findall(r"pip install [^\n]*-r (\S+)", setup) == ["requirements.txt"]


def test_pyproject_says_the_same_as_the_requirement_files():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    normalise = lambda reqs: sorted(re.sub(r"[\s'\"]", "", r) for r in reqs)
    assert normalise(project["dependencies"]) == requirement_lines(REPO / "requirements.txt")
    for name in ("dev", "eval", "dynamo", *RUNTIME_SETS):
        assert normalise(project["optional-dependencies"][name]) == requirement_lines(REPO / f"requirements-{name}.txt")


def local_modules(folder: Path) -> set[str]:
    """Names a file in ``folder`` imports from the repository: the root's packages and modules, and
    its own folder's (a script's folder is on its path)."""
    names = set()
    for base in {REPO, folder}:
        names |= {p.stem for p in base.glob("*.py")} | {p.name for p in base.iterdir() if (p / "__init__.py").exists()}
    return names | {p.name for p in REPO.iterdir() if p.is_dir() and any(p.glob("*.py"))}


def third_party_imports(dirs: tuple[str, ...]) -> dict[str, set[str]]:
    """Distribution name -> the files under ``dirs`` that import it (at any depth of the code)."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        for path in sorted((REPO / d).rglob("*.py")):
            local = local_modules(path.parent)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    tops = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    found.setdefault(DISTRIBUTION.get(top, top).lower(), set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_package_is_declared_in_the_set_of_the_code_that_imports_it():
    found = sets()
    nvidia = {"nvidia-ml-py"}  # optional: GPU energy through NVML (the nvidia extra)
    bench_ok = found["bench"] | BY_SETUP | nvidia | set().union(*(found[r] for r in RUNTIME_SETS))
    bench_code = third_party_imports(BENCH_DIRS)
    eval_code = third_party_imports(EVAL_DIRS)
    other_code = third_party_imports(OTHER_DIRS)
    # the walk sees the imports this check is about, inside functions too
    assert {"torch", "onnx", "scipy", "safetensors", "tabulate", "onnx-tool"} <= set(bench_code), sorted(bench_code)
    assert {"scikit-learn", "soundfile", "scipy"} <= set(eval_code), sorted(eval_code)
    assert {"pytest", "soundfile"} <= set(other_code), sorted(other_code)

    undeclared = {k: v for k, v in bench_code.items() if k not in bench_ok}
    assert not undeclared, f"make bench's code imports packages outside requirements.txt: {undeclared}"
    undeclared = {k: v for k, v in eval_code.items() if k not in bench_ok | found["eval"]}
    assert not undeclared, f"make eval's code imports packages outside requirements(-eval).txt: {undeclared}"
    everything = set().union(*found.values()) | BY_SETUP | nvidia
    undeclared = {k: v for k, v in other_code.items() if k not in everything}
    assert not undeclared, f"imported but in no requirement file: {undeclared}"
    for name in BY_SETUP:
        assert name in (REPO / "scripts" / "setup_env.sh").read_text(), name


def test_make_bench_code_does_not_import_the_evaluation():
    """make eval's packages stay off boards only while the suite's code never imports evaluation/."""
    importers = []
    for d in BENCH_DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "evaluation":
                    importers.append(str(path.relative_to(REPO)))
                elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "evaluation" for a in node.names):
                    importers.append(str(path.relative_to(REPO)))
    assert importers == []


def test_make_targets_install_the_sets_they_need():
    """make -n (nothing runs): make test and make lint add the tools, make eval the evaluation's
    set, EXPORTER=dynamo onnxscript; make bench and make fleet install make bench's set only."""
    def installs(*args: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("EXPORTER", "SETS", "MAKEFLAGS", "MFLAGS")}
        out = subprocess.run(["make", "-n", *args, "VENV=/nonexistent/venv", "DATA=x"], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if "setup_env.sh" in line or "pip install" in line]

    setup = "VENV=/nonexistent/venv ./scripts/setup_env.sh"
    pip = "/nonexistent/venv/bin/python -m pip install --quiet -r "
    assert installs("bench") == [setup]
    assert installs("fleet") == [setup]
    assert installs("report") == [setup]
    assert installs("test") == [setup, pip + "requirements-dev.txt", pip + "requirements-eval.txt"]
    assert installs("lint") == [setup, pip + "requirements-dev.txt"]
    for target in ("eval", "demo-data", "speech-data"):
        assert installs(target) == [setup, pip + "requirements-eval.txt"], target
    assert installs("bench", "EXPORTER=dynamo") == [setup, pip + "requirements-dynamo.txt"]
    assert installs("export", "EXPORTER=dynamo") == [setup, pip + "requirements-dynamo.txt"]
    assert installs("setup", "SETS=dev") == [setup, pip + "requirements-dev.txt"]


def run_board_job(tmp_path: Path, exporter: str | None) -> list[str]:
    """fleet/job.sh as a board runs it, on a code folder whose set-up and Python only log what they
    are asked to do: the set-up call, pip's arguments, then the suite's start."""
    code, run, log = tmp_path / "code", tmp_path / "run", tmp_path / "calls.log"
    (code / "scripts").mkdir(parents=True)
    run.mkdir()
    for path in REPO.glob("requirements*.txt"):
        (code / path.name).write_text(path.read_text())
    fake_python = tmp_path / "fake-python"
    fake_python.write_text("#!/bin/sh\n"
                           f'if [ "$1" = -c ]; then echo "python -c (the suite)"; else echo "python $*"; fi >> {log}\n')
    setup = code / "scripts" / "setup_env.sh"
    setup.write_text(f'#!/bin/sh\necho setup_env.sh >> {log}\nmkdir -p "$VENV/bin"\ncp {fake_python} "$VENV/bin/python"\n')
    for path in (fake_python, setup):
        path.chmod(0o755)
    (run / "env").write_text(f"export EXPORTER={exporter}\n" if exporter else "")
    subprocess.run(["sh", str(REPO / "fleet" / "job.sh"), str(run), str(code), str(tmp_path / "venv"), "rpi",
                    str(tmp_path / "results")], check=True, capture_output=True, timeout=60)
    assert (run / "exit").read_text().strip() == "0", (run / "exit").read_text()
    return log.read_text().splitlines()


def test_make_fleet_sets_a_board_up_with_the_bench_set_only(tmp_path):
    assert run_board_job(tmp_path, None) == ["setup_env.sh", "python -c (the suite)"]


def test_make_fleet_with_the_dynamo_exporter_adds_onnxscript(tmp_path):
    assert run_board_job(tmp_path, "dynamo") == [
        "setup_env.sh", "python -m pip install --quiet -r requirements-dynamo.txt", "python -c (the suite)"]
