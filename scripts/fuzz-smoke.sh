#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (libFuzzer with
# AddressSanitizer, nightly Rust). A crash is copied to fuzz/regressions/<target>/,
# where the stable replay test (`cargo test --manifest-path fuzz/Cargo.toml`,
# part of `just test`) keeps it as a regression test from then on.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30, all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET=${1:-30}
shift || true
TOOLS=$PWD/.tools
CARGO_FUZZ_VERSION=0.13.2
log() { printf 'fuzz-smoke: %s\n' "$*"; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "libFuzzer needs a nightly toolchain (rustup toolchain install nightly)." >&2
  log "Without one, 'cargo test --manifest-path fuzz/Cargo.toml' replays the seeds and regressions on stable." >&2
  exit 2
fi
if [[ ! -x "$TOOLS/cargo-fuzz/bin/cargo-fuzz" ]]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS/cargo-fuzz"
  cargo install --quiet --locked --root "$TOOLS/cargo-fuzz" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export PATH="$TOOLS/cargo-fuzz/bin:$PATH"

cd fuzz
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
log "building ${#targets[@]} targets (release, AddressSanitizer)"
cargo +nightly fuzz build -O

failed=()
printf '\n%-18s %12s %10s %8s %8s  %s\n' target runs exec/s cov corpus result
for target in "${targets[@]}"; do
  # New inputs go to a work corpus outside the repository; the seeds stay as committed.
  work="$TOOLS/fuzz-corpus/$target"
  mkdir -p "$work" "artifacts/$target"
  out=$(mktemp)
  status=0
  cargo +nightly fuzz run -O "$target" "$work" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$out" 2>&1 || status=$?
  runs=$(grep -oP '^stat::number_of_executed_units:\s*\K[0-9]+' "$out" || echo "?")
  speed=$(grep -oP '^stat::average_exec_per_sec:\s*\K[0-9]+' "$out" || echo "?")
  cov=$(grep -oP '#[0-9]+\s+DONE\s+cov: \K[0-9]+' "$out" | tail -1 || true)
  corpus=$(find "$work" -type f | wc -l)
  if [[ $status -eq 0 ]]; then
    printf '%-18s %12s %10s %8s %8s  %s\n' "$target" "$runs" "$speed" "${cov:-?}" "$corpus" ok
  else
    printf '%-18s %12s %10s %8s %8s  %s\n' "$target" "$runs" "$speed" "${cov:-?}" "$corpus" CRASH
    failed+=("$target")
    mkdir -p "regressions/$target"
    for crash in "artifacts/$target"/*; do
      [[ -f "$crash" ]] || continue
      cp "$crash" "regressions/$target/"
      log "kept $crash as fuzz/regressions/$target/$(basename "$crash")"
    done
    grep -m1 -A12 'panicked\|ERROR: AddressSanitizer\|ERROR: libFuzzer' "$out" | sed 's/^/    /' || true
  fi
  rm -f "$out"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  log "crashes in: ${failed[*]}; the inputs are in fuzz/regressions/ (commit them with the fix)"
  exit 1
fi
log "no crash in ${#targets[@]} targets × ${SECONDS_PER_TARGET} s"
