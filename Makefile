# groupgate: the two commands a newcomer needs are `make run` and `make test`.

GO        ?= go
BIN       := bin
FUZZTIME  ?= 30s
# -p 1: one test binary at a time. The pacing tests judge gaps by when the
# simulator's handler runs, and a package compiling or a browser starting
# beside them on a 2-core machine delays a handler by more than the pace
# guard (a short gap that the gateway never made); run alone they hold.
TEST_FLAGS ?= -race -count=1 -timeout 12m -p 1

.PHONY: run test build generate check-generated lint bench fuzz sim clean

## run: build and start the service on the embedded defaults (bbolt file in .data/, built-in TechPass simulator), printing a demo key and curl lines
run: build
	./$(BIN)/groupgate -demo -log-format text

## test: the whole suite (vet, formatting, generated-code drift, race-enabled tests with the fuzz seed corpora, the OpenAPI lint)
test: lint
	$(GO) test $(TEST_FLAGS) ./...

## build: static binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/groupgate ./cmd/groupgate
	CGO_ENABLED=0 $(GO) build -o $(BIN)/techpass-sim ./cmd/techpass-sim

## generate: regenerate api/openapi.gen.go and client/client.gen.go from openapi.yaml
generate:
	$(GO) generate ./api ./client

## lint: go vet and gofmt
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l . 2>&1); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## bench: Go benchmarks, then the load program against the real server and simulator on bbolt (60 s at the real 1 s interval, about 2 minutes), then on PostgreSQL with three replicas (about 4 minutes; needs scripts/install-test-deps.sh); results and the machine go in docs/benchmarks.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/groupgate-bench -v
	$(GO) run ./cmd/groupgate-bench -v -store postgres -replicas 3

## fuzz: run every fuzz target for FUZZTIME each (new corpus entries land in testdata/fuzz)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## sim: run the standalone TechPass simulator
sim:
	$(GO) run ./cmd/techpass-sim

clean:
	rm -rf $(BIN) .data
