# `make demo` and `make test` work on a fresh machine: they build .venv and install everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench addon clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the pin takes the local CPU build here, the registry's elsewhere.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[neural,dev]"
	# face-alignment would pull opencv-python beside mediapipe's opencv-contrib-python.
	$(PY) -m pip install -q --no-deps face-alignment==1.5.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/livingportrait demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) out build dist *.egg-info
