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

.PHONY: setup demo test test-portable lint drift cnn rnn char gpt bench docs traps clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m functional.train $(DEMO_FLAGS) --overwrite --out $(DEMO)/functional
	$(PY) -m oop.train $(DEMO_FLAGS) --overwrite --init $(DEMO)/functional/init.safetensors --out $(DEMO)/oop
	$(PY) -m shared.compare $(DEMO)/functional $(DEMO)/oop --plot $(DEMO)/compare.png

test: $(STAMP)
	$(PY) -m pytest

# The float32 tests again under kernels capped to older CPUs, so that the suite is shown to pass
# on machines other than this one: AVX2 at one thread per worker (xdist), SSE4.2 serially at the
# libraries' default thread count (two on the 2-core CI machine). The caps reach torch (ATen),
# MKL, oneDNN and XLA; tests/test_portable.py checks that torch took its cap.
AVX2_CAPS  := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \
              XLA_FLAGS=--xla_cpu_max_isa=AVX2
SSE42_CAPS := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 \
              XLA_FLAGS=--xla_cpu_max_isa=SSE4_2
test-portable: $(STAMP)
	$(AVX2_CAPS) PARADIGMS_CAPS=avx2 $(PY) -m pytest -m float32 -n 2
	$(SSE42_CAPS) PARADIGMS_CAPS=default $(PY) -m pytest -m float32 -n 0

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The float32 drift figures of docs/models/mlp.md: 3000 steps under SGD and under Adam.
DRIFT_FLAGS := --dataset digits --steps 3000 --eval-every 0 --dtype float32 --no-progress --overwrite
drift: $(STAMP)
	$(PY) -m functional.train $(DRIFT_FLAGS) --optimizer sgd --lr 0.01 --momentum 0.9 --out runs/drift-sgd/functional
	$(PY) -m oop.train $(DRIFT_FLAGS) --optimizer sgd --lr 0.01 --momentum 0.9 --out runs/drift-sgd/oop \
		--init runs/drift-sgd/functional/init.safetensors
	$(PY) -m shared.compare runs/drift-sgd/functional runs/drift-sgd/oop --plot docs/figures/drift-sgd.png
	$(PY) -m functional.train $(DRIFT_FLAGS) --optimizer adam --lr 0.001 --out runs/drift-adam/functional
	$(PY) -m oop.train $(DRIFT_FLAGS) --optimizer adam --lr 0.001 --out runs/drift-adam/oop \
		--init runs/drift-adam/functional/init.safetensors
	$(PY) -m shared.compare runs/drift-adam/functional runs/drift-adam/oop --plot docs/figures/drift-adam.png

# The cnn_bn figures of docs/models/cnn_bn.md (about 12 minutes): mnist5k, float32, batch 512, under
# SGD with momentum and under Adam; each with a control, the OOP side from an init one ulp away.
CNN_FLAGS := --model cnn_bn --dataset mnist5k --batch-size 512 --steps 400 --eval-every 50 \
             --dtype float32 --no-progress --overwrite
define cnn_figure
	$(PY) -m functional.train $(CNN_FLAGS) $(2) --out runs/cnn-$(1)/functional
	$(PY) -m oop.train $(CNN_FLAGS) $(2) --out runs/cnn-$(1)/oop \
		--init runs/cnn-$(1)/functional/init.safetensors
	$(PY) -m oop.train $(CNN_FLAGS) $(2) --out runs/cnn-$(1)/control --jitter-init \
		--init runs/cnn-$(1)/functional/init.safetensors
	$(PY) -m shared.compare runs/cnn-$(1)/functional runs/cnn-$(1)/oop \
		--control runs/cnn-$(1)/control --plot docs/figures/cnn_bn-mnist5k-$(1).png
endef
cnn: $(STAMP)
	$(call cnn_figure,sgd,--optimizer sgd --lr 0.005 --momentum 0.9)
	$(call cnn_figure,adam,--optimizer adam --lr 0.001)

# The adding-problem figures of docs/models/rnn.md (about 10 minutes): GRU and LSTM at length 50,
# Adam lr 3e-3, float32, both sides from one init.
RNN_FLAGS := --dataset adding --steps 2000 --eval-every 250 --lr 0.003 --no-progress --overwrite
define rnn_figure
	$(PY) -m functional.train --model $(1) $(RNN_FLAGS) --out runs/$(1)-adding/functional
	$(PY) -m oop.train --model $(1) $(RNN_FLAGS) --out runs/$(1)-adding/oop \
		--init runs/$(1)-adding/functional/init.safetensors
	$(PY) -m shared.compare runs/$(1)-adding/functional runs/$(1)-adding/oop \
		--plot docs/figures/$(1)-adding.png
endef
rnn: $(STAMP)
	$(call rnn_figure,gru)
	$(call rnn_figure,lstm)

# The character model of docs/models/rnn.md (about 10 minutes): a 2-layer GRU on pycorpus, both
# sides from one init, the compare figure, and greedy text from each side from the OOP run's
# checkpoint (the same text).
CHAR_FLAGS := --model gru --dataset pycorpus --layers 2 --width 128 --batch-size 64 --lr 0.003 \
              --steps 1000 --eval-every 250 --no-progress --overwrite
char: $(STAMP)
	$(PY) -m functional.train $(CHAR_FLAGS) --out runs/gru-pycorpus/functional
	$(PY) -m oop.train $(CHAR_FLAGS) --out runs/gru-pycorpus/oop \
		--init runs/gru-pycorpus/functional/init.safetensors
	$(PY) -m shared.compare runs/gru-pycorpus/functional runs/gru-pycorpus/oop \
		--plot docs/figures/gru-pycorpus.png
	$(PY) -m shared.ngram
	$(PY) -m functional.sample --checkpoint runs/gru-pycorpus/oop/final.safetensors --temperature 0
	$(PY) -m oop.sample --checkpoint runs/gru-pycorpus/oop/final.safetensors --temperature 0

# The GPT-mini of docs/models/gpt.md (about 27 minutes): the default model (4 blocks, 4 heads,
# width 128, block 128) on pycorpus under AdamW with warmup-cosine and clipping, both sides from
# one init, a control (the OOP side one ulp away), the compare figure, and greedy text from each side from the OOP run's checkpoint (the
# same text).
GPT_FLAGS := --model gpt --dataset pycorpus --batch-size 32 --steps 1500 --eval-every 100 \
             --optimizer adamw --lr 0.002 --beta2 0.99 --weight-decay 0.1 \
             --no-decay '*.bias,*ln_*,wte.weight,wpe.weight' --schedule cosine \
             --warmup-steps 100 --eta-min 0.0001 --clip-norm 1.0 --no-progress --overwrite
gpt: $(STAMP)
	$(PY) -m functional.train $(GPT_FLAGS) --out runs/gpt-pycorpus/functional
	$(PY) -m oop.train $(GPT_FLAGS) --out runs/gpt-pycorpus/oop \
		--init runs/gpt-pycorpus/functional/init.safetensors
	$(PY) -m oop.train $(GPT_FLAGS) --out runs/gpt-pycorpus/control --jitter-init \
		--init runs/gpt-pycorpus/functional/init.safetensors
	$(PY) -m shared.compare runs/gpt-pycorpus/functional runs/gpt-pycorpus/oop \
		--control runs/gpt-pycorpus/control --plot docs/figures/gpt-pycorpus.png
	$(PY) -m functional.sample --checkpoint runs/gpt-pycorpus/oop/final.safetensors --temperature 0
	$(PY) -m oop.sample --checkpoint runs/gpt-pycorpus/oop/final.safetensors --temperature 0

# The paired benchmarks of docs/benchmarks.md (about 30 minutes): every model, each side at its
# best, every side that has the model (shared.sides: the grid's corners have three), interleaved
# side after side, twice, so that drift of a shared machine cancels in the ratios; then the
# report rewrites the table block of docs/benchmarks.md and the chart. The plan, one model per
# line as NAME STEPS REPEATS, is shared/registry.py's.
bench: $(STAMP)
	rm -rf runs/bench && mkdir -p runs/bench
	$(PY) -m shared.registry --bench | while read m steps repeats; do \
		f="--steps $$steps --repeats $$repeats"; \
		for i in 1 2; do \
			sides=$$($(PY) -m shared.sides --having $$m) || exit 1; \
			for side in $$sides; do \
				$(PY) -m $$side.bench --model $$m $$f --out runs/bench/$$m-$$side-$$i.json || exit 1; \
			done; \
		done; \
	done
	$(PY) -m shared.bench.report runs/bench/*.json --into docs/benchmarks.md --png docs/figures/benchmarks.png

# The side-by-side reader: docs/site/, one aligned page per pair of twin files, the MLP ladder
# per side and an index; open docs/site/index.html in a browser (no server needed).
docs: $(STAMP)
	$(PY) -m tools.reader --out docs/site

# One figure per trap of docs/traps.md (naive vs fixed divergence), and the table of gaps.
traps: $(STAMP)
	$(PY) -m tools.render_traps --out docs/figures/traps

clean:
	rm -rf runs .pytest_cache test-artifacts
