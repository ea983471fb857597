# Two commands do all the set-up on a fresh machine:
#   make demo   render the example conversation to WAV on the embedded default
#   make test   run the whole test suite against real Redis, PostgreSQL, S3 server and workers
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test services

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The demo needs no external service: SQLite, a filesystem broker, a local-folder store, and
# the tiny random-weight model (set CSM_MODEL to sesame/csm-1b or a directory for real speech).
demo: $(STAMP)
	CSM_MODEL=$${CSM_MODEL:-tiny} $(VENV)/bin/csm-batch demo

services:
	scripts/ensure-services

test: $(STAMP) services
	$(VENV)/bin/python -m pytest
