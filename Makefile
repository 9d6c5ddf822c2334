# runbook: make risky production changes safely.
# `make demo` and `make test` are the two commands the README starts with.

GO        ?= go
BIN       := bin/runbook
PKGS      := ./...
FUZZTIME  ?= 60s
# The whole suite must stay well under CI's limit; this is a backstop, not a budget.
TEST_TIMEOUT ?= 15m

.PHONY: all build test lint fuzz demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/runbook

## test: the whole suite, with the race detector and the fuzz seed corpora.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## lint: formatting and vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

## demo: build and run the example runbook on this machine.
demo: build
	@scripts/demo.sh

clean:
	rm -rf bin .runbook
