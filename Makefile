# Every target sets up what it needs: a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
LOCK_VENV := .venv-lock
PY       := $(VENV)/bin/python
SRC      := layers/common/uploadcare_s3_copy ops functions devkit tests scripts bench

.PHONY: help venv sam-venv test lint types unit devtools integration demo soak lock clean layer-check

help: ## this list: every target, with what it does
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z0-9_-]+:[^#]*## / {printf "make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The dev venv also has the project installed (editable) for its `uploadcare-s3-copy` command; code changes need no
# reinstall, a change to pyproject.toml's [project] table does: `make clean venv`.
$(VENV)/.stamp: requirements/dev.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV) requirements/dev.txt --with-project

$(SAM_VENV)/.stamp: requirements/sam.txt
	scripts/make-venv.sh $(SAM_VENV) requirements/sam.txt

venv: $(VENV)/.stamp ## the development virtualenv .venv (with the project installed, editable)
sam-venv: $(SAM_VENV)/.stamp ## the SAM CLI in its own virtualenv, .venv-sam

test: lint types unit devtools integration template template-check iac-scan sam-build layer-check ## lint, types and every test suite (what CI runs, with test-sam-local)

lint: venv ## ruff check and ruff format --check (what pre-commit runs)
	$(VENV)/bin/ruff check $(SRC)
	$(VENV)/bin/ruff format --check $(SRC)

types: venv ## mypy, strict
	$(VENV)/bin/mypy

unit: venv ## the unit tests (no network)
	$(PY) -m pytest tests/unit

# Tests of the dev tooling (bench statistics, the sam-local check's parsing), apart from the product's unit tests.
devtools: venv ## the tests of the dev tooling (bench statistics, the sam-local check)
	$(PY) -m pytest tests/devtools

integration: venv ## the integration tests (real HTTP on loopback: moto server, Uploadcare emulator)
	$(PY) -m pytest tests/integration

demo: venv ## the whole flow on loopback (moto server + local Uploadcare emulator), no AWS account
	$(PY) -m devkit.demo

# The fault soak at full size (`make test` runs a reduced one): prints a summary table; SOAK_ARGS="--seed N" replays,
# SOAK_ARGS="--aws-faults" also fails AWS calls under both functions, every wait real (about 7.5 minutes);
# SOAK_ARGS="--lost-webhooks" never delivers 10 % of the webhooks: a reconcile run must find them, then audit.
soak: venv ## fault soak at full size: 1,000 files through both functions with faults (about 3 minutes)
	$(PY) -m devkit.soak --files 1000 $(SOAK_ARGS)

# The benchmark (not a test, not in `make test`): tables on stdout, bench/results.json and bench/throughput.png, in a
# few minutes. BENCH_ARGS="--quick" tries it out; BENCH_ARGS="--files 1000" runs 1,000 files at every concurrency.
.PHONY: bench
bench: venv ## performance against an obvious-way baseline; writes docs/performance.md (a few minutes)
	$(PY) -m bench.run $(BENCH_ARGS)

# A local stack that stays up between commands (moto + the Uploadcare emulator in the background, the stack built
# from template.yaml and published as the CloudFormation stack `uploadcare-s3-copy` on moto): `source .local-stack/env`
# then points a shell's `uploadcare-s3-copy` at it. LOCAL_STACK_DIR chooses another state folder.
.PHONY: up down drain
up: venv ## start moto + the emulator in the background with the stack and sample files; prints the env to source
	$(PY) -m devkit.up up

down: venv ## stop what `make up` started and remove its state folder (no process or port left)
	$(PY) -m devkit.up down

drain: venv ## run the copier over the running stack's copy queue once and say what it did
	$(PY) -m devkit.up drain

# `sam local invoke` without Docker: make invoke FUNCTION=WebhookFunction EVENT=events/webhook-file-uploaded.json;
# RUNNING=1 invokes it against the stack `make up` keeps running instead of a new one.
FUNCTION ?= WebhookFunction
EVENT    ?= events/webhook-file-uploaded.json
.PHONY: invoke
invoke: venv ## one function in-process against local servers: FUNCTION=WebhookFunction EVENT=events/<file>.json [RUNNING=1]
	$(PY) -m devkit.invoke $(FUNCTION) -e $(EVENT) $(if $(RUNNING),--running)

# The SAM application, offline: its own tests, cfn-lint (exits 2 on errors and 4 on warnings only; make fails on
# both), `sam validate --lint`, and a real `sam build` for arm64 (sam checks that python3.13 is on the PATH).
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
           AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
.PHONY: template template-check sam-build

template: venv ## the template's own tests (tests/template)
	$(PY) -m pytest tests/template

template-check: venv sam-venv ## cfn-lint and sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint

# Checkov over the template, offline (--skip-download: nothing is fetched from its platform). Any finding fails
# the build unless template.yaml suppresses it on the resource with its reason (Metadata: checkov: skip).
# Checkov has a virtualenv of its own: its pins conflict with requirements/dev.txt.
.PHONY: iac-scan
$(CHECKOV_VENV)/.stamp: requirements/checkov.txt
	scripts/make-venv.sh $(CHECKOV_VENV) requirements/checkov.txt

iac-scan: $(CHECKOV_VENV)/.stamp ## checkov over template.yaml (also part of make test)
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
	  --skip-download --compact --quiet

sam-build: sam-venv ## sam build for arm64 into .aws-sam/build
	PATH="$$(dirname "$$(scripts/find-python.sh)"):$$PATH" $(SAM_ENV) \
	  $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build --parameter-overrides Architecture=arm64

# What the build packed into the common layer: the functions' package and its pinned dependencies, no CLI.
layer-check: venv ## what sam build packed into the common layer: its package and pinned dependencies, no CLI
	$(PY) -m pytest tests/layer

# Real `sam local invoke` of the built functions in a Lambda-like container, against a moto server and the Uploadcare
# emulator on the Docker bridge. Uses this machine's Docker engine, else (root + apt-get) a private one it starts and
# stops; SAM_LOCAL_OPTIONAL=1 skips it where neither is possible. See scripts/sam-local/run.sh.
.PHONY: test-sam-local
test-sam-local: venv sam-venv ## the built functions in a Lambda-like container (real sam local invoke; needs Docker or root)
	scripts/sam-local/run.sh

# Deploying with the project's own SAM CLI (.venv-sam; no global `sam` needed), telemetry off. `make deploy` asks
# every parameter the first time and saves the answers in samconfig.toml; GUIDED= deploys with the saved answers.
GUIDED ?= --guided
SAM_RUN := PATH="$$(dirname "$$(scripts/find-python.sh)"):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
.PHONY: deploy delete e2e
deploy: sam-venv ## sam build && sam deploy --guided to your AWS account, with the project's SAM CLI (no telemetry)
	$(SAM_RUN) build
	$(SAM_RUN) deploy $(GUIDED)

delete: sam-venv ## sam delete: removes the deployed stack (the copy ledger table and your bucket stay)
	$(SAM_RUN) delete $(if $(STACK),--stack-name $(STACK))

# Against a real AWS account and Uploadcare project: deploys a throwaway stack, uploads a file, waits for the proof,
# audits and deletes everything (also on failure). Without the credentials it prints one skip line and exits 0.
e2e: venv ## the real thing, end to end, in your AWS account and Uploadcare project (docs/e2e.md); skipped without credentials
	$(PY) -m devkit.e2e

lock: venv $(LOCK_VENV)/.stamp ## re-pin requirements/dev.txt from dev.in, then the layer's requirements.txt from it
	$(PY) -m pip install --quiet -r requirements/dev.in
	{ echo '# Full pinned development environment (generated from dev.in with `make lock`; do not edit by hand).'; \
	  $(PY) -m pip freeze --exclude-editable; } > requirements/dev.txt  # the project itself is installed editable
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links -c requirements/dev.txt \
	  -o layers/common/requirements.txt layers/common/requirements.in

# pip-tools for `make lock`, in a virtualenv of its own (it is not a dependency of the code).
$(LOCK_VENV)/.stamp: requirements/lock.txt
	scripts/make-venv.sh $(LOCK_VENV) requirements/lock.txt

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(LOCK_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
