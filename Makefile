# Two commands: `make run` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast sandbox lint clean chromium wheel

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/carebot run

# One pytest worker per core (pytest-xdist): each has its own SQLite template and PostgreSQL
# database (tests/conftest.py), so the suite splits cleanly. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

test: $(STAMP) chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The inner loop: SQLite only, without the process-level and browser tests (all in `test`).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow" -k "not postgres" $(PYTEST_ARGS)

# The console's browser tests drive Debian's chromium (never a downloaded browser): install it
# with apt-get when it is missing and we may; otherwise those tests skip and say why.
chromium:
	@test -x $(CHROMIUM) || command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the console's browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	         apt-get install -y -q --no-install-recommends chromium; }; \
	  else echo "chromium is missing and cannot be installed here (needs root and apt-get):" \
	            "the console's browser tests will be skipped"; fi; }
	@# A Chinese font, so the screenshots show 中文 rather than empty boxes (optional).
	@fc-list :lang=zh 2>/dev/null | grep -q . || { [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  fonts-wqy-zenhei >/dev/null 2>&1; } || true
	@# And a colour emoji font, so the scripts' 📅 and ✅ render in the screenshots (optional).
	@fc-list :charset=1f4c5 2>/dev/null | grep -q . || { [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  fonts-noto-color-emoji >/dev/null 2>&1; } || true

# The gates .ci/run passes before the tests: ruff (the rules in pyproject.toml), mypy --strict
# on carebot's code, and mypy on the tests.
lint: $(STAMP)
	$(BIN)/python -m ruff check bot db benchmarks tests
	$(BIN)/python -m mypy --strict
	$(BIN)/python -m mypy --explicit-package-bases tests

# A wheel in dist/ for installing elsewhere (docs/deploy.md). build/ is removed first: setuptools
# copies whatever a stale build/lib holds into the wheel, deleted modules included (the build
# backend, tools/carebot_build.py, does it too, for a pip install from the source tree).
wheel: $(STAMP)
	rm -rf build *.egg-info
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache
