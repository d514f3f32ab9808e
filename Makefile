# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install, fool a real ImageNet classifier on a bundled photo
#   make test   - create .venv, install, run ruff, mypy --strict and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.hoodwink-installed

.PHONY: install demo test test-fast lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU torch first, so the torch>=2.2 requirement is already met and no CUDA build is pulled.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hoodwink fool examples/images/chelsea.jpg --target goldfish --eps 2/255 --out out/chelsea-goldfish.png
	@echo
	@echo "hoodwink is installed in $(VENV)/. To use it from this shell:"
	@echo "    source $(VENV)/bin/activate     # then: hoodwink --help, python -c 'import hoodwink'"
	@echo "or call $(VENV)/bin/hoodwink and $(VENV)/bin/python directly."

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy --strict src/hoodwink

# Debian's chromium for tests/test_report_browser.py, installed when missing (root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for tests/test_report_browser.py"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		{ $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium; } || \
		echo "warning: could not install chromium; the browser test will skip (fail in CI)."; \
	}

test: lint browser
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) out build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
