# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
# Python: the project venv scripts/deps.sh builds from python/requirements.txt (locked, hashed);
# its bin/ comes first in PATH (moto_server, aws, ruff, cargo-lambda). The system Python is untouched.
VENV ?= /var/cache/swarm-lifecycle/venv
export VENV
PYTHON ?= $(VENV)/bin/python
export PYTHON
export PATH := $(VENV)/bin:$(PATH)
EVENT ?= events/lifecycle-launch-worker.json

ARCH ?= x86_64

.PHONY: deps lock deploy-code build status tidy test unit e2e e2e-repeat iam-report demo replay lint infra-check package deploy bench bench-profiles fuzz clean-cloud

deps:
	scripts/deps.sh

## Re-lock python/*.in into python/*.txt (exact versions, every file's hash) with uv.
lock:
	scripts/lock.sh

# --all-targets: the binaries and the tests share one feature set (the SDK's test-util comes
# with the adapter tests), so the SDK crates compile once, not twice.
build:
	cargo build --workspace --all-targets

## The operator's command on your AWS credentials (docs/operate.md, "The operator's command"):
## make status SWARM_CLUSTER=prod SWARM_HOSTED_ZONE_ID=Z0123… [ARGS=--json]; make tidy likewise.
status tidy: build
	$(CARGO_TARGET_DIR)/debug/swarm-lifecycle $@ $(ARGS)

## Unit and adapter tests, then the end-to-end suite on the local cloud.
test: deps lint infra-check build unit e2e

unit: build
	cargo test --workspace

# cargo-lambda too: a scenario runs make deploy-code's script against moto's Lambda.
# E2E_WORKERS local clouds side by side (each in its own network namespace): the scenarios
# mostly wait (holds, agents, propagation), so four share the two cores (76 % busy once the
# local cloud's own CPU was cut; five gained 30 s of 18 minutes: BENCH, "Build and CI time");
# the slowest are listed.
# Never two `pytest -n` runs at once on one machine: their workers share the namespaces' names.
# Scenarios marked `alone` load the machine themselves (23 hosts at once): they run after
# the others, with nothing beside them.
E2E_WORKERS ?= 4
e2e: deps build
	WITH_CARGO_LAMBDA=1 scripts/deps.sh
	$(PYTHON) -m pytest tests/e2e -q -n $(E2E_WORKERS) --dist worksteal --durations=15 -m 'not alone'
	$(PYTHON) -m pytest tests/e2e -q --durations=3 -m alone

## Flakiness: the selected scenarios N times on fresh clouds, pass counts per scenario.
## make e2e-repeat N=5 K='manager_termination or chaos'
e2e-repeat: deps build
	N=$(or $(N),5) K="$(K)" E2E_WORKERS=$(E2E_WORKERS) scripts/e2e-repeat.sh

## Per role of infra/template.yaml: every granted action and how often the scenarios used it
## (after `make e2e`); exit 1 if a grant is unused and carries no reason in the template.
iam-report:
	$(PYTHON) -m localcloud.iam_report

## A 5-node swarm formed and shrunk by the real function, with its timeline. Under 3 minutes.
demo: deps build
	$(PYTHON) -m localcloud.demo

## Replay one event fixture through cargo lambda: make replay EVENT=events/<file>.json
replay:
	WITH_CARGO_LAMBDA=1 scripts/deps.sh
	scripts/replay.sh $(EVENT)

## rustfmt, clippy, shellcheck on every instance script as it is sent (prelude + script, bash)
## and on the project's own scripts, ruff on the Python (ruff.toml); each binary's AWS calls
## against its role in the template (scripts/reachable-actions.py); no import circle between
## swarm-core's modules (scripts/module-cycles.py).
lint:
	WITH_LINT=1 scripts/deps.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/shellcheck.sh
	ruff check localcloud bench tests scripts/iam-lint.py scripts/terraform.py scripts/reachable-actions.py scripts/module-cycles.py
	$(PYTHON) scripts/module-cycles.py
	# The binaries as make build links them (one feature set for binaries and tests: no second
	# resolution of the SDK crates' features); the linker keeps the same AWS calls either way.
	cargo build --workspace --all-targets
	$(PYTHON) scripts/reachable-actions.py

## cfn-lint (and its serverless rules), checkov, parliament and the cfn-guard rules on the templates; the Terraform module checks.
infra-check:
	WITH_INFRA=1 scripts/deps.sh
	scripts/infra-check.sh

## Release zips for provided.al2023 (ARCH=arm64 needs the aarch64 Rust target). The dry path.
package: infra-check
	WITH_CARGO_LAMBDA=1 scripts/deps.sh
	cargo lambda build --release --output-format zip $(if $(filter arm64,$(ARCH)),--arm64,--x86-64)

## Upload and deploy: make deploy STACK=swarm BUCKET=artefacts PARAMS="VpcId=… SubnetIds=a,b,c"
deploy: package
	scripts/deploy.sh

## New code only, for a deployed stack's functions (role, environment, logging kept): cargo lambda deploy.
## make deploy-code CLUSTER=demo — a development shortcut; the next make deploy puts the stack's artefacts back.
deploy-code: package
	scripts/deploy-code.sh

## Release artefacts measured on the local cloud: writes BENCH.md and bench/results.json.
bench: deps package
	$(PYTHON) bench/run.py

## Release-profile variants (opt-level, LTO, codegen-units) built and measured: bench/profiles.json.
bench-profiles:
	$(PYTHON) bench/profiles.py

## cargo-fuzz on the event, command-output and quoting parsers, FUZZ_RUNS each (default 1,000,000),
## then the corpus is minimised in place. `cargo test` replays the committed corpus.
FUZZ_RUNS ?= 1000000
fuzz:
	WITH_CARGO_FUZZ=1 scripts/deps.sh
	cd fuzz && for t in events command_output script_quoting; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t -- -runs=$(FUZZ_RUNS) -max_len=4096 \
	    $$( [ $$t = events ] && echo -dict=events.dict ) || exit 1; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz cmin -O $$t || exit 1; \
	done

## Remove namespaces, links, daemons and mounts a killed local cloud left behind.
clean-cloud:
	$(PYTHON) -m localcloud clean --all-worlds
