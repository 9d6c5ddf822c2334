# runbook: make risky production changes safely.
# `make demo` and `make test` are the two commands the README starts with.

GO        ?= go
BIN       := bin/runbook
PKGS      := ./...
FUZZTIME  ?= 60s
# The whole suite must stay well under CI's limit; this is a backstop, not a budget.
TEST_TIMEOUT ?= 15m

# Packages that run real etcd clusters (and the nginx and canary runbooks' e2e), whose gates and waits measure time:
# on a 2-core machine they must not race each other (or the rest) for the
# CPU, so they run after the rest, one package at a time.
HEAVY_PKGS := ./e2e ./e2e/nginx ./e2e/canary ./internal/labtest ./internal/etcdlab ./internal/etcdload ./internal/etcdctl \
	./modules/check ./modules/etcdfacts ./modules/etcdmove ./modules/snapshot
MODULE = $(shell $(GO) list -m)

.PHONY: all build deps test lint fuzz demo demo-canary demo-restart demo-redis redis-lab redis-lab-down lab-up lab-down lab-status \
	prometheus-up prometheus-down bench bench-upgrade bench-upgrade-series clean nginx-lab nginx-lab-down nginx-lab-status nginx-demo

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

## demo-canary: a canary rollout judged by a local Prometheus, good (exit 0), bad (exit 1, rolled back) and slow (exit 3, inconclusive).
demo-canary: build
	@scripts/demo-canary.sh

## demo-restart: the rolling restart of three small local services (runbooks/rolling-restart.yml).
demo-restart: build
	@scripts/demo.sh

## demo-redis: a Redis primary and two replicas (127.0.0.51-53) rolled to a new config by runbooks/redis-upgrade.yml under write load; 0 acknowledged writes lost.
demo-redis: build
	$(GO) build -o bin/redis-load ./cmd/redis-load
	@scripts/demo-redis.sh

## redis-lab: the Redis lab alone (idempotent); redis-lab-down stops it and removes its data.
redis-lab:
	@scripts/redis-lab.sh up
redis-lab-down:
	@scripts/redis-lab.sh down

## lab-up: a 3-member etcd 3.6.16 cluster on 127.0.0.11-13 (Linux), idempotent; it runs until lab-down.
lab-up:
	@scripts/lab.sh up

## lab-down: stop the lab's members and remove its data (make lab-down KEEP_DATA=1 keeps the data).
lab-down:
	@KEEP_DATA=$(KEEP_DATA) scripts/lab.sh down

## lab-status: each lab member's process, versions, role and health.
lab-status:
	@scripts/lab.sh status

## prometheus-up: one Prometheus on 127.0.0.1:19090 scraping the lab and the demo services every 1s (stops by itself after 1h).
prometheus-up:
	@scripts/prometheus-lab.sh up

## prometheus-down: stop the lab's Prometheus and remove its data.
prometheus-down:
	@scripts/prometheus-lab.sh down

## bench: runbook over SSH beside raw x/crypto/ssh on 10, 100 and 1000 in-process hosts and 10 and 100 hosts served by OpenSSH: wall time, tool/floor ratio, peak RSS.
bench:
	@scripts/bench.sh

## bench-upgrade: the etcd upgrade under write load, by runbook (every gate on) and by a plain script, beside the idle cluster, each on a fresh lab (127.0.0.91-93): wall time, member outages, failed, lost and slow writes, explained from the members' logs.
bench-upgrade:
	@if [ -n "$(BENCH_RUNS)" ]; then BENCH_RUNS=$(BENCH_RUNS) scripts/bench-upgrade-series.sh; else scripts/bench-upgrade.sh; fi

## bench-upgrade-series: the runbook's upgrade under 200 writes/s BENCH_RUNS times (default 10), each on a fresh lab, all runs in one table with the cause of every failed or slow write (BENCH_SERIES_WAY=plain: the plain script's, as a control; BENCH_SERIES_WAY=moves: one leadership move a run and no upgrade, what the move alone costs).
bench-upgrade-series:
	@BENCH_RUNS=$(or $(BENCH_RUNS),10) scripts/bench-upgrade-series.sh

## nginx-lab: three nginx instances on 127.0.0.41-43:8080 serving version 1 (idempotent); they stop by themselves after 2h.
nginx-lab:
	@scripts/nginx-lab.sh up

## nginx-lab-down: stop the nginx lab and remove it.
nginx-lab-down:
	@scripts/nginx-lab.sh down

## nginx-lab-status: what each nginx lab instance serves.
nginx-lab-status:
	@scripts/nginx-lab.sh status

## nginx-demo: push a new nginx.conf (make nginx-demo NGINX_VERSION=3) to the nginx lab with runbooks/nginx-config.yml, canary first.
NGINX_VERSION ?= 2
nginx-demo: build
	@scripts/nginx-lab.sh up
	$(BIN) exec runbooks/nginx-config.yml -i runbooks/inventory/nginx-lab.yml --yes -e version=$(NGINX_VERSION)
	@scripts/nginx-lab.sh status

# clean stops the lab first: its members run from .runbook/lab.
clean:
	@scripts/lab.sh down
	@scripts/redis-lab.sh down 2>/dev/null || true
	@scripts/nginx-lab.sh down
	rm -rf bin .runbook
