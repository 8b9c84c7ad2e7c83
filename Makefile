# The two set-up commands from the README: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.reelflow-installed

.PHONY: demo test lint install lock panel system-deps clean

# constraints.txt pins every dependency (scripts/lock-deps writes it), so pip resolves in one pass.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lock:
	PYTHON=$(PYTHON) bash scripts/lock-deps

demo: $(STAMP)
	$(VENV)/bin/reelflow demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

system-deps:
	bash scripts/install-system-deps.sh

panel: system-deps
	cd ui_ext && npm ci --no-audit --no-fund && npm run build

test: $(STAMP) panel
	$(VENV)/bin/ruff check .
	$(PY) -m pytest; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: that is a failure" >&2; exit $$rc

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache ui_ext/node_modules ui_ext/dist
