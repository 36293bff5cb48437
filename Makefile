# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates the virtual environment from requirements*.txt when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
export MCTRACK_MODEL_DIR ?= $(SHARED)/models
export MCTRACK_DATA_DIR ?= $(SHARED)/data
PETS := $(MCTRACK_DATA_DIR)/PETS09-S2L1
OUT ?= runs/demo

.PHONY: demo test bench bench-peers tune clean
BENCH_VENV ?= .venv-bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

demo: $(VENV)/.installed
	$(PY) run.py run --config configs/pets09_mc.yaml --set output.dir=$(OUT)
	$(PY) run.py eval-mc --gt-root $(MCTRACK_DATA_DIR)/PETS09-MC --results $(OUT)

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/update_speed.py

# Peers (BoxMOT, Ultralytics, deep-sort-realtime) live in their own venv: benchmark only.
$(BENCH_VENV)/.installed: requirements-bench.txt requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements-bench.txt
	@touch $@

bench-peers: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/peers.py

tune: $(VENV)/.installed
	$(PY) bench/tune.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs .pytest_cache .ruff_cache bench/.cache
