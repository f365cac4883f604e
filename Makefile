# Every target sets up what it needs: a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY       := $(VENV)/bin/python
SRC      := layers/common/uploadcare_s3_copy ops functions devkit tests scripts bench

.PHONY: help venv sam-venv test lint types unit integration demo soak lock clean

help:
	@echo "make demo   - the whole flow on loopback (moto server + local Uploadcare emulator), no AWS account"
	@echo "make test   - lint, types and every test suite (sets up .venv on first run)"
	@echo "make test-sam-local - the built functions in a Lambda-like container (real sam local invoke; needs Docker or root)"
	@echo "make soak   - fault soak at full size: 1,000 files through both functions with faults (about 3 minutes)"
	@echo "make bench  - performance against an obvious-way baseline webhook (a few minutes; README, Performance)"
	@echo "make invoke FUNCTION=WebhookFunction EVENT=events/<file>.json - one function in-process against local servers"
	@echo "make iac-scan - checkov over template.yaml (also part of make test)"
	@echo "make lock   - re-pin requirements/dev.txt from requirements/dev.in"
	@echo "make clean  - remove virtualenvs and build output"

# The dev venv also has the project installed (editable) for its `uploadcare-s3-copy` command; code changes need no
# reinstall, a change to pyproject.toml's [project] table does: `make clean venv`.
$(VENV)/.stamp: requirements/dev.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV) requirements/dev.txt --with-project

$(SAM_VENV)/.stamp: requirements/sam.txt
	scripts/make-venv.sh $(SAM_VENV) requirements/sam.txt

venv: $(VENV)/.stamp
sam-venv: $(SAM_VENV)/.stamp

test: lint types unit devtools integration template template-check iac-scan sam-build layer-check

lint: venv
	$(VENV)/bin/ruff check $(SRC)
	$(VENV)/bin/ruff format --check $(SRC)

types: venv
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest tests/unit

# Tests of the dev tooling (bench statistics, the sam-local check's parsing), apart from the product's unit tests.
devtools: venv
	$(PY) -m pytest tests/devtools

integration: venv
	$(PY) -m pytest tests/integration

demo: venv
	$(PY) -m devkit.demo

# The fault soak at full size (`make test` runs a reduced one): prints a summary table; SOAK_ARGS="--seed N" replays.
soak: venv
	$(PY) -m devkit.soak --files 1000 $(SOAK_ARGS)

# The benchmark (not a test, not in `make test`): tables on stdout, bench/results.json and bench/throughput.png, in a
# few minutes. BENCH_ARGS="--quick" tries it out; BENCH_ARGS="--files 1000" runs 1,000 files at every concurrency.
.PHONY: bench
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

# `sam local invoke` without Docker: make invoke FUNCTION=WebhookFunction EVENT=events/webhook-file-uploaded.json
FUNCTION ?= WebhookFunction
EVENT    ?= events/webhook-file-uploaded.json
.PHONY: invoke
invoke: venv
	$(PY) -m devkit.invoke $(FUNCTION) -e $(EVENT)

# The SAM application, offline: its own tests, cfn-lint (exits 2 on errors and 4 on warnings only; make fails on
# both), `sam validate --lint`, and a real `sam build` for arm64 (sam checks that python3.13 is on the PATH).
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
           AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
.PHONY: template template-check sam-build

template: venv
	$(PY) -m pytest tests/template

template-check: venv sam-venv
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint

# Checkov over the template, offline (--skip-download: nothing is fetched from its platform). Any finding fails
# the build unless template.yaml suppresses it on the resource with its reason (Metadata: checkov: skip).
# Checkov has a virtualenv of its own: its pins conflict with requirements/dev.txt.
.PHONY: iac-scan
$(CHECKOV_VENV)/.stamp: requirements/checkov.txt
	scripts/make-venv.sh $(CHECKOV_VENV) requirements/checkov.txt

iac-scan: $(CHECKOV_VENV)/.stamp
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
	  --skip-download --compact --quiet

sam-build: sam-venv
	PATH="$$(dirname "$$(scripts/find-python.sh)"):$$PATH" $(SAM_ENV) \
	  $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build --parameter-overrides Architecture=arm64

# What the build packed into the common layer: the functions' package and its pinned dependencies, no CLI.
layer-check: venv
	$(PY) -m pytest tests/build

# Real `sam local invoke` of the built functions in a Lambda-like container, against a moto server and the Uploadcare
# emulator on the Docker bridge. Uses this machine's Docker engine, else (root + apt-get) a private one it starts and
# stops; SAM_LOCAL_OPTIONAL=1 skips it where neither is possible. See scripts/sam-local/run.sh.
.PHONY: test-sam-local
test-sam-local: venv sam-venv
	scripts/sam-local/run.sh

lock: venv
	$(PY) -m pip install --quiet -r requirements/dev.in
	{ echo '# Full pinned development environment (generated from dev.in with `make lock`; do not edit by hand).'; \
	  $(PY) -m pip freeze --exclude-editable; } > requirements/dev.txt  # the project itself is installed editable

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
