# Diffusion Lab. `make run` serves the app; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
CHROMIUM ?= /usr/bin/chromium
NPM ?= npm
SITE_DIR ?= site
# onnxruntime-web for Create's browser mode and the static site: pinned by web/package-lock.json,
# copied into web/app/vendor/ by npm (web/scripts/vendor.mjs) and served by the app itself
WEB_VENDOR := web/app/vendor/manifest.json

.PHONY: run install install-dev test test-fast lint chromium bench clean web node site

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.dev-installed

run: install web
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

$(WEB_VENDOR): web/package.json web/package-lock.json web/scripts/vendor.mjs
	cd web && $(NPM) ci --no-audit --no-fund --ignore-scripts && $(NPM) run --silent vendor
	@test -f $@ && touch $@

# The npm files when npm is here; without it (or offline before the first install) the app
# still runs and Create draws on the server, and says so.
web:
	@if command -v $(NPM) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(WEB_VENDOR) || \
	  echo "npm ci failed: Create will draw on the server only (browser mode needs web/app/vendor)"; \
	else echo "npm is missing: Create will draw on the server only (install Node.js and npm for browser mode)"; fi

# Node.js and npm for make test, the way chromium comes: Debian packages when root.
node:
	@if command -v $(NPM) >/dev/null 2>&1; then echo "npm: $$(command -v $(NPM))"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
	else echo "npm is missing and we are not root: the browser-mode tests will be skipped"; fi

# The static site to hand out (Create in the browser, the forward scrubber): any static host
# serves it, e.g. python -m http.server -d $(SITE_DIR)
site: install web
	$(PY) -m diffusion_core export-site $(SITE_DIR)

chromium:
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "chromium is missing and we are not root: browser tests will be skipped"; fi

# A class on one machine without Docker: app replicas behind Debian's nginx with cookie
# affinity (deploy/README.md). CLASS_ARGS, e.g. "--replicas 3 --host 0.0.0.0 --port 8080".
.PHONY: class nginx
class: install nginx
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "nginx is missing: install it (apt-get install nginx)"; exit 1; }
	$(PY) -m deploy.local $(CLASS_ARGS)

# nginx for `make class` and the deploy tests (tests/test_deploy.py skips without it).
nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then echo "nginx: present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; \
	else echo "nginx is missing and we are not root: the deploy tests will be skipped"; fi

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/hadolint Dockerfile

test: install-dev chromium nginx node lint
	@$(MAKE) --no-print-directory web
	$(PY) -m pytest -q -p no:cacheprovider

# The inner loop: unit and AppTest tests only, under 90 s on 2 cores. Browser, server and
# subprocess tests (markers browser, system) and the long statistical checks (slow) are left
# to make test.
test-fast: install-dev
	$(PY) -m pytest -q -p no:cacheprovider -m "not browser and not system and not slow"

bench: install-dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
