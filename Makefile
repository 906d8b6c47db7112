# Two commands do everything on a fresh machine:
#   make run    runs the product locally on the sample events
#   make test   runs every check and test
SHELL := /bin/bash
VENV := .venv
# checkov lives in its own venv: its pins (boto3, packaging, networkx) clash with aws-sam-cli's
# and cfn-lint's (requirements-checkov.txt).
CKV_VENV := .venv-checkov
PY ?= python3
CARGO ?= cargo
# cargo-lambda (and its zig) come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# template.yaml uses AWS::LanguageExtensions (Fn::ForEach): SAM CLI expands it locally only when
# asked (sam build/deploy --language-extensions, or this variable); without it `sam build` fails
# on the loops.
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS := 1

.PHONY: run test deps venv venv-checkov fmt lint unit cfn-lint sam-validate checkov checkov-skips \
	template-checks template-resources-update build sam-build sizes validate-policy clean-venv \
	bench-ledger-properties bench browser checkov-cargo-lambda-base deploy-cargo-lambda

# The eight Lambda functions (binary = package name).
FUNCTIONS := card-tokenization banking-antifraud full-balance-antifraud zero-balance \
	aritma-events event-files event-stream ledger-reconciler

$(VENV)/.installed: requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

$(CKV_VENV)/.installed: requirements-checkov.txt
	$(PY) -m venv $(CKV_VENV)
	$(CKV_VENV)/bin/pip install --quiet --upgrade pip
	$(CKV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

venv-checkov: $(CKV_VENV)/.installed

# Replays the samples, then keeps serving until Ctrl-C (printing each function's URL and a
# `issuer-kit signer send` line per webhook sample). ONCE=1 replays and exits; without a terminal
# it exits too, unless STAY=1.
run: venv
	ONCE=$(ONCE) STAY=$(STAY) $(CARGO) run --quiet -p tools --bin local-run

test: venv browser fmt lint deps unit cfn-lint sam-validate checkov checkov-skips template-checks \
	checkov-cargo-lambda-base

# Headless Chromium for tests/tests/labels_report.rs (it renders the HTML rule report), from
# Debian's packages when missing (needs root).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# One crypto stack in every function (josekit on OpenSSL for RS256, rustls 0.23 on aws-lc-rs for
# all TLS), no duplicated crypto crate, and no development code (shared's dev feature).
deps:
	$(PY) tools/check_deps.py

cfn-lint: venv
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/cfn-lint deploy/cargo-lambda-base.yaml

# Offline, no credentials: the region only names the partition.
sam-validate: venv
	AWS_DEFAULT_REGION=us-east-1 $(VENV)/bin/sam validate --lint --template template.yaml

# checkov on template.yaml (CloudFormation framework), offline: no Bridgecrew/Prisma API, no
# guideline download. Fails on any failed check, and also on a parsing error or an empty scan,
# which checkov itself exits 0 on. Skips with reasons: docs/deploying.md.
# checkov 3.x does not expand Fn::ForEach (it would skip every resource a loop makes), so it
# scans the template with the loops expanded (tools/expand_template.py), as CloudFormation
# expands them before the SAM transform.
checkov: venv venv-checkov
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(VENV)/bin/python tools/expand_template.py template.yaml $$tmp/template.yaml || exit 1; \
	  out=$$(cd $$tmp && BC_SKIP_MAPPING=TRUE CKV_NO_GUIDE=1 $(CURDIR)/$(CKV_VENV)/bin/checkov \
	    -f template.yaml --framework cloudformation --quiet --compact --skip-download 2>&1); rc=$$?; \
	  echo "$$out"; \
	  [ $$rc -eq 0 ] && ! grep -q 'Parsing errors' <<<"$$out" && grep -q 'Passed checks: [1-9]' <<<"$$out"

# Every checkov skip in template.yaml (loops expanded, as checkov reads it) has a one-sentence
# reason.
checkov-skips: venv
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(VENV)/bin/python tools/expand_template.py template.yaml $$tmp/template.yaml || exit 1; \
	  $(VENV)/bin/python tools/check_checkov_skips.py $$tmp/template.yaml

# The resources of the expanded template (Fn::ForEach, then SAM) are exactly those of
# tests/template_resources.txt (template-resources-update rewrites the list from the template:
# review the diff), and every metric the dashboard names is one the functions write
# (shared/src/metrics.rs CATALOG).
template-checks: venv
	$(VENV)/bin/python tools/check_template_resources.py template.yaml tests/template_resources.txt
	$(VENV)/bin/python tools/check_dashboard_metrics.py template.yaml shared/src/metrics.rs

template-resources-update: venv
	$(VENV)/bin/python tools/check_template_resources.py --write template.yaml tests/template_resources.txt

# The ledger's generated combined-fault property test, longer than in `make test` (12 cases):
# make bench-ledger-properties CASES=500 (docs/benchmarks.md records a run).
bench-ledger-properties: venv
	LEDGER_PROPERTY_CASES=$(or $(CASES),300) $(CARGO) test -p integration-tests \
	  --test ledger_properties money_matches -- --nocapture

# The speed figures of docs/benchmarks.md, on this machine's release build (the profile in
# Cargo.toml): the webhooks in process (p50/p99, their floor, DynamoDB requests per decision on
# moto), the event file's CPU path on a generated 10 MB gzip file (formats asserted), gunzip
# alone for comparison, and each function's time to ready.
BENCH_FILE ?= target/bench/events.gz
bench: venv
	$(CARGO) build --release -p tools --bin bench-webhooks --bin bench-pipeline --bin bench-init
	$(CARGO) build --release $(addprefix -p ,$(FUNCTIONS))
	target/release/bench-webhooks
	mkdir -p $(dir $(BENCH_FILE))
	test -f $(BENCH_FILE) || target/release/bench-pipeline generate --out $(BENCH_FILE)
	target/release/bench-pipeline gunzip --file $(BENCH_FILE)
	target/release/bench-pipeline cpu --file $(BENCH_FILE)
	target/release/bench-init --dir target/release

# make validate-policy POLICY=my-policy.json
validate-policy:
	$(CARGO) run --quiet -p tools --bin issuer-kit -- validate-policy $(or $(POLICY),shared/policy/default-policy.json)

# The operator CLI, `issuer-kit`, into ~/.cargo/bin (`issuer-kit --help` lists its commands).
.PHONY: install
install:
	$(CARGO) install --locked --path tools --bin issuer-kit

# arm64 bootstrap zips for every function in target/lambda/<name>/bootstrap.zip (zig and
# cargo-lambda from the venv; OpenSSL is vendored for aarch64 in shared/Cargo.toml).
build: venv
	rustup target add aarch64-unknown-linux-gnu
	$(CARGO) lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@$(MAKE) --no-print-directory sizes

sizes:
	@for f in $(FUNCTIONS); do \
	  printf '%-24s bootstrap %9s B   zip %9s B\n' $$f \
	    $$(stat -c %s target/aarch64-unknown-linux-gnu/release/$$f) \
	    $$(stat -c %s target/lambda/$$f/bootstrap.zip); \
	done

# sam build (rust-cargolambda) of template.yaml into .aws-sam/.
sam-build: venv
	$(VENV)/bin/sam build --template template.yaml

clean-venv:
	rm -rf $(VENV) $(CKV_VENV)

# checkov on deploy/cargo-lambda-base.yaml (plain CloudFormation, no loops to expand), offline,
# failing as `checkov` does (failed check, parsing error or empty scan).
checkov-cargo-lambda-base: venv-checkov
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp deploy/cargo-lambda-base.yaml $$tmp/; \
	  out=$$(cd $$tmp && BC_SKIP_MAPPING=TRUE CKV_NO_GUIDE=1 $(CURDIR)/$(CKV_VENV)/bin/checkov \
	    -f cargo-lambda-base.yaml --framework cloudformation --quiet --compact --skip-download 2>&1); rc=$$?; \
	  echo "$$out"; \
	  [ $$rc -eq 0 ] && ! grep -q 'Parsing errors' <<<"$$out" && grep -q 'Passed checks: [1-9]' <<<"$$out"

# The cargo lambda deploy path: base stack, build, one `cargo lambda deploy` per function
# (deploy/cargo-lambda.sh; settings such as PISMO_CERTS_URL from the environment). DRY_RUN=1
# prints the commands without AWS: make deploy-cargo-lambda STACK=issuer-kit-cl DRY_RUN=1
deploy-cargo-lambda: venv
	STACK=$(STACK) DRY_RUN=$(DRY_RUN) deploy/cargo-lambda.sh
