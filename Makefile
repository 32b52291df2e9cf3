# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")

.PHONY: install browser demo lint test test-fast clean

$(BIN)/drp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel here; a looser spec would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/drp

install: $(BIN)/drp

demo: install
	$(BIN)/drp run examples/traces.jsonl --policy rules --run-id demo --overwrite
	$(BIN)/drp logs list demo
	$(BIN)/drp logs show demo demo-001
	$(BIN)/drp diff demo demo-001
	$(BIN)/drp stats demo

# A headless Chromium for the report's browser tests: found on this machine or installed (see the script).
browser: install
	$(BIN)/python scripts/ensure_browser.py

# Style: the formatter's layout and ruff's checks (configured in pyproject.toml).
lint: install
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

# Tests run in one worker per core and one more (pytest-xdist): a fifth of a worker's time is spent waiting (on a
# scripted teacher's latency, a subprocess, a deadline), which the extra worker fills. On 2 cores `make test-fast`
# took 154-179 s with 3 workers, 187-197 s with 2 and 198 s with 4. --dist loadgroup spreads tests one by one,
# except the files marked xdist_group, whose expensive module fixtures (a server, a training run) or imports (torch)
# one worker takes on.
# No test reaches the Hugging Face hub (tests/conftest.py sets the same for the process and its children).
# Python's bytecode cache is on for them even where the environment turns it off (PYTHONDONTWRITEBYTECODE): each
# worker otherwise rewrites every test module's asserts again, ~3 s per run. The 25 slowest are listed at the end.
PYTEST := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONDONTWRITEBYTECODE= \
	$(BIN)/python -m pytest -q -rs -n $(TEST_WORKERS) --dist loadgroup --durations=25

test: install
	@chromium="$$($(BIN)/python scripts/ensure_browser.py)" && \
	echo "browser tests use $$chromium" && \
	DRP_CHROMIUM="$$chromium" $(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow and not browser"

clean:
	rm -rf $(VENV) runs .pytest_cache
