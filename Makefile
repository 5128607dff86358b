# genzoo: `make demo` trains a VAE on the built-in digits and leaves pictures; `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo-vae

.PHONY: demo test install clean

$(BIN)/genzoo: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: the local CPU wheel, never a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/genzoo

demo: install
	rm -rf $(DEMO_OUT)
	$(BIN)/genzoo train vae --data digits --steps 3000 --out $(DEMO_OUT) --set train.sample_every=500
	@echo "pictures to look at: $(DEMO_OUT)/showcase/*.png and $(DEMO_OUT)/samples/*.png"

test: install
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) runs
