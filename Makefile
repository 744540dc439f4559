# The two commands of the quick start: `make demo` and `make test`. Both set up .venv first,
# once: the stamp file below is rebuilt only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo
# The demo: SGD with momentum on digits, float32, the same flags on both sides.
DEMO_FLAGS := --model mlp --dataset digits --optimizer sgd --lr 0.01 --momentum 0.9 \
              --steps 2000 --batch-size 128 --eval-every 250 --dtype float32 --seed 0

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m functional.train $(DEMO_FLAGS) --out $(DEMO)/functional
	$(PY) -m oop.train $(DEMO_FLAGS) --init $(DEMO)/functional/init.safetensors --out $(DEMO)/oop
	$(PY) -m shared.compare $(DEMO)/functional $(DEMO)/oop --plot $(DEMO)/compare.png

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf runs .pytest_cache test-artifacts
