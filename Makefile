# semiland: two commands on a fresh machine — `make demo` and `make test` (each sets everything up first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test test-slow test-all lint format bench lock clean browser faults

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)  ## train + evaluate on the Dubai data (else synthetic), write report.html
	$(VENV)/bin/semiland demo $(ARGS)

test: $(STAMP) browser  ## fast + real-data tiers (real-data tests skip cleanly without ../shared/data)
	$(PY) -m pytest -q -ra $(ARGS)

browser:  ## Debian's chromium + chromium-driver for the report checks (tests/test_browser.py skips without them)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 && echo "installed chromium") || \
	  echo "chromium not installed (needs apt-get as root): the browser checks will be skipped"

test-slow: $(STAMP)  ## short training runs that must learn, and the GPU scripts end to end
	$(PY) -m pytest -q -ra -m slow $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -ra -m "slow or not slow" $(ARGS)

faults: $(STAMP)  ## SIGKILL training / prediction at random moments, fill a disk (docs/reliability.md)
	$(PY) scripts/fault_checks.py -o runs/faults $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check semiland tests
	$(VENV)/bin/ruff format --check semiland tests

format: $(STAMP)
	$(VENV)/bin/ruff format semiland tests
	$(VENV)/bin/ruff check --fix semiland tests

bench: $(STAMP)  ## engine vs plain PyTorch training throughput
	$(VENV)/bin/semiland bench train-speed $(ARGS)

lock: $(STAMP)  ## re-pin every package from the current environment
	{ head -2 requirements.lock; $(PY) -m pip freeze --exclude-editable | grep -v '^semiland'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
