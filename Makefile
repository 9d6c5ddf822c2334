# runbook: make risky production changes safely.
# `make demo` and `make test` are the two commands the README starts with.

GO        ?= go
BIN       := bin/runbook
PKGS      := ./...
FUZZTIME  ?= 60s
# The whole suite must stay well under CI's limit; this is a backstop, not a budget.
TEST_TIMEOUT ?= 15m

# Packages that run real etcd clusters, whose gates and waits measure time:
# on a 2-core machine they must not race each other (or the rest) for the
# CPU, so they run after the rest, one package at a time.
HEAVY_PKGS := ./e2e ./internal/labtest ./internal/etcdlab ./internal/etcdload ./internal/etcdctl \
	./modules/check ./modules/etcdfacts ./modules/etcdmove ./modules/snapshot
MODULE = $(shell $(GO) list -m)

.PHONY: all build deps test lint fuzz demo demo-restart lab-up lab-down lab-status bench bench-upgrade clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/runbook

## deps: what the tests need on a fresh Debian machine (idempotent: a second run does nothing).
deps:
	@scripts/deps.sh

## test: the whole suite, with the race detector and the fuzz seed corpora:
## first every package but the etcd ones, in parallel; then those, one at a time.
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) \
		$$($(GO) list $(PKGS) | grep -v -x -F $(foreach p,$(HEAVY_PKGS),-e $(MODULE)/$(patsubst ./%,%,$(p))))
	$(GO) test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) $(HEAVY_PKGS)

## lint: formatting and vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

## demo: the flagship: a 3-member etcd lab under write load, upgraded 3.6.16 → 3.7.3 by runbooks/upgrade-etcd.yml, with a report.
demo: build
	@scripts/demo-etcd.sh

## demo-restart: the rolling restart of three small local services (runbooks/rolling-restart.yml).
demo-restart: build
	@scripts/demo.sh

## lab-up: a 3-member etcd 3.6.16 cluster on 127.0.0.11-13 (Linux), idempotent; it runs until lab-down.
lab-up:
	@scripts/lab.sh up

## lab-down: stop the lab's members and remove its data (make lab-down KEEP_DATA=1 keeps the data).
lab-down:
	@KEEP_DATA=$(KEEP_DATA) scripts/lab.sh down

## lab-status: each lab member's process, versions, role and health.
lab-status:
	@scripts/lab.sh status

## bench: runbook over SSH beside raw x/crypto/ssh on 10, 100 and 500 in-process hosts: wall time, tool/floor ratio, peak RSS.
bench:
	@scripts/bench.sh

## bench-upgrade: the etcd upgrade under write load, by runbook (every gate on) and by a plain script, beside the idle cluster, each on a fresh lab (127.0.0.91-93): wall time, member outages, failed, lost and slow writes, explained from the members' logs.
bench-upgrade:
	@scripts/bench-upgrade.sh

# clean stops the lab first: its members run from .runbook/lab.
clean:
	@scripts/lab.sh down
	rm -rf bin .runbook
