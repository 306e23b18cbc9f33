# Everything runs inside .venv, created on first use from python3 alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The template's functions; `sam build` runs `make build-<Function>` (BuildMethod: makefile).
FUNCTIONS := AlarmFunction SlackFunction InvokeFunction StepFunction
LAMBDA_PYTHON := 3.13
LAMBDA_PLATFORM := manylinux2014_aarch64

.PHONY: test demo lint bench clean $(addprefix build-,$(FUNCTIONS))

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint infra/template.yaml

demo: $(STAMP)
	$(BIN)/fireline demo

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# What the functions run: the runtime dependencies from pyproject.toml, as wheels for
# Lambda's arm64 Python, and Fireline's own packages with the runbooks beside them.
$(addprefix build-,$(FUNCTIONS)):
	@test -n "$(ARTIFACTS_DIR)" || (echo "ARTIFACTS_DIR is set by sam build" && exit 1)
	$(PYTHON) -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > "$(ARTIFACTS_DIR)/.requirements.txt"
	$(PYTHON) -m pip install --quiet --no-warn-conflicts --target "$(ARTIFACTS_DIR)" --only-binary=:all: \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) \
		-r "$(ARTIFACTS_DIR)/.requirements.txt"
	rm "$(ARTIFACTS_DIR)/.requirements.txt"
	cp -R fireline handlers playbooks runbooks "$(ARTIFACTS_DIR)/"
	rm -rf "$(ARTIFACTS_DIR)/fireline/local"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -prune -exec rm -rf {} +
	@# Lambda's /var/task is read-only: without .pyc files every cold start compiles the
	@# sources again (70-100 ms). Only Lambda's own Python version writes ones it uses
	@# (`sam build --use-container` has it); checked-hash, as a zip keeps mtimes to 2 s.
	@if $(PYTHON) -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" != "$(LAMBDA_PYTHON)")'; then \
		$(PYTHON) -m compileall -q -j 0 --invalidation-mode checked-hash "$(ARTIFACTS_DIR)"; \
	else \
		echo "no .pyc files: this Python is not $(LAMBDA_PYTHON) (sam build --use-container)"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
