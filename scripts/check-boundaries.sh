#!/usr/bin/env bash
# Proves that the pure crates of the hexagon stay pure: none of them may reach
# an async runtime, a database driver, an HTTP client or server, or Redis,
# directly or through any dependency; and that no adapter crate depends on
# another adapter (see docs/adr/0001-hexagonal-workspace.md).
#
# Usage: scripts/check-boundaries.sh [PACKAGE...]   (default: the pure crates below)
# Run by `just check-boundaries`, and so by CI.
set -euo pipefail

# --- policy ------------------------------------------------------------------
# A forbidden name also forbids every crate that starts with it and a `-` or `_`:
# `tokio` forbids tokio-util and tokio-stream, `sqlx` forbids sqlx-core, and so on.
FORBIDDEN=(
  tokio
  sqlx
  sea-orm
  reqwest
  fred
  axum
  hyper
)

# Crates that must stay pure. `iace-app` is not one of them: it runs the per-call
# tokio tasks, and it is kept honest by depending on `iace-domain` only.
PURE_CRATES=(
  iace-domain
)

# Each pure crate is checked with its default features and with all of them
# (`--all-features` covers `mock`: mockall is allowed, and must not drag I/O in).
FEATURE_SETS=(
  ""
  "--all-features"
)
# -----------------------------------------------------------------------------

packages=("$@")
if [[ ${#packages[@]} -eq 0 ]]; then
  packages=("${PURE_CRATES[@]}")
fi

alternation=$(IFS='|'; echo "${FORBIDDEN[*]}")
# `cargo tree --prefix none` prints one `name vX.Y.Z [...]` per line.
pattern="^(${alternation})([-_][A-Za-z0-9_-]*)? v[0-9]"

status=0
for package in "${packages[@]}"; do
  for features in "${FEATURE_SETS[@]}"; do
    label="${features:-default features}"
    # --target all: a dependency behind a cfg(target_os = ...) counts too.
    # shellcheck disable=SC2086 # $features is empty or a single flag
    tree=$(cargo tree --quiet -p "$package" -e normal --prefix none --target all $features)
    offenders=$(grep -E "$pattern" <<<"$tree" | awk '{ print $1 " " $2 }' | sort -u || true)
    if [[ -z "$offenders" ]]; then
      echo "check-boundaries: ok: $package ($label) has no forbidden dependency"
      continue
    fi
    status=1
    while read -r name version; do
      echo "check-boundaries: FORBIDDEN: $package ($label) depends on $name $version" >&2
      echo "  path to it (cargo tree -p $package -e normal -i $name@${version#v}):" >&2
      # shellcheck disable=SC2086
      cargo tree --quiet -p "$package" -e normal --target all $features \
        -i "$name@${version#v}" 2>&1 | sed 's/^/    /' >&2 || true
    done <<<"$offenders"
  done
done

# Adapters never import each other (and never the app crate): each knows the
# domain and the support crates (iace-http) only. Checked on the full
# dependency tree, so an indirect path counts too.
ADAPTERS=(iace-db iace-redis iace-local iace-telnyx iace-groq iace-genai iace-deepgram iace-stripe)
if [[ ${#@} -eq 0 ]]; then
  for adapter in "${ADAPTERS[@]}"; do
    tree=$(cargo tree --quiet -p "$adapter" -e normal --prefix none --target all --all-features)
    others=$(for other in "${ADAPTERS[@]}" iace-app iace-api; do
      [[ "$other" == "$adapter" ]] && continue
      grep -E "^${other} v[0-9]" <<<"$tree" | awk '{ print $1 }' || true
    done | sort -u)
    if [[ -z "$others" ]]; then
      echo "check-boundaries: ok: $adapter depends on no other adapter"
    else
      status=1
      for other in $others; do
        echo "check-boundaries: FORBIDDEN: adapter $adapter depends on $other" >&2
        cargo tree --quiet -p "$adapter" -e normal --target all --all-features -i "$other" 2>&1 | sed 's/^/    /' >&2 || true
      done
    fi
  done
fi

if [[ $status -ne 0 ]]; then
  echo "check-boundaries: failed: forbidden crates: ${FORBIDDEN[*]} (and their -* crates)." >&2
  echo "Move the code that needs them into an adapter crate behind a domain port." >&2
fi
exit "$status"
