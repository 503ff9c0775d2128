# The developer loop. CI (.ci/run) runs `make check` before the tests.
#   make check        ruff (lint + format check) and mypy (strict, pyproject's config)
#   make test         the whole suite, as the README says
#   make fast         the tests that start no service (seconds)
#   make bench        the benchmark (BENCH_ARGS="--quick" for a short run)
#   make constraints  re-pin deploy/constraints.txt from this environment

PYTHON ?= python
LINTED := serve_app tests loadtests deploy/constraints.py

.PHONY: check lint typecheck test fast bench constraints

check: lint typecheck

lint:
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)

typecheck:
	$(PYTHON) -m mypy serve_app deploy/constraints.py

test:
	$(PYTHON) -m pytest

fast:
	$(PYTHON) -m pytest -q -m "not serve and not cluster and not reliability and not loadtest and not wheel"

bench:
	$(PYTHON) -m loadtests.bench $(BENCH_ARGS)

constraints:
	$(PYTHON) deploy/constraints.py > deploy/constraints.txt
