# Two commands do everything on a fresh machine:
#   make run    runs the product locally on the sample events
#   make test   runs every check and test
SHELL := /bin/bash
VENV := .venv
PY ?= python3
CARGO ?= cargo
# cargo-lambda (and its zig) come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test venv fmt lint unit cfn-lint validate-policy clean-venv

$(VENV)/.installed: requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(CARGO) run --quiet -p tools --bin local-run

test: venv fmt lint unit cfn-lint

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

cfn-lint: venv
	$(VENV)/bin/cfn-lint template.yaml

# make validate-policy POLICY=my-policy.json
validate-policy:
	$(CARGO) run --quiet -p tools --bin validate-policy -- $(or $(POLICY),shared/policy/default-policy.json)

clean-venv:
	rm -rf $(VENV)
