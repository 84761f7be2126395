GO ?= go
PROTOC_GEN_GO_VERSION := v1.36.11
GOBIN := $(shell $(GO) env GOPATH)/bin

.PHONY: build run test deps bench proto soak clean

build:
	$(GO) build -o bin/ ./cmd/kraftd ./cmd/kraftctl

# Starts three controllers and three brokers from cmd/kraftd/examples/cluster.properties; Ctrl-C stops them.
run: build
	cmd/kraftd/examples/run-local.sh

# The whole suite: vet, unit tests, the seeded simulation, the process tests and the real Kafka clients,
# then a few seconds of fuzzing for each decoder of bytes that come from disk or the network.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime 10s ./snapshot
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEntries$$' -fuzztime 10s ./api/logfetch

# The Kafka clients test/compat runs (kcat, kafka-python): installed with apt-get when missing and
# running as root; otherwise the script says what to install and fails.
deps:
	bash test/compat/install-clients.sh

# Benchmarks against real kraftd processes: a three-controller quorum (BenchmarkQuorum) and a million
# partitions on three controllers and five brokers (BenchmarkMillionPartitions); figures and method go
# to BENCHMARKS.md.
bench: build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./test/bench/

# Thousands of simulation seeds.
soak:
	$(GO) test -count=1 -timeout 2h ./test/sim/ -seeds 3000

# Regenerates api/metadatapb from api/metadata.proto (protoc from Debian's protobuf-compiler).
proto:
	@command -v protoc >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y protobuf-compiler; } || { echo "install protoc: apt-get install protobuf-compiler"; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	cd api && PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=module=github.com/kraftgo/kraft/api metadata.proto

clean:
	rm -rf bin data kraft-data
