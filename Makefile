# berth — build, install, test. See README.md.
GO        ?= go
PREFIX    ?= /usr/local
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The runtime is linked statically: it is re-executed for every container
# and exec, and a static binary starts faster; its cgo part (the nsenter
# and container-stage constructors, internal/runtime/initstage) needs only
# libc. berth-shim runs the runtime's lifecycle in its own process
# (libseccomp, the constructors), so it is built the same way.
RUNTIME_LDFLAGS := -s -w -X github.com/berth-project/berth/internal/runtime/cli.Version=$(VERSION) -linkmode external -extldflags -static
GOFLAGS_BUILD   := -trimpath -tags osusergo,netgo
# encoding/json as Go's json/v2 implements it (same results, other error
# texts): the v1 decoder builds encoders for every type a struct reaches
# the first time it decodes one, the whole runtime-spec for a config.json,
# which was 2 ms of each container's start. test/runtimetest builds the
# runtime with the same experiment.
RUNTIME_GOEXPERIMENT := jsonv2

.PHONY: all build install deps test test-unit test-root bench fmt vet clean demo test-vm

all: build

build:
	@mkdir -p $(BIN)
	GOEXPERIMENT=$(RUNTIME_GOEXPERIMENT) CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(RUNTIME_LDFLAGS)' -o $(BIN)/berth-runtime ./cmd/berth-runtime
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/probe ./test/probe
	$(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN)/berthd ./cmd/berthd
	$(GO) build -trimpath -ldflags '-s -w -X github.com/berth-project/berth/internal/cli.Version=$(VERSION)' -o $(BIN)/berth ./cmd/berth
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags '-s -w -linkmode external -extldflags -static' -o $(BIN)/berth-shim ./cmd/berth-shim
	$(CC) -static -Os -s -Wall -o $(BIN)/berth-init cmd/berth-init/berth-init.c
	./hack/cni-plugins.sh

install: build
	install -D -m 0755 $(BIN)/berth-runtime $(DESTDIR)$(PREFIX)/bin/berth-runtime
	install -D -m 0755 $(BIN)/berthd $(DESTDIR)$(PREFIX)/bin/berthd
	install -D -m 0755 $(BIN)/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -D -m 0755 $(BIN)/berth-shim $(DESTDIR)$(PREFIX)/bin/berth-shim
	install -D -m 0755 $(BIN)/berth-init $(DESTDIR)$(PREFIX)/bin/berth-init
	install -D -m 0644 contrib/systemd/berthd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/berthd.service
	./hack/cni-plugins.sh --install $(DESTDIR)$(PREFIX)/lib/berth/cni

# Debian packages the build, the main job and the tests need.
deps:
	./hack/deps.sh

# The README's main job: a busybox container run by berth-runtime.
demo: deps build
	./hack/demo.sh

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

# The README's test command: installs what the tests need, then runs every
# test; root tests run when invoked as root (CI does), and skip otherwise.
test: deps build vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	./hack/cni-plugins.sh
	BERTH_RUNTIME=$(CURDIR)/$(BIN)/berth-runtime BERTH_SHIM=$(CURDIR)/$(BIN)/berth-shim BERTH_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -p 1 -count=1 -timeout 40m ./...

# The root suites in a qemu guest with cgroup v2 only and systemd as PID 1
# (cmd/berth-vm): the host layout most machines have and this one lacks.
# The first run downloads the kernel and builds the guest image (minutes);
# later runs boot in seconds. Root only.
test-vm: build
	./hack/deps.sh vm
	./hack/cni-plugins.sh
	$(GO) run ./cmd/berth-vm test --no-build --timeout 75m --test-timeout 30m --pkgs ./internal/linux/...,./internal/engine,./internal/shim,./internal/network/...,./internal/snapshot,./test/... $(VMFLAGS)

bench: build
	./bench/runtime-lifecycle.sh

clean:
	rm -rf $(BIN)
