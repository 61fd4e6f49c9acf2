# wavebench: `make bench` (set up, export, run the lab suite) and `make test`.
# Settings are make variables, passed to the Python command line as environment variables:
#   DEVICE=cpu|rpi|jetson|gpu|auto MODELS=a,b RUNTIMES=pytorch,onnxruntime PROVIDERS=...
#   BATCH_SIZES=1,2,4,8 DURATIONS=1,2,4,8,16 REPS=10 THREADS=N ENERGY=auto|none|<sensor>
#   QUICK=1 GRID=1 FRESH=1 RESULTS_DIR=results ARTIFACTS_DIR= EXPORTER=torchscript|dynamo
#   ORDER=interleaved|grouped REMEASURE=drift SPEEDUP_CI=0.15 SPEEDUP_BASE=pytorch MIN_TIME= MAX_TIME= CI_TARGET=
#   CELL_TIMEOUT=
# Each is defined once in setting_defs/table.py (flag, default, valid values, whether make fleet
# forwards it); tests/test_setting_defs.py checks this export list against it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wavebench-setup
# the sets a target needs beyond make bench's (requirements-<set>.txt), each installed once on demand
DEV := $(VENV)/.wavebench-set-dev
EVAL := $(VENV)/.wavebench-set-eval
DYNAMO := $(if $(filter dynamo,$(EXPORTER)),$(VENV)/.wavebench-set-dynamo)
DEVICE ?= auto

export DEVICE MODELS RUNTIMES PROVIDERS BATCH_SIZES DURATIONS REPS THREADS VARIANTS ENERGY \
       QUICK GRID FRESH LONG_RNN TINY RESULTS_DIR ONNX_DIR ARTIFACTS_DIR EXPORTER CPU_WATTS WEIGHTS ORT_OPT NO_PEAK FLOPS_DIR \
       ORDER REMEASURE SPEEDUP_CI SPEEDUP_BASE MIN_TIME MAX_TIME CI_TARGET CELL_TIMEOUT
# make fleet's own variables (fleet/cli.py)
export HOSTS FLEET STOP POLL LOCK_TIMEOUT RECONNECT_TIMEOUT ALLOW_DIRTY SSH_CONFIG

.PHONY: setup setup-runtimes export bench test lint sensors compare report flops eval demo-data speech-data help fleet

help:
	@echo "make bench   set up, export and benchmark the lab suite (DEVICE=$(DEVICE))"
	@echo "make setup-runtimes RUNTIMES=openvino,executorch,litert   install an optional runtime (all: every one)"
	@echo "make export  build the models and export them to ONNX (checked against PyTorch)"
	@echo "make export RUNTIMES=executorch,litert DEVICE=rpi   per-shape ExecuTorch programs / LiteRT models for a board, with a manifest"
	@echo "make test    set up and run the tests"
	@echo "make lint    ruff over the tree, mypy over the run store, harness and runtimes"
	@echo "make sensors list the energy sensors found here, what is missing and how to fix it"
	@echo "make compare RESULTS=dir,dir BY=device|run|runtime|variant   results side by side"
	@echo "make fleet   HOSTS=user@host:profile,... (or FLEET=fleet.toml): the suite on several boards over SSH"
	@echo "make report RUN=results/<device>/<run_id>   re-write a run's tables, plots and report"
	@echo "make flops   MACs/FLOPs from the ONNX graphs (MODELS= DURATIONS= BATCH_SIZES=)"
	@echo "make demo-data; make eval DATA=results/demo-data   accuracy vs efficiency on labelled audio"
	@echo "make speech-data   spoken words (espeak-ng) labelled by word and by voice: results/speech-data"

$(STAMP): requirements.txt scripts/setup_env.sh
	VENV=$(VENV) ./scripts/setup_env.sh
	@touch $(STAMP)

# an optional set on top of make bench's (a new requirements.txt or set-up reinstalls it too)
$(VENV)/.wavebench-set-%: requirements-%.txt $(STAMP)
	$(PY) -m pip install --quiet -r $<
	@touch $@

# make setup SETS=dev,eval: make bench's set, and those on top (what CI's other Pythons run)
comma := ,
setup: $(STAMP) $(foreach s,$(subst $(comma), ,$(SETS)),$(VENV)/.wavebench-set-$(s))

# the optional runtimes (requirements-<runtime>.txt: openvino, executorch, litert), installed only when
# asked for (executorch and litert with pip --no-deps: runners/runtimes/packages.py); make bench RUNTIMES=...,openvino
# refuses to start without them and names this target
setup-runtimes: $(STAMP)
	$(PY) -m runners.runtimes.packages $(or $(RUNTIMES),all)

export: $(STAMP) $(DYNAMO)
	$(PY) -m export

# the command as typed, for run.json (variables given on the command line; QUICK=1 make bench
# style environment settings are in run.json's settings)
bench: $(STAMP) $(DYNAMO)
	WAVEBENCH_COMMAND='make bench $(MAKEOVERRIDES)' $(PY) -m runners

test: $(STAMP) $(DEV) $(EVAL)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

sensors: $(STAMP)
	$(PY) -m energy

compare: $(STAMP)
	$(PY) -m compare $(if $(RESULTS),--results $(RESULTS)) $(if $(BY),--by $(BY)) $(if $(BASE),--base $(BASE)) $(if $(OUT),--out $(OUT))

flops: $(STAMP)
	$(PY) -m flops

demo-data: $(STAMP) $(EVAL)
	$(PY) -m evaluation.demo_data $(or $(OUT),results/demo-data)

# spoken words synthesised here (needs espeak-ng; VOICES=all adds flite's voices); SEED=, VOICES=
speech-data: $(STAMP) $(EVAL)
	$(PY) -m evaluation.speech_data $(or $(OUT),results/speech-data) $(if $(SEED),--seed $(SEED)) $(if $(VOICES),--voices $(VOICES))

eval: $(STAMP) $(EVAL)
	@test -n "$(DATA)" || { echo "make eval: set DATA=<folder or manifest.csv> (try: make demo-data; make eval DATA=results/demo-data)" >&2; exit 2; }
	$(PY) -m evaluation --data $(DATA) $(if $(BENCH_RUN),--bench-run $(BENCH_RUN)) $(if $(LIMIT_PER_CLASS),--limit-per-class $(LIMIT_PER_CLASS))

fleet: $(STAMP)
	$(PY) -m fleet

report: $(STAMP)
	$(PY) -m report $(RUN)
