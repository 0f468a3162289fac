# pgrollup — see README.md.
#
#   make build       bin/pgrollup (cmd/proxy) and bin/pgrollup-worker (cmd/worker)
#   make test        install missing Debian packages and build MinIO once, go vet, staticcheck, go test
#                    (with PGROLLUP_REQUIRE_POSTGRES=1: a test that needs Postgres fails without it, never skips)
#   make test-long   the same tests with PGROLLUP_LONG=1 (longer, heavier cases)
#   make demo        a throw-away Postgres with a shop dataset and pgrollup in front of it
#   make bench       pgbench -S directly, through PgBouncer and through pgrollup: tps, CPU µs per
#                    transaction and latency added, 1/16/64 clients, simple and prepared (about 6 minutes)
#   make bench-serving  answers from rollups: directly on Postgres, through pgrollup and on DuckDB alone
#   make bench-outage   what pgrollup serves while Postgres is stopped
#   make bench-memory  memory per idle client (pgrollup vs PgBouncer), and per pathological statement
#   make bench-corpus  how much of a corpus of real BI tools' and generators' SQL rollups serve (e2e/testdata/corpus)
#   make bench-ssb   the Star Schema Benchmark's 13 queries directly on Postgres and through pgrollup
#   make bench-freshness  live answers (lambda rollups, exact edges) under an insert stream, against the plain rollup path and Postgres
#   make fmt         gofmt -s -w
#   make lint        gofmt check, go vet, staticcheck, bash -n on the scripts
#   make clean       remove bin/ and the demo's data

GO ?= go

# go test settings; e.g. make test GOTESTFLAGS='-run TestPgbench -v'
TEST_TIMEOUT ?= 20m
LONG_TEST_TIMEOUT ?= 60m
GOTESTFLAGS ?=

# make bench BENCH_DURATION=30s BENCH_SCALE=50 BENCH_FLAGS='-clients 1,16,64,128 -rounds 5'
# BENCH_DURATION is each pgbench run's length; unset, each benchmark's own
# default applies (make bench: 5s, make bench-serving: 10s).
BENCH_DURATION ?=
BENCH_SCALE ?= 10
BENCH_FLAGS ?=

# make demo DEMO_FLAGS='-orders 1000000'
DEMO_FLAGS ?=

SHELL_SCRIPTS := .ci/run $(wildcard scripts/*.sh)

.PHONY: all build test test-long vet staticcheck lint fmt demo bench clean

all: build

build:
	$(GO) build -o bin/pgrollup ./cmd/proxy
	$(GO) build -o bin/pgrollup-worker ./cmd/worker

test:
	GO=$(GO) bash scripts/deps.sh
	$(GO) vet ./...
	bash scripts/staticcheck.sh ./...
	PGROLLUP_REQUIRE_POSTGRES=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...
	# The proxy's sessions once more, each served by a goroutine pair (event_loop: false).
	PGROLLUP_TEST_EVENT_LOOP=0 PGROLLUP_REQUIRE_POSTGRES=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./proxy

test-long:
	GO=$(GO) bash scripts/deps.sh
	PGROLLUP_LONG=1 PGROLLUP_REQUIRE_POSTGRES=1 $(GO) test -count=1 -timeout $(LONG_TEST_TIMEOUT) $(GOTESTFLAGS) ./...

vet:
	$(GO) vet ./...

staticcheck:
	bash scripts/staticcheck.sh ./...

fmt:
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

lint:
	@unformatted=$$(gofmt -s -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt -s needed on:"; echo "$$unformatted"; exit 1; fi
	for f in $(SHELL_SCRIPTS); do bash -n $$f || exit 1; done
	$(GO) vet ./...
	bash scripts/staticcheck.sh ./...

demo: build
	bash scripts/deps.sh postgres
	$(GO) build -o bin/pgrollup-demo ./demo
	bin/pgrollup-demo -pgrollup bin/pgrollup $(DEMO_FLAGS)

bench: build
	bash scripts/deps.sh postgres pgbouncer
	$(GO) build -o bin/pgrollup-bench ./bench/pgbench
	bin/pgrollup-bench -pgrollup bin/pgrollup $(if $(BENCH_DURATION),-duration $(BENCH_DURATION)) -scale $(BENCH_SCALE) $(BENCH_FLAGS)

clean:
	rm -rf bin data/demo

# Serving benchmarks (bench/serving): a dashboard directly on Postgres, through
# pgrollup and on DuckDB alone, then pgbench of rollup hits against materialized views.
# make bench-serving SERVING_FLAGS='-rows 2000000 -runs 3 -duration 5s -rounds 3'
SERVING_FLAGS ?=

.PHONY: bench-serving
bench-serving: build
	bash scripts/deps.sh postgres
	$(GO) build -o bin/pgrollup-bench-serving ./bench/serving
	bin/pgrollup-bench-serving -pgrollup bin/pgrollup $(if $(BENCH_DURATION),-duration $(BENCH_DURATION)) $(SERVING_FLAGS)

# Outage benchmark (bench/outage): what pgrollup serves to 8 clients while
# Postgres is stopped for 30 s, and how soon their sessions relay again.
# make bench-outage OUTAGE_FLAGS='-clients 8 -outage 30s -rows 200000'
OUTAGE_FLAGS ?=

.PHONY: bench-outage
bench-outage: build
	bash scripts/deps.sh postgres
	$(GO) build -o bin/pgrollup-bench-outage ./bench/outage
	bin/pgrollup-bench-outage -pgrollup bin/pgrollup $(OUTAGE_FLAGS)

# Memory benchmark (bench/memory): resident memory per idle client connection
# through pgrollup and through PgBouncer, and what each pathological statement
# adds to pgrollup's at its peak and after.
# make bench-memory MEMORY_FLAGS='-clients 500 -settle 10s'
MEMORY_FLAGS ?=

.PHONY: bench-memory
bench-memory: build
	bash scripts/deps.sh postgres pgbouncer
	$(GO) build -o bin/pgrollup-bench-memory ./bench/memory
	bin/pgrollup-bench-memory -pgrollup bin/pgrollup $(MEMORY_FLAGS)

# Corpus benchmark (e2e TestCorpus over e2e/testdata/corpus): every statement
# directly on Postgres and through pgrollup; prints statements, answerable,
# served, wrong answers, refusals by reason and the answerable statements
# not served, and writes the report to bin/corpus-report.txt.
# make bench-corpus CORPUS_LOCALE=en_US.UTF-8 measures on a database of that locale.
CORPUS_LOCALE ?=

.PHONY: bench-corpus
bench-corpus:
	bash scripts/deps.sh postgres
	@mkdir -p bin
	PGROLLUP_CORPUS_LOCALE=$(CORPUS_LOCALE) PGROLLUP_CORPUS_REPORT=$(CURDIR)/bin/corpus-report.txt PGROLLUP_REQUIRE_POSTGRES=1 $(GO) test -count=1 -timeout 10m -run '^TestCorpus$$' ./e2e
	@cat bin/corpus-report.txt

# Star Schema Benchmark (bench/ssb): SSB data at a scale factor, the 13 queries
# directly on Postgres and through pgrollup with one or two rollups per flight,
# every answer compared; a per-query table of times, speed-ups and decisions.
# make bench-ssb SSB_FLAGS='-scale 1 -runs 3 -locale C'
SSB_FLAGS ?=

.PHONY: bench-ssb
bench-ssb: build
	bash scripts/deps.sh postgres
	$(GO) build -o bin/pgrollup-bench-ssb ./bench/ssb
	bin/pgrollup-bench-ssb -pgrollup bin/pgrollup $(SSB_FLAGS)

# Freshness benchmark (bench/freshness): a table receiving a steady insert
# stream, dashboard statements answered live by a lambda rollup or split at
# bucket edges, timed against the plain rollup path and Postgres, every live
# answer compared with Postgres's; a Markdown ratio table with the goals.
# make bench-freshness FRESHNESS_FLAGS='-rows 1000000 -runs 7 -result-cache 64MB'
FRESHNESS_FLAGS ?=

.PHONY: bench-freshness
bench-freshness: build
	bash scripts/deps.sh postgres
	$(GO) build -o bin/pgrollup-bench-freshness ./bench/freshness
	bin/pgrollup-bench-freshness -pgrollup bin/pgrollup $(FRESHNESS_FLAGS)
