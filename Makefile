# `make demo` and `make test` work on a fresh machine: they build .venv and install everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test addon blender-venvs node clean

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

# Real Blender as a Python module for the add-on tests: the oldest (4.2 LTS) and newest (5.0) releases
# the extension supports, one venv each (one bpy per environment). No pyzmq there on purpose: the
# installed extension must bring its own wheel.
.venv-bpy42/.installed:
	$(PYTHON) -m venv .venv-bpy42
	.venv-bpy42/bin/pip install -q bpy==4.2.23
	touch $@

.venv-bpy50/.installed:
	$(PYTHON) -m venv .venv-bpy50
	.venv-bpy50/bin/pip install -q bpy==5.0.1
	touch $@

blender-venvs: .venv-bpy42/.installed .venv-bpy50/.installed

# The Blender extension zips, one per platform, under dist/.
addon: $(STAMP)
	$(PY) build_addon.py

# Flamenco job types are JavaScript: the farm tests compile ours under node (20 or newer), installed
# from the distribution when this machine has none.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
node:
	@command -v node >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs; }
	@node --version

test: $(STAMP) blender-venvs node
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .venv-bpy42 .venv-bpy50 out build dist *.egg-info
