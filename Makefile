# dockroute: the two commands a newcomer needs are `make run` and `make test`.

GO          ?= go
HELLO_IMAGE := dockroute/hello:dev
HELLO_HEALTH_IMAGE := dockroute/hello-health:dev
ORACLE_SRC  := ../shared/tools/traefik-oracle
ORACLE      := $(CURDIR)/bin/traefik-oracle
CADDY_VERSION := v2.11.9
CADDY_CURRENT := $(CURDIR)/bin/caddy-$(CADDY_VERSION)
CADDY_DEBIAN  := /usr/bin/caddy
TRAEFIK_SRC   := ../shared/tools/traefik
TRAEFIK_VERSION := v3.7.13
TRAEFIK       := $(CURDIR)/bin/traefik-$(TRAEFIK_VERSION)
FUZZTIME    ?= 30s
ARGS        ?=

IMAGE       := dockroute/dockroute:dev
GO_IMAGE    := golang:1.26
STANDIN     := bash compose/standins/standin.sh

.PHONY: run build image goimage test lint hello oracle caddy traefik standins bench fuzz clean

## run: follow the local Docker engine and write Traefik config to ./dynamic
run: build
	exec bin/dockroute run $(ARGS)

## build: the dockroute binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o bin/dockroute ./cmd/dockroute

## image: the dockroute image, as a user's `docker build .` or compose's
## `build:` makes it (compiled in the golang image, then FROM scratch)
image: goimage
	docker build -q -t $(IMAGE) . >/dev/null

## goimage: the golang image the Dockerfiles compile in: pulled, or where no
## registry answers, a stand-in from this machine's Go
goimage:
	@$(STANDIN) $(GO_IMAGE) "$$($(GO) env GOROOT)" go

## test: formatting, vet, and both lanes with -race: the unit tests and the
## end-to-end ones (-tags e2e: real Docker, real Traefik and its oracle, both
## Caddys). `go test ./...` alone is the unit lane: seconds, no Docker.
test: lint hello image oracle caddy traefik standins
	DOCKROUTE_ORACLE=$(ORACLE) DOCKROUTE_CADDY=$(CADDY_DEBIAN),$(CADDY_CURRENT) DOCKROUTE_TRAEFIK=$(TRAEFIK) \
	  $(GO) test -tags e2e -race -count=1 -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

## hello: the examples/hello image (compiled in the golang image, then FROM scratch)
hello: goimage
	docker build -q -t $(HELLO_IMAGE) examples/hello >/dev/null
	docker build -q -t $(HELLO_HEALTH_IMAGE) -f examples/hello/Dockerfile.health examples/hello >/dev/null

## oracle: Traefik v3's own file provider and router, to check what we write
oracle: $(ORACLE)
$(ORACLE): $(wildcard $(ORACLE_SRC)/*.go $(ORACLE_SRC)/build.sh)
	@if [ ! -f $(ORACLE_SRC)/build.sh ]; then \
	  echo "Traefik oracle not found at $(ORACLE_SRC); run tests with DOCKROUTE_SKIP_ORACLE=1 to skip its checks"; \
	  [ "$$DOCKROUTE_SKIP_ORACLE" = 1 ] || exit 1; \
	else bash $(ORACLE_SRC)/build.sh $(ORACLE) >/dev/null; fi

## traefik: the real Traefik the end-to-end tests run, built once from the
## module proxy by ../shared/tools/traefik (about 8 minutes the first time)
traefik: $(TRAEFIK)
$(TRAEFIK):
	@if [ ! -f $(TRAEFIK_SRC)/build.sh ]; then \
	  echo "Traefik build script not found at $(TRAEFIK_SRC); run tests with DOCKROUTE_SKIP_TRAEFIK=1 to skip the real-Traefik tests"; \
	  [ "$$DOCKROUTE_SKIP_TRAEFIK" = 1 ] || exit 1; \
	else TRAEFIK_VERSION=$(TRAEFIK_VERSION) bash $(TRAEFIK_SRC)/build.sh $@.tmp >/dev/null && mv $@.tmp $@; fi

## caddy: the two Caddys the tests run against: Debian's 2.6.2 (installed by
## .ci/run with apt-get) and a pinned current release built from the module proxy
caddy: $(CADDY_CURRENT)
	@test -x $(CADDY_DEBIAN) || { echo "Debian's caddy is missing: apt-get install -y caddy (.ci/run does it)"; exit 1; }
$(CADDY_CURRENT):
	CGO_ENABLED=0 GOBIN=$(CURDIR)/bin/caddy-build $(GO) install github.com/caddyserver/caddy/v2/cmd/caddy@$(CADDY_VERSION)
	mv $(CURDIR)/bin/caddy-build/caddy $@ && rmdir $(CURDIR)/bin/caddy-build

## standins: the images the compose stacks name (traefik:v3, caddy:2) and
## the Dockerfiles build in (golang:1.26): a real image by that name is used
## as it is, else pulled; where no registry answers (here), a stand-in is
## built FROM scratch with the binaries above
standins: caddy traefik goimage
	@$(STANDIN) traefik:v3 $(TRAEFIK) traefik
	@$(STANDIN) caddy:2 $(CADDY_CURRENT) caddy

## bench: benchmarks (route table, render, Docker resync at scale), one
## package at a time: run side by side, they took each other's cores
bench: hello oracle caddy traefik
	DOCKROUTE_ORACLE=$(ORACLE) DOCKROUTE_CADDY=$(CADDY_DEBIAN),$(CADDY_CURRENT) DOCKROUTE_TRAEFIK=$(TRAEFIK) \
	  $(GO) test -tags e2e -p 1 -run '^$$' -bench . -benchmem -timeout 30m ./...

## fuzz: each fuzz target for FUZZTIME (seed corpora live in testdata/)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseSpec -fuzztime $(FUZZTIME) ./provider/contract
	$(GO) test -run '^$$' -fuzz FuzzTraefikLabels -fuzztime $(FUZZTIME) ./provider/contract
	$(GO) test -run '^$$' -fuzz FuzzIdleLabel -fuzztime $(FUZZTIME) ./provider/contract
	@# Its seeds are whole inspect answers (5 kB): minimizing a new input for
	@# Go's default of 60 s took most of a short run.
	$(GO) test -run '^$$' -fuzz FuzzInspectAnswer -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./provider/docker/engine
	$(GO) test -run '^$$' -fuzz FuzzListAnswer -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./provider/docker/engine
	$(GO) test -run '^$$' -fuzz FuzzFromPath -fuzztime $(FUZZTIME) ./render/hold
	$(GO) test -run '^$$' -fuzz FuzzNamed -fuzztime $(FUZZTIME) ./render/hold
	$(GO) test -run '^$$' -fuzz FuzzRender -fuzztime $(FUZZTIME) ./render/traefik
	$(GO) test -run '^$$' -fuzz FuzzPlanTLS -fuzztime $(FUZZTIME) ./render/caddy
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./provider/static
	$(GO) test -run '^$$' -fuzz 'FuzzParse$$' -fuzztime $(FUZZTIME) ./render/middleware
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./render/auth
	$(GO) test -run '^$$' -fuzz FuzzParseMiddlewares -fuzztime $(FUZZTIME) ./provider/route
	$(GO) test -run '^$$' -fuzz FuzzAnswer -fuzztime $(FUZZTIME) ./render/caddy/lookup
	$(GO) test -run '^$$' -fuzz FuzzConfigFile -fuzztime $(FUZZTIME) ./cmd/dockroute

clean:
	rm -rf bin dynamic
