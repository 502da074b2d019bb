SHELL := bash
PG_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: run test test-race bench vet

# Run the daemon on its embedded defaults (SQLite, sandbox provider, outbox).
run:
	go run ./cmd/billingd

# The whole test suite, on SQLite and, when reachable, PostgreSQL.
test: vet
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
		echo "NOTE: PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL half of the suite is SKIPPED (set BILLING_TEST_POSTGRES=require to make that an error)."; \
	fi
	go test -count=1 -timeout 10m ./...

test-race:
	go test -count=1 -race -timeout 15m ./...

vet:
	go vet ./...

# Benchmarks (figures in the README). BENCH selects, e.g. BENCH=BillingRun.
BENCH ?= .
bench:
	go test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 60m ./...
