# Two commands on a fresh machine: `make app` (set up + launch) and `make test` (set up + test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: app test bench zoo evaluate clean

app: $(VENV)/.runtime
	$(BIN)/python app.py

test: $(VENV)/.dev
	$(BIN)/python -m pytest

bench: $(VENV)/.runtime
	$(BIN)/python benchmarks/attack_speed.py

zoo: $(VENV)/.runtime
	$(BIN)/python -m avdemo.training.build_zoo

evaluate: $(VENV)/.runtime
	$(BIN)/python -m avdemo.evaluation && $(BIN)/python -m avdemo.evaluation.map_attacks && $(BIN)/python -m avdemo.evaluation.masking && $(BIN)/python -m avdemo.evaluation.transfer --sweep && $(BIN)/python -m avdemo.evaluation.findings

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps tinysoundfont==0.3.7
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
